"""The asv suite imports, has the pandas baseline beside rcfast, and passes ``asv check``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ASV_DIR = Path(__file__).resolve().parents[1] / "asv_bench"


@pytest.mark.skipif(shutil.which("asv") is None, reason="asv not installed")
def test_asv_check():
    proc = subprocess.run(["asv", "check", "--python=same"], cwd=ASV_DIR, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No problems found" in proc.stdout


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
