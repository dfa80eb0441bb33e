"""``python -m rcfast.bench weekly`` — the weekly panel: rcfast against pandas, Polars and DuckDB.

For each input size the normalized Parquet file is generated once with :mod:`rcfast.synth` (and
cached, see :func:`rcfast.synth.demo_parquet`), then every tool runs in its own fresh Python
process (:func:`rcfast.bench._harness.run_measured`) so that its peak RSS is its own. Inside the
child the tool is imported first, then the timed part (``compute_s``) reads the Parquet file,
computes the full panel (docs/spec-weekly.md, sparse, windows 4,12,52, lags 1,2,4) and writes it as
Parquet. ``wall_s`` is the whole process, interpreter start and imports included.

Before timing, rcfast runs once on a tiny file so that Numba's on-disk cache is warm (a user pays
compilation once per machine, not per run). Afterwards the written panels are compared: counts
exactly, floats to a relative 1e-9; on big inputs on a deterministic sample of products.

Examples::

    python -m rcfast.bench weekly --rows 1e6
    python -m rcfast.bench weekly --sizes 1e6,4e6,16e6 --plot weekly.png --json weekly.json
    python -m rcfast.bench weekly --rows 31800000 --tools rcfast,polars,duckdb
    python -m rcfast.bench weekly --rows 31.8e6 --products demo,1.3e6 --tools rcfast,polars,duckdb

``--products`` picks the product mixes: ``demo`` is the generator's catalog (rows / 12 products,
~2.3M of them reviewed at 31.8M rows), a number is a catalog of that many products (1.3e6: ~1.2M
reviewed, more reviews and panel weeks each); the table has a row per mix and tool.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq

from rcfast.bench._harness import Measurement, run_measured
from rcfast.bench.machine import machine_info
from rcfast.bench.options import add_common_arguments, make_parser, parse_row_count
from rcfast.bench.panel_compare import compare_panels, product_sample
from rcfast.bench.weekly_report import Report, Result, format_table, plot

#: ``*-noewm``: the peer without the EWM column (the issue's fair stand-in for a peer that has
#: no native form of it); compared with the others on the columns they share.
TOOLS = ("rcfast", "polars", "duckdb", "pandas", "pandas-rolling", "polars-noewm",
         "duckdb-noewm")
DEFAULT_TOOLS = TOOLS[:5]
#: Compare the panels completely up to this many input rows, a sample of products above.
FULL_CHECK_ROWS = 4_000_000
SAMPLE_PRODUCTS = 20_000

_CHILD = """
import sys, time
{imports}
from rcfast.bench._harness import emit_result
path, out = {path!r}, {out!r}
t0 = time.perf_counter()
{compute}
compute_s = time.perf_counter() - t0
import pyarrow.parquet as _pq
emit_result(compute_s=compute_s, rows={rows}, panel_rows=_pq.ParquetFile(out).metadata.num_rows)
{exit}
"""

#: How each tool's process ends: rcfast the way ``python -m rcfast.weekly`` does (wall s is the
#: whole process, as its user sees it), the others the usual way.
_EXIT = {"rcfast": "from rcfast._cli import exit_cli\nexit_cli(0)"}

_TOOL_CODE = {
    "rcfast": ("from rcfast.weekly import main",
               ("rc = main([path, '-o', out, '--quiet'] + (['--dense'] if {dense} else []))\n"
                "if rc:\n    sys.exit(rc)")),
    "pandas": ("import pandas, pyarrow.parquet as pq\nfrom rcfast.baselines import panel_pandas",
               "pq.write_table(panel_pandas(path, dense={dense}), out)"),
    "pandas-rolling": ("import pandas, pyarrow.parquet as pq\n"
                       "from rcfast.baselines import panel_pandas_rolling",
                       "pq.write_table(panel_pandas_rolling(path, dense={dense}), out)"),
    "polars": ("import polars, pyarrow.parquet as pq\nfrom rcfast.baselines import panel_polars",
               "pq.write_table(panel_polars(path, dense={dense}), out)"),
    "duckdb": ("import duckdb, pyarrow.parquet as pq\nfrom rcfast.baselines import panel_duckdb",
               "pq.write_table(panel_duckdb(path, dense={dense}), out)"),
    "polars-noewm": ("import polars, pyarrow.parquet as pq\n"
                     "from rcfast.baselines import panel_polars",
                     "pq.write_table(panel_polars(path, dense={dense}, ewm=False), out)"),
    "duckdb-noewm": ("import duckdb, pyarrow.parquet as pq\n"
                     "from rcfast.baselines import panel_duckdb",
                     "pq.write_table(panel_duckdb(path, dense={dense}, ewm=False), out)"),
}


def child_code(tool: str, path: Path, out: Path, rows: int, dense: bool = False) -> str:
    """The child process's program: import the tool, then time read + panel + write."""
    imports, compute = _TOOL_CODE[tool]
    return _CHILD.format(imports=imports, compute=compute.format(dense=bool(dense)),
                         path=str(path), out=str(out), rows=rows, exit=_EXIT.get(tool, ""))


