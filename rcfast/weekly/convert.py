"""Checking and converting one batch's Arrow columns into plain arrays for the kernels:
timestamps to epoch ms (with unit checks), numeric columns, and the values packed into rows.

Every problem names the file and column and says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rcfast.errors import InputError
from rcfast.kernels import aggregate
from rcfast.kernels.time import to_ms
from rcfast.schema import NORMALIZED_SCHEMA, PLAUSIBLE_MAX_MS, PLAUSIBLE_MIN_MS, parse_time_strings
from rcfast.weekly.read import WANTED, ReadOptions

#: Reasons a row is set aside, in the order they are checked (a row counts once, first reason).
REJECT_REASONS = (
    "null_product_id",
    "null_timestamp",
    "timestamp_out_of_range",
    "null_rating",
    "rating_out_of_range",
    "after_until",
)
_UNIT_FACTORS = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1_000_000)}


def timestamps_ms(path: Path, raw_name: str, col: pa.ChunkedArray,
                  unit: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Epoch ms (int64) and a validity mask, from timestamp, date, integer or string columns."""
    typ = col.type
    if pa.types.is_dictionary(typ):
        col = col.cast(typ.value_type)
        typ = col.type
    if pa.types.is_timestamp(typ):
        num, den = _UNIT_FACTORS[typ.unit]
        raw = col.cast(pa.int64())
    elif pa.types.is_date32(typ):
        num, den = 86_400_000, 1
        raw = col.cast(pa.int32()).cast(pa.int64())
    elif pa.types.is_date64(typ):
        num, den = 1, 1
        raw = col.cast(pa.int64())
    elif pa.types.is_integer(typ):
        u = unit or ("s" if raw_name == "unixReviewTime" else "ms")
        num, den = _UNIT_FACTORS[u]
        raw = col.cast(pa.int64())
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        raw = parse_time_strings(col)
        num, den = 1, 1
    else:
        raise InputError(f"{path}: column {raw_name!r} (timestamp) has type {typ}; expected a "
                         "timestamp, an integer epoch in ms, a date or a 'YYYY-MM-DD HH:MM:SS' "
                         "string")
    valid = raw.is_valid().to_numpy(zero_copy_only=False) if raw.null_count else None
    vals = raw.fill_null(0).to_numpy(zero_copy_only=False) if raw.null_count else \
        raw.to_numpy(zero_copy_only=False)
    vals = np.ascontiguousarray(vals, dtype=np.int64)
    ms = vals if (num, den) == (1, 1) else to_ms(vals, np.int64(num), np.int64(den))
    if valid is None:
        valid = np.ones(len(ms), dtype=bool)
    _check_unit(path, raw_name, ms[valid], typ)
    return ms, valid


