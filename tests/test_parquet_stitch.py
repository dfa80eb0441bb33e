"""rcfast.parquet_stitch: row groups encoded in parallel, stitched into one Parquet file."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rcfast.parquet_stitch import StitchedParquetWriter, decode_footer, encode_struct

OPTIONS = {"compression": "snappy", "use_dictionary": ["s", "d"], "write_statistics": ["s", "d"],
           "store_schema": False}


def table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.integers(0, max(n // 7, 1), n))
    f = rng.normal(size=n)
    return pa.table({
        "s": pa.array([f"B{i:09d}" for i in ids]),
        "d": pa.array([dt.date(2020, 1, 6) + dt.timedelta(weeks=int(w))
                       for w in rng.integers(0, 200, n)], pa.date32()),
        "i32": pa.array(rng.integers(0, 5, n), pa.int32()),
        "i64": pa.array(rng.integers(0, 2**40, n), pa.int64()),
        "f": pa.array(f, mask=rng.random(n) < 0.1),
        "b": pa.array(rng.random(n) < 0.5, mask=rng.random(n) < 0.2),
    })


def plain(path, t: pa.Table, cuts: list[int], kv: dict | None = None) -> None:
    with pq.ParquetWriter(path, t.schema, **OPTIONS) as w:
        for a, b in zip(cuts[:-1], cuts[1:]):
            w.write_table(t.slice(a, b - a), row_group_size=b - a)
        if kv:
            w.add_key_value_metadata(kv)


def stitched(path, t: pa.Table, cuts: list[int], threads: int, kv: dict | None = None) -> list:
    landed: list[int] = []
    w = StitchedParquetWriter(path, t.schema, threads, on_written=landed.append, **OPTIONS)
    for a, b in zip(cuts[:-1], cuts[1:]):
        w.write_row_group(t.slice(a, b - a))
    if kv:
        w.add_key_value_metadata(kv)
    w.close()
    return landed


def test_footer_codec_round_trips_byte_for_byte(tmp_path):
    t = table(5000)
    p = tmp_path / "a.parquet"
    plain(p, t, [0, 1000, 1001, 3000, 5000], {"k": "v" * 300})
    buf = p.read_bytes()
    meta, start = decode_footer(buf)
    assert encode_struct(meta) == buf[start:-8]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_stitched_file_is_what_pyarrow_writes(tmp_path, threads):
    t = table(20_000, seed=threads)
    cuts = [0, 3000, 3001, 9000, 15_000, 20_000]  # uneven, one of a single row
    kv = {"rcfast.summary": '{"rows_read": 20000}'}
    plain(tmp_path / "plain.parquet", t, cuts, kv)
    landed = stitched(tmp_path / "st.parquet", t, cuts, threads, kv)
    assert landed == list(np.diff(cuts))  # in order, each once
    got = pq.read_table(tmp_path / "st.parquet")
    assert got.equals(t)
    assert got.schema.metadata == {b"rcfast.summary": b'{"rows_read": 20000}'}
    a = pq.ParquetFile(tmp_path / "st.parquet").metadata
    b = pq.ParquetFile(tmp_path / "plain.parquet").metadata
    assert a.num_row_groups == b.num_row_groups == len(cuts) - 1
    for i in range(a.num_row_groups):  # offsets, sizes, statistics, encodings: all the same
        assert a.row_group(i).to_dict() == b.row_group(i).to_dict()
    assert (tmp_path / "st.parquet").read_bytes() == (tmp_path / "plain.parquet").read_bytes()
    for i in range(a.num_row_groups):  # each row group reads on its own
        assert pq.ParquetFile(tmp_path / "st.parquet").read_row_group(i).equals(
            t.slice(cuts[i], cuts[i + 1] - cuts[i]))
    key = t["s"][12_345].as_py()
    assert pq.read_table(tmp_path / "st.parquet", filters=[("s", "=", key)]).equals(
        t.filter(pa.compute.equal(t["s"], key)))


def test_other_readers_agree(tmp_path):
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    t = table(30_000, seed=7)
    p = tmp_path / "st.parquet"
    stitched(p, t, [0, 10_000, 20_000, 30_000], 2)
    assert pl.read_parquet(p).to_arrow().cast(t.schema).equals(t)
    got = duckdb.sql(f"SELECT count(*), sum(i64), count(f), sum(f) FROM '{p}'").fetchall()[0]
    assert got[:3] == (30_000, int(pa.compute.sum(t["i64"]).as_py()),
                       30_000 - t["f"].null_count)
    assert got[3] == pytest.approx(pa.compute.sum(t["f"]).as_py())


def test_no_row_group_gives_a_valid_empty_file(tmp_path):
    t = table(10)
    p = tmp_path / "empty.parquet"
    stitched(p, t, [0], 2, {"k": "v"})
    got = pq.read_table(p)
    assert got.num_rows == 0 and got.schema.remove_metadata().equals(t.schema)
    assert got.schema.metadata == {b"k": b"v"}


def test_not_parquet_is_refused():
    with pytest.raises(ValueError, match="not a Parquet file"):
        decode_footer(b"PAR1 but not really")
