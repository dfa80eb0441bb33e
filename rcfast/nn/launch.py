"""Launch-time helpers of ``train/run.py``: Slurm -> torch.distributed environment, run records.

DeepSpeed reads ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; it
reads none of Slurm's variables. Under ``srun`` (one task per GPU, no ``deepspeed`` launcher;
recognised by ``SLURM_STEP_ID``), :func:`slurm_to_torch_env` maps ``SLURM_PROCID``,
``SLURM_LOCALID``, ``SLURM_NTASKS`` and the first host of ``SLURM_JOB_NODELIST`` (expanded by
``scontrol show hostnames``) onto them. Under the ``deepspeed`` launcher (which sets ``RANK``)
nothing is changed; a plain ``python train/run.py`` becomes a world of one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def slurm_hostnames(nodelist: str) -> list[str]:
    """The hosts of a Slurm node list, as Slurm itself expands it (``scontrol show hostnames``):
    ``"gpu[07-08],cpu1"`` -> ``["gpu07", "gpu08", "cpu1"]``. A single plain host name is
    returned as it is (no ``scontrol`` needed); any other list needs ``scontrol`` on PATH."""
    nodelist = nodelist.strip()
    if not nodelist:
        raise ValueError("empty SLURM_JOB_NODELIST")
    if not any(c in nodelist for c in "[],"):
        return [nodelist]
    exe = shutil.which("scontrol")
    if exe is None:
        raise RuntimeError(f"cannot expand the Slurm node list {nodelist!r}: scontrol is not on "
                           f"PATH (set MASTER_ADDR to the first host, or put Slurm's bin on PATH)")
    try:
        r = subprocess.run([exe, "show", "hostnames", nodelist], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"scontrol show hostnames {nodelist!r} failed: {e}") from e
    hosts = r.stdout.split()
    if r.returncode != 0 or not hosts:
        raise RuntimeError(f"scontrol show hostnames {nodelist!r} failed (exit {r.returncode}): "
                           f"{(r.stdout + r.stderr).strip()}")
    return hosts


def first_host(nodelist: str) -> str:
    """First host of a Slurm node list: ``"gpu[07-09,12],cpu1"`` -> ``"gpu07"``."""
    return slurm_hostnames(nodelist)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: DeepSpeed's launcher passes this port when it was given no ``--master_port``
DEEPSPEED_DEFAULT_PORT = "29500"


def _launcher_key() -> str:
    """The deepspeed launcher process that started this rank (all local ranks are its children):
    its pid and start time (the start time tells a reused pid apart)."""
    ppid = os.getppid()
    try:
        start = Path(f"/proc/{ppid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        start = "0"
    return f"{ppid}-{start}"


def port_file(env: dict[str, str] | None = None) -> Path:
    """Where the local rank 0 of a single-node launch writes the port it picked."""
    env = os.environ if env is None else env
    return Path(tempfile.gettempdir()) / f"rcfast-port-{os.getuid()}-{_launcher_key()}"


def agree_on_free_port(env: dict[str, str] | None = None, timeout_s: float = 120.0) -> bool:
    """Single-node launch by ``deepspeed`` without ``--master_port``: replace its default port
    29500 (which another run on the machine may hold) by a free one that all ranks share.

    A world of one just takes a free port. With several ranks, local rank 0 picks one and
    writes it to :func:`port_file` (atomically); the other ranks wait for the file. Returns
    whether MASTER_PORT was changed. A port given explicitly (any other value), several
    nodes, or no launcher: nothing changes.
    """
    env = os.environ if env is None else env
    if env.get("MASTER_PORT") != DEEPSPEED_DEFAULT_PORT:
        return False
    world = int(env.get("WORLD_SIZE", "1"))
    if world == 1:
        env["MASTER_PORT"] = str(free_port())
        return True
    if env.get("CROSS_SIZE", "1") != "1" or int(env.get("LOCAL_SIZE", "0")) != world:
        return False  # several nodes: they cannot share a file; the given port stays
    path = port_file(env)
    if env.get("LOCAL_RANK", "0") == "0":
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(str(free_port()))
        os.replace(tmp, path)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            port = path.read_text().strip()
            if port:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"local rank 0 wrote no rendezvous port to {path} within "
                               f"{timeout_s:.0f} s")
        time.sleep(0.05)
    env["MASTER_PORT"] = port
    return True


def release_port_file() -> None:
    """Local rank 0 removes the port file once every rank has joined (after init)."""
    try:
        port_file().unlink()
    except OSError:
        pass


def slurm_to_torch_env(env: dict[str, str] | None = None) -> str:
    """Fill the torch.distributed variables; returns how: "launcher", "slurm" or "single"."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        return "launcher"
    # only inside an srun step (SLURM_STEP_ID set): the batch script itself also carries
    # SLURM_PROCID=0 and the job's SLURM_NTASKS, but it is one process
    if ("SLURM_STEP_ID" in env and "SLURM_PROCID" in env and "SLURM_NTASKS" in env
            and int(env["SLURM_NTASKS"]) > 1):
        env["RANK"] = env["SLURM_PROCID"]
        env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
        env["WORLD_SIZE"] = env["SLURM_NTASKS"]
        env.setdefault("LOCAL_SIZE", env.get("SLURM_NTASKS_PER_NODE", "1").split("(")[0])
        if "MASTER_ADDR" not in env:
            env["MASTER_ADDR"] = first_host(env.get("SLURM_JOB_NODELIST",
                                                    env.get("SLURM_NODELIST", "")))
        env.setdefault("MASTER_PORT", "29500")
        return "slurm"
    env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"] = "0", "0", "1"
    env.setdefault("LOCAL_SIZE", "1")
    env.setdefault("MASTER_ADDR", "127.0.0.1")
    env.setdefault("MASTER_PORT", str(free_port()))
    return "single"


