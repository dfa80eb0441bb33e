"""Normalization of a table of raw records into the normalized review table, a reject code per row.

Every format goes through the same :func:`normalize`: its plan (:mod:`rcfast.ingest.formats`)
names, for each normalized field, the raw column(s) it comes from and how to read them, and the
converters (:mod:`rcfast.ingest.converters`) accept whatever Arrow type the raw column has. Rows
that cannot be normalized get a reject code instead of raising, so one bad row never costs its
block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rcfast.schema import NORMALIZED_SCHEMA

from .converters import (
    _col,
    _CoalescedColumns,
    to_bool,
    to_float,
    to_int_checked,
    to_string,
    to_timestamp_ms,
)
from .string_hashes import text_hashes

if TYPE_CHECKING:
    from .formats import Plan

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

#: line-level reasons (the record never became a row)
LINE_REASONS = (
    "malformed_json",
    "invalid_utf8",
    "wrong_type",
    "bad_csv_row",
    "truncated_stream",
)


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
