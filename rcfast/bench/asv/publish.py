"""``publish``: asv's dashboard with a landing page that links the views that matter, its CDN
scripts and styles served from asv_bench/vendor.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from rcfast.bench.asv.machines import (
    ASV_DIR,
    _log,
    _stored_machine,
    add_machine_argument,
    machine_names,
)
from rcfast.bench.options import make_parser

#: The landing page's links: (title, hash route). ``{m}`` is the machine. asv's graph page reads
#: ``p-<param>=<value as the param's repr>`` as a parameter choice (a bare ``<param>=`` would
#: filter on an environment variable of that name and match nothing).
VIEWS = [
    ("Speed-up over pandas, Polars, DuckDB: weekly step, across commits (log)",
     "ratios.WeeklySpeedup.track_speedup?machine={m}&y-axis-scale=log"),
    ("Speed-up over pandas, Polars, DuckDB: combine step, across commits (log)",
     "ratios.CombineSpeedup.track_speedup?machine={m}&y-axis-scale=log"),
    # one line per tool: asv draws a category x axis (x-axis=tool) as bars, which stay empty
    # in chromium with this asv, so "by tool" is the tools' lines over the commits
    ("Weekly step: rcfast vs pandas and pandas-rolling by tool and size, across commits (log)",
     "weekly.WeeklyStep.time_weekly?machine={m}&y-axis-scale=log&p-mode=%27sparse%27"),
    ("Weekly step: rcfast vs the pandas baselines by input size (log)",
     "weekly.WeeklyStep.time_weekly?machine={m}&x-axis=rows&y-axis-scale=log&p-mode=%27sparse%27"),
    ("Combine step: rcfast vs pandas, pyarrow, DuckDB, Polars by tool, across commits (log)",
     "combine.Combine.time_combine?machine={m}&y-axis-scale=log"),
    ("Regressions asv found", "regressions"),
]
_MARK = "<!-- rcfast-views -->"


def views_html(machine: str) -> str:
    items = "".join(f'<li><a class="rcfast-view" href="#{route.format(m=machine)}">{title}</a>'
                    f"</li>" for title, route in VIEWS)
    return (f'{_MARK}<div id="rcfast-views" style="margin:8px 16px 0;'
            f'padding:6px 12px;border:1px solid #ccc;background:#f8f8f8">'
            f"<b>The views that matter</b> "
            f"(machine {machine}; docs/asv.md)<ul style=\"margin:4px 0\">{items}</ul></div>")


def add_views(index: Path, machine: str) -> None:
    """Put the links at the top of asv's landing page (idempotent)."""
    html = index.read_text()
    html = re.sub(re.escape(_MARK) + r'<div id="rcfast-views".*?</div>', "", html, flags=re.S)
    # inside the landing page's own container, which asv shows only on the landing page
    m = re.search(r'<div[^>]*id="summarygrid-display"[^>]*>', html) \
        or re.search(r"<body[^>]*>", html)  # asv's layout changed: the top of every page
    pos = m.end()
    index.write_text(html[:pos] + views_html(machine) + html[pos:])


VENDOR = ASV_DIR / "vendor"
_CDN_TAG = re.compile(r'<(script|link)\b[^>]*?(?:src|href)="(https://[^"]+)"[^>]*>')


def _vendored(url: str) -> str | None:
    """The local copy (path relative to the dashboard) of a CDN file asv's page loads."""
    name = url.rsplit("/", 1)[-1]
    for cand in (name, name.replace(".min.js", ".js"), f"css/{name}"):
        if (VENDOR / cand).is_file():
            return f"vendor/{cand}"
    return None


def vendor_assets(html_dir: Path) -> list[str]:
    """Serve asv's CDN scripts and styles from ``html_dir/vendor``; return the URLs left on a
    CDN (none with this asv)."""
    index = html_dir / "index.html"
    html = index.read_text()
    left = []

    def local(m: re.Match) -> str:
        tag, url = m.group(1), m.group(2)
        rel = _vendored(url)
        if rel is None:
            left.append(url)
            return m.group(0)
        if tag == "script":
            return f'<script src="{rel}" onerror="js_load_failure()">'
        return f'<link rel="stylesheet" href="{rel}">'

    html = _CDN_TAG.sub(local, html)
    shutil.copytree(VENDOR, html_dir / "vendor", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.md", "*.txt"))
    index.write_text(html)
    return left


def cmd_publish(argv: list[str]) -> int:
    p = make_parser(
        "python -m rcfast.bench asv publish",
        "asv publish of the stored results, with a landing page that links the views that\n"
        "matter (for one machine) and asv's scripts served from asv_bench/vendor.",
        ["python -m rcfast.bench asv publish",
         "python -m rcfast.bench asv publish --machine epyc-2c-shared -o /tmp/dashboard"])
    add_machine_argument(p, "the one asv knows, else the first with stored results")
    p.add_argument("-o", "--html-dir", type=Path, default=ASV_DIR / "html", metavar="DIR",
                   help="where the dashboard is written (default: asv_bench/html)")
    args = p.parse_args(argv)
    machine = args.machine or (machine_names() + [_stored_machine()])[0]
    rc = subprocess.run(["asv", "publish", "--no-pull", "-o", str(args.html_dir)],
                        cwd=ASV_DIR).returncode
    if rc:
        return rc
    add_views(args.html_dir / "index.html", machine)
    for url in vendor_assets(args.html_dir):
        _log(f"warning: {url} has no local copy in asv_bench/vendor: the dashboard needs the "
             "internet for it")
    _log(f"dashboard: {args.html_dir}/index.html (serve it: asv preview, or "
         f"python -m http.server -d {args.html_dir})")
    return 0
