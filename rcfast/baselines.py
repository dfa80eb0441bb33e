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

import datetime as dt
import json
import math
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rcfast.schema import TS_MAX_MS, TS_MIN_MS  # times outside: timestamp_out_of_range

__all__ = [
    "REJECT_REASONS",
    "TOOLS",
    "baseline_info",
    "output_schema",
    "panel_duckdb",
    "panel_pandas",
    "panel_pandas_rolling",
    "panel_polars",
]

REJECT_REASONS = ("null_product_id", "null_timestamp", "timestamp_out_of_range", "null_rating",
                  "rating_out_of_range", "after_until")
MS_PER_WEEK = 604_800_000
MONDAY_SHIFT_MS = 259_200_000  # the epoch was a Thursday; +3 days puts week starts on Monday
EWM_HALFLIFE = 4.0
EWM_ALPHA = 1.0 - 0.5 ** (1.0 / EWM_HALFLIFE)
EWM_LOG_Q = math.log(1.0 - EWM_ALPHA)
#: Weeks per EWM rebasing segment: q^-2048 ≈ e^355 stays finite, q^1024 ≈ 1e-77 is negligible.
EWM_SEGMENT = 1024
META_KEY = b"rcfast.baseline"
#: Longest window or lag accepted (weeks): far beyond any data, and keeps packed keys apart.
MAX_WEEKS = 1_000_000
_SEG_SHIFT = 2**31  # makes week indices non-negative inside packed int64 keys


@dataclass(frozen=True)
class _Options:
    windows: tuple[int, ...]
    lags: tuple[int, ...]
    dense: bool
    until_week: int | None
    until: str | None
    ewm: bool = True

    @classmethod
    def make(cls, windows, lags, dense, until, ewm=True) -> _Options:
        def ints(vals, what):
            try:
                out = tuple(int(v) for v in vals)
            except (TypeError, ValueError):
                raise ValueError(f"{what} must be positive integers, got {vals!r}") from None
            if not out or any(not 1 <= v <= MAX_WEEKS for v in out) or len(set(out)) != len(out) \
                    or any(isinstance(v, bool) or float(v) != int(v) for v in vals):
                raise ValueError(
                    f"{what} must be distinct integers in 1..{MAX_WEEKS}, got {vals!r}")
            return out

        until_week = None
        if until is not None:
            day = until if isinstance(until, dt.date) else None
            if day is None:
                try:
                    day = dt.date.fromisoformat(str(until))
                except ValueError:
                    raise ValueError(f"until must be a date YYYY-MM-DD, got {until!r}") from None
            ms = (day - dt.date(1970, 1, 1)).days * 86_400_000
            until_week = (ms + MONDAY_SHIFT_MS) // MS_PER_WEEK
            until = day.isoformat()
        return cls(ints(windows, "windows"), ints(lags, "lags"), bool(dense), until_week, until,
                   bool(ewm))


def output_schema(windows=(4, 12, 52), lags=(1, 2, 4), ewm: bool = True) -> pa.Schema:
    """The panel's columns in spec order (rolling columns interleaved per window); without
    ``n_reviews_ewm`` if not ``ewm``."""
    f = [pa.field("product_id", pa.string()), pa.field("week_start", pa.date32()),
         pa.field("n_reviews", pa.int32()), pa.field("rating_mean", pa.float64()),
         pa.field("rating_std", pa.float64())]
    f += [pa.field(f"star_{s}", pa.int32()) for s in range(1, 6)]
    f += [pa.field("helpful_votes", pa.int64()), pa.field("verified_share", pa.float64()),
          pa.field("text_len_mean", pa.float64())]
    for k in windows:
        f += [pa.field(f"n_reviews_r{k}", pa.int64()), pa.field(f"rating_mean_r{k}", pa.float64())]
    f += [pa.field(f"n_reviews_lag{L}", pa.int32()) for L in lags]
    f += [pa.field("n_reviews_cum", pa.int64()), pa.field("rating_mean_cum", pa.float64()),
          pa.field("n_reviews_ewm", pa.float64()), pa.field("weeks_since_first", pa.int32()),
          pa.field("weeks_since_prev", pa.int32())]
    if not ewm:
        f = [x for x in f if x.name != "n_reviews_ewm"]
    return pa.schema(f)


def _check_path(path) -> str:
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"no such input: {p}")
    return p


def _input_columns(path: str) -> set[str]:
    names = set(pq.read_schema(path).names)
    missing = [c for c in ("product_id", "timestamp", "rating") if c not in names]
    if missing:
        raise ValueError(f"{path}: missing required column(s) {', '.join(missing)} "
                         f"(the baselines read the normalized schema)")
    return names


