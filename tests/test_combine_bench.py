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
                     "--workdir", str(tmp_path), "--json", str(out)])
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
