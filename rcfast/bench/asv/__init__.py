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

import sys

from rcfast.bench.asv.dashboard_check import (
    check_dashboard,
    chromium,
    cmd_check_dashboard,
    coloured_pixels,
    commits_with_results,
    find_chromium,
    serve,
)
from rcfast.bench.asv.gate import (
    DEFAULT_THRESHOLD,
    RATIO_BENCH,
    cmd_compare,
    compare_ratios,
    ratios_at,
)
from rcfast.bench.asv.machines import (
    ASV_DIR,
    REPO,
    _log,
    _stored_machine,
    cmd_machine,
    machine_names,
)
from rcfast.bench.asv.publish import (
    VENDOR,
    VIEWS,
    add_views,
    cmd_publish,
    vendor_assets,
    views_html,
)
from rcfast.bench.options import dispatch, subcommand_help
from rcfast.bench.asv.record import (
    BACKFILL_ATTRS,
    BACKFILL_BENCH,
    PINS,
    cmd_backfill,
    cmd_run,
    pick_commits,
    pin_mismatches,
    read_pins,
    record,
    worktree,
)

__all__ = [
    "ASV_DIR",
    "BACKFILL_ATTRS",
    "BACKFILL_BENCH",
    "COMMANDS",
    "DEFAULT_THRESHOLD",
    "PINS",
    "RATIO_BENCH",
    "REPO",
    "VENDOR",
    "VIEWS",
    "_log",
    "_stored_machine",
    "add_views",
    "check_dashboard",
    "chromium",
    "cmd_backfill",
    "cmd_check_dashboard",
    "cmd_compare",
    "cmd_machine",
    "cmd_publish",
    "cmd_run",
    "coloured_pixels",
    "commits_with_results",
    "compare_ratios",
    "find_chromium",
    "machine_names",
    "main",
    "pick_commits",
    "pin_mismatches",
    "ratios_at",
    "read_pins",
    "record",
    "serve",
    "vendor_assets",
    "views_html",
    "worktree",
]

#: name -> (the subcommand, one line of what it does).
COMMANDS = {
    "machine": (cmd_machine, "register this machine with asv (its name and hardware)"),
    "run": (cmd_run, "record one or more commits (default: HEAD)"),
    "backfill": (cmd_backfill, "record a range of commits (a small benchmark selection, few "
                               "repeats)"),
    "compare": (cmd_compare, "the ratio benchmarks at two commits; exit 1 if a speed-up fell "
                             "too far"),
    "publish": (cmd_publish, "asv publish, with a landing page that links the views that "
                             "matter"),
    "check-dashboard": (cmd_check_dashboard, "publish into a temporary directory and check it "
                                             "in headless chromium"),
}

_EXAMPLES = [
    "python -m rcfast.bench asv machine --machine epyc-2c-shared",
    "python -m rcfast.bench asv run HEAD",
    "python -m rcfast.bench asv backfill HEAD~20..HEAD --skip-existing",
    "python -m rcfast.bench asv compare main",
    "python -m rcfast.bench asv publish",
]


def _usage() -> str:
    return subcommand_help(
        "python -m rcfast.bench asv",
        ["Record, backfill, compare and publish the asv history. The results live in git",
         "(asv_bench/results/MACHINE/, small JSON files). Each commit is measured in a git",
         "worktree of it with 'asv run --python=same --set-commit-hash', importing that",
         "commit's rcfast in this environment, whose baselines are pinned by",
         "constraints/bench.txt: nothing is checked out here and nothing is installed."],
        {name: summary for name, (_, summary) in COMMANDS.items()}, _EXAMPLES)


def _run(name: str, argv: list[str]) -> int:
    """An asv subcommand's exit status; 2, with its message, where it stops with one."""
    try:
        return int(COMMANDS[name][0](argv) or 0)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            _log(exc.code)
            return 2
        return int(exc.code or 0)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to an asv subcommand; exit status 2 on an unknown or missing one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return dispatch(argv, list(COMMANDS), _run, _usage())


if __name__ == "__main__":
    sys.exit(main())
