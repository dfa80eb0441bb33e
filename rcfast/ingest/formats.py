"""Per-format reading plans: for one input file, which raw column(s) each normalized field comes
from, how to read them (JSON schema, CSV columns, timestamp unit, ...) and whether the Numba JSON
scanner can read them. The known dumps (Amazon 2014/2018/2023, Yelp) have fixed layouts; generic
JSON lines, CSV/TSV and Parquet are resolved by column name, ``--map`` first.

The plan is carried out by :func:`rcfast.ingest.normalize.normalize`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson

from rcfast.errors import InputError
from rcfast.kernels import json_fields
from rcfast.schema import ALIASES, FIELDS

from .sources import Detected, peek

TEXT_ALIASES = ("text", "reviewText", "review_text", "body")

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


@dataclass(frozen=True)
class _JsonLayout:
    """A known JSON-lines dump: the raw column(s) of each field, in the order they are read."""

    sources: dict[str, list[str]]
    ts_unit: str  #: ms | s | auto
    #: raw columns whose JSON type is not their field's usual one (``_FIELD_JSON_TYPE``)
    types: dict[str, pa.DataType] = field(default_factory=dict)

    @property
    def schema(self) -> list[tuple[str, pa.DataType]]:
        """(raw column, JSON type) of every column the layout reads."""
        return [(c, self.types.get(c, _FIELD_JSON_TYPE[f]))
                for f, cols in self.sources.items() for c in cols]


_KNOWN_JSON: dict[str, _JsonLayout] = {
    "amazon2023": _JsonLayout(
        sources={
            "product_id": ["parent_asin", "asin"],
            "user_id": ["user_id"],
            "timestamp": ["timestamp"],
            "rating": ["rating"],
            "helpful_votes": ["helpful_vote"],
            "verified": ["verified_purchase"],
            "text": ["text"],
        },
        ts_unit="ms",
    ),
    "legacy": _JsonLayout(
        sources={
            "product_id": ["asin"],
            "user_id": ["reviewerID"],
            "timestamp": ["unixReviewTime"],
            "rating": ["overall"],
            # 2018 has "vote" (absent = no votes), 2014 has helpful = [helpful, total]
            "helpful_votes": ["vote", "helpful"],
            "verified": ["verified"],
            "text": ["reviewText"],
        },
        ts_unit="s",
        types={"vote": pa.string(), "helpful": pa.list_(pa.int64())},
    ),
    "yelp": _JsonLayout(
        sources={
            "product_id": ["business_id"],
            "user_id": ["user_id"],
            "timestamp": ["date"],
            "rating": ["stars"],
            "helpful_votes": ["useful"],
            "text": ["text"],
        },
        ts_unit="auto",
        types={"date": pa.string()},
    ),
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
        return Plan(fmt, "json", {k: list(v) for k, v in _KNOWN_JSON["amazon2023"].sources
                                  .items()}, "ms", category or file_category, keep_text,
                    json_schema=pa.schema(_KNOWN_JSON["amazon2023"].schema))
    if fmt in _KNOWN_JSON:
        spec = _KNOWN_JSON[fmt]
        sources = {k: list(v) for k, v in spec.sources.items()}
        schema_fields = dict(spec.schema)
        for f, col in mapping.items():
            sources[f] = [col]
            schema_fields.setdefault(col, _FIELD_JSON_TYPE[f])
        plan = Plan(fmt, "json", sources, ts_unit or spec.ts_unit, None, keep_text,
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


def _json_sample_schema(det: Detected) -> pa.Schema | None:
    """The JSON types of the fields in the first lines of a generic JSON-lines file."""
    head = peek(det.path, det.compression)
    lines = head.split(b"\n")[:-1] if not head.endswith(b"\n") else head.split(b"\n")
    # per line, then merged: a field whose type differs between lines ("votes": 3 here, "3"
    # there) keeps its first type (int and float give float); rows with the other type are
    # then quarantined as wrong_type instead of stopping the run
    types: dict[str, pa.DataType] = {}
    for ln in lines[:1000]:
        try:
            t = pajson.read_json(io.BytesIO(ln))
        except (pa.ArrowInvalid, ValueError):
            continue
        if t.num_rows != 1:
            continue
        for f in t.schema:
            old = types.get(f.name)
            if old is None or pa.types.is_null(old):
                types[f.name] = f.type
            elif old != f.type and all(pa.types.is_integer(x) or pa.types.is_floating(x)
                                       for x in (old, f.type)):
                types[f.name] = pa.float64()
    if not types:
        return None
    return pa.schema(list(types.items()))
