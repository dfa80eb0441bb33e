"""Per-format reading plans and the vectorized normalization into the normalized review table.

Every format goes through the same :func:`normalize`: a plan names, for each normalized field,
the raw column(s) it comes from and how to read them (timestamp unit, vote strings, ...), and the
converters below accept whatever Arrow type the raw column has (numbers, strings from CSV, lists
for the 2014 ``helpful`` pair). Rows that cannot be normalized get a reject code instead of
raising, so one bad row never costs its block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rcfast.kernels import json_fields
from rcfast.kernels.hashing import fnv_hash_numpy
from rcfast.schema import (
    ALIASES,
    FIELDS,
    NORMALIZED_SCHEMA,
    TIME_FORMATS,
    TS_MAX_MS,
    TS_MIN_MS,
    parse_time_strings,
)

from rcfast.errors import InputError

from .sources import Detected

TEXT_ALIASES = ("text", "reviewText", "review_text", "body")

#: reject code → (reason, detail); 0 means the row is kept.
REJECTS: dict[int, tuple[str, str]] = {
    1: ("missing_required_field", "product_id is missing or empty"),
    2: ("missing_required_field", "timestamp is missing"),
    3: ("missing_required_field", "rating is missing"),
    4: ("unparseable_timestamp", "timestamp cannot be read as a date"),
    5: ("rating_out_of_range", "rating is outside [1, 5]"),
    6: ("wrong_type", "rating is not a number"),
    7: ("timestamp_out_of_range",
        "timestamp is outside 1677-09-27 .. 2262-04-11 (no nanosecond timestamp holds it; "
        "is it in another unit? see --timestamp-unit)"),
    8: ("wrong_type", "helpful_votes is not a whole number that fits 32 bits"),
    9: ("wrong_type", "text_len is not a whole number that fits 32 bits"),
}

_INT32_MAX = 2**31 - 1

#: line-level reasons (the record never became a row)
LINE_REASONS = (
    "malformed_json",
    "invalid_utf8",
    "wrong_type",
    "bad_csv_row",
    "truncated_stream",
)

# JSON type used for a column the plan reads; pyarrow's JSON reader needs it up front so that
# every block gets the same schema (and only these columns are materialized).
_FIELD_JSON_TYPE = {
    "product_id": pa.string(),
    "user_id": pa.string(),
    "timestamp": pa.int64(),
    "rating": pa.float64(),
    "helpful_votes": pa.int64(),
    "verified": pa.bool_(),
    "text_len": pa.int64(),
    "category": pa.string(),
    "text": pa.string(),
}

_KNOWN_JSON: dict[str, dict] = {
    "amazon2023": {
        "schema": [
            ("parent_asin", pa.string()),
            ("asin", pa.string()),
            ("user_id", pa.string()),
            ("timestamp", pa.int64()),
            ("rating", pa.float64()),
            ("helpful_vote", pa.int64()),
            ("verified_purchase", pa.bool_()),
            ("text", pa.string()),
        ],
        "sources": {
            "product_id": ["parent_asin", "asin"],
            "user_id": ["user_id"],
            "timestamp": ["timestamp"],
            "rating": ["rating"],
            "helpful_votes": ["helpful_vote"],
            "verified": ["verified_purchase"],
            "text": ["text"],
        },
        "ts_unit": "ms",
    },
    "legacy": {
        "schema": [
            ("asin", pa.string()),
            ("reviewerID", pa.string()),
            ("unixReviewTime", pa.int64()),
            ("overall", pa.float64()),
            ("vote", pa.string()),
            ("helpful", pa.list_(pa.int64())),
            ("verified", pa.bool_()),
            ("reviewText", pa.string()),
        ],
        "sources": {
            "product_id": ["asin"],
            "user_id": ["reviewerID"],
            "timestamp": ["unixReviewTime"],
            "rating": ["overall"],
            # 2018 has "vote" (absent = no votes), 2014 has helpful = [helpful, total]
            "helpful_votes": ["vote", "helpful"],
            "verified": ["verified"],
            "text": ["reviewText"],
        },
        "ts_unit": "s",
    },
    "yelp": {
        "schema": [
            ("business_id", pa.string()),
            ("user_id", pa.string()),
            ("date", pa.string()),
            ("stars", pa.float64()),
            ("useful", pa.int64()),
            ("text", pa.string()),
        ],
        "sources": {
            "product_id": ["business_id"],
            "user_id": ["user_id"],
            "timestamp": ["date"],
            "rating": ["stars"],
            "helpful_votes": ["useful"],
            "text": ["text"],
        },
        "ts_unit": "auto",
    },
}
_KNOWN_JSON["amazon2018"] = _KNOWN_JSON["legacy"]
_KNOWN_JSON["amazon2014"] = _KNOWN_JSON["legacy"]

_2014_CSV_SOURCES = {
    "product_id": ["asin"],
    "user_id": ["reviewerID"],
    "timestamp": ["unixReviewTime"],
    "rating": ["overall"],
    "helpful_votes": ["helpful"],
    "text": ["reviewText"],
}

# fields whose missing value means zero in the source data, not "unknown"
_ZERO_DEFAULT = {"amazon2023", "amazon2018", "amazon2014", "amazon2014-csv", "yelp"}


@dataclass
class Plan:
    """How to turn one file's raw records into normalized rows."""

    format: str
    kind: str  #: json | csv | parquet
    sources: dict[str, list[str]]
    ts_unit: str  #: ms | s | auto
    category: str | None  #: constant category when no category column is read
    keep_text: bool
    json_schema: pa.Schema | None = None
    csv_columns: list[str] = field(default_factory=list)
    csv_has_header: bool = False
    delimiter: str = ","
    helpful_zero: bool = False
    scan: ScanSpec | None = None  #: Numba fast path for JSON lines, when the fields allow it

    @property
    def read_columns(self) -> list[str]:
        cols: list[str] = []
        for names in self.sources.values():
            for n in names:
                if n not in cols:
                    cols.append(n)
        return cols


