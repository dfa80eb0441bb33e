"""Stable 64-bit string hashes for the ingest step (``rcfast.combine``).

The hash decides which output partition a product lives in, so it must be identical across runs,
processes, machines and Python versions: FNV-1a 64 over the UTF-8 bytes, then the length is
xor-ed in and the murmur3 64-bit finalizer applied (FNV alone leaves the low bits, which pick the
partition, poorly mixed). This is the same function as ``rcfast.kernels.strings.hash_strings``;
it is kept separate here because that one is ``parallel=True``, and Numba's default threading
layer must not be entered from several Python threads at once, which is how the ingest step
runs its blocks. ``partition = hash % n``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rcfast.kernels.strings import _FNV_OFFSET, _FNV_PRIME, _hash_one


@njit(nogil=True, cache=True)
def fnv_hash_strings(offsets, data, valid):
    """Hash of each string given Arrow-style ``offsets`` (int64, n+1) and ``data`` (uint8),
    one thread (the per-string hash is ``strings._hash_one``); rows where ``valid`` is False
    hash to 0."""
    n = offsets.shape[0] - 1
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        out[i] = _hash_one(data, offsets[i], offsets[i + 1]) if valid[i] else np.uint64(0)
    return out


def fnv_hash_py(value: bytes) -> int:
    """Pure-Python reference of :func:`fnv_hash_strings` for one string (tests, docs)."""
    mask = (1 << 64) - 1
    h = 0xCBF29CE484222325
    for b in value:
        h ^= b
        h = (h * 0x100000001B3) & mask
    h ^= len(value)
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & mask
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & mask
    h ^= h >> 33
    return h


def fnv_hash_numpy(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """:func:`fnv_hash_strings` in plain numpy, column by column over the byte positions.

    For short strings (product ids) this is as fast as the kernel and needs no JIT, which keeps
    the start-up of a small ingest run short. Cost grows with the longest string.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    starts = offsets[:-1]
    lens = offsets[1:] - starts
    h = np.full(starts.size, _FNV_OFFSET, dtype=np.uint64)
    active = np.flatnonzero(lens > 0)
    j = 0
    while active.size:
        b = data[starts[active] + j].astype(np.uint64)
        h[active] = (h[active] ^ b) * _FNV_PRIME
        j += 1
        active = active[lens[active] > j]
    h ^= lens.astype(np.uint64)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    h[~np.asarray(valid, dtype=np.bool_)] = 0
    return h
