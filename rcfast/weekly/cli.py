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
import dataclasses
import logging
import gc
import os
import sys
import time
from pathlib import Path
import pyarrow as pa
import pyarrow.parquet as pq

from rcfast.arrow_io import InputError, ReadOptions, parquet_rows, resolve_inputs
from rcfast.panel import PanelOptions, PanelStats, panel_batches, panel_schema
from rcfast.schema import parse_mapping
from rcfast.weekly.options import parse_int_list, parse_until
from rcfast.weekly.read import available_cpus, load
from rcfast.weekly.summary import make_summary, print_preview, print_summary
from rcfast.publish import ScratchDir, remove_stale
from rcfast.resources import DEFAULT_MEMORY_SHARE, available_memory, parse_size
from rcfast.weekly.spill import plan_memory, spilled_panel
from rcfast.weekly.write import PanelWriter, output_paths

log = logging.getLogger("rcfast.weekly")


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
                   help="partitions of whole products when the run is distributed or out of "
                        "core (default: as many as the memory limit needs, at least 2 x "
                        "workers)")
    p.add_argument("--memory-limit", metavar="SIZE",
                   help="memory the run may use (per worker with Dask), e.g. 4GB or 1500MB; "
                        "an input that would not fit is computed out of core, spilled to "
                        "--tmp-dir (default: half of the cgroup limit, Slurm's --mem or the "
                        "physical memory, whichever is least)")
    p.add_argument("--tmp-dir", metavar="DIR",
                   help="scratch for out-of-core runs (default: $TMPDIR, else $SLURM_TMPDIR, "
                        "else the system's temporary directory); removed at the end")
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
    check_output_path(args.output)
    remove_stale(output_paths(args.output)[0])  # what killed runs on this host left
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
    memory = None if distributed else plan_memory(parquet_rows(paths), *memory_limit(args),
                                                  force_spill=args.partitions is not None)
    arrangement["memory_limit"] = memory.limit if memory else None
    arrangement["out_of_core"] = bool(memory and memory.spill)
    scratch = ScratchDir(args.tmp_dir) if memory and memory.spill else None
    cols = None
    if distributed:
        summary, written, worker_timings = run_distributed(args, paths, ropts, popts, workers,
                                                           threads, progress, arrangement)
        timings.update(worker_timings)
        return report(args, summary, written, timings, t0, progress)
    if scratch is not None:
        if args.partitions:
            part_rows = max(1, -(-parquet_rows(paths) // args.partitions))
            memory = dataclasses.replace(memory, n_parts=args.partitions,
                                         partition_rows=part_rows,
                                         block_rows=min(memory.block_rows, part_rows))
        log.info("%s", memory.describe())
        if progress:
            print(f"rcfast.weekly: {memory.describe()}", file=sys.stderr)
        init_numba()
        spill_dir = scratch.__enter__()
        try:
            spilled, batches = spilled_panel(paths, ropts, popts, args.strict, memory,
                                             spill_dir, progress)
        except BaseException:
            scratch.__exit__(None, None, None)
            raise
        rej, rows_read, stats = spilled.rejects, spilled.rows_read, spilled.stats
        arrangement["partitions"] = len(spilled.part_rows)
        arrangement["scratch_bytes"] = spilled.scratch_bytes
        timings["read"] = time.perf_counter() - t
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
        del cols
        writer.drain()
        summary = make_summary(args, popts, paths, rows_read, rej, stats,
                               (writer.week_min, writer.week_max), arrangement)
        written = writer.close(summary)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if scratch is not None:
            scratch.__exit__(None, None, None)
    timings.update(stats.timings)
    # what is left after the kernels that ran meanwhile: the writer's tail
    overlapped = sum(v for k, v in stats.timings.items()
                     if k in ("load", "group", "aggregate", "features", "wrap"))
    timings["write"] = time.perf_counter() - t - overlapped
    return report(args, summary, written, timings, t0, progress)


def report(args: argparse.Namespace, summary: dict, written: list[Path], timings: dict,
           t0: float, progress: bool) -> dict:
    """Print the summary (or only its warnings with --quiet); return it with the timings."""
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


def run_distributed(args: argparse.Namespace, paths: list[Path], ropts: ReadOptions,
                    popts: PanelOptions, workers: int, threads: int, progress: bool,
                    arrangement: dict) -> tuple[dict, list[Path], dict]:
    """The run on a Dask cluster (local, or the scheduler given): workers write the parts."""
    from rcfast.weekly.distributed import start_client, weekly_on_cluster, worker_memory_limit
    from rcfast.weekly.write import parts_directory, publish_parts

    local = not (args.scheduler or args.scheduler_file)
    limit = None
    if local:  # --memory-limit is each worker's; by default the workers share the default
        given, _ = memory_limit(args)
        limit = worker_memory_limit(given if args.memory_limit else None, workers, given)
    arrangement["memory_limit"] = limit
    data_path = output_paths(args.output)[0]
    comp = None if args.compression == "none" else args.compression
    client, cluster = start_client(workers, threads, limit, args.scheduler, args.scheduler_file)
    scratch = ScratchDir(args.tmp_dir if args.tmp_dir or local else data_path.parent)
    parts_dir = None
    try:
        if progress and client.dashboard_link and "None" not in client.dashboard_link:
            print(f"rcfast.weekly: Dask dashboard at {client.dashboard_link}", file=sys.stderr)
        with scratch as spill_dir:
            parts_dir = parts_directory(args.output, spill_dir)
            run = weekly_on_cluster(client, paths, ropts, popts, parts_dir=parts_dir,
                                    scratch=spill_dir, strict=args.strict, threads=threads,
                                    n_parts=args.partitions, compression=comp,
                                    progress=progress)
            arrangement.update(run.arrangement)
            summary = make_summary(args, popts, paths, run.rows_read, run.rejects, run.stats,
                                   (run.week_min, run.week_max), arrangement)
            written = publish_parts([Path(p) for p in run.parts], args.output,
                                    panel_schema(popts), comp, summary)
        return summary, written, run.stats.timings
    except BaseException:
        if parts_dir is not None and parts_dir.exists() and parts_dir.name.startswith("."):
            import shutil

            shutil.rmtree(parts_dir, ignore_errors=True)
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def os_error_line(exc: OSError) -> str:
    """One line for a failed write: the path, the system's reason and the fix."""
    where = exc.filename or "the output or scratch"
    return (f"cannot write {where}: {exc.strerror or exc}; choose an output (-o) and scratch "
            "(--tmp-dir) on a writable file system with free space")


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


def memory_limit(args: argparse.Namespace) -> tuple[int, str]:
    """``(bytes, where the figure comes from)`` of the run's memory limit."""
    if args.memory_limit:
        try:
            return parse_size(args.memory_limit), "--memory-limit"
        except ValueError as exc:
            raise InputError(f"--memory-limit: {exc}") from None
    total, source = available_memory()
    return int(total * DEFAULT_MEMORY_SHARE), f"half of {source}"


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
    except OSError as exc:  # the output or scratch cannot be written (input errors are named)
        print(f"rcfast.weekly: error: {os_error_line(exc)}", file=sys.stderr)
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