def _finish(tool: str, table: pa.Table, opts: _Options, rows_read: int,
            rejected: dict[str, int]) -> pa.Table:
    schema = output_schema(opts.windows, opts.lags, opts.ewm)
    table = table.select(schema.names).cast(schema)
    rejected = {r: int(rejected.get(r, 0)) for r in REJECT_REASONS}
    products = 0
    if table.num_rows:
        import pyarrow.compute as pc

        products = pc.count_distinct(table["product_id"]).as_py()
    info = {"tool": tool, "rows_read": int(rows_read),
            "rows_aggregated": int(rows_read) - sum(rejected.values()),
            "rows_rejected": rejected, "products": products, "panel_rows": table.num_rows,
            "windows": list(opts.windows), "lags": list(opts.lags), "dense": opts.dense,
            "until": opts.until, "ewm": opts.ewm}
    return table.replace_schema_metadata({META_KEY: json.dumps(info).encode()})


def baseline_info(table: pa.Table) -> dict:
    """The run facts a baseline stored in its output's metadata."""
    meta = table.schema.metadata or {}
    return json.loads(meta[META_KEY]) if META_KEY in meta else {}


# ----------------------------------------------------------------------------------------------
# pandas


def _pandas_ms(s) -> tuple[np.ndarray, np.ndarray]:
    """(epoch ms floored, is-null) of a pandas timestamp or integer/float column."""
    import pandas as pd

    null = s.isna().to_numpy()
    if isinstance(s.dtype, pd.DatetimeTZDtype) or np.issubdtype(s.dtype, np.datetime64):
        per_ms = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}[s.dt.unit]
        raw = s.dt.tz_localize(None).to_numpy().view("i8") if isinstance(
            s.dtype, pd.DatetimeTZDtype) else s.to_numpy().view("i8")
        ms = raw * 1000 if per_ms is None else raw // per_ms  # // floors before 1970 too
    else:
        vals = s.to_numpy(dtype="float64", na_value=np.nan)
        null = null | np.isnan(vals)
        ms = np.floor(np.where(null, 0.0, vals)).astype(np.int64)
    return np.where(null, 0, ms), null


def _pandas_windows(gcode: np.ndarray, w: np.ndarray, n: np.ndarray, rsum: np.ndarray,
                    opts: _Options) -> dict[str, np.ndarray]:
    """Calendar-week features over a frame sorted by (product, week), one row per week."""
    import pandas as pd

    rows = gcode.size
    key = (gcode.astype(np.int64) << 32) | (w.astype(np.int64) + _SEG_SHIFT)
    start = np.r_[0, np.flatnonzero(np.diff(gcode)) + 1] if rows else np.zeros(0, np.int64)
    first_row = np.repeat(start, np.diff(np.r_[start, rows]))
    first = w[first_row]
    grp = pd.Series(gcode)
    cum_n = pd.Series(n).groupby(grp).cumsum().to_numpy()
    cum_r = pd.Series(rsum).groupby(grp).cumsum().to_numpy()

    def window_sum(cum: np.ndarray, lo: np.ndarray):
        before = lo - 1  # the row just before the window, if it is the same product's
        inside = before >= first_row
        return cum - np.where(inside, cum[np.maximum(before, 0)], 0)

    out: dict[str, np.ndarray] = {}
    for k in opts.windows:
        lo = np.searchsorted(key, key - (k - 1), side="left")
        out[f"n_r{k}"] = window_sum(cum_n, lo)
        out[f"rs_r{k}"] = window_sum(cum_r, lo)
    for L in opts.lags:
        pos = np.searchsorted(key, key - L, side="left")
        hit = (pos < rows) & (key[np.minimum(pos, rows - 1)] == key - L) if rows else pos > 0
        out[f"lag{L}"] = np.where(hit, n[np.minimum(pos, max(rows - 1, 0))], 0)
        out[f"lag{L}_null"] = w - L < first
    out["cum_n"], out["cum_r"], out["first"] = cum_n, cum_r, first
    # Previous week with reviews strictly before this row (dense rows may have none).
    last_rev = np.maximum.accumulate(np.where(n > 0, np.arange(rows), -1)) if rows \
        else np.zeros(0, np.int64)
    prev_rev = np.r_[-1, last_rev[:-1]] if rows else last_rev
    out["prev_null"] = prev_rev < first_row
    out["prev"] = w - w[np.maximum(prev_rev, 0)] if rows else w
    out["ewm"] = _pandas_ewm(gcode, w, n, first)
    return out


