"""Tests of the synthetic review generator (rcfast.synth)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import zstandard

from rcfast import synth
from rcfast.schema import NORMALIZED_SCHEMA
from rcfast.synth.catalog import _catalog
from rcfast.synth.lifecycle import _RAMP_DAYS, _dynamics


def _table(n: int, seed: int = 0, **kw) -> pa.Table:
    batches = list(synth.generate_batches(n, seed, **kw))
    return pa.Table.from_batches(batches)


@pytest.fixture(scope="module")
def big() -> pa.Table:
    return _table(300_000, 7)


def test_schema_and_shapes():
    t = _table(5_000, 1)
    assert t.schema == NORMALIZED_SCHEMA
    assert t.num_rows == 5_000
    assert sum(c.null_count for c in t.columns) == 0
    assert set(pc.utf8_length(t["product_id"]).to_pylist()) == {10}
    assert set(pc.utf8_length(t["user_id"]).to_pylist()) == {28}
    assert all(p.startswith("B0") for p in t["product_id"].to_pylist()[:100])
    assert all(u.startswith("A") for u in t["user_id"].to_pylist()[:100])


def test_deterministic_and_chunk_independent():
    a = _table(300_001, 3, chunk_rows=1_000_000)
    b = _table(300_001, 3, chunk_rows=77_777)
    assert a.equals(b)
    c = _table(300_001, 4)
    assert not a.equals(c)
    batches = list(synth.generate_batches(300_001, 3, chunk_rows=77_777))
    assert [x.num_rows for x in batches] == [77_777] * 3 + [300_001 - 3 * 77_777]


def test_with_text_matches_text_len():
    t = _table(20_000, 2, with_text=True, chunk_rows=6_000)
    assert t.schema.names[-2:] == ["title", "text"]
    assert pc.all(pc.equal(pc.utf8_length(t["text"]), pc.cast(t["text_len"], pa.int64()))).as_py()
    # The text columns do not change the other columns.
    assert t.select(NORMALIZED_SCHEMA.names).equals(_table(20_000, 2))


def test_distributions(big):
    pid = big["product_id"]
    counts = np.sort(pc.value_counts(pid).field("counts").to_numpy())[::-1]
    top = counts[: max(1, counts.size // 100)].sum() / big.num_rows
    assert top > 0.3, top  # heavy tail
    assert counts[0] > 100 * np.median(counts)
    r = big["rating"].to_numpy()
    assert set(np.unique(r)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    share = {k: float(np.mean(r == k)) for k in range(1, 6)}
    assert share[5] > 0.5 and share[1] > share[2] and share[5] > share[4] > share[3]
    ts = big["timestamp"].cast(pa.int64()).to_numpy()
    assert ts.min() >= np.datetime64("1998-01-01", "ms").astype(np.int64)
    assert ts.max() <= np.datetime64("2023-10-01", "ms").astype(np.int64)
    assert np.mean(ts % 1000 != 0) > 0.9  # real sub-second parts
    months = ts.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64) % 12
    per_month = np.bincount(months, minlength=12)
    assert per_month[11] > np.median(per_month)  # December peak
    hv = big["helpful_votes"].to_numpy()
    assert 0.6 < np.mean(hv == 0) < 0.85 and hv.max() > 100
    v = big["verified"].to_numpy(zero_copy_only=False)
    assert 0.8 < v.mean() < 0.95
    tl = big["text_len"].to_numpy()
    assert tl.min() >= 0 and 50 < np.median(tl) < 300
    assert pc.count_distinct(big["category"]).as_py() > 20


def test_n_products_and_bad_input():
    t = _table(10_000, 0, n_products=50)
    assert pc.count_distinct(t["product_id"]).as_py() <= 50
    for bad in ({"n_rows": -1}, {"n_rows": 1.5}, {"n_rows": 10, "chunk_rows": 0},
                {"n_rows": 10, "n_products": 0}, {"n_rows": 10, "seed": -1}):
        with pytest.raises(ValueError):
            list(synth.generate_batches(**bad))
    assert list(synth.generate_batches(0)) == []


def test_parquet_chunked(tmp_path):
    p = synth.write_parquet(tmp_path / "a.parquet", 2_500, 5, row_group_rows=1_000)
    f = pq.ParquetFile(p)
    assert f.metadata.num_row_groups == 3
    t = f.read()
    assert t.schema.remove_metadata() == NORMALIZED_SCHEMA
    assert t.equals(_table(2_500, 5).cast(t.schema))
    empty = pq.read_table(synth.write_parquet(tmp_path / "e.parquet", 0))
    assert empty.num_rows == 0
    with pytest.raises(ValueError):
        synth.write_parquet(tmp_path / "b.parquet", 10, compression="brotli9")


def test_parquet_atomic(tmp_path, monkeypatch):
    target = tmp_path / "x.parquet"

    def boom(self, *a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pq.ParquetWriter, "write_batch", boom)
    with pytest.raises(RuntimeError):
        synth.write_parquet(target, 5_000, row_group_rows=1_000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_jsonl_matches_batches(tmp_path, suffix):
    n = 3_000
    p = synth.write_jsonl(tmp_path / f"r{suffix}", n, 9)
    raw = p.read_bytes()
    if suffix.endswith(".gz"):
        raw = gzip.decompress(raw)
    elif suffix.endswith(".zst"):
        raw = zstandard.ZstdDecompressor().stream_reader(raw).read()
    recs = [json.loads(line) for line in raw.decode().splitlines()]
    assert len(recs) == n
    assert list(recs[0]) == ["rating", "title", "text", "images", "asin", "parent_asin",
                             "user_id", "timestamp", "helpful_vote", "verified_purchase"]
    t = _table(n, 9, with_text=True)
    assert [r["parent_asin"] for r in recs] == t["product_id"].to_pylist()
    same = np.mean([r["asin"] == r["parent_asin"] for r in recs])
    assert 0.5 < same < 0.7  # the rest are variants, never another product's parent id
    assert not {r["asin"] for r in recs if r["asin"] != r["parent_asin"]} \
        & set(t["product_id"].to_pylist())
    assert all(len(r["asin"]) == 10 and r["asin"].startswith("B0") for r in recs)
    assert [r["user_id"] for r in recs] == t["user_id"].to_pylist()
    assert [r["timestamp"] for r in recs] == t["timestamp"].cast(pa.int64()).to_pylist()
    assert [r["rating"] for r in recs] == t["rating"].to_pylist()
    assert all(isinstance(r["rating"], float) for r in recs)
    assert [r["helpful_vote"] for r in recs] == t["helpful_votes"].to_pylist()
    assert [r["verified_purchase"] for r in recs] == t["verified"].to_pylist()
    assert [len(r["text"]) for r in recs] == t["text_len"].to_pylist()
    assert [r["text"] for r in recs] == t["text"].to_pylist()


def test_jsonl_amazon2018(tmp_path):
    n = 2_000
    p = synth.write_jsonl(tmp_path / "r.json", n, 1, flavor="amazon2018")
    recs = [json.loads(line) for line in p.read_text().splitlines()]
    t = _table(n, 1)
    ms = t["timestamp"].cast(pa.int64()).to_numpy()
    assert [r["unixReviewTime"] for r in recs] == ((ms // 86_400_000) * 86_400).tolist()
    hv = t["helpful_votes"].to_pylist()
    for r, v in zip(recs, hv):
        assert r["overall"] in (1.0, 2.0, 3.0, 4.0, 5.0)
        if v:
            assert int(r["vote"].replace(",", "")) == v
        else:
            assert "vote" not in r
    big_votes = [r["vote"] for r in recs if "vote" in r and len(r["vote"]) > 3]
    assert all("," in x for x in big_votes)
    day = np.datetime64(int(ms[0]), "ms").astype("datetime64[D]").item()
    assert recs[0]["reviewTime"] == f"{day.month:02d} {day.day}, {day.year}"
    with pytest.raises(ValueError):
        synth.write_jsonl(tmp_path / "x.jsonl", 10, flavor="yelp")


def test_demo_parquet_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RCFAST_CACHE", str(tmp_path / "cache"))
    p1 = synth.demo_parquet(n_rows=1_000, seed=2)
    assert p1.parent == tmp_path / "cache"
    mtime = p1.stat().st_mtime_ns
    p2 = synth.demo_parquet(n_rows=1_000, seed=2)
    assert p2 == p1 and p2.stat().st_mtime_ns == mtime
    assert pq.read_table(p1).num_rows == 1_000
    p3 = synth.demo_parquet(tmp_path / "other", n_rows=1_000, seed=3)
    assert p3.parent == tmp_path / "other" and p3 != p1


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli.parquet"
    assert synth.main(["-o", str(out), "--rows", "2e3", "--seed", "4", "--no-progress"]) == 0
    assert pq.read_table(out).num_rows == 2_000
    err = capsys.readouterr().err
    assert "2,000 rows" in err and "products" in err
    js = tmp_path / "cli.jsonl.gz"
    assert synth.main(["-o", str(js), "--rows", "500", "--flavor", "amazon2018", "-q"]) == 0
    assert capsys.readouterr().err == ""  # -q: warnings and errors only
    assert len(gzip.decompress(js.read_bytes()).splitlines()) == 500
    assert synth.main(["--rows", "10"]) == 2  # no -o
    assert synth.main(["-o", str(out), "--rows", "ten"]) == 2
    assert synth.main(["-o", str(out), "--rows", "10", "--seed", "-1"]) == 2
    assert "error" in capsys.readouterr().err


def test_popularity_waves_are_smooth_random_functions():
    cat = _catalog(1_200_000, 0, 100_000)
    dyn = _dynamics(cat, np.arange(2_000))
    days = np.arange(19_000, 19_000 + 3 * 365)
    g = dyn.log_wave(days[None, :])                          # (products, days)
    assert g.shape == (2_000, days.size) and g.max() <= 0
    x = g - g.mean()
    assert 0.2 < x.std() < 0.4, x.std()                     # sd ~ _WAVE_SD = 0.3
    def corr(lag):
        return float((x[:, :-lag] * x[:, lag:]).mean() / x.var())
    assert corr(7) > 0.9 and corr(365) < 0.3                 # smooth in weeks, not in years
    # a function of the product index only: the oracle recomputes the same parameters
    again = _dynamics(cat, np.arange(2_000)[::-1])
    np.testing.assert_array_equal(again.omega[::-1], dyn.omega)
    assert np.median(dyn.ramp_days) == pytest.approx(_RAMP_DAYS, rel=0.15)
