"""The weekly step on a Dask cluster: the out-of-core stages as tasks, with no funnel.

The stages are those of the out-of-core run (:mod:`rcfast.weekly.partitions`):

1. ``split`` — one task per block of input rows: read, check and set rows aside exactly as the
   in-memory run does, and write the kept rows as one piece per partition (ranges of the
   product id) to scratch that every worker can read.
2. ``panel`` — one task per partition: its pieces through the in-memory code path, the panel
   written by the worker straight into the output's part file ``part-PPPPP.parquet``.

The client gathers only small metadata (counts, set-aside reasons and examples, week ranges,
file names): its memory does not grow with the data. Partitions are ranges of the product id,
so the part files in name order are the panel in its global order. Every task writes under a
temporary name and renames, so a task that Dask reruns after losing a worker (retries and
rescheduling are Dask's) replaces its files whole. A Dask worker runs one task at a time and
gives its Numba kernels ``threads`` threads.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rcfast.errors import InputError
from rcfast.weekly.load import Rejects
from rcfast.weekly.panel import PanelOptions, PanelStats, panel_schema
from rcfast.weekly.read import ReadOptions, parquet_rows
from rcfast.weekly.partitions import (
    SAMPLES_PER_PARTITION,
    Block,
    PartitionPlan,
    PartitionResult,
    SplitResult,
    partition_batches,
    plan_blocks,
    plan_partitions,
    sample_product_ids,
    split_block,
)
from rcfast.weekly.spill import BLOCK_ROWS_MAX, PARTITION_ROWS_MAX, merge_stats, rows_that_fit


#: The share of a worker's memory limit its tasks plan for: the nanny terminates a worker
#: above 95 % of it, and a worker's own memory (its comms, the scheduler's state) varies.
WORKER_PLANNED_SHARE = 0.85
#: A worker needs this much before any data (interpreter, Dask, Numba's kernels, pyarrow).
MIN_WORKER_MEMORY = 700_000_000


class _BadInput:
    """A task's InputError, returned as a value: Dask logs a raised exception with its
    traceback on the worker's stderr, and bad input deserves one clear line, on the client."""

    def __init__(self, message: str) -> None:
        self.message = message


def _guarded(fn, *args):
    try:
        return fn(*args)
    except InputError as exc:
        return _BadInput(str(exc))
    except OSError as exc:  # a worker that cannot write: disk full, read-only, gone
        return _BadInput(f"{getattr(exc, 'filename', None) or 'scratch or output'}: cannot "
                         f"write ({exc.strerror or exc}); free space or choose a writable "
                         "--tmp-dir / output on a file system every worker can reach")


def _check(result):
    if isinstance(result, _BadInput):
        raise InputError(result.message)
    return result


def _worker_threads(threads: int) -> None:
    import numba

    from rcfast.kernels import init_numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    init_numba()


def split_task(block: Block, ropts: ReadOptions, until_week: int | None, strict: bool,
               plan: PartitionPlan, scratch: str, name: str, threads: int) -> SplitResult:
    """Stage 1 on a worker."""
    _worker_threads(threads)
    return split_block(block, ropts, until_week, strict, plan, Path(scratch), name)


def panel_task(pieces: list[str], popts: PanelOptions, part: str, compression: str | None,
               threads: int) -> PartitionResult:
    """Stage 2 on a worker: the partition's panel, written to ``part``."""
    from rcfast.weekly.write import write_part_file

    _worker_threads(threads)
    result = PartitionResult()
    batches = partition_batches(pieces, popts, result.stats)
    written = write_part_file(Path(part), panel_schema(popts), batches, compression)
    result.week_min, result.week_max, result.part = written.week_min, written.week_max, part
    return result


@dataclass
class ClusterRun:
    """What the client knows after a distributed run: counts and names, never panel data."""

    rows_read: int = 0
    rejects: Rejects = field(default_factory=Rejects)
    stats: PanelStats = field(default_factory=PanelStats)
    week_min: int | None = None
    week_max: int | None = None
    parts: list[str] = field(default_factory=list)
    arrangement: dict = field(default_factory=dict)


def _worker_memory_limits(client) -> list[int]:
    info = client.scheduler_info(n_workers=-1).get("workers", {})
    return [int(w.get("memory_limit") or 0) for w in info.values()]


