"""The real Amazon sample in ../shared/data/real goes through the weekly step."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from naive import assert_panel_equal, naive_panel, table_to_naive_input
from rcfast.weekly import main

COLUMNS = ["reviewerID", "asin", "reviewerName", "helpful", "reviewText", "overall", "summary",
           "unixReviewTime", "reviewTime"]


def read_sample(real_dir) -> pa.Table:
    return pacsv.read_csv(real_dir / "musical_instruments_2014_5core_part.csv",
                          read_options=pacsv.ReadOptions(column_names=COLUMNS))


def test_real_sample_counts(real_dir, tmp_path):
    raw = read_sample(real_dir)
    assert raw.num_rows == 5050
    src = tmp_path / "mi.parquet"
    pq.write_table(raw.drop_columns(["reviewText", "summary", "reviewerName"]), src)
    out = tmp_path / "panel.parquet"
    assert main([str(src), "-o", str(out), "--quiet", "--map", "product_id=asin",
                 "--map", "rating=overall", "--map", "timestamp=unixReviewTime",
                 "--timestamp-unit", "s", "--map", "user_id=reviewerID"]) == 0
    panel = pq.read_table(out)
    assert pc.sum(panel.column("n_reviews")).as_py() == 5050
    assert len(pc.unique(panel.column("product_id"))) == 392
    stars = [pc.sum(panel.column(f"star_{s}")).as_py() for s in range(1, 6)]
    assert stars == [98, 101, 355, 1039, 3457]
    helpful = sum(int(h.strip("[]").split(",")[0]) for h in raw.column("helpful").to_pylist())
    assert pc.sum(panel.column("helpful_votes")).as_py() == helpful
    summary = json.loads((tmp_path / "panel.summary.json").read_text())
    assert summary["rows_read"] == summary["rows_aggregated"] == 5050
    assert summary["products"] == 392
    assert str(summary["first_week"]) <= "2004-09-18" and str(summary["last_week"]) >= "2014-07-14"
    # and every column equals the reference (the 2014 "helpful" pair maps to helpful votes)
    norm = pa.table({
        "product_id": raw.column("asin"),
        "timestamp": pc.multiply(raw.column("unixReviewTime"), 1000).cast(pa.int64()),
        "rating": raw.column("overall").cast(pa.float64()),
    })
    exp, _ = naive_panel(table_to_naive_input(norm))
    got = panel.drop_columns(["helpful_votes"]).replace_schema_metadata(None)
    assert_panel_equal(got, exp.drop(columns=["helpful_votes"]))
