"""Slow, obviously-correct reference of SPEC-weekly.md: plain Python loops over pandas groups.

Written from the spec's text, line by line, without looking at the kernels: every fast path is
compared with :func:`naive_panel`.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pyarrow as pa

EPOCH_MONDAY = dt.date(1969, 12, 29)


def week_of_ms(ms: int) -> int:
    s = ms // 1000  # Python floors, also before 1970
    return (s + 259200) // 604800


def naive_panel(
    df: pd.DataFrame,
    windows=(4, 12, 52),
    lags=(1, 2, 4),
    dense: bool = False,
    until_week: int | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``df`` has product_id, ms (int epoch ms or None), rating and optional helpful_votes,
    verified, text_len. Returns the panel and the reject counts."""
    rejected = {"null_product_id": 0, "null_timestamp": 0, "timestamp_out_of_range": 0,
                "null_rating": 0, "rating_out_of_range": 0, "after_until": 0}
    keep = []
    for row in df.itertuples(index=False):
        r = row._asdict()
        ms = r["ms"]
        rating = r["rating"]
        if r["product_id"] is None or (isinstance(r["product_id"], float)
                                       and math.isnan(r["product_id"])):
            rejected["null_product_id"] += 1
        elif ms is None or (isinstance(ms, float) and math.isnan(ms)):
            rejected["null_timestamp"] += 1
        elif not (-9_222_854_400_000 <= int(ms) < 9_223_372_036_855):  # ns-timestamp range
            rejected["timestamp_out_of_range"] += 1
        elif rating is None or math.isnan(rating):
            rejected["null_rating"] += 1
        elif not (1.0 <= rating <= 5.0):
            rejected["rating_out_of_range"] += 1
        elif until_week is not None and week_of_ms(int(ms)) > until_week:
            rejected["after_until"] += 1
        else:
            keep.append(r)

    by_product: dict[str, dict[int, list[dict]]] = {}
    for r in keep:
        w = week_of_ms(int(r["ms"]))
        by_product.setdefault(r["product_id"], {}).setdefault(w, []).append(r)

    out = []
    alpha = 1 - 0.5 ** (1 / 4)
    for pid in sorted(by_product, key=lambda s: s.encode("utf-8")):
        weeks = by_product[pid]
        first, last = min(weeks), max(weeks)
        if dense:
            end = until_week if until_week is not None else last
            row_weeks = list(range(first, end + 1))
        else:
            row_weeks = sorted(weeks)

        def count(w, weeks=weeks):
            return len(weeks.get(w, []))

        def ratings(w, weeks=weeks):
            return [float(x["rating"]) for x in weeks.get(w, [])]

        ewm = None
        for w in row_weeks:
            rows = weeks.get(w, [])
            rs = ratings(w)
            n = len(rows)
            rec = {"product_id": pid, "week_start": EPOCH_MONDAY + dt.timedelta(weeks=w),
                   "n_reviews": n}
            if n:
                mean = sum(rs) / n
                rec["rating_mean"] = mean
                rec["rating_std"] = math.sqrt(sum((x - mean) ** 2 for x in rs) / n)
            else:
                rec["rating_mean"] = None
                rec["rating_std"] = None
            for s in range(1, 6):
                rec[f"star_{s}"] = sum(1 for x in rs if math.floor(x + 0.5) == s)
            rec["helpful_votes"] = sum(int(x.get("helpful_votes") or 0) for x in rows)
            ver = [bool(x["verified"]) for x in rows
                   if x.get("verified") is not None and not pd.isna(x.get("verified"))]
            rec["verified_share"] = sum(ver) / len(ver) if ver else None
            tl = [int(x["text_len"]) for x in rows
                  if x.get("text_len") is not None and not pd.isna(x.get("text_len"))]
            rec["text_len_mean"] = sum(tl) / len(tl) if tl else None
            for k in windows:
                cnt = sum(count(v) for v in range(w - k + 1, w + 1))
                tot = sum(sum(ratings(v)) for v in range(w - k + 1, w + 1))
                rec[f"n_reviews_r{k}"] = cnt
                rec[f"rating_mean_r{k}"] = tot / cnt if cnt else None
            for L in lags:
                rec[f"n_reviews_lag{L}"] = None if w - L < first else count(w - L)
            past = [v for v in weeks if v <= w]
            cum_n = sum(count(v) for v in past)
            rec["n_reviews_cum"] = cum_n
            rec["rating_mean_cum"] = sum(sum(ratings(v)) for v in past) / cum_n
            # EWM over every calendar week from the first, zero weeks included
            if ewm is None:
                ewm = float(n)
                ewm_week = w
            else:
                for v in range(ewm_week + 1, w + 1):
                    ewm = alpha * count(v) + (1 - alpha) * ewm
                ewm_week = w
            rec["n_reviews_ewm"] = ewm
            rec["weeks_since_first"] = w - first
            earlier = [v for v in weeks if v < w]
            rec["weeks_since_prev"] = w - max(earlier) if earlier else None
            out.append(rec)
    cols = (["product_id", "week_start", "n_reviews", "rating_mean", "rating_std"]
            + [f"star_{s}" for s in range(1, 6)]
            + ["helpful_votes", "verified_share", "text_len_mean"]
            + [c for k in windows for c in (f"n_reviews_r{k}", f"rating_mean_r{k}")]
            + [f"n_reviews_lag{L}" for L in lags]
            + ["n_reviews_cum", "rating_mean_cum", "n_reviews_ewm", "weeks_since_first",
               "weeks_since_prev"])
    return pd.DataFrame(out, columns=cols), rejected


