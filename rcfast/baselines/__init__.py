"""Independent implementations of the weekly panel (docs/spec-weekly.md) with mainstream tools.

They are rcfast's competitors in ``python -m rcfast.bench weekly`` and a cross-check of its
kernels, so each is written the way a competent user of the tool would write it, sharing no
computation with rcfast or with each other (only the option checks and the output schema):

* :func:`panel_pandas` — ``pd.read_parquet``, ``groupby`` aggregation, then the calendar-week
  windows on the sorted (product, week) keys with ``np.searchsorted`` and group cumulative sums
  (``groupby().rolling()`` would give the same numbers but loops over groups in Python).
* :func:`panel_pandas_rolling` — pandas the way the users' scripts and the issue's reference
  ("a pandas groupby + time-aware rolling") do it: the same aggregation, then
  ``groupby(product).rolling("28D", on="week_start")``, lags by a merge, group ``cumsum``.
* :func:`panel_polars` — a lazy ``scan_parquet`` query: ``group_by`` aggregation, windows with
  ``rolling_sum_by(key, "{k}i")`` on a (product rank, week) key, lags as differences of two
  rolling sums.
* :func:`panel_duckdb` — SQL: a view that classifies rows, a ``GROUP BY`` for the reject counts
  and one for the (product, week) aggregates, then window functions with
  ``RANGE BETWEEN k-1 PRECEDING AND CURRENT ROW`` frames on the integer week.

The EWM over calendar weeks (zero weeks included) has no native form in these tools; all three use
its closed form ``e(w) = Σ_j c_j q^(w - w_j)`` (``q = 1 - alpha``, ``c = n`` for the first week,
``alpha·n`` after) as a cumulative sum, rebased every :data:`EWM_SEGMENT` weeks so that
``q^-x`` cannot overflow; terms older than a segment weigh < 1e-77 and are dropped.

Each function returns a ``pyarrow.Table`` with exactly the spec's columns, types and row order,
and run facts (rows read, rows rejected per reason, ...) as JSON in the schema metadata under
``b"rcfast.baseline"``.
"""

from __future__ import annotations

from rcfast.baselines.spec import (
    EWM_ALPHA,
    EWM_HALFLIFE,
    EWM_LOG_Q,
    EWM_SEGMENT,
    MAX_WEEKS,
    META_KEY,
    MONDAY_SHIFT_MS,
    MS_PER_WEEK,
    REJECT_REASONS,
    baseline_info,
    output_schema,
)
from rcfast.baselines.with_duckdb import panel_duckdb
from rcfast.baselines.with_pandas import panel_pandas, panel_pandas_rolling
from rcfast.baselines.with_polars import panel_polars

__all__ = [
    "EWM_ALPHA",
    "EWM_HALFLIFE",
    "EWM_LOG_Q",
    "EWM_SEGMENT",
    "MAX_WEEKS",
    "META_KEY",
    "MONDAY_SHIFT_MS",
    "MS_PER_WEEK",
    "REJECT_REASONS",
    "TOOLS",
    "baseline_info",
    "output_schema",
    "panel_duckdb",
    "panel_pandas",
    "panel_pandas_rolling",
    "panel_polars",
]

#: name → implementation, for the benchmark and the tests.
TOOLS = {"pandas": panel_pandas, "pandas-rolling": panel_pandas_rolling, "polars": panel_polars,
         "duckdb": panel_duckdb}
