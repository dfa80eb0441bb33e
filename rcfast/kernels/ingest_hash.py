"""Stable 64-bit string hashes for the ingest step (``rcfast.combine``).

Two hashes. The **partition hash** of product ids (below) is part of the output's contract. The
**text hash** (:func:`text_hash_strings`, :func:`text_hash_py`) only finds duplicate review
texts within a run and is never written: it reads the UTF-8 bytes 8 at a time (one multiply
per word instead of one per byte), so the JSON scanner can hash a review while it looks for
its closing quote.


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

from rcfast.kernels.nojit import fnv_hash_numpy, mix64_array  # noqa: F401 (re-exported)
from rcfast.kernels.strings import _hash_one, _mix64, load8


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
    return _mix64(h ^ np.uint64(nbytes))


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
    ``valid``. The same function as the JSON scanner's and :func:`text_hash_py`."""
    n = offsets.shape[0] - 1
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        # word_hash loads whole words only inside [a, b): no read past the buffer
        out[i] = word_hash(data, offsets[i], offsets[i + 1]) if valid[i] else np.uint64(0)
    return out


def text_hash_py(value: bytes) -> int:
    """Pure-Python reference of the text hash of ``value`` (the UTF-8 bytes of a text)."""

    def mix(h: int, w: int) -> int:
        h = ((h ^ w) * int(_W_MUL)) & _MASK64
        return ((h << 31) | (h >> 33)) & _MASK64

    h = int(_W_SEED)
    for i in range(0, len(value), 8):
        h = mix(h, int.from_bytes(value[i : i + 8].ljust(8, b"\0"), "little"))
    h ^= len(value)
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    h ^= h >> 33
    return h