def table_to_naive_input(table: pa.Table) -> pd.DataFrame:
    """Normalized Arrow table -> the reference's plain rows (``ms`` as Python int or None)."""
    ts = table.column("timestamp")
    if pa.types.is_timestamp(ts.type):
        unit = ts.type.unit
        raw = ts.cast(pa.int64()).to_pylist()
        div = {"s": None, "ms": 1, "us": 1000, "ns": 1_000_000}[unit]
        ms = [None if v is None else (v * 1000 if div is None else v // div) for v in raw]
    else:
        ms = ts.to_pylist()
    data = {"product_id": table.column("product_id").cast(pa.string()).to_pylist()
            if not pa.types.is_dictionary(table.column("product_id").type)
            else table.column("product_id").to_pylist(),
            "ms": ms,
            "rating": [None if v is None else float(v)
                       for v in table.column("rating").to_pylist()]}
    for c in ("helpful_votes", "verified", "text_len"):
        if c in table.column_names:
            data[c] = table.column(c).to_pylist()
    df = pd.DataFrame(data, dtype=object)
    df["rating"] = [np.nan if v is None else v for v in data["rating"]]
    return df


def assert_panel_equal(actual: pa.Table, expected: pd.DataFrame, rtol: float = 1e-9) -> None:
    """Column by column: names, row count, exact counts and nulls, floats to ``rtol``."""
    assert actual.column_names == list(expected.columns), (actual.column_names,
                                                           list(expected.columns))
    assert actual.num_rows == len(expected), (actual.num_rows, len(expected))
    for name in expected.columns:
        got = actual.column(name).to_pylist()
        exp = expected[name].tolist()
        for i, (g, e) in enumerate(zip(got, exp)):
            e = None if e is None or (isinstance(e, float) and math.isnan(e)) else e
            if e is None or g is None:
                assert g is None and e is None, (name, i, g, e, expected.iloc[i].to_dict())
            elif isinstance(e, float):
                assert math.isclose(g, e, rel_tol=rtol, abs_tol=1e-12), (name, i, g, e)
            else:
                assert g == e, (name, i, g, e, expected.iloc[i].to_dict())
