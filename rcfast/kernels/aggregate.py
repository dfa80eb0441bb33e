"""Per-(product, week) aggregates over rows already grouped by :mod:`rcfast.kernels.group`.

One group is reduced by one thread, reading its rows through ``perm``; the reduction follows the
datashader shape — create (zeroed state), append (row by row), finalize (means, std) — with the
state laid out as plain arrays so that partitions holding whole products need no combine step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange


#: A review's values packed in one record of three int64 (:func:`pack_rows`): reading a row
#: through ``perm`` then costs one cache miss, not one per column.
ROW_WIDTH = 3
#: ``text_len`` must stay inside +-TEXT_LEN_LIMIT to leave 3 bits for the flags beside it.
TEXT_LEN_LIMIT = 1 << 59


@njit(parallel=True, nogil=True, cache=True)
def pack_rows(out, start, rating, helpful, verified, text_len, text_len_valid):
    """Write rows into ``out[start:start + n]``: ``[rating's float64 bits, helpful,
    text_len << 3 | text_len_valid << 2 | state]``, state 0 for a null verified (negative),
    1 for false, 2 for true (positive)."""
    bits = rating.view(np.int64)
    for i in prange(rating.shape[0]):
        k = start + i
        out[k, 0] = bits[i]
        out[k, 1] = helpful[i]
        tl = text_len[i] if text_len_valid[i] else 0
        v = verified[i]
        state = 0 if v < 0 else (2 if v > 0 else 1)
        out[k, 2] = (tl << 3) | (np.int64(text_len_valid[i]) << 2) | np.int64(state)


@njit(inline="always")
def _bit(bits, i):
    return (bits[i >> 3] >> (i & 7)) & 1


@njit(parallel=True, nogil=True, cache=True)
def pack_columns(out, start, n, rating_col, helpful_col, verified_col, text_len_col):
    """:func:`pack_rows` straight from Arrow's buffers: ``n`` rows into ``out[start:]``.

    Each column comes as a tuple ``(values, at, valid, valid_at)``: its values (any numeric
    dtype; ``verified`` as a bitmap) read from element ``at``, and an LSB-first validity bitmap
    read from bit ``valid_at`` (empty: no nulls). Empty values of ``helpful``, ``verified`` or
    ``text_len`` mean the column is absent (all null). A null rating becomes NaN, a null
    helpful count 0. Returns the least and greatest valid text length (0, 0 when none),
    which the caller checks against :data:`TEXT_LEN_LIMIT`: one pass over the batch instead
    of a cast, a ``fill_null`` and a copy per column.
    """
    rating, r_at, r_valid, r_vat = rating_col
    helpful, h_at, h_valid, h_vat = helpful_col
    v_bits, v_at, v_valid, v_vat = verified_col
    text_len, t_at, t_valid, t_vat = text_len_col
    outf = out.view(np.float64)
    has_h = helpful.shape[0] > 0
    has_v = v_bits.shape[0] > 0
    has_t = text_len.shape[0] > 0
    nr = r_valid.shape[0] > 0
    nh = h_valid.shape[0] > 0
    nv = v_valid.shape[0] > 0
    nt = t_valid.shape[0] > 0
    lo = np.int64(0)  # invalid rows hold 0, which never widens the check
    hi = np.int64(0)
    for i in prange(n):
        k = start + i
        if nr and not _bit(r_valid, r_vat + i):
            outf[k, 0] = np.nan
        else:
            outf[k, 0] = np.float64(rating[r_at + i])
        h = np.int64(0)
        if has_h and not (nh and not _bit(h_valid, h_vat + i)):
            h = np.int64(helpful[h_at + i])
        out[k, 1] = h
        state = 0  # null
        if has_v and not (nv and not _bit(v_valid, v_vat + i)):
            state = 1 + np.int64(_bit(v_bits, v_at + i))
        tl = np.int64(0)
        tv = np.int64(0)
        if has_t and not (nt and not _bit(t_valid, t_vat + i)):
            tl = np.int64(text_len[t_at + i])
            tv = 1
        lo = min(lo, tl)
        hi = max(hi, tl)
        out[k, 2] = (tl << 3) | (tv << 2) | np.int64(state)
    return lo, hi


@njit(parallel=True, nogil=True, cache=True)
def _unpack(rows, idx, use_idx):
    m = idx.shape[0] if use_idx else rows.shape[0]
    rb = np.empty(m, dtype=np.int64)  # rating bits: viewed as float64 by the caller
    h = np.empty(m, dtype=np.int64)
    v = np.empty(m, dtype=np.int8)
    t = np.empty(m, dtype=np.int64)
    tv = np.empty(m, dtype=np.bool_)
    for k in prange(m):
        i = np.int64(idx[k]) if use_idx else np.int64(k)
        rb[k] = rows[i, 0]
        h[k] = rows[i, 1]
        f = rows[i, 2]
        v[k] = np.int8((f & 3) - 1)
        tv[k] = (f & 4) != 0
        t[k] = f >> 3
    return rb, h, v, t, tv


class ReviewValues(NamedTuple):
    """The values of reviews as columns, one element per review."""

    rating: np.ndarray  #: float64
    helpful: np.ndarray  #: int64, null as 0
    verified: np.ndarray  #: int8: 1 true, 0 false, -1 null
    text_len: np.ndarray  #: int64 (0 where null)
    text_len_valid: np.ndarray  #: bool


def unpack_rows(rows) -> ReviewValues:
    """The columns of packed rows."""
    rb, h, v, t, tv = _unpack(rows, np.empty(0, dtype=np.int64), False)
    return ReviewValues(rb.view(np.float64), h, v, t, tv)


def gather_rows(idx, rows) -> ReviewValues:
    """The columns of packed rows ``idx``, contiguous. One record per row keeps each random
    read to one cache line; the aggregation then reads its rows in order."""
    rb, h, v, t, tv = _unpack(rows, idx, True)
    return ReviewValues(rb.view(np.float64), h, v, t, tv)


class WeeklyAggregates(NamedTuple):
    """Per (product, week) group: the spec's aggregates and the sums behind its shares."""

    n: np.ndarray  #: int32 reviews
    rating_sum: np.ndarray  #: float64
    rating_mean: np.ndarray  #: float64
    rating_std: np.ndarray  #: float64, population
    stars: np.ndarray  #: int32 [5, G]: reviews per rounded star
    helpful_sum: np.ndarray  #: int64
    verified_true: np.ndarray  #: int32
    verified_known: np.ndarray  #: int32 (non-null verified)
    text_len_sum: np.ndarray  #: int64
    text_len_known: np.ndarray  #: int32 (non-null text_len)