def _check_unit(path: Path, name: str, ms: np.ndarray, typ: pa.DataType) -> None:
    if ms.size == 0:
        return
    sample = ms if ms.size <= 100_000 else ms[:: ms.size // 100_000]
    med = float(np.median(sample))
    lo, hi = PLAUSIBLE_MIN_MS, PLAUSIBLE_MAX_MS
    inside = float(np.mean((sample >= lo) & (sample < hi)))
    if inside >= 0.5 and not (7.9e8 <= med <= 4.2e9):
        return
    if med > hi and lo <= med / 1000 < hi:
        hint = (f"values look like milliseconds read as seconds (median lands in year "
                f"{1970 + med / 3.15576e10:.0f})")
    elif med > hi and lo <= med / 1e6 < hi:
        hint = "values look like microseconds read as milliseconds"
    elif 7.9e8 <= med <= 4.2e9:
        hint = ("values look like seconds read as milliseconds (they land in January 1970; "
                "as seconds they would be in 1995-2100)")
    else:
        return  # no unit explains it: out-of-range rows are set aside one by one
    raise InputError(f"{path}: column {name!r} (timestamp, type {typ}): {hint}. Fix the unit: "
                     "pass --timestamp-unit s|ms|us|ns for an integer column, or cast the "
                     "column to the right timestamp type")


def numeric(path: Path, name: str, fld: str, col: pa.ChunkedArray, dtype) -> pa.ChunkedArray:
    typ = col.type
    if pa.types.is_dictionary(typ):
        col = col.cast(typ.value_type)
        typ = col.type
    if fld == "helpful_votes" and (pa.types.is_list(typ) or pa.types.is_large_list(typ)):
        col = pc.list_element(col, 0)  # Amazon 2014 "helpful": [helpful, total]
        typ = col.type
    if fld == "helpful_votes" and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        try:  # Amazon 2018 "vote": "1,234"; 2014 "helpful" as text: "[1, 12]"
            pair = pc.struct_field(pc.extract_regex(col, r"^\s*\[\s*(?P<h>\d+)"), [0])
            plain = pc.replace_substring(col, ",", "")
            col = pc.if_else(pc.starts_with(col, "["), pair, plain).cast(pa.int64())
        except pa.ArrowInvalid as exc:
            raise InputError(f"{path}: column {name!r} ({fld}) holds text that is not a "
                             f"number: {exc}") from exc
        typ = col.type
    if fld == "verified" and not pa.types.is_boolean(typ):
        if pa.types.is_integer(typ):
            return col.cast(pa.int8())
        raise InputError(f"{path}: column {name!r} (verified) has type {typ}; expected bool")
    if fld != "verified" and not (pa.types.is_integer(typ) or pa.types.is_floating(typ)
                                  or pa.types.is_decimal(typ)):
        raise InputError(f"{path}: column {name!r} ({fld}) has type {typ}; expected a number. "
                         "Map the right column with --map, or convert it first")
    try:
        return col.cast(dtype)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: column {name!r} ({fld}) cannot be read as {dtype}: {exc}"
                         ) from exc


#: Column types read zero-copy from Arrow's buffers (others are cast first, with checks)
_INTS = {pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32()}
_RATINGS = _INTS | {pa.float32(), pa.float64()}
_NO_BITS = np.zeros(0, dtype=np.uint8)


@dataclass
class Piece:
    """Rows ``start:stop`` of a batch's column as Arrow lays them out: ``values`` from element
    ``at`` (for booleans a bitmap, from bit ``at``), an LSB-first validity bitmap from bit
    ``vat`` (empty when the rows hold no null)."""

    start: int
    stop: int
    values: np.ndarray
    at: int
    valid: np.ndarray
    vat: int


