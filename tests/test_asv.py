"""The asv suite: it imports, passes ``asv check``, and every benchmark runs (CI's smoke run).

A benchmark that raises makes ``asv run`` exit 2 and this test fail, so a broken benchmark fails
CI (shown once in docs/asv.md). The smoke run (``RCFAST_ASV_SMOKE=1``) gives every benchmark
tiny inputs and runs it once (``--quick``): it proves the benchmark works, it times nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ASV_DIR = Path(__file__).resolve().parents[1] / "asv_bench"
needs_asv = pytest.mark.skipif(shutil.which("asv") is None, reason="asv not installed")


def _asv_env(home: Path) -> dict[str, str]:
    """asv keeps its machine file in $HOME: a temporary one leaves the user's alone. The
    rcfast caches (generated inputs, compiled kernels) stay where they were."""
    from rcfast.synth import default_cache_dir

    return dict(os.environ, HOME=str(home), RCFAST_CACHE=str(default_cache_dir()),
                RCFAST_ASV_SMOKE="1")


@needs_asv
def test_asv_check():
    proc = subprocess.run(["asv", "check", "--python=same"], cwd=ASV_DIR, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No problems found" in proc.stdout


def _smoke_config(tmp_path: Path) -> Path:
    """asv.conf.json with results and html in ``tmp_path``: the smoke run leaves the tracked
    results (asv_bench/results/) alone."""
    conf = json.loads(re.sub(r"^\s*//.*$", "", (ASV_DIR / "asv.conf.json").read_text(),
                             flags=re.M))
    conf.update(repo=str(ASV_DIR.parent), benchmark_dir=str(ASV_DIR / "benchmarks"),
                results_dir=str(tmp_path / "results"), html_dir=str(tmp_path / "html"),
                env_dir=str(tmp_path / "env"))
    path = tmp_path / "asv.conf.json"
    path.write_text(json.dumps(conf))
    return path


@needs_asv
def test_every_benchmark_runs(tmp_path):
    env = _asv_env(tmp_path)
    conf = str(_smoke_config(tmp_path))
    subprocess.run(["asv", "machine", "--machine", "ci-smoke", "--yes", "--config", conf],
                   cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)
    proc = subprocess.run(["asv", "run", "--config", conf, "--python=same", "--quick",
                           "--dry-run", "--show-stderr", "--machine", "ci-smoke",
                           "--launch-method", "forkserver",
                           # the machine may be busy: a slow benchmark is not a broken one
                           "-a", "timeout=900"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    out = proc.stdout + proc.stderr
    failed = [line for line in out.splitlines() if re.search(r"\bfailed\b", line)]
    first = out.find(failed[0]) if failed else max(0, len(out) - 6000)
    assert proc.returncode == 0 and not failed, "\n".join(failed) + "\n" + out[first:first + 8000]
    total = re.search(r"Running (\d+) total benchmarks", out)
    # "[ 42.86%] ··· weekly.WeeklyStep.time_weekly   ok" (or its one result): one per benchmark
    ran = set(re.findall(r"^\[\s*[\d.]+%\] ··· ([a-z_]+\.[\w.]+)\s+\S", out, flags=re.M))
    assert total and len(ran) == int(total.group(1)), (sorted(ran), out[-3000:])
    assert {"ratios.WeeklySpeedup.track_speedup", "ratios.CombineSpeedup.track_speedup",
            "weekly.WeeklyStep.time_weekly"} <= ran


def test_every_weekly_benchmark_has_pandas_and_rcfast():
    sys.path.insert(0, str(ASV_DIR))
    try:
        from benchmarks import kernels, weekly
    finally:
        sys.path.remove(str(ASV_DIR))
    for mod in (kernels, weekly):
        classes = [c for c in vars(mod).values() if isinstance(c, type) and hasattr(c, "params")]
        assert classes
        for cls in classes:
            assert cls.params[0][0] == "pandas" and cls.params[0][-1] == "rcfast", cls
            names = dir(cls)
            timed = [n for n in names if n.startswith("time_")]
            assert timed and all("peakmem_" + n[5:] in names for n in timed), cls


def test_ratio_benchmarks_cover_the_peers_and_both_steps():
    sys.path.insert(0, str(ASV_DIR))
    try:
        from benchmarks import ratios
    finally:
        sys.path.remove(str(ASV_DIR))
    for cls in (ratios.WeeklySpeedup, ratios.CombineSpeedup):
        assert cls.params[0] == ["pandas", "polars", "duckdb"], cls
        assert cls.track_speedup.unit == "x"


def test_ratio_is_a_ratio_of_medians(monkeypatch):
    sys.path.insert(0, str(ASV_DIR))
    try:
        from benchmarks import ratios
    finally:
        sys.path.remove(str(ASV_DIR))
    clock = [0.0]
    monkeypatch.setattr(ratios.time, "perf_counter", lambda: clock[0])
    peer_s = iter([3.0, 0.5, 3.0])  # one fast outlier among the peer's runs: the median ignores it
    ours_s = iter([1.0, 1.0, 1.5])

    def advance(durations):
        def run():
            clock[0] += next(durations)
        return run

    assert ratios._median_ratio(advance(peer_s), advance(ours_s), 3) == 3.0
