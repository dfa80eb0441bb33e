"""What every rcfast command shares: common options, logging, progress, exit codes.

Process-level tuning lives here and is applied only by a command's ``main`` (never on import),
each piece kept because it saves at least 5 % of a run (figures in ``docs/benchmarks.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import sys
import time
from collections.abc import Iterator
from typing import NoReturn

#: Exit codes of every command.
EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130
#: Seconds between the one-line progress reports written where stderr is no terminal (a log
#: file such as Slurm's), instead of a redrawn bar.
PROGRESS_LOG_INTERVAL_S = 30.0

_LOGGER = "rcfast"


# ------------------------------------------------------------------------- options, logging


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--version``, ``-q/--quiet`` and ``--no-progress``, the same in every command."""
    from rcfast import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print warnings and errors only (no progress, no summary table)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress output (default: a bar on a terminal, else a line "
                        f"every {PROGRESS_LOG_INTERVAL_S:.0f} s, as in a Slurm log)")


def parse_row_count(text: str, minimum: int = 1) -> int:
    """A whole number of rows, at least ``minimum``, also written 1e6, 3.18e7 or 1_000_000 (an
    argparse ``type``; ``functools.partial(parse_row_count, minimum=0)`` allows 0)."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < minimum or value != int(value):
        raise argparse.ArgumentTypeError(
            f"must be a whole number of at least {minimum}: {text!r}")
    return int(value)


def show_progress(args: argparse.Namespace) -> bool:
    return not (getattr(args, "quiet", False) or getattr(args, "no_progress", False))


class _StderrHandler(logging.Handler):
    """Writes to the ``sys.stderr`` of the moment (pytest's capture swaps it)."""

    def __init__(self, prog: str) -> None:
        super().__init__()
        self.prog = prog

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            if record.levelno >= logging.WARNING:
                msg = f"{record.levelname.lower()}: {msg}"
            sys.stderr.write(f"{self.prog}: {msg}\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)


def setup_logging(prog: str, quiet: bool = False) -> logging.Logger:
    """Messages of the ``rcfast`` loggers on stderr as ``PROG: message`` (``PROG: warning: ...``);
    INFO and up, or WARNING and up when ``quiet``. For a command's ``main`` only."""
    log = logging.getLogger(_LOGGER)
    for h in list(log.handlers):
        if isinstance(h, _StderrHandler):
            log.removeHandler(h)
    log.addHandler(_StderrHandler(prog))
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False
    return log


def one_line(exc: BaseException) -> str:
    """An exception as one line: an OSError as ``path: reason``, others as their message."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        text = f"{where}: {exc.strerror}" if where else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


# ------------------------------------------------------------------------------- progress


class _Progress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _NoBar(_Progress):
    """A progress bar that shows nothing (the part of tqdm's interface rcfast uses)."""


class _LogLines(_Progress):
    """Progress as a log line every ``interval`` seconds and one at the end: for stderr that is
    a file, where a redrawn bar would fill the log with carriage returns."""

    def __init__(self, total: int, desc: str, unit: str, interval: float) -> None:
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.done = 0
        self.t0 = self.last = time.monotonic()
        self.log = logging.getLogger(f"{_LOGGER}.progress")

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._report(now)

    def _report(self, now: float) -> None:
        pct = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        self.log.info("%s: %s of %s %s%s, %.0f s", self.desc, _human(self.done),
                      _human(self.total), self.unit, pct, now - self.t0)

    def close(self) -> None:
        if self.done:
            self._report(time.monotonic())
        self.done = 0


def _human(n: float) -> str:
    for unit in ("", "k", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}P"


def progress_bar(show: bool | None, total: int, desc: str, unit: str = "row",
                 interval: float = PROGRESS_LOG_INTERVAL_S):
    """Progress of ``total`` units: a tqdm bar when stderr is a terminal, else a log line every
    ``interval`` seconds; nothing when ``show`` is False. ``None`` means shown. tqdm (~30 ms to
    import) is imported only when a bar is drawn."""
    if show is False:
        return _NoBar()
    if not sys.stderr.isatty():
        return _LogLines(total, desc, unit, interval)
    from tqdm.auto import tqdm

    scale = {"unit_divisor": 1024} if unit == "B" else {}
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, **scale)


# -------------------------------------------------------------------- process-level tuning


class HidePandas:
    """Import hook: ``import pandas`` fails while it is installed.

    pyarrow imports pandas the first time it builds an array from Python or numpy objects, only
    to check whether it was handed a pandas object; the command-line runs never hand it one.
    Measured: 12 % of the CPU time of a 1M-row ``rcfast combine`` run (docs/benchmarks.md).
    """

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError(f"pandas is not used by {sys.argv[0] or 'this rcfast command'}")
        return None


@contextlib.contextmanager
def without_pandas(enabled: bool = True) -> Iterator[None]:
    """For a command's ``main`` only: install :class:`HidePandas` for the block, unless disabled
    or pandas is imported already (then hiding it would gain nothing and could break a caller)."""
    if not enabled or "pandas" in sys.modules:
        yield
        return
    hook = HidePandas()
    sys.meta_path.insert(0, hook)
    try:
        yield
    finally:
        sys.meta_path.remove(hook)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """For a command's ``main`` only: no cyclic garbage collection during the run, restored
    after. A run allocates many short-lived objects and no cycles worth collecting; the
    collector would only re-scan the large heap of the imported modules (8 % of the CPU time
    of a 1M-row ``rcfast combine`` run, docs/benchmarks.md)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Terminated(BaseException):
    """SIGTERM (Slurm's ``scancel`` and time limit, ``kill``) as an exception, so that ``finally``
    blocks remove scratch and temporary outputs before the process ends."""


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` in the main thread (elsewhere: nothing
    changes, signals only reach the main thread); the previous handler comes back after."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    before = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def raised_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` is ``kind`` or was caused by it: a signal's exception raised while Numba
    calls back into Python reaches the caller as a ``SystemError`` caused by it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def exit_cli(rc: int) -> NoReturn:
    """``sys.exit(rc)`` without the interpreter's last cyclic garbage collections: they walk
    Numba's and pyarrow's object graphs only to free memory the kernel takes back anyway. For a
    ``__main__`` module only; the usual shutdown (atexit handlers, buffered output) still runs."""
    gc.disable()
    gc.freeze()
    sys.exit(rc)
