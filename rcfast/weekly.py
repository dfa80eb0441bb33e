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
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rcfast import SPEC_VERSION, __version__
from rcfast.arrow_io import (
    REJECT_REASONS,
    FileArrays,
    InputError,
    ReadOptions,
    assemble,
    convert_file,
    map_columns,
    read_file,
    resolve_inputs,
)
from rcfast.kernels.time import MONDAY_SHIFT_MS, MS_PER_WEEK, week_index
from rcfast.panel import PanelOptions, PanelStats, compute_panel
from rcfast.schema import parse_mapping

SUMMARY_KEY = b"rcfast.summary"
ROW_GROUP_ROWS = 1_000_000
MAX_EXAMPLES = 20


def available_cpus() -> int:
    """Cores this process may use: ``SLURM_CPUS_PER_TASK`` inside a Slurm job, else affinity."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm and slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


@dataclass
class Rejects:
    """Rows set aside, per reason, with a few examples (file, 0-based row in the file)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))
    examples: list[dict] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: Rejects) -> None:
        for k, v in other.counts.items():
            self.counts[k] = self.counts.get(k, 0) + v
        room = MAX_EXAMPLES - len(self.examples)
        self.examples += other.examples[:max(0, room)]


_FIX = {
    "null_product_id": "drop or fill the row's product id",
    "null_timestamp": "fix the time, or map the right column with --map timestamp=COLUMN",
    "timestamp_out_of_range": "check the unit (--timestamp-unit) or drop the row",
    "null_rating": "drop the row or fill its rating",
    "rating_out_of_range": "ratings must lie in [1, 5]; map the right column or rescale it",
    "after_until": "raise --until or leave it out",
}


def reject_rows(files: list[FileArrays], masks: dict[str, np.ndarray], strict: bool,
                columns: dict[Path, dict[str, str]]) -> tuple[np.ndarray, Rejects]:
    """The first reason of each rejected row (-1 = kept), counted; ``strict`` raises on the first."""
    n = masks["null_product_id"].shape[0]
    reason = np.full(n, -1, dtype=np.int8)
    for code in range(len(REJECT_REASONS) - 1, -1, -1):  # first reason wins
        m = masks.get(REJECT_REASONS[code])
        if m is not None:
            reason[m] = code
    rej = Rejects()
    bad = np.flatnonzero(reason >= 0)
    if bad.size == 0:
        return reason, rej
    starts = np.cumsum([0] + [f.rows for f in files])
    counts = np.bincount(reason[bad], minlength=len(REJECT_REASONS))
    for code, c in enumerate(counts):
        rej.counts[REJECT_REASONS[code]] = int(c)
    for i in bad[:MAX_EXAMPLES]:
        fi = int(np.searchsorted(starts, i, side="right") - 1)
        why = REJECT_REASONS[reason[i]]
        fld = {"null_product_id": "product_id", "null_timestamp": "timestamp",
               "timestamp_out_of_range": "timestamp", "after_until": "timestamp"
               }.get(why, "rating")
        col = columns.get(files[fi].path, {}).get(fld, fld)
        rej.examples.append({"file": str(files[fi].path), "row": int(i - starts[fi]),
                             "column": col, "reason": why})
    if strict:
        ex = rej.examples[0]
        raise InputError(f"{ex['file']}: row {ex['row']} (0-based), column {ex['column']!r}: "
                         f"{ex['reason']} ({_FIX[ex['reason']]}); without --strict such rows "
                         "are set aside and counted")
    return reason, rej


Source = tuple[Path, "dict[str, pa.ChunkedArray]", "dict[str, str]"]


def load_sources(sources, ropts: ReadOptions, until_week: int | None, strict: bool):
    """Convert ``(path, columns, colmap)`` sources; return ``(Columns, Rejects, rows_read)``."""
    files: list[FileArrays] = []
    colmaps: dict[Path, dict[str, str]] = {}
    for path, cols, colmap in sources:
        colmaps[path] = colmap
        files.append(convert_file(path, cols, colmap, ropts))
        del cols
    cols, masks = assemble(files)
    if until_week is not None:
        masks["after_until"] = week_index(cols.ms) > until_week
    reason, rej = reject_rows(files, masks, strict, colmaps)
    rows_read = int(reason.shape[0])
    if rej.total:
        cols.product_code[reason >= 0] = -1
    return cols, rej, rows_read


def load(paths: list[Path], ropts: ReadOptions, until_week: int | None, strict: bool,
         progress: bool = False):
    """Read, check and convert all files; return ``(Columns, Rejects, rows_read)``."""
    from tqdm.auto import tqdm

    def sources():
        for path in tqdm(paths, desc="read", unit="file", file=sys.stderr,
                         disable=not progress or len(paths) < 2):
            cols, colmap = read_file(path, ropts)
            yield path, cols, colmap

    return load_sources(sources(), ropts, until_week, strict)


