"""slurm/weekly*.sbatch on a real Slurm cluster (no mocks).

CI brings up a single-node cluster first (``bash .ci/slurm-up.sh``); without ``sbatch`` on
PATH, or without a controller that answers, the job tests are skipped (the guard tests, which
only need bash, always run). Every job is submitted with ``sbatch --wait`` into a temporary
directory and its panel compared with the in-process ``rcfast.weekly.main`` run.

Node lists (``SLURM_JOB_NODELIST``) are expanded by the real ``scontrol show hostnames``, which
needs no cluster (skipped only where scontrol is not installed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from slurm_jobs import REPO, clean_env, submit, usable_node_cpus

from rcfast.nn.launch import first_host, slurm_hostnames, slurm_to_torch_env

WEEKLY = REPO / "slurm" / "weekly.sbatch"
MULTINODE = REPO / "slurm" / "weekly-multinode.sbatch"
JOB_TIMEOUT_S = 150  # per job, queueing included
ROWS = 20_000


@pytest.fixture(scope="module")
def node_cpus() -> int:
    """Skip unless a Slurm controller answers with a usable node; the CPUs the jobs ask for."""
    return min(2, usable_node_cpus())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """A small input and its panel from the in-process run (the reference)."""
    from rcfast import synth
    from rcfast.weekly import main

    d = tmp_path_factory.mktemp("slurm-data")
    inp = synth.write_parquet(d / "reviews.parquet", ROWS, seed=1)
    ref = d / "reference.parquet"
    assert main([str(inp), "-o", str(ref), "--quiet"]) == 0
    return {"input": inp.resolve(), "reference": ref.resolve()}


def table(path: Path):
    return pq.read_table(path).replace_schema_metadata(None)


def sbatch(script: Path, workdir: Path, cpus: int, *args: str, options: tuple = (),
           env: dict | None = None) -> tuple[int, str]:
    """``sbatch --wait`` in ``workdir``; returns (job exit code, job log)."""
    mem = [] if any(o.startswith("--mem") for o in options) else ["--mem=1024M"]
    job = submit(script, *args, log_dir=workdir, env=env, wait=True, timeout=JOB_TIMEOUT_S,
                 options=["--nodes=1", f"--cpus-per-task={cpus}", *mem, "--time=00:05:00",
                          *options])
    return job.returncode, job.log()


needs_scontrol = pytest.mark.skipif(shutil.which("scontrol") is None,
                                    reason="scontrol is not on PATH (Slurm's client tools)")


@needs_scontrol
@pytest.mark.parametrize("nodelist, hosts", [
    ("n[1-3]", ["n1", "n2", "n3"]),
    ("gpu[07-09,12],cpu1", ["gpu07", "gpu08", "gpu09", "gpu12", "cpu1"]),
    ("a[1-2]-ib[3-4]", ["a1-ib3", "a1-ib4", "a2-ib3", "a2-ib4"]),
    ("node5,node6", ["node5", "node6"]),
])
def test_node_list_expanded_by_scontrol(nodelist: str, hosts: list[str]) -> None:
    assert slurm_hostnames(nodelist) == hosts
    assert first_host(nodelist) == hosts[0]


@needs_scontrol
def test_master_addr_from_a_compressed_node_list() -> None:
    env = {"SLURM_PROCID": "2", "SLURM_LOCALID": "0", "SLURM_NTASKS": "3", "SLURM_STEP_ID": "0",
           "SLURM_JOB_NODELIST": "n[1-3]"}
    assert slurm_to_torch_env(env) == "slurm"
    assert (env["RANK"], env["WORLD_SIZE"], env["MASTER_ADDR"]) == ("2", "3", "n1")


@needs_scontrol
def test_bad_node_list_says_what_scontrol_said() -> None:
    with pytest.raises(RuntimeError, match=r"scontrol show hostnames 'n\[3-1\]' failed"):
        first_host("n[3-1]")


def test_plain_host_needs_no_scontrol(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no scontrol on PATH
    assert slurm_hostnames(" vm\n") == ["vm"] and first_host("gpu-07.local") == "gpu-07.local"
    with pytest.raises(RuntimeError, match="scontrol is not on PATH"):
        first_host("n[1-3]")
    with pytest.raises(ValueError, match="empty"):
        first_host("  ")


@pytest.mark.parametrize("script", [WEEKLY, MULTINODE], ids=lambda p: p.name)
def test_guard_outside_a_job(script: Path, tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(script), str(tmp_path / "in"), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=30, cwd=tmp_path,
                          stdin=subprocess.DEVNULL, env=clean_env())
    assert proc.returncode == 2, proc.stderr
    assert "not inside a Slurm job" in proc.stderr
    assert "sbatch" in proc.stderr  # says how to submit it
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_weekly_sbatch(node_cpus: int, data: dict, tmp_path: Path) -> None:
    out = tmp_path / "panel.parquet"
    rc, log = sbatch(WEEKLY, tmp_path, node_cpus, str(data["input"]), str(out), "--quiet")
    assert rc == 0, log
    assert out.exists(), log
    assert table(out).equals(table(data["reference"])), log
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    # one process, every allocated core a Numba thread
    assert summary["options"]["engine"] == "in-process"
    assert summary["options"]["workers"] == 1
    assert summary["options"]["threads"] == node_cpus


@pytest.mark.slow
def test_weekly_multinode_sbatch_on_one_node(node_cpus: int, data: dict, tmp_path: Path) -> None:
    # INPUT / OUTPUT from the environment this time (the other way of passing them)
    out = tmp_path / "panel-mn"
    env = clean_env(INPUT=str(data["input"]), OUTPUT=str(out), EXTRA_ARGS="--quiet")
    rc, log = sbatch(MULTINODE, tmp_path, node_cpus, env=env)
    assert rc == 0, log
    assert (out / "_summary.json").exists(), log
    assert table(out).equals(table(data["reference"])), log
    summary = json.loads((out / "_summary.json").read_text())
    # one Dask worker on the one node, with every allocated core as its Numba threads
    assert summary["options"]["engine"] == "dask"
    assert summary["options"]["dask_workers"] == 1
    assert summary["options"]["threads"] == node_cpus
    assert "1 Dask worker(s) up" in log
    # the scheduler file and its directory are cleaned up
    assert not list(tmp_path.glob(".rcfast-dask-*")), log


@pytest.mark.slow
def test_weekly_sbatch_bad_input_fails_the_job(node_cpus: int, tmp_path: Path) -> None:
    out = tmp_path / "panel.parquet"
    rc, log = sbatch(WEEKLY, tmp_path, 1, str(tmp_path / "missing.parquet"), str(out))
    assert rc == 2, log  # rcfast.weekly's exit code is the job's
    assert "rcfast.weekly: error" in log
    assert not out.exists()


@pytest.mark.slow
def test_weekly_sbatch_memory_from_mem(node_cpus: int, tmp_path: Path) -> None:
    """The job's --mem sets rcfast's memory limit (half of it); an input that would not fit
    runs out of core, stays under --mem, and gives the in-memory panel."""
    from rcfast import synth
    from rcfast.weekly import main

    inp = synth.write_parquet(tmp_path / "reviews.parquet", 2_500_000, seed=3,
                              row_group_rows=250_000, compression="snappy")
    ref = tmp_path / "reference.parquet"
    assert main([str(inp), "-o", str(ref), "--quiet"]) == 0
    out = tmp_path / "panel.parquet"
    mem_mb = 1500
    rc, log = sbatch(WEEKLY, tmp_path, node_cpus, str(inp), str(out), "--quiet",
                     options=(f"--mem={mem_mb}M",))
    assert rc == 0, log
    assert table(out).equals(table(ref)), log
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["options"]["memory_limit"] == (mem_mb << 20) // 2
    assert summary["options"]["out_of_core"] is True, summary["options"]
    assert 0 < summary["peak_rss_bytes"] < mem_mb << 20, summary["peak_rss_bytes"]
