"""Grouping kernels: rows into products (counting sort) and weeks within products.

Grouped data is values + offsets (Arrow's list layout): rows of product ``p`` are
``perm[offsets[p]:offsets[p+1]]``. No comparison sort runs over all rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, nogil=True, cache=True)
def counting_sort(keys, n_keys, n_blocks):
    """Stable counting sort of row indices by ``keys`` (``-1`` = leave the row out).

    Returns ``(perm int64[m], offsets int64[n_keys + 1])``. Each of ``n_blocks`` blocks of rows
    (one per thread) counts into its own histogram, so the scatter is parallel and stays stable.
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
    perm = np.empty(offsets[n_keys], dtype=np.int64)
    for t in prange(nt):
        lo = t * block
        hi = min(n, lo + block)
        h = hist[t]
        for i in range(lo, hi):
            k = keys[i]
            if k >= 0:
                perm[h[k]] = i
                h[k] += 1
    return perm, offsets


@njit(parallel=True, nogil=True, cache=True)
def sort_segments(perm, offsets, week):
    """Order each segment of ``perm`` by ``week`` (in place); return the sorted weeks.

    Small segments use insertion sort, already-sorted ones (the usual case for time-ordered
    dumps) are only checked, large unsorted ones use a stable argsort.
    """
    n_seg = offsets.shape[0] - 1
    sw = np.empty(perm.shape[0], dtype=np.int32)
    for p in prange(n_seg):
        lo = offsets[p]
        hi = offsets[p + 1]
        for t in range(lo, hi):
            sw[t] = week[perm[t]]
        ordered = True
        for t in range(lo + 1, hi):
            if sw[t] < sw[t - 1]:
                ordered = False
                break
        if ordered:
            continue
        m = hi - lo
        if m <= 32:
            for t in range(lo + 1, hi):
                kw = sw[t]
                kp = perm[t]
                u = t - 1
                while u >= lo and sw[u] > kw:
                    sw[u + 1] = sw[u]
                    perm[u + 1] = perm[u]
                    u -= 1
                sw[u + 1] = kw
                perm[u + 1] = kp
        else:
            sub = np.argsort(sw[lo:hi], kind="mergesort")
            seg_p = perm[lo:hi].copy()
            seg_w = sw[lo:hi].copy()
            for t in range(m):
                perm[lo + t] = seg_p[sub[t]]
                sw[lo + t] = seg_w[sub[t]]
    return sw


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
