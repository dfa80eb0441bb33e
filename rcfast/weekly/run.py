"""One weekly run, from its :class:`WeeklyJob` to the published output and its summary: in
memory, out of core (:mod:`rcfast.weekly.spill`) or on a Dask cluster
(:mod:`rcfast.weekly.distributed`). The CLI and the Python API both build a job and call
:func:`run_job`."""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rcfast.errors import InputError
from rcfast.weekly.panel import (
    DEFAULT_LAGS,
    DEFAULT_WINDOWS,
    PanelOptions,
    PanelStats,
    panel_batches,
    panel_schema,
)
from rcfast.publish import ScratchDir, remove_stale
from rcfast.resources import (
    DEFAULT_MEMORY_SHARE,
    available_cpus,
    available_memory,
    parse_size,
)
from rcfast.schema import parse_mapping
from rcfast.weekly.options import parse_int_list, parse_until
from rcfast.weekly.load import load
from rcfast.weekly.read import ReadOptions, parquet_rows, resolve_inputs
from rcfast.weekly.spill import plan_memory, spilled_panel
from rcfast.weekly.summary import make_summary, print_preview, print_summary
from rcfast.weekly.write import PanelWriter, check_output_path, output_paths

log = logging.getLogger("rcfast.weekly")


@dataclass
class WeeklyJob:
    """A weekly run: the command line's options, as the Python API also sets them."""

    inputs: list[str]  #: Parquet files, directories or globs
    output: str  #: FILE.parquet, or a directory of part files
    windows: str | tuple[int, ...] = DEFAULT_WINDOWS  #: rolling windows in weeks
    lags: str | tuple[int, ...] = DEFAULT_LAGS  #: lags in weeks
    dense: bool = False  #: also the weeks without reviews
    until: str | None = None  #: last week of the panel (YYYY-MM-DD)
    map: list[str] = field(default_factory=list)  #: FIELD=COLUMN of raw column names
    timestamp_unit: str | None = None  #: unit of integer timestamps (default ms)
    strict: bool = False  #: fail on the first row that would be set aside
    workers: int | None = None  #: Dask worker processes of a local cluster (>1: distributed)
    threads: int | None = None  #: Numba threads per worker
    scheduler: str | None = None  #: address of a running Dask scheduler
    scheduler_file: str | None = None  #: its scheduler file
    client: Any = None  #: a dask.distributed.Client to run on (left open)
    partitions: int | None = None  #: partitions of whole products (distributed, out of core)
    memory_limit: str | int | None = None  #: bytes or "4GB"; each worker's with Dask
    tmp_dir: str | None = None  #: scratch of out-of-core and distributed runs
    compression: str = "snappy"  #: Parquet codec of the panel
    quiet: bool = True  #: warnings and errors only: no progress, no summary table
    no_progress: bool = False  #: no progress output (the summary table still)
    demo: bool = False  #: the generated demo data as input
    demo_rows: int = 2_000_000  #: rows of demo data


def options_from_args(args: WeeklyJob) -> tuple[PanelOptions, ReadOptions]:
    until_week = parse_until(args.until) if args.until else None
    def ints(value, what: str) -> tuple[int, ...]:
        if isinstance(value, str):
            return parse_int_list(value, what)
        return parse_int_list(",".join(str(int(v)) for v in value), what)

    popts = PanelOptions(windows=ints(args.windows, "windows"), lags=ints(args.lags, "lags"),
                         dense=args.dense, until_week=until_week)
    try:
        mapping = parse_mapping(args.map)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return popts, ReadOptions(mapping=mapping, timestamp_unit=args.timestamp_unit)



def run_job(args: WeeklyJob) -> dict:
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
    progress = not (args.quiet or args.no_progress)
    distributed = bool(workers > 1 or args.scheduler or args.scheduler_file or args.client)
    arrangement = {"workers": workers, "threads": threads,
                   "engine": "dask" if distributed else "in-process"}
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
        return report(args, summary, written, timings, t0)
    if scratch is not None:
        if args.partitions:
            part_rows = max(1, -(-parquet_rows(paths) // args.partitions))
            memory = dataclasses.replace(memory, n_parts=args.partitions,
                                         partition_rows=part_rows,
                                         block_rows=min(memory.block_rows, part_rows))
        log.info("%s", memory.describe())
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
    return report(args, summary, written, timings, t0)


def report(args: WeeklyJob, summary: dict, written: list[Path], timings: dict,
           t0: float) -> dict:
    """Print the summary (or only its warnings with --quiet); return it with the timings."""
    timings["total"] = time.perf_counter() - t0
    if not args.quiet:
        print_summary(summary, timings, written)
        if args.demo:
            print_preview(pq.read_table(written[0]))
    else:
        for w in summary["warnings"]:
            print(f"rcfast.weekly: warning: {w}", file=sys.stderr)
    summary["timings"] = timings
    return summary


def run_distributed(args: WeeklyJob, paths: list[Path], ropts: ReadOptions,
                    popts: PanelOptions, workers: int, threads: int, progress: bool,
                    arrangement: dict) -> tuple[dict, list[Path], dict]:
    """The run on a Dask cluster (local, or the scheduler given): workers write the parts."""
    from rcfast.weekly.distributed import (
        MIN_WORKER_MEMORY,
        start_client,
        weekly_on_cluster,
        worker_memory_limit,
    )
    from rcfast.weekly.write import parts_directory, publish_parts

    local = not (args.scheduler or args.scheduler_file or args.client)
    limit = None
    if local:  # --memory-limit is each worker's; by default the workers share the default
        given, _ = memory_limit(args)
        limit = worker_memory_limit(given if args.memory_limit else None, workers, given)
        if limit < MIN_WORKER_MEMORY:
            raise InputError(f"each of the {workers} Dask workers would get "
                             f"{limit / 1e9:.2f} GB, below the {MIN_WORKER_MEMORY / 1e9:.1f} GB "
                             "a worker needs before any data: raise --memory-limit (it is per "
                             "worker) or use fewer --workers")
    arrangement["memory_limit"] = limit
    data_path = output_paths(args.output)[0]
    comp = None if args.compression == "none" else args.compression
    if args.client is not None:
        client, cluster = args.client, None
        workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        arrangement["workers"] = workers
    else:
        client, cluster = start_client(workers, threads, limit, args.scheduler,
                                       args.scheduler_file)
    scratch = ScratchDir(args.tmp_dir if args.tmp_dir or local else data_path.parent)
    parts_dir = None
    try:
        if client.dashboard_link and "None" not in client.dashboard_link:
            log.info("Dask dashboard at %s", client.dashboard_link)
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
        if args.client is None:  # a caller's client stays theirs
            client.close()
        if cluster is not None:
            cluster.close()


def memory_limit(args: WeeklyJob) -> tuple[int, str]:
    """``(bytes, where the figure comes from)`` of the run's memory limit."""
    if args.memory_limit:
        try:
            return parse_size(args.memory_limit), "--memory-limit"
        except ValueError as exc:
            raise InputError(f"--memory-limit: {exc}") from None
    total, source = available_memory()
    return int(total * DEFAULT_MEMORY_SHARE), f"half of {source}"


