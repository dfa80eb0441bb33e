"""``python -m rcfast.weekly`` — the weekly per-product panel of SPEC-weekly.md.

Examples::

    python -m rcfast.weekly --demo -o panel.parquet
    python -m rcfast.weekly reviews/ -o panel.parquet --windows 4,12,52 --lags 1,2,4
    python -m rcfast.weekly 'dump/*.parquet' -o panel/ --dense --until 2023-09-30
    python -m rcfast.weekly combined/ -o panel.parquet --workers 4 --threads 8
    python -m rcfast.weekly data.parquet -o p.parquet --map product_id=asin --map rating=overall

Exit code 0 on success, 2 on bad usage or bad input (the reason on stderr).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    # The command never calls BLAS, but OpenBLAS starts a thread per core when numpy is
    # imported, and they spin: ~0.1 CPU-s of a 1M-row run on a 2-core machine.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pyarrow as pa
import pyarrow.parquet as pq

from rcfast import SPEC_VERSION, __version__
from rcfast.arrow_io import (
    InputError,
    ReadOptions,
    parquet_rows,
    read_batches,
    resolve_inputs,
    table_batches,
)
from rcfast.kernels.time import MONDAY_SHIFT_MS, MS_PER_WEEK
from rcfast.loader import Rejects, load_batches
from rcfast.panel import (
    SLICE_ROWS,
    Columns,
    PanelOptions,
    PanelStats,
    compute_panel,
    panel_batches,
    panel_schema,
)
from rcfast.schema import PLAUSIBLE_MAX_MS, PLAUSIBLE_MIN_MS, parse_mapping

SUMMARY_KEY = b"rcfast.summary"
#: Rows per row group at most: a computed slice of whole products (at most SLICE_ROWS rows)
#: is one row group. 1,000,000 split every slice into 1,000,000 + 48,576 rows.
ROW_GROUP_ROWS = SLICE_ROWS
#: Weeks outside these dates are aggregated (the spec sets aside only unreadable times) but
#: flagged in the summary: they are the trace of a unit error more often than of a review.
PLAUSIBLE_FIRST = dt.date(1970, 1, 1) + dt.timedelta(milliseconds=PLAUSIBLE_MIN_MS)
PLAUSIBLE_END = dt.date(1970, 1, 1) + dt.timedelta(milliseconds=PLAUSIBLE_MAX_MS)


def available_cpus() -> int:
    """Cores this process may use: ``SLURM_CPUS_PER_TASK`` inside a Slurm job, else affinity."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm and slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


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


def weekly_panel(table: pa.Table, *, windows=(4, 12, 52), lags=(1, 2, 4), dense: bool = False,
                 until: str | None = None, mapping: dict[str, str] | None = None,
                 timestamp_unit: str | None = None, strict: bool = False,
                 ) -> tuple[pa.Table, dict]:
    """The panel of an in-memory review table (the Python API of ``python -m rcfast.weekly``).

    Returns the panel and a summary with ``rows_read``, ``rows_aggregated``, ``rejected``
    (reason -> count), ``products`` and ``panel_rows``.
    """
    from rcfast.kernels import init_numba

    init_numba()
    popts = PanelOptions(windows=tuple(windows), lags=tuple(lags), dense=dense,
                         until_week=parse_until(until) if until else None)
    ropts = ReadOptions(mapping=dict(mapping or {}), timestamp_unit=timestamp_unit)
    columns, rej, rows_read = load_batches(table_batches(table, ropts, Path("<table>")),
                                           table.num_rows, ropts, popts.until_week, strict)
    panel, stats = compute_panel(columns, popts)
    summary = {"rows_read": rows_read, "rows_aggregated": stats.rows_aggregated,
               "rows_rejected": rej.total, "rejected": rej.counts,
               "rejected_examples": rej.examples, "products": stats.products,
               "panel_rows": stats.panel_rows}
    return panel, summary


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"--{what} expects comma-separated positive integers, got {text!r}"
                         ) from None
    if not vals or any(v < 1 for v in vals):
        raise InputError(f"--{what} expects comma-separated positive integers, got {text!r}")
    if len(set(vals)) != len(vals):
        raise InputError(f"--{what} {text!r} names a value twice; each gives its own columns")
    return vals


