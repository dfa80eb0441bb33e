"""Start-up and exit of the command-line runs (``python -m rcfast.weekly``, ``rcfast.combine``)."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from typing import NoReturn


class HidePandas:
    """Import hook: ``import pandas`` fails while it is installed.

    pyarrow imports pandas (0.25-0.4 s of CPU, a fifth of a 1M-row weekly run) the first time it
    builds an array from Python or numpy objects or calls ``ChunkedArray.to_numpy``, only to check
    whether it was handed a pandas object. The in-process command-line runs never hand it one
    and never need pandas.
    """

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError(f"pandas is not used by {sys.argv[0] or 'this rcfast command'}")
        return None


@contextlib.contextmanager
def without_pandas(enabled: bool = True) -> Iterator[None]:
    """Install :class:`HidePandas` for the block, unless disabled or pandas is imported already
    (then hiding it would gain nothing and could break a caller that uses it)."""
    if not enabled or "pandas" in sys.modules:
        yield
        return
    hook = HidePandas()
    sys.meta_path.insert(0, hook)
    try:
        yield
    finally:
        sys.meta_path.remove(hook)


class _NoBar:
    """A progress bar that shows nothing (the part of tqdm's interface rcfast uses)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(show: bool, total: int, desc: str):
    """A tqdm bar of ``total`` rows on stderr when ``show``, else one that does nothing: tqdm
    (~30 ms to import) is imported only when a bar is shown."""
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="row", unit_scale=True, file=sys.stderr)


def exit_cli(rc: int) -> NoReturn:
    """``sys.exit(rc)`` without the interpreter's last cyclic garbage collections.

    By the end of a run the heap holds Numba's and pyarrow's large object graphs; the
    collections at exit walk all of them to free memory the kernel is about to take back anyway:
    0.6-0.8 s of a 1M-row ``rcfast.weekly`` run on 2 cores (3.7 s instead of 4.5 s). Frozen
    objects are left out of every collection; the usual shutdown (atexit handlers, buffered
    output, reference-counted objects) still runs. For ``__main__`` only: a library caller keeps
    its collector.
    """
    gc.disable()
    gc.freeze()
    sys.exit(rc)
