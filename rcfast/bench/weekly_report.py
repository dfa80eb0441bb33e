"""The results of ``python -m rcfast.bench weekly``: one :class:`Result` per (mix, size, tool),
the Markdown table and the time-against-rows plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Result:
    tool: str
    rows: int
    ok: bool
    mix: str = "demo"  #: the input's product mix: "demo" (the generator's) or a catalog size
    wall_s: float | None = None
    compute_s: float | None = None
    peak_rss_gb: float | None = None
    panel_rows: int | None = None
    agrees: bool | None = None  #: with the reference tool's panel (None: not compared)
    note: str = ""


@dataclass
class Report:
    machine: dict
    mode: str = "sparse"
    results: list[Result] = field(default_factory=list)


def format_table(report: Report) -> str:
    m = report.machine
    lines = [f"weekly panel ({report.mode}), windows 4,12,52, lags 1,2,4",
             (f"machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
              f"{m['ram_gb']} GiB RAM, {m['os']}"),
             "",
             (f"| {'mix':>9s} | {'tool':14s} | {'rows':>12s} | {'panel rows':>11s} | "
              f"{'wall s':>8s} | {'compute s':>9s} | {'peak RSS GB':>11s} | {'× rcfast':>8s} | "
              f"{'× wall':>6s} | agrees |"),
             "| " + " | ".join(["-" * 9, "-" * 14, "-" * 12, "-" * 11, "-" * 8, "-" * 9, "-" * 11,
                                "-" * 8, "-" * 6, "------"]) + " |"]
    base = {(r.mix, r.rows): r for r in report.results if r.tool == "rcfast" and r.ok}
    for r in report.results:
        if not r.ok:
            lines.append(f"| {r.mix:>9s} | {r.tool:14s} | {r.rows:>12,} | {'—':>11s} | "
                         f"{'—':>8s} | {'—':>9s} | {'—':>11s} | {'—':>8s} | {'—':>6s} | "
                         f"{'—':6s} | {r.note}")
            continue
        ref = base.get((r.mix, r.rows))
        ratio = f"{r.compute_s / ref.compute_s:.1f}" if ref else "—"
        wall = f"{r.wall_s / ref.wall_s:.1f}" if ref else "—"
        agrees = {True: "yes", False: "NO", None: "—"}[r.agrees]
        panel = f"{r.panel_rows:,}" if r.panel_rows is not None else "—"
        lines.append(f"| {r.mix:>9s} | {r.tool:14s} | {r.rows:>12,} | {panel:>11s} | "
                     f"{r.wall_s:>8.2f} | {r.compute_s:>9.2f} | {r.peak_rss_gb:>11.2f} | "
                     f"{ratio:>8s} | {wall:>6s} | {agrees:6s} |")
    lines.append("")
    lines.append("mix: the generator's product catalog (demo: rows / 12 products; a number: that "
                 "many catalog products); compute s: read Parquet + panel + write Parquet, in the "
                 "tool's process; wall s: the whole process; × rcfast / × wall: compute s / wall s "
                 "over rcfast's")
    return "\n".join(lines)


def plot(report: Report, path: Path, tools) -> None:
    """Compute seconds against input rows, one line per tool (in the order of ``tools``), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for tool in tools:
        pts = sorted((r.rows, r.compute_s) for r in report.results if r.tool == tool and r.ok)
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", label=tool)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("input reviews (rows)")
    ax.set_ylabel("seconds (read + weekly panel + write)")
    m = report.machine
    ax.set_title(f"Weekly panel, {m['usable_cores']} cores: {m['cpu'][:40]}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
