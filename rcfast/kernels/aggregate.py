"""Per-(product, week) aggregates over rows already grouped by :mod:`rcfast.kernels.group`.

One group is reduced by one thread, reading its rows through ``perm``; the reduction follows the
datashader shape — create (zeroed state), append (row by row), finalize (means, std) — with the
state laid out as plain arrays so that partitions holding whole products need no combine step.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True, nogil=True, cache=True)
def gather_rows(idx, rating, helpful, verified, text_len, text_len_valid):
    """The columns of rows ``idx``, contiguous. One tight loop of independent loads keeps many
    cache misses in flight; the aggregation then reads its rows in order."""
    m = idx.shape[0]
    r = np.empty(m, dtype=rating.dtype)
    h = np.empty(m, dtype=helpful.dtype)
    v = np.empty(m, dtype=verified.dtype)
    t = np.empty(m, dtype=text_len.dtype)
    tv = np.empty(m, dtype=text_len_valid.dtype)
    for k in prange(m):
        i = idx[k]
        r[k] = rating[i]
        h[k] = helpful[i]
        v[k] = verified[i]
        t[k] = text_len[i]
        tv[k] = text_len_valid[i]
    return r, h, v, t, tv


@njit(parallel=True, nogil=True, cache=True)
def weekly_aggregates(run_start, rating, helpful, verified, text_len, text_len_valid):
    """Aggregate each group ``g``: rows ``run_start[g] - run_start[0]`` to
    ``run_start[g+1] - run_start[0]`` of the (sorted, contiguous) columns.

    ``verified`` is int8 with -1 for null; ``text_len_valid`` marks non-null text lengths.
    Returns ``n, rating_sum, rating_mean, rating_std, stars (5 x G), helpful_sum,
    verified_true, verified_known, text_len_sum, text_len_known``.
    """
    G = run_start.shape[0] - 1
    base = run_start[0]
    n = np.empty(G, dtype=np.int32)
    rsum = np.empty(G, dtype=np.float64)
    rmean = np.empty(G, dtype=np.float64)
    rstd = np.empty(G, dtype=np.float64)
    stars = np.zeros((5, G), dtype=np.int32)
    hsum = np.empty(G, dtype=np.int64)
    vtrue = np.empty(G, dtype=np.int32)
    vknown = np.empty(G, dtype=np.int32)
    tsum = np.empty(G, dtype=np.int64)
    tknown = np.empty(G, dtype=np.int32)
    for g in prange(G):
        lo = run_start[g] - base
        hi = run_start[g + 1] - base
        s = 0.0
        h = 0
        vt = 0
        vk = 0
        ts = 0
        tk = 0
        rmin = np.inf
        rmax = -np.inf
        for i in range(lo, hi):
            r = rating[i]
            s += r
            rmin = min(rmin, r)
            rmax = max(rmax, r)
            # half-up rounding: 1.5 -> 2, 4.5 -> 5
            star = int(math.floor(r + 0.5))  # noqa: RUF046 - numba types floor as float
            if star < 1:
                star = 1
            elif star > 5:
                star = 5
            stars[star - 1, g] += 1
            h += helpful[i]
            v = verified[i]
            if v >= 0:
                vk += 1
                vt += v
            if text_len_valid[i]:
                tk += 1
                ts += text_len[i]
        m = hi - lo
        mean = s / m
        if rmin == rmax:
            # all ratings equal: the spread is exactly zero, whatever rounding the mean had
            sd = 0.0
        else:
            acc = 0.0
            for i in range(lo, hi):
                d = rating[i] - mean
                acc += d * d
            sd = math.sqrt(acc / m)
        n[g] = m
        rsum[g] = s
        rmean[g] = mean
        rstd[g] = sd
        hsum[g] = h
        vtrue[g] = vt
        vknown[g] = vk
        tsum[g] = ts
        tknown[g] = tk
    return n, rsum, rmean, rstd, stars, hsum, vtrue, vknown, tsum, tknown


@njit(parallel=True, nogil=True, cache=True)
def group_weeks(sw, run_start):
    """The week of each group (the sorted week of its first row)."""
    G = run_start.shape[0] - 1
    out = np.empty(G, dtype=np.int32)
    for g in prange(G):
        out[g] = sw[run_start[g]]
    return out


@njit(nogil=True, cache=True)
def dense_layout(group_offsets, gweek, until_week, use_until):
    """Rows of the dense panel: every week from each product's first review week to its last
    (or to ``until_week`` when ``use_until``).

    Returns ``(row_offsets int64[P+1], row_week int32[R], src int64[R])`` where ``src`` is the
    sparse group behind the row, or -1 for a week without reviews.
    """
    P = group_offsets.shape[0] - 1
    row_offsets = np.zeros(P + 1, dtype=np.int64)
    for p in range(P):
        lo = group_offsets[p]
        hi = group_offsets[p + 1]
        if hi == lo:
            row_offsets[p + 1] = row_offsets[p]
            continue
        last = until_week if use_until else gweek[hi - 1]
        row_offsets[p + 1] = row_offsets[p] + (last - gweek[lo] + 1)
    R = row_offsets[P]
    row_week = np.empty(R, dtype=np.int32)
    src = np.full(R, -1, dtype=np.int64)
    for p in range(P):
        lo = group_offsets[p]
        hi = group_offsets[p + 1]
        if hi == lo:
            continue
        r0 = row_offsets[p]
        w0 = gweek[lo]
        for r in range(row_offsets[p + 1] - r0):
            row_week[r0 + r] = w0 + r
        for g in range(lo, hi):
            src[r0 + gweek[g] - w0] = g
    return row_offsets, row_week, src


@njit(parallel=True, nogil=True, cache=True)
def scatter_rows(src, values, fill):
    """``out[r] = values[src[r]]`` or ``fill`` where ``src[r] < 0`` (dense panel columns)."""
    R = src.shape[0]
    out = np.empty(R, dtype=values.dtype)
    for r in prange(R):
        s = src[r]
        out[r] = values[s] if s >= 0 else fill
    return out
