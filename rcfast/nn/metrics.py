"""Baselines and M5-style metrics for the weekly review-count forecasts.

At a forecast origin ``o`` (targets weeks ``o .. o+H-1``), for each product with a review before
``o``:

* **naive**: the last week's count, ``y[o-1]``, for every horizon week.
* **seasonal_naive**: the count 52 weeks before each target week, ``y[o+h-52]`` (0 before the
  product's first review).
* **ma4**, **ma12**: the mean of the last 4 / 12 weeks, counting only weeks since the product's
  first review (a product launched 2 weeks ago is averaged over 2 weeks, not 12).
* **zero**: 0.

Metrics over a subset of products, all horizon weeks pooled:

* **MAE**: mean |y - f| over series x weeks.
* **RMSSE**: per series sqrt(mean_h (y-f)^2 / d2), d2 = mean of (y_t - y_{t-1})^2 over the
  in-sample weeks from the series' first review to ``o-1`` (weeks without reviews are 0); then the
  plain mean over series.
* **MASE**: likewise with absolute errors and d1 = mean |y_t - y_{t-1}|.

Series with no in-sample difference (first review in week ``o-1``) or a zero denominator (one
review week then nothing is not zero: the drop counts) are left out of RMSSE and MASE; their
number is reported in the details.

Subsets: **all** (every product with a review before ``o``) and **head** (at least
``head_min_reviews`` reviews in weeks ``o-52 .. o-1``).
"""

from __future__ import annotations

import numpy as np

BASELINES = ("naive", "seasonal_naive", "ma4", "ma12", "zero")
METHODS = ("model",) + BASELINES
METRICS = ("mae", "rmsse", "mase")


def history_matrix(panel, prods: np.ndarray, origin: int, n_weeks: int) -> np.ndarray:
    """Dense counts [P, n_weeks] of weeks ``origin-n_weeks .. origin-1`` (zeros where none),
    from the sparse rows (no dense store needed)."""
    return _window_from_sparse(panel, prods, origin - n_weeks, n_weeks)


def actual_matrix(panel, prods: np.ndarray, origin: int, horizon: int) -> np.ndarray:
    """Counts [P, H] of weeks ``origin .. origin+H-1``."""
    return _window_from_sparse(panel, prods, origin, horizon)


def _window_from_sparse(panel, prods: np.ndarray, w0: int, n: int) -> np.ndarray:
    out = np.zeros((len(prods), n), dtype=np.float64)
    sel = (panel.week >= w0) & (panel.week < w0 + n)
    pos = np.full(panel.n_products, -1, dtype=np.int64)
    pos[prods] = np.arange(len(prods))
    c, w, y = panel.code[sel], panel.week[sel], panel.count[sel]
    row = pos[c]
    ok = row >= 0
    out[row[ok], (w[ok] - w0)] = y[ok]
    return out