def _pandas_ewm(gcode: np.ndarray, w: np.ndarray, n: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The calendar-week EWM in closed form per rebasing segment (rows sorted by product, week);
    the carry comes from the product's previous segment only."""
    import pandas as pd

    seg = w // EWM_SEGMENT
    x = (w - seg * EWM_SEGMENT).astype(np.float64)
    c = np.where(w == first, n, EWM_ALPHA * n)
    term = c * np.exp(-x * EWM_LOG_Q)
    sg = pd.DataFrame({"g": gcode, "s": seg, "t": term})
    s_cum = sg.groupby(["g", "s"], sort=False)["t"].cumsum().to_numpy()
    tot = sg.groupby(["g", "s"], sort=False)["t"].sum()
    prev_tot = tot.reindex(pd.MultiIndex.from_arrays([gcode, seg - 1])).to_numpy()
    prev_tot = np.nan_to_num(prev_tot, nan=0.0)
    return np.exp(x * EWM_LOG_Q) * s_cum + np.exp((x + EWM_SEGMENT) * EWM_LOG_Q) * prev_tot


def panel_pandas(path: str | os.PathLike[str], windows=(4, 12, 52), lags=(1, 2, 4), *,
                 dense: bool = False, until: str | dt.date | None = None) -> pa.Table:
    """The weekly panel of a normalized Parquet file, computed with pandas (+ numpy): windows
    and lags with ``np.searchsorted`` on packed (product, week) keys and group cumulative sums."""
    return _pandas_panel("pandas", _pandas_windows, path, windows, lags, dense, until)


def panel_pandas_rolling(path: str | os.PathLike[str], windows=(4, 12, 52), lags=(1, 2, 4), *,
                         dense: bool = False, until: str | dt.date | None = None) -> pa.Table:
    """The weekly panel with pandas written the way the users' scripts were: the same
    ``groupby([product, week]).agg``, then time-aware ``groupby(product).rolling("28D",
    on="week_start")`` windows, lags by merging each row with its product's row L weeks earlier,
    group ``cumsum`` / ``transform("min")`` / ``diff``; the EWM as in :func:`panel_pandas`.

    This is the issue's pandas reference ("a pandas groupby + time-aware rolling"); pandas loops
    over the groups in Python to find each group's window bounds, so its time grows with the
    number of products, not just with rows."""
    return _pandas_panel("pandas-rolling", _pandas_rolling_features, path, windows, lags, dense,
                         until)


def _pandas_rolling_features(gcode: np.ndarray, w: np.ndarray, n: np.ndarray, rsum: np.ndarray,
                             opts: _Options) -> dict[str, np.ndarray]:
    import pandas as pd

    rows = gcode.size
    d = pd.DataFrame({"p": gcode, "w": w, "n": n, "rsum": rsum,
                      "week_start": (w * 7 - 3).astype("datetime64[D]").astype("datetime64[s]")})
    g = d.groupby("p", sort=False)
    out: dict[str, np.ndarray] = {}
    for k in opts.windows:
        r = g[["week_start", "n", "rsum"]].rolling(f"{7 * k}D", on="week_start").sum()
        # Indexed by (product, week_start) in group order, which is the frame's own order.
        if len(r) != rows or not np.array_equal(r.index.get_level_values(0).to_numpy(), gcode):
            raise RuntimeError("groupby().rolling() returned rows in an unexpected order")
        out[f"n_r{k}"] = np.rint(r["n"].to_numpy()).astype(np.int64)  # float sums of counts
        out[f"rs_r{k}"] = r["rsum"].to_numpy()
    first = g["w"].transform("min").to_numpy()
    for L in opts.lags:
        earlier = d[["p", "week_start", "n"]].assign(
            week_start=d["week_start"] + pd.Timedelta(weeks=L))
        m = d[["p", "week_start"]].merge(earlier, on=["p", "week_start"], how="left")
        out[f"lag{L}"] = m["n"].fillna(0).to_numpy(np.int64)
        out[f"lag{L}_null"] = w - L < first
    cum = g[["n", "rsum"]].cumsum()
    out["cum_n"], out["cum_r"], out["first"] = cum["n"].to_numpy(), cum["rsum"].to_numpy(), first
    if (n > 0).all():  # sparse: the previous row is the previous week with reviews
        prev = g["w"].diff()
    else:  # dense: the previous week *with reviews*; rows with n = 0 do not count
        with_reviews = d["w"].where(d["n"] > 0)
        prev = with_reviews.groupby(d["p"]).shift(1).groupby(d["p"]).ffill()
        prev = d["w"] - prev
    out["prev_null"] = prev.isna().to_numpy()
    out["prev"] = prev.fillna(0).to_numpy(np.int64)
    out["ewm"] = _pandas_ewm(gcode, w, n, first)
    return out


def _pandas_panel(tool: str, features, path, windows, lags, dense, until) -> pa.Table:
    """Read, reject, ``groupby([product, week]).agg``, (dense grid), ``features``, wrap."""
    import pandas as pd

    opts = _Options.make(windows, lags, dense, until)
    path = _check_path(path)
    present = _input_columns(path)
    wanted = ["product_id", "timestamp", "rating", "helpful_votes", "verified", "text_len"]
    df = pd.read_parquet(path, columns=[c for c in wanted if c in present])
    rows_read = len(df)

    ms, ts_null = _pandas_ms(df["timestamp"])
    r = pd.to_numeric(df["rating"]).to_numpy(dtype="float64", na_value=np.nan)
    week = (ms + MONDAY_SHIFT_MS) // MS_PER_WEEK
    checks = [
        ("null_product_id", df["product_id"].isna().to_numpy()),
        ("null_timestamp", ts_null),
        ("timestamp_out_of_range", (ms < TS_MIN_MS) | (ms >= TS_MAX_MS)),
        ("null_rating", np.isnan(r)),
        ("rating_out_of_range", (r < 1.0) | (r > 5.0)),
        ("after_until", week > opts.until_week if opts.until_week is not None
         else np.zeros(rows_read, bool)),
    ]
    keep = np.ones(rows_read, bool)
    rejected = {}
    for reason, bad in checks:  # a row counts once, for its first reason
        hit = keep & bad
        rejected[reason] = int(hit.sum())
        keep &= ~hit

    rk = r[keep]
    star = np.floor(rk + 0.5).astype(np.int8)  # rounds half up
    d = pd.DataFrame({"product_id": df["product_id"].to_numpy()[keep], "w": week[keep], "r": rk})
    for s in range(1, 6):
        d[f"star_{s}"] = (star == s).astype(np.int32)
    d["hv"] = (df["helpful_votes"].to_numpy(dtype="float64", na_value=np.nan)[keep]
               if "helpful_votes" in df else 0.0)
    d["hv"] = d["hv"].fillna(0).astype(np.int64)
    if "verified" in df:
        v = df["verified"][keep]
        d["vt"] = v.eq(True).fillna(False).to_numpy(dtype=bool).astype(np.int64)
        d["vk"] = v.notna().to_numpy().astype(np.int64)
    else:
        d["vt"] = d["vk"] = 0
    tl = (df["text_len"].to_numpy(dtype="float64", na_value=np.nan)[keep]
          if "text_len" in df else np.full(int(keep.sum()), np.nan))
    d["tl"], d["tk"] = np.nan_to_num(tl), (~np.isnan(tl)).astype(np.int64)
    del df

    g = d.groupby(["product_id", "w"], sort=True)
    agg = g.agg(n=("r", "size"), rsum=("r", "sum"), rmean=("r", "mean"),
                **{f"star_{s}": (f"star_{s}", "sum") for s in range(1, 6)},
                hv=("hv", "sum"), vt=("vt", "sum"), vk=("vk", "sum"), tls=("tl", "sum"),
                tk=("tk", "sum"))
    agg["rstd"] = g["r"].std(ddof=0)
    agg = agg.reset_index()
    del d, g
    gcode, products = pd.factorize(agg["product_id"], sort=False)  # groups come out sorted
    products = np.asarray(products, dtype=object)
    w = agg["w"].to_numpy(np.int64)

    if opts.dense and len(w):
        starts = np.r_[0, np.flatnonzero(np.diff(gcode)) + 1]
        first = w[starts]
        last = w[np.r_[starts[1:], len(w)] - 1]
        end = np.full_like(last, opts.until_week) if opts.until_week is not None else last
        lens = end - first + 1
        grid_g = np.repeat(np.arange(len(starts)), lens)
        grid_w = np.repeat(first, lens) + (np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens,
                                                                               lens))
        src_key = (gcode.astype(np.int64) << 32) | (w + _SEG_SHIFT)
        grid_key = (grid_g.astype(np.int64) << 32) | (grid_w + _SEG_SHIFT)
        pos = np.searchsorted(src_key, grid_key)
        has = (pos < len(src_key)) & (src_key[np.minimum(pos, len(src_key) - 1)] == grid_key)
        src = np.where(has, pos, 0)
        dense_cols = {}
        for c in ["n", "rsum", "star_1", "star_2", "star_3", "star_4", "star_5", "hv", "vt", "vk",
                  "tls", "tk"]:
            dense_cols[c] = np.where(has, agg[c].to_numpy()[src], 0)
        for c in ["rmean", "rstd"]:
            dense_cols[c] = np.where(has, agg[c].to_numpy()[src], np.nan)
        agg = pd.DataFrame(dense_cols)
        gcode, w = grid_g, grid_w

    n = agg["n"].to_numpy(np.int64)
    rsum = agg["rsum"].to_numpy(np.float64)
    f = features(gcode, w, n, rsum, opts)

    def masked(values, null, typ):
        return pa.array(values, type=typ, mask=np.asarray(null, dtype=bool))

    def ratio(num, den):
        den = np.asarray(den, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return masked(np.where(den > 0, num / np.where(den > 0, den, 1), 0.0), den == 0,
                          pa.float64())

    cols = {
        "product_id": pa.array(products, pa.string()).take(pa.array(gcode)),
        "week_start": pa.array((w * 7 - 3).astype(np.int32), pa.int32()).cast(pa.date32()),
        "n_reviews": pa.array(n.astype(np.int32)),
        "rating_mean": masked(agg["rmean"].to_numpy(np.float64), n == 0, pa.float64()),
        "rating_std": masked(agg["rstd"].to_numpy(np.float64), n == 0, pa.float64()),
    }
    for s in range(1, 6):
        cols[f"star_{s}"] = pa.array(agg[f"star_{s}"].to_numpy().astype(np.int32))
    cols["helpful_votes"] = pa.array(agg["hv"].to_numpy().astype(np.int64))
    cols["verified_share"] = ratio(agg["vt"].to_numpy(np.float64), agg["vk"].to_numpy())
    cols["text_len_mean"] = ratio(agg["tls"].to_numpy(np.float64), agg["tk"].to_numpy())
    for k in opts.windows:
        cols[f"n_reviews_r{k}"] = pa.array(f[f"n_r{k}"].astype(np.int64))
        cols[f"rating_mean_r{k}"] = ratio(f[f"rs_r{k}"], f[f"n_r{k}"])
    for L in opts.lags:
        cols[f"n_reviews_lag{L}"] = masked(f[f"lag{L}"].astype(np.int32), f[f"lag{L}_null"],
                                           pa.int32())
    cols["n_reviews_cum"] = pa.array(f["cum_n"].astype(np.int64))
    cols["rating_mean_cum"] = ratio(f["cum_r"], f["cum_n"])
    cols["n_reviews_ewm"] = pa.array(f["ewm"], pa.float64())
    cols["weeks_since_first"] = pa.array((w - f["first"]).astype(np.int32))
    cols["weeks_since_prev"] = masked(f["prev"].astype(np.int32), f["prev_null"], pa.int32())
    return _finish(tool, pa.table(cols), opts, rows_read, rejected)


# ----------------------------------------------------------------------------------------------
# Polars


def panel_polars(path: str | os.PathLike[str], windows=(4, 12, 52), lags=(1, 2, 4), *,
                 dense: bool = False, until: str | dt.date | None = None,
                 ewm: bool = True) -> pa.Table:
    """The weekly panel of a normalized Parquet file, computed with one lazy Polars query
    (``ewm=False``: without the ``n_reviews_ewm`` column and its work)."""
    import polars as pl

    opts = _Options.make(windows, lags, dense, until, ewm)
    path = _check_path(path)
    present = _input_columns(path)
    lf = pl.scan_parquet(path)
    ts_type = lf.collect_schema()["timestamp"]
    ts = pl.col("timestamp")
    if isinstance(ts_type, pl.Datetime):
        per_ms = {"ms": 1, "us": 1_000, "ns": 1_000_000}[ts_type.time_unit]
        ms = ts.cast(pl.Int64) // per_ms  # Polars' // floors, also for negatives
    elif ts_type.is_float():
        ms = ts.fill_nan(None).floor().cast(pl.Int64)
    else:
        ms = ts.cast(pl.Int64)
    base = lf.select(
        product_id=pl.col("product_id").cast(pl.String),
        ms=ms,
        r=pl.col("rating").cast(pl.Float64).fill_nan(None),
        hv=pl.col("helpful_votes").cast(pl.Int64).fill_null(0) if "helpful_votes" in present
        else pl.lit(0, pl.Int64),
        ver=pl.col("verified").cast(pl.Boolean) if "verified" in present
        else pl.lit(None, pl.Boolean),
        tl=pl.col("text_len").cast(pl.Float64) if "text_len" in present
        else pl.lit(None, pl.Float64),
    ).with_columns(w=(pl.col("ms") + MONDAY_SHIFT_MS) // MS_PER_WEEK)
    reason = (
        pl.when(pl.col("product_id").is_null()).then(pl.lit("null_product_id"))
        .when(pl.col("ms").is_null()).then(pl.lit("null_timestamp"))
        .when((pl.col("ms") < TS_MIN_MS) | (pl.col("ms") >= TS_MAX_MS))
        .then(pl.lit("timestamp_out_of_range"))
        .when(pl.col("r").is_null()).then(pl.lit("null_rating"))
        .when((pl.col("r") < 1.0) | (pl.col("r") > 5.0)).then(pl.lit("rating_out_of_range"))
    )
    if opts.until_week is not None:
        reason = reason.when(pl.col("w") > opts.until_week).then(pl.lit("after_until"))
    base = base.with_columns(reason=reason.otherwise(pl.lit(None, pl.String)))
    counts = base.group_by("reason").agg(pl.len().alias("n"))
    star = (pl.col("r") + 0.5).floor()
    agg = base.filter(pl.col("reason").is_null()).group_by("product_id", "w").agg(
        n=pl.len(), rsum=pl.col("r").sum(), rmean=pl.col("r").mean(),
        rstd=pl.col("r").std(ddof=0),
        **{f"star_{s}": (star == s).sum() for s in range(1, 6)},
        hv=pl.col("hv").sum(), vt=pl.col("ver").sum(), vk=pl.col("ver").count(),
        tls=pl.col("tl").sum(), tk=pl.col("tl").count(),
    )
    if opts.dense:
        end = pl.lit(opts.until_week) if opts.until_week is not None else pl.col("w").max()
        grid = (agg.group_by("product_id")
                .agg(w=pl.int_ranges(pl.col("w").min(), end + 1))
                .explode("w"))
        agg = grid.join(agg, on=["product_id", "w"], how="left").with_columns(
            pl.col("n", *[f"star_{s}" for s in range(1, 6)], "hv", "vt", "vk", "tk",
                   "rsum", "tls").fill_null(0))
    # One sort by (product, week); after it the products are runs, numbered by counting run
    # starts (no second sort of the strings, as rank() would do), and the per-product windows
    # group by that integer instead of hashing the strings again.
    f = agg.sort("product_id", "w")
    f = f.with_columns(pid=(pl.col("product_id") != pl.col("product_id").shift(1))
                       .fill_null(True).cum_sum().cast(pl.Int64))
    by = "pid"
    # Rolling over one global key (product number · 2^32 + week) instead of `.over(product)`:
    # same windows, since products are 2^32 - span weeks apart, and 6x faster than running
    # the rolling kernel once per product.
    key = pl.col(by) * (1 << 32) + pl.col("w")
    f = f.with_columns(key=key).with_columns(
        first=pl.col("w").first().over(by),  # sorted: the first week is the minimum
        cum_n=pl.col("n").cum_sum().over(by),
        cum_r=pl.col("rsum").cum_sum().over(by),
        prev=pl.when(pl.col("n") > 0).then(pl.col("w")).shift(1).forward_fill().over(by),
        **{f"n_r{k}": pl.col("n").rolling_sum_by("key", f"{k}i") for k in opts.windows},
        **{f"rs_r{k}": pl.col("rsum").rolling_sum_by("key", f"{k}i") for k in opts.windows},
        # n at week w-L = (sum over weeks w-L..w) - (sum over w-L+1..w)
        **{f"lag{L}": pl.col("n").rolling_sum_by("key", f"{L + 1}i")
           - pl.col("n").rolling_sum_by("key", f"{L}i") for L in opts.lags},
    )
    seg = pl.col("w") // EWM_SEGMENT
    x = (pl.col("w") - pl.col("seg") * EWM_SEGMENT).cast(pl.Float64)
    ewm_cols = {}
    if opts.ewm:
        f, ewm_cols = _polars_ewm(f, by, seg, x)

    def ratio(num: str, den: str) -> pl.Expr:
        return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den))

    out = f.select(  # still in (product, week) order: the join kept the left order
        pl.col("product_id"),
        week_start=(pl.col("w") * 7 - 3).cast(pl.Int32).cast(pl.Date),
        n_reviews=pl.col("n").cast(pl.Int32),
        rating_mean=pl.when(pl.col("n") > 0).then(pl.col("rmean")),
        rating_std=pl.when(pl.col("n") > 0).then(pl.col("rstd")),
        **{f"star_{s}": pl.col(f"star_{s}").cast(pl.Int32) for s in range(1, 6)},
        helpful_votes=pl.col("hv").cast(pl.Int64),
        verified_share=ratio("vt", "vk"),
        text_len_mean=ratio("tls", "tk"),
        **{name: expr for k in opts.windows for name, expr in (
            (f"n_reviews_r{k}", pl.col(f"n_r{k}").cast(pl.Int64)),
            (f"rating_mean_r{k}", ratio(f"rs_r{k}", f"n_r{k}")))},
        **{f"n_reviews_lag{L}": pl.when(pl.col("w") - L >= pl.col("first"))
           .then(pl.col(f"lag{L}")).cast(pl.Int32) for L in opts.lags},
        n_reviews_cum=pl.col("cum_n").cast(pl.Int64),
        rating_mean_cum=ratio("cum_r", "cum_n"),
        **ewm_cols,
        weeks_since_first=(pl.col("w") - pl.col("first")).cast(pl.Int32),
        weeks_since_prev=(pl.col("w") - pl.col("prev")).cast(pl.Int32),
    )
    panel, counts_df = pl.collect_all([out, counts])
    by_reason = dict(zip(counts_df["reason"].to_list(), counts_df["n"].to_list()))
    rows_read = sum(by_reason.values())
    rejected = {k: v for k, v in by_reason.items() if k is not None}
    return _finish("polars", panel.to_arrow(), opts, rows_read, rejected)