def _resolve(available: list[str], mapping: dict[str, str], what: str) -> dict[str, list[str]]:
    """Pick the raw column of each field: --map, then the field's own name, then its aliases."""
    avail = set(available)
    sources: dict[str, list[str]] = {}
    for f in (*FIELDS, "text"):
        if f in mapping:
            if available and mapping[f] not in avail:
                raise InputError(
                    f"{what}: --map {f}={mapping[f]}: no column {mapping[f]!r} "
                    f"(columns: {', '.join(available[:30])})"
                )
            sources[f] = [mapping[f]]
            continue
        candidates = (f, *(TEXT_ALIASES if f == "text" else ALIASES.get(f, ())))
        for c in candidates:
            if c in avail:
                sources[f] = [c]
                break
    missing = [f for f in ("product_id", "timestamp", "rating") if f not in sources]
    if missing:
        raise InputError(
            f"{what}: no column for required field(s) {', '.join(missing)}; "
            f"columns are {', '.join(available[:30])}; use --map FIELD=COLUMN"
        )
    return sources


def make_plan(
    det: Detected,
    mapping: dict[str, str],
    *,
    category: str | None,
    keep_text: bool,
    ts_unit: str | None,
    file_category: str,
    parquet_columns: list[str] | None = None,
    json_sample_schema: pa.Schema | None = None,
) -> Plan:
    fmt = det.format
    known_cols = det.columns if fmt in ("amazon2014-csv", "csv", "tsv") else det.sample_keys
    if fmt in _KNOWN_JSON or fmt == "amazon2014-csv":
        for f, col in mapping.items():
            if known_cols and col not in known_cols:
                raise InputError(
                    f"{det.path}: --map {f}={col}: no column {col!r} in the file's first lines "
                    f"(seen: {', '.join(known_cols[:30])})"
                )
    if fmt == "empty":  # no records will come; any JSON plan reads nothing
        return Plan(fmt, "json", {k: list(v) for k, v in _KNOWN_JSON["amazon2023"]["sources"]
                                  .items()}, "ms", category or file_category, keep_text,
                    json_schema=pa.schema(_KNOWN_JSON["amazon2023"]["schema"]))
    if fmt in _KNOWN_JSON:
        spec = _KNOWN_JSON[fmt]
        sources = {k: list(v) for k, v in spec["sources"].items()}
        schema_fields = dict(spec["schema"])
        for f, col in mapping.items():
            sources[f] = [col]
            schema_fields.setdefault(col, _FIELD_JSON_TYPE[f])
        plan = Plan(fmt, "json", sources, ts_unit or spec["ts_unit"], None, keep_text,
                    helpful_zero=True)
        plan.json_schema = pa.schema([(n, t) for n, t in schema_fields.items()
                                      if n in plan.read_columns])
    elif fmt == "jsonl":
        available = list(json_sample_schema.names) if json_sample_schema is not None else []
        sources = _resolve(available or det.sample_keys, mapping, det.path)
        plan = Plan(fmt, "json", sources, ts_unit or "auto", None, keep_text)
        types = {}
        for f, cols in sources.items():
            for c in cols:
                t = None
                if json_sample_schema is not None and c in json_sample_schema.names:
                    t = json_sample_schema.field(c).type
                    if pa.types.is_null(t):
                        t = None
                types[c] = t or _FIELD_JSON_TYPE[f]
        plan.json_schema = pa.schema(list(types.items()))
    elif fmt == "amazon2014-csv":
        sources = {k: list(v) for k, v in _2014_CSV_SOURCES.items()}
        for f, col in mapping.items():
            sources[f] = [col]
        plan = Plan(fmt, "csv", sources, ts_unit or "s", None, keep_text,
                    csv_columns=list(det.columns), delimiter=",", helpful_zero=True)
    elif fmt in ("csv", "tsv"):
        sources = _resolve(det.columns, mapping, det.path)
        plan = Plan(fmt, "csv", sources, ts_unit or "auto", None, keep_text,
                    csv_columns=list(det.columns), csv_has_header=det.has_header,
                    delimiter=det.delimiter)
    elif fmt == "parquet":
        sources = _resolve(parquet_columns or [], mapping, det.path)
        plan = Plan(fmt, "parquet", sources, ts_unit or "auto", None, keep_text)
    else:  # pragma: no cover - FORMATS is closed
        raise InputError(f"unknown format {fmt}")
    if plan.ts_unit == "auto" and plan.sources["timestamp"] == ["unixReviewTime"]:
        plan.ts_unit = "s"
    if "category" not in plan.sources:
        plan.category = category if category is not None else file_category
    elif category is not None:
        del plan.sources["category"]
        plan.category = category
    if plan.json_schema is not None:
        plan.json_schema = pa.schema(
            [f for f in plan.json_schema if f.name in plan.read_columns]
        )
        plan.scan = _scan_spec(plan)
    return plan