def naive_denominators(panel, origin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per product: (d1 = mean |diff|, d2 = mean diff^2, n_diffs) of the dense weekly series from
    its first review week to ``origin-1``, computed in closed form from the sparse rows."""
    P = panel.n_products
    sel = panel.week < origin
    c, w, y = panel.code[sel], panel.week[sel], panel.count[sel]
    s_abs = np.zeros(P)
    s_sq = np.zeros(P)
    if len(c):
        same = c[1:] == c[:-1]
        gap = w[1:] - w[:-1]
        a, b = y[:-1], y[1:]
        adj = same & (gap == 1)
        far = same & (gap > 1)
        # adjacent weeks: |b - a|; across a gap: a -> 0 ... 0 -> b
        np.add.at(s_abs, c[1:][adj], np.abs(b - a)[adj])
        np.add.at(s_sq, c[1:][adj], ((b - a) ** 2)[adj])
        np.add.at(s_abs, c[1:][far], (a + b)[far])
        np.add.at(s_sq, c[1:][far], (a * a + b * b)[far])
        # after each product's last row before the origin: drop to 0 if weeks remain
        last = np.r_[~same, True]
        lc, lw, ly = c[last], w[last], y[last]
        tail = lw < origin - 1
        np.add.at(s_abs, lc[tail], ly[tail])
        np.add.at(s_sq, lc[tail], (ly * ly)[tail])
    first = panel.first_week
    n_diff = np.clip(origin - 1 - first, 0, None).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.where(n_diff > 0, s_abs / n_diff, np.nan)
        d2 = np.where(n_diff > 0, s_sq / n_diff, np.nan)
    return d1, d2, n_diff


def baseline_forecasts(hist52: np.ndarray, weeks_known: np.ndarray,
                       horizon: int) -> dict[str, np.ndarray]:
    """Baselines [P, H] from the last 52 weeks ``hist52`` [P, 52] and the number of weeks since
    each product's first review (``weeks_known``, >= 1)."""
    P = hist52.shape[0]
    out = {"naive": np.repeat(hist52[:, -1:], horizon, axis=1)}
    # target week o+h minus 52 weeks is column h of the 52-week history
    out["seasonal_naive"] = hist52[:, :horizon].copy()
    for k in (4, 12):
        n = np.minimum(weeks_known, k).astype(np.float64)
        tot = np.zeros(P)
        for j in range(1, k + 1):
            tot += np.where(j <= n, hist52[:, -j], 0.0)
        out[f"ma{k}"] = np.repeat((tot / np.maximum(n, 1))[:, None], horizon, axis=1)
    out["zero"] = np.zeros((P, horizon))
    return out


def score(y: np.ndarray, f: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> dict[str, float]:
    err = f - y
    ok1 = np.isfinite(d1) & (d1 > 0)
    ok2 = np.isfinite(d2) & (d2 > 0)
    mae = float(np.abs(err).mean()) if err.size else float("nan")
    rmsse = float(np.sqrt((err[ok2] ** 2).mean(1) / d2[ok2]).mean()) if ok2.any() else float("nan")
    mase = float((np.abs(err[ok1]).mean(1) / d1[ok1]).mean()) if ok1.any() else float("nan")
    return {"mae": mae, "rmsse": rmsse, "mase": mase}


def evaluate(panel, origin: int, horizon: int, model_forecast: np.ndarray | None,
             prods: np.ndarray, head_min_reviews: int = 26) -> tuple[dict, dict]:
    """The eval.json body (test_weeks filled by the caller) and details.

    ``prods``: products with a review before ``origin`` (row order of ``model_forecast``)."""
    hist = history_matrix(panel, prods, origin, 52)
    y = actual_matrix(panel, prods, origin, horizon)
    known = origin - panel.first_week[prods]
    fc = baseline_forecasts(hist, known, horizon)
    if model_forecast is not None:
        fc = {"model": np.asarray(model_forecast, dtype=np.float64), **fc}
    d1, d2, _ = naive_denominators(panel, origin)
    d1, d2 = d1[prods], d2[prods]
    head = hist.sum(1) >= head_min_reviews
    subsets = {"all": np.ones(len(prods), dtype=bool), "head": head}
    body: dict = {"horizon": horizon, "subsets": {}}
    details: dict = {}
    for name, m in subsets.items():
        s: dict = {"series": int(m.sum())}
        per = {k: score(y[m], v[m], d1[m], d2[m]) for k, v in fc.items()}
        for metric in METRICS:
            s[metric] = {k: per[k][metric] for k in fc}
        body["subsets"][name] = s
        details[name] = {
            "series": int(m.sum()),
            "scaled_series_rmsse": int((m & np.isfinite(d2) & (d2 > 0)).sum()),
            "scaled_series_mase": int((m & np.isfinite(d1) & (d1 > 0)).sum()),
            "actual_mean": float(y[m].mean()) if m.any() else float("nan"),
        }
    return body, details


def best_baseline(s: dict, metric: str) -> tuple[str, float]:
    vals = {k: v for k, v in s[metric].items() if k != "model" and np.isfinite(v)}
    k = min(vals, key=vals.get)
    return k, vals[k]


def table(ev: dict) -> str:
    """A Markdown table of eval.json, with the model's gain over the best baseline."""
    lines = []
    for sub, s in ev["subsets"].items():
        lines.append(f"\n**{sub}** ({s['series']} series, test weeks "
                     f"{ev.get('test_weeks', ['?', '?'])[0]} .. "
                     f"{ev.get('test_weeks', ['?', '?'])[1]}, H = {ev['horizon']})\n")
        methods = list(s["mae"].keys())
        lines.append("| metric | " + " | ".join(methods) + " | best baseline | model vs best |")
        lines.append("|---" * (len(methods) + 3) + "|")
        for metric in METRICS:
            row = [f"{s[metric][k]:.4f}" for k in methods]
            bname, bval = best_baseline(s, metric)
            gain = ""
            if "model" in s[metric] and bval > 0:
                gain = f"{100 * (1 - s[metric]['model'] / bval):+.1f}%"
            lines.append(f"| {metric.upper()} | " + " | ".join(row) + f" | {bname} | {gain} |")
    return "\n".join(lines) + "\n"