def column_pieces(col: pa.ChunkedArray) -> list[Piece]:
    """Zero-copy :class:`Piece` s of a numeric or boolean column, one per non-empty chunk."""
    out = []
    pos = 0
    boolean = pa.types.is_boolean(col.type)
    dtype = np.dtype(np.uint8) if boolean else np.dtype(col.type.to_pandas_dtype())
    for ch in col.chunks:
        n = len(ch)
        if n == 0:
            continue
        bufs = ch.buffers()
        vals = (np.frombuffer(bufs[1], dtype=dtype, count=bufs[1].size // dtype.itemsize)
                if bufs[1] is not None else np.zeros(0, dtype=dtype))  # all null
        if ch.null_count:
            valid = np.frombuffer(bufs[0], dtype=np.uint8)
        else:
            valid = _NO_BITS
        out.append(Piece(pos, pos + n, vals, ch.offset, valid, ch.offset))
        pos += n
    return out


@dataclass
class BatchArrays:
    """One batch's columns, checked: times as plain arrays, the values packed into rows
    (:meth:`pack`) as :class:`Piece` s (None: the column is absent)."""

    ms: np.ndarray
    ts_valid: np.ndarray
    n: int
    rating: list[Piece]
    helpful: list[Piece] | None
    verified: list[Piece] | None
    text_len: list[Piece] | None
    product_chunks: list[pa.Array]

    def pack(self, rows: np.ndarray, pos: int) -> tuple[int, int]:
        """Write the batch's rows into ``rows[pos:pos + n]`` (:func:`aggregate.pack_columns`);
        return the least and greatest text length."""
        cols = (self.rating, self.helpful, self.verified, self.text_len)
        cuts = sorted({0, self.n} | {p.start for c in cols if c for p in c})
        lo = hi = 0
        idx = [0, 0, 0, 0]
        empty = np.zeros(0, dtype=np.int64)
        for a, b in zip(cuts[:-1], cuts[1:]):
            args = []
            for j, c in enumerate(cols):
                if not c:  # absent: all null
                    args.append((empty if j != 2 else _NO_BITS, 0, _NO_BITS, 0))
                    continue
                while c[idx[j]].stop <= a:
                    idx[j] += 1
                p = c[idx[j]]
                args.append((p.values, p.at + a - p.start, p.valid, p.vat + a - p.start))
            lo_s, hi_s = aggregate.pack_columns(rows, pos + a, b - a, *args)
            lo, hi = min(lo, lo_s), max(hi, hi_s)
        return lo, hi


def _value_pieces(path: Path, raw: str, fld: str, col: pa.ChunkedArray, fast: set,
                  dtype) -> list[Piece]:
    if col.type not in fast:
        col = numeric(path, raw, fld, col, dtype)  # checks the type, casts safely
    return column_pieces(col)


#: The type a column of Arrow type ``null`` is read as (its normalized type): such a column
#: holds only nulls (pandas writes an all-None column so), which the spec's null rules cover.
_NULL_AS = {f: NORMALIZED_SCHEMA.field(f).type for f in WANTED}


#: Arrow's view layouts (Polars exports strings so) read as the classic ones.
_VIEW_AS = {"string_view": pa.large_string(), "binary_view": pa.large_binary()}


def convert_batch(path: Path, cols: dict[str, pa.ChunkedArray], colmap: dict[str, str],
                  opts: ReadOptions) -> BatchArrays:
    """Check types and units of one batch's columns; plain arrays for the times, zero-copy
    views of the values wherever Arrow's layout allows."""
    cols = {f: c.cast(_NULL_AS[f]) if pa.types.is_null(c.type) and f in _NULL_AS else
            c.cast(_VIEW_AS[str(c.type)]) if str(c.type) in _VIEW_AS else c
            for f, c in cols.items()}
    n = len(cols["product_id"])
    pid = cols["product_id"]
    typ = pid.type
    value_type = typ.value_type if pa.types.is_dictionary(typ) else typ
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        if pa.types.is_integer(typ) or pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
            pid = pid.cast(pa.string())
        else:
            raise InputError(f"{path}: column {colmap['product_id']!r} (product_id) has type "
                             f"{typ}; expected a string")
    ms, ts_valid = timestamps_ms(path, colmap["timestamp"], cols["timestamp"],
                                 opts.timestamp_unit)
    rating = _value_pieces(path, colmap["rating"], "rating", cols["rating"], _RATINGS,
                           pa.float64())
    helpful = text_len = verified = None
    if "helpful_votes" in cols:
        helpful = _value_pieces(path, colmap["helpful_votes"], "helpful_votes",
                                cols["helpful_votes"], _INTS, pa.int64())
    if "text_len" in cols:
        text_len = _value_pieces(path, colmap["text_len"], "text_len", cols["text_len"],
                                 _INTS, pa.int64())
    if "verified" in cols:
        v = cols["verified"]
        if not pa.types.is_boolean(v.type):  # integer flags: > 0 true, 0 false, < 0 null
            v = numeric(path, colmap["verified"], "verified", v, pa.int8())
            v = pc.if_else(pc.less(v, 0), pa.scalar(None, pa.bool_()), pc.greater(v, 0))
        verified = column_pieces(v)
    return BatchArrays(ms, ts_valid, n, rating, helpful, verified, text_len, list(pid.chunks))
