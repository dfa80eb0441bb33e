"""Real Slurm jobs for the tests (no mocks): the environment, the controller check, submitting a
job, waiting for it and reading its log. Used by tests/test_slurm.py and tests/test_train_slurm.py.

CI brings up a single-node cluster first (``bash .ci/slurm-up.sh``); without ``sbatch`` on PATH,
or without a controller that answers, :func:`usable_node_cpus` skips the test with the reason.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: node states (sinfo %T) a job can start on
USABLE_STATES = ("idle", "mixed", "allocated", "completing")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the variables of an enclosing Slurm job (pytest may itself run
    inside one), with this interpreter (``PYTHON``) and this checkout for the jobs."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SLURM_") or k == "SLURM_CONF"}
    env["PYTHON"] = sys.executable
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run(cmd: list[str], timeout: float = 15) -> subprocess.CompletedProcess:
    """A Slurm client command (scontrol, sinfo, squeue, scancel) in :func:`clean_env`."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=clean_env())


def usable_node_cpus(min_cpus: int = 1) -> int:
    """The CPUs of the largest usable node; skips the test unless a Slurm controller answers
    with a usable node of at least ``min_cpus`` CPUs."""
    if shutil.which("sbatch") is None:
        pytest.skip("sbatch is not on PATH (bring up Slurm with: bash .ci/slurm-up.sh)")
    try:
        ping = run(["scontrol", "ping"])
        nodes = run(["sinfo", "-h", "-N", "-o", "%T %c"])
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"the Slurm controller does not answer: {exc}")
    if ping.returncode != 0 or "UP" not in ping.stdout:
        pytest.skip(f"the Slurm controller does not answer: {(ping.stdout + ping.stderr).strip()}")
    usable = [int(c) for state, c in (line.split() for line in nodes.stdout.splitlines())
              if state in USABLE_STATES]
    if not usable or max(usable) < min_cpus:
        pytest.skip(f"no usable Slurm node with {min_cpus} CPU(s): "
                    f"{nodes.stdout.strip() or nodes.stderr.strip()}")
    return max(usable)


@dataclasses.dataclass
class Job:
    """A submitted batch job: its sbatch command, id and log file (``--output``)."""

    name: str
    cmd: list[str]
    log_path: Path
    id: str = ""
    #: sbatch's exit status; with ``wait``, the job's exit code
    returncode: int | None = None
    #: what sbatch itself printed
    output: str = ""

    def state(self) -> tuple[str, int]:
        """(JobState, Restarts) from scontrol, ("", -1) once the record is gone (MinJobAge)."""
        r = run(["scontrol", "-o", "show", "job", self.id])
        if r.returncode != 0:
            return "", -1
        fields = dict(f.split("=", 1) for f in r.stdout.split() if "=" in f)
        return fields.get("JobState", ""), int(fields.get("Restarts", "0"))

    def log(self, tail: int | None = None) -> str:
        """The command, sbatch's answer and the job log (its last ``tail`` characters)."""
        text = (self.log_path.read_text(errors="replace") if self.log_path.exists()
                else "(no log)")
        if tail is not None:
            text = text[-tail:]
        return (f"$ {' '.join(self.cmd)}\n{self.output}job {self.id}\n"
                f"--- job log ---\n{text}")

    def cancel(self) -> None:
        """scancel the job unless it has completed (or Slurm has forgotten it)."""
        if self.id and self.state()[0] not in ("", "COMPLETED"):
            run(["scancel", self.id])


def submit(script: Path, *args: str, log_dir: Path, options: tuple | list = (),
           env: dict[str, str] | None = None, chdir: Path | None = None, wait: bool = False,
           timeout: float = 30, name_prefix: str = "rcfast-test") -> Job:
    """``sbatch`` ``script`` with a unique job name and its log in ``log_dir/NAME.out`` (a
    requeued job appends to it). ``wait``: ``sbatch --wait``, the job's exit code in
    :attr:`Job.returncode`; a job still running after ``timeout`` seconds (queueing included)
    is cancelled and the test fails. Without ``wait`` the submission must succeed."""
    name = f"{name_prefix}-{uuid.uuid4().hex[:8]}"
    log = log_dir / f"{name}.out"
    cmd = ["sbatch", *(["--wait"] if wait else []), "--parsable", f"--job-name={name}",
           f"--chdir={chdir or log_dir}", f"--output={log}", *options, str(script), *args]
    job = Job(name=name, cmd=cmd, log_path=log)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=env or clean_env())
    except subprocess.TimeoutExpired:
        subprocess.run(["scancel", f"--name={name}"], timeout=15, check=False)
        pytest.fail(f"job {name} did not finish within {timeout:.0f}s (cancelled); "
                    f"squeue: {run(['squeue']).stdout}\nsinfo: {run(['sinfo', '-N']).stdout}\n"
                    f"{job.log(6000)}")
    job.returncode, job.output = proc.returncode, proc.stdout + proc.stderr
    job.id = proc.stdout.strip().split(";")[0].split("\n")[0]
    if not wait:
        assert proc.returncode == 0, job.log()
    return job
