"""``python -m rcfast.bench scale`` runs every contender and measures its process tree."""

from __future__ import annotations

import json

from rcfast.bench.__main__ import main as bench_main


def test_scale_bench_small(tmp_path):
    out = tmp_path / "scale.json"
    rc = bench_main(["scale", "--rows", "20000", "--tools", "rcfast,rcfast-limit,rcfast-dask",
                     "--memory-limit", "800MB", "--workers", "2", "--json", str(out),
                     "--plot", str(tmp_path / "scale.png"), "--work-dir", str(tmp_path / "w")])
    assert rc == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["tool"] for r in runs] == ["rcfast", "rcfast-limit", "rcfast-dask"]
    assert all(r["returncode"] == 0 and r["peak_tree_bytes"] > 0 for r in runs)
    dask = runs[2]
    assert dask["peak_tree_bytes"] > dask["peak_client_bytes"]  # the workers are counted
    assert (tmp_path / "scale.png").stat().st_size > 0


def test_scale_bench_unknown_tool():
    assert bench_main(["scale", "--tools", "spark"]) == 2


def test_p2p_shuffle_contender_moves_every_row(tmp_path):
    """Dask's P2P shuffle, measured against rcfast's split stage, really shuffles the input:
    every row lands in the output, each product in one partition."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from rcfast import synth
    from rcfast.bench.scale import commands
    from rcfast.bench.scale import run_tree

    src = synth.demo_parquet(n_rows=20_000)
    out = tmp_path / "shuffled"
    tmp = tmp_path / "scratch"
    tmp.mkdir()
    run = run_tree("dask-p2p-shuffle", 20_000,
                   commands("dask-p2p-shuffle", src, out, "800MB", 2, tmp), timeout=300)
    assert run.returncode == 0, run.stderr_tail
    parts = sorted(out.glob("*.parquet"))
    assert len(parts) == 4  # at least two per worker
    homes: dict[str, set[int]] = {}
    rows = 0
    for i, part in enumerate(parts):
        ids = pq.read_table(part, columns=["product_id"]).column(0).to_pylist()
        rows += len(ids)
        for pid in set(ids):
            homes.setdefault(pid, set()).add(i)
    assert rows == ds.dataset(str(src)).count_rows()
    assert all(len(h) == 1 for h in homes.values())
