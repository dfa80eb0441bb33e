"""Byte-compile rcfast's own modules once, as ``pip install`` does for a regular install.

Where ``PYTHONDONTWRITEBYTECODE`` is set (some clusters and containers set it), Python never
writes the ``.pyc`` files, so every run of a CLI compiled rcfast's modules from source again:
~0.15 s of start-up for ``rcfast.combine``. Compiling them explicitly once fixes that (Python
still reads ``.pyc`` files under that setting). Best effort: an unwritable install directory
just keeps compiling at import.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def ensure_compiled(force: bool = False) -> bool:
    """Compile the package's modules if any ``.pyc`` is missing or was compiled from another
    version of its source (an edited editable install), or ``force``; return whether it
    compiled. The check reads each ``.pyc`` header (~1.5 ms in all)."""
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