def rcfast_available() -> str | None:
    """None if ``rcfast.weekly.main`` can be imported, else why not."""
    if importlib.util.find_spec("rcfast.weekly") is None:
        return "rcfast.weekly is not installed yet"
    try:
        from rcfast.weekly import main  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - report any import failure as the skip reason
        return f"rcfast.weekly does not import: {exc!r}"
    return None


def warm_rcfast(work: Path, timeout: float | None) -> str | None:
    """Run rcfast once on a tiny input so Numba's cache is compiled; return an error or None."""
    from rcfast import synth

    tiny = synth.write_parquet(work / "warm.parquet", 5_000, 1)
    m = run_measured("rcfast-warmup", child_code("rcfast", tiny, work / "warm-out.parquet", 5_000),
                     timeout=timeout)
    if m.returncode != 0 or not m.result:
        return f"warm-up failed (exit {m.returncode}): {m.stderr_tail.strip()[-500:]}"
    return None


def _parse_sizes(text: str) -> list[int]:
    return [parse_row_count(t) for t in text.split(",") if t.strip()]


def _parse_mixes(text: str) -> list[str]:
    mixes = []
    for t in (t.strip() for t in text.split(",")):
        if t:
            mixes.append("demo" if t == "demo" else str(parse_row_count(t)))
    if not mixes:
        raise argparse.ArgumentTypeError("no product mix given")
    return list(dict.fromkeys(mixes))


def input_parquet(cache_dir: Path | None, rows: int, seed: int, mix: str) -> Path:
    """The generated input of ``rows`` reviews with product mix ``mix``, cached."""
    from rcfast import synth

    if mix == "demo":
        return synth.demo_parquet(cache_dir, n_rows=rows, seed=seed)
    d = Path(cache_dir) if cache_dir is not None else synth.default_cache_dir()
    path = d / f"synth-v{synth.GENERATOR_VERSION}-n{rows}-s{seed}-p{mix}.parquet"
    if not path.exists():
        synth.write_parquet(path, rows, seed, n_products=int(mix))
    return path


def _parse_tools(text: str) -> list[str]:
    tools = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in tools if t not in TOOLS]
    if bad or not tools:
        raise argparse.ArgumentTypeError(f"unknown tool(s) {bad}; choose from {','.join(TOOLS)}")
    return list(dict.fromkeys(tools))


# ----------------------------------------------------------------------------------------------
# running


def run_size(rows: int, tools: list[str], data: Path, work: Path, timeout: float | None,
             check: bool, log, dense: bool = False, repeat: int = 1,
             mix: str = "demo") -> list[Result]:
    """Run every tool ``repeat`` times (round robin, so load changes hit all tools alike) and
    keep each tool's fastest run; then compare the panels."""
    best: dict[str, Result] = {}
    failed: dict[str, Result] = {}
    outputs: dict[str, Path] = {}
    for rep in range(repeat):
        for tool in tools:
            if tool in failed:
                continue
            out = work / f"panel-{tool}-{rows}.parquet"
            out.unlink(missing_ok=True)
            run = f" (run {rep + 1}/{repeat})" if repeat > 1 else ""
            log(f"  {tool:14s} {rows:>12,} rows{run} ... ")
            m: Measurement = run_measured(tool, child_code(tool, data, out, rows, dense),
                                          timeout=timeout)
            if m.returncode != 0 or not m.result:
                why = "timed out" if m.returncode in (-9, 137) else f"exit {m.returncode}"
                tail = m.stderr_tail.strip().splitlines()[-1:] or [""]
                failed[tool] = Result(tool, rows, False, mix, wall_s=round(m.wall_s, 3),
                                      note=f"{why}: {tail[0][:200]}")
                outputs.pop(tool, None)
                log(f"failed ({why})\n{m.stderr_tail.strip()[-1500:]}\n")
                continue
            res = Result(tool, rows, True, mix, wall_s=round(m.wall_s, 3),
                         compute_s=round(float(m.result["compute_s"]), 3),
                         peak_rss_gb=round(m.peak_rss_bytes / 2**30, 3),
                         panel_rows=m.result.get("panel_rows"))
            if tool not in best or res.compute_s < best[tool].compute_s:
                best[tool] = res
            outputs[tool] = out
            log(f"{res.compute_s:.2f} s compute, {res.wall_s:.2f} s wall, "
                f"{res.peak_rss_gb:.2f} GB peak\n")
    results = [failed.get(t) or best[t] for t in tools]
    if check and len(outputs) > 1:
        ref_tool = next(iter(outputs))
        sample = (product_sample(outputs[ref_tool], SAMPLE_PRODUCTS)
                  if rows > FULL_CHECK_ROWS else None)
        scope = "all products" if sample is None else f"a sample of {len(sample):,} products"
        for r in results:
            if r.tool in outputs and r.tool != ref_tool:
                gap = compare_panels(outputs[ref_tool], outputs[r.tool], sample)
                r.agrees = gap is None
                if gap:
                    r.note = f"differs from {ref_tool}: {gap}"
                    log(f"  ! {r.tool} differs from {ref_tool}: {gap}\n")
            elif r.tool == ref_tool:
                r.agrees = True
                r.note = "reference"
        log(f"  checked against {ref_tool} on {scope}\n")
    for p in outputs.values():
        p.unlink(missing_ok=True)
    return results


