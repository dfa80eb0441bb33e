"""Grouping kernels: rows into products (counting sort) and weeks within products.

Grouped data is values + offsets (Arrow's list layout): rows of product ``p`` are
``perm[offsets[p]:offsets[p+1]]``. No comparison sort runs over all rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, nogil=True, cache=True)
def counting_sort(keys, n_keys, n_blocks, payload, payload2):
    """Stable counting sort by ``keys`` (``-1`` = leave the row out).

    Returns ``(offsets int64[n_keys + 1], payload, payload2)`` in sorted order: the payloads
    (row ids, weeks, ...) travel to the sorted position in the same pass, where gathering them
    through a permutation later would miss the cache on every row. Each of ``n_blocks`` blocks
    of rows (one per thread) counts into its own histogram, so the scatter is parallel and
    stays stable.
    """
    n = keys.shape[0]
    # one histogram per block: bounded so that they never outweigh the rows themselves
    nt = max(1, min(n_blocks, n // 65536 + 1, n // max(n_keys, 1)))
    block = (n + nt - 1) // nt
    hist = np.zeros((nt, n_keys), dtype=np.int64)
    for t in prange(nt):
        lo = t * block
        hi = min(n, lo + block)
        h = hist[t]
        for i in range(lo, hi):
            k = keys[i]
            if k >= 0:
                h[k] += 1
    offsets = np.zeros(n_keys + 1, dtype=np.int64)
    for k in range(n_keys):
        s = 0
        for t in range(nt):
            s += hist[t, k]
        offsets[k + 1] = offsets[k] + s
    # hist[t, k] becomes thread t's first slot for key k
    for k in prange(n_keys):
        pos = offsets[k]
        for t in range(nt):
            c = hist[t, k]
            hist[t, k] = pos
            pos += c
    moved = np.empty(offsets[n_keys], dtype=payload.dtype)
    moved2 = np.empty(offsets[n_keys], dtype=payload2.dtype)
    for t in prange(nt):
        lo = t * block
        hi = min(n, lo + block)
        h = hist[t]
        for i in range(lo, hi):
            k = keys[i]
            if k >= 0:
                moved[h[k]] = payload[i]
                moved2[h[k]] = payload2[i]
                h[k] += 1
    return offsets, moved, moved2


#: The wide sort's first pass spreads rows over at most 2**HIGH_BITS buckets (few enough write
#: cursors to stay in cache), its second sorts each bucket by the low bits inside L2. On the
#: 2.35M products of 31.8M rows: 0.52-0.58 s with 9 bits, 0.55-0.58 with 8, 0.65-0.67 with 10,
#: 0.62-0.72 with 11; one pass over all keys took 0.80-0.85 s.
HIGH_BITS = 9


@njit(parallel=True, nogil=True, cache=True)
def _high_buckets(keys, n_keys, n_blocks):
    """The first pass of the two-pass sorts: rows by the high bits of their key (``-1`` keys
    left out). Returns ``(low_bits, n_high, nt, block, hist, hoff)``: ``hist[t, b]`` is block
    ``t``'s first slot in bucket ``b``, bucket ``b`` spans ``hoff[b]:hoff[b + 1]``."""
    n = keys.shape[0]
    bits = 0
    while (1 << bits) < n_keys:
        bits += 1
    low_bits = max(0, bits - HIGH_BITS)
    n_high = ((max(n_keys, 1) - 1) >> low_bits) + 1
    nt = max(1, min(n_blocks, n // 65536 + 1))
    block = (n + nt - 1) // nt
    hist = np.zeros((nt, n_high), dtype=np.int64)
    for t in prange(nt):
        h = hist[t]
        for i in range(t * block, min(n, (t + 1) * block)):
            k = keys[i]
            if k >= 0:
                h[k >> low_bits] += 1
    hoff = np.zeros(n_high + 1, dtype=np.int64)
    for b in range(n_high):
        s = hoff[b]
        for t in range(nt):
            c = hist[t, b]
            hist[t, b] = s
            s += c
        hoff[b + 1] = s
    return low_bits, n_high, nt, block, hist, hoff


@njit(parallel=True, nogil=True, cache=True)
def counting_sort_wide(keys, n_keys, n_blocks, payload, payload2):
    """:func:`counting_sort` for millions of keys, in two cache-friendly passes.

    One pass over millions of keys keeps a write cursor per key, and nearly every row costs a
    cache miss for its cursor and one for its destination. Here a stable pass by the high bits
    of the key (at most ``2**HIGH_BITS`` cursors) is followed, for each bucket in parallel, by
    a stable counting sort by the low bits over rows that fit in L2. Same result: ``(offsets
    int64[n_keys + 1], payload, payload2)`` in (key, input position) order, ``-1`` keys left
    out. ``payload`` and ``payload2`` are overwritten: their memory holds the result.
    """
    n = keys.shape[0]
    low_bits, n_high, nt, block, hist, hoff = _high_buckets(keys, n_keys, n_blocks)
    m = hoff[n_high]
    ka = np.empty(m, dtype=keys.dtype)
    pa = np.empty(m, dtype=payload.dtype)
    pb = np.empty(m, dtype=payload2.dtype)
    for t in prange(nt):
        cur = hist[t]
        for i in range(t * block, min(n, (t + 1) * block)):
            k = keys[i]
            if k >= 0:
                b = k >> low_bits
                p = cur[b]
                ka[p] = k
                pa[p] = payload[i]
                pb[p] = payload2[i]
                cur[b] = p + 1
    offsets = np.zeros(n_keys + 1, dtype=np.int64)
    out1 = payload[:m]
    out2 = payload2[:m]
    n_low = 1 << low_bits
    mask = n_low - 1
    for b in prange(n_high):
        lo = hoff[b]
        hi = hoff[b + 1]
        cnt = np.zeros(n_low + 1, dtype=np.int64)
        for i in range(lo, hi):
            cnt[(ka[i] & mask) + 1] += 1
        for j in range(n_low):
            cnt[j + 1] += cnt[j]
        first = b << low_bits
        for j in range(min(n_low, n_keys - first)):
            offsets[first + j + 1] = lo + cnt[j + 1]  # end of key first + j
        for i in range(lo, hi):
            j = ka[i] & mask
            p = cnt[j]
            out1[lo + p] = pa[i]
            out2[lo + p] = pb[i]
            cnt[j] = p + 1
    return offsets, out1, out2


@njit(parallel=True, nogil=True, cache=True)
def _week_keys(code, week):
    """``week - min week`` of kept rows (``code >= 0``), -1 elsewhere; and the min and range."""
    n = code.shape[0]
    lo = np.iinfo(np.int32).max
    hi = np.iinfo(np.int32).min
    for i in range(n):
        if code[i] >= 0:
            w = week[i]
            lo = min(lo, w)
            hi = max(hi, w)
    keys = np.empty(n, dtype=np.int32)
    for i in prange(n):
        keys[i] = week[i] - lo if code[i] >= 0 else -1
    return keys, lo, max(0, hi - lo + 1)


@njit(parallel=True, nogil=True, cache=True)
def _fill_weeks(week_offsets, lo):
    out = np.empty(week_offsets[-1], dtype=np.int32)
    for k in prange(week_offsets.shape[0] - 1):
        for t in range(week_offsets[k], week_offsets[k + 1]):
            out[t] = lo + k
    return out


@njit(parallel=True, nogil=True, cache=True)
def _kept_week_range(code, week):
    """Least and greatest week of the kept rows (``code >= 0``); ``lo > hi`` when none."""
    lo = np.iinfo(np.int32).max
    hi = np.iinfo(np.int32).min
    for i in prange(code.shape[0]):
        if code[i] >= 0:
            lo = min(lo, week[i])
            hi = max(hi, week[i])
    return lo, hi


@njit(parallel=True, nogil=True, cache=True)
def _sort_in_product_buckets(code, week, n_products, lo, n_weeks, n_blocks, perm, sw):
    """Rows by (product, week, position) into ``perm`` (row ids) and ``sw`` (their weeks).

    A stable pass spreads the kept rows over at most ``2**HIGH_BITS`` buckets by the high bits
    of the product code (row id and week travel along); then each bucket, in parallel and
    inside L2, is counting-sorted by week and then, stably, by the low bits of the code. No
    pass over all rows sorts by week. ``perm`` and ``sw`` may be the memory of ``code`` and
    ``week`` themselves: every read of those ends before the first write.
    """
    n = code.shape[0]
    low_bits, n_high, nt, block, hist, hoff = _high_buckets(code, n_products, n_blocks)
    m = hoff[n_high]
    kb = np.empty(m, dtype=code.dtype)
    wb = np.empty(m, dtype=np.int32)  # week - lo
    rb = np.empty(m, dtype=perm.dtype)
    for t in prange(nt):
        cur = hist[t]
        for i in range(t * block, min(n, (t + 1) * block)):
            k = code[i]
            if k >= 0:
                b = k >> low_bits
                p = cur[b]
                kb[p] = k
                wb[p] = week[i] - lo
                rb[p] = i
                cur[b] = p + 1
    offsets = np.zeros(n_products + 1, dtype=np.int64)
    n_low = 1 << low_bits
    mask = n_low - 1
    for b in prange(n_high):
        l0 = hoff[b]
        size = hoff[b + 1] - l0
        wc = np.zeros(n_weeks + 1, dtype=np.int64)
        for i in range(l0, l0 + size):
            wc[wb[i] + 1] += 1
        for j in range(n_weeks):
            wc[j + 1] += wc[j]
        tk = np.empty(size, dtype=kb.dtype)
        tr = np.empty(size, dtype=rb.dtype)
        tw = np.empty(size, dtype=np.int32)
        for i in range(l0, l0 + size):
            j = wb[i]
            p = wc[j]
            tk[p] = kb[i]
            tr[p] = rb[i]
            tw[p] = wb[i]
            wc[j] = p + 1
        cnt = np.zeros(n_low + 1, dtype=np.int64)
        for t in range(size):
            cnt[(tk[t] & mask) + 1] += 1
        for j in range(n_low):
            cnt[j + 1] += cnt[j]
        first = b << low_bits
        for j in range(min(n_low, n_products - first)):
            offsets[first + j + 1] = l0 + cnt[j + 1]  # end of product first + j
        for t in range(size):
            j = tk[t] & mask
            p = cnt[j]
            perm[l0 + p] = tr[t]
            sw[l0 + p] = tw[t] + lo
            cnt[j] = p + 1
    return offsets, perm[:m], sw[:m]


#: Above this many weeks between the first and the last kept review, the per-bucket week
#: histograms would cost more than they save: one global counting sort by week runs first.
BUCKET_WEEKS_MAX = 1 << 14


def sort_by_product_week(code, week, n_products: int, n_blocks: int, overwrite: bool = False):
    """Rows ordered by (product, week), as ``(perm, offsets, sorted weeks)``: no comparison
    sort, and no sort inside products. With ``overwrite`` the result may take the memory of
    ``code`` and ``week`` (which the caller no longer needs): ~250 MB less fresh memory at
    31.8M rows, and fresh pages cost (zeroing by the kernel) about a second per GB here."""
    lo, hi = _kept_week_range(code, week)
    n_weeks = max(0, int(hi) - int(lo) + 1)
    row_dtype = np.int32 if code.shape[0] < 2**31 else np.int64
    if n_weeks <= BUCKET_WEEKS_MAX:
        own = overwrite and row_dtype is np.int32 and code.dtype == np.int32 \
            and week.dtype == np.int32
        perm = code if own else np.empty(code.shape[0], dtype=row_dtype)
        sw = week if own else np.empty(code.shape[0], dtype=np.int32)
        offsets, perm, sw = _sort_in_product_buckets(code, week, n_products, np.int32(lo),
                                                     n_weeks, n_blocks, perm, sw)
        return perm, offsets, sw
    # a long span of weeks: a stable counting sort by week, then the wide one by product
    keys, lo, n_weeks = _week_keys(code, week)
    rows = np.arange(code.shape[0], dtype=row_dtype)
    week_offsets, rows_w, code_w = counting_sort(keys, n_weeks, n_blocks, rows, code)
    del keys
    week_w = _fill_weeks(week_offsets, np.int32(lo))
    # rows_w and week_w are not needed afterwards: the wide sort writes its result over them
    offsets, perm, sw = counting_sort_wide(code_w, n_products, n_blocks, rows_w, week_w)
    return perm, offsets, sw


@njit(parallel=True, nogil=True, cache=True)
def week_runs(sw, offsets):
    """Runs of equal weeks inside each product segment.

    Returns ``(group_offsets int64[n_products + 1], run_start int64[n_groups + 1])``: product
    ``p`` owns groups ``group_offsets[p]:group_offsets[p+1]``, and group ``g`` covers sorted rows
    ``run_start[g]:run_start[g+1]``.
    """
    n_seg = offsets.shape[0] - 1
    counts = np.zeros(n_seg, dtype=np.int64)
    for p in prange(n_seg):
        lo = offsets[p]
        hi = offsets[p + 1]
        c = 0
        for t in range(lo, hi):
            if t == lo or sw[t] != sw[t - 1]:
                c += 1
        counts[p] = c
    group_offsets = np.zeros(n_seg + 1, dtype=np.int64)
    for p in range(n_seg):
        group_offsets[p + 1] = group_offsets[p] + counts[p]
    n_groups = group_offsets[n_seg]
    run_start = np.empty(n_groups + 1, dtype=np.int64)
    run_start[n_groups] = offsets[n_seg]
    for p in prange(n_seg):
        g = group_offsets[p]
        lo = offsets[p]
        for t in range(lo, offsets[p + 1]):
            if t == lo or sw[t] != sw[t - 1]:
                run_start[g] = t
                g += 1
    return group_offsets, run_start
