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
