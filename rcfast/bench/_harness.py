"""Run one benchmark contender in its own process and measure wall time and peak RSS.

Each contender runs as ``python -c <code>`` in a fresh interpreter so that peak RSS is its own
. The child ends by calling :func:`emit_result`, which prints one JSON line prefixed with
``RCFAST_RESULT `` carrying what it measured itself (e.g. the time of the computation without
interpreter start-up) and its own peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``, KiB on Linux).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

RESULT_PREFIX = "RCFAST_RESULT "


@dataclass
class Measurement:
    name: str
    wall_s: float  #: whole process, interpreter start included
    peak_rss_bytes: int
    returncode: int
    result: dict[str, Any] = field(default_factory=dict)  #: what the child reported
    stderr_tail: str = ""


def emit_result(**values: Any) -> None:
    """Call in the child, last: report measured values and the process's peak RSS."""
    import resource

    values.setdefault("peak_rss_bytes", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print(RESULT_PREFIX + json.dumps(values), flush=True)


def run_measured(name: str, code: str, env: dict[str, str] | None = None,
                 timeout: float | None = None) -> Measurement:
    """Run ``code`` in a fresh Python process; return its wall time and peak RSS."""
    full_env = dict(os.environ)
    # what the rcfast commands set for themselves, given to every contender alike: none of them
    # calls BLAS, and idle OpenBLAS threads spin on the same cores
    full_env.setdefault("OPENBLAS_NUM_THREADS", "1")
    if env:
        full_env.update(env)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=full_env, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
    peak = int(result.get("peak_rss_bytes", 0))
    return Measurement(name, wall, peak, proc.returncode, result, err[-2000:])
