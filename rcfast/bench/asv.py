"""``python -m rcfast.bench asv`` — record, backfill, compare and publish the asv history.

The results live in git (``asv_bench/results/<machine>/``, small JSON files), so the dashboard's
history travels with the code. Every commit is measured the same way: ``git worktree add`` of
that commit into a temporary directory outside the repository, then ``asv run --python=same
--set-commit-hash <commit>`` with ``ASV_PYTHONPATH`` pointing at the worktree, so the benchmarks
import that commit's ``rcfast`` (with the current benchmark suite, as asv does for old commits)
in this environment, whose baselines are pinned by ``constraints/bench.txt``. Nothing is checked
out in the working tree and nothing is installed.

Subcommands (``--help`` on each)::

    machine   register this machine with asv (name and a description of the hardware)
    run       record one or more commits (default HEAD)
    backfill  record a range of commits (a small benchmark selection, few repeats)
    compare   run the ratio benchmarks at two commits; exit 1 if a speed-up fell by more than
              the threshold
    publish   asv publish, with a landing page that links the views that matter
    check-dashboard  publish into a temporary directory and check it in headless chromium
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ASV_DIR = REPO / "asv_bench"
PINS = REPO / "constraints" / "bench.txt"

#: What ``backfill`` runs at each commit: rcfast's weekly step (sparse panel) and its speed-up
#: over the peers, ~2-3 min a commit on two busy cores (the baselines' own timings, with
#: pandas-rolling, add ~10 min; the whole suite ~40 min).
BACKFILL_BENCH = [r"^weekly\.WeeklyStep\.time_weekly\('rcfast', \d+, 'sparse'\)",
                  r"^ratios\.WeeklySpeedup"]
BACKFILL_ATTRS = ["rounds=1", "repeat=3", "warmup_time=0"]
#: ``compare`` runs only these.
RATIO_BENCH = [r"^ratios\."]
#: ``compare`` fails when a step's speed-ups (their geometric mean over the peers) fall by more
#: than this fraction: above the largest fall seen between runs of the same code on a loaded
#: two-core machine (18 %; a single peer's ratio fell by up to 51 %; docs/asv.md), below the
#: real fall it found (40 %).
DEFAULT_THRESHOLD = 0.30


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def read_pins(path: Path = PINS) -> dict[str, str]:
    """``name==version`` lines of a constraints file (comments and blanks skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep:
                raise ValueError(f"{path}: not a name==version pin: {line!r}")
            pins[name.strip().lower()] = version.strip()
    return pins


def pin_mismatches(pins: dict[str, str]) -> list[str]:
    """Installed versions that differ from the pins, as readable lines."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name, want in pins.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            have = "not installed"
        if have != want:
            out.append(f"{name}: pinned {want}, installed {have}")
    return out


def machine_names() -> list[str]:
    path = Path.home() / ".asv-machine.json"
    if not path.exists():
        return []
    return [k for k in json.loads(path.read_text()) if k != "version"]


def _default_machine(given: str | None) -> str:
    if given:
        return given
    names = machine_names()
    if len(names) != 1:
        raise SystemExit("error: name the machine with --machine (asv knows "
                         f"{names or 'none'}; register one with `python -m rcfast.bench asv "
                         "machine --machine NAME`)")
    return names[0]


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cmd_machine(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m rcfast.bench asv machine",
                                description="Register this machine with asv.")
    p.add_argument("--machine", required=True, help="the name results are stored under")
    p.add_argument("--note", default="",
                   help="what else a reader of the timings must know, e.g. 'shared with two "
                        "other benchmark runners'")
    args = p.parse_args(argv)
    import psutil

    cores = os.cpu_count() or 1
    cpu = f"{_cpu_model()}, {cores} cores" + (f"; {args.note}" if args.note else "")
    ram = f"{psutil.virtual_memory().total / 2**30:.0f}GB"
    os_name = f"{platform.system()} {platform.release()} ({platform.libc_ver()[0]})"
    return subprocess.run(["asv", "machine", "--machine", args.machine, "--os", os_name,
                           "--arch", platform.machine(), "--cpu", cpu, "--num_cpu", str(cores),
                           "--ram", ram, "--yes"], cwd=ASV_DIR).returncode


@contextlib.contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """A detached ``git worktree`` of ``commit`` in a temporary directory, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="rcfast-asv-wt-"))
    path = base / "src"
    _git("worktree", "add", "--detach", "--quiet", str(path), commit)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO,
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=REPO, capture_output=True)