def weekly_on_cluster(client, paths: list[Path], ropts: ReadOptions, popts: PanelOptions, *,
                      parts_dir: Path, scratch: Path, strict: bool = False, threads: int = 1,
                      n_parts: int | None = None, compression: str | None = "snappy",
                      progress: bool = False) -> ClusterRun:
    """Run both stages on ``client``'s cluster; the panel lands in ``parts_dir`` as part files.

    ``scratch`` and ``parts_dir`` must be reachable by every worker (a shared file system
    across nodes). Partitions are sized to the workers' memory limit (Dask's
    ``memory_limit``), at least two per worker.
    """
    from dask.distributed import as_completed

    limits = [m for m in _worker_memory_limits(client) if m > 0]
    n_workers = max(1, len(_worker_memory_limits(client)))
    part_rows = (rows_that_fit(int(min(limits) * WORKER_PLANNED_SHARE)) if limits
                 else PARTITION_ROWS_MAX)
    total = parquet_rows(paths)
    n_parts = n_parts or max(2 * n_workers, math.ceil(total / part_rows))
    plan = plan_partitions(sample_product_ids(paths, ropts, SAMPLES_PER_PARTITION * n_parts),
                           n_parts)
    blocks = plan_blocks(paths, min(BLOCK_ROWS_MAX, part_rows))
    scratch.mkdir(parents=True, exist_ok=True)
    parts_dir.mkdir(parents=True, exist_ok=True)
    run = ClusterRun(arrangement={"partitions": plan.n_parts, "dask_workers": n_workers,
                                  "blocks": len(blocks)})
    from tqdm.auto import tqdm

    bar = tqdm(total=len(blocks) + plan.n_parts, desc="dask", unit="task", file=sys.stderr,
               disable=not progress)
    splits = [client.submit(_guarded, split_task, b, ropts, popts.until_week, strict, plan,
                            str(scratch), f"b{i:06d}", threads, pure=False)
              for i, b in enumerate(blocks)]
    results: list[SplitResult | None] = [None] * len(splits)
    index = {f.key: i for i, f in enumerate(splits)}
    try:
        for fut in as_completed(splits):
            results[index[fut.key]] = _check(fut.result())
            bar.update(1)
    finally:
        for fut in splits:
            fut.release()
    pieces: list[list[str]] = [[] for _ in range(plan.n_parts)]
    for res in results:  # block order: every product's rows keep their input order
        run.rows_read += res.rows_read
        run.rejects.merge(res.rejects)
        for p, piece in enumerate(res.pieces):
            if piece is not None:
                pieces[p].append(piece)
    panels = [client.submit(_guarded, panel_task, pieces[p], popts,
                            str(parts_dir / f"part-{p:05d}.parquet"), compression, threads,
                            pure=False)
              for p in range(plan.n_parts) if pieces[p]]
    try:
        for fut in as_completed(panels):
            res: PartitionResult = _check(fut.result())
            merge_stats(run.stats, res.stats)
            run.parts.append(res.part)
            if res.week_min is not None:
                run.week_min = min(res.week_min, run.week_min if run.week_min is not None
                                   else res.week_min)
                run.week_max = max(res.week_max, run.week_max if run.week_max is not None
                                   else res.week_max)
            bar.update(1)
    finally:
        for fut in panels:
            fut.release()
        bar.close()
    run.parts.sort()
    return run


def start_client(workers: int, threads: int, memory_limit: int | None,
                 scheduler: str | None = None, scheduler_file: str | None = None):
    """``(client, local cluster or None)``: a running scheduler's client, or a local cluster
    of ``workers`` processes, one task at a time each, ``memory_limit`` bytes each."""
    from dask.distributed import Client, LocalCluster

    import dask

    if scheduler or scheduler_file:
        return Client(address=scheduler, scheduler_file=scheduler_file), None
    # The tasks size their partitions to the limit and hold no Dask-managed data worth
    # spilling, so the worker's spill and pause thresholds would only stall it while its
    # allocator keeps freed memory; the nanny's termination above 95 % stays as the guard.
    with dask.config.set({"distributed.worker.memory.target": False,
                          "distributed.worker.memory.spill": False,
                          "distributed.worker.memory.pause": False}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0" if _has_bokeh() else None,
                               memory_limit=memory_limit or 0, silence_logs=40)
    return Client(cluster), cluster


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def worker_memory_limit(per_worker: int | None, workers: int, total: int) -> int:
    """Each local worker's limit: ``--memory-limit`` if given, else its share of ``total``."""
    return per_worker if per_worker else max(1, total // max(1, workers))


__all__ = ["ClusterRun", "panel_task", "split_task", "start_client",
           "weekly_on_cluster", "worker_memory_limit"]
