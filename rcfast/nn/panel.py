"""The weekly panel in training form: loaded once, rebuilt densely into one tensor store.

The panel of ``python -m rcfast.weekly`` has one row per (product, week with reviews). Here it is
loaded once and rebuilt densely, product after product, into one ``values`` array
(``[rows, channels]``, float32; weeks without reviews are zero rows) plus ``offsets``
(``[products + 1]``): product ``p`` owns rows ``offsets[p] : offsets[p+1]``, which hold the weeks
``store_start[p] ... end_week``. Windows are gathered from it by :mod:`rcfast.nn.windows`.
Weeks and dates convert with :mod:`rcfast.kernels.time` (Monday-start week indices).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import pathlib

import numpy as np
import torch

from rcfast.kernels import time as _time
from rcfast.kernels.time import date_of_week, days_to_week

#: Columns the training needs; rating_mean is optional (zeros when absent).
REQUIRED_COLUMNS = ("product_id", "week_start", "n_reviews")
OPTIONAL_COLUMNS = ("rating_mean",)
#: Channels of the dense store.
CH_COUNT, CH_RATING = 0, 1
N_CHANNELS = 2


class PanelError(ValueError):
    """The panel cannot be used for training (missing, empty, too short, lacking columns)."""


def week_of_date(d: _dt.date | str) -> int:
    """Week index (:mod:`rcfast.kernels.time`) of a date, a datetime or an ISO date string."""
    if isinstance(d, str):
        try:
            d = _dt.date.fromisoformat(d)
        except ValueError as e:
            raise ValueError(f"not an ISO date (YYYY-MM-DD): {d!r}") from e
    if isinstance(d, _dt.datetime):
        d = d.date()
    return _time.week_of_date(d)


@dataclasses.dataclass
class Panel:
    """A weekly panel in training form. Sparse arrays are sorted by (code, week)."""

    product_ids: np.ndarray      #: [P] object (str) product ids, code order
    code: np.ndarray             #: [R] int64 product code of each sparse row
    week: np.ndarray             #: [R] int64 week index of each sparse row
    count: np.ndarray            #: [R] float64 n_reviews
    rating: np.ndarray           #: [R] float64 rating_mean (0 where unknown)
    first_week: np.ndarray       #: [P] int64 first week with reviews
    end_week: int                #: last week of the data (inclusive)
    store_start: np.ndarray      #: [P] int64 first week held in `values`
    offsets: np.ndarray          #: [P+1] int64
    values: np.ndarray           #: [N, N_CHANNELS] float32 dense rows
    source: str = ""

    @property
    def n_products(self) -> int:
        return len(self.product_ids)

    def tensors(self, device: str | torch.device = "cpu", pin: bool = False) -> PanelTensors:
        """The store as tensors on ``device``; ``pin``: in page-locked host memory (for the
        streaming path, whose per-step batch copies to a GPU are then asynchronous)."""
        def t(a: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(a)
            return x.pin_memory() if pin else x.to(device)
        return PanelTensors(values=t(self.values), offsets=t(self.offsets),
                            store_start=t(self.store_start), first_week=t(self.first_week),
                            end_week=int(self.end_week))


@dataclasses.dataclass
class PanelTensors:
    values: torch.Tensor
    offsets: torch.Tensor
    store_start: torch.Tensor
    first_week: torch.Tensor
    end_week: int

    @property
    def device(self) -> torch.device:
        return self.values.device


def read_panel(path: str | os.PathLike[str], *, end_week: str | int | None = None,
               min_weeks: int = 1, keep_weeks: int = 0) -> Panel:
    """Read a panel Parquet file (or directory) and build the dense store.

    ``min_weeks``: the panel must span at least this many weeks (L + H for training), else
    :class:`PanelError`. ``keep_weeks`` > 0 keeps only the last ``keep_weeks`` weeks densely
    (first weeks and the sparse arrays are kept whole).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    p = pathlib.Path(path)
    if not p.exists():
        raise PanelError(f"panel not found: {p} (make one with `python -m rcfast.weekly INPUT "
                         f"-o {p}`)")
    try:
        dataset = ds.dataset(str(p), format="parquet")
        names = set(dataset.schema.names)
    except Exception as e:  # corrupt / not parquet
        raise PanelError(f"cannot read panel {p} as Parquet: {e}") from e
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise PanelError(f"panel {p} lacks column(s) {missing}; it has {sorted(names)}. "
                         f"Expected the output of `python -m rcfast.weekly`.")
    cols = list(REQUIRED_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in names]
    table = dataset.to_table(columns=cols)
    if table.num_rows == 0:
        raise PanelError(f"panel {p} is empty (0 rows)")

    wcol = table.column("week_start")
    if pa.types.is_timestamp(wcol.type):
        wcol = pc.cast(wcol, pa.date32())
    if not pa.types.is_date(wcol.type):
        raise PanelError(f"panel {p}: column week_start must be a date, got {wcol.type}")
    if wcol.null_count:
        raise PanelError(f"panel {p}: week_start has {wcol.null_count} nulls")
    days = pc.cast(pc.cast(wcol, pa.date32()), pa.int32()).to_numpy()
    week = days_to_week(days)

    pid = table.column("product_id")
    if pid.null_count:
        raise PanelError(f"panel {p}: product_id has {pid.null_count} nulls")
    enc = pc.dictionary_encode(pid.combine_chunks() if hasattr(pid, "combine_chunks") else pid)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    uniq = enc.dictionary
    # codes in byte order of the ids, so that code order = the spec's product order
    order = np.asarray(pc.sort_indices(uniq), dtype=np.int64)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    code = rank[np.asarray(enc.indices, dtype=np.int64)]
    product_ids = np.asarray(uniq.take(pa.array(order)).to_pylist(), dtype=object)

    cnt = table.column("n_reviews")
    if cnt.null_count:
        raise PanelError(f"panel {p}: n_reviews has {cnt.null_count} nulls")
    count = cnt.to_numpy().astype(np.float64)
    if (count < 0).any():
        raise PanelError(f"panel {p}: n_reviews has negative values")
    if "rating_mean" in table.column_names:
        rating = pc.fill_null(table.column("rating_mean"), 0.0).to_numpy().astype(np.float64)
        rating = np.nan_to_num(rating)
    else:
        rating = np.zeros_like(count)

    return panel_from_arrays(product_ids, code, week, count, rating, end_week=end_week,
                             min_weeks=min_weeks, keep_weeks=keep_weeks, source=str(p))


