"""Week and date arithmetic, the one place for it: epoch values in any unit to milliseconds,
Monday-based week indices (week 0 starts on Monday 1969-12-29), and their calendar dates."""

from __future__ import annotations

import datetime as dt

import numpy as np
from numba import njit, prange

MS_PER_WEEK = 604_800_000
#: The epoch (1970-01-01) was a Thursday: shifting by 3 days makes weeks start on Monday.
MONDAY_SHIFT_MS = 259_200_000
DAYS_EPOCH_TO_FIRST_MONDAY = -3  # 1969-12-29, the Monday of week 0
_EPOCH = dt.date(1970, 1, 1)


@njit(parallel=True, nogil=True, cache=True)
def to_ms(values, factor_num, factor_den):
    """``floor(values * num / den)`` in int64 (floor also for times before 1970).

    A value whose product would overflow int64 gives the smallest int64, which no valid time
    is: such a row is set aside as out of range instead of wrapping to a wrong date.
    """
    n = values.shape[0]
    out = np.empty(n, dtype=np.int64)
    lim = np.int64(9_223_372_036_854_775_807) // factor_num
    for i in prange(n):
        v = values[i]
        if v > lim or v < -lim:
            out[i] = np.int64(-9_223_372_036_854_775_807) - np.int64(1)
        else:
            out[i] = (v * factor_num) // factor_den
    return out


@njit(inline="always")
def _week(ms):
    return (ms + MONDAY_SHIFT_MS) // MS_PER_WEEK


@njit(parallel=True, nogil=True, cache=True)
def week_index(ms):
    """Week of each epoch-millisecond time: ``floor((floor(ms/1000) + 259200) / 604800)``.

    Equal to ``floor((ms + 259200000) / 604800000)`` because nested floor divisions by positive
    integers compose. Numba's ``//`` on integers floors like Python's, also for negatives.
    """
    n = ms.shape[0]
    out = np.empty(n, dtype=np.int32)
    for i in prange(n):
        out[i] = _week(ms[i])
    return out


def week_to_days(week: np.ndarray) -> np.ndarray:
    """Days since the epoch of each week's Monday (for a date32 column)."""
    return np.asarray(week).astype(np.int32) * 7 + DAYS_EPOCH_TO_FIRST_MONDAY


def days_to_week(days: np.ndarray) -> np.ndarray:
    """Week index of each day since the epoch (int64; floor division, also before 1970)."""
    return (np.asarray(days).astype(np.int64) - DAYS_EPOCH_TO_FIRST_MONDAY) // 7


def week_of_date(day: dt.date) -> int:
    """Week index of a calendar date (the week whose Monday is on or before it)."""
    return ((day - _EPOCH).days - DAYS_EPOCH_TO_FIRST_MONDAY) // 7


def date_of_week(week: int) -> dt.date:
    """The Monday of week ``week``."""
    return _EPOCH + dt.timedelta(days=int(week) * 7 + DAYS_EPOCH_TO_FIRST_MONDAY)


@njit(parallel=True, nogil=True, cache=True)
def week_and_reason(ms, ts_valid, rating, code, ts_min, ts_max, until_week, use_until):
    """Week of each row and the first reason it is set aside, in one pass.

    Reasons, in order (the first that applies): 0 null product (``code < 0``), 1 null time,
    2 time outside ``[ts_min, ts_max)``, 3 null rating (NaN), 4 rating outside [1, 5],
    5 week after ``until_week`` (when ``use_until``); -1 keeps the row. Returns
    ``(week int32, reason int8, rows set aside)``.
    """
    n = ms.shape[0]
    week = np.empty(n, dtype=np.int32)
    reason = np.empty(n, dtype=np.int8)
    bad = 0
    for i in prange(n):
        m = ms[i]
        w = _week(m)
        r = rating[i]
        why = -1
        if code[i] < 0:
            why = 0
        elif not ts_valid[i]:
            why = 1
        elif m < ts_min or m >= ts_max:
            why = 2
        elif r != r:
            why = 3
        elif r < 1.0 or r > 5.0:
            why = 4
        elif use_until and w > until_week:
            why = 5
        # out-of-range times would overflow int32 weeks; they are set aside anyway
        week[i] = w if why != 2 else 0
        reason[i] = why
        if why >= 0:
            bad += 1
    return week, reason, bad