def weekly_aggregates(run_start, values: ReviewValues) -> WeeklyAggregates:
    """Aggregate each group ``g``: rows ``run_start[g] - run_start[0]`` to
    ``run_start[g+1] - run_start[0]`` of the (sorted, contiguous) ``values``."""
    return WeeklyAggregates(*_weekly_aggregates(run_start, *values))


@njit(parallel=True, nogil=True, cache=True)
def _weekly_aggregates(run_start, rating, helpful, verified, text_len, text_len_valid):
    """:func:`weekly_aggregates` (the fields of :class:`WeeklyAggregates`, in order)."""
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


@njit(parallel=True, nogil=True, cache=True)
def ratio_bits(num, den):
    """Finalize a mean: ``num / den`` as float64 (0.0 where ``den`` is 0) with an LSB-first
    validity bitmap (``den > 0``, Arrow's layout) and the number of valid rows."""
    n = num.shape[0]
    out = np.empty(n, dtype=np.float64)
    bits = np.empty((n + 7) // 8, dtype=np.uint8)
    n_valid = 0
    for b in prange(bits.shape[0]):
        byte = 0
        for i in range(8 * b, min(n, 8 * b + 8)):
            if den[i] > 0:
                out[i] = num[i] / den[i]
                byte |= 1 << (i - 8 * b)
                n_valid += 1
            else:
                out[i] = 0.0
        bits[b] = byte
    return out, bits, n_valid

