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

import numpy as np
from numba import get_num_threads, njit, prange

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@njit(inline="always")
def _mix64(h):
    # murmur3 finalizer: FNV alone leaves low-entropy high bits, which pick the bucket.
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@njit(inline="always")
def _hash_one(data, start, end):
    h = _FNV_OFFSET
    for j in range(start, end):
        h ^= np.uint64(data[j])
        h *= _FNV_PRIME
    return _mix64(h ^ np.uint64(end - start))


@njit(inline="always")
def _hash_two(data, start, end):
    # an independent second hash (other basis, other multiplier) to check matches by
    h = np.uint64(0x84222325CBF29CE4)
    for j in range(start, end):
        h ^= np.uint64(data[j])
        h *= np.uint64(0x100000001B3)
        h ^= h >> np.uint64(29)
    return _mix64(h + np.uint64(end - start) * np.uint64(0x9E3779B97F4A7C15))


@njit(parallel=True, nogil=True, cache=True)
def hash_strings_two(offsets, data):
    """The second, independent 64-bit hash of each string (see :func:`encode_strings`)."""
    n = offsets.shape[0] - 1
    out = np.empty(n, dtype=np.uint64)
    for i in prange(n):
        out[i] = _hash_two(data, offsets[i], offsets[i + 1])
    return out


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


