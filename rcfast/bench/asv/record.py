"""Record results: ``run`` (some commits) and ``backfill`` (a range, a small selection), each
commit measured in a ``git worktree`` of it with ``asv run --python=same --set-commit-hash``,
refused when the baselines differ from their pins (constraints/bench.txt).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rcfast.bench.asv.machines import (
    ASV_DIR,
    REPO,
    _default_machine,
    _git,
    _log,
    add_machine_argument,
)
from rcfast.bench.options import make_parser

PINS = REPO / "constraints" / "bench.txt"

#: What ``backfill`` runs at each commit: rcfast's weekly step (sparse panel) and its speed-up
#: over the peers, ~2-3 min a commit on two busy cores (the baselines' own timings, with
#: pandas-rolling, add ~10 min; the whole suite ~40 min).
BACKFILL_BENCH = [r"^weekly\.WeeklyStep\.time_weekly\('rcfast', \d+, 'sparse'\)",
                  r"^ratios\.WeeklySpeedup"]
BACKFILL_ATTRS = ["rounds=1", "repeat=3", "warmup_time=0"]


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


def add_recording_arguments(p: argparse.ArgumentParser) -> None:
    """``--machine`` and ``--unpinned``, the options of every subcommand that records."""
    add_machine_argument(p, "the only one asv knows")
    p.add_argument("--unpinned", action="store_true",
                   help="record even if the baselines differ from constraints/bench.txt")


def parse_recording_args(p: argparse.ArgumentParser,
                         argv: list[str]) -> tuple[argparse.Namespace, str]:
    """The arguments of a subcommand that records (its parser has
    :func:`add_recording_arguments`) and the machine to record on; exit 2 where the installed
    baselines differ from their pins, unless ``--unpinned``."""
    args = p.parse_args(argv)
    bad = pin_mismatches(read_pins())
    if bad and not args.unpinned:
        raise SystemExit(
            "error: the baselines differ from constraints/bench.txt, so their timings would "
            "not be comparable with the stored history:\n  " + "\n  ".join(bad) +
            "\ninstall them with: pip install -c constraints/bench.txt -r constraints/bench.txt"
            "\n(or pass --unpinned to record anyway)")
    return args, _default_machine(args.machine)


def cmd_run(argv: list[str]) -> int:
    p = make_parser(
        "python -m rcfast.bench asv run",
        "Record commits' results into asv_bench/results/MACHINE/, each commit measured in a\n"
        "git worktree of it (nothing is checked out here, nothing is installed).",
        ["python -m rcfast.bench asv run",
         "python -m rcfast.bench asv run HEAD~1 HEAD -b '^ratios\\.' -a repeat=3"])
    p.add_argument("commits", nargs="*", default=["HEAD"],
                   help="commits to record (default: HEAD)")
    p.add_argument("-b", "--bench", action="append", default=None, metavar="REGEX",
                   help="asv benchmark regex (repeatable; default: the whole suite)")
    p.add_argument("-a", "--attribute", action="append", default=[], metavar="NAME=VALUE",
                   help="asv benchmark attribute override, e.g. repeat=3 (repeatable)")
    add_recording_arguments(p)
    args, machine = parse_recording_args(p, argv)
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
    p = make_parser(
        "python -m rcfast.bench asv backfill",
        "Record a range of commits (first-parent history) with a small benchmark selection:\n"
        "rcfast's weekly step and its speed-up over the peers, few repeats (~2-3 min a commit\n"
        "on two busy cores).",
        ["python -m rcfast.bench asv backfill HEAD~20..HEAD",
         "python -m rcfast.bench asv backfill HEAD~40..HEAD~20 --count 5 --skip-existing"])
    p.add_argument("range", help="git range, e.g. HEAD~20..HEAD")
    p.add_argument("--count", type=int, default=10, metavar="N",
                   help="commits to record, spread evenly, the newest always in (default: 10)")
    p.add_argument("--skip-existing", action="store_true",
                   help="skip commits that already have results on this machine")
    p.add_argument("-b", "--bench", action="append", default=None, metavar="REGEX",
                   help="asv benchmark regex (repeatable; default: "
                        f"{' and '.join(BACKFILL_BENCH)})")
    add_recording_arguments(p)
    args, machine = parse_recording_args(p, argv)
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