def _polars_ewm(f, by, seg, x):
    """The EWM's closed form (module docstring) on the sorted frame: its columns, and the
    frame with the segment sums joined."""
    import polars as pl

    f = f.with_columns(seg=seg).with_columns(
        term=pl.when(pl.col("w") == pl.col("first")).then(pl.col("n").cast(pl.Float64))
        .otherwise(EWM_ALPHA * pl.col("n")) * (-x * EWM_LOG_Q).exp())
    seg_tot = f.group_by(by, "seg").agg(prev_tot=pl.col("term").sum()).with_columns(
        seg=pl.col("seg") + 1)
    f = f.with_columns(s_cum=pl.col("term").cum_sum().over(by, "seg")).join(
        seg_tot, on=[by, "seg"], how="left", maintain_order="left",
    ).with_columns(pl.col("prev_tot").fill_null(0.0))
    ewm_col = (x * EWM_LOG_Q).exp() * pl.col("s_cum") \
        + ((x + EWM_SEGMENT) * EWM_LOG_Q).exp() * pl.col("prev_tot")
    return f, {"n_reviews_ewm": ewm_col}


# ----------------------------------------------------------------------------------------------
# DuckDB


def _duckdb_arrow(result) -> pa.Table:
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        if hasattr(result, name):
            t = getattr(result, name)()
            return t.read_all() if isinstance(t, pa.RecordBatchReader) else t
    raise RuntimeError("this duckdb has no Arrow export")


