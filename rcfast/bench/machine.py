"""What machine a timing was taken on: CPU model, cores, memory, library versions."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what :mod:`platform` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU model, cores, RAM and versions: a timing means nothing without them."""
    try:
        import psutil

        ram = psutil.virtual_memory().total
    except ImportError:  # pragma: no cover
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        usable = os.cpu_count() or 1
    versions = {"python": platform.python_version()}
    for mod in ("rcfast", "numba", "numpy", "pyarrow", "pandas", "polars", "duckdb"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing tool is reported, not fatal
            versions[mod] = None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable,
            "ram_gb": round(ram / 2**30, 1), "os": platform.platform(), "versions": versions}
