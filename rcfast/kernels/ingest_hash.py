"""Stable 64-bit string hashes for the ingest step (``rcfast.combine``).

Two hashes. The **partition hash** of product ids (:func:`fnv_hash_strings`) is part of the
output's contract. The **text hash** (:func:`text_hash_strings`) only finds duplicate review
texts within a run and is never written: it reads the UTF-8 bytes 8 at a time (one multiply
per word instead of one per byte), so the JSON scanner can hash a review while it looks for
its closing quote.

The partition hash is defined in :mod:`rcfast.kernels.hashing`; :func:`fnv_hash_strings` is
``rcfast.kernels.strings.hash_strings`` on one thread, because that one is ``parallel=True``
and Numba's default threading layer must not be entered from several Python threads at once,
which is how the ingest step runs its blocks.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rcfast.kernels.hash_buckets import mix64
from rcfast.kernels.intrinsics import load8
from rcfast.kernels.strings import _hash_one


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


# ------------------------------------------------------------------------------- text hash

_W_SEED = np.uint64(0x243F6A8885A308D3)
_W_MUL = np.uint64(0x9E3779B97F4A7C15)
_MASK64 = (1 << 64) - 1


@njit(inline="always", nogil=True)
def word_mix(h, w):
    """One 8-byte word into the text hash."""
    h = (h ^ w) * _W_MUL
    return (h << np.uint64(31)) | (h >> np.uint64(33))


@njit(inline="always", nogil=True)
def word_final(h, nbytes):
    return mix64(h ^ np.uint64(nbytes))


@njit(inline="always", nogil=True)
def word_hash(data, a, b):
    """Text hash of ``data[a:b]``: little-endian 8-byte words, the last one zero-padded."""
    h = _W_SEED
    p = a
    while p + 8 <= b:
        h = word_mix(h, load8(data, p))
        p += 8
    if p < b:
        w = np.uint64(0)
        for j in range(b - p):
            w |= np.uint64(data[p + j]) << np.uint64(8 * j)
        h = word_mix(h, w)
    return word_final(h, b - a)


@njit(nogil=True, cache=True)
def text_hash_strings(offsets, data, valid):
    """Text hash of each string (Arrow-style int64 ``offsets``, uint8 ``data``); 0 where not
    ``valid``. The same function as the JSON scanner's (the tests hold a plain-Python reference)."""
    n = offsets.shape[0] - 1
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        # word_hash loads whole words only inside [a, b): no read past the buffer
        out[i] = word_hash(data, offsets[i], offsets[i + 1]) if valid[i] else np.uint64(0)
    return out
