"""Bounded memory on one node: when the input would not fit, the weekly step runs out of core.

:func:`plan_memory` estimates the in-memory run's peak from the input's row count; over the
memory limit, :func:`spilled_panel` streams the input once, block by block, into partitions of
whole products on scratch (:mod:`rcfast.weekly.partitions`), then computes the partitions one
after the other and yields their panels, already in the panel's global order.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from rcfast.weekly.load import Rejects
from rcfast.weekly.panel import PanelOptions, PanelStats
from rcfast.weekly.read import Prefetch, ReadOptions
from rcfast.weekly.partitions import (
    SAMPLES_PER_PARTITION,
    SplitResult,
    block_batches,
    cut_block,
    plan_blocks,
    plan_partitions,
    sample_product_ids,
    write_pieces,
)

log = logging.getLogger("rcfast.weekly")

#: The in-memory run's peak: a fixed part (interpreter, Numba, pyarrow, the writer's slices in
#: flight) and bytes per input row (packed values, codes, weeks, the grouping's permutation,
#: the decoded Parquet batch, the distinct ids), rounded up from measured peaks.
IN_MEMORY_BASE = 600 << 20
IN_MEMORY_BYTES_PER_ROW = 85
#: What a process holds besides a partition's rows (interpreter, Numba's compiled kernels,
#: pyarrow, a split block, the writer's slices): ~560 MB measured at 31.8M reviews.
PROCESS_BASE = 600 << 20
#: Bytes a partition's row takes while its panel is computed (the same arrays as in memory,
#: plus its panel slices), or a split block's row with its cut copy: with 100, 31.8M reviews
#: under a 1 GB limit peaked at 0.98-0.99 GB (with 80: 1.04-1.19 GB).
PARTITION_BYTES_PER_ROW = 100
#: Rows of one partition at most: larger ones are no faster (the kernels are linear), and
#: smaller partitions keep a default run well below the limit.
PARTITION_ROWS_MAX = 16 << 20
#: Rows of one split block at most (read, checked and cut at once).
BLOCK_ROWS_MAX = 4 << 20
#: Panel rows per computed slice out of core: fewer slices in flight in the writer.
SPILL_SLICE_ROWS = 1 << 18


@dataclass(frozen=True)
class MemoryPlan:
    """How a run fits its memory limit (all sizes in bytes)."""

    limit: int
    limit_source: str  #: "--memory-limit", "cgroup ...", "SLURM_MEM_PER_NODE", ...
    estimate: int  #: the in-memory run's expected peak
    spill: bool
    n_parts: int = 1
    partition_rows: int = 0
    block_rows: int = 0

    def describe(self) -> str:
        gb = 1e9
        if not self.spill:
            return (f"in memory (~{self.estimate / gb:.1f} GB expected, limit "
                    f"{self.limit / gb:.1f} GB from {self.limit_source})")
        return (f"out of core: the input needs ~{self.estimate / gb:.1f} GB in memory, over the "
                f"limit of {self.limit / gb:.1f} GB ({self.limit_source}); {self.n_parts} "
                f"partitions of ~{self.partition_rows / 1e6:.1f}M rows spilled to scratch")


def rows_that_fit(limit: int) -> int:
    """Rows of one partition that a process with ``limit`` bytes can compute."""
    return max(1 << 16, min(PARTITION_ROWS_MAX,
                            (limit - PROCESS_BASE) // PARTITION_BYTES_PER_ROW))


def plan_memory(total_rows: int, limit: int, source: str, force_spill: bool = False
                ) -> MemoryPlan:
    """In memory when the estimate fits ``limit``, else partitions that do."""
    estimate = IN_MEMORY_BASE + IN_MEMORY_BYTES_PER_ROW * total_rows
    if estimate <= limit and not force_spill:
        return MemoryPlan(limit, source, estimate, False)
    part_rows = rows_that_fit(limit)
    n_parts = max(1, math.ceil(total_rows / part_rows))
    return MemoryPlan(limit, source, estimate, True, n_parts, part_rows,
                      min(BLOCK_ROWS_MAX, part_rows))


@dataclass
class SpillRun:
    """The state of an out-of-core run that the caller reports: known after stage 1, except
    ``stats``, which fills as the panels are computed."""

    rows_read: int = 0
    rejects: Rejects = field(default_factory=Rejects)
    part_rows: list[int] = field(default_factory=list)
    stats: PanelStats = field(default_factory=PanelStats)
    scratch_bytes: int = 0


def spilled_panel(paths: list[Path], ropts: ReadOptions, popts: PanelOptions, strict: bool,
                  plan: MemoryPlan, scratch: Path, progress: bool = False
                  ) -> tuple[SpillRun, Iterator[pa.Table]]:
    """Stage 1 now (read, check, spill), stage 2 lazily: ``(run, panel tables)``."""
    from rcfast.weekly.partitions import partition_batches

    t = time.perf_counter()
    sample = sample_product_ids(paths, ropts, SAMPLES_PER_PARTITION * plan.n_parts)
    parts = plan_partitions(sample, plan.n_parts)
    blocks = plan_blocks(paths, plan.block_rows)
    run = SpillRun(part_rows=[0] * parts.n_parts)
    run.stats.timings["sample"] = time.perf_counter() - t
    pieces: list[list[str]] = [[] for _ in range(parts.n_parts)]
    t = time.perf_counter()
    total = sum(b.rows for b in blocks)

    def collect(i: int, res: SplitResult) -> None:
        run.rows_read += res.rows_read
        run.rejects.merge(res.rejects)
        for p, (n, piece) in enumerate(zip(res.part_rows, res.pieces)):
            run.part_rows[p] += n
            if piece is not None:
                pieces[p].append(piece)
        if progress:
            done = sum(b.rows for b in blocks[:i + 1])
            print(f"rcfast.weekly: spilled {done:,} of {total:,} rows "
                  f"({i + 1}/{len(blocks)} blocks)", file=sys.stderr, flush=True)

    # a block's pieces are written (a system call that holds no GIL) while the next block is
    # read and cut; on an error or Ctrl-C the write in flight ends before scratch is removed
    writer = ThreadPoolExecutor(1, thread_name_prefix="rcfast-spill-writer")
    reader = Prefetch(block_batches(blocks, ropts))
    pending = None
    try:
        for i, block in enumerate(blocks):
            cut = cut_block(block, ropts, popts.until_week, strict, parts, reader)
            if pending is not None:
                collect(i - 1, pending.result())
            pending = writer.submit(write_pieces, cut, scratch, f"b{i:06d}")
            del cut
        if pending is not None:
            collect(len(blocks) - 1, pending.result())
    finally:
        reader.close()
        writer.shutdown(wait=True, cancel_futures=True)
    run.stats.timings["spill"] = time.perf_counter() - t
    run.scratch_bytes = sum(f.stat().st_size for f in scratch.rglob("*.arrow"))
    biggest = max(run.part_rows, default=0)
    if biggest > 2 * plan.partition_rows:
        log.warning("the largest partition holds %s rows, over twice the %s planned (a very "
                    "large product, or ids the sample missed): its memory may pass the limit",
                    f"{biggest:,}", f"{plan.partition_rows:,}")

    def panels() -> Iterator[pa.Table]:
        for p in range(parts.n_parts):
            if not pieces[p]:
                continue
            st = PanelStats()
            yield from partition_batches(pieces[p], popts, st, slice_rows=SPILL_SLICE_ROWS)
            for f in pieces[p]:  # the scratch space of a finished partition goes at once
                Path(f).unlink(missing_ok=True)
            merge_stats(run.stats, st)

    return run, panels()


def merge_stats(into: PanelStats, other: PanelStats) -> None:
    into.rows_aggregated += other.rows_aggregated
    into.products += other.products
    into.panel_rows += other.panel_rows
    for k, v in other.timings.items():
        into.timings[k] = into.timings.get(k, 0.0) + v
