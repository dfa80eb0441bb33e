"""The raw buffers of Arrow string arrays, as numpy views for the Numba kernels: the one place
that knows Arrow's string layout (offsets, data, validity bitmap). Used by the weekly step and
by ingest."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets int64, data uint8)`` of a string or binary array, honouring its slice offset.

    Other types (string views, dictionaries) are cast to ``string`` first."""
    if pa.types.is_string(arr.type) or pa.types.is_binary(arr.type):
        dtype = np.int32
    elif pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type):
        dtype = np.int64
    else:
        arr = arr.cast(pa.string())
        dtype = np.int32
    bufs = arr.buffers()
    n = len(arr)
    if bufs[1] is None:
        offsets = np.zeros(n + 1, dtype=np.int64)
    else:
        offsets = np.frombuffer(bufs[1], dtype=dtype)[arr.offset: arr.offset + n + 1]
        offsets = offsets.astype(np.int64, copy=dtype is np.int32)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.empty(0, np.uint8)
    return offsets, data


def validity(arr: pa.Array) -> np.ndarray:
    """One bool per element: True where not null."""
    if arr.null_count:
        return arr.is_valid().to_numpy(zero_copy_only=False)
    return np.ones(len(arr), dtype=np.bool_)
