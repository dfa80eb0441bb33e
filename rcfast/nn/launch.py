"""Launch-time helpers of ``train/run.py``: Slurm -> torch.distributed environment, run records.

DeepSpeed reads ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; it
reads none of Slurm's variables. Under ``srun`` (one task per GPU, no ``deepspeed`` launcher;
recognised by ``SLURM_STEP_ID``),
:func:`slurm_to_torch_env` maps ``SLURM_PROCID``, ``SLURM_LOCALID``, ``SLURM_NTASKS`` and the first
host of ``SLURM_JOB_NODELIST`` onto them. Under the ``deepspeed`` launcher (which sets ``RANK``)
nothing is changed; a plain ``python train/run.py`` becomes a world of one.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path


def first_host(nodelist: str) -> str:
    """First host of a Slurm node list: ``"gpu[07-09,12],cpu1"`` -> ``"gpu07"``."""
    nodelist = nodelist.strip()
    if not nodelist:
        raise ValueError("empty SLURM_JOB_NODELIST")
    depth, end = 0, len(nodelist)
    for i, ch in enumerate(nodelist):  # first top-level comma
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            end = i
            break
    item = nodelist[:end]
    m = re.match(r"^([^\[]*)\[([^\]]+)\](.*)$", item)
    if not m:
        return item
    prefix, ranges, suffix = m.groups()
    first = ranges.split(",")[0].split("-")[0]
    # a second bracket group (rare: "n[1-2]-ib[0-1]") keeps its first element too
    if "[" in suffix:
        suffix = first_host(suffix)
    return f"{prefix}{first}{suffix}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
