"""The published asv dashboard, opened in a real headless browser (Debian's chromium).

The landing page must link the views that matter, each view must draw its graph on a log scale
with the intended x axis and this machine selected, and the tracked results must give the weekly
step at least ten commits of history. Skipped with the reason where chromium is missing.
"""

from __future__ import annotations

import shutil

import pytest

from rcfast.bench import asv as A

pytestmark = [
    pytest.mark.skipif(A.find_chromium() is None,
                       reason="chromium not installed (Debian: apt-get install -y chromium)"),
    pytest.mark.skipif(shutil.which("asv") is None, reason="asv not installed"),
]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    html = tmp_path_factory.mktemp("html")
    machine = A._stored_machine()
    assert A.cmd_publish(["--machine", machine, "-o", str(html)]) == 0
    return html, machine


def test_dashboard_in_chromium(published):
    html, machine = published
    with A.serve(html) as base:
        assert A.check_dashboard(base, machine) == []


def test_weekly_history_has_ten_commits(published):
    html, _ = published
    assert A.commits_with_results(html, "weekly.WeeklyStep.time_weekly") >= 10
    assert A.commits_with_results(html, "ratios.WeeklySpeedup.track_speedup") >= 10


def test_the_check_sees_a_dashboard_whose_scripts_do_not_load(published, tmp_path):
    html, machine = published
    broken = tmp_path / "html"
    shutil.copytree(html, broken)
    shutil.rmtree(broken / "vendor")
    with A.serve(broken) as base:
        problems = A.check_dashboard(base, machine)
    assert any("did not run" in p for p in problems), problems