def panel_from_arrays(product_ids: np.ndarray, code: np.ndarray, week: np.ndarray,
                      count: np.ndarray, rating: np.ndarray | None = None, *,
                      end_week: str | int | None = None, min_weeks: int = 1,
                      keep_weeks: int = 0, source: str = "arrays") -> Panel:
    """Build a :class:`Panel` from sparse rows (product code, week index, count, rating)."""
    p = source
    code = np.asarray(code, dtype=np.int64)
    week = np.asarray(week, dtype=np.int64)
    count = np.asarray(count, dtype=np.float64)
    rating = np.zeros_like(count) if rating is None else np.asarray(rating, dtype=np.float64)
    product_ids = np.asarray(product_ids, dtype=object)
    if len(code) == 0:
        raise PanelError(f"panel {p} is empty (0 rows)")
    srt = np.lexsort((week, code))
    if not (np.all(np.diff(code) >= 0) and np.all(srt == np.arange(len(srt)))):
        code, week, count, rating = code[srt], week[srt], count[srt], rating[srt]
    # a dense panel has explicit zero rows: drop them (first_week must be a week with reviews)
    keep = count > 0
    if not keep.all():
        code, week, count, rating = code[keep], week[keep], count[keep], rating[keep]
        present = np.unique(code)
        if len(present) == 0:
            raise PanelError(f"panel {p} holds no reviews (all n_reviews are 0)")
        remap = np.full(len(product_ids), -1, dtype=np.int64)
        remap[present] = np.arange(len(present))
        product_ids, code = product_ids[present], remap[code]
    dup = (np.diff(code) == 0) & (np.diff(week) == 0)
    if dup.any():
        raise PanelError(f"panel {p}: duplicate (product_id, week_start) rows")

    if end_week is None or end_week == "":
        e = int(week.max())
    elif isinstance(end_week, (int, np.integer)):
        e = int(end_week)
    else:
        e = week_of_date(end_week)
    inside = week <= e
    if not inside.all():
        code, week, count, rating = code[inside], week[inside], count[inside], rating[inside]
        if len(code) == 0:
            raise PanelError(f"panel {p}: no rows on or before end_week {date_of_week(e)}")
    n_products = len(product_ids)
    starts = np.searchsorted(code, np.arange(n_products + 1))
    has_rows = starts[1:] > starts[:-1]
    first_week = np.full(n_products, e + 1, dtype=np.int64)
    first_week[has_rows] = week[starts[:-1][has_rows]]

    span = e - int(first_week.min()) + 1
    if span < min_weeks:
        raise PanelError(
            f"panel {p} spans {span} weeks ({date_of_week(first_week.min())} .. "
            f"{date_of_week(e)}); training needs at least {min_weeks} (context_length + "
            f"3 x horizon for train/validation/test origins)")

    store_start = first_week.copy()
    if keep_weeks and keep_weeks > 0:
        store_start = np.maximum(store_start, e - keep_weeks + 1)
    store_start = np.minimum(store_start, e + 1)
    lengths = (e + 1 - store_start).astype(np.int64)
    offsets = np.zeros(n_products + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.zeros((int(offsets[-1]), N_CHANNELS), dtype=np.float32)
    held = week >= store_start[code]
    pos = offsets[code[held]] + (week[held] - store_start[code[held]])
    values[pos, CH_COUNT] = count[held]
    values[pos, CH_RATING] = rating[held]
    return Panel(product_ids=product_ids, code=code, week=week, count=count, rating=rating,
                 first_week=first_week, end_week=e, store_start=store_start, offsets=offsets,
                 values=values, source=str(p))
