"""Stable 64-bit hashes of Arrow string arrays (a product id's output partition, the user and text
parts of the dedup key) and the raw buffers of a string array they are computed from."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from rcfast.kernels.hashing import fnv_hash_numpy


def _string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets int64, data uint8, valid bool) of a string array, slices honoured."""
    if pa.types.is_large_string(arr.type):
        odt = np.int64
    else:
        arr = arr.cast(pa.string()) if not pa.types.is_string(arr.type) else arr
        odt = np.int32
    bufs = arr.buffers()
    n = len(arr)
    offsets = np.frombuffer(bufs[1], dtype=odt)[arr.offset : arr.offset + n + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
    else:
        valid = np.ones(n, dtype=np.bool_)
    return offsets, data, valid


def hash_strings(arr: pa.Array, *, short: bool = False) -> np.ndarray:
    """Stable 64-bit hash per string (0 for null); see :mod:`rcfast.kernels.ingest_hash`.

    ``short`` (ids): the numpy version, no JIT start-up; otherwise the Numba kernel (texts).
    """
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets, data, valid = _string_buffers(arr)
    if short:
        return fnv_hash_numpy(offsets, data, valid)
    from rcfast.kernels.ingest_hash import fnv_hash_strings

    return fnv_hash_strings(offsets, data, valid)


def text_hashes(arr: pa.Array) -> np.ndarray:
    """Text hash per string (0 for null), as the JSON scanner computes it (ingest_hash)."""
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets, data, valid = _string_buffers(arr)
    from rcfast.kernels.ingest_hash import text_hash_strings

    return text_hash_strings(offsets, data, valid)