def weekly_panel(table: pa.Table, *, windows=(4, 12, 52), lags=(1, 2, 4), dense: bool = False,
                 until: str | None = None, mapping: dict[str, str] | None = None,
                 timestamp_unit: str | None = None, strict: bool = False,
                 ) -> tuple[pa.Table, dict]:
    """The panel of an in-memory review table (the Python API of ``python -m rcfast.weekly``).

    Returns the panel and a summary with ``rows_read``, ``rows_aggregated``, ``rejected``
    (reason -> count), ``products`` and ``panel_rows``.
    """
    popts = PanelOptions(windows=tuple(windows), lags=tuple(lags), dense=dense,
                         until_week=parse_until(until) if until else None)
    ropts = ReadOptions(mapping=dict(mapping or {}), timestamp_unit=timestamp_unit)
    where = Path("<table>")
    colmap = map_columns(where, table.column_names, ropts)
    cols = {f: table.column(c) for f, c in colmap.items()}
    columns, rej, rows_read = load_sources([(where, cols, colmap)], ropts, popts.until_week,
                                           strict)
    panel, stats = compute_panel(columns, popts)
    summary = {"rows_read": rows_read, "rows_aggregated": stats.rows_aggregated,
               "rows_rejected": rej.total, "rejected": rej.counts,
               "rejected_examples": rej.examples, "products": stats.products,
               "panel_rows": stats.panel_rows}
    return panel, summary


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"--{what} expects comma-separated positive integers, got {text!r}"
                         ) from None
    if not vals or any(v < 1 for v in vals):
        raise InputError(f"--{what} expects comma-separated positive integers, got {text!r}")
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
                   help="last date of the panel (YYYY-MM-DD); later reviews are set aside and "
                        "dense panels extend every product to this week")
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
                        "--scheduler-file, as in slurm/weekly.sbatch)")
    p.add_argument("--partitions", type=int, default=None,
                   help="Dask partitions (default: 2 x workers); each holds whole products")
    p.add_argument("--strict", action="store_true",
                   help="fail on the first row that would be set aside")
    p.add_argument("--compression", default="zstd",
                   choices=["zstd", "snappy", "lz4", "gzip", "none"])
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


def write_panel(table: pa.Table, output: str, summary: dict, compression: str,
                progress: bool) -> list[Path]:
    """Write the panel under a temporary name and rename it when complete."""
    from tqdm.auto import tqdm

    data_path, summary_path, is_dir = output_paths(output)
    meta = {SUMMARY_KEY: json.dumps(summary).encode()}
    schema = table.schema.with_metadata(meta)
    table = table.replace_schema_metadata(meta)
    comp = None if compression == "none" else compression
    tmp = data_path.with_name(f".{data_path.name}.tmp-{os.getpid()}")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    n = table.num_rows
    bar = tqdm(total=n, desc="write", unit="row", unit_scale=True, file=sys.stderr,
               disable=not progress or n < 2 * ROW_GROUP_ROWS)
    written: list[Path] = []
    try:
        if is_dir:
            tmp.mkdir()
            # part files of consecutive rows: read in name order, the dataset stays sorted
            parts = max(1, -(-n // (8 * ROW_GROUP_ROWS)))
            step = -(-n // parts) if n else 0
            for k in range(parts):
                piece = table.slice(k * step, step)
                pq.write_table(piece, tmp / f"part-{k:05d}.parquet", compression=comp,
                               row_group_size=ROW_GROUP_ROWS)
                bar.update(piece.num_rows)
            (tmp / "_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        else:
            with pq.ParquetWriter(tmp, schema, compression=comp) as w:
                for start in range(0, max(n, 1), ROW_GROUP_ROWS):
                    piece = table.slice(start, ROW_GROUP_ROWS)
                    w.write_table(piece, row_group_size=ROW_GROUP_ROWS)
                    bar.update(piece.num_rows)
        bar.close()
        if is_dir and data_path.exists():
            import shutil

            old = data_path.with_name(f".{data_path.name}.old-{os.getpid()}")
            data_path.rename(old)
            tmp.rename(data_path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, data_path)
        written.append(data_path)
        if not is_dir:
            stmp = summary_path.with_name(f".{summary_path.name}.tmp-{os.getpid()}")
            stmp.write_text(json.dumps(summary, indent=2) + "\n")
            os.replace(stmp, summary_path)
        written.append(summary_path)
    except BaseException:
        import shutil

        bar.close()
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise
    return written


def make_summary(args: argparse.Namespace, popts: PanelOptions, paths: list[Path],
                 rows_read: int, rej: Rejects, stats: PanelStats, table: pa.Table,
                 arrangement: dict) -> dict:
    weeks = table.column("week_start")
    import pyarrow.compute as pc

    mm = pc.min_max(weeks).as_py() if table.num_rows else {"min": None, "max": None}
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
    workers = args.workers or 1
    if workers < 1:
        raise InputError("--workers must be >= 1")
    threads = args.threads or max(1, cpus // workers)
    if threads < 1:
        raise InputError("--threads must be >= 1")
    progress = not args.quiet
    distributed = workers > 1 or args.scheduler or args.scheduler_file
    arrangement = {"workers": workers, "threads": threads,
                   "engine": "dask" if distributed else "in-process"}
    t = time.perf_counter()
    if distributed:
        from rcfast.dispatch import run_dask

        table, stats, rej, rows_read, arr = run_dask(paths, ropts, popts, args, workers,
                                                     threads, progress)
        arrangement.update(arr)
        timings.update(stats.timings)
    else:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        cols, rej, rows_read = load(paths, ropts, popts.until_week, args.strict, progress)
        timings["read"] = time.perf_counter() - t
        table, stats = compute_panel(cols, popts)
        del cols
        timings.update(stats.timings)
    t = time.perf_counter()
    summary = make_summary(args, popts, paths, rows_read, rej, stats, table, arrangement)
    written = write_panel(table, args.output, summary, args.compression, progress)
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    if progress:
        print_summary(summary, timings, written)
        if args.demo:
            print_preview(table)
    summary["timings"] = timings
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the reason
        return int(exc.code or 0)
    try:
        run(args)
    except InputError as exc:
        print(f"rcfast.weekly: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rcfast.weekly: interrupted; no output was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
