"""Reading the weekly step's input: find the files, check their columns against the schema
(mapping raw names), and yield :class:`Batch` es of the needed columns, whole row groups at a
time, optionally decoded ahead on a background thread (:class:`Prefetch`).

Every problem names the file and column and says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rcfast.errors import InputError
from rcfast.input_paths import expand_paths, hidden
from rcfast.schema import ALIASES, FIELDS, REQUIRED


@dataclass
class ReadOptions:
    mapping: dict[str, str] = field(default_factory=dict)  #: field -> raw column
    #: unit of integer timestamps; None: ms, or s for a column found as unixReviewTime
    timestamp_unit: str | None = None


def resolve_inputs(inputs: list[str]) -> list[Path]:
    """Parquet files named by files, directories (recursively) and globs, in a stable order."""
    return [Path(f) for f in expand_paths(inputs, _parquet_files, "Parquet files")]


def _parquet_files(directory: str) -> list[str]:
    root = Path(directory)
    return [str(f) for f in sorted(
        f for f in root.rglob("*")
        if f.is_file() and not any(hidden(part) for part in f.relative_to(root).parts)
        and f.suffix in (".parquet", ".pq", ""))]


def open_parquet(path: Path) -> pq.ParquetFile:
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); remove it or regenerate it")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}); is it truncated or "
                         "another format? (raw JSON/CSV dumps go through python -m rcfast.combine)"
                         ) from exc


def map_columns(path: Path, names: list[str], opts: ReadOptions) -> dict[str, str]:
    """``{field: raw column}`` for one file; raise when a required field has no column."""
    out: dict[str, str] = {}
    for fld in FIELDS:
        if fld in opts.mapping:
            col = opts.mapping[fld]
            if col not in names:
                raise InputError(f"{path}: --map {fld}={col}: no column {col!r}; "
                                 f"the file has {', '.join(names)}")
            out[fld] = col
            continue
        for cand in (fld, *ALIASES.get(fld, ())):
            if cand in names and cand not in out.values():
                out[fld] = cand
                break
        else:
            if fld in REQUIRED:
                tried = ", ".join((fld, *ALIASES.get(fld, ())))
                raise InputError(f"{path}: no column for required field {fld!r} (looked for "
                                 f"{tried}); pass --map {fld}=COLUMN. The file has "
                                 f"{', '.join(names)}")
    return out


def _fully_dictionary_encoded(pf: pq.ParquetFile, col: str) -> bool:
    # Reading as dictionary pays off only when Parquet stored dictionary pages throughout;
    # after a fallback to PLAIN, Arrow would hash every value itself, single-threaded.
    try:
        idx = pf.schema_arrow.get_field_index(col)
        md = pf.metadata
        for rg in range(md.num_row_groups):
            c = md.row_group(rg).column(idx)
            if not c.has_dictionary_page or "PLAIN" in c.encodings:
                return False
        return md.num_row_groups > 0
    except Exception:  # noqa: BLE001 - metadata quirks only cost the fast path
        return False


WANTED = ("product_id", "timestamp", "rating", "helpful_votes", "verified", "text_len")
#: Rows per read batch: its strings and hash tables stay in cache, and memory stays bounded.
BATCH_ROWS = 1 << 20


@dataclass
class Batch:
    """Columns of consecutive rows of one source, starting at row ``row0`` of that source."""

    path: Path
    row0: int
    cols: dict[str, pa.ChunkedArray]
    colmap: dict[str, str]


def parquet_rows(paths: list[Path]) -> int:
    return sum(open_parquet(p).metadata.num_rows for p in paths)


def read_batches(path: Path, opts: ReadOptions, row_groups: list[int] | None = None,
                 batch_rows: int | None = None):
    """Yield :class:`Batch` es of whole row groups of one Parquet file, needed columns only."""
    batch_rows = batch_rows or BATCH_ROWS
    pf = open_parquet(path)
    colmap = map_columns(path, pf.schema_arrow.names, opts)
    wanted = [f for f in WANTED if f in colmap]
    raw_cols = [colmap[f] for f in wanted]
    if _fully_dictionary_encoded(pf, raw_cols[0]):
        pf = pq.ParquetFile(path, read_dictionary=[raw_cols[0]])
    md = pf.metadata
    groups = list(range(md.num_row_groups)) if row_groups is None else row_groups
    row0 = sum(md.row_group(i).num_rows for i in range(groups[0])) if groups else 0
    block: list[int] = []
    rows = 0
    for k, rg in enumerate(groups):
        block.append(rg)
        rows += md.row_group(rg).num_rows
        if rows >= batch_rows or k == len(groups) - 1:
            try:
                t = pf.read_row_groups(block, columns=raw_cols, use_threads=True)
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"{path}: cannot read columns {raw_cols} of row groups "
                                 f"{block[0]}..{block[-1]}: {exc}") from exc
            yield Batch(path, row0, {f: t.column(colmap[f]) for f in wanted}, colmap)
            row0 += t.num_rows
            block, rows = [], 0
    if not groups:
        t = pf.schema_arrow.empty_table().select(raw_cols)
        yield Batch(path, 0, {f: t.column(colmap[f]) for f in wanted}, colmap)


def table_batches(table: pa.Table, opts: ReadOptions, where: Path,
                  batch_rows: int | None = None):
    """Yield :class:`Batch` es of an in-memory table (the same path as files take)."""
    batch_rows = batch_rows or BATCH_ROWS
    colmap = map_columns(where, table.column_names, opts)
    n = table.num_rows
    for start in range(0, max(n, 1), batch_rows):
        t = table.slice(start, batch_rows)
        yield Batch(where, start, {f: t.column(c) for f, c in colmap.items() if f in WANTED},
                    colmap)


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

