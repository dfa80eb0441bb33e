"""The Python API of the weekly step."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from rcfast.arrow_io import ReadOptions, table_batches
from rcfast.loader import load_batches
from rcfast.panel import PanelOptions, compute_panel
from rcfast.weekly.options import parse_until


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

