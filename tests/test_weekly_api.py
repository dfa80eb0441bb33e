"""``rcfast.weekly_panel`` on what a notebook holds equals the CLI's output."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from helpers import MONDAY_MS, WEEK_MS, reviews

import rcfast
from rcfast.weekly import main


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    import random

    rng = random.Random(7)
    rows = [(f"p{rng.randrange(60)}", MONDAY_MS + rng.randrange(-40, 1) * WEEK_MS
             + rng.randrange(WEEK_MS), float(rng.choice([1, 2, 3, 4, 5, 8])),
             rng.randrange(4), rng.random() < 0.5, rng.randrange(1, 300)) for _ in range(3000)]
    d = tmp_path_factory.mktemp("api")
    src = d / "reviews.parquet"
    pq.write_table(reviews(rows), src, row_group_size=500)
    out = d / "cli.parquet"
    assert main([str(src), "-o", str(out), "--quiet", "--dense"]) == 0
    return src, pq.read_table(out).replace_schema_metadata(None)


def _check(result, expected):
    assert result.panel.equals(expected)
    s = result.summary
    assert s["rows_read"] == s["rows_aggregated"] + s["rows_rejected"] == 3000
    assert s["rejected"]["rating_out_of_range"] > 0


def test_polars(reference):
    pl = pytest.importorskip("polars")
    src, expected = reference
    _check(rcfast.weekly_panel(pl.read_parquet(src), dense=True), expected)


def test_pandas(reference):
    pd = pytest.importorskip("pandas")
    src, expected = reference
    _check(rcfast.weekly_panel(pd.read_parquet(src), dense=True), expected)


def test_duckdb(reference):
    duckdb = pytest.importorskip("duckdb")
    src, expected = reference
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{src}')")
    _check(rcfast.weekly_panel(rel, dense=True), expected)


def test_path_and_memory_limit(reference, tmp_path):
    src, expected = reference
    _check(rcfast.weekly_panel(str(src), dense=True), expected)
    spilled = rcfast.weekly_panel(src, dense=True, memory_limit="1MB", partitions=4,
                                  tmp_dir=str(tmp_path))
    _check(spilled, expected)
    assert spilled.summary["options"]["out_of_core"] is True
    assert not list(tmp_path.iterdir())


def test_output_written(reference, tmp_path):
    src, expected = reference
    res = rcfast.weekly_panel(src, dense=True, output=tmp_path / "p.parquet")
    assert res.panel is None and res.summary["panel_rows"] == expected.num_rows
    assert pq.read_table(tmp_path / "p.parquet").replace_schema_metadata(None).equals(expected)


def test_dask_dataframe_and_client(reference, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    from dask.distributed import Client, LocalCluster

    src, expected = reference
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        res = rcfast.weekly_panel(src, dense=True, client=client, tmp_dir=str(tmp_path))
        _check(res, expected)
        assert res.summary["options"]["engine"] == "dask"
        ddf = dd.read_parquet(str(src))
        _check(rcfast.weekly_panel(ddf, dense=True, client=client, tmp_dir=str(tmp_path)),
               expected)
        assert client.status == "running"  # the caller's client stays open
    assert not list(tmp_path.iterdir())


def test_bad_input_raises(tmp_path):
    from rcfast.errors import InputError

    with pytest.raises(TypeError, match="cannot read reviews"):
        rcfast.weekly_panel(object())
    with pytest.raises(InputError, match="rating"):
        rcfast.weekly_panel({"product_id": ["a"], "timestamp": [1]})