#: DeepSpeed's CPU all-reduce keeps one POSIX shared-memory segment per rank in /dev/shm, named
#: after the uid, MASTER_ADDR, MASTER_PORT and rank, and never unlinks it: every run would leave
#: 67 MB of RAM per rank behind (it added up to 13 GB on a test machine).
SHM_PREFIX = "deepspeed_allreduce_buffer"


def shm_buffer_path(env: dict[str, str] | None = None) -> Path:
    """This rank's DeepSpeed all-reduce segment (it exists only on CPU runs)."""
    env = os.environ if env is None else env
    name = (f"{SHM_PREFIX}_{os.getuid()}_{env.get('MASTER_ADDR', '')}_"
            f"{env.get('MASTER_PORT', '')}_{env.get('RANK', '0')}")
    return Path("/dev/shm") / name


def release_shm_buffer() -> bool:
    """Unlink this rank's segment; call at exit, after the last collective (the mapping stays
    valid for the process itself). Returns whether there was one."""
    try:
        shm_buffer_path().unlink()
        return True
    except OSError:  # none (GPU run, other OS) or already gone
        return False


def git_info(path: Path) -> dict[str, object]:
    def run(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=path, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    try:
        commit = run("rev-parse", "HEAD")
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    except Exception:
        commit, dirty = "", False
    return {"commit": commit or "unknown", "dirty": dirty}


class MetricsLog:
    """Append-only JSONL metrics, and TensorBoard scalars when tensorboard is installed."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.f = open(run_dir / "metrics.jsonl", "a") if enabled else None
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(run_dir / "tb"))
            except Exception:  # tensorboard not installed
                self.tb = None

    def log(self, step: int, **values: float) -> None:
        if not self.enabled:
            return
        rec = {"step": step, "time": round(time.time(), 3), **values}
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.f:
            self.f.close()
        if self.tb is not None:
            self.tb.close()


def checkpoint_tags(ckpt_dir, max_step: int | None = None) -> list[str]:
    """Tags ``stepNNNNNNNN`` of the checkpoints in ``ckpt_dir``, oldest first (up to max_step)."""
    tags = []
    for d in Path(ckpt_dir).glob("step*"):
        if d.is_dir() and d.name[4:].isdigit() and (max_step is None
                                                     or int(d.name[4:]) <= max_step):
            tags.append(d.name)
    return sorted(tags, key=lambda t: int(t[4:]))


def average_state_dicts(states: list[dict]) -> dict:
    """Uniform average of fp32 state dicts with the same keys (SWA-style weight averaging)."""
    if not states:
        raise ValueError("average_state_dicts: no state dicts")
    keys = list(states[0])
    for s in states[1:]:
        if list(s) != keys:
            raise ValueError("average_state_dicts: state dicts have different keys")
    out = {}
    for k in keys:
        acc = states[0][k].detach().double().clone()
        for s in states[1:]:
            acc += s[k].detach().double()
        out[k] = (acc / len(states)).float()
    return out


# ------------------------------------------------------------------------------------------
# Slurm time limits and preemption
# ------------------------------------------------------------------------------------------
#: the exit status of a run that stopped early on request, with a checkpoint to resume from
EXIT_REQUEUE = 75


class StopRequest:
    """Remembers a SIGUSR1: Slurm's warning before the time limit (``#SBATCH
    --signal=B:USR1@N``, forwarded to the ranks by the batch script) or a preemption notice.

    The handler only sets a flag; the training loop reads it at the next step boundary, where
    all ranks agree on it (with the loss all-reduce), write a checkpoint and stop.
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGUSR1,)) -> None:
        self.requested = False
        self.signum = 0
        for s in signals:
            signal.signal(s, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True
        self.signum = signum


def requeue_job(env: dict[str, str] | None = None) -> tuple[bool, str]:
    """``scontrol requeue $SLURM_JOB_ID`` (the job must be requeueable: ``--requeue``).
    Returns (whether Slurm accepted it, what happened in words)."""
    env = os.environ if env is None else env
    job = env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID") and \
        f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}" or env.get("SLURM_JOB_ID")
    if not job:
        return False, "not a Slurm job (no SLURM_JOB_ID): resume it with --resume"
    try:
        r = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"scontrol requeue {job} failed: {e}"
    if r.returncode != 0:
        return False, f"scontrol requeue {job} failed: {(r.stdout + r.stderr).strip()}"
    return True, f"job {job} requeued; it resumes from the checkpoint"
