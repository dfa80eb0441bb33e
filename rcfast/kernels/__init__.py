"""Numba kernels over plain ndarrays (values + offsets for groups). No pyarrow in here."""

from __future__ import annotations

import threading

_ready = False
_lock = threading.Lock()


def init_numba() -> None:
    """Set up Numba's CPU target once per process (0.3-0.8 s), so that a caller can do it
    while something else runs (the weekly run overlaps it with the first Parquet read).

    The set-up is the one a kernel's first call would do anyway; it runs under Numba's compiler
    lock, so another thread's first kernel call waits for it instead of racing it.
    """
    global _ready
    if _ready:
        return
    with _lock:
        if _ready:
            return
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.registry import cpu_target

        with global_compiler_lock:
            cpu_target.target_context.refresh()
        _ready = True
