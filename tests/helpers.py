"""Builders of small review tables for the weekly tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from naive import assert_panel_equal, naive_panel, table_to_naive_input
from rcfast.weekly import weekly_panel
from rcfast.weekly.options import parse_until

WEEK_MS = 604_800_000
#: Monday 2021-03-01 00:00:00 UTC
MONDAY_MS = int(dt.datetime(2021, 3, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)


def reviews(rows: list[tuple], *, chunks: int = 1, dictionary: bool = False,
            ts_type: pa.DataType = pa.timestamp("ms", tz="UTC")) -> pa.Table:
    """rows: (product_id, ms, rating[, helpful, verified, text_len])."""
    cols = list(zip(*rows)) if rows else [[], [], []]
    n = len(rows)
    pid = pa.array(list(cols[0]), type=pa.string())
    if dictionary:
        pid = pid.dictionary_encode()
    ms = pa.array(list(cols[1]), type=pa.int64())
    ts = ms.cast(ts_type) if pa.types.is_timestamp(ts_type) and ts_type.unit == "ms" else ms
    data = {"product_id": pid, "timestamp": ts,
            "rating": pa.array(list(cols[2]), type=pa.float64())}
    if rows and len(rows[0]) > 3:
        data["helpful_votes"] = pa.array(list(cols[3]), type=pa.int32())
        data["verified"] = pa.array(list(cols[4]), type=pa.bool_())
        data["text_len"] = pa.array(list(cols[5]), type=pa.int32())
    t = pa.table(data)
    if chunks > 1 and n:
        size = max(1, -(-n // chunks))
        t = pa.Table.from_batches(t.to_batches(max_chunksize=size))
    return t


def check_against_naive(table: pa.Table, windows=(4, 12, 52), lags=(1, 2, 4), dense=False,
                        until=None) -> pa.Table:
    got, summary = weekly_panel(table, windows=windows, lags=lags, dense=dense, until=until)
    exp, rejected = naive_panel(table_to_naive_input(table), windows=windows, lags=lags,
                                dense=dense, until_week=parse_until(until) if until else None)
    assert summary["rejected"] == rejected
    assert summary["rows_read"] == summary["rows_aggregated"] + summary["rows_rejected"]
    assert summary["rows_read"] == table.num_rows
    assert_panel_equal(got, exp)
    return got


__all__ = ["MONDAY_MS", "WEEK_MS", "check_against_naive", "reviews", "np"]
