"""Parsing the weekly step's options (lists of windows and lags, the --until date)."""

from __future__ import annotations

import datetime as dt

from rcfast.errors import InputError
from rcfast.kernels.time import MONDAY_SHIFT_MS, MS_PER_WEEK


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"--{what} expects comma-separated positive integers, got {text!r}"
                         ) from None
    if not vals or any(v < 1 for v in vals):
        raise InputError(f"--{what} expects comma-separated positive integers, got {text!r}")
    if len(set(vals)) != len(vals):
        raise InputError(f"--{what} {text!r} names a value twice; each gives its own columns")
    return vals


def parse_until(text: str) -> int:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--until expects a date YYYY-MM-DD, got {text!r}") from None
    ms = (day - dt.date(1970, 1, 1)).days * 86_400_000
    return (ms + MONDAY_SHIFT_MS) // MS_PER_WEEK

