"""A Dask worker killed with SIGKILL in the middle of either stage: Dask reruns its tasks and
the output is identical to an undisturbed run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pyarrow.parquet as pq
import pytest

from rcfast import synth
from rcfast.weekly import main


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Twelve files (twelve split tasks) of generated reviews, and their in-memory panel."""
    d = tmp_path_factory.mktemp("faults")
    src = d / "in"
    src.mkdir()
    whole = synth.write_parquet(d / "all.parquet", 480_000, seed=4, row_group_rows=40_000,
                                compression="snappy")
    pf = pq.ParquetFile(whole)
    for k in range(pf.metadata.num_row_groups):
        pq.write_table(pf.read_row_group(k), src / f"part-{k:03d}.parquet")
    ref = d / "ref.parquet"
    assert main([str(src), "-o", str(ref), "--quiet"]) == 0
    return src, pq.read_table(ref).replace_schema_metadata(None)


def _workers(pid: int) -> list[psutil.Process]:
    """The Dask worker processes of a local cluster started by process ``pid``."""
    out = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in cmd or "multiprocessing.forkserver" in cmd:
            out.append(child)
    return out


@pytest.mark.parametrize("stage", ["split", "panel"])
def test_worker_killed_mid_stage_output_identical(tmp_path, inputs, stage):
    src, expected = inputs
    out = tmp_path / "panel"
    scratch = tmp_path / "scratch"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rcfast.weekly", str(src), "-o", str(out), "--quiet",
         "--workers", "2", "--threads", "1", "--partitions", "8", "--tmp-dir", str(scratch)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 400
        killed = None
        while time.monotonic() < deadline and proc.poll() is None:
            if stage == "split":
                started = bool(list(scratch.rglob("*.arrow")))
            else:
                started = bool(list(tmp_path.glob(".panel.tmp-*/part-*.parquet")))
            workers = _workers(proc.pid)
            if started and workers:
                killed = workers[0]
                killed.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        assert killed is not None, "the run ended before a worker could be killed"
        rc = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0, proc.stderr.read()
    got = pq.read_table(out).replace_schema_metadata(None)
    assert got.equals(expected)
    assert not list(scratch.iterdir())