@dataclass
class ScanSpec:
    """Wanted keys of the JSON scanner (:mod:`rcfast.kernels.ingest_json`)."""

    names: list[str]
    kinds: np.ndarray
    key_blob: np.ndarray
    key_offsets: np.ndarray
    key_len: np.ndarray
    key_words: np.ndarray
    key_masks: np.ndarray

    @property
    def args(self) -> tuple:
        """The key arguments of :func:`rcfast.kernels.ingest_json.scan_jsonl`."""
        return (self.key_blob, self.key_offsets, self.kinds, self.key_len, self.key_words,
                self.key_masks)


def _scan_spec(plan: Plan) -> ScanSpec | None:

    if plan.keep_text:
        return None  # the text itself is wanted: pyarrow builds it
    text_cols = plan.sources.get("text", [])
    names, kinds = [], []
    for f in plan.json_schema:
        t = f.type
        if f.name in text_cols and pa.types.is_string(t):
            kind = json_fields.KIND_TEXT
        elif pa.types.is_string(t):
            kind = json_fields.KIND_STR
        elif t == pa.int64():
            kind = json_fields.KIND_INT
        elif t == pa.float64():
            kind = json_fields.KIND_FLOAT
        elif pa.types.is_boolean(t):
            kind = json_fields.KIND_BOOL
        elif pa.types.is_list(t) and t.value_type == pa.int64():
            kind = json_fields.KIND_LIST_FIRST
        else:
            return None
        names.append(f.name)
        kinds.append(kind)
    if sum(k == json_fields.KIND_TEXT for k in kinds) > 1:
        return None
    encoded = [n.encode() for n in names]
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    offs = np.cumsum([0] + [len(e) for e in encoded]).astype(np.int64)
    return ScanSpec(names, np.array(kinds, dtype=np.uint8), blob, offs,
                    *json_fields.key_words(blob, offs))


# ----------------------------------------------------------------------------- converters


