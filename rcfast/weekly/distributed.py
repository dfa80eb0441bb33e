"""Dask dispatch of the weekly step: the same kernels on partitions that hold whole products.

Two task stages, no maths of their own:

1. ``split`` — one task per input file (or per block of row groups of a large file): read,
   check, set rows aside exactly as the single-process run does, and cut the kept rows into
   ``P`` pieces by a hash of the product id (:func:`rcfast.kernels.strings.hash_strings`).
2. ``panel`` — one task per partition: concatenate its pieces and call
   :func:`rcfast.panel.compute_panel`, with Numba using the worker's share of the cores.

The client then puts the partitions' products back in byte order, so the result is identical
to the single-partition run. A Dask worker runs one task at a time (``nthreads=1``) and gives
its Numba kernels ``--threads`` threads: workers x threads never exceed the cores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from rcfast.arrow_io import InputError, ReadOptions, open_parquet
from rcfast.kernels import init_numba, strings
from rcfast.panel import Columns, PanelOptions, PanelStats, compute_panel, string_buffers

#: Row groups per split task: large single files still spread over the workers.
SPLIT_ROWS = 4_000_000


def plan_splits(paths: list[Path]) -> list[tuple[Path, list[int] | None]]:
    """Tasks of stage 1: ``(file, row groups or None for the whole file)``."""
    tasks: list[tuple[Path, list[int] | None]] = []
    for path in paths:
        pf = open_parquet(path)
        md = pf.metadata
        if md.num_rows <= SPLIT_ROWS or md.num_row_groups < 2:
            tasks.append((path, None))
            continue
        block: list[int] = []
        rows = 0
        for rg in range(md.num_row_groups):
            block.append(rg)
            rows += md.row_group(rg).num_rows
            if rows >= SPLIT_ROWS:
                tasks.append((path, block))
                block, rows = [], 0
        if block:
            tasks.append((path, block))
    return tasks


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


def _check(result):
    if isinstance(result, _BadInput):
        raise InputError(result.message)
    return result


def split_task(path: Path, row_groups: list[int] | None, ropts: ReadOptions,
               until_week: int | None, strict: bool, n_parts: int, threads: int):
    """Stage 1: the kept rows of one input block, cut into ``n_parts`` pieces by product hash."""
    import numba

    from rcfast.arrow_io import read_batches
    from rcfast.loader import load_batches

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    init_numba()
    md = open_parquet(path).metadata
    rows = (md.num_rows if row_groups is None
            else sum(md.row_group(i).num_rows for i in row_groups))
    columns, rej, rows_read = load_batches(read_batches(path, ropts, row_groups), rows, ropts,
                                           until_week, strict)
    u_off, u_data = string_buffers(columns.products)
    part_of_product = (strings.hash_strings(u_off, u_data) % np.uint64(n_parts)).astype(np.int32)
    code = columns.product_code
    part = np.where(code >= 0, part_of_product[np.maximum(code, 0)], -1)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(n_parts + 1))  # rows set aside (-1) first
    pieces = [_piece(columns, order[bounds[p]:bounds[p + 1]]) for p in range(n_parts)]
    return pieces, rej, rows_read


def _piece(c: Columns, idx: np.ndarray) -> pa.Table:
    rating, helpful, verified, text_len, text_len_valid = c.values(idx)
    return pa.table({
        "product_id": c.products.take(pa.array(c.product_code[idx])),
        "week": pa.array(c.week[idx], type=pa.int32()),
        "rating": pa.array(rating, type=pa.float64()),
        "helpful": pa.array(helpful, type=pa.int64()),
        "verified": pa.array(verified, type=pa.int8()),
        "text_len": pa.array(text_len, type=pa.int64()),
        "text_len_valid": pa.array(text_len_valid, type=pa.bool_()),
    })


def panel_task(pieces: list[pa.Table], popts: PanelOptions, threads: int):
    """Stage 2: the panel of one partition (whole products), by the single-process code path."""
    import numba

    from rcfast.arrow_io import encode_products

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    init_numba()
    table = pa.concat_tables(pieces) if pieces else None
    if table is None or table.num_rows == 0:
        return None, PanelStats()
    code, products = encode_products(table.column("product_id").chunks)

    def arr(name, dtype):
        return np.ascontiguousarray(table.column(name).to_numpy(), dtype=dtype)

    columns = Columns.from_arrays(products, code, arr("week", np.int32), arr("rating", np.float64),
                                  arr("helpful", np.int64), arr("verified", np.int8),
                                  arr("text_len", np.int64), arr("text_len_valid", np.bool_))
    return compute_panel(columns, popts)


def merge_partitions(tables: list[pa.Table]) -> pa.Table:
    """Concatenate partition panels in product byte order (each is sorted inside)."""
    tables = [t for t in tables if t is not None and t.num_rows]
    if not tables:
        return None
    if len(tables) == 1:
        return tables[0]
    # products are disjoint across partitions: order their row blocks by product id
    firsts, starts, lens, which = [], [], [], []
    for ti, t in enumerate(tables):
        pid = t.column("product_id").combine_chunks()
        off, data = string_buffers(pid)
        change = np.ones(len(pid), dtype=bool)
        if len(pid) > 1:
            codes = strings.encode_strings(off, data)[0]
            change[1:] = codes[1:] != codes[:-1]
        s = np.flatnonzero(change)
        firsts.append(pid.take(pa.array(s)))
        starts.append(s)
        lens.append(np.diff(np.append(s, len(pid))))
        which.append(np.full(len(s), ti))
    keys = pa.concat_arrays([f.cast(pa.large_string()) for f in firsts])
    k_off, k_data = string_buffers(keys)
    order = strings.argsort_strings(k_off, k_data)
    base = np.cumsum([0] + [t.num_rows for t in tables])[:-1]
    start = np.concatenate(starts) + np.concatenate([np.full(len(s), base[i])
                                                     for i, s in enumerate(starts)])
    length = np.concatenate(lens)
    start, length = start[order], length[order]
    idx = np.repeat(start - np.cumsum(np.append(0, length[:-1])), length) + np.arange(length.sum())
    big = pa.concat_tables(tables)
    return big.take(pa.array(idx))


PARTITIONING_KEY = b"rcfast.partitioning"


def product_partitioned(paths: list[Path]) -> bool:
    """True when every file says it holds whole products (``rcfast.combine`` output): each
    file is then a partition as it stands, and the shuffle is skipped."""
    if len(paths) < 2:
        return False
    for path in paths:
        pf = open_parquet(path)
        raw = ((pf.schema_arrow.metadata or {}).get(PARTITIONING_KEY)
               or (pf.metadata.metadata or {}).get(PARTITIONING_KEY))
        if raw is None:
            return False
        try:
            if json.loads(raw).get("by") != "product_id":
                return False
        except ValueError:
            return False
    return True


def file_panel_task(path: Path, ropts: ReadOptions, popts: PanelOptions, strict: bool,
                    threads: int):
    """One pre-partitioned file (whole products) straight through the single-process path."""
    import numba

    from rcfast.arrow_io import read_batches
    from rcfast.loader import load_batches

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    init_numba()
    rows = open_parquet(path).metadata.num_rows
    columns, rej, rows_read = load_batches(read_batches(path, ropts), rows, ropts,
                                           popts.until_week, strict)
    table, stats = compute_panel(columns, popts)
    return table, stats, rej, rows_read


def _split_meta(result):
    return result if isinstance(result, _BadInput) else (result[1], result[2])


def _split_piece(result, p: int):
    return result[0][p]


def run_dask(paths, ropts: ReadOptions, popts: PanelOptions, args, workers: int, threads: int,
             progress: bool):
    """Run the partitions on a Dask cluster; return what the single-process path returns."""
    from dask.distributed import Client, LocalCluster, wait
    from tqdm.auto import tqdm

    from rcfast.loader import Rejects

    if args.scheduler or args.scheduler_file:
        client = Client(address=args.scheduler, scheduler_file=args.scheduler_file)
        cluster = None
        n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
    else:
        # one task per worker process at a time; Numba threads share the cores out
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, memory_limit=0, silence_logs=40)
        client = Client(cluster)
        n_workers = workers
    rej = Rejects()
    rows_read = 0
    try:
        if product_partitioned(paths):
            n_parts = len(paths)
            futs = [client.submit(_guarded, file_panel_task, path, ropts, popts, args.strict,
                                  threads, pure=False) for path in paths]
            bar = tqdm(total=len(futs), desc="dask", unit="part", file=sys.stderr,
                       disable=not progress)
            results = []
            for fut in futs:
                table, st, r, n = _check(fut.result())
                rej.merge(r)
                rows_read += n
                results.append((table, st))
                bar.update(1)
            bar.close()
            shuffled = False
        else:
            n_parts = args.partitions or 2 * n_workers
            splits = [client.submit(_guarded, split_task, path, rgs, ropts, popts.until_week,
                                    args.strict, n_parts, threads, pure=False)
                      for path, rgs in plan_splits(paths)]
            bar = tqdm(total=len(splits) + n_parts, desc="dask", unit="task", file=sys.stderr,
                       disable=not progress)
            # pieces stay on the workers that cut them: only the panels travel to the client
            for meta in client.gather([client.submit(_split_meta, f, pure=False)
                                       for f in splits]):
                meta = _check(meta)
                rej.merge(meta[0])
                rows_read += meta[1]
                bar.update(1)
            panels = [client.submit(panel_task,
                                    [client.submit(_split_piece, f, p, pure=False)
                                     for f in splits], popts, threads, pure=False)
                      for p in range(n_parts)]
            wait(panels)
            results = [f.result() for f in panels]
            bar.update(n_parts)
            bar.close()
            shuffled = True
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    stats = PanelStats()
    for _, st in results:
        stats.rows_aggregated += st.rows_aggregated
        stats.products += st.products
        stats.panel_rows += st.panel_rows
        for k, v in st.timings.items():
            stats.timings[k] = stats.timings.get(k, 0.0) + v
    table = merge_partitions([t for t, _ in results])
    if table is None:
        from rcfast.panel import panel_schema

        table = panel_schema(popts).empty_table()
    return table, stats, rej, rows_read, {"partitions": n_parts, "dask_workers": n_workers,
                                          "shuffle": shuffled}
