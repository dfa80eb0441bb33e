"""String kernels over Arrow's string layout (``offsets`` int64 + ``data`` uint8), no pyarrow.

- :func:`hash_strings` — 64-bit hash of every string (parallel).
- :func:`encode_strings` — dense integer code per string, equal strings equal codes. Rows are
  radix-partitioned by hash into buckets, and each bucket builds its own small hash table in
  parallel: one shared table would be a sequential, cache-missing insert per row.
- :func:`argsort_strings` — byte-order argsort: MSD radix over 8-byte big-endian words, each level
  an integer argsort inside runs of equal prefixes, ties of all words broken by length.
- :func:`take_strings` / :func:`repeat_strings` — build new offsets/data by gathering.
- short strings as two uint64 words (:func:`pack_keys`, :func:`encode_keys`,
  :func:`argsort_keys`, ...): :mod:`rcfast.kernels.string_keys`, re-exported here.

Both encoders share their bucket machinery (:mod:`rcfast.kernels.hash_buckets`).
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
from rcfast.kernels.hashing import FNV_OFFSET as _FNV_OFFSET
from rcfast.kernels.hashing import FNV_PRIME as _FNV_PRIME
from rcfast.kernels.string_keys import (  # noqa: F401 (re-exported: the packed-key kernels)
    KEY_MAX_BYTES,
    KeyBuckets,
    argsort_keys,
    big_endian_word,
    bucket_keys,
    encode_keys,
    hash_keys,
    max_length,
    pack_keys,
    unpack_keys,
    unpack_keys_at,
)


@njit(inline="always")
def _hash_one(data, start, end):
    h = _FNV_OFFSET
    for j in range(start, end):
        h ^= np.uint64(data[j])
        h *= _FNV_PRIME
    return mix64(h ^ np.uint64(end - start))


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


@njit(parallel=True, nogil=True, cache=True)
def _bucket_scatter(offsets, data, hashes, bucket_bits, n_blocks):
    """:func:`bucket_strings` in ``n_blocks`` blocks of rows (the fields of
    :class:`StringBuckets`, in order)."""
    n = hashes.shape[0]
    nb = 1 << bucket_bits
    shift = np.uint64(64 - bucket_bits)
    nt, block = row_blocks(n, n_blocks)
    cnt = np.zeros((nt, nb), dtype=np.int64)
    byt = np.zeros((nt, nb), dtype=np.int64)
    for t in prange(nt):
        for i in range(t * block, min(n, (t + 1) * block)):
            b = np.int64(hashes[i] >> shift)
            cnt[t, b] += 1
            byt[t, b] += offsets[i + 1] - offsets[i]
    counts, starts = bucket_starts(cnt)
    byte_starts, bstarts = bucket_starts(byt)
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
        t_code, mask = new_table(m)
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
    first_pos, first_len = merge_buckets(counts, n_local, codes_b, u_pos, u_len)
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
    codes = unbucket(codes_b, hashes, bucket_bits, block_starts)
    return codes, u_off, u_data


# The serial twin of string_keys._radix_reorder: argsort_strings sorts many short runs, on which the
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
            words[t] = big_endian_word(data, offsets[i], offsets[i + 1], lv)
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


@njit(parallel=True, nogil=True, cache=True)
def take(values, idx):
    """``values[idx]``, in parallel (numpy's fancy indexing runs on one core)."""
    out = np.empty(idx.shape[0], dtype=values.dtype)
    for i in prange(idx.shape[0]):
        out[i] = values[idx[i]]
    return out
