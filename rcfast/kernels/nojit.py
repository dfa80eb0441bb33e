"""Constants and plain-numpy helpers of the ingest kernels, importable without Numba.

``python -m rcfast.combine`` runs its kernels ahead-of-time compiled (:mod:`rcfast.kernels.aot`)
and then never imports Numba (~0.3 s of import and ~0.4 s of target set-up per run): whatever
the ingest step needs besides the compiled kernels lives here. The Numba modules re-export
these names, so they stay available where they always were.
"""

from __future__ import annotations

import numpy as np

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)

# kinds of wanted fields of the JSON scanner (rcfast.kernels.ingest_json)
KIND_STR = 0  #: string without escapes → byte span
KIND_INT = 1  #: integer → int64
KIND_FLOAT = 2  #: number → float64
KIND_BOOL = 3  #: true/false → 0/1
KIND_LIST_FIRST = 4  #: [int, ...] → first element (Amazon 2014 ``helpful``)
KIND_TEXT = 5  #: string → code-point length (ival) and text hash (of its UTF-8 bytes)


def mix64_array(h: np.ndarray) -> np.ndarray:
    """The murmur3 finalizer over a uint64 array, in place (no JIT); ``strings._mix64`` is this
    function compiled for scalars."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def fnv_hash_numpy(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """:func:`rcfast.kernels.ingest_hash.fnv_hash_strings` in plain numpy, column by column over
    the byte positions.

    For short strings (product ids) this is as fast as the kernel and needs no JIT, which keeps
    the start-up of a small ingest run short. Cost grows with the longest string.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    starts = offsets[:-1]
    lens = offsets[1:] - starts
    h = np.full(starts.size, FNV_OFFSET, dtype=np.uint64)
    active = np.flatnonzero(lens > 0)
    j = 0
    while active.size:
        b = data[starts[active] + j].astype(np.uint64)
        h[active] = (h[active] ^ b) * FNV_PRIME
        j += 1
        active = active[lens[active] > j]
    h ^= lens.astype(np.uint64)
    mix64_array(h)
    h[~np.asarray(valid, dtype=np.bool_)] = 0
    return h


def key_words(keys: np.ndarray, key_offs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lengths, first 24 bytes as 3 little-endian words, masks) of the scanner's wanted keys."""
    nk = key_offs.shape[0] - 1
    klen = np.diff(key_offs).astype(np.int64)
    kw = np.zeros((nk, 3), np.uint64)
    km = np.zeros((nk, 3), np.uint64)
    for k in range(nk):
        b = bytes(keys[key_offs[k] : key_offs[k + 1]])[:24]
        for j in range(3):
            part = b[8 * j : 8 * j + 8]
            kw[k, j] = int.from_bytes(part.ljust(8, b"\0"), "little")
            km[k, j] = (1 << (8 * len(part))) - 1
    return klen, kw, km
