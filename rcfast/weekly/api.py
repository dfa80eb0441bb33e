"""The Python API of the weekly step: :func:`weekly_panel`.

The same validation, kernels and outputs as ``python -m rcfast.weekly``, on whatever a notebook
holds: a pandas, Polars or DuckDB result (anything ``pyarrow.table()`` converts), Parquet
paths, or a Dask DataFrame; in memory, out of core under ``memory_limit``, or on a
``dask.distributed.Client``'s cluster (the kernels of the single-process run, in tasks).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from rcfast.weekly.load import load_batches
from rcfast.weekly.panel import DEFAULT_LAGS, DEFAULT_WINDOWS, PanelOptions, compute_panel
from rcfast.weekly.read import ReadOptions, table_batches
from rcfast.weekly.options import parse_until

__all__ = ["WeeklyResult", "weekly_panel"]


class WeeklyResult(NamedTuple):
    """The panel (None when it was written to ``output``) and the run's summary: rows read,
    aggregated and set aside (per reason, with examples), products, panel rows."""

    panel: pa.Table | None
    summary: dict


def _is_dask_frame(data: Any) -> bool:
    return hasattr(data, "npartitions") and hasattr(data, "to_delayed")


def _as_table(data: Any) -> pa.Table:
    """A pyarrow Table of ``data``: Arrow, pandas, Polars, DuckDB relations, anything with the
    Arrow C stream interface."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    for name in ("to_arrow_table", "fetch_arrow_table"):  # DuckDB (the first is newer)
        if hasattr(data, name):
            return getattr(data, name)()
    try:
        return pa.table(data)
    except (TypeError, ValueError, pa.ArrowInvalid) as exc:
        raise TypeError(f"weekly_panel: cannot read reviews from a {type(data).__name__}: "
                        "give a pyarrow Table, a pandas/Polars DataFrame, a DuckDB result, "
                        "Parquet paths or a Dask DataFrame") from exc


def weekly_panel(data: Any, *, windows: Sequence[int] = DEFAULT_WINDOWS,
                 lags: Sequence[int] = DEFAULT_LAGS, dense: bool = False,
                 until: str | None = None, mapping: dict[str, str] | None = None,
                 timestamp_unit: str | None = None, strict: bool = False, client: Any = None,
                 memory_limit: int | str | None = None, tmp_dir: str | None = None,
                 output: str | os.PathLike | None = None, partitions: int | None = None,
                 ) -> WeeklyResult:
    """The weekly per-product panel (docs/spec-weekly.md) of the reviews in ``data``.

    ``data``: a table-like object (pyarrow, pandas, Polars, a DuckDB result), a Parquet path,
    directory or glob (or a list of them), or a Dask DataFrame. ``windows`` and ``lags`` in
    weeks; ``dense`` adds the weeks without reviews, up to ``until`` (YYYY-MM-DD) if given;
    ``mapping`` maps fields to raw column names (``{"rating": "overall"}``); ``strict`` raises
    on the first row that would be set aside (rows are otherwise set aside and counted).

    ``client``: a ``dask.distributed.Client``; the work runs on its cluster (``tmp_dir`` must
    then be reachable by every worker; default: beside ``output``, or the local temporary
    directory for a local cluster). ``memory_limit`` (bytes or ``"4GB"``; each worker's with a
    client): above it the run spills to ``tmp_dir``. ``output``: also write the panel there
    (``FILE.parquet`` or a directory) and return ``panel=None``.

    Raises :class:`rcfast.errors.InputError` on bad input (the message names the column or row).
    """
    from rcfast.publish import ScratchDir
    from rcfast.weekly.run import WeeklyJob, run_job

    if _is_dask_frame(data) and client is None:
        try:
            from distributed import get_client

            client = get_client()
        except (ImportError, ValueError):
            data = data.compute()  # no cluster: the frame's rows, here
    simple = client is None and output is None and memory_limit is None and partitions is None
    if not isinstance(data, (str, os.PathLike, list, tuple)) and not _is_dask_frame(data):
        table = _as_table(data)
        if simple:
            return _in_memory(table, windows, lags, dense, until, mapping, timestamp_unit,
                              strict)
        data = table
    with ScratchDir(tmp_dir) as scratch:
        if isinstance(data, (str, os.PathLike)):
            inputs = [os.fspath(data)]
        elif isinstance(data, (list, tuple)):
            inputs = [os.fspath(p) for p in data]
        elif _is_dask_frame(data):  # written by the cluster's workers, read back by its tasks
            where = scratch / "input"
            data.to_parquet(str(where), write_index=False)
            inputs = [str(where)]
        else:
            where = scratch / "input.parquet"
            pq.write_table(data, where)
            inputs = [str(where)]
        target = Path(output) if output is not None else scratch / "panel.parquet"
        job = WeeklyJob(inputs=inputs, output=str(target), windows=tuple(windows),
                        lags=tuple(lags), dense=dense, until=until,
                        map=[f"{k}={v}" for k, v in (mapping or {}).items()],
                        timestamp_unit=timestamp_unit, strict=strict, client=client,
                        partitions=partitions, memory_limit=memory_limit,
                        tmp_dir=str(tmp_dir) if tmp_dir else None, quiet=True)
        summary = _keeping_numba_threads(run_job, job)
        panel = None if output is not None else pq.read_table(target)
    if panel is not None:
        panel = panel.replace_schema_metadata(None)
    return WeeklyResult(panel, summary)


def _keeping_numba_threads(fn, *args):
    import numba

    before = numba.get_num_threads()
    try:
        return fn(*args)
    finally:
        numba.set_num_threads(before)


def _in_memory(table: pa.Table, windows, lags, dense, until, mapping, timestamp_unit,
               strict) -> WeeklyResult:
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
    return WeeklyResult(panel, summary)
