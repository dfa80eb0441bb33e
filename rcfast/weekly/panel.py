"""The weekly panel from normalized columns: validate, convert, call the kernels, wrap the result.

:func:`compute_panel` is the one code path: the single-process run calls it on the whole input,
and the Dask run calls it on each partition (every product lives in one partition), so the
maths lives in :mod:`rcfast.kernels` only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numba
import numpy as np
import pyarrow as pa

from rcfast.arrow_buffers import string_buffers
from rcfast.kernels import aggregate, features, group, strings
from rcfast.kernels.time import week_to_days

DEFAULT_WINDOWS = (4, 12, 52)
DEFAULT_LAGS = (1, 2, 4)
EWM_HALFLIFE_WEEKS = 4.0
EWM_ALPHA = 1.0 - 0.5 ** (1.0 / EWM_HALFLIFE_WEEKS)


@dataclass
class Columns:
    """Validated, normalized input columns as plain arrays (one row per review).

    ``product_code`` is the rank of the row's product in ``products`` (sorted in byte order),
    or -1 where the row is set aside. The other values of a review travel packed in one record
    of ``rows`` (:func:`rcfast.kernels.aggregate.pack_rows`): grouping reads rows in a random
    order, and one record is one cache miss where five columns were five.
    """

    products: pa.Array  #: unique product ids, byte order
    product_code: np.ndarray  #: int32
    week: np.ndarray  #: int32 week index (docs/spec-weekly.md, "Weeks")
    rows: np.ndarray  #: int64 [n, ROW_WIDTH]: rating bits, helpful votes, text_len and flags

    @classmethod
    def from_arrays(cls, products: pa.Array, product_code: np.ndarray, week: np.ndarray,
                    rating: np.ndarray, helpful: np.ndarray, verified: np.ndarray,
                    text_len: np.ndarray, text_len_valid: np.ndarray) -> Columns:
        """Pack per-column arrays: rating float64, helpful int64 (null -> 0), verified int8
        (-1 null), text_len int64 with its validity mask."""
        n = len(product_code)
        rows = np.empty((n, aggregate.ROW_WIDTH), dtype=np.int64)
        text_len = np.ascontiguousarray(text_len, dtype=np.int64)
        check_text_len(text_len)
        aggregate.pack_rows(rows, 0, np.ascontiguousarray(rating, dtype=np.float64),
                            np.ascontiguousarray(helpful, dtype=np.int64),
                            np.ascontiguousarray(verified, dtype=np.int8), text_len,
                            np.ascontiguousarray(text_len_valid, dtype=np.bool_))
        return cls(products, np.ascontiguousarray(product_code, dtype=np.int32),
                   np.ascontiguousarray(week, dtype=np.int32), rows)

    def values(self, idx: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """``(rating, helpful, verified, text_len, text_len_valid)`` of all rows or rows
        ``idx``."""
        return aggregate.unpack_rows(self.rows if idx is None else self.rows[idx])


def check_text_len(text_len: np.ndarray) -> None:
    """Raise ValueError if a text length does not fit the packed row (|x| >= 2**59)."""
    if text_len.size and (int(text_len.max()) >= aggregate.TEXT_LEN_LIMIT
                          or int(text_len.min()) <= -aggregate.TEXT_LEN_LIMIT):
        raise ValueError(f"text_len values must lie within +-2**59, got "
                         f"{int(text_len.min())} .. {int(text_len.max())}")


@dataclass
class PanelOptions:
    windows: tuple[int, ...] = DEFAULT_WINDOWS
    lags: tuple[int, ...] = DEFAULT_LAGS
    dense: bool = False
    until_week: int | None = None  #: last week of the panel (dense: every product reaches it)

    def __post_init__(self) -> None:
        for name, vals in (("windows", self.windows), ("lags", self.lags)):
            if any(int(v) < 1 for v in vals):
                raise ValueError(f"{name} must be positive integers, got {list(vals)}")
            if len(set(vals)) != len(vals):
                raise ValueError(f"{name} has duplicates: {list(vals)}")


@dataclass
class PanelStats:
    rows_aggregated: int = 0
    products: int = 0
    panel_rows: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def panel_schema(opts: PanelOptions) -> pa.Schema:
    """Columns of the panel, in order (docs/spec-weekly.md, "Output columns")."""
    fields = [
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("week_start", pa.date32(), nullable=False),
        pa.field("n_reviews", pa.int32(), nullable=False),
        pa.field("rating_mean", pa.float64()),
        pa.field("rating_std", pa.float64()),
    ]
    fields += [pa.field(f"star_{s}", pa.int32(), nullable=False) for s in range(1, 6)]
    fields += [
        pa.field("helpful_votes", pa.int64(), nullable=False),
        pa.field("verified_share", pa.float64()),
        pa.field("text_len_mean", pa.float64()),
    ]
    for k in opts.windows:
        fields.append(pa.field(f"n_reviews_r{k}", pa.int64(), nullable=False))
        fields.append(pa.field(f"rating_mean_r{k}", pa.float64()))
    fields += [pa.field(f"n_reviews_lag{L}", pa.int32()) for L in opts.lags]
    fields += [
        pa.field("n_reviews_cum", pa.int64(), nullable=False),
        pa.field("rating_mean_cum", pa.float64()),
        pa.field("n_reviews_ewm", pa.float64(), nullable=False),
        pa.field("weeks_since_first", pa.int32(), nullable=False),
        pa.field("weeks_since_prev", pa.int32()),
    ]
    return pa.schema(fields)


def _f64(values: np.ndarray, nullable: bool = True) -> pa.Array:
    # NaN marks null: input NaN ratings are set aside before, so no real NaN reaches here.
    if not nullable:
        return pa.array(values, type=pa.float64())
    nan = np.isnan(values)
    return pa.array(values, type=pa.float64(), mask=nan if nan.any() else None)


def _ratio(num: np.ndarray, den: np.ndarray) -> pa.Array:
    """``num / den`` as float64, null where ``den`` is 0 (no reviews with the field known)."""
    values, bits, n_valid = aggregate.ratio_bits(num, den)
    return _with_bits(values, bits, n_valid, pa.float64())


def _masked(values: np.ndarray, valid: np.ndarray, typ: pa.DataType) -> pa.Array:
    """``values`` with nulls where not ``valid``: the validity bitmap packed straight from the
    flags (``pa.array(..., mask=~valid)`` inverted and converted them, ~3x slower; numpy's
    packbits beat a Numba loop here, 27 vs 67 ms per 13.7M rows x 4 columns)."""
    values = np.ascontiguousarray(values, dtype=typ.to_pandas_dtype())
    if valid.all():
        return pa.array(values, type=typ)
    return _with_bits(values, np.packbits(valid, bitorder="little"),
                      int(np.count_nonzero(valid)), typ)


def _with_bits(values: np.ndarray, bits: np.ndarray, n_valid: int, typ: pa.DataType) -> pa.Array:
    n = values.shape[0]
    if n_valid == n:
        return pa.array(values, type=typ)
    return pa.Array.from_buffers(typ, n, [pa.py_buffer(bits), pa.py_buffer(values)],
                                 null_count=n - n_valid)


def _string_array(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    big = offsets.shape[0] and offsets[-1] >= 2**31
    typ = pa.large_string() if big else pa.string()
    offs = offsets if big else offsets.astype(np.int32)
    return pa.Array.from_buffers(typ, len(offsets) - 1,
                                 [None, pa.py_buffer(offs), pa.py_buffer(data)])


#: Panel rows per output batch: features, Arrow arrays and the Parquet writer work on one
#: batch of whole products at a time, so memory stays bounded by the input, not the panel.
SLICE_ROWS = 1 << 20


def panel_batches(cols: Columns, opts: PanelOptions, stats: PanelStats,
                  slice_rows: int | None = None, consume: bool = False) -> Iterator[pa.Table]:
    """The panel of valid rows (``product_code >= 0``) as tables of whole products, in order,
    about ``slice_rows`` (default :data:`SLICE_ROWS`) panel rows each. With ``consume`` the
    grouping may overwrite ``cols.product_code`` and ``cols.week`` (fresh memory is costly)."""
    slice_rows = slice_rows or SLICE_ROWS
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        stats.timings[name] = stats.timings.get(name, 0.0) + now - t
        t = now

    n_products = len(cols.products)
    perm, offsets, sw = group.sort_by_product_week(cols.product_code, cols.week, n_products,
                                                   numba.get_num_threads(), overwrite=consume)
    group_offsets, run_start = group.week_runs(sw, offsets)
    gweek = aggregate.group_weeks(sw, run_start)
    del sw
    stats.rows_aggregated = int(perm.shape[0])
    groups_per_product = np.diff(group_offsets)
    stats.products = int(np.count_nonzero(groups_per_product))
    if opts.dense:
        has = groups_per_product > 0
        first = np.zeros(n_products, dtype=np.int64)
        last = np.zeros(n_products, dtype=np.int64)
        first[has] = gweek[group_offsets[:-1][has]]
        last[has] = (opts.until_week if opts.until_week is not None
                     else gweek[group_offsets[1:][has] - 1])
        rows_per_product = np.where(has, last - first + 1, 0)
    else:
        rows_per_product = groups_per_product
    stats.panel_rows = int(rows_per_product.sum())
    lap("group")

    # product ranges of about slice_rows panel rows each (a product is never split)
    ends = np.cumsum(rows_per_product)
    cuts = [0]
    while cuts[-1] < n_products:
        target = (ends[cuts[-1] - 1] if cuts[-1] else 0) + slice_rows
        nxt = int(np.searchsorted(ends, target, side="right"))
        cuts.append(min(n_products, max(nxt, cuts[-1] + 1)))
    windows = np.asarray(opts.windows, dtype=np.int64)
    lags = np.asarray(opts.lags, dtype=np.int64)
    for p0, p1 in zip(cuts[:-1], cuts[1:]):
        g0, g1 = int(group_offsets[p0]), int(group_offsets[p1])
        if g1 == g0:
            continue
        rs = run_start[g0:g1 + 1]
        values = aggregate.gather_rows(perm[rs[0]:rs[-1]], cols.rows)
        agg = aggregate.weekly_aggregates(rs, values)
        del values
        n, rsum, rmean, rstd, stars = (agg.n, agg.rating_sum, agg.rating_mean, agg.rating_std,
                                       agg.stars)
        hsum, vtrue, vknown = agg.helpful_sum, agg.verified_true, agg.verified_known
        tsum, tknown = agg.text_len_sum, agg.text_len_known
        del agg
        local_go = group_offsets[p0:p1 + 1] - g0
        week_rows = gweek[g0:g1]
        row_offsets = local_go
        if opts.dense:
            until = opts.until_week if opts.until_week is not None else 0
            row_offsets, week_rows, src = aggregate.dense_layout(
                local_go, week_rows, until, opts.until_week is not None)

            def expand(values: np.ndarray, fill, src=src) -> np.ndarray:
                return aggregate.scatter_rows(src, values, values.dtype.type(fill))

            n, rsum, rmean, rstd = (expand(n, 0), expand(rsum, 0.0), expand(rmean, np.nan),
                                    expand(rstd, np.nan))
            stars = np.stack([expand(stars[s], 0) for s in range(5)])
            hsum, vtrue, vknown = expand(hsum, 0), expand(vtrue, 0), expand(vknown, 0)
            tsum, tknown = expand(tsum, 0), expand(tknown, 0)
        lap("aggregate")
        feats = features.rolling_features(row_offsets, week_rows, n, rsum, windows, lags,
                                          EWM_ALPHA)
        lap("features")
        table = _wrap(opts, cols.products.slice(p0, p1 - p0), np.diff(row_offsets), week_rows,
                      n, rmean, rstd, stars, hsum, vtrue, vknown, tsum, tknown, feats)
        lap("wrap")
        yield table
        t = time.perf_counter()  # time spent by the consumer is not ours


def _wrap(opts, products, rows_per_product, week_rows, n, rmean, rstd, stars, hsum, vtrue,
          vknown, tsum, tknown, feats: features.RollingFeatures) -> pa.Table:
    p_off, p_data = string_buffers(products)
    o_off, o_data = strings.repeat_strings(p_off, p_data, rows_per_product)
    arrays: list[pa.Array] = [
        _string_array(o_off, o_data),
        pa.array(week_to_days(week_rows), type=pa.date32()),
        pa.array(n, type=pa.int32()),
        _f64(rmean, opts.dense),  # sparse rows have reviews: never null there
        _f64(rstd, opts.dense),
    ]
    arrays += [pa.array(stars[s], type=pa.int32()) for s in range(5)]
    arrays += [
        pa.array(hsum, type=pa.int64()),
        _ratio(vtrue, vknown),
        _ratio(tsum, tknown),
    ]
    for k in range(len(opts.windows)):
        arrays.append(pa.array(feats.n_window[k], type=pa.int64()))
        arrays.append(_f64(feats.rating_mean_window[k], opts.dense))
    arrays += [_masked(feats.n_lag[j], feats.n_lag_valid[j], pa.int32())
               for j in range(len(opts.lags))]
    arrays += [
        pa.array(feats.n_cum, type=pa.int64()),
        _f64(feats.rating_mean_cum, False),  # every row is at or after the product's first review
        pa.array(feats.n_ewm, type=pa.float64()),
        pa.array(feats.weeks_since_first, type=pa.int32()),
        _masked(feats.weeks_since_prev, feats.weeks_since_prev_valid, pa.int32()),
    ]
    # large ids (> 2 GiB of text in one batch) would need large_string: cast for one schema
    arrays[0] = arrays[0].cast(pa.string()) if pa.types.is_large_string(arrays[0].type) \
        else arrays[0]
    return pa.Table.from_arrays(arrays, schema=panel_schema(opts))


def compute_panel(cols: Columns, opts: PanelOptions) -> tuple[pa.Table, PanelStats]:
    """The whole panel as one table (the Python API and the Dask partitions use this)."""
    stats = PanelStats()
    parts = list(panel_batches(cols, opts, stats))
    table = pa.concat_tables(parts) if parts else panel_schema(opts).empty_table()
    return table, stats
