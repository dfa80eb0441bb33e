"""The files a command's INPUT arguments name: files, directories (their data files,
recursively) and glob patterns, each file once, in a stable order. Used by the weekly step and
by combine, which differ only in what counts as a data file in a directory."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable

from rcfast.errors import InputError


def expand_paths(items: list[str], list_directory: Callable[[str], list[str]],
                 kind: str) -> list[str]:
    """The files named by ``items``, in order: a file as given, a directory as
    ``list_directory(dir)`` (its data files, sorted), a glob pattern as its matching files,
    sorted. A file named twice (by any path) counts once, where it first appears. An item that
    names nothing raises :class:`InputError` saying why (``kind``: what a directory should
    hold, e.g. "Parquet files")."""
    files: list[str] = []
    for item in items:
        if os.path.isdir(item):
            found = list_directory(item)
            if not found:
                raise InputError(f"{item}: directory holds no {kind}")
            files += found
        elif os.path.isfile(item):
            files.append(item)
        elif glob.has_magic(item):
            found = sorted(f for f in glob.glob(item, recursive=True) if os.path.isfile(f))
            if not found:
                raise InputError(f"{item}: no file matches the pattern")
            files += found
        else:
            raise InputError(f"{item}: no such file or directory")
    seen: set[str] = set()
    unique = []
    for f in files:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def hidden(name: str) -> bool:
    """Names that data directories keep for themselves: ``.tmp``, ``_summary.json``,
    ``_quarantine``: never input."""
    return name.startswith((".", "_"))
