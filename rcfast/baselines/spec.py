"""What the baselines share and the spec fixes (docs/spec-weekly.md): the reject reasons, the week
and EWM constants, the option checks, the output schema, the run facts stored in the output's
metadata. No computation of the panel itself: each tool's module does all of that on its own.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

REJECT_REASONS = ("null_product_id", "null_timestamp", "timestamp_out_of_range", "null_rating",
                  "rating_out_of_range", "after_until")
MS_PER_WEEK = 604_800_000
MONDAY_SHIFT_MS = 259_200_000  # the epoch was a Thursday; +3 days puts week starts on Monday
EWM_HALFLIFE = 4.0
EWM_ALPHA = 1.0 - 0.5 ** (1.0 / EWM_HALFLIFE)
EWM_LOG_Q = math.log(1.0 - EWM_ALPHA)
#: Weeks per EWM rebasing segment: q^-2048 ≈ e^355 stays finite, q^1024 ≈ 1e-77 is negligible.
EWM_SEGMENT = 1024
META_KEY = b"rcfast.baseline"
#: Longest window or lag accepted (weeks): far beyond any data, and keeps packed keys apart.
MAX_WEEKS = 1_000_000
_SEG_SHIFT = 2**31  # makes week indices non-negative inside packed int64 keys


@dataclass(frozen=True)
class _Options:
    windows: tuple[int, ...]
    lags: tuple[int, ...]
    dense: bool
    until_week: int | None
    until: str | None
    ewm: bool = True

    @classmethod
    def make(cls, windows, lags, dense, until, ewm=True) -> _Options:
        def ints(vals, what):
            try:
                out = tuple(int(v) for v in vals)
            except (TypeError, ValueError):
                raise ValueError(f"{what} must be positive integers, got {vals!r}") from None
            if not out or any(not 1 <= v <= MAX_WEEKS for v in out) or len(set(out)) != len(out) \
                    or any(isinstance(v, bool) or float(v) != int(v) for v in vals):
                raise ValueError(
                    f"{what} must be distinct integers in 1..{MAX_WEEKS}, got {vals!r}")
            return out

        until_week = None
        if until is not None:
            day = until if isinstance(until, dt.date) else None
            if day is None:
                try:
                    day = dt.date.fromisoformat(str(until))
                except ValueError:
                    raise ValueError(f"until must be a date YYYY-MM-DD, got {until!r}") from None
            ms = (day - dt.date(1970, 1, 1)).days * 86_400_000
            until_week = (ms + MONDAY_SHIFT_MS) // MS_PER_WEEK
            until = day.isoformat()
        return cls(ints(windows, "windows"), ints(lags, "lags"), bool(dense), until_week, until,
                   bool(ewm))


def output_schema(windows=(4, 12, 52), lags=(1, 2, 4), ewm: bool = True) -> pa.Schema:
    """The panel's columns in spec order (rolling columns interleaved per window); without
    ``n_reviews_ewm`` if not ``ewm``."""
    f = [pa.field("product_id", pa.string()), pa.field("week_start", pa.date32()),
         pa.field("n_reviews", pa.int32()), pa.field("rating_mean", pa.float64()),
         pa.field("rating_std", pa.float64())]
    f += [pa.field(f"star_{s}", pa.int32()) for s in range(1, 6)]
    f += [pa.field("helpful_votes", pa.int64()), pa.field("verified_share", pa.float64()),
          pa.field("text_len_mean", pa.float64())]
    for k in windows:
        f += [pa.field(f"n_reviews_r{k}", pa.int64()), pa.field(f"rating_mean_r{k}", pa.float64())]
    f += [pa.field(f"n_reviews_lag{L}", pa.int32()) for L in lags]
    f += [pa.field("n_reviews_cum", pa.int64()), pa.field("rating_mean_cum", pa.float64()),
          pa.field("n_reviews_ewm", pa.float64()), pa.field("weeks_since_first", pa.int32()),
          pa.field("weeks_since_prev", pa.int32())]
    if not ewm:
        f = [x for x in f if x.name != "n_reviews_ewm"]
    return pa.schema(f)


def _check_path(path) -> str:
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"no such input: {p}")
    return p


def _input_columns(path: str) -> set[str]:
    names = set(pq.read_schema(path).names)
    missing = [c for c in ("product_id", "timestamp", "rating") if c not in names]
    if missing:
        raise ValueError(f"{path}: missing required column(s) {', '.join(missing)} "
                         f"(the baselines read the normalized schema)")
    return names


def _finish(tool: str, table: pa.Table, opts: _Options, rows_read: int,
            rejected: dict[str, int]) -> pa.Table:
    schema = output_schema(opts.windows, opts.lags, opts.ewm)
    table = table.select(schema.names).cast(schema)
    rejected = {r: int(rejected.get(r, 0)) for r in REJECT_REASONS}
    products = 0
    if table.num_rows:
        import pyarrow.compute as pc

        products = pc.count_distinct(table["product_id"]).as_py()
    info = {"tool": tool, "rows_read": int(rows_read),
            "rows_aggregated": int(rows_read) - sum(rejected.values()),
            "rows_rejected": rejected, "products": products, "panel_rows": table.num_rows,
            "windows": list(opts.windows), "lags": list(opts.lags), "dense": opts.dense,
            "until": opts.until, "ewm": opts.ewm}
    return table.replace_schema_metadata({META_KEY: json.dumps(info).encode()})


def baseline_info(table: pa.Table) -> dict:
    """The run facts a baseline stored in its output's metadata."""
    meta = table.schema.metadata or {}
    return json.loads(meta[META_KEY]) if META_KEY in meta else {}