@njit(parallel=True, nogil=True, cache=True)
def _bucket_rows(hashes, bucket_bits, n_blocks):
    """Row indices grouped by the hash's top bits (a parallel, stable counting sort)."""
    n = hashes.shape[0]
    nb = 1 << bucket_bits
    shift = np.uint64(64 - bucket_bits)
    nt = max(1, min(n_blocks, n // 65536 + 1))
    block = (n + nt - 1) // nt
    hist = np.zeros((nt, nb), dtype=np.int64)
    for t in prange(nt):
        for i in range(t * block, min(n, (t + 1) * block)):
            hist[t, np.int64(hashes[i] >> shift)] += 1
    counts = np.zeros(nb + 1, dtype=np.int64)
    for b in range(nb):
        c = counts[b]
        for t in range(nt):
            k = hist[t, b]
            hist[t, b] = c
            c += k
        counts[b + 1] = c
    rows = np.empty(n, dtype=np.int64)
    rhash = np.empty(n, dtype=np.uint64)
    for t in prange(nt):
        h_t = hist[t]
        for i in range(t * block, min(n, (t + 1) * block)):
            h = hashes[i]
            b = np.int64(h >> shift)
            rows[h_t[b]] = i
            rhash[h_t[b]] = h
            h_t[b] += 1
    return rows, rhash, counts


@njit(parallel=True, nogil=True, cache=True)
def _codes_from_buckets(rows, rhash, counts, keys_equal, offsets, data):
    """Per bucket, in parallel: a small open-addressing table from hash to a local code.

    With ``keys_equal`` False, equal hashes mean equal strings (checked afterwards by
    :func:`_verify`); with True the bytes are compared too (the exact fallback).
    """
    n = rows.shape[0]
    nb = counts.shape[0] - 1
    codes = np.empty(n, dtype=np.int32)
    local_first = np.empty(n, dtype=np.int64)  # per bucket, packed at the bucket's start
    n_local = np.zeros(nb, dtype=np.int64)
    for b in prange(nb):
        lo = counts[b]
        hi = counts[b + 1]
        m = hi - lo
        if m == 0:
            continue
        cap = 16
        while cap < 2 * m:
            cap *= 2
        mask = np.uint64(cap - 1)
        t_code = np.full(cap, -1, dtype=np.int64)
        t_hash = np.empty(cap, dtype=np.uint64)
        nu = 0
        for t in range(lo, hi):
            h = rhash[t]
            i = rows[t]
            s = np.int64(h & mask)
            while True:
                c = t_code[s]
                if c == -1:
                    t_code[s] = nu
                    t_hash[s] = h
                    local_first[lo + nu] = i
                    codes[i] = nu
                    nu += 1
                    break
                if t_hash[s] == h:
                    if not keys_equal:
                        codes[i] = c
                        break
                    f = local_first[lo + c]
                    if _equal(data, offsets[i], offsets[i + 1], offsets[f], offsets[f + 1]):
                        codes[i] = c
                        break
                s = np.int64((np.uint64(s) + np.uint64(1)) & mask)
        n_local[b] = nu
    base = np.zeros(nb + 1, dtype=np.int64)
    for b in range(nb):
        base[b + 1] = base[b] + n_local[b]
    first = np.empty(base[nb], dtype=np.int64)
    for b in prange(nb):
        lo = counts[b]
        for c in range(n_local[b]):
            first[base[b] + c] = local_first[lo + c]
        for t in range(lo, counts[b + 1]):
            i = rows[t]
            codes[i] = np.int32(codes[i] + base[b])
    return codes, first


@njit(parallel=True, nogil=True, cache=True)
def _verify_bytes(offsets, data, codes, u_off, u_data):
    """True when every string equals the unique string of its code (no hash collision)."""
    n = offsets.shape[0] - 1
    bad = 0
    for i in prange(n):
        c = codes[i]
        s = offsets[i]
        ln = offsets[i + 1] - s
        us = u_off[c]
        if u_off[c + 1] - us != ln:
            bad += 1
            continue
        for j in range(ln):
            if data[s + j] != u_data[us + j]:
                bad += 1
                break
    return bad == 0


@njit(parallel=True, nogil=True, cache=True)
def _verify_hash(h2, codes, first):
    """True when every string's second hash equals that of its code's first string."""
    n = codes.shape[0]
    h2u = np.empty(first.shape[0], dtype=np.uint64)
    for c in prange(first.shape[0]):
        h2u[c] = h2[first[c]]
    bad = 0
    for i in prange(n):
        if h2[i] != h2u[codes[i]]:
            bad += 1
    return bad == 0


@njit(parallel=True, nogil=True, cache=True)
def remap(codes, mapping):
    """``codes[i] = mapping[codes[i]]`` in place, leaving negative codes (nulls) alone."""
    for i in prange(codes.shape[0]):
        c = codes[i]
        if c >= 0:
            codes[i] = mapping[c]


def encode_strings(offsets, data, bucket_bits=8, hash_mask=0xFFFFFFFFFFFFFFFF, verify="bytes"):
    """Dense codes for strings: ``(codes int32[n], first int64[U], u_off, u_data)``.

    ``first[c]`` is the index of a string with code ``c``; ``u_off``/``u_data`` hold the unique
    strings (code order, which follows hash buckets, not bytes: sort them when an order is
    wanted). Rows are bucketed by hash and each bucket builds its own small table in parallel,
    matching on the 64-bit hash alone. A parallel pass then checks every match: ``"bytes"``
    compares each string with its unique (cheap when the uniques fit in cache, as within one
    row group); ``"hash"`` compares an independent second 64-bit hash (one 8-byte read per
    string, for millions of uniques). A failed check (a collision of the first hash) rebuilds
    the codes comparing bytes. ``hash_mask`` exists to force collisions in tests.
    """
    hashes = hash_strings(offsets, data) & np.uint64(hash_mask)
    rows, rhash, counts = _bucket_rows(hashes, bucket_bits, get_num_threads())
    del hashes
    codes, first = _codes_from_buckets(rows, rhash, counts, False, offsets, data)
    if verify == "hash":
        ok = _verify_hash(hash_strings_two(offsets, data), codes, first)
        u_off, u_data = take_strings(offsets, data, first)
    else:
        u_off, u_data = take_strings(offsets, data, first)
        ok = _verify_bytes(offsets, data, codes, u_off, u_data)
    if not ok:
        codes, first = _codes_from_buckets(rows, rhash, counts, True, offsets, data)
        u_off, u_data = take_strings(offsets, data, first)
    return codes, first, u_off, u_data


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
        sub = np.argsort(words, kind="mergesort")
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
