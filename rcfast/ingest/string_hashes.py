"""Stable 64-bit hashes of Arrow string arrays (a product id's output partition, the user and text
parts of the dedup key), computed from the array's raw buffers (:mod:`rcfast.arrow_buffers`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from rcfast.arrow_buffers import string_buffers, validity
from rcfast.kernels.hashing import fnv_hash_numpy


def hash_strings(arr: pa.Array, *, short: bool = False) -> np.ndarray:
    """Stable 64-bit hash per string (0 for null); see :mod:`rcfast.kernels.ingest_hash`.

    ``short`` (ids): the numpy version, no JIT start-up; otherwise the Numba kernel (texts).
    """
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    (offsets, data), valid = string_buffers(arr), validity(arr)
    if short:
        return fnv_hash_numpy(offsets, data, valid)
    from rcfast.kernels.ingest_hash import fnv_hash_strings

    return fnv_hash_strings(offsets, data, valid)


def text_hashes(arr: pa.Array) -> np.ndarray:
    """Text hash per string (0 for null), as the JSON scanner computes it (ingest_hash)."""
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    (offsets, data), valid = string_buffers(arr), validity(arr)
    from rcfast.kernels.ingest_hash import text_hash_strings

    return text_hash_strings(offsets, data, valid)
