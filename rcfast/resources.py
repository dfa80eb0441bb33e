"""What this process may use of the machine: one place that asks (CPU count here; memory
detection belongs here too)."""

from __future__ import annotations

import os

__all__ = ["DEFAULT_MEMORY_SHARE", "available_cpus", "available_memory", "parse_size"]


def available_cpus() -> int:
    """Cores this process may use: ``SLURM_CPUS_PER_TASK`` inside a Slurm job (the scheduler's
    share, which affinity may not reflect), else the CPU affinity mask, else ``os.cpu_count()``."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


#: The share of the memory this process may use that the weekly step plans for by default:
#: the rest covers the interpreter, other processes of the job and the estimate's error.
DEFAULT_MEMORY_SHARE = 0.5


def _cgroup_limits() -> list[tuple[int, str]]:
    """Memory limits of this process's cgroups (v2 ``memory.max``, v1
    ``memory.limit_in_bytes``), its own and its ancestors'; unlimited ones left out."""
    found: list[tuple[int, str]] = []
    try:
        lines = open("/proc/self/cgroup").read().splitlines()
    except OSError:
        return found
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            root, name = "/sys/fs/cgroup", "memory.max"
        elif "memory" in controllers.split(","):
            root, name = "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
        else:
            continue
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):
            where = os.path.join(root, *parts[:depth], name)
            try:
                text = open(where).read().strip()
            except OSError:
                continue
            if text.isdigit() and int(text) < (1 << 60):  # v1 writes ~2**63 for "none"
                found.append((int(text), f"cgroup {where}"))
    return found


def available_memory() -> tuple[int, str]:
    """``(bytes, source)``: the memory this process may use, the least of its cgroup limit,
    Slurm's allocation (``SLURM_MEM_PER_NODE``, or ``SLURM_MEM_PER_CPU`` x the job's cores,
    both in MB) and the physical memory."""
    options = _cgroup_limits()
    per_node = os.environ.get("SLURM_MEM_PER_NODE", "")
    per_cpu = os.environ.get("SLURM_MEM_PER_CPU", "")
    if per_node.isdigit() and int(per_node) > 0:
        options.append((int(per_node) << 20, "SLURM_MEM_PER_NODE"))
    elif per_cpu.isdigit() and int(per_cpu) > 0:
        options.append((int(per_cpu) * available_cpus() << 20, "SLURM_MEM_PER_CPU x cpus"))
    try:
        options.append((os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                        "physical memory"))
    except (ValueError, OSError, AttributeError):  # not POSIX
        pass
    if not options:
        return 8 << 30, "unknown (8 GiB assumed)"
    return min(options)


def parse_size(text: str) -> int:
    """Bytes of a size such as ``1GB`` (10**9), ``1GiB`` (2**30), ``512MB`` or ``4e9``; raises
    ValueError with the accepted forms."""
    from dask.utils import parse_bytes  # the same spelling as Dask's memory_limit

    try:
        value = int(parse_bytes(text.strip()))
    except (ValueError, TypeError, KeyError):
        raise ValueError(f"expected a size such as 1GB, 1500MB or 2GiB, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"expected a positive size, got {text!r}")
    return value
