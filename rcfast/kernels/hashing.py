"""The partition hash of product ids: the one definition, in plain numpy (no Numba needed).

The hash decides which output partition of ``rcfast combine`` a product lives in, so it must be
identical across runs, processes, machines and Python versions: FNV-1a 64 over the UTF-8 bytes,
then the length is xor-ed in and the murmur3 64-bit finalizer applied (FNV alone leaves the low
bits, which pick the partition, poorly mixed). ``partition = hash % n``.

:func:`fnv_hash_numpy` is the array form; :func:`rcfast.kernels.strings.hash_strings` (parallel)
and :func:`rcfast.kernels.ingest_hash.fnv_hash_strings` (one thread) are its compiled form for
long strings, built from the same constants and the same finalizer (:func:`mix64_array`,
compiled for scalars); the tests check all of them against one plain-Python reference.
"""

from __future__ import annotations

import numpy as np

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


def mix64_array(h: np.ndarray) -> np.ndarray:
    """The murmur3 finalizer over a uint64 array, in place; ``hash_buckets.mix64`` is this
    function compiled for scalars."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def fnv_hash_numpy(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Hash of each string given Arrow-style ``offsets`` (n+1) and ``data`` (uint8); 0 where
    not ``valid``. Column by column over the byte positions: for short strings (product ids)
    as fast as the kernel, and no JIT start-up. Cost grows with the longest string.

    When every string has the same length L (ASINs: 10 bytes) the bytes are an (n, L) matrix,
    hashed a column at a time without gathers.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    valid = np.asarray(valid, dtype=np.bool_)
    n = offsets.size - 1
    starts = offsets[:-1]
    lens = offsets[1:] - starts
    h = np.full(n, FNV_OFFSET, dtype=np.uint64)
    width = int(lens[0]) if n else 0
    if n and width > 0 and np.all(lens == width):
        mat = data[int(offsets[0]) : int(offsets[0]) + width * n].reshape(n, width)
        for j in range(width):
            h ^= mat[:, j]
            h *= FNV_PRIME
    else:
        active = np.flatnonzero(lens > 0)
        j = 0
        while active.size:
            b = data[starts[active] + j].astype(np.uint64)
            h[active] = (h[active] ^ b) * FNV_PRIME
            j += 1
            active = active[lens[active] > j]
    h ^= lens.astype(np.uint64)
    mix64_array(h)
    h[~valid] = 0
    return h
