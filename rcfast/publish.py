"""Atomic outputs and scratch directories: the one place that names temporary files.

An output is written under a temporary name beside it, ``.NAME.tmp-HOST-PID``, and renamed when
complete, so a killed run never leaves a complete-looking output. Host and pid are in the name
because on a cluster's shared file system a pid alone names another node's run: the next run on
the same host removes what dead processes of that host left (:func:`remove_stale`). Scratch
directories (spilled rows) follow the same rule under ``--tmp-dir``.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

__all__ = ["ScratchDir", "default_tmp_dir", "publish", "remove_stale", "run_tag",
           "temporary_sibling"]

_TAGS = (".tmp-", ".old-")


def run_tag() -> str:
    """``HOST-PID`` of this process."""
    return f"{socket.gethostname()}-{os.getpid()}"


def temporary_sibling(final: Path, kind: str = "tmp") -> Path:
    """``DIR/.NAME.tmp-HOST-PID`` for ``final`` = ``DIR/NAME``."""
    return final.with_name(f".{final.name}.{kind}-{run_tag()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _dead_owner(name: str, prefix: str, tail: bool = False) -> bool:
    """Whether ``name`` is ``PREFIX-HOST-PID`` (``PREFIX-HOST-PID-TAIL`` with ``tail``) of a
    dead process on this host."""
    if not name.startswith(prefix + "-"):
        return False
    rest = name[len(prefix) + 1:]
    if tail:
        rest = rest.rpartition("-")[0]
    host, _, pid = rest.rpartition("-")
    return (host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid()
            and not _pid_alive(int(pid)))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def remove_stale(final: Path) -> list[Path]:
    """Remove the temporary siblings of ``final`` that dead runs on this host left; return
    them."""
    parent = final.parent
    if not parent.is_dir():
        return []
    gone = []
    for entry in parent.iterdir():
        for tag in _TAGS:
            for prefix in (f".{final.name}{tag}", f"{final.name}{tag}"):
                if _dead_owner(entry.name, prefix.rstrip("-")):
                    _remove(entry)
                    gone.append(entry)
    return gone


def publish(tmp: Path, final: Path) -> None:
    """Rename the finished ``tmp`` to ``final``, replacing an earlier output (a directory is
    moved aside first, then removed: ``rename`` cannot replace a non-empty directory)."""
    if final.is_dir() and not final.is_symlink():
        old = temporary_sibling(final, "old")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def default_tmp_dir() -> Path:
    """Node-local scratch: ``$TMPDIR`` (Slurm sites point it at the job's local disk), else
    ``$SLURM_TMPDIR``, else the system's temporary directory."""
    for var in ("TMPDIR", "SLURM_TMPDIR"):
        value = os.environ.get(var)
        if value and os.path.isdir(value):
            return Path(value)
    return Path(tempfile.gettempdir())


class ScratchDir:
    """A new directory ``rcfast-scratch-HOST-PID-XXXX`` under ``parent``, removed on exit from the
    ``with`` block whatever the reason (error, Ctrl-C, SIGTERM turned into an exception);
    entering removes the scratch directories of dead runs on this host first."""

    PREFIX = "rcfast-scratch"

    def __init__(self, parent: Path | str | None = None) -> None:
        self.parent = Path(parent) if parent is not None else default_tmp_dir()
        self.path: Path | None = None

    def __enter__(self) -> Path:
        self.parent.mkdir(parents=True, exist_ok=True)
        for entry in self.parent.iterdir():
            if _dead_owner(entry.name, self.PREFIX, tail=True):
                _remove(entry)
        self.path = Path(tempfile.mkdtemp(prefix=f"{self.PREFIX}-{run_tag()}-",
                                          dir=self.parent))
        return self.path

    def __exit__(self, *exc) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
