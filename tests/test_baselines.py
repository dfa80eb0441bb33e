"""The baselines (pandas two ways, Polars, DuckDB) agree with each other and with the reference."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rcfast import baselines as B
from rcfast import synth

try:  # the slow reference of SPEC-weekly.md, when present
    import naive
except ImportError:  # pragma: no cover
    naive = None

MS_WEEK = 604_800_000


def ms_of(text: str) -> int:
    """Epoch ms of an ISO UTC time, exact also before 1970."""
    t = dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def assert_tables_agree(a: pa.Table, b: pa.Table, rtol: float = 1e-9) -> None:
    assert a.schema.remove_metadata() == b.schema.remove_metadata()
    assert a.num_rows == b.num_rows
    for name in a.column_names:
        x, y = a[name], b[name]
        assert x.null_count == y.null_count, name
        if pa.types.is_floating(x.type):
            xv = x.to_numpy(zero_copy_only=False)
            yv = y.to_numpy(zero_copy_only=False)
            assert np.array_equal(np.isnan(xv), np.isnan(yv)), name
            ok = np.isnan(xv) | np.isclose(xv, yv, rtol=rtol, atol=1e-12)
            assert ok.all(), (name, np.flatnonzero(~ok)[:5], xv[~ok][:5], yv[~ok][:5])
        else:
            assert x.equals(y), name


def run_all(path, **kw) -> dict[str, pa.Table]:
    out = {name: fn(path, **kw) for name, fn in B.TOOLS.items()}
    first = out["pandas"]
    for name, t in out.items():
        assert t.schema.remove_metadata() == B.output_schema(kw.get("windows", (4, 12, 52)),
                                                             kw.get("lags", (1, 2, 4)))
        assert_tables_agree(first, t)
        info, ref = B.baseline_info(t), B.baseline_info(first)
        assert info["tool"] == name
        for k in ("rows_read", "rows_aggregated", "rows_rejected", "products", "panel_rows"):
            assert info[k] == ref[k], (name, k)
        assert info["rows_read"] == info["rows_aggregated"] + sum(info["rows_rejected"].values())
    return out


def check_naive(path, table: pa.Table, **kw) -> None:
    if naive is None:
        return
    src = pq.read_table(path)
    opts = {k: v for k, v in kw.items() if k in ("windows", "lags", "dense")}
    if kw.get("until"):
        d = dt.date.fromisoformat(kw["until"])
        opts["until_week"] = ((d - dt.date(1970, 1, 1)).days * 86_400_000 + 259_200_000) // MS_WEEK
    expected, rejected = naive.naive_panel(naive.table_to_naive_input(src), **opts)
    naive.assert_panel_equal(table, expected)
    assert B.baseline_info(table)["rows_rejected"] == rejected


def edge_table() -> pa.Table:
    rows = []  # (product_id, iso time or None, rating, helpful, verified, text_len)
    rows.append(("solo", "2020-03-04T05:06:07.089", 4.0, 3, True, 10))
    # gaps of 1, 3 and 60 weeks
    base = ms_of("2019-01-07T12:00:00")
    for wk, r in [(0, 5.0), (0, 3.0), (1, 4.0), (4, 1.0), (64, 2.0), (64, 5.0), (65, 4.5)]:
        rows.append(("gaps", base + wk * MS_WEEK, r, None, None, None))
    # Sunday 23:59:59.999 vs Monday 00:00:00.000 UTC
    rows.append(("edge", "2021-06-13T23:59:59.999", 1.5, 0, False, 5))
    rows.append(("edge", "2021-06-14T00:00:00.000", 2.5, 7, None, None))
    rows.append(("edge", "2021-06-14T00:00:00.001", 5.0, 1, True, 0))
    # before 1970, including the first Monday before the epoch and sub-second negatives
    rows.append(("old", -1, 3.0, 1, True, 1))  # 1969-12-31T23:59:59.999, week 0
    rows.append(("old", ms_of("1969-12-28T23:59:59.999"), 4.0, 0, True, 2))  # week -1
    rows.append(("old", ms_of("1969-12-29T00:00:00"), 5.0, 0, False, 3))  # week 0
    rows.append(("old", ms_of("1955-05-05T05:05:05.555"), 2.0, 2, None, 4))
    rows.append(("old", ms_of("1850-01-01T00:00:00"), 3.5, 0, None, 5))  # odd but readable: kept
    # byte order of ids: "B" < "Z" < "a" < "é"
    for pid in ["é", "a", "Z", "B"]:
        rows.append((pid, "2022-12-25T10:00:00", 5.0, 0, True, 100))
    # rejects, one per reason (first reason wins)
    rows.append((None, "2020-01-01T00:00:00", 5.0, 0, True, 1))
    rows.append(("rej", None, 5.0, 0, True, 1))
    rows.append(("rej", 10**15, 5.0, 0, True, 1))  # year 33658: no ns timestamp holds it
    rows.append(("rej", "2020-01-01T00:00:00", None, 0, True, 1))
    rows.append(("rej", "2020-01-01T00:00:00", float("nan"), 0, True, 1))
    rows.append(("rej", "2020-01-01T00:00:00", 0.5, 0, True, 1))
    rows.append(("rej", "2020-01-01T00:00:00", 5.5, 0, True, 1))
    rows.append((None, None, None, None, None, None))
    pid, ts, rating, hv, ver, tl = zip(*rows)
    ts = [t if t is None or isinstance(t, int) else ms_of(t) for t in ts]
    return pa.table({
        "product_id": pa.array(pid, pa.string()),
        "timestamp": pa.array(ts, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "rating": pa.array(rating, pa.float32()),
        "helpful_votes": pa.array(hv, pa.int32()),
        "verified": pa.array(ver, pa.bool_()),
        "text_len": pa.array(tl, pa.int32()),
    })


@pytest.fixture(scope="module")
def edge_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("edge") / "edge.parquet"
    pq.write_table(edge_table(), p)
    return p


@pytest.fixture(scope="module")
def synth_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("synth") / "s.parquet"
    synth.write_parquet(p, 4_000, 11, n_products=150)
    return p


@pytest.mark.parametrize("dense", [False, True])
def test_synthetic_agree(synth_path, dense):
    out = run_all(synth_path, dense=dense)
    t = out["polars"]
    assert t.num_rows > 500
    check_naive(synth_path, t, dense=dense)


def test_edge_cases_sparse(edge_path):
    out = run_all(edge_path)
    t = out["duckdb"]
    check_naive(edge_path, t)
    info = B.baseline_info(t)
    assert info["rows_rejected"] == {"null_product_id": 2, "null_timestamp": 1,
                                     "timestamp_out_of_range": 1, "null_rating": 2,
                                     "rating_out_of_range": 2, "after_until": 0}
    rows = t.to_pylist()
    ids = [r["product_id"] for r in rows]
    assert ids == sorted(ids, key=lambda s: s.encode())
    edge = [r for r in rows if r["product_id"] == "edge"]
    assert [r["week_start"] for r in edge] == [dt.date(2021, 6, 7), dt.date(2021, 6, 14)]
    assert edge[0]["star_2"] == 1 and edge[1]["star_3"] == 1 and edge[1]["star_5"] == 1
    assert edge[1]["verified_share"] == 1.0 and edge[1]["text_len_mean"] == 0.0
    old = [r for r in rows if r["product_id"] == "old"]
    assert [r["week_start"] for r in old][-2:] == [dt.date(1969, 12, 22), dt.date(1969, 12, 29)]
    assert old[-1]["n_reviews"] == 2
    gaps = [r for r in rows if r["product_id"] == "gaps"]
    assert [r["weeks_since_prev"] for r in gaps] == [None, 1, 3, 60, 1]
    assert [r["n_reviews_lag1"] for r in gaps] == [None, 2, 0, 0, 2]
    assert gaps[0]["rating_std"] == 1.0 and gaps[0]["helpful_votes"] == 0
    assert gaps[0]["verified_share"] is None and gaps[0]["text_len_mean"] is None
    q = 0.5 ** 0.25
    e = 2.0
    for g, n in [(1, 1), (3, 1), (60, 2), (1, 1)]:
        e = (1 - q) * n + q**g * e
    assert math.isclose(gaps[-1]["n_reviews_ewm"], e, rel_tol=1e-12)
    solo = next(r for r in rows if r["product_id"] == "solo")
    assert solo["rating_std"] == 0.0 and solo["n_reviews_r52"] == 1
    assert solo["n_reviews_lag4"] is None and solo["weeks_since_prev"] is None


@pytest.mark.parametrize("until", [None, "2021-06-13"])
def test_edge_cases_dense_custom_windows(edge_path, until):
    kw = {"windows": (1, 3), "lags": (1, 3, 60), "dense": True, "until": until}
    out = run_all(edge_path, **kw)
    check_naive(edge_path, out["pandas"], **kw)
    t = out["pandas"]
    assert "n_reviews_r3" in t.column_names and "n_reviews_lag60" in t.column_names
    if until:
        assert max(t["week_start"].to_pylist()) == dt.date(2021, 6, 7)
        assert B.baseline_info(t)["rows_rejected"]["after_until"] > 0


def test_other_input_types(tmp_path, edge_path):
    """Integer epoch-ms and microsecond timestamps, and missing optional columns."""
    t = edge_table()
    ref = B.panel_polars(edge_path)
    ms = t.set_column(1, "timestamp", t["timestamp"].cast(pa.int64()))
    pq.write_table(ms, tmp_path / "ms.parquet")
    us = t.set_column(1, "timestamp", t["timestamp"].cast(pa.timestamp("us", tz="UTC")))
    pq.write_table(us, tmp_path / "us.parquet")
    for name in ("ms", "us"):
        out = run_all(tmp_path / f"{name}.parquet")
        assert_tables_agree(out["pandas"], ref)
    # dictionary-encoded ids (as rcfast.combine may write them) and integer ratings
    ints = t.filter(pa.compute.equal(t["rating"], pa.compute.round(t["rating"])))
    ints = ints.set_column(0, "product_id", ints["product_id"].dictionary_encode())
    ints = ints.set_column(2, "rating", ints["rating"].cast(pa.int8()))
    pq.write_table(ints, tmp_path / "dict.parquet")
    ref_ints = B.panel_duckdb(tmp_path / "dict.parquet")
    assert ref_ints.num_rows > 5
    run_all(tmp_path / "dict.parquet")
    # sub-millisecond times just before a Monday before 1970: floor, not truncation
    monday = ms_of("1969-12-29T00:00:00") * 1000  # in µs
    fine = pa.table({"product_id": ["p", "p", "p", "q"],
                     "timestamp": [monday - 1, monday, monday - 1000, -1],
                     "rating": [1.0, 2.0, 3.0, 4.0]})
    for unit, mul in (("us", 1), ("ns", 1000)):
        ts = pa.array([v * mul for v in fine["timestamp"].to_pylist()], pa.int64())
        f = fine.set_column(1, "timestamp", ts.cast(pa.timestamp(unit, tz="UTC")))
        pq.write_table(f, tmp_path / f"fine_{unit}.parquet")
        out = run_all(tmp_path / f"fine_{unit}.parquet")["duckdb"]
        check_naive(tmp_path / f"fine_{unit}.parquet", out)
        assert out["week_start"].to_pylist() == [dt.date(1969, 12, 22), dt.date(1969, 12, 29),
                                                 dt.date(1969, 12, 29)]
        assert out["n_reviews"].to_pylist() == [2, 1, 1]
    bare = t.select(["product_id", "timestamp", "rating"])
    pq.write_table(bare, tmp_path / "bare.parquet")
    out = run_all(tmp_path / "bare.parquet")["duckdb"]
    assert out["verified_share"].null_count == out.num_rows
    assert set(out["helpful_votes"].to_pylist()) == {0}


def test_bad_input(tmp_path, edge_path):
    for fn in B.TOOLS.values():
        with pytest.raises(FileNotFoundError):
            fn(tmp_path / "missing.parquet")
        with pytest.raises(ValueError):
            fn(edge_path, windows=(0, 4))
        with pytest.raises(ValueError):
            fn(edge_path, lags=())
        with pytest.raises(ValueError):
            fn(edge_path, until="2020-13-01")
    pq.write_table(pa.table({"product_id": ["a"], "rating": [5.0]}), tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="timestamp"):
        B.panel_pandas(tmp_path / "x.parquet")


# ----------------------------------------------------------------------------------------------
# the comparison benchmark (python -m rcfast.bench weekly)


def test_bench_dispatch(capsys):
    from rcfast.bench.__main__ import SUBCOMMANDS, main

    assert "weekly" in SUBCOMMANDS
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert main(["nope"]) == 2
    assert "unknown subcommand" in capsys.readouterr().err
    assert main(["weekly", "--tools", "excel"]) == 2
    assert main(["weekly", "--rows", "0"]) == 2


def test_bench_skips_missing_rcfast(monkeypatch, capsys):
    from rcfast.bench import weekly

    monkeypatch.setattr(weekly, "rcfast_available", lambda: "rcfast.weekly is not installed yet")
    assert weekly.main(["--rows", "100", "--tools", "rcfast"]) == 2
    err = capsys.readouterr().err
    assert "skipping rcfast: rcfast.weekly is not installed yet" in err
    assert "no tool left" in err


def test_compare_panels(tmp_path, edge_path):
    from rcfast.bench.panel_compare import compare_panels

    t = B.panel_pandas(edge_path)
    pq.write_table(t, tmp_path / "a.parquet")
    pq.write_table(B.panel_duckdb(edge_path), tmp_path / "b.parquet")
    assert compare_panels(tmp_path / "a.parquet", tmp_path / "b.parquet", None) is None
    ewm = t["n_reviews_ewm"].to_numpy().copy()
    ewm[3] *= 1 + 1e-7
    pq.write_table(t.set_column(t.schema.get_field_index("n_reviews_ewm"), "n_reviews_ewm",
                                pa.array(ewm)), tmp_path / "c.parquet")
    gap = compare_panels(tmp_path / "a.parquet", tmp_path / "c.parquet", None)
    assert gap and gap.startswith("n_reviews_ewm: row 3")
    pq.write_table(t.slice(1), tmp_path / "d.parquet")
    assert "row counts" in compare_panels(tmp_path / "a.parquet", tmp_path / "d.parquet", None)
    sample = pa.array(["gaps", "old"])
    assert compare_panels(tmp_path / "a.parquet", tmp_path / "c.parquet", sample) is None


def test_bench_weekly_small(tmp_path, monkeypatch, capsys):
    from rcfast.bench import weekly

    monkeypatch.setenv("RCFAST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(weekly, "FULL_CHECK_ROWS", 100)  # exercise the sampled comparison
    monkeypatch.setattr(weekly, "SAMPLE_PRODUCTS", 10)
    rc = weekly.main(["--rows", "3000", "--tools", "polars,duckdb", "--repeat", "2", "--json",
                      str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png"),
                      "--products", "demo,40"])
    captured = capsys.readouterr()
    out = captured.out
    assert rc == 0, out
    assert "checked against polars on a sample of 10 products" in captured.err
    assert "| polars" in out and "| duckdb" in out and "machine:" in out
    import json

    rep = json.loads((tmp_path / "r.json").read_text())
    assert [(r["mix"], r["tool"]) for r in rep["results"]] == [
        ("demo", "polars"), ("demo", "duckdb"), ("40", "polars"), ("40", "duckdb")]
    assert all(r["ok"] and r["agrees"] and r["compute_s"] > 0 for r in rep["results"])
    # a 40-product catalog gives fewer, longer product histories than the demo's 250
    demo, small = rep["results"][0]["panel_rows"], rep["results"][2]["panel_rows"]
    assert demo != small
    assert "|      demo | polars" in out and "|        40 | duckdb" in out
    assert rep["machine"]["cores"] >= 1
    assert (tmp_path / "r.png").stat().st_size > 1000


# ----------------------------------------------------------------------------------------------
# random small inputs


_WEEK0 = ms_of("2020-01-06T00:00:00")
_row = st.tuples(
    st.sampled_from(["a", "B", "é", "a\u0301", "zz", None]),
    st.one_of(st.none(),
              st.integers(-30, 130).map(lambda d: _WEEK0 + d * MS_WEEK // 7 * 3 - 1),
              st.integers(-3_000_000_000_000, -1)),
    st.one_of(st.none(), st.sampled_from([1.0, 1.5, 2.0, 2.25, 2.5, 3.0, 4.5, 5.0, 0.0, 5.5,
                                          float("nan")])),
    st.one_of(st.none(), st.integers(0, 10**6)),
    st.one_of(st.none(), st.booleans()),
    st.one_of(st.none(), st.integers(0, 5000)),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_row, min_size=1, max_size=40), dense=st.booleans(),
       windows=st.sampled_from([(4, 12, 52), (1, 2), (3,)]),
       lags=st.sampled_from([(1, 2, 4), (1,), (5, 2)]))
def test_random_inputs_agree(tmp_path_factory, rows, dense, windows, lags):
    pid, ts, rating, hv, ver, tl = zip(*rows)
    table = pa.table({
        "product_id": pa.array(pid, pa.string()),
        "timestamp": pa.array(ts, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "rating": pa.array(rating, pa.float64()),
        "helpful_votes": pa.array(hv, pa.int64()),
        "verified": pa.array(ver, pa.bool_()),
        "text_len": pa.array(tl, pa.int32()),
    })
    path = tmp_path_factory.mktemp("h") / "h.parquet"
    pq.write_table(table, path)
    kw = {"windows": windows, "lags": lags, "dense": dense}
    out = run_all(path, **kw)
    check_naive(path, out["duckdb"], **kw)


# ----------------------------------------------------------------------------------------------
# cross-check of rcfast itself


@pytest.mark.parametrize("kw", [{}, {"dense": True},
                                {"dense": True, "until": "2021-06-13", "windows": (1, 3),
                                 "lags": (1, 60)}])
@pytest.mark.parametrize("which", ["synth", "edge"])
def test_rcfast_agrees_with_baselines(which, kw, synth_path, edge_path):
    weekly = pytest.importorskip("rcfast.weekly")
    path = synth_path if which == "synth" else edge_path
    ours, summary = weekly.weekly_panel(pq.read_table(path), **kw)
    theirs = B.panel_polars(path, **kw)
    assert_tables_agree(ours.cast(theirs.schema.remove_metadata()), theirs)
    info = B.baseline_info(theirs)
    assert summary["rows_read"] == info["rows_read"]
    assert {k: v for k, v in summary["rejected"].items() if v} == \
        {k: v for k, v in info["rows_rejected"].items() if v}


@pytest.mark.parametrize("typ", [pa.float32(), pa.float64()])
def test_nan_rating_is_null_for_every_baseline(tmp_path, typ):
    """A NaN rating is null_rating (the spec), also in DuckDB, whose Parquet statistics leave
    NaN out and once made it fold isnan() to false (found by hypothesis)."""
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({
        "product_id": ["a", "a", "a"],
        "timestamp": pa.array([1_578_268_799_999, 1_578_268_800_000, 1_578_268_800_001],
                              pa.timestamp("ms", tz="UTC")),
        "rating": pa.array([1.0, 1.5, float("nan")], typ),
    }), path)
    for name, t in run_all(path).items():
        info = B.baseline_info(t)
        assert info["rows_rejected"]["null_rating"] == 1, name
        assert info["rows_rejected"].get("rating_out_of_range", 0) == 0, name


@pytest.mark.parametrize("fn", [B.panel_polars, B.panel_duckdb])
@pytest.mark.parametrize("kw", [{}, {"dense": True}])
def test_without_ewm_is_the_panel_less_its_ewm_column(synth_path, fn, kw):
    """``ewm=False`` (the peers' stand-in in the 31.8M-row comparison) drops the column and
    changes nothing else."""
    full, short = fn(synth_path, **kw), fn(synth_path, ewm=False, **kw)
    assert short.schema.remove_metadata() == B.output_schema(ewm=False)
    assert_tables_agree(full.drop_columns(["n_reviews_ewm"]), short)


def test_bench_compares_a_noewm_peer_on_the_shared_columns(tmp_path, synth_path):
    from rcfast.bench.panel_compare import compare_panels

    pq.write_table(B.panel_duckdb(synth_path), tmp_path / "a.parquet")
    pq.write_table(B.panel_polars(synth_path, ewm=False), tmp_path / "b.parquet")
    assert compare_panels(tmp_path / "a.parquet", tmp_path / "b.parquet", None) is None
    short = B.panel_polars(synth_path, ewm=False)
    pq.write_table(short.set_column(2, "n_reviews", pa.compute.add(short["n_reviews"], 1)
                                    .cast(pa.int32())), tmp_path / "c.parquet")
    assert "n_reviews" in compare_panels(tmp_path / "a.parquet", tmp_path / "c.parquet", None)
