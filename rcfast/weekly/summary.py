"""The run's summary: what was read, kept, set aside and written, as JSON and as text."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import pyarrow as pa

from rcfast import SPEC_VERSION, __version__
from rcfast.weekly.load import Rejects
from rcfast.weekly.panel import PanelOptions, PanelStats
from rcfast.schema import PLAUSIBLE_MAX_MS, PLAUSIBLE_MIN_MS

#: Weeks outside these dates are aggregated (the spec sets aside only unreadable times) but
#: flagged in the summary: they are the trace of a unit error more often than of a review.
PLAUSIBLE_FIRST = dt.date(1970, 1, 1) + dt.timedelta(milliseconds=PLAUSIBLE_MIN_MS)
PLAUSIBLE_END = dt.date(1970, 1, 1) + dt.timedelta(milliseconds=PLAUSIBLE_MAX_MS)


def make_summary(args: argparse.Namespace, popts: PanelOptions, paths: list[Path],
                 rows_read: int, rej: Rejects, stats: PanelStats, weeks: tuple,
                 arrangement: dict) -> dict:
    mm = {"min": weeks[0], "max": weeks[1]}
    warnings = []
    if mm["min"] and (mm["min"] < PLAUSIBLE_FIRST or mm["max"] >= PLAUSIBLE_END):
        warnings.append(f"the panel's weeks run from {mm['min']} to {mm['max']}: review dates "
                        "before 1900 or after 2099 usually mean a timestamp in another unit "
                        "(see --timestamp-unit) or a wrong column (--map timestamp=COLUMN)")
    if rows_read == 0:
        warnings.append("the input holds no rows, so the panel is empty: check the input path "
                        "or glob and that the files are not empty")
    summary = {
        "rcfast_version": __version__,
        "spec_version": SPEC_VERSION,
        "rows_read": rows_read,
        "rows_aggregated": stats.rows_aggregated,
        "rows_rejected": rej.total,
        "rejected": {k: v for k, v in rej.counts.items()},
        "rejected_examples": rej.examples,
        "products": stats.products,
        "panel_rows": stats.panel_rows,
        "first_week": str(mm["min"]) if mm["min"] else None,
        "last_week": str(mm["max"]) if mm["max"] else None,
        "warnings": warnings,
        # this process's peak so far (with Dask: the client's; workers report none)
        "peak_rss_bytes": _peak_rss(),
        "inputs": [str(p) for p in paths],
        "output": str(args.output),
        "options": {
            "dense": popts.dense,
            "until": args.until,
            "windows": list(popts.windows),
            "lags": list(popts.lags),
            "map": args.map,
            "timestamp_unit": args.timestamp_unit,
            "strict": args.strict,
            **arrangement,
        },
    }
    if summary["rows_read"] != summary["rows_aggregated"] + summary["rows_rejected"]:
        raise RuntimeError(f"row accounting broke: {summary}")  # a bug, never user input
    return summary


def _peak_rss() -> int | None:
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * (1 if sys.platform == "darwin" else 1024)


def print_summary(summary: dict, timings: dict[str, float], written: list[Path],
                  file=None) -> None:
    w = 28
    lines = [
        f"rcfast.weekly {summary['rcfast_version']} (spec v{summary['spec_version']})",
        f"{'rows read':<{w}}{summary['rows_read']:>14,}",
        f"{'rows aggregated':<{w}}{summary['rows_aggregated']:>14,}",
        f"{'rows set aside':<{w}}{summary['rows_rejected']:>14,}",
    ]
    for k, v in summary["rejected"].items():
        if v:
            lines.append(f"{'  ' + k:<{w}}{v:>14,}")
    lines += [
        f"{'products':<{w}}{summary['products']:>14,}",
        f"{'panel rows':<{w}}{summary['panel_rows']:>14,}"
        + ("  (dense)" if summary["options"]["dense"] else "  (sparse)"),
        f"{'weeks':<{w}}{summary['first_week']} .. {summary['last_week']}",
        f"{'arrangement':<{w}}{summary['options']['workers']} worker(s) x "
        f"{summary['options']['threads']} thread(s)",
        "time: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()),
    ]
    for p in written:
        size = (sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir()
                else p.stat().st_size)
        lines.append(f"wrote {p} ({size / 1e6:,.1f} MB)")
    lines += [f"warning: {w}" for w in summary["warnings"]]
    if summary["rows_rejected"]:
        ex = summary["rejected_examples"][0]
        lines.append(f"first row set aside: {ex['file']} row {ex['row']} ({ex['reason']}); "
                     "all examples in the summary JSON")
    print("\n".join(lines), file=file or sys.stdout)


def print_preview(table: pa.Table, file=None) -> None:
    """The last weeks of the most-reviewed product: what a panel row holds, at a glance."""
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return
    cum = table.column("n_reviews_cum")
    top = table.column("product_id")[pc.index(cum, pc.max(cum)).as_py()].as_py()
    mine = table.filter(pc.equal(table.column("product_id"), top))
    rows = mine.slice(max(0, mine.num_rows - 6)).to_pylist()
    cols = ["week_start", "n_reviews", "rating_mean", "n_reviews_r4", "n_reviews_r52",
            "n_reviews_lag1", "n_reviews_ewm", "n_reviews_cum"]
    out = [f"\npreview: last weeks of the most-reviewed product {top}",
           "  ".join(f"{c:>14}" for c in cols)]

    def fmt(v):
        if v is None:
            return f"{'null':>14}"
        return f"{v:>14.3f}" if isinstance(v, float) else f"{v!s:>14}"

    out += ["  ".join(fmt(r[c]) for c in cols) for r in rows]
    out.append("read it with: pyarrow.dataset.dataset(OUTPUT).to_table() or "
               "pandas.read_parquet(OUTPUT)")
    print("\n".join(out), file=file or sys.stdout)

