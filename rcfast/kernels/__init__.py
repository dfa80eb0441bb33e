"""Numba kernels over plain ndarrays (values + offsets for groups). No pyarrow in here."""

from __future__ import annotations

import sys
import threading

_ready = False
_lock = threading.Lock()


def init_numba() -> None:
    """Set up Numba's CPU target once per process, without probing for BLAS.

    The first kernel a process calls (compiled or loaded from Numba's on-disk cache) makes
    Numba import its array-math registry, which imports ``scipy.linalg`` only to look for BLAS:
    0.35-0.4 s of a run here (the set-up took 0.72-0.77 s with it, 0.34-0.36 s without). No rcfast
    kernel uses BLAS, so ``scipy.linalg`` is hidden during the set-up: Numba then records BLAS as
    absent for now, and a later compilation that needs it (``np.dot`` in a user's own function)
    imports ``scipy.linalg`` then, as usual. A process that has imported ``scipy.linalg``
    already keeps it as it is.
    """
    global _ready
    if _ready:
        return
    with _lock:
        if _ready:
            return
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.registry import cpu_target

        # the lock a kernel's first call (compile or cache load) takes: another thread's
        # first call waits for the set-up instead of racing it
        with global_compiler_lock:
            hide = "scipy.linalg" not in sys.modules
            if hide:
                sys.modules["scipy.linalg"] = None  # type: ignore[assignment]
            try:
                cpu_target.target_context.refresh()
            finally:
                if hide and sys.modules.get("scipy.linalg", 0) is None:
                    del sys.modules["scipy.linalg"]
        _ready = True