def parse_until(text: str) -> int:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--until expects a date YYYY-MM-DD, got {text!r}") from None
    ms = (day - dt.date(1970, 1, 1)).days * 86_400_000
    return (ms + MONDAY_SHIFT_MS) // MS_PER_WEEK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rcfast.weekly",
        description="Weekly per-product panel (SPEC-weekly.md) from normalized review Parquet.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples::", 1)[1] if __doc__ else None)
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="Parquet file, directory of Parquet files, or glob")
    p.add_argument("-o", "--output", required=True,
                   help="output: FILE.parquet, or a directory (written as part files)")
    p.add_argument("--demo", action="store_true",
                   help="run on the built-in generated demo data (rcfast.synth)")
    p.add_argument("--demo-rows", type=int, default=2_000_000, help="rows of demo data")
    p.add_argument("--dense", action="store_true",
                   help="also emit weeks without reviews, from each product's first week")
    p.add_argument("--until", metavar="DATE",
                   help="last week of the panel: the Monday-to-Sunday week containing DATE "
                        "(YYYY-MM-DD). Reviews of later weeks are set aside (after_until); "
                        "the whole week of DATE is kept, so no last week is partial. Dense "
                        "panels extend every product to this week")
    p.add_argument("--windows", default="4,12,52", help="rolling windows in weeks")
    p.add_argument("--lags", default="1,2,4", help="lags in weeks")
    p.add_argument("--map", action="append", metavar="FIELD=COLUMN", default=[],
                   help="read FIELD from raw COLUMN (repeatable)")
    p.add_argument("--timestamp-unit", choices=["s", "ms", "us", "ns"],
                   help="unit of integer timestamp columns (default ms; s for unixReviewTime)")
    p.add_argument("--workers", type=int, default=None,
                   help="Dask worker processes (default 1: one process, all cores as Numba "
                        "threads, the fastest on one node); >1 starts a local Dask cluster")
    p.add_argument("--threads", type=int, default=None,
                   help="Numba threads per worker (default: cores // workers)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="use a running Dask scheduler (e.g. tcp://node1:8786) across nodes")
    p.add_argument("--scheduler-file", metavar="FILE",
                   help="use the Dask scheduler described in FILE (dask scheduler "
                        "--scheduler-file, as in slurm/weekly-multinode.sbatch)")
    p.add_argument("--partitions", type=int, default=None,
                   help="Dask partitions (default: 2 x workers); each holds whole products")
    p.add_argument("--strict", action="store_true",
                   help="fail on the first row that would be set aside")
    p.add_argument("--compression", default="snappy",
                   choices=["snappy", "zstd", "lz4", "gzip", "none"],
                   help="Parquet codec of the panel (default snappy, pyarrow's default: fast "
                        "to write; zstd gives ~25%% smaller files for ~60%% more write time)")
    p.add_argument("--quiet", action="store_true", help="no progress and no summary table")
    return p


def options_from_args(args: argparse.Namespace) -> tuple[PanelOptions, ReadOptions]:
    until_week = parse_until(args.until) if args.until else None
    popts = PanelOptions(windows=parse_int_list(args.windows, "windows"),
                         lags=parse_int_list(args.lags, "lags"), dense=args.dense,
                         until_week=until_week)
    try:
        mapping = parse_mapping(args.map)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return popts, ReadOptions(mapping=mapping, timestamp_unit=args.timestamp_unit)


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
        self.tmp = self.data_path.with_name(f".{self.data_path.name}.tmp-{os.getpid()}")
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
        text = json.dumps(summary, indent=2) + "\n"
        if self.is_dir:
            (self.tmp / "_summary.json").write_text(text)
            if self.data_path.exists():
                import shutil

                old = self.data_path.with_name(f".{self.data_path.name}.old-{os.getpid()}")
                self.data_path.rename(old)
                self.tmp.rename(self.data_path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                self.tmp.rename(self.data_path)
        else:
            os.replace(self.tmp, self.data_path)
            stmp = self.summary_path.with_name(f".{self.summary_path.name}.tmp-{os.getpid()}")
            stmp.write_text(text)
            os.replace(stmp, self.summary_path)
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


def make_summary(args: argparse.Namespace, popts: PanelOptions, paths: list[Path],
                 rows_read: int, rej: Rejects, stats: PanelStats, weeks: tuple,
                 arrangement: dict) -> dict:
    mm = {"min": weeks[0], "max": weeks[1]}
    warnings = []
    if mm["min"] and (mm["min"] < PLAUSIBLE_FIRST or mm["max"] >= PLAUSIBLE_END):
        warnings.append(f"the panel's weeks run from {mm['min']} to {mm['max']}: review dates "
                        "before 1900 or after 2099 usually mean a timestamp in another unit "
                        "(see --timestamp-unit) or a wrong column (--map timestamp=COLUMN)")
    if rows_read == 0:
        warnings.append("the input holds no rows, so the panel is empty: check the input path "
                        "or glob and that the files are not empty")
    summary = {
        "rcfast_version": __version__,
        "spec_version": SPEC_VERSION,
        "rows_read": rows_read,
        "rows_aggregated": stats.rows_aggregated,
        "rows_rejected": rej.total,
        "rejected": {k: v for k, v in rej.counts.items()},
        "rejected_examples": rej.examples,
        "products": stats.products,
        "panel_rows": stats.panel_rows,
        "first_week": str(mm["min"]) if mm["min"] else None,
        "last_week": str(mm["max"]) if mm["max"] else None,
        "warnings": warnings,
        "inputs": [str(p) for p in paths],
        "output": str(args.output),
        "options": {
            "dense": popts.dense,
            "until": args.until,
            "windows": list(popts.windows),
            "lags": list(popts.lags),
            "map": args.map,
            "timestamp_unit": args.timestamp_unit,
            "strict": args.strict,
            **arrangement,
        },
    }
    if summary["rows_read"] != summary["rows_aggregated"] + summary["rows_rejected"]:
        raise RuntimeError(f"row accounting broke: {summary}")  # a bug, never user input
    return summary


def print_summary(summary: dict, timings: dict[str, float], written: list[Path],
                  file=None) -> None:
    w = 28
    lines = [
        f"rcfast.weekly {summary['rcfast_version']} (spec v{summary['spec_version']})",
        f"{'rows read':<{w}}{summary['rows_read']:>14,}",
        f"{'rows aggregated':<{w}}{summary['rows_aggregated']:>14,}",
        f"{'rows set aside':<{w}}{summary['rows_rejected']:>14,}",
    ]
    for k, v in summary["rejected"].items():
        if v:
            lines.append(f"{'  ' + k:<{w}}{v:>14,}")
    lines += [
        f"{'products':<{w}}{summary['products']:>14,}",
        f"{'panel rows':<{w}}{summary['panel_rows']:>14,}"
        + ("  (dense)" if summary["options"]["dense"] else "  (sparse)"),
        f"{'weeks':<{w}}{summary['first_week']} .. {summary['last_week']}",
        f"{'arrangement':<{w}}{summary['options']['workers']} worker(s) x "
        f"{summary['options']['threads']} thread(s)",
        "time: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()),
    ]
    for p in written:
        size = (sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir()
                else p.stat().st_size)
        lines.append(f"wrote {p} ({size / 1e6:,.1f} MB)")
    lines += [f"warning: {w}" for w in summary["warnings"]]
    if summary["rows_rejected"]:
        ex = summary["rejected_examples"][0]
        lines.append(f"first row set aside: {ex['file']} row {ex['row']} ({ex['reason']}); "
                     "all examples in the summary JSON")
    print("\n".join(lines), file=file or sys.stdout)


def print_preview(table: pa.Table, file=None) -> None:
    """The last weeks of the most-reviewed product: what a panel row holds, at a glance."""
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return
    cum = table.column("n_reviews_cum")
    top = table.column("product_id")[pc.index(cum, pc.max(cum)).as_py()].as_py()
    mine = table.filter(pc.equal(table.column("product_id"), top))
    rows = mine.slice(max(0, mine.num_rows - 6)).to_pylist()
    cols = ["week_start", "n_reviews", "rating_mean", "n_reviews_r4", "n_reviews_r52",
            "n_reviews_lag1", "n_reviews_ewm", "n_reviews_cum"]
    out = [f"\npreview: last weeks of the most-reviewed product {top}",
           "  ".join(f"{c:>14}" for c in cols)]

    def fmt(v):
        if v is None:
            return f"{'null':>14}"
        return f"{v:>14.3f}" if isinstance(v, float) else f"{v!s:>14}"

    out += ["  ".join(fmt(r[c]) for c in cols) for r in rows]
    out.append("read it with: pyarrow.dataset.dataset(OUTPUT).to_table() or "
               "pandas.read_parquet(OUTPUT)")
    print("\n".join(out), file=file or sys.stdout)


def run(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    popts, ropts = options_from_args(args)
    if args.demo:
        if args.inputs:
            raise InputError("give either --demo or INPUT files, not both")
        from rcfast import synth

        print(f"demo data: {args.demo_rows:,} generated reviews (rcfast.synth)", file=sys.stderr)
        args.inputs = [str(synth.demo_parquet(n_rows=args.demo_rows))]
        timings["demo data"] = time.perf_counter() - t0
    if not args.inputs:
        raise InputError("no INPUT given (or use --demo)")
    paths = resolve_inputs(args.inputs)
    cpus = available_cpus()
    for name in ("workers", "threads", "partitions"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name} must be >= 1, got {value} (leave it out for the default)")
    workers = args.workers or 1
    threads = args.threads or max(1, cpus // workers)
    progress = not args.quiet
    distributed = workers > 1 or args.scheduler or args.scheduler_file
    arrangement = {"workers": workers, "threads": threads,
                   "engine": "dask" if distributed else "in-process"}
    if not distributed:
        # The in-process run makes many short-lived objects and no reference cycles worth
        # collecting: the cyclic GC would only re-scan the heap of the imported modules
        # (~0.15 s per 10M reviews). A Dask client keeps it (its event loop makes cycles).
        gc.disable()
    import numba

    from rcfast.kernels import init_numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    t = time.perf_counter()
    if distributed:
        from rcfast.dispatch import run_dask

        table, stats, rej, rows_read, arr = run_dask(paths, ropts, popts, args, workers,
                                                     threads, progress)
        arrangement.update(arr)
        timings.update(stats.timings)
        batches = iter([table] if table.num_rows else [])
    else:
        cols, rej, rows_read = load(paths, ropts, popts.until_week, args.strict, progress,
                                    meanwhile=init_numba)
        timings["read"] = time.perf_counter() - t
        stats = PanelStats()
        batches = panel_batches(cols, popts, stats, consume=True)  # cols: not used after
    t = time.perf_counter()
    writer = None
    try:
        first = next(batches, None)  # grouping runs here: stats.panel_rows is known after
        writer = PanelWriter(args.output, panel_schema(popts), args.compression, progress,
                             stats.panel_rows, n_writers=threads)
        if first is not None:
            writer.write(first)
            for table in batches:
                writer.write(table)
        if not distributed:
            del cols
        writer.drain()
        summary = make_summary(args, popts, paths, rows_read, rej, stats,
                               (writer.week_min, writer.week_max), arrangement)
        written = writer.close(summary)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if not distributed:
        timings.update(stats.timings)
    # what is left after the kernels that ran meanwhile (in-process only): the writer's tail
    overlapped = 0.0 if distributed else sum(
        v for k, v in stats.timings.items() if k in ("group", "aggregate", "features", "wrap"))
    timings["write"] = time.perf_counter() - t - overlapped
    timings["total"] = time.perf_counter() - t0
    if progress:
        print_summary(summary, timings, written)
        if args.demo:
            print_preview(pq.read_table(written[0]))
    else:
        for w in summary["warnings"]:
            print(f"rcfast.weekly: warning: {w}", file=sys.stderr)
    summary["timings"] = timings
    return summary


def tune_malloc() -> bool:
    """Keep glibc from handing every freed array of 128 kB..32 MB back to the kernel.

    glibc serves such arrays with mmap and returns them with munmap; each of weekly's batches
    then gets fresh pages, one page fault and a zeroed page per 4 kB (about 0.4 s of system
    time per 10M reviews). A fixed 32 MB threshold serves them from the heap, which is reused.
    Only the weekly CLI's own process is tuned; a user's MALLOC_MMAP_THRESHOLD_ wins. Returns
    whether set.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        ok = libc.mallopt(m_mmap_threshold, 32 << 20) == 1
        return ok and libc.mallopt(m_trim_threshold, 256 << 20) == 1
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False


def arrow_pool_for_run() -> pa.MemoryPool | None:
    """The memory pool the weekly run should give Arrow: jemalloc, unless the user chose one
    with ``ARROW_DEFAULT_MEMORY_POOL`` or pyarrow was built without it (then None: keep the
    default).

    Measured on the 31.8M-row benchmark input (2 cores, 2026-11-28, 14 alternating pairs of
    CLI runs): jemalloc was faster than the wheel's default mimalloc in 13, 7.24 s vs 7.68 s
    mean total, with 2.78-2.87 vs 2.86-3.02 GB peak RSS; the gain is in the Parquet read, where
    Arrow allocates its buffers.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return None
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return None


def main(argv: list[str] | None = None) -> int:
    tune_malloc()
    from rcfast._bytecode import ensure_compiled
    from rcfast._cli import without_pandas

    ensure_compiled()  # once, where PYTHONDONTWRITEBYTECODE keeps Python from doing it
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the reason
        return int(exc.code or 0)
    gc_was_enabled = gc.isenabled()  # run() pauses the cyclic GC; restored here
    # Dask's scheduler and workers need pandas; the in-process run does not
    in_process = not ((args.workers or 1) > 1 or args.scheduler or args.scheduler_file)
    pool_before = pa.default_memory_pool()
    pool = arrow_pool_for_run()
    try:
        if pool is not None:
            pa.set_memory_pool(pool)  # for this run; restored below for in-process callers
        with without_pandas(in_process):
            run(args)
    except InputError as exc:
        print(f"rcfast.weekly: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rcfast.weekly: interrupted; no output was written", file=sys.stderr)
        return 130
    finally:
        if pool is not None:
            pa.set_memory_pool(pool_before)
        if gc_was_enabled:
            gc.enable()
    return 0


if __name__ == "__main__":
    from rcfast._cli import exit_cli

    exit_cli(main())