def _string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets int64, data uint8, valid bool) of a string array, slices honoured."""
    if pa.types.is_large_string(arr.type):
        odt = np.int64
    else:
        arr = arr.cast(pa.string()) if not pa.types.is_string(arr.type) else arr
        odt = np.int32
    bufs = arr.buffers()
    n = len(arr)
    offsets = np.frombuffer(bufs[1], dtype=odt)[arr.offset : arr.offset + n + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
    else:
        valid = np.ones(n, dtype=np.bool_)
    return offsets, data, valid


def hash_strings(arr: pa.Array, *, short: bool = False) -> np.ndarray:
    """Stable 64-bit hash per string (0 for null); see :mod:`rcfast.kernels.ingest_hash`.

    ``short`` (ids): the numpy version, no JIT start-up; otherwise the Numba kernel (texts).
    """
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets, data, valid = _string_buffers(arr)
    if short:
        return fnv_hash_numpy(offsets, data, valid)
    from rcfast.kernels.ingest_hash import fnv_hash_strings

    return fnv_hash_strings(offsets, data, valid)


def text_hashes(arr: pa.Array) -> np.ndarray:
    """Text hash per string (0 for null), as the JSON scanner computes it (ingest_hash)."""
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets, data, valid = _string_buffers(arr)
    from rcfast.kernels.ingest_hash import text_hash_strings

    return text_hash_strings(offsets, data, valid)


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


@dataclass
class Normalized:
    table: pa.Table  #: normalized columns (+ text when kept) + _text_hash
    reject: np.ndarray  #: int8 reject code per input row (0 = kept)


def normalize(raw: pa.Table, plan: Plan) -> Normalized:
    """Raw columns → normalized columns (all rows) and a reject code per row."""
    n = raw.num_rows
    reject = np.zeros(n, dtype=np.int8)

    def mark(mask: np.ndarray, code: int) -> None:
        np.copyto(reject, np.int8(code), where=mask & (reject == 0))

    src = plan.sources
    prod = _col(raw, src["product_id"])
    if isinstance(prod, _CoalescedColumns):
        prod = pc.coalesce(*[to_string(a) for a in prod])
    prod = to_string(prod) if prod is not None else pa.nulls(n, pa.string())
    mark(pc.fill_null(pc.equal(pc.utf8_length(prod), 0), True).to_numpy(zero_copy_only=False), 1)

    ts_raw = _col(raw, src["timestamp"])
    ts, ts_bad, ts_out = to_timestamp_ms(ts_raw, plan.ts_unit)
    mark(ts_bad, 4)
    mark(ts_out, 7)
    mark(ts.is_null().to_numpy(zero_copy_only=False), 2)

    rating, rating_bad = to_float(_col(raw, src["rating"]))
    mark(rating_bad, 6)
    mark(rating.is_null().to_numpy(zero_copy_only=False), 3)
    in_range = pc.and_(pc.greater_equal(rating, 1.0), pc.less_equal(rating, 5.0))
    mark(~pc.fill_null(in_range, True).to_numpy(zero_copy_only=False), 5)

    cols: dict[str, pa.Array] = {
        "product_id": prod,
        "timestamp": ts.cast(pa.timestamp("ms", tz="UTC")),
        "rating": rating.cast(pa.float32(), safe=False),
    }
    user = _col(raw, src.get("user_id", []))
    cols["user_id"] = to_string(user) if user is not None else pa.nulls(n, pa.string())

    helpful = _col(raw, src.get("helpful_votes", []))
    if helpful is not None:
        hv, hv_bad = to_int_checked(helpful)
        mark(hv_bad, 8)
        if plan.helpful_zero:
            hv = hv.fill_null(0)
        cols["helpful_votes"] = hv.cast(pa.int32(), safe=False)  # bad rows are set aside
    else:
        cols["helpful_votes"] = pa.nulls(n, pa.int32())

    verified = _col(raw, src.get("verified", []))
    cols["verified"] = to_bool(verified) if verified is not None else pa.nulls(n, pa.bool_())

    text = _col(raw, src.get("text", []))
    if "__text_len" in raw.column_names:  # the JSON scanner measured and hashed the text
        cols["text_len"] = raw.column("__text_len").combine_chunks().cast(pa.int32())
        text_hash = raw.column("__text_hash").combine_chunks().to_numpy()
    elif text is not None:
        text = to_string(text)
        cols["text_len"] = pc.utf8_length(text).cast(pa.int32())
        text_hash = text_hashes(text)
    else:
        tl = _col(raw, src.get("text_len", []))
        if tl is not None:
            tlv, tl_bad = to_int_checked(tl)
            mark(tl_bad, 9)
            cols["text_len"] = tlv.cast(pa.int32(), safe=False)
        else:
            cols["text_len"] = pa.nulls(n, pa.int32())
        text_hash = np.zeros(n, dtype=np.uint64)

    cat = _col(raw, src.get("category", []))
    if cat is not None:
        cols["category"] = to_string(cat)
    else:
        cols["category"] = (pa.repeat(pa.scalar(plan.category, pa.string()), n)
                            if plan.category else pa.nulls(n, pa.string()))

    arrays = [cols[f.name] for f in NORMALIZED_SCHEMA]
    names = list(NORMALIZED_SCHEMA.names)
    fields = [pa.field(f.name, f.type) for f in NORMALIZED_SCHEMA]
    if plan.keep_text:
        arrays.append(text if text is not None else pa.nulls(n, pa.string()))
        names.append("text")
        fields.append(pa.field("text", pa.string()))
    arrays.append(pa.array(text_hash, pa.uint64()))
    fields.append(pa.field("_text_hash", pa.uint64()))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    return Normalized(table, reject)


def output_schema(keep_text: bool) -> pa.Schema:
    fields = list(NORMALIZED_SCHEMA)
    if keep_text:
        fields.append(pa.field("text", pa.string()))
    return pa.schema(fields)