def record(commit: str, machine: str, bench: list[str], attrs: list[str],
           extra: list[str] = ()) -> int:
    """``asv run --python=same --set-commit-hash`` of ``commit``'s code; asv's exit status."""
    full = _git("rev-parse", "--verify", f"{commit}^{{commit}}")
    _log(f"== {full[:10]} {_git('log', '-1', '--format=%s', full)[:70]}")
    with worktree(full) as src:
        env = dict(os.environ, ASV_PYTHONPATH=str(src))
        cmd = ["asv", "run", "--python=same", "--set-commit-hash", full, "--machine", machine,
               "--show-stderr"]
        for b in bench:
            cmd += ["-b", b]
        for a in attrs:
            cmd += ["-a", a]
        cmd += list(extra)
        return subprocess.run(cmd, cwd=ASV_DIR, env=env).returncode


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--machine", default=None,
                   help="asv machine name (default: the only one registered)")
    p.add_argument("--unpinned", action="store_true",
                   help="record even if the baselines differ from constraints/bench.txt")


def _check_pins(args) -> int:
    bad = pin_mismatches(read_pins())
    if bad and not args.unpinned:
        _log("error: the baselines differ from constraints/bench.txt, so their timings would "
             "not be comparable with the stored history:\n  " + "\n  ".join(bad) +
             "\ninstall them with: pip install -c constraints/bench.txt -r constraints/bench.txt"
             "\n(or pass --unpinned to record anyway)")
        return 2
    return 0


def cmd_run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m rcfast.bench asv run",
                                description="Record commits' results into asv_bench/results/.")
    p.add_argument("commits", nargs="*", default=["HEAD"])
    p.add_argument("-b", "--bench", action="append", default=None,
                   help="asv benchmark regex (repeatable; default: the whole suite)")
    p.add_argument("-a", "--attribute", action="append", default=[],
                   help="asv benchmark attribute override, e.g. repeat=3")
    _common(p)
    args = p.parse_args(argv)
    if rc := _check_pins(args):
        return rc
    machine = _default_machine(args.machine)
    worst = 0
    for c in args.commits:
        worst = max(worst, record(c, machine, args.bench or [], args.attribute))
    return worst


def pick_commits(revs: list[str], count: int) -> list[str]:
    """``count`` commits spread evenly over ``revs`` (oldest first), the newest always in."""
    if count >= len(revs):
        return revs
    step = (len(revs) - 1) / (count - 1) if count > 1 else 0
    idx = sorted({round(len(revs) - 1 - i * step) for i in range(count)})
    return [revs[i] for i in idx]


def cmd_backfill(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m rcfast.bench asv backfill",
                                description="Record a range of commits (first-parent history) "
                                            "with a small benchmark selection.")
    p.add_argument("range", help="git range, e.g. HEAD~20..HEAD")
    p.add_argument("--count", type=int, default=10, help="commits to record, spread evenly")
    p.add_argument("--skip-existing", action="store_true",
                   help="skip commits that already have results on this machine")
    p.add_argument("-b", "--bench", action="append", default=None,
                   help=f"asv benchmark regex (default {BACKFILL_BENCH})")
    _common(p)
    args = p.parse_args(argv)
    if rc := _check_pins(args):
        return rc
    machine = _default_machine(args.machine)
    revs = _git("rev-list", "--first-parent", "--reverse", args.range).split()
    chosen = pick_commits(revs, args.count)
    done = set()
    if args.skip_existing:
        done = {f.name.split("-")[0] for f in (ASV_DIR / "results" / machine).glob("*.json")}
    worst = 0
    for c in chosen:
        if c[:8] in done:  # asv names result files by the hash's first 8 characters
            continue
        worst = max(worst, record(c, machine, args.bench or BACKFILL_BENCH, BACKFILL_ATTRS))
    return worst


def ratios_at(commit: str, machine: str) -> dict[tuple[str, tuple], float]:
    """{(benchmark, params): value} of the ratio benchmarks stored for ``commit``; the newest
    result file wins where several hold the same benchmark."""
    from asv.results import iter_results_for_machine_and_hash

    out: dict[tuple[str, tuple], float] = {}
    found = sorted(iter_results_for_machine_and_hash(str(ASV_DIR / "results"), machine, commit),
                   key=lambda r: r.date or 0)
    for res in found:
        for key in res.get_all_result_keys():
            if not key.startswith("ratios."):
                continue
            import itertools

            params = res.get_result_params(key)
            values = res.get_result_value(key, params)
            for combo, v in zip(itertools.product(*params), values):
                if v is not None and v == v:
                    out[(key, combo)] = float(v)
    return out


