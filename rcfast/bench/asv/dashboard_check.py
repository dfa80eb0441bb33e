"""``check-dashboard``: publish the dashboard into a temporary directory, serve it locally and
check it in headless chromium (the landing links, and each key view draws its data).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rcfast.bench.asv.machines import _log, _stored_machine, add_machine_argument
from rcfast.bench.asv.publish import VIEWS, cmd_publish
from rcfast.bench.options import make_parser

#: Headless chromium without a desktop session, network services or a shared profile.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if exe := shutil.which(name):
            return exe
    return None


def chromium(url: str, *args: str, budget_ms: int = 60_000, timeout: float = 300) -> str:
    """Load ``url`` in headless chromium (``args``: e.g. ``--dump-dom``); its stdout. The
    virtual time budget lets the page's scripts load the JSON and draw before the dump."""
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("chromium is not installed (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="rcfast-chromium-") as profile:
        proc = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                               f"--virtual-time-budget={budget_ms}", *args, url],
                              capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-1500:]}")
    return proc.stdout


@contextlib.contextmanager
def serve(html_dir: Path) -> Iterator[str]:
    """Serve ``html_dir`` on a free local port (asv's pages load their data with XHR, which
    browsers refuse for file:// URLs); yields the base URL."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(Quiet, directory=str(html_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _active_buttons(dom: str) -> list[str]:
    return re.findall(r'<a[^>]*class="[^"]*\bactive\b[^"]*"[^>]*>([^<]*)', dom)


#: Strongly coloured pixels a graph with data has at least, the legend left out (one commit's
#: markers give ~100, lines across the window thousands, an empty plot 0).
MIN_DRAWN_PIXELS = 60


def coloured_pixels(png: Path) -> int:
    """Pixels of the plot area (right of asv's 200-px navigation, below its navbar) whose
    colour is saturated: the series' lines and markers, not the greys of axes and text; the
    legend's colour boxes (top left of the plot, up to 8 entries) are masked."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    sat = (a.max(axis=2) - a.min(axis=2)) > 80
    sat[:60, :] = False
    sat[:, :200] = False
    sat[100:260, 250:300] = False
    return int(sat.sum())


def check_dashboard(base_url: str, machine: str) -> list[str]:
    """What is wrong with the published dashboard at ``base_url``, as seen by chromium."""
    problems = []
    dom = chromium(base_url + "index.html", "--dump-dom")
    if "continental origin of swallow" in dom or "benchmark-group" not in dom:
        problems.append("landing page: asv's scripts did not run or load the index "
                        f"(DOM: {dom[:300]!r})")
    links = re.findall(r'class="rcfast-view" href="([^"]+)"', dom)
    want = ["#" + route.format(m=machine).replace("&", "&amp;") for _, route in VIEWS]
    if links != want:
        problems.append(f"landing page: the view links are {links}, expected {want}")
    for title, route in VIEWS:
        if not route.startswith(("ratios.", "weekly.", "combine.")):
            continue
        url = base_url + "index.html#" + route.format(m=machine)
        dom = chromium(url, "--dump-dom")
        active = _active_buttons(dom)
        if '<canvas class="flot-base"' not in dom:
            problems.append(f"{title}: no graph drawn ({url})")
        if "log-scale" not in re.findall(r'<a id="([^"]+)"[^>]*\bactive\b', dom):
            problems.append(f"{title}: the y axis is not on a log scale")
        axis = re.search(r"x-axis=(\w+)", route)
        if axis and axis.group(1) not in active:
            problems.append(f"{title}: x axis is not {axis.group(1)} (active: {active})")
        if machine not in active:
            problems.append(f"{title}: machine {machine} not selected (active: {active})")
        labels = re.findall(r'legendLabel">([^<]*)', dom)
        if not labels:
            problems.append(f"{title}: the graph has no series")
        # Flot draws the data on a canvas, out of the DOM's sight: count the plot area's
        # strongly coloured pixels in a screenshot (the legend's boxes alone give ~300)
        with tempfile.TemporaryDirectory(prefix="rcfast-shot-") as d:
            shot = Path(d) / "view.png"
            chromium(url, "--window-size=1400,900", f"--screenshot={shot}")
            drawn = coloured_pixels(shot)
        if drawn < MIN_DRAWN_PIXELS:
            problems.append(f"{title}: no data drawn ({drawn} coloured pixels in the plot)")
    return problems


def commits_with_results(html_dir: Path, benchmark: str) -> int:
    """Commits that hold at least one value of ``benchmark`` in the published summary."""
    data = json.loads((html_dir / "graphs" / "summary" / f"{benchmark}.json").read_text())
    return sum(1 for _rev, value in data if value is not None)


def cmd_check_dashboard(argv: list[str]) -> int:
    p = make_parser(
        "python -m rcfast.bench asv check-dashboard",
        "Publish the dashboard into a temporary directory, serve it locally and check it in\n"
        "headless chromium: the landing page's links, and every key view draws its data on a\n"
        "log scale for the machine. Exit 1 with the problems found; optionally screenshot the\n"
        "key views.",
        ["python -m rcfast.bench asv check-dashboard",
         "python -m rcfast.bench asv check-dashboard --screenshot docs/asv-dashboard.png"])
    add_machine_argument(p, "the first with stored results")
    p.add_argument("--screenshot", type=Path, default=None, metavar="FILE",
                   help="also write a PNG of the landing page, and beside it NAME-weekly.png, the "
                        "weekly step by tool (default: none)")
    args = p.parse_args(argv)
    machine = args.machine or _stored_machine()
    with tempfile.TemporaryDirectory(prefix="rcfast-asv-html-") as tmp:
        html = Path(tmp)
        if rc := cmd_publish(["--machine", machine, "-o", str(html)]):
            return rc
        with serve(html) as base:
            problems = check_dashboard(base, machine)
            if args.screenshot:
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                weekly = args.screenshot.with_name(args.screenshot.stem + "-weekly.png")
                for path, route in ((args.screenshot, ""), (weekly, "#" + VIEWS[2][1])):
                    chromium(base + "index.html" + route.format(m=machine),
                             "--window-size=1400,900", f"--screenshot={path.resolve()}")
                    _log(f"screenshot: {path}")
        n = commits_with_results(html, "weekly.WeeklyStep.time_weekly")
    print(f"weekly.WeeklyStep.time_weekly: {n} commits of history on {machine}")
    for line in problems:
        print("PROBLEM:", line)
    return 1 if problems else 0
