"""What this process may use of the machine: one place that asks (CPU count here; memory
detection belongs here too)."""

from __future__ import annotations

import os

__all__ = ["available_cpus"]


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