def compare_ratios(old: dict, new: dict, threshold: float) -> tuple[list[str], list[str]]:
    """(report lines, failures). rcfast's time is the denominator of every ratio of a step, so
    a slower rcfast lowers all of them by the same factor while a peer's noise moves one: the
    gate is the geometric mean of the step's ratio changes over the peers, which fails when it
    falls below ``1 - threshold``. Each peer's change is reported, not gated."""
    lines, failures = [], []
    steps: dict[tuple, list[float]] = {}
    for key in sorted(set(old) | set(new)):
        name = f"{key[0].split('.')[1]}({', '.join(key[1])})"
        a, b = old.get(key), new.get(key)
        if a is None or b is None:
            lines.append(f"  {name:48s} {a or '-':>8} -> {b or '-':>8}  (missing)")
            continue
        lines.append(f"  {name:48s} {a:8.2f}x -> {b:8.2f}x  {b / a - 1:+7.1%}")
        steps.setdefault((key[0], key[1][1:]), []).append(b / a)
    for (bench, rest), changes in sorted(steps.items()):
        g = math.prod(changes) ** (1 / len(changes))
        step = f"{bench.split('.')[1]}({', '.join(rest)})"
        flag = "  REGRESSION" if g < 1 - threshold else ""
        lines.append(f"  {step:48s} geometric mean over {len(changes)} peers {g - 1:+7.1%}{flag}")
        if flag:
            failures.append(step)
    return lines, failures


def cmd_compare(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m rcfast.bench asv compare",
        description="Run the ratio benchmarks (rcfast's speed-up over pandas, Polars, DuckDB) "
                    "at two commits and fail if one fell by more than --threshold.")
    p.add_argument("old", help="the reference commit, e.g. main")
    p.add_argument("new", nargs="?", default="HEAD", help="the commit under test (HEAD)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"largest accepted relative fall of a speed-up "
                        f"(default {DEFAULT_THRESHOLD})")
    p.add_argument("--no-run", action="store_true",
                   help="compare stored results only (both commits must have them)")
    _common(p)
    args = p.parse_args(argv)
    if rc := _check_pins(args):
        return rc
    machine = _default_machine(args.machine)
    hashes = [_git("rev-parse", "--verify", f"{c}^{{commit}}") for c in (args.old, args.new)]
    found = []
    for h in hashes:
        # read each commit's values right after its run: comparing a commit with itself (the
        # noise check) overwrites its result file
        if not args.no_run and record(h, machine, RATIO_BENCH, []) not in (0, 2):
            return 2
        found.append(ratios_at(h, machine))
    old, new = found
    if not old or not new:
        _log(f"error: no ratio results for {hashes[0][:10] if not old else hashes[1][:10]} "
             f"on {machine}")
        return 2
    lines, failures = compare_ratios(old, new, args.threshold)
    print(f"speed-up of rcfast (peer s / rcfast s), {hashes[0][:10]} -> {hashes[1][:10]} "
          f"on {machine}; a step fails if its geometric mean falls by more than "
          f"{args.threshold:.0%}")
    print("\n".join(lines))
    if failures:
        print(f"FAILED: {len(failures)} speed-up(s) fell by more than {args.threshold:.0%}: "
              + ", ".join(failures))
        return 1
    print("OK")
    return 0


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
    p = argparse.ArgumentParser(prog="python -m rcfast.bench asv publish",
                                description="asv publish, with links to the key views.")
    p.add_argument("--machine", default=None)
    p.add_argument("-o", "--html-dir", type=Path, default=ASV_DIR / "html")
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


# ----------------------------------------------------------------------------------------------
# the dashboard in a real browser

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
    p = argparse.ArgumentParser(prog="python -m rcfast.bench asv check-dashboard",
                                description="Publish the dashboard and check it in headless "
                                            "chromium; optionally screenshot the key views.")
    p.add_argument("--machine", default=None)
    p.add_argument("--screenshot", type=Path, default=None,
                   help="PNG of the landing page; beside it NAME-weekly.png, the weekly step by "
                        "tool")
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


def _stored_machine() -> str:
    names = sorted(d.name for d in (ASV_DIR / "results").iterdir()
                   if (d / "machine.json").exists())
    if not names:
        raise SystemExit("error: no results stored in asv_bench/results")
    return names[0]


COMMANDS = {"machine": cmd_machine, "run": cmd_run, "backfill": cmd_backfill,
            "compare": cmd_compare, "publish": cmd_publish,
            "check-dashboard": cmd_check_dashboard}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr if not argv or argv[0] not in ("-h", "--help")
              else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        return int(COMMANDS[argv[0]](argv[1:]) or 0)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            _log(exc.code)
            return 2
        return int(exc.code or 0)


if __name__ == "__main__":
    sys.exit(main())
