"""Short strings as integer keys: product ids are short (Amazon ASINs: 10 bytes), and packed
into two big-endian words they are compared, hashed and moved as integers: no byte loops, no
second pass over string data, and a table entry holds the whole key, so a match needs no look
at the bytes. :mod:`rcfast.kernels.strings` re-exports everything public here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import get_num_threads, njit, prange

from rcfast.kernels.hash_buckets import (
    bucket_starts,
    merge_buckets,
    mix64,
    new_table,
    row_blocks,
    unbucket,
)
from rcfast.kernels.intrinsics import bswap64, load8

#: Strings of at most this many bytes pack into a key: bytes 0-7 in ``k0``; bytes 8-14 and the
#: length in ``k1``. Comparing ``(k0, k1)`` as unsigned integers is byte order (memcmp, then
#: length), since a shorter string's padding is zero and its length is smaller.
KEY_MAX_BYTES = 15


@njit(parallel=True, nogil=True, cache=True)
def max_length(offsets):
    """Longest string, in bytes (0 for none)."""
    n = offsets.shape[0] - 1
    m = 0
    for i in prange(n):
        m = max(m, offsets[i + 1] - offsets[i])
    return m


@njit(inline="always")
def big_endian_word(data, start, end, level):
    """The 8 bytes of a string from ``start + 8 * level``, big-endian, zero-padded past ``end``."""
    w = np.uint64(0)
    p = start + 8 * level
    for j in range(8):
        w <<= np.uint64(8)
        if p + j < end:
            w |= np.uint64(data[p + j])
    return w


@njit(inline="always")
def _word_fast(data, start, end, level):
    # big_endian_word with one unaligned 8-byte load where the buffer allows (Arrow pads its
    # buffers), the bytes past the end masked off
    p = start + 8 * level
    if p >= end:
        return np.uint64(0)
    if p + 8 > data.shape[0]:
        return big_endian_word(data, start, end, level)
    w = bswap64(load8(data, p))
    k = end - p
    if k < 8:
        w &= ~(np.uint64(0xFFFFFFFFFFFFFFFF) >> np.uint64(8 * k))
    return w


@njit(parallel=True, nogil=True, cache=True)
def pack_keys(offsets, data):
    """``(k0, k1)`` uint64 keys of strings of at most :data:`KEY_MAX_BYTES` bytes (the caller
    checks the length: longer strings would be cut)."""
    n = offsets.shape[0] - 1
    k0 = np.empty(n, dtype=np.uint64)
    k1 = np.empty(n, dtype=np.uint64)
    for i in prange(n):
        s = offsets[i]
        e = offsets[i + 1]
        k0[i] = _word_fast(data, s, e, 0)
        k1[i] = _word_fast(data, s, e, 1) | np.uint64(e - s)
    return k0, k1


def unpack_keys(k0, k1):
    """Strings of packed keys: ``(offsets int64, data uint8)``."""
    return unpack_keys_at(k0, k1, np.arange(k0.shape[0]))


@njit(parallel=True, nogil=True, cache=True)
def unpack_keys_at(k0, k1, idx):
    """:func:`unpack_keys` of the keys ``idx`` (in that order), without gathering them first."""
    n = idx.shape[0]
    offsets = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        offsets[i + 1] = offsets[i] + np.int64(k1[idx[i]] & np.uint64(0xFF))
    data = np.empty(offsets[n], dtype=np.uint8)
    for i in prange(n):
        d = offsets[i]
        ln = offsets[i + 1] - d
        a = k0[idx[i]]
        b = k1[idx[i]]
        for j in range(ln):
            w = a if j < 8 else b
            data[d + j] = np.uint8((w >> np.uint64(56 - 8 * (j % 8))) & np.uint64(0xFF))
    return offsets, data


@njit(inline="always")
def _hash_key(a, b):
    return mix64(a ^ mix64(b ^ np.uint64(0x9E3779B97F4A7C15)))


@njit(parallel=True, nogil=True, cache=True)
def hash_keys(k0, k1):
    n = k0.shape[0]
    out = np.empty(n, dtype=np.uint64)
    for i in prange(n):
        out[i] = _hash_key(k0[i], k1[i])
    return out


class KeyBuckets(NamedTuple):
    """Packed keys copied into bucket order (:func:`bucket_keys`): bucket ``b`` holds rows
    ``counts[b]:counts[b+1]``."""

    counts: np.ndarray  #: int64 [buckets + 1]: first row of each bucket
    k0: np.ndarray  #: uint64 [rows]: first key word, in bucket order
    k1: np.ndarray  #: uint64 [rows]: second key word, in bucket order
    block_starts: np.ndarray  #: int64 [blocks, buckets]: where block t's rows of bucket b begin


def bucket_keys(k0, k1, hashes, bucket_bits) -> KeyBuckets:
    """Keys into bucket order (bucket = top ``bucket_bits`` bits of the hash), stably; like
    :func:`bucket_strings`, with fixed-size keys."""
    return KeyBuckets(*_key_scatter(k0, k1, hashes, bucket_bits, get_num_threads()))


@njit(parallel=True, nogil=True, cache=True)
def _key_scatter(k0, k1, hashes, bucket_bits, n_blocks):
    """:func:`bucket_keys` in ``n_blocks`` blocks of rows (the fields of :class:`KeyBuckets`,
    in order)."""
    n = hashes.shape[0]
    nb = 1 << bucket_bits
    shift = np.uint64(64 - bucket_bits)
    nt, block = row_blocks(n, n_blocks)
    cnt = np.zeros((nt, nb), dtype=np.int64)
    for t in prange(nt):
        for i in range(t * block, min(n, (t + 1) * block)):
            cnt[t, np.int64(hashes[i] >> shift)] += 1
    counts, starts = bucket_starts(cnt)
    b0 = np.empty(n, dtype=np.uint64)
    b1 = np.empty(n, dtype=np.uint64)
    for t in prange(nt):
        rp = starts[t].copy()
        for i in range(t * block, min(n, (t + 1) * block)):
            b = np.int64(hashes[i] >> shift)
            b0[rp[b]] = k0[i]
            b1[rp[b]] = k1[i]
            rp[b] += 1
    return counts, b0, b1, starts


# strings._codes_from_buckets' loop specialised for keys: a table entry holds the whole key, so a
# match is two integer compares instead of a hash check and a byte compare in the bucket's data.
@njit(parallel=True, nogil=True, cache=True)
def _codes_from_key_buckets(counts, b0, b1):
    """Per bucket, in parallel: a small open-addressing table from key to code. Returns the
    codes in bucket order and the distinct keys in code order."""
    n = b0.shape[0]
    nb = counts.shape[0] - 1
    codes_b = np.empty(n, dtype=np.int32)
    u0 = np.empty(n, dtype=np.uint64)  # per bucket, packed at the bucket's start
    u1 = np.empty(n, dtype=np.uint64)
    n_local = np.zeros(nb, dtype=np.int64)
    for b in prange(nb):
        lo = counts[b]
        hi = counts[b + 1]
        m = hi - lo
        if m == 0:
            continue
        t_code, mask = new_table(m)
        nu = 0
        for t in range(lo, hi):
            a = b0[t]
            c1 = b1[t]
            s = np.int64(_hash_key(a, c1) & mask)
            while True:
                c = t_code[s]
                if c == -1:
                    t_code[s] = nu
                    u0[lo + nu] = a
                    u1[lo + nu] = c1
                    codes_b[t] = nu
                    nu += 1
                    break
                if u0[lo + c] == a and u1[lo + c] == c1:
                    codes_b[t] = c
                    break
                s = np.int64((np.uint64(s) + np.uint64(1)) & mask)
        n_local[b] = nu
    o0, o1 = merge_buckets(counts, n_local, codes_b, u0, u1)
    return codes_b, o0, o1


def encode_keys(k0, k1, bucket_bits=None):
    """Dense codes for packed keys: ``(codes int32[n], u0, u1)``, key ``c`` of the distinct
    ones having code ``c`` (bucket order, not byte order; see :func:`argsort_keys`)."""
    n = k0.shape[0]
    if bucket_bits is None:  # about 8k keys a bucket: its table stays in L2
        bucket_bits = int(min(14, max(6, np.log2(max(1, n) / 8192))))
    if not 1 <= bucket_bits <= 20:  # a shift by 64 bits is undefined
        raise ValueError(f"bucket_bits must be in 1..20, got {bucket_bits}")
    hashes = hash_keys(k0, k1)
    buckets = bucket_keys(k0, k1, hashes, bucket_bits)
    codes_b, u0, u1 = _codes_from_key_buckets(buckets.counts, buckets.k0, buckets.k1)
    block_starts = buckets.block_starts
    del buckets  # the bucketed copy of the keys is no longer needed
    return unbucket(codes_b, hashes, bucket_bits, block_starts), u0, u1


@njit(parallel=True, nogil=True, cache=True)
def _radix_reorder(keys, order, n_blocks):
    """``order`` stably re-sorted by ``keys[order]`` (uint64): LSD radix with 16-bit digits,
    each pass counted and scattered by ``n_blocks`` blocks of rows in parallel (one histogram
    per block keeps it stable); digits shared by all keys are skipped."""
    n = order.shape[0]
    nt, block = row_blocks(n, n_blocks)
    kb = np.empty(n, dtype=np.uint64)
    for i in prange(n):
        kb[i] = keys[order[i]]
    ob = order.copy()
    kt = np.empty(n, dtype=np.uint64)
    ot = np.empty(n, dtype=np.int64)
    hist = np.zeros((nt, 65536), dtype=np.int64)
    for shift in range(0, 64, 16):
        sh = np.uint64(shift)
        for t in prange(nt):
            h = hist[t]
            h[:] = 0
            for i in range(t * block, min(n, (t + 1) * block)):
                h[np.int64((kb[i] >> sh) & np.uint64(0xFFFF))] += 1
        shared = False
        for d in range(65536):
            c = 0
            for t in range(nt):
                c += hist[t, d]
            if c == n:
                shared = True  # every key has this digit: the pass would move nothing
            if c > 0:
                break
        if shared:
            continue
        total = 0
        for d in range(65536):  # hist[t, d] becomes block t's first slot for digit d
            for t in range(nt):
                c = hist[t, d]
                hist[t, d] = total
                total += c
        for t in prange(nt):
            h = hist[t]
            for i in range(t * block, min(n, (t + 1) * block)):
                d = np.int64((kb[i] >> sh) & np.uint64(0xFFFF))
                p = h[d]
                kt[p] = kb[i]
                ot[p] = ob[i]
                h[d] = p + 1
        kb, kt = kt, kb
        ob, ot = ot, ob
    return ob


def argsort_keys(k0, k1):
    """Stable argsort of packed keys, which is byte order of their strings."""
    nb = get_num_threads()
    return _radix_reorder(k0, _radix_reorder(k1, np.arange(k0.shape[0]), nb), nb)
