"""String kernels over Arrow's string layout (``offsets`` int64 + ``data`` uint8), no pyarrow.

- :func:`hash_strings` — 64-bit hash of every string (parallel).
- :func:`encode_strings` — dense integer code per string, equal strings equal codes. Rows are
  radix-partitioned by hash into buckets, and each bucket builds its own small hash table in
  parallel: one shared table would be a sequential, cache-missing insert per row.
- :func:`argsort_strings` — byte-order argsort: MSD radix over 8-byte big-endian words, each level
  an integer argsort inside runs of equal prefixes, ties of all words broken by length.
- :func:`take_strings` / :func:`repeat_strings` — build new offsets/data by gathering.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import get_num_threads, njit, prange

from rcfast.kernels.hashing import FNV_OFFSET as _FNV_OFFSET
from rcfast.kernels.hashing import FNV_PRIME as _FNV_PRIME
from rcfast.kernels.hashing import mix64_array
from rcfast.kernels.intrinsics import bswap64, load8


# murmur3 finalizer: FNV alone leaves low-entropy high bits, which pick the bucket. One body
# for both: numpy over arrays (rcfast.kernels.hashing), compiled for scalars here.
_mix64 = njit(inline="always")(mix64_array)


@njit(inline="always")
def _hash_one(data, start, end):
    h = _FNV_OFFSET
    for j in range(start, end):
        h ^= np.uint64(data[j])
        h *= _FNV_PRIME
    return _mix64(h ^ np.uint64(end - start))


@njit(parallel=True, nogil=True, cache=True)
def hash_strings(offsets, data):
    """Stable 64-bit hash (FNV-1a + murmur finalizer) of each string; same bytes, same hash."""
    n = offsets.shape[0] - 1
    out = np.empty(n, dtype=np.uint64)
    for i in prange(n):
        out[i] = _hash_one(data, offsets[i], offsets[i + 1])
    return out


@njit(inline="always")
def _equal(data, a0, a1, b0, b1):
    if a1 - a0 != b1 - b0:
        return False
    for j in range(a1 - a0):
        if data[a0 + j] != data[b0 + j]:
            return False
    return True


@njit(inline="always")
def _word(data, start, end, level):
    # 8 bytes from start + 8*level, big-endian, zero-padded past the end.
    w = np.uint64(0)
    p = start + 8 * level
    for j in range(8):
        w <<= np.uint64(8)
        if p + j < end:
            w |= np.uint64(data[p + j])
    return w


class StringBuckets(NamedTuple):
    """Strings copied into bucket order (:func:`bucket_strings`): bucket ``b`` holds rows
    ``counts[b]:counts[b+1]`` and its bytes start at ``byte_starts[b]``."""

    counts: np.ndarray  #: int64 [buckets + 1]: first row of each bucket
    byte_starts: np.ndarray  #: int64 [buckets + 1]: first byte of each bucket in ``data``
    lengths: np.ndarray  #: int32 [rows]: string lengths in bucket order
    data: np.ndarray  #: uint8: the strings' bytes in bucket order
    block_starts: np.ndarray  #: int64 [blocks, buckets]: where block t's rows of bucket b begin


def bucket_strings(offsets, data, hashes, bucket_bits) -> StringBuckets:
    """Copy the strings into bucket order (bucket = top ``bucket_bits`` bits of the hash),
    stably. Reads everything in row order and writes two sequential streams per bucket
    (lengths and bytes), so it runs near memory speed; gathering in bucket order instead would
    miss the cache on every row."""
    return StringBuckets(*_bucket_scatter(offsets, data, hashes, bucket_bits, get_num_threads()))


@njit(inline="always")
def _row_blocks(n, n_blocks):
    """``(blocks, rows per block)``: at most ``n_blocks`` blocks, of at least 64k rows so that
    a block's rows outweigh its own row of the histogram."""
    nt = max(1, min(n_blocks, n // 65536 + 1))
    return nt, (n + nt - 1) // nt


@njit(inline="always")
def _bucket_starts(per_block):
    """From ``per_block[t, b]`` (rows or bytes of bucket ``b`` in block ``t``): each bucket's
    start ``[buckets + 1]`` and each block's start inside it ``[blocks, buckets]``, buckets in
    order and blocks in order within a bucket (which keeps the scatter stable)."""
    nt, nb = per_block.shape
    bucket_start = np.zeros(nb + 1, dtype=np.int64)
    block_start = np.empty((nt, nb), dtype=np.int64)
    r = 0
    for b in range(nb):
        for t in range(nt):
            block_start[t, b] = r
            r += per_block[t, b]
        bucket_start[b + 1] = r
    return bucket_start, block_start


@njit(parallel=True, nogil=True, cache=True)
def _bucket_scatter(offsets, data, hashes, bucket_bits, n_blocks):
    """:func:`bucket_strings` in ``n_blocks`` blocks of rows (the fields of
    :class:`StringBuckets`, in order)."""
    n = hashes.shape[0]
    nb = 1 << bucket_bits
    shift = np.uint64(64 - bucket_bits)
    nt, block = _row_blocks(n, n_blocks)
    cnt = np.zeros((nt, nb), dtype=np.int64)
    byt = np.zeros((nt, nb), dtype=np.int64)
    for t in prange(nt):
        for i in range(t * block, min(n, (t + 1) * block)):
            b = np.int64(hashes[i] >> shift)
            cnt[t, b] += 1
            byt[t, b] += offsets[i + 1] - offsets[i]
    counts, starts = _bucket_starts(cnt)
    byte_starts, bstarts = _bucket_starts(byt)
    b_len = np.empty(n, dtype=np.int32)
    b_data = np.empty(byte_starts[nb], dtype=np.uint8)
    for t in prange(nt):
        rp = starts[t].copy()
        bp = bstarts[t].copy()
        for i in range(t * block, min(n, (t + 1) * block)):
            b = np.int64(hashes[i] >> shift)
            s0 = offsets[i]
            ln = offsets[i + 1] - s0
            b_len[rp[b]] = ln
            d = bp[b]
            for j in range(ln):
                b_data[d + j] = data[s0 + j]
            bp[b] = d + ln
            rp[b] += 1
    return counts, byte_starts, b_len, b_data, starts


@njit(parallel=True, nogil=True, cache=True)
def _unbucket(codes_b, hashes, bucket_bits, starts):
    """Codes back into row order, reading one sequential stream per bucket."""
    n = hashes.shape[0]
    nt = starts.shape[0]
    shift = np.uint64(64 - bucket_bits)
    block = (n + nt - 1) // nt
    codes = np.empty(n, dtype=np.int32)
    for t in prange(nt):
        rp = starts[t].copy()
        for i in range(t * block, min(n, (t + 1) * block)):
            b = np.int64(hashes[i] >> shift)
            codes[i] = codes_b[rp[b]]
            rp[b] += 1
    return codes


@njit(inline="always")
def _new_table(m):
    """An empty open-addressing table for ``m`` rows: ``(codes, mask)``, codes -1 (free)."""
    # a power of two at least twice the rows: short probe runs, a mask instead of a modulo
    cap = 16
    while cap < 2 * m:
        cap *= 2
    return np.full(cap, -1, dtype=np.int64), np.uint64(cap - 1)


@njit(parallel=True, nogil=True, cache=True)
def _merge_buckets(counts, n_local, codes_b, first, second):
    """Make the per-bucket codes global, in place (bucket ``b``'s codes follow the distinct
    values of the buckets before it), and return the distinct values' two columns, packed at
    each bucket's start in ``first``/``second``, in code order."""
    nb = n_local.shape[0]
    base = np.zeros(nb + 1, dtype=np.int64)
    for b in range(nb):
        base[b + 1] = base[b] + n_local[b]
    first_out = np.empty(base[nb], dtype=first.dtype)
    second_out = np.empty(base[nb], dtype=second.dtype)
    for b in prange(nb):
        lo = counts[b]
        for c in range(n_local[b]):
            first_out[base[b] + c] = first[lo + c]
            second_out[base[b] + c] = second[lo + c]
        for t in range(lo, counts[b + 1]):
            codes_b[t] = np.int32(codes_b[t] + base[b])
    return first_out, second_out


@njit(parallel=True, nogil=True, cache=True)
def _codes_from_buckets(counts, byte_starts, b_len, b_data, hash_mask):
    """Per bucket, in parallel: a small open-addressing table from string to code.

    Both the string being looked up and the first string of each code sit in the bucket's own
    stretch of ``b_data`` (hashes are recomputed there, in cache), so equal hashes are
    confirmed by comparing bytes without a cache miss. Returns the codes in bucket order and
    the uniques' ``(byte start, length)`` in ``b_data``, in code order.
    """
    n = b_len.shape[0]
    nb = counts.shape[0] - 1
    codes_b = np.empty(n, dtype=np.int32)
    u_pos = np.empty(n, dtype=np.int64)  # per bucket, packed at the bucket's start
    u_len = np.empty(n, dtype=np.int64)
    n_local = np.zeros(nb, dtype=np.int64)
    for b in prange(nb):
        lo = counts[b]
        hi = counts[b + 1]
        m = hi - lo
        if m == 0:
            continue
        t_code, mask = _new_table(m)
        t_hash = np.empty(t_code.shape[0], dtype=np.uint64)
        nu = 0
        pos = byte_starts[b]
        for t in range(lo, hi):
            ln = b_len[t]
            h = _hash_one(b_data, pos, pos + ln) & hash_mask
            s = np.int64(h & mask)
            while True:
                c = t_code[s]
                if c == -1:
                    t_code[s] = nu
                    t_hash[s] = h
                    u_pos[lo + nu] = pos
                    u_len[lo + nu] = ln
                    codes_b[t] = nu
                    nu += 1
                    break
                if t_hash[s] == h:
                    f = u_pos[lo + c]
                    if _equal(b_data, pos, pos + ln, f, f + u_len[lo + c]):
                        codes_b[t] = c
                        break
                s = np.int64((np.uint64(s) + np.uint64(1)) & mask)
            pos += ln
        n_local[b] = nu
    first_pos, first_len = _merge_buckets(counts, n_local, codes_b, u_pos, u_len)
    U = first_pos.shape[0]
    u_off = np.zeros(U + 1, dtype=np.int64)
    for c in range(U):
        u_off[c + 1] = u_off[c] + first_len[c]
    u_data = np.empty(u_off[U], dtype=np.uint8)
    for c in prange(U):
        p = first_pos[c]
        d = u_off[c]
        for j in range(first_len[c]):
            u_data[d + j] = b_data[p + j]
    return codes_b, u_off, u_data


@njit(parallel=True, nogil=True, cache=True)
def remap(codes, mapping):
    """``codes[i] = mapping[codes[i]]`` in place, leaving negative codes (nulls) alone."""
    for i in prange(codes.shape[0]):
        c = codes[i]
        if c >= 0:
            codes[i] = mapping[c]


def encode_strings(offsets, data, bucket_bits=None, hash_mask=0xFFFFFFFFFFFFFFFF):
    """Dense codes for strings: ``(codes int32[n], u_off, u_data)``.

    ``u_off``/``u_data`` hold the distinct strings, string ``c`` having code ``c`` (an order
    that follows hash buckets, not bytes: sort them when an order is wanted). Strings are
    copied into buckets by a 64-bit hash (:func:`bucket_strings`) and each bucket builds its
    own small table in parallel, comparing bytes on equal hashes: exact, with every access
    inside one bucket. ``hash_mask`` exists to force collisions in tests.
    """
    if bucket_bits is None:  # about 8k strings a bucket: its table stays in L2
        bucket_bits = int(min(14, max(6, np.log2(max(1, offsets.shape[0] - 1) / 8192))))
    hashes = hash_strings(offsets, data)
    if hash_mask != 0xFFFFFFFFFFFFFFFF:
        hashes &= np.uint64(hash_mask)
    buckets = bucket_strings(offsets, data, hashes, bucket_bits)
    codes_b, u_off, u_data = _codes_from_buckets(buckets.counts, buckets.byte_starts,
                                                 buckets.lengths, buckets.data,
                                                 np.uint64(hash_mask))
    block_starts = buckets.block_starts
    del buckets  # the bucketed copy of the strings is no longer needed
    codes = _unbucket(codes_b, hashes, bucket_bits, block_starts)
    return codes, u_off, u_data


# The serial twin of _radix_reorder: argsort_strings sorts many short runs, on which the
# parallel one (a gather, per-block histograms, a launch, no merge sort of tiny runs) was 1.5x
# slower.
@njit(nogil=True, cache=True)
def _radix_argsort(keys):
    """Stable argsort of uint64 keys: LSD radix, 16-bit digits, digits shared by all keys
    skipped (a comparison sort of millions of keys costs ten times more)."""
    n = keys.shape[0]
    order = np.arange(n)
    if n < 64:
        return np.argsort(keys, kind="mergesort")
    tmp = np.empty(n, dtype=np.int64)
    kb = keys.copy()
    kt = np.empty(n, dtype=np.uint64)
    hist = np.empty(65536, dtype=np.int64)
    for shift in range(0, 64, 16):
        sh = np.uint64(shift)
        hist[:] = 0
        for i in range(n):
            hist[np.int64((kb[i] >> sh) & np.uint64(0xFFFF))] += 1
        if hist.max() == n:
            continue  # every key has the same digit here
        total = 0
        for d in range(65536):
            c = hist[d]
            hist[d] = total
            total += c
        for i in range(n):
            d = np.int64((kb[i] >> sh) & np.uint64(0xFFFF))
            p = hist[d]
            tmp[p] = order[i]
            kt[p] = kb[i]
            hist[d] = p + 1
        order, tmp = tmp, order
        kb, kt = kt, kb
    return order


@njit(nogil=True, cache=True)
def argsort_strings(offsets, data):
    """Indices that sort the strings in byte order (``memcmp`` then length), like Arrow's sort."""
    n = offsets.shape[0] - 1
    order = np.arange(n)
    if n < 2:
        return order
    # explicit stack of (lo, hi, level) runs still to sort
    stack_lo = [0]
    stack_hi = [n]
    stack_lv = [0]
    while len(stack_lo) > 0:
        lo = stack_lo.pop()
        hi = stack_hi.pop()
        lv = stack_lv.pop()
        m = hi - lo
        if m < 2:
            continue
        maxlen = 0
        for t in range(lo, hi):
            i = order[t]
            ln = offsets[i + 1] - offsets[i]
            maxlen = max(maxlen, ln)
        if maxlen <= 8 * lv:
            # every word equal and exhausted: the strings differ only in length
            lens = np.empty(m, dtype=np.int64)
            for t in range(m):
                i = order[lo + t]
                lens[t] = offsets[i + 1] - offsets[i]
            sub = np.argsort(lens, kind="mergesort")
            seg = order[lo:hi].copy()
            for t in range(m):
                order[lo + t] = seg[sub[t]]
            continue
        words = np.empty(m, dtype=np.uint64)
        for t in range(m):
            i = order[lo + t]
            words[t] = _word(data, offsets[i], offsets[i + 1], lv)
        sub = _radix_argsort(words)
        seg = order[lo:hi].copy()
        for t in range(m):
            order[lo + t] = seg[sub[t]]
        start = 0
        for t in range(1, m + 1):
            if t == m or words[sub[t]] != words[sub[start]]:
                if t - start > 1:
                    stack_lo.append(lo + start)
                    stack_hi.append(lo + t)
                    stack_lv.append(lv + 1)
                start = t
    return order


@njit(parallel=True, nogil=True, cache=True)
def take_strings(offsets, data, idx):
    """Gather strings ``idx`` into new ``(offsets, data)``."""
    m = idx.shape[0]
    out_off = np.zeros(m + 1, dtype=np.int64)
    for t in range(m):
        i = idx[t]
        out_off[t + 1] = out_off[t] + offsets[i + 1] - offsets[i]
    out = np.empty(out_off[m], dtype=np.uint8)
    for t in prange(m):
        i = idx[t]
        s = offsets[i]
        d = out_off[t]
        for j in range(offsets[i + 1] - s):
            out[d + j] = data[s + j]
    return out_off, out


@njit(parallel=True, nogil=True, cache=True)
def repeat_strings(offsets, data, repeats):
    """String ``i`` repeated ``repeats[i]`` times, in order: product ids for panel rows."""
    n = repeats.shape[0]
    row0 = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        row0[i + 1] = row0[i] + repeats[i]
    m = row0[n]
    out_off = np.empty(m + 1, dtype=np.int64)
    out_off[0] = 0
    byte0 = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        byte0[i + 1] = byte0[i] + repeats[i] * (offsets[i + 1] - offsets[i])
    out = np.empty(byte0[n], dtype=np.uint8)
    for i in prange(n):
        s = offsets[i]
        ln = offsets[i + 1] - s
        d = byte0[i]
        for r in range(repeats[i]):
            for j in range(ln):
                out[d + j] = data[s + j]
            d += ln
            out_off[row0[i] + r + 1] = d
    return out_off, out


# -- short strings as integer keys ------------------------------------------------------------
# Product ids are short (Amazon ASINs: 10 bytes). Packed into two big-endian words they are
# compared, hashed and moved as integers: no byte loops, no second pass over string data, and a
# table entry holds the whole key, so a match needs no look at the bytes.

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
def _word_fast(data, start, end, level):
    # _word with one unaligned 8-byte load where the buffer allows (Arrow pads its buffers),
    # the bytes past the end masked off
    p = start + 8 * level
    if p >= end:
        return np.uint64(0)
    if p + 8 > data.shape[0]:
        return _word(data, start, end, level)
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


@njit(inline="always")
def _hash_key(a, b):
    return _mix64(a ^ _mix64(b ^ np.uint64(0x9E3779B97F4A7C15)))


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
    nt, block = _row_blocks(n, n_blocks)
    cnt = np.zeros((nt, nb), dtype=np.int64)
    for t in prange(nt):
        for i in range(t * block, min(n, (t + 1) * block)):
            cnt[t, np.int64(hashes[i] >> shift)] += 1
    counts, starts = _bucket_starts(cnt)
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


# _codes_from_buckets' loop specialised for keys: a table entry holds the whole key, so a match
# is two integer compares instead of a hash check and a byte compare in the bucket's data.
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
        t_code, mask = _new_table(m)
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
    o0, o1 = _merge_buckets(counts, n_local, codes_b, u0, u1)
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
    return _unbucket(codes_b, hashes, bucket_bits, block_starts), u0, u1


@njit(parallel=True, nogil=True, cache=True)
def _radix_reorder(keys, order, n_blocks):
    """``order`` stably re-sorted by ``keys[order]`` (uint64): LSD radix with 16-bit digits,
    each pass counted and scattered by ``n_blocks`` blocks of rows in parallel (one histogram
    per block keeps it stable); digits shared by all keys are skipped."""
    n = order.shape[0]
    nt, block = _row_blocks(n, n_blocks)
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


@njit(parallel=True, nogil=True, cache=True)
def take(values, idx):
    """``values[idx]``, in parallel (numpy's fancy indexing runs on one core)."""
    out = np.empty(idx.shape[0], dtype=values.dtype)
    for i in prange(idx.shape[0]):
        out[i] = values[idx[i]]
    return out


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
