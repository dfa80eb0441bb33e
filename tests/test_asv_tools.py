"""``python -m rcfast.bench asv``: commit picking, the ratio gate, the pins, the dashboard's
landing links and local scripts (the slow parts, asv runs and chromium, are in test_asv*.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from rcfast.bench import asv as A


def test_pick_commits_spreads_evenly_and_keeps_the_newest():
    revs = [f"c{i:02d}" for i in range(22)]
    picked = A.pick_commits(revs, 10)
    assert len(picked) == 10 and picked[-1] == "c21" and picked[0] == "c00"
    assert picked == sorted(picked)
    assert A.pick_commits(revs[:3], 10) == revs[:3]
    assert A.pick_commits(revs, 1) == ["c21"]


def test_compare_gates_the_geometric_mean_over_the_peers():
    def k(peer):
        return ("ratios.WeeklySpeedup.track_speedup", (f"'{peer}'", "1000000"))

    old = {k("pandas"): 5.0, k("polars"): 4.0, k("duckdb"): 6.0}
    # one peer's ratio halves (noise in that peer): the step holds
    lines, failures = A.compare_ratios(old, {**old, k("polars"): 2.0}, 0.25)
    assert failures == [] and len(lines) == 4
    # rcfast 1.5x slower: every ratio falls by a third
    lines, failures = A.compare_ratios(old, {key: v / 1.5 for key, v in old.items()}, 0.25)
    assert failures == ["WeeklySpeedup(1000000)"]
    assert "REGRESSION" in lines[-1] and "-33.3%" in lines[-1]
    # 20 % slower: within the threshold
    assert A.compare_ratios(old, {key: v / 1.2 for key, v in old.items()}, 0.25)[1] == []


def test_pins_match_the_asv_matrix():
    """The versions asv writes into each result (its matrix) are the ones the recorder checks."""
    pins = A.read_pins()
    conf = json.loads(re.sub(r"^\s*//.*$", "", (A.ASV_DIR / "asv.conf.json").read_text(),
                             flags=re.M))
    assert conf["matrix"]["req"] == {k: pins[k] for k in conf["matrix"]["req"]}
    assert {"pandas", "polars", "duckdb"} <= set(pins)


def test_pin_mismatches_are_reported(tmp_path):
    pins = tmp_path / "pins.txt"
    pins.write_text("# a comment\npytest==0.0.1\nno-such-package-rcfast==1.0\n")
    bad = A.pin_mismatches(A.read_pins(pins))
    assert len(bad) == 2 and "not installed" in bad[1]
    pins.write_text("pytest>=1\n")
    with pytest.raises(ValueError):
        A.read_pins(pins)


@pytest.fixture
def asv_index(tmp_path) -> Path:
    asv = pytest.importorskip("asv")
    html = tmp_path / "html"
    html.mkdir()
    shutil.copy(Path(asv.__file__).parent / "www" / "index.html", html / "index.html")
    return html


def test_landing_links_and_local_scripts(asv_index):
    index = asv_index / "index.html"
    A.add_views(index, "box")
    A.add_views(index, "box")  # idempotent: publishing twice leaves one panel
    assert A.vendor_assets(asv_index) == []
    html = index.read_text()
    assert html.count('id="rcfast-views"') == 1
    assert html.count('class="rcfast-view"') == len(A.VIEWS)
    assert "#weekly.WeeklyStep.time_weekly?machine=box&x-axis=rows&y-axis-scale=log" in html
    assert not re.search(r'<script[^>]*src="https?://', html)
    for ref in re.findall(r'(?:src|href)="(vendor/[^"]+)"', html):
        assert (asv_index / ref).is_file(), ref
