"""The ingest pipeline: blocks → normalized rows → per-partition spill files → final dataset.

Flow. Reader threads (one per file at a time) decompress each input and cut it into blocks of
whole records; a pool of worker threads parses each block with pyarrow's C++ JSON/CSV readers
(which release the GIL, as do zlib, the Numba hash kernel and the Arrow compute functions, so
threads use all cores without pickling blocks between processes). A block that fails to parse is
split and retried in smaller ranges down to single records, so a bad line costs only its own
neighbourhood and is reported with its exact line number. Normalized rows are appended to one
Arrow IPC spill file per output partition (``hash(product_id) % n``). At the end each partition
is read back alone, deduplicated, sorted and written as one Parquet file, so memory is bounded by
the blocks in flight plus one partition, not by the input size.

Here: the per-file accounting, the quarantine, the spill and the thread driver; block parsing
is :mod:`rcfast.ingest.blocks`, the last step :mod:`rcfast.ingest.finalize`.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

import numpy as np
import orjson
import pyarrow as pa

from rcfast.errors import StrictFailure

from .blocks import BlockProcessor, BlockResult, get_scanner, partition_ids  # noqa: F401 (API)
from .normalize import output_schema


PARTITION_HASH = "fnv1a64-murmur3fmix-xorlen"


@dataclass
class FileStats:
    path: str
    format: str
    compression: str | None
    bytes: int
    category: str | None = None
    lines_read: int = 0
    blank_lines: int = 0
    rows_spilled: int = 0
    rows_written: int = 0
    duplicates: int = 0
    quarantined: Counter = field(default_factory=Counter)
    stream_error: str = ""
    ts_min: int | None = None
    ts_max: int | None = None

    def add_range(self, lo: int | None, hi: int | None) -> None:
        if lo is not None:
            self.ts_min = lo if self.ts_min is None else min(self.ts_min, lo)
            self.ts_max = hi if self.ts_max is None else max(self.ts_max, hi)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "compression": self.compression,
            "bytes": self.bytes,
            "category": self.category,
            "lines_read": self.lines_read,
            "rows_written": self.rows_written,
            "duplicates": self.duplicates,
            "quarantined": dict(sorted(self.quarantined.items())),
            "quarantined_total": sum(self.quarantined.values()),
            "blank_lines": self.blank_lines,
            "stream_error": self.stream_error or None,
            "first_review": _iso(self.ts_min),
            "last_review": _iso(self.ts_max),
        }


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    import datetime as dt

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    try:
        return (epoch + dt.timedelta(milliseconds=ms)).isoformat(timespec="seconds")
    except OverflowError:  # rows are checked to lie in 1677..2262; never fail a summary
        return f"{ms} ms since 1970"


class Quarantine:
    """Bad records → ``_quarantine/quarantine.jsonl`` (one JSON object per record)."""

    def __init__(self, directory: str, paths: list[str], strict: bool) -> None:
        self.directory = directory
        self.paths = paths
        self.strict = strict
        self._lock = threading.Lock()
        self._fh: io.BufferedWriter | None = None
        self.count = 0

    def add(self, file_idx: int, line: int, reason: str, detail: str, raw: bytes | str) -> None:
        if isinstance(raw, bytes):
            try:
                text, valid = raw.decode("utf-8"), True
            except UnicodeDecodeError:
                text, valid = raw.decode("utf-8", errors="backslashreplace"), False
        else:
            text, valid = raw, True
        text = text.rstrip("\r\n")
        if self.strict:
            raise StrictFailure(
                f"{self.paths[file_idx]}:{line}: {reason}: {detail} (--strict); "
                f"line starts {text[:120]!r}", file_idx, line,
            )
        rec = {"file": self.paths[file_idx], "line": line, "reason": reason, "detail": detail,
               "raw": text}
        if not valid:
            rec["raw_is_valid_utf8"] = False
        data = orjson.dumps(rec) + b"\n"
        with self._lock:
            if self._fh is None:
                os.makedirs(self.directory, exist_ok=True)
                self._fh = open(os.path.join(self.directory, "quarantine.jsonl"), "wb")
            self._fh.write(data)
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def spill_schema(keep_text: bool) -> pa.Schema:
    return output_schema(keep_text).append(pa.field("_text_hash", pa.uint64())).append(
        pa.field("_file", pa.int32())
    ).append(pa.field("_seq", pa.int64()))


class Spill:
    """One Arrow IPC stream per output partition, appended to by all workers."""

    def __init__(self, directory: str, n: int, keep_text: bool, compress: bool = True) -> None:
        self.directory = directory
        self.n = n
        self.schema = spill_schema(keep_text)
        os.makedirs(directory, exist_ok=True)
        self._writers: list[Any] = [None] * n
        self._sinks: list[Any] = [None] * n
        self._locks = [threading.Lock() for _ in range(n)]
        # lz4 roughly halves the spill (~0.25 s of CPU per 1M rows for compressing and
        # decompressing); small inputs spill uncompressed (the files stay in the page cache and
        # are read back zero-copy through a memory map), large ones compressed to save disk.
        self._options = pa.ipc.IpcWriteOptions(compression="lz4" if compress else None)

    def path(self, p: int) -> str:
        return os.path.join(self.directory, f"p{p:05d}.arrow")

    def write(self, table: pa.Table, part: np.ndarray) -> None:
        if table.num_rows == 0:
            return
        if self.n == 1:
            pieces = [(0, table)]
        else:
            # partition numbers fit 16 bits: numpy's stable sort is then a radix sort
            small = part.astype(np.int16) if self.n <= 1 << 15 else part
            order = np.argsort(small, kind="stable")
            counts = np.bincount(part, minlength=self.n)
            sorted_table = table.take(pa.array(order))
            bounds = np.concatenate([[0], np.cumsum(counts)])
            pieces = [
                (p, sorted_table.slice(bounds[p], counts[p]))
                for p in np.flatnonzero(counts)
            ]
        for p, piece in pieces:
            p = int(p)
            with self._locks[p]:
                if self._writers[p] is None:
                    self._sinks[p] = pa.OSFile(self.path(p), "wb")
                    self._writers[p] = pa.ipc.new_stream(
                        self._sinks[p], self.schema, options=self._options
                    )
                self._writers[p].write_table(piece)

    def close(self) -> None:
        for p in range(self.n):
            with self._locks[p]:
                if self._writers[p] is not None:
                    self._writers[p].close()
                    self._sinks[p].close()
                    self._writers[p] = None

    def read(self, p: int) -> pa.Table:
        path = self.path(p)
        if not os.path.exists(path):
            return self.schema.empty_table()
        with pa.memory_map(path) as src:
            table = pa.ipc.open_stream(src).read_all()
        return table


# ------------------------------------------------------------------------------- driver


def run_blocks(
    tasks: list[Callable[[Callable[[Callable[[], BlockResult]], None]], None]],
    workers: int,
    max_inflight: int,
    stop: threading.Event,
) -> list[BlockResult]:
    """Run reader callables (one per file) that submit block jobs; return all block results.

    Each reader gets a ``submit(job)`` function; at most ``max_inflight`` jobs are queued or
    running at a time, so memory does not grow with the input.
    """
    results: list[BlockResult] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    sem = threading.BoundedSemaphore(max_inflight)
    # A --strict failure in file f stops the readers of files >= f (their earlier blocks are
    # already submitted); files before f go on, as they may hold an earlier bad line. The
    # failure reported is the first in input order among all that occurred.
    cut = [len(tasks)]

    def failed(exc: BaseException, file_idx: int) -> None:
        with lock:
            errors.append(exc)
            if isinstance(exc, StrictFailure):
                cut[0] = min(cut[0], exc.where[0] if exc.where[0] >= 0 else file_idx)
            else:
                stop.set()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rcfast-block") as pool:

        def done(fut: Future, file_idx: int) -> None:
            sem.release()
            exc = fut.exception()
            if exc is not None:
                failed(exc, file_idx)
            else:
                with lock:
                    results.append(fut.result())

        def halted(file_idx: int) -> bool:
            return stop.is_set() or file_idx >= cut[0]

        def make_submit(file_idx: int) -> Callable[[Callable[[], BlockResult]], None]:
            def submit(job: Callable[[], BlockResult]) -> None:
                while not sem.acquire(timeout=0.5):
                    if halted(file_idx):
                        raise _Halt
                if halted(file_idx):
                    sem.release()
                    raise _Halt
                fut = pool.submit(job)
                fut.add_done_callback(lambda f: done(f, file_idx))

            return submit

        def reader(file_idx: int) -> None:
            try:
                if not halted(file_idx):
                    tasks[file_idx](make_submit(file_idx))
            except _Halt:
                pass
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                failed(exc, file_idx)

        n_readers = max(1, min(len(tasks), workers))
        with ThreadPoolExecutor(max_workers=n_readers, thread_name_prefix="rcfast-read") as rp:
            list(rp.map(reader, range(len(tasks))))
    if errors:
        strict = [e for e in errors if isinstance(e, StrictFailure)]
        raise (min(strict, key=lambda e: e.where) if strict else errors[0])
    return results


class _Halt(Exception):
    """Raised by ``submit`` to end a reader whose file no longer matters (see run_blocks)."""


def write_summary(path: str, summary: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, sort_keys=False)
        f.write("\n")
