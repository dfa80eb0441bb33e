"""Each weekly-step kernel against the pandas way of doing the same thing.

``params = [["pandas", "rcfast"], sizes]``; ``setup`` builds the inputs and warms the JIT (untimed).
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pyarrow as pa

from rcfast.weekly.products import encode_products
from rcfast.kernels import aggregate, features, group
from rcfast.kernels.time import week_index
from rcfast.weekly.panel import EWM_ALPHA

from ._data import reviews

SIZES = [100_000, 1_000_000]
TOOLS = ["pandas", "rcfast"]


def _warm() -> None:
    t = reviews(1000)
    _rcfast_prepare(t)


def _rcfast_prepare(t: pa.Table):
    codes, products = encode_products(t.column("product_id").chunks)
    ms = t.column("timestamp").cast(pa.int64()).to_numpy()
    return codes, products, ms


class EncodeProducts:
    """Product id strings -> integer codes in byte order."""

    params = [TOOLS, SIZES]
    param_names = ["tool", "rows"]

    def setup(self, tool, rows):
        self.table = reviews(rows)
        self.series = self.table.column("product_id").to_pandas()
        _warm()

    def time_encode(self, tool, rows):
        if tool == "pandas":
            pd.factorize(self.series, sort=True)
        else:
            encode_products(self.table.column("product_id").chunks)

    def peakmem_encode(self, tool, rows):
        self.time_encode(tool, rows)


class WeekIndex:
    """Epoch ms -> Monday-based week index."""

    params = [TOOLS, SIZES]
    param_names = ["tool", "rows"]

    def setup(self, tool, rows):
        self.ms = reviews(rows).column("timestamp").cast(pa.int64()).to_numpy()
        self.series = pd.Series(self.ms)
        week_index(self.ms[:10])

    def time_week(self, tool, rows):
        if tool == "pandas":
            (self.series // 1000 + 259200) // 604800
        else:
            week_index(self.ms)

    def peakmem_week(self, tool, rows):
        self.time_week(tool, rows)


class PackRows:
    """A batch's review values (rating, helpful votes, verified, text length; Arrow columns with
    nulls) into the packed rows the grouping reads: rcfast straight from Arrow's buffers, pandas
    through ``to_pandas`` and null filling."""

    params = [TOOLS, SIZES]
    param_names = ["tool", "rows"]

    def setup(self, tool, rows):
        from pathlib import Path

        from rcfast.weekly.read import ReadOptions

        t = reviews(rows)
        names = ["product_id", "timestamp", "rating", "helpful_votes", "verified", "text_len"]
        self.cols = {f: t.column(f) for f in names}
        self.colmap = {f: f for f in names}
        self.where, self.opts = Path("bench.parquet"), ReadOptions()
        self.values = t.select(names[2:])
        self.out = np.empty((rows, aggregate.ROW_WIDTH), dtype=np.int64)
        self._rcfast()  # warm the JIT

    def _rcfast(self):
        from rcfast.weekly.convert import convert_batch

        convert_batch(self.where, self.cols, self.colmap, self.opts).pack(self.out, 0)

    def time_pack(self, tool, rows):
        if tool == "pandas":
            df = self.values.to_pandas()
            df["helpful_votes"].fillna(0).astype("int64")
            df["verified"].map({True: 2, False: 1}).fillna(0).astype("int8")
            df["text_len"].fillna(0).astype("int64")
            df["text_len"].notna()
        else:
            self._rcfast()

    def peakmem_pack(self, tool, rows):
        self.time_pack(tool, rows)


class GroupAggregate:
    """Group rows by (product, week) and aggregate: count, mean, std, stars, helpful."""

    params = [TOOLS, SIZES]
    param_names = ["tool", "rows"]

    def setup(self, tool, rows):
        t = reviews(rows)
        self.codes, self.products, ms = _rcfast_prepare(t)
        self.week = week_index(ms)
        self.rating = t.column("rating").cast(pa.float64()).to_numpy()
        self.helpful = t.column("helpful_votes").cast(pa.int64()).fill_null(0).to_numpy()
        self.verified = t.column("verified").cast(pa.int8()).fill_null(-1).to_numpy()
        self.text_len = t.column("text_len").cast(pa.int64()).fill_null(0).to_numpy()
        self.tl_valid = t.column("text_len").is_valid().to_numpy(zero_copy_only=False)
        self.rows = np.empty((rows, aggregate.ROW_WIDTH), dtype=np.int64)
        aggregate.pack_rows(self.rows, 0, self.rating, self.helpful, self.verified,
                            self.text_len, self.tl_valid)
        self.df = pd.DataFrame({"p": self.codes, "w": self.week, "r": self.rating,
                                "h": self.helpful})
        self.df["star"] = np.floor(self.rating + 0.5).astype(np.int8)
        self._rcfast()  # warm the JIT

    def _rcfast(self):
        perm, off, sw = group.sort_by_product_week(self.codes, self.week, len(self.products),
                                                   numba.get_num_threads())
        g_off, run_start = group.week_runs(sw, off)
        return aggregate.weekly_aggregates(run_start, aggregate.gather_rows(perm, self.rows))

    def time_group_aggregate(self, tool, rows):
        if tool == "pandas":
            g = self.df.groupby(["p", "w"], sort=True)
            g.agg(n=("r", "size"), mean=("r", "mean"), helpful=("h", "sum"))
            g.r.std(ddof=0)
            g.star.value_counts().unstack(fill_value=0)
        else:
            self._rcfast()

    def peakmem_group_aggregate(self, tool, rows):
        self.time_group_aggregate(tool, rows)


class RollingFeatures:
    """Rolling/lag/cumulative/EWM features over calendar weeks on the (product, week) rows."""

    params = [TOOLS, SIZES]
    param_names = ["tool", "rows"]

    def setup(self, tool, rows):
        t = reviews(rows)
        codes, products, ms = _rcfast_prepare(t)
        week = week_index(ms)
        rating = t.column("rating").cast(pa.float64()).to_numpy()
        df = pd.DataFrame({"p": codes, "w": week, "r": rating})
        g = df.groupby(["p", "w"], sort=True).agg(n=("r", "size"), s=("r", "sum")).reset_index()
        self.g = g
        self.row_offsets = np.zeros(len(products) + 1, dtype=np.int64)
        np.cumsum(np.bincount(g.p.to_numpy(), minlength=len(products)),
                  out=self.row_offsets[1:])
        self.week = g.w.to_numpy().astype(np.int32)
        self.n = g.n.to_numpy().astype(np.int32)
        self.s = g.s.to_numpy()
        self._rcfast()

    def _rcfast(self):
        return features.rolling_features(self.row_offsets, self.week, self.n, self.s,
                                         np.array([4, 12, 52]), np.array([1, 2, 4]), EWM_ALPHA)

    def time_rolling(self, tool, rows):
        if tool == "pandas":
            g = self.g.assign(t=pd.to_datetime(self.g.w * 7, unit="D"))
            by = g.groupby("p")
            for k in (4, 12, 52):
                by.rolling(f"{7 * k}D", on="t")[["n", "s"]].sum()
            for lag in (1, 2, 4):
                by.n.shift(lag)
            by.n.cumsum()
            by.s.cumsum()
        else:
            self._rcfast()

    def peakmem_rolling(self, tool, rows):
        self.time_rolling(tool, rows)
