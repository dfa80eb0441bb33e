"""Reading the weekly step's input: batches decoded on a background thread, converted into
plain arrays by :func:`rcfast.loader.load_batches`."""

from __future__ import annotations

from pathlib import Path

from rcfast.arrow_io import ReadOptions, parquet_rows, read_batches
from rcfast.loader import Rejects, load_batches
from rcfast.panel import Columns


def load(paths: list[Path], ropts: ReadOptions, until_week: int | None, strict: bool,
         progress: bool = False, meanwhile=None) -> tuple[Columns, Rejects, int]:
    """Read, check and convert all files, batch by batch. ``meanwhile`` (a callable) runs on
    this thread once the reader has started on the first batch: Numba's set-up (0.3-0.4 s,
    Python) then overlaps the first batch's Parquet decoding (pyarrow, no GIL)."""

    def batches():
        for path in paths:
            yield from read_batches(path, ropts)

    reader = Prefetch(batches())
    try:
        if meanwhile is not None:
            meanwhile()
        return load_batches(reader, parquet_rows(paths), ropts, until_week, strict, progress)
    finally:
        reader.close()


class Prefetch:
    """Iterate ``items`` on a background thread, ``depth`` ahead, from the moment it is made:
    Parquet decoding of the next batch (pyarrow, GIL released) overlaps the kernels on this
    one (Numba, GIL released). :meth:`close` stops the thread (also when not iterated to the
    end)."""

    _DONE = object()

    def __init__(self, items, depth: int = 1) -> None:
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False

        def work() -> None:
            try:
                for item in items:
                    if self._stop.is_set():
                        return
                    self._queue.put((item, None))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                self._queue.put((None, exc))
                return
            self._queue.put((self._DONE, None))

        self._thread = threading.Thread(target=work, name="rcfast-reader", daemon=True)
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._finished:
            raise StopIteration
        item, exc = self._queue.get()
        if exc is not None:
            self._finished = True
            raise exc
        if item is self._DONE:
            self._finished = True
            raise StopIteration
        return item

    def close(self) -> None:
        import queue

        self._finished = True
        self._stop.set()
        while self._thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(0.05)

