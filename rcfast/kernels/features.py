"""Time-aware features over each product's weekly rows (values + offsets), calendar weeks.

Rows of product ``p`` are ``row_offsets[p]:row_offsets[p+1]``, sorted by ``week``; weeks between
rows had no reviews (sparse panel) or appear as zero rows (dense panel) — both give the same
numbers, since every window is defined on calendar weeks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange


@njit(inline="always")
def _two_sum(s, c, x):
    # Neumaier's compensated addition: the running window sum adds and removes values, and
    # plain float error would survive the removal of everything it came from.
    t = s + x
    if abs(s) >= abs(x):
        c += (s - t) + x
    else:
        c += (x - t) + s
    return t, c


class RollingFeatures(NamedTuple):
    """The time-aware features of the spec, one element per panel row (R rows, K windows,
    L lags)."""

    n_window: np.ndarray  #: int64 [K, R]: reviews in the trailing window
    rating_mean_window: np.ndarray  #: float64 [K, R], NaN = null
    n_lag: np.ndarray  #: int32 [L, R]
    n_lag_valid: np.ndarray  #: bool [L, R]
    n_cum: np.ndarray  #: int64
    rating_mean_cum: np.ndarray  #: float64
    n_ewm: np.ndarray  #: float64
    weeks_since_first: np.ndarray  #: int32
    weeks_since_prev: np.ndarray  #: int32
    weeks_since_prev_valid: np.ndarray  #: bool


def rolling_features(row_offsets, week, n, rsum, windows, lags, alpha) -> RollingFeatures:
    """All windowed, lagged, cumulative and EWM features of the spec."""
    return RollingFeatures(*_rolling_features(row_offsets, week, n, rsum, windows, lags, alpha))


@njit(parallel=True, nogil=True, cache=True)
def _rolling_features(row_offsets, week, n, rsum, windows, lags, alpha):
    """:func:`rolling_features` (the fields of :class:`RollingFeatures`, in order)."""
    P = row_offsets.shape[0] - 1
    R = week.shape[0]
    K = windows.shape[0]
    L = lags.shape[0]
    n_r = np.empty((K, R), dtype=np.int64)
    rmean_r = np.empty((K, R), dtype=np.float64)
    lag = np.zeros((L, R), dtype=np.int32)
    lag_valid = np.zeros((L, R), dtype=np.bool_)
    n_cum = np.empty(R, dtype=np.int64)
    rmean_cum = np.empty(R, dtype=np.float64)
    ewm = np.empty(R, dtype=np.float64)
    since_first = np.empty(R, dtype=np.int32)
    since_prev = np.zeros(R, dtype=np.int32)
    since_prev_valid = np.zeros(R, dtype=np.bool_)
    decay = 1.0 - alpha
    # decay ** gap for the usual short gaps, without a pow per row
    powers = np.empty(64, dtype=np.float64)
    powers[0] = 1.0
    for g in range(1, 64):
        powers[g] = powers[g - 1] * decay
    for p in prange(P):
        lo = row_offsets[p]
        hi = row_offsets[p + 1]
        if hi == lo:
            continue
        first = week[lo]
        # rolling windows: one trailing pointer per window
        for k in range(K):
            span = windows[k]
            tail = lo
            cnt = 0
            s = 0.0
            c = 0.0
            for r in range(lo, hi):
                cnt += n[r]
                s, c = _two_sum(s, c, rsum[r])
                start = week[r] - span + 1
                while week[tail] < start:
                    cnt -= n[tail]
                    s, c = _two_sum(s, c, -rsum[tail])
                    tail += 1
                if cnt == 0:
                    s = 0.0
                    c = 0.0
                n_r[k, r] = cnt
                rmean_r[k, r] = (s + c) / cnt if cnt > 0 else np.nan
        # lags: the row of week w - L, if any
        for j in range(L):
            back = lags[j]
            ptr = lo
            for r in range(lo, hi):
                target = week[r] - back
                if target < first:
                    continue
                while week[ptr] < target:
                    ptr += 1
                lag_valid[j, r] = True
                lag[j, r] = n[ptr] if week[ptr] == target else 0
        cn = 0
        cs = 0.0
        e = 0.0
        prev_rev = -1  # row index of the previous week with reviews
        for r in range(lo, hi):
            cn += n[r]
            cs += rsum[r]
            n_cum[r] = cn
            rmean_cum[r] = cs / cn if cn > 0 else np.nan
            if r == lo:
                e = float(n[r])
            else:
                gap = week[r] - week[r - 1]
                e = alpha * n[r] + (powers[gap] if gap < 64 else decay ** gap) * e
            ewm[r] = e
            since_first[r] = week[r] - first
            if prev_rev >= 0:
                since_prev[r] = week[r] - week[prev_rev]
                since_prev_valid[r] = True
            if n[r] > 0:
                prev_rev = r
    return (n_r, rmean_r, lag, lag_valid, n_cum, rmean_cum, ewm, since_first, since_prev,
            since_prev_valid)