def build_parser() -> argparse.ArgumentParser:
    p = make_parser(
        "python -m rcfast.bench weekly",
        "Time the weekly panel (read Parquet, compute the panel, write Parquet): rcfast against\n"
        "pandas, Polars and DuckDB, each tool in its own fresh process, on generated reviews.\n"
        "Prints a table of compute seconds, wall seconds and peak memory per tool and checks\n"
        "that every tool's panel agrees with the first tool's (exit 1 if one does not).",
        ["python -m rcfast.bench weekly --rows 1e6",
         "python -m rcfast.bench weekly --rows 2e5 --tools rcfast,polars,duckdb",
         "python -m rcfast.bench weekly --sizes 1e6,4e6,16e6 --plot weekly.png --json weekly.json",
         "python -m rcfast.bench weekly --rows 1e6 --products demo,1.3e6 --repeat 3"])
    p.add_argument("--rows", type=parse_row_count, default=1_000_000,
                   help="input reviews (default: 1e6); ignored with --sizes")
    p.add_argument("--sizes", type=_parse_sizes, default=None,
                   help="comma-separated input sizes, e.g. 1e6,4e6,16e6 (default: --rows)")
    p.add_argument("--tools", type=_parse_tools, default=list(DEFAULT_TOOLS),
                   help=f"comma-separated subset of {','.join(TOOLS)} "
                        f"(default: {','.join(DEFAULT_TOOLS)})")
    p.add_argument("--input", type=Path, default=None, metavar="FILE",
                   help="a normalized Parquet file to use instead of generated data")
    p.add_argument("--dense", action="store_true",
                   help="the dense panel, zero weeks too (default: sparse)")
    p.add_argument("--products", type=_parse_mixes, default=["demo"],
                   help="product mixes, comma-separated: 'demo' (the generator's catalog, rows "
                        "/ 12 products) or a catalog size, e.g. demo,1.3e6 (default: demo)")
    add_common_arguments(
        p, cache_dir=True, seed=True,
        work_dir="where the panels are written, each deleted after the check (default: a "
                 "temporary directory, removed afterwards)",
        repeat="runs of every tool, round robin; each tool's fastest run counts (default: 1)",
        json=True)
    p.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS",
                   help="limit of one tool run (default: 3600)")
    p.add_argument("--no-check", action="store_true", help="skip comparing the outputs")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE",
                   help="also write compute seconds against rows as a PNG")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.input is not None and not args.input.is_file():
        print(f"error: --input {args.input}: no such file", file=sys.stderr)
        return 2
    if args.seed < 0 or args.timeout <= 0 or args.repeat < 1:
        print("error: --seed must be >= 0, --timeout > 0 and --repeat >= 1", file=sys.stderr)
        return 2
    if args.input is not None:
        sizes = [pq.ParquetFile(args.input).metadata.num_rows]
    else:
        sizes = args.sizes or [args.rows]
    tools = list(args.tools)

    def log(msg: str) -> None:
        print(msg, end="", file=sys.stderr, flush=True)

    report = Report(machine=machine_info(), mode="dense" if args.dense else "sparse")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="rcfast-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if "rcfast" in tools:
            why = rcfast_available() or warm_rcfast(work, args.timeout)
            if why:
                log(f"skipping rcfast: {why}\n")
                tools.remove("rcfast")
        if not tools:
            print("error: no tool left to run", file=sys.stderr)
            return 2
        mixes = ["input"] if args.input is not None else args.products
        for mix in mixes:
            for rows in sizes:
                if args.input is not None:
                    data = args.input
                else:
                    t0 = time.perf_counter()
                    data = input_parquet(args.cache_dir, rows, args.seed, mix)
                    log(f"input: {data} ({rows:,} rows, mix {mix}, "
                        f"{time.perf_counter() - t0:.1f} s to get)\n")
                report.results += run_size(rows, tools, data, work, args.timeout,
                                           not args.no_check, log, args.dense, args.repeat, mix)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(format_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": report.machine, "mode": report.mode,
                                         "results": [asdict(r) for r in report.results]},
                                        indent=2))
    if args.plot:
        plot(report, args.plot, TOOLS)
        log(f"plot: {args.plot}\n")
    failed = [r for r in report.results if not r.ok or r.agrees is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
