"""A small run of ``python -m rcfast.bench combine`` (the comparison script)."""

from __future__ import annotations

import json

import pytest

from rcfast.bench import combine as bench
from rcfast.bench.__main__ import main as bench_main


def test_bench_combine_small(tmp_path, capsys):
    pytest.importorskip("rcfast.synth")
    out = tmp_path / "r.json"
    rc = bench_main(["combine", "--rows", "3000", "--tools", "rcfast,pyarrow", "--malformed",
                     "--cache-dir", str(tmp_path), "--json", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["runs"]["rcfast"]["rows"] == 3000
    assert report["runs"]["pyarrow"]["rows"] == 3000
    assert report["malformed"]["rcfast"]["ok"] is True
    assert report["malformed"]["pyarrow"]["ok"] is False  # the truncated gzip stops it
    text = capsys.readouterr().out
    assert "rcfast" in text and "stopped with an error" in text


def test_bench_combine_bad_usage(capsys):
    assert bench.main(["--tools", "nope"]) == 2


def test_bench_combine_repeat_reports_the_median_run(tmp_path, capsys):
    pytest.importorskip("polars")
    out = tmp_path / "r.json"
    rc = bench_main(["combine", "--rows", "2000", "--tools", "rcfast,polars", "--repeat", "3",
                     "--cache-dir", str(tmp_path), "--json", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    for tool in ("rcfast", "polars"):
        run = report["runs"][tool]
        assert run["rows"] == 2000 and len(run["all_seconds"]) == 3
        assert run["seconds"] == sorted(run["all_seconds"])[1]
    text = capsys.readouterr().out
    assert "median of 3 interleaved rounds" in text and "(runs " in text
    assert bench.main(["--repeat", "0"]) == 2


def test_median_run_counts_failures_as_slowest():
    from rcfast.bench._harness import Measurement

    def m(secs, rc=0):
        return Measurement("x", 1.0, 0, rc, {"seconds": secs} if secs else {}, "")

    assert bench.median_run([m(3.0), m(None, 1), m(1.0)]).result["seconds"] == 3.0
    assert bench.median_run([m(2.0), m(1.0), m(5.0), m(4.0)]).result["seconds"] == 2.0
