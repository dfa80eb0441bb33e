"""The combine step from Python, ``rcfast.combine.combine``, against its command line."""

from __future__ import annotations

import pyarrow.dataset as ds

import rcfast
from rcfast.combine import main as combine_main
from rcfast.synth import write_jsonl


def test_python_combine_equals_the_cli(tmp_path):
    dump = tmp_path / "Books.jsonl.gz"
    write_jsonl(dump, n_rows=3000, seed=5)
    summary = rcfast.combine.combine([str(dump)], str(tmp_path / "api"))
    assert combine_main([str(dump), "-o", str(tmp_path / "cli"), "--quiet"]) == 0
    accounted = (summary["rows_written"] + summary["duplicates"] + summary["quarantined_total"]
                 + summary["blank_lines"])
    assert accounted == summary["lines_read"]
    for name in ("api", "cli"):
        assert (tmp_path / name / "_summary.json").exists()
    api = ds.dataset(str(tmp_path / "api")).to_table().sort_by(
        [("product_id", "ascending"), ("timestamp", "ascending"), ("user_id", "ascending")])
    cli = ds.dataset(str(tmp_path / "cli")).to_table().sort_by(
        [("product_id", "ascending"), ("timestamp", "ascending"), ("user_id", "ascending")])
    assert api.num_rows == summary["rows_written"] > 0
    assert api.equals(cli)
