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
    """Compile the package's modules if this module's own ``.pyc`` is missing or stale (or
    ``force``); return whether it compiled."""
    if not force:
        if not sys.dont_write_bytecode:
            return False  # Python writes them itself
        try:
            pyc = Path(importlib.util.cache_from_source(__file__))
            if pyc.exists() and pyc.stat().st_mtime >= Path(__file__).stat().st_mtime:
                return False
        except (NotImplementedError, OSError):
            return False
    import compileall

    try:
        return bool(compileall.compile_dir(str(_PACKAGE), quiet=2))
    except OSError:
        return False
