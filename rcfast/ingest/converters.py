"""Arrow column converters: a field's raw column(s) taken from a table of raw records, and any
raw column type a format yields (numbers, CSV strings, the 2014 ``[helpful, total]`` lists, dates
and epochs in any unit) turned into the normalized field's type, with a mask of the values that
are present but unreadable instead of an exception."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rcfast.schema import TIME_FORMATS, TS_MAX_MS, TS_MIN_MS, parse_time_strings

_INT32_MAX = 2**31 - 1


def _col(table: pa.Table, names: list[str]) -> pa.Array | _CoalescedColumns | None:
    """The listed raw columns that are present, as one array.

    Several columns of one type are coalesced in order (Amazon 2023: ``parent_asin``, then
    ``asin``); of different types (2018 ``vote`` strings, 2014 ``helpful`` lists) they come back
    as a :class:`_CoalescedColumns` for the converter to coalesce after converting each.
    """
    arrs = []
    for n in names:
        if n in table.column_names:
            c = table.column(n)
            arrs.append(c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c)
    if not arrs:
        return None
    if len(arrs) == 1:
        return arrs[0]
    if all(a.type == arrs[0].type for a in arrs):
        return pc.coalesce(*arrs)
    return _CoalescedColumns(arrs)


class _CoalescedColumns(list):
    """Several raw columns of different types for one field, coalesced after conversion."""


_NUM_RE = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def _is_textual(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _plain(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        arr = arr.cast(pa.string())
    return arr


def to_string(arr: pa.Array) -> pa.Array:
    arr = _plain(arr)
    if pa.types.is_string(arr.type):
        return arr
    return arr.cast(pa.string())


def to_float(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """float64 values and a mask of present-but-unreadable values."""
    arr = _plain(arr)
    n = len(arr)
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type) or pa.types.is_decimal(
        arr.type
    ):
        return arr.cast(pa.float64()), np.zeros(n, dtype=np.bool_)
    if pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type):
        return arr.cast(pa.float64()), np.zeros(n, dtype=np.bool_)
    if _is_textual(arr.type):
        trimmed = pc.utf8_trim_whitespace(arr)
        empty = pc.equal(pc.utf8_length(trimmed), 0)
        trimmed = pc.if_else(empty, pa.scalar(None, pa.string()), trimmed)
        ok = pc.match_substring_regex(trimmed, _NUM_RE)
        good = pc.if_else(ok, trimmed, pa.scalar(None, pa.string()))
        bad = pc.and_(pc.is_valid(trimmed), pc.invert(pc.fill_null(ok, False)))
        return good.cast(pa.float64()), bad.to_numpy(zero_copy_only=False)
    raise TypeError(f"cannot read {arr.type} as a number")


def to_int_checked(arr: pa.Array | _CoalescedColumns) -> tuple[pa.Array, np.ndarray]:
    """int64 counts (helpful votes, text lengths) from ints, floats, "1,234" strings or a
    [helpful, total] list, and a mask of values that are present but no whole number that fits
    32 bits (text like "abc", 3e9, 1.5): quarantined, never silently 0 or wrapped around."""
    if isinstance(arr, _CoalescedColumns):
        parts = [to_int_checked(a) for a in arr]
        out = pc.coalesce(*[p[0] for p in parts])
        bad = np.zeros(len(out), dtype=np.bool_)
        taken = np.zeros(len(out), dtype=np.bool_)
        for v, b in parts:  # judged by the first column where the row has a value
            present = v.is_valid().to_numpy(zero_copy_only=False) | b
            bad |= b & ~taken
            taken |= present
        return out, bad
    arr = _plain(arr)
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        # [helpful, total]: the first element, judged as a value of its own
        offsets = np.asarray(arr.offsets)
        values, vbad = to_int_checked(arr.values.slice(0))
        has = (offsets[1:] > offsets[:-1]) & arr.is_valid().to_numpy(zero_copy_only=False)
        idx = offsets[:-1][has]
        first = np.zeros(len(arr), dtype=np.int64)
        valid = np.zeros(len(arr), dtype=np.bool_)
        bad = np.zeros(len(arr), dtype=np.bool_)
        if idx.size:
            v = values.fill_null(0).to_numpy(zero_copy_only=False)
            first[has] = v[idx]
            valid[has] = values.is_valid().to_numpy(zero_copy_only=False)[idx]
            bad[has] = vbad[idx]
        return pa.array(first, mask=~valid), bad
    vals = _to_int(arr)
    v = vals.to_numpy(zero_copy_only=False) if vals.null_count == 0 else \
        vals.fill_null(0).to_numpy(zero_copy_only=False)
    bad = (v > _INT32_MAX) | (v < -_INT32_MAX - 1)
    if pa.types.is_floating(arr.type):
        f = arr.fill_null(0).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            bad |= ~np.isfinite(f) | (np.floor(f) != f) | (np.abs(f) > 2.0**31)
    elif _is_textual(arr.type):
        present = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0),
                               False)
        bad |= (pc.and_(present, pc.is_null(vals))).to_numpy(zero_copy_only=False)
    return vals, bad


def _to_int(arr: pa.Array) -> pa.Array:
    if pa.types.is_integer(arr.type):
        return arr.cast(pa.int64())
    if pa.types.is_floating(arr.type):
        f = pc.if_else(pc.less(pc.abs(arr), 2.0**62), arr, None)  # no wrap-around below
        return pc.floor(f).cast(pa.int64(), safe=False)
    if pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type):
        return arr.cast(pa.int64())
    if _is_textual(arr.type):
        # a whole number ("1,234" with thousands separators) or a "[helpful, total]" list;
        # anything else ("12.5", "12 abc") is null here and flagged by to_int_checked
        t = pc.utf8_trim_whitespace(arr)
        lst = pc.extract_regex(t, r"^\[\s*(?P<v>[-+]?\d{1,18})\s*(?:,.*)?\]$")
        num = pc.extract_regex(pc.replace_substring(t, ",", ""), r"^(?P<v>[-+]?\d{1,18})$")
        v = pc.coalesce(pc.struct_field(lst, "v"), pc.struct_field(num, "v"))
        return v.cast(pa.int64())
    raise TypeError(f"cannot read {arr.type} as a count")


def to_bool(arr: pa.Array) -> pa.Array:
    arr = _plain(arr)
    if pa.types.is_boolean(arr.type):
        return arr
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        return pc.not_equal(arr, 0)
    if pa.types.is_null(arr.type):
        return arr.cast(pa.bool_())
    if _is_textual(arr.type):
        low = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
        t = pc.is_in(low, value_set=pa.array(["true", "t", "1", "y", "yes"]))
        f = pc.is_in(low, value_set=pa.array(["false", "f", "0", "n", "no"]))
        return pc.if_else(t, True, pc.if_else(f, False, pa.scalar(None, pa.bool_())))
    raise TypeError(f"cannot read {arr.type} as a flag")


# the weekly step's forms, and the 2014/2018 dumps' `reviewTime` ("09 18, 2004")
_DATE_FORMATS = (*TIME_FORMATS, "%m %d, %Y")

# |value| below this is taken as seconds by the "auto" unit: 1e11 s is the year 5138, 1e11 ms
# is March 1973, before any online review.
_AUTO_SECONDS_BELOW = 1e11


_HUGE_MS = 2.0**62  # beyond any valid time; such values are nulled before int64 arithmetic


def _epoch_to_ms(values: pa.Array, unit: str) -> tuple[pa.Array, np.ndarray]:
    """int/float epoch values in ``unit`` → int64 ms, and a mask of values too large for any
    time (null in the result): they are flagged, never wrapped around into a wrong date."""
    x = values.cast(pa.float64(), safe=False)  # approximate above 2^53: only for the range check
    if unit == "auto":
        x = pc.if_else(pc.less(pc.abs(x), _AUTO_SECONDS_BELOW), pc.multiply(x, 1000.0), x)
    elif unit == "s":
        x = pc.multiply(x, 1000.0)
    fits = pc.less(pc.abs(x), _HUGE_MS)  # null stays null; NaN and inf do not fit
    huge = pc.invert(fits).fill_null(False).to_numpy(zero_copy_only=False)
    if pa.types.is_integer(values.type) and unit != "auto":
        exact = pc.if_else(fits, values, None).cast(pa.int64(), safe=False)
        return (exact if unit == "ms" else pc.multiply(exact, 1000)), huge
    return pc.floor(pc.if_else(fits, x, None)).cast(pa.int64(), safe=False), huge


def to_timestamp_ms(arr: pa.Array, unit: str) -> tuple[pa.Array, np.ndarray]:
    """int64 epoch ms, a mask of present-but-unparseable values and a mask of times outside
    ``[TS_MIN_MS, TS_MAX_MS)`` (null in the result)."""
    ms, bad, huge = _timestamp_ms(_plain(arr), unit)
    valid = ms.is_valid().to_numpy(zero_copy_only=False)
    v = ms.fill_null(0).to_numpy(zero_copy_only=False)
    out = huge | (valid & ((v < TS_MIN_MS) | (v >= TS_MAX_MS)))
    if out.any():
        ms = pc.if_else(pa.array(out), None, ms)
    return ms, bad, out


def _timestamp_ms(arr: pa.Array, unit: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    n = len(arr)
    none = np.zeros(n, dtype=np.bool_)
    t = arr.type
    if pa.types.is_timestamp(t):
        raw = arr.cast(pa.int64())
        if t.unit == "s":
            ms, huge = _epoch_to_ms(raw, "s")
            return ms, none, huge
        per_ms = {"ms": 1, "us": 1000, "ns": 1_000_000}[t.unit]
        if per_ms == 1:
            return raw, none, none
        v = raw.fill_null(0).to_numpy(zero_copy_only=False) // per_ms  # floor, also before 1970
        return pa.array(v, mask=raw.is_null().to_numpy(zero_copy_only=False)), none, none
    if pa.types.is_date(t):
        return arr.cast(pa.timestamp("ms")).cast(pa.int64()), none, none
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        ms, huge = _epoch_to_ms(arr, unit)
        return ms, none, huge
    if pa.types.is_null(t):
        return arr.cast(pa.int64()), none, none
    if _is_textual(t):
        trimmed = pc.utf8_trim_whitespace(arr)
        # an empty field is a missing time (missing_required_field), not an unreadable one
        trimmed = pc.if_else(pc.equal(pc.utf8_length(trimmed), 0), None, trimmed)
        numeric = pc.fill_null(pc.match_substring_regex(trimmed, _NUM_RE), False)
        out = pc.if_else(numeric, trimmed, pa.scalar(None, pa.string()))
        result, huge = _epoch_to_ms(out.cast(pa.float64()), unit)
        rest = pc.if_else(numeric, pa.scalar(None, pa.string()), trimmed)
        if rest.null_count < n:
            result = pc.coalesce(result, parse_time_strings(rest, _DATE_FORMATS))
        bad = pc.and_(pc.is_valid(trimmed), pc.is_null(result)).to_numpy(zero_copy_only=False)
        return result, bad & ~huge, huge
    raise TypeError(f"cannot read {t} as a timestamp")
