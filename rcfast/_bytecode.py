"""Start-up of the command-line tools: byte-compile rcfast's own modules once (as ``pip install``
does for a regular install), and tune glibc's malloc for weekly's batch-sized arrays.

Where ``PYTHONDONTWRITEBYTECODE`` is set (some clusters and containers set it), Python never
writes the ``.pyc`` files, so every run of a CLI compiled rcfast's modules from source again:
~0.15 s of start-up for ``rcfast.combine``. Compiling them explicitly once fixes that (Python
still reads ``.pyc`` files under that setting). Best effort: an unwritable install directory
just keeps compiling at import.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def ensure_compiled(force: bool = False) -> bool:
    """Compile the package's modules if any ``.pyc`` is missing or older than its source (an
    edited editable install), or ``force``; return whether it compiled. The check stats each
    module twice (~1 ms)."""
    if not force:
        if not sys.dont_write_bytecode:
            return False  # Python writes them itself
        try:
            if not any(_stale(py) for py in _PACKAGE.rglob("*.py")):
                return False
        except (NotImplementedError, OSError):
            return False
    import compileall

    try:
        return bool(compileall.compile_dir(str(_PACKAGE), quiet=2))
    except OSError:
        return False


def _stale(py: Path) -> bool:
    """Whether Python would compile ``py`` at import: its ``.pyc`` is missing, from another
    Python, or records another source mtime or size (what ``compileall`` checks too)."""
    pyc = Path(importlib.util.cache_from_source(str(py)))
    try:
        with open(pyc, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        return True
    if len(head) < 16 or head[:4] != importlib.util.MAGIC_NUMBER:
        return True
    if int.from_bytes(head[4:8], "little") & 1:
        return False  # hash-based .pyc: checked (or not) by its own rules
    st = py.stat()
    return (int.from_bytes(head[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
            or int.from_bytes(head[12:16], "little") != st.st_size & 0xFFFFFFFF)


def tune_malloc() -> bool:
    """Keep glibc from handing every freed array of 128 kB..32 MB back to the kernel.

    glibc serves such arrays with mmap and returns them with munmap; each of weekly's batches
    then gets fresh pages, one page fault and a zeroed page per 4 kB (about 0.4 s of system
    time per 10M reviews). A fixed 32 MB threshold serves them from the heap, which is reused.
    Only the weekly CLI's own process is tuned; a user's MALLOC_MMAP_THRESHOLD_ wins. Returns
    whether set.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        ok = libc.mallopt(m_mmap_threshold, 32 << 20) == 1
        return ok and libc.mallopt(m_trim_threshold, 256 << 20) == 1
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
