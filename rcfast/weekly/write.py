"""Writing the panel: Parquet settings, part files on writer threads, and the atomic publish
(a temporary name renamed when complete)."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rcfast.errors import InputError
from rcfast.weekly.panel import SLICE_ROWS
from rcfast.publish import publish, temporary_sibling

SUMMARY_KEY = b"rcfast.summary"
#: Rows per row group at most: a computed slice of whole products (at most SLICE_ROWS rows)
#: is one row group. 1,000,000 split every slice into 1,000,000 + 48,576 rows.
ROW_GROUP_ROWS = SLICE_ROWS


def output_paths(output: str) -> tuple[Path, Path, bool]:
    """``(data path, summary JSON path, is_directory)``."""
    out = Path(output)
    if out.suffix in (".parquet", ".pq"):
        return out, out.with_suffix(".summary.json"), False
    return out, out / "_summary.json", True


#: Parquet settings of the panel: statistics on ids and weeks (readers filter on them); weeks
#: dictionary-encoded; ids plain: a product's rows are consecutive, and snappy packs the
#: repeats better than a dictionary, for less (a million panel rows: 28.6 vs 39.1 ms, 2.11 vs
#: 2.17 MB). The numeric columns skip dictionaries, whose attempts cost time for nothing. No
#: stored Arrow schema: then readers see the summary in the schema metadata, and every column
#: maps to a plain Parquet type (string, date, int, double).
WRITE_OPTIONS = {"use_dictionary": ["week_start"],
                 "write_statistics": ["product_id", "week_start"], "store_schema": False}
#: Codecs that gain little on delta-packed integers (see :func:`write_options`).
_FAST_CODECS = ("snappy", "lz4")


def write_options(schema: pa.Schema, compression: str | None) -> dict:
    """Parquet writer options of the panel with codec ``compression`` (None: uncompressed).

    Integer columns (counts, lags, week gaps: small and slowly changing along a product) are
    DELTA_BINARY_PACKED, which every Parquet reader of the last years decodes: on a million
    panel rows it made them 45 % smaller and 15 % cheaper to encode than PLAIN + snappy
    (9.1 vs 16.4 MB, 212 vs 249 ms). Snappy or lz4 on top of the delta packing saved 1-7 %
    of their size for up to 40 % more encoding time, so with those codecs they stay
    uncompressed; zstd and gzip, chosen for size, still apply.
    """
    ints = [f.name for f in schema if pa.types.is_integer(f.type)]
    comp: str | dict | None = compression
    if compression in _FAST_CODECS:
        comp = {f.name: ("none" if f.name in ints else compression) for f in schema}
    return {**WRITE_OPTIONS, "compression": comp,
            "column_encoding": dict.fromkeys(ints, "DELTA_BINARY_PACKED")}
#: Threads encoding the row groups of a file output at most (see PanelWriter).
MAX_ENCODERS = 8
#: Rows per part file of a directory output; parts are written by parallel threads.
PART_ROWS = 2 * ROW_GROUP_ROWS


class _Part:
    """One output file written from a queue on its own thread (pyarrow releases the GIL, and so
    do the kernels computing the next batches meanwhile)."""

    def __init__(self, path: Path, schema: pa.Schema, comp: str | None, bar,
                 encoders: int = 1) -> None:
        import queue
        import threading

        if encoders > 1:  # one file, its row groups encoded by several threads
            from rcfast.parquet_stitch import StitchedParquetWriter

            self.writer = StitchedParquetWriter(path, schema, encoders, on_written=bar.update,
                                                **write_options(schema, comp))
        else:
            self.writer = pq.ParquetWriter(path, schema, **write_options(schema, comp))
        self.stitched = encoders > 1
        self.rows = 0
        self.week_min: dt.date | None = None
        self.week_max: dt.date | None = None
        self.error: BaseException | None = None
        self.bar = bar
        self.closed = False
        # tables waiting for this part; the stitched writer holds a few more in its encoders
        self.queue: queue.Queue = queue.Queue(maxsize=1 if self.stitched else 2)
        self.thread = threading.Thread(target=self._work, name="rcfast-writer", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        import pyarrow.compute as pc

        while True:
            table = self.queue.get()
            if table is None:
                # the stitched writer's last row groups land here, not at close: the output
                # is complete (and the bar at 100 %) when finish() returns
                if self.stitched and self.error is None:
                    try:
                        self.writer.flush()
                    except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
                        self.error = exc
                return
            if self.error is not None:
                continue
            try:
                for start in range(0, table.num_rows, ROW_GROUP_ROWS):
                    piece = table.slice(start, ROW_GROUP_ROWS)
                    if self.stitched:
                        self.writer.write_row_group(piece)  # the bar moves as it lands
                    else:
                        self.writer.write_table(piece, row_group_size=ROW_GROUP_ROWS)
                        self.bar.update(piece.num_rows)
                mm = pc.min_max(table.column("week_start")).as_py()
                if mm["min"] is not None:
                    self.week_min = min(filter(None, (self.week_min, mm["min"])))
                    self.week_max = max(filter(None, (self.week_max, mm["max"])))
            except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
                self.error = exc

    def put(self, table: pa.Table) -> None:
        if self.error is not None:
            raise self.error
        self.rows += table.num_rows
        self.queue.put(table)

    def end(self) -> None:
        """No more tables: the thread stops once the queue is written."""
        if not self.closed:
            self.closed = True
            self.queue.put(None)

    def finish(self) -> None:
        """Wait until everything queued is written (the file stays open for metadata)."""
        self.end()
        self.thread.join()
        if self.error is not None:
            raise self.error


@dataclass
class WrittenPart:
    rows: int
    week_min: dt.date | None
    week_max: dt.date | None


def write_part_file(path: Path, schema: pa.Schema, batches, compression: str | None
                    ) -> WrittenPart:
    """Write ``batches`` (tables of ``schema``) as one Parquet file with the panel's settings,
    under a temporary name renamed when complete (a rerun task replaces it whole)."""
    from rcfast._cli import progress_bar

    tmp = temporary_sibling(path)
    part = _Part(tmp, schema, compression, progress_bar(False, 0, "write"))
    try:
        for table in batches:
            part.put(table)
        part.finish()
        part.writer.close()
    except BaseException:
        part.end()
        part.thread.join()
        try:
            part.writer.close()
        finally:
            tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return WrittenPart(part.rows, part.week_min, part.week_max)


def publish_output(tmp: Path, data_path: Path, summary_path: Path, summary: dict) -> None:
    """Commit a finished output: the summary JSON beside the data (inside a directory output,
    before its rename), then the rename of ``tmp`` to ``data_path``."""
    text = json.dumps(summary, indent=2) + "\n"
    if tmp.is_dir():
        (tmp / "_summary.json").write_text(text)
        publish(tmp, data_path)
    else:
        publish(tmp, data_path)
        stmp = temporary_sibling(summary_path)
        stmp.write_text(text)
        os.replace(stmp, summary_path)


def publish_parts(parts: list[Path], output: str, schema: pa.Schema, compression: str | None,
                  summary: dict) -> list[Path]:
    """Commit the part files of a distributed run as the output: a directory output's parts
    already lie in its temporary directory (see :func:`parts_directory`); for a file output
    they are stitched into one file, their encoded pages copied byte for byte."""
    data_path, summary_path, is_dir = output_paths(output)
    tmp = temporary_sibling(data_path)
    if not is_dir:
        from rcfast.parquet_stitch import StitchedParquetWriter

        writer = StitchedParquetWriter(tmp, schema, 1, **write_options(schema, compression))
        try:
            for part in parts:
                writer.append_file(part)
            writer.add_key_value_metadata({SUMMARY_KEY: json.dumps(summary).encode()})
            writer.close()
        except BaseException:
            writer.abort()
            tmp.unlink(missing_ok=True)
            raise
    elif not parts:  # an empty panel is still a readable dataset
        pq.write_table(schema.empty_table(), tmp / "part-00000.parquet",
                       **write_options(schema, compression))
    publish_output(tmp, data_path, summary_path, summary)
    return [data_path, summary_path]


def parts_directory(output: str, scratch: Path) -> Path:
    """Where a distributed run's workers write their parts: a directory output's temporary
    directory, or, for a file output, scratch (the parts are stitched into the file)."""
    data_path, _, is_dir = output_paths(output)
    return temporary_sibling(data_path) if is_dir else scratch / "parts"


class PanelWriter:
    """Writes panel batches under a temporary name and renames the output when complete.

    A file output is one part fed by one background thread, its row groups encoded by
    ``n_writers`` threads at once and stitched into the file (:mod:`rcfast.parquet_stitch`; one
    Parquet encoder was the bottleneck). A directory output is part files of about
    :data:`PART_ROWS` rows, written by up to ``n_writers`` threads at once. Parts hold
    consecutive whole batches, so the dataset read in file-name order keeps the panel's order.
    """

    def __init__(self, output: str, schema: pa.Schema, compression: str, progress: bool,
                 total_rows: int, n_writers: int = 1) -> None:
        self.data_path, self.summary_path, self.is_dir = output_paths(output)
        self.schema = schema
        self.comp = None if compression == "none" else compression
        self.tmp = temporary_sibling(self.data_path)
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        if self.is_dir:
            self.tmp.mkdir()
        self.n_writers = max(1, n_writers) if self.is_dir else 1
        # a file output: its row groups encoded by n_writers threads (rcfast.parquet_stitch),
        # at most MAX_ENCODERS: each row group in flight holds its panel slice and its encoded
        # bytes (~0.2 GB per million panel rows)
        self.encoders = 1 if self.is_dir else max(1, min(n_writers, MAX_ENCODERS))
        self.parts: list[_Part] = []
        from rcfast._cli import progress_bar

        self.bar = progress_bar(progress and total_rows >= 2 * ROW_GROUP_ROWS, total_rows,
                                "write")

    def _part(self) -> _Part:
        full = self.is_dir and self.parts and self.parts[-1].rows >= PART_ROWS
        if not self.parts or full:
            if full:
                self.parts[-1].end()  # it finishes on its own thread
                busy = [p for p in self.parts if p.thread.is_alive()]
                if len(busy) >= self.n_writers:
                    busy[0].finish()
            path = (self.tmp / f"part-{len(self.parts):05d}.parquet" if self.is_dir
                    else self.tmp)
            self.parts.append(_Part(path, self.schema, self.comp, self.bar, self.encoders))
        return self.parts[-1]

    def write(self, table: pa.Table) -> None:
        self._part().put(table)

    def drain(self) -> None:
        """Wait for every part's thread; afterwards ``week_min``/``week_max`` are final."""
        self._part()  # an empty panel still gets a (valid, empty) file
        for p in self.parts:
            p.finish()
        self.bar.close()

    @property
    def week_min(self) -> dt.date | None:
        return min((p.week_min for p in self.parts if p.week_min), default=None)

    @property
    def week_max(self) -> dt.date | None:
        return max((p.week_max for p in self.parts if p.week_max), default=None)

    def close(self, summary: dict) -> list[Path]:
        """Finish: summary into every file's metadata and beside them, then the rename."""
        self.drain()
        meta = {SUMMARY_KEY: json.dumps(summary).encode()}
        for p in self.parts:
            p.writer.add_key_value_metadata(meta)
            p.writer.close()
        publish_output(self.tmp, self.data_path, self.summary_path, summary)
        return [self.data_path, self.summary_path]

    def abort(self) -> None:
        import shutil

        for p in self.parts:
            try:
                p.finish()
            except BaseException:  # noqa: BLE001, S110 - the original error is what matters
                pass
            try:
                getattr(p.writer, "abort", p.writer.close)()
            except Exception:  # noqa: BLE001, S110
                pass
        self.bar.close()
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp.exists():
            self.tmp.unlink()


def check_output_path(output: str) -> None:
    """Fail before any work when the output cannot be created: a parent that is a file, or a
    directory this user may not write."""
    data_path = output_paths(output)[0]
    parent = data_path.parent.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {data_path}: {parent} is a file, not a directory; "
                         "choose another -o")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {data_path}: {parent} is not writable; choose another "
                         "-o")
    if data_path.exists() and data_path.is_dir() != output_paths(output)[2]:
        kind = "a directory" if data_path.is_dir() else "a file"
        raise InputError(f"cannot write {data_path}: it exists as {kind}; remove it or choose "
                         "another -o")
