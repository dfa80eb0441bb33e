"""The weekly panel with pandas (+ numpy), two ways: :func:`panel_pandas` (windows with
``np.searchsorted`` on packed keys) and :func:`panel_pandas_rolling` (``groupby().rolling()``, the
way the users' scripts do it). See the package's docstring.
"""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pyarrow as pa

from rcfast.baselines.spec import (
    _SEG_SHIFT,
    EWM_ALPHA,
    EWM_LOG_Q,
    EWM_SEGMENT,
    MONDAY_SHIFT_MS,
    MS_PER_WEEK,
    _check_path,
    _finish,
    _input_columns,
    _Options,
)
from rcfast.schema import TS_MAX_MS, TS_MIN_MS  # times outside: timestamp_out_of_range


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