def panel_duckdb(path: str | os.PathLike[str], windows=(4, 12, 52), lags=(1, 2, 4), *,
                 dense: bool = False, until: str | dt.date | None = None,
                 ewm: bool = True, memory_limit: str | None = None) -> pa.Table:
    """The weekly panel of a normalized Parquet file, computed with DuckDB SQL (``ewm=False``:
    without the ``n_reviews_ewm`` column and its work; ``memory_limit`` such as ``"1GB"``:
    DuckDB's own limit, above which it spills to its temporary directory)."""
    import duckdb

    opts = _Options.make(windows, lags, dense, until, ewm)
    path = _check_path(path)
    present = _input_columns(path)
    ts_type = pq.read_schema(path).field("timestamp").type
    if pa.types.is_timestamp(ts_type) and ts_type.unit in ("s", "ms"):
        ms = "epoch_ms(timestamp)"  # exact: no sub-millisecond part to truncate
    elif pa.types.is_timestamp(ts_type):
        # epoch_ms truncates toward zero (wrong before 1970) and rejects TIMESTAMPTZ_NS
        ms = None
    elif pa.types.is_floating(ts_type):
        ms = "CAST(floor(CASE WHEN isnan(timestamp) THEN NULL ELSE timestamp END) AS BIGINT)"
    else:
        ms = "CAST(timestamp AS BIGINT)"
    hv = "coalesce(CAST(helpful_votes AS BIGINT), 0)" if "helpful_votes" in present else "0"
    ver = "CAST(verified AS BOOLEAN)" if "verified" in present else "CAST(NULL AS BOOLEAN)"
    tl = "CAST(text_len AS DOUBLE)" if "text_len" in present else "CAST(NULL AS DOUBLE)"
    P, S = MS_PER_WEEK, MONDAY_SHIFT_MS

    def floordiv(x: str, d: int) -> str:  # SQL's // truncates toward zero; this floors
        return f"((({x}) - ((({x}) % {d}) + {d}) % {d}) // {d})"

    if ms is None:
        fn, per_ms = ("epoch_ns", 1_000_000) if ts_type.unit == "ns" else ("epoch_us", 1000)
        ms = floordiv(f"{fn}(timestamp)", per_ms)

    until_case = (f"WHEN w > {opts.until_week} THEN 'after_until'"
                  if opts.until_week is not None else "")
    con = duckdb.connect(config={"memory_limit": memory_limit} if memory_limit else {})
    try:
        # DuckDB (2.0.1) takes the Parquet min/max statistics, which leave NaN out, as proof
        # that a column holds no NaN, and folds isnan(rating) to false: a NaN rating then
        # counted as out of range instead of null. Without that optimizer it is evaluated.
        con.execute("SET disabled_optimizers = 'statistics_propagation'")
        quoted = "'" + path.replace("'", "''") + "'"
        con.execute(f"""
        CREATE TEMP VIEW cls AS
        WITH src AS (
            SELECT CAST(product_id AS VARCHAR) AS pid, {ms} AS ms,
                   CASE WHEN isnan(CAST(rating AS DOUBLE)) THEN NULL
                        ELSE CAST(rating AS DOUBLE) END AS r,
                   {hv} AS hv, {ver} AS ver, {tl} AS tl
            FROM read_parquet({quoted})),
        wk AS (SELECT *, {floordiv(f"ms + {S}", P)} AS w FROM src)
        SELECT *, CASE
                WHEN pid IS NULL THEN 'null_product_id'
                WHEN ms IS NULL THEN 'null_timestamp'
                WHEN ms < {TS_MIN_MS} OR ms >= {TS_MAX_MS} THEN 'timestamp_out_of_range'
                WHEN r IS NULL THEN 'null_rating'
                WHEN r < 1 OR r > 5 THEN 'rating_out_of_range'
                {until_case}
            END AS reason, CAST(floor(r + 0.5) AS INTEGER) AS star
        FROM wk""")
        # Two scans (counts, then the panel): a GROUPING SETS single pass measured 6x slower.
        counts = con.execute("SELECT reason, count(*) FROM cls GROUP BY reason").fetchall()
        by_reason = {reason: int(n) for reason, n in counts}
        rows_read = sum(by_reason.values())
        rejected = {k: v for k, v in by_reason.items() if k is not None}

        base = f"""
            SELECT pid, w, count(*) AS n, sum(r) AS rsum, avg(r) AS rmean, stddev_pop(r) AS rstd,
                   {", ".join(f"count_if(star = {s}) AS star_{s}" for s in range(1, 6))},
                   sum(hv) AS hv, count_if(ver) AS vt, count(ver) AS vk,
                   coalesce(sum(tl), 0) AS tls, count(tl) AS tk
            FROM cls WHERE reason IS NULL GROUP BY pid, w"""
        if opts.dense:
            end = str(opts.until_week) if opts.until_week is not None else "max(w)"
            base = f"""
            WITH b AS ({base}),
            grid AS (SELECT pid, unnest(range(min(w), {end} + 1)) AS w FROM b GROUP BY pid)
            SELECT grid.pid, grid.w, coalesce(n, 0) AS n, coalesce(rsum, 0) AS rsum,
                   rmean, rstd, {", ".join(f"coalesce(star_{s}, 0) AS star_{s}"
                                           for s in range(1, 6))},
                   coalesce(hv, 0) AS hv, coalesce(vt, 0) AS vt, coalesce(vk, 0) AS vk,
                   coalesce(tls, 0) AS tls, coalesce(tk, 0) AS tk
            FROM grid LEFT JOIN b USING (pid, w)"""
        part = "PARTITION BY pid ORDER BY w"
        win = ",\n".join(
            f"sum(n) OVER ({part} RANGE BETWEEN {k - 1} PRECEDING AND CURRENT ROW) AS n_r{k}, "
            f"sum(rsum) OVER ({part} RANGE BETWEEN {k - 1} PRECEDING AND CURRENT ROW) AS rs_r{k}"
            for k in opts.windows)
        lag = ",\n".join(
            f"coalesce(sum(n) OVER ({part} RANGE BETWEEN {L} PRECEDING AND {L} PRECEDING), 0)"
            f" AS lag{L}" for L in opts.lags)
        B = EWM_SEGMENT
        a, lq = repr(EWM_ALPHA), repr(EWM_LOG_Q)
        # first: the frame's first row, so that every window shares the one sort by (pid, w)
        g = f"""
        WITH f AS ({base}),
        g AS (
            SELECT *, {win}, {lag},
                   first(w) OVER ({part} ROWS UNBOUNDED PRECEDING) AS first,
                   sum(n) OVER ({part} ROWS UNBOUNDED PRECEDING) AS cum_n,
                   sum(rsum) OVER ({part} ROWS UNBOUNDED PRECEDING) AS cum_r,
                   max(CASE WHEN n > 0 THEN w END)
                       OVER ({part} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev,
                   {floordiv("w", B)} AS seg
            FROM f)"""
        ewm_sql = f"""
        , e AS (
            SELECT *, CAST(w - seg * {B} AS DOUBLE) AS x,
                   (CASE WHEN w = first THEN CAST(n AS DOUBLE) ELSE {a} * n END)
                       * exp(-CAST(w - seg * {B} AS DOUBLE) * {lq}) AS term
            FROM g),
        s AS (
            SELECT *, sum(term) OVER (PARTITION BY pid, seg ORDER BY w ROWS UNBOUNDED PRECEDING)
                AS s_cum FROM e),
        t AS (SELECT pid, seg + 1 AS seg, sum(term) AS prev_tot FROM e GROUP BY pid, seg)"""
        ewm_col = (f", exp(x * {lq}) * s_cum + coalesce(exp((x + {B}) * {lq}) * prev_tot, 0)"
                   " AS n_reviews_ewm")
        sql = f"""{g}{ewm_sql if opts.ewm else ""}
        SELECT pid AS product_id,
               DATE '1969-12-29' + CAST(7 * w AS INTEGER) AS week_start,
               CAST(n AS INTEGER) AS n_reviews,
               CASE WHEN n > 0 THEN rmean END AS rating_mean,
               CASE WHEN n > 0 THEN rstd END AS rating_std,
               {", ".join(f"CAST(star_{s} AS INTEGER) AS star_{s}" for s in range(1, 6))},
               CAST(hv AS BIGINT) AS helpful_votes,
               CASE WHEN vk > 0 THEN vt / vk END AS verified_share,
               CASE WHEN tk > 0 THEN tls / tk END AS text_len_mean,
               {", ".join(f"CAST(n_r{k} AS BIGINT) AS n_reviews_r{k}, "
                          f"CASE WHEN n_r{k} > 0 THEN rs_r{k} / n_r{k} END AS rating_mean_r{k}"
                          for k in opts.windows)},
               {", ".join(f"CASE WHEN w - {L} >= first THEN CAST(lag{L} AS INTEGER) END"
                          f" AS n_reviews_lag{L}" for L in opts.lags)},
               CAST(cum_n AS BIGINT) AS n_reviews_cum,
               cum_r / cum_n AS rating_mean_cum{ewm_col if opts.ewm else ""},
               CAST(w - first AS INTEGER) AS weeks_since_first,
               CAST(w - prev AS INTEGER) AS weeks_since_prev
        FROM {"s LEFT JOIN t USING (pid, seg)" if opts.ewm else "g"}
        ORDER BY pid, w"""
        table = _duckdb_arrow(con.sql(sql))
    finally:
        con.close()
    return _finish("duckdb", table, opts, rows_read, rejected)


#: name → implementation, for the benchmark and the tests.
TOOLS = {"pandas": panel_pandas, "pandas-rolling": panel_pandas_rolling, "polars": panel_polars,
         "duckdb": panel_duckdb}
