"""slurm/train.sbatch on a real Slurm cluster (no mocks): time limit -> checkpoint -> requeue.

CI brings up a single-node cluster first (``bash .ci/slurm-up.sh``); without ``sbatch`` on PATH,
or without a controller that answers, the job test is skipped with the reason.

The job is ``slurm/train.sbatch`` itself with two CPU ranks (``DS_ACCELERATOR=cpu``, the
deepspeed launcher), and ``slurm/train-multinode.sbatch`` with two ``srun`` tasks on the one
node. Once it has trained some steps, the test sends the batch script SIGUSR1
the way Slurm does ahead of the time limit with ``--signal=B:USR1@N``
(``scancel --signal=USR1 --batch``; a real ``--time`` limit is checked by Slurm only every
~30-60 s, which would make the test slow and its timing loose). The script passes the signal to
the ranks, they write a checkpoint at the next step boundary and requeue the job; the requeued
job resumes (``--resume``) and must end with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slurm_jobs import REPO, clean_env, run, submit, usable_node_cpus

torch = pytest.importorskip("torch")
pytest.importorskip("deepspeed")

TRAIN = REPO / "slurm" / "train.sbatch"
MULTINODE = REPO / "slurm" / "train-multinode.sbatch"
RUN = REPO / "train" / "run.py"
CONFIGS = REPO / "train" / "configs"
JOB_TIMEOUT_S = 600  # the whole job, requeue and queueing included
STEPS = 600
SIGNAL_AFTER_STEP = 30
ARGS = ["--max-steps", str(STEPS), "--set", "d_model=16", "--set", "n_heads=2",
        "--set", "d_ff=32", "--set", "n_layers=1", "--set", "log_every=1",
        "--set", "eval_every=0", "--set", "eval_batch_size=512", "--set", "warmup_steps=10",
        "--set", "lr=0.005", "--set", "micro_batch_size=64", "--set", "ckpt_every=200",
        "--set", "average_last=2", "--no-eval"]


@pytest.fixture(scope="module")
def slurm_up() -> None:
    """Skip unless a Slurm controller answers with a usable node of at least 2 CPUs."""
    usable_node_cpus(min_cpus=2)


@pytest.fixture(scope="module")
def reference(train_panel, tmp_path_factory) -> Path:
    """The same training without interruption (deepspeed launcher, two CPU ranks)."""
    ref_dir = tmp_path_factory.mktemp("reference") / "run"
    exe = shutil.which("deepspeed")
    head = [exe] if exe else [sys.executable, "-m", "deepspeed.launcher.runner"]
    ref = subprocess.run([*head, "--num_gpus", "2", str(RUN), "--panel", str(train_panel),
                          "--out", str(ref_dir), "--deepspeed_config",
                          str(CONFIGS / "zero1_cpu.json"), *ARGS],
                         env=clean_env(DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1",
                                       TQDM_DISABLE="1"),
                         capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stdout[-3000:] + ref.stderr[-3000:]
    return ref_dir


def _steps_logged(run_dir: Path) -> int:
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return 0
    steps = [json.loads(x)["step"] for x in lines if x.endswith("}")]
    return max(steps, default=0)


def _weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "model.pt", weights_only=False)


@pytest.mark.slow
@pytest.mark.parametrize("script", [TRAIN, MULTINODE], ids=lambda p: p.name)
def test_time_limit_signal_checkpoints_requeues_and_resumes_exactly(slurm_up, train_panel,
                                                                    reference, script, tmp_path):
    run_dir = tmp_path / "slurm-run"
    env = clean_env(PANEL=str(train_panel), RUN_DIR=str(run_dir),
                    DS_CONFIG=str(CONFIGS / "zero1_cpu.json"), NUM_GPUS="2",
                    DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1",
                    TQDM_DISABLE="1", EXTRA_ARGS=" ".join(ARGS),
                    PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    # the scripts' GPU and memory requests are for GPU nodes: this test node has 2 CPUs; one
    # launcher task with 2 CPUs (train.sbatch), or 2 srun tasks = ranks of 1 CPU (multinode)
    tasks = ["--ntasks-per-node=1", "--cpus-per-task=2"] if script == TRAIN else \
        ["--ntasks-per-node=2", "--cpus-per-task=1"]
    job = submit(script, log_dir=tmp_path, chdir=REPO, env=env, name_prefix="rcfast-train-test",
                 options=["--nodes=1", *tasks, "--gpus-per-node=0", "--mem=3G",
                          "--time=00:10:00"])

    deadline = time.monotonic() + JOB_TIMEOUT_S
    try:
        # 1. let it train a little, then the time-limit warning (to the batch script, as
        #    --signal=B:USR1@N does)
        while _steps_logged(run_dir) < SIGNAL_AFTER_STEP:
            assert time.monotonic() < deadline, "the job trained no steps:\n" + job.log(6000)
            state, _ = job.state()
            assert state in ("PENDING", "CONFIGURING", "RUNNING"), \
                f"job {state} before the signal:\n{job.log(6000)}"
            time.sleep(0.2)
        sig = run(["scancel", "--signal=USR1", "--batch", job.id])
        assert sig.returncode == 0, sig.stderr
        # 2. it checkpoints, requeues, runs again and completes
        restarts, gone = 0, False
        while not (run_dir / "model.pt").exists() or not gone:
            assert time.monotonic() < deadline, "the job did not finish:\n" + job.log(6000)
            state, r = job.state()
            restarts = max(restarts, r)
            gone = state in ("COMPLETED", "") or state.startswith("FAIL")
            # Slurm holds a requeued job about two minutes before it starts again (145 s
            # here). Releasing it early raced with slurmd's revoked credential of the first
            # run ("Killing non-startable batch job: Job credential revoked"): the test waits.
            time.sleep(0.5)
        assert state in ("COMPLETED", ""), f"job ended {state}:\n{job.log(6000)}"
    finally:
        job.cancel()
    text = job.log()
    assert restarts == 1, job.log(6000)
    assert f"{script.name}: SIGUSR1" in text, job.log(6000)        # the batch script's trap
    assert "DUE TO JOB REQUEUE" in text, job.log(6000)             # Slurm's own word
    assert text.count("precision ") == 2, job.log(6000)            # two starts of rank 0
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    stop = [r for r in recs if "requeued" in r]
    assert len(stop) == 1 and stop[0]["requeued"] is True, stop
    k = stop[0]["step"]
    assert SIGNAL_AFTER_STEP <= k < STEPS and k % 200 != 0, k  # a step between checkpoints
    assert (run_dir / f"hparams.resume{k}.json").exists()
    assert (run_dir / "checkpoints" / f"step{k:08d}").is_dir()

    # 3. the same weights as the uninterrupted run (two ranks, same config)
    ref_dir = reference
    a, b = _weights(run_dir), _weights(ref_dir)
    # the requeue checkpoint is not among those averaged
    assert a["averaged_checkpoints"] == b["averaged_checkpoints"] == \
        ["step00000400", "step00000600"]
    for key in b["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    # and the losses after the resume point are the uninterrupted run's
    ref_loss = {r["step"]: r["loss"] for r in map(json.loads, (ref_dir / "metrics.jsonl")
                                                  .read_text().splitlines()) if "loss" in r}
    got_loss = {r["step"]: r["loss"] for r in recs if "loss" in r}
    assert all(got_loss[s] == ref_loss[s] for s in range(k + 1, STEPS + 1))
