"""The regression gate: ``compare`` runs the ratio benchmarks (rcfast's speed-up over pandas,
Polars, DuckDB) at two commits and fails if a step's speed-up fell by more than the threshold.
"""

from __future__ import annotations

import math

from rcfast.bench.asv.machines import ASV_DIR, _git, _log
from rcfast.bench.asv.record import add_recording_arguments, parse_recording_args, record
from rcfast.bench.options import make_parser

#: ``compare`` runs only these.
RATIO_BENCH = [r"^ratios\."]
#: ``compare`` fails when a step's speed-ups (their geometric mean over the peers) fall by more
#: than this fraction: above the largest fall seen between runs of the same code on a loaded
#: two-core machine (18 %; a single peer's ratio fell by up to 51 %; docs/asv.md), below the
#: real fall it found (40 %).
DEFAULT_THRESHOLD = 0.30


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
    p = make_parser(
        "python -m rcfast.bench asv compare",
        "Run the ratio benchmarks (rcfast's speed-up over pandas, Polars, DuckDB) at two\n"
        "commits and fail (exit 1) if a step's speed-up, the geometric mean over the peers,\n"
        "fell by more than --threshold.",
        ["python -m rcfast.bench asv compare main",
         "python -m rcfast.bench asv compare HEAD~5 HEAD --threshold 0.2",
         "python -m rcfast.bench asv compare main HEAD --no-run"])
    p.add_argument("old", help="the reference commit, e.g. main")
    p.add_argument("new", nargs="?", default="HEAD",
                   help="the commit under test (default: HEAD)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="FRACTION",
                   help=f"largest accepted relative fall of a speed-up "
                        f"(default: {DEFAULT_THRESHOLD})")
    p.add_argument("--no-run", action="store_true",
                   help="compare stored results only (both commits must have them)")
    add_recording_arguments(p)
    args, machine = parse_recording_args(p, argv)
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
