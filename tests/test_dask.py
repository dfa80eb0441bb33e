"""The Dask path (a real LocalCluster with worker processes) equals the single-process run."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import MONDAY_MS, WEEK_MS, reviews

from rcfast.weekly import main


def data(n=4000, seed=3):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        rows.append((f"item-{rng.zipf(1.5) % 300}", int(MONDAY_MS + rng.integers(-200, 5) * WEEK_MS
                     + rng.integers(0, WEEK_MS)), float(rng.choice([1, 2, 3, 4, 5, 9])),
                     int(rng.integers(0, 3)), bool(rng.random() < 0.7),
                     int(rng.integers(1, 500))))
    return reviews(rows)


@pytest.mark.parametrize("dense", [False, True])
def test_dask_workers_equal_single_process(tmp_path, dense):
    t = data()
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(t.slice(0, 2500), d / "a.parquet", row_group_size=400)
    pq.write_table(t.slice(2500), d / "b.parquet", row_group_size=400)
    flags = ["--dense"] if dense else []
    single = tmp_path / "single.parquet"
    assert main([str(d), "-o", str(single), "--quiet", *flags]) == 0
    multi = tmp_path / "multi.parquet"
    assert main([str(d), "-o", str(multi), "--quiet", "--workers", "2", "--threads", "1",
                 "--partitions", "5", *flags]) == 0
    a, b = pq.read_table(single), pq.read_table(multi)
    assert a.replace_schema_metadata(None).equals(b.replace_schema_metadata(None))
    sa = json.loads((tmp_path / "single.summary.json").read_text())
    sb = json.loads((tmp_path / "multi.summary.json").read_text())
    for k in ("rows_read", "rows_aggregated", "rows_rejected", "rejected", "products",
              "panel_rows"):
        assert sa[k] == sb[k], k
    # five asked for; a product heavy enough to fill two quantiles of the sample merges two
    assert sb["options"]["engine"] == "dask" and 2 <= sb["options"]["partitions"] <= 5
    assert sb["rejected"]["rating_out_of_range"] > 0


def test_dask_splits_large_file_by_row_groups(tmp_path, monkeypatch):
    import rcfast.weekly.distributed as dispatch
    from rcfast.weekly.partitions import plan_blocks

    monkeypatch.setattr(dispatch, "BLOCK_ROWS_MAX", 700)  # several split tasks for one file
    t = data(3000, seed=5)
    src = tmp_path / "one.parquet"
    pq.write_table(t, src, row_group_size=300)
    tasks = plan_blocks([src], 700)
    assert len(tasks) > 2 and all(b.row_groups for b in tasks)
    out1, out2 = tmp_path / "1.parquet", tmp_path / "2.parquet"
    assert main([str(src), "-o", str(out1), "--quiet"]) == 0
    assert main([str(src), "-o", str(out2), "--quiet", "--workers", "2"]) == 0
    assert pq.read_table(out1).replace_schema_metadata(None).equals(
        pq.read_table(out2).replace_schema_metadata(None))


def test_dask_strict_reports_file_row(tmp_path, capsys):
    t = data(500)
    rating = t.column("rating").to_pylist()
    first_bad = next(i for i, r in enumerate(rating) if r > 5)
    src = tmp_path / "r.parquet"
    pq.write_table(t, src)
    assert main([str(src), "-o", str(tmp_path / "p.parquet"), "--strict", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert f"row {first_bad} " in err and "r.parquet" in err
    # as a user runs it: one clear line, no worker traceback before it (the workers' stderr
    # is the terminal, which capsys does not see)
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "rcfast.weekly", str(src), "-o",
                           str(tmp_path / "p.parquet"), "--strict", "--workers", "2", "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and f"row {first_bad} " in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


def test_dask_reads_product_partitioned_files(tmp_path):
    """Files that hold whole products each (rcfast.combine output) give the same panel."""
    t = data(3000, seed=9)
    pids = t.column("product_id").to_pylist()
    d = tmp_path / "combined"
    d.mkdir()
    meta = {b"rcfast.partitioning": json.dumps({"by": "product_id", "n": 3}).encode()}
    for k in range(3):
        idx = [i for i, p in enumerate(pids) if hash(p) % 3 == k]  # whole products per file
        part = t.take(pa.array(idx, type=pa.int64()))
        pq.write_table(part.replace_schema_metadata(meta), d / f"part-{k:05d}.parquet")
    single, multi = tmp_path / "s.parquet", tmp_path / "m.parquet"
    assert main([str(d), "-o", str(single), "--quiet"]) == 0
    assert main([str(d), "-o", str(multi), "--quiet", "--workers", "2"]) == 0
    assert pq.read_table(single).replace_schema_metadata(None).equals(
        pq.read_table(multi).replace_schema_metadata(None))
    s = json.loads((tmp_path / "m.summary.json").read_text())
    assert s["options"]["engine"] == "dask"
    assert s["rows_read"] == 3000


def test_worker_memory_limit_too_small_is_one_line(tmp_path, capsys):
    src = tmp_path / "r.parquet"
    pq.write_table(data(100), src)
    assert main([str(src), "-o", str(tmp_path / "p.parquet"), "--workers", "2",
                 "--memory-limit", "100MB"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "per worker" in err[0]
