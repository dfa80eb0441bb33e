"""``python -m rcfast.bench combine``: the ingest step against Polars, DuckDB, pyarrow and pandas.

Every contender reads the same generated Amazon-2023-style ``.jsonl.gz`` (``rcfast.synth``),
keeps the same fields (product, user, timestamp, rating, helpful votes, verified, text length)
and writes Parquet, each in its own fresh process (wall time and peak RSS from
:mod:`rcfast.bench._harness`). ``--malformed`` also runs every tool on a copy of the file with
damaged lines (every 10,000th line cut short, one invalid UTF-8 byte, a truncated gzip tail) and
reports who finishes and how many rows each keeps.
"""

from __future__ import annotations

import gzip
import json
import os
import pathlib
import sys
import tempfile
import textwrap

from rcfast.bench._harness import Measurement, run_measured
from rcfast.bench.options import (
    add_common_arguments,
    add_deprecated_alias,
    make_parser,
    parse_row_count,
)

TOOLS = ("rcfast", "polars", "duckdb", "pyarrow", "pandas")

FIELDS_2023 = ["parent_asin", "user_id", "timestamp", "rating", "helpful_vote",
               "verified_purchase"]


def run_rcfast(src: str, out: str, workers: int = 0) -> int:
    """``python -m rcfast.combine SRC -o OUT/ds`` (its ``main()``, in this process)."""
    from rcfast.combine import main

    ds = os.path.join(out, "ds")
    args = [src, "-o", ds, "-q", "--no-progress"]
    if workers:
        args += ["--workers", str(workers)]
    if main(args) != 0:
        raise RuntimeError("rcfast.combine failed")
    with open(os.path.join(ds, "_summary.json"), encoding="utf-8") as f:
        return int(json.load(f)["rows_written"])


def run_polars(src: str, out: str, workers: int = 0) -> int:
    import polars as pl

    path = os.path.join(out, "out.parquet")
    pl.scan_ndjson(src).select(
        *[pl.col(c) for c in FIELDS_2023], pl.col("text").str.len_chars().alias("text_len")
    ).sink_parquet(path)
    # rows counted from the file's metadata by Polars itself: importing pyarrow here would add
    # ~0.1 s that is not Polars' to its time
    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


def run_duckdb(src: str, out: str, workers: int = 0) -> int:
    import duckdb

    path = os.path.join(out, "out.parquet")
    cols = ", ".join(f'"{c}"' for c in FIELDS_2023)
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT {cols}, length(text) AS text_len FROM read_json('{src}', "
        f"format='newline_delimited')) TO '{path}' (FORMAT parquet)"
    )
    return int(con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0])


def run_pyarrow(src: str, out: str, workers: int = 0) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    t = pj.read_json(pa.input_stream(src, compression="gzip" if src.endswith(".gz") else None))
    t = t.select(FIELDS_2023).append_column("text_len", pc.utf8_length(t["text"]))
    pq.write_table(t, os.path.join(out, "out.parquet"))
    return t.num_rows


def run_pandas(src: str, out: str, workers: int = 0) -> int:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    w = None
    n = 0
    for ch in pd.read_json(src, lines=True, chunksize=200_000):
        df = ch[FIELDS_2023].copy()
        df["text_len"] = ch["text"].str.len()
        t = pa.Table.from_pandas(df, preserve_index=False)
        if w is None:
            w = pq.ParquetWriter(os.path.join(out, "out.parquet"), t.schema)
        w.write_table(t)
        n += len(df)
    if w is not None:
        w.close()
    return n


RUNNERS = {"rcfast": run_rcfast, "polars": run_polars, "duckdb": run_duckdb,
           "pyarrow": run_pyarrow, "pandas": run_pandas}

_CHILD = textwrap.dedent(
    """
    import os, shutil, time
    from rcfast.bench._harness import emit_result
    from rcfast.bench.combine import RUNNERS
    shutil.rmtree({out!r}, ignore_errors=True)
    os.makedirs({out!r})
    t0 = time.perf_counter()
    c0 = os.times()
    rows = RUNNERS[{tool!r}]({src!r}, {out!r}, {workers!r})
    secs = time.perf_counter() - t0
    c1 = os.times()
    emit_result(seconds=secs, rows=rows, cpu_s=sum(c1[:4]) - sum(c0[:4]))
    """
)


def dataset_path(cache_dir: pathlib.Path, rows: int, seed: int) -> pathlib.Path:
    return cache_dir / f"amazon2023_{rows}_s{seed}" / "Electronics.jsonl.gz"


def ensure_dataset(cache_dir: pathlib.Path, rows: int, seed: int) -> pathlib.Path:
    path = dataset_path(cache_dir, rows, seed)
    if not path.exists():
        from rcfast.synth import write_jsonl

        print(f"generating {rows:,} rows → {path}", file=sys.stderr)
        write_jsonl(path, rows, seed)
    return path


def make_malformed(src: pathlib.Path, dst: pathlib.Path) -> dict[str, int]:
    """Copy ``src`` damaging it: every 10,000th line cut, one invalid UTF-8 byte, a cut tail."""
    bad_lines = 0
    with gzip.open(src, "rb") as fin, open(dst.with_suffix(".tmp"), "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as fout:
            for i, line in enumerate(fin, start=1):
                if i % 10_000 == 0:
                    line = line[: len(line) // 2] + b"\n"
                    bad_lines += 1
                elif i == 5_000:
                    line = line.replace(b'"text": "', b'"text": "\xff', 1)
                    bad_lines += 1
                fout.write(line)
    data = dst.with_suffix(".tmp").read_bytes()
    dst.write_bytes(data[: len(data) - 4096])
    dst.with_suffix(".tmp").unlink()
    return {"damaged_lines": bad_lines, "cut_bytes": 4096}


def warm_rcfast(cache_dir: pathlib.Path, timeout: float) -> None:
    """Run rcfast once on a tiny file so that its compiled kernels exist (the ahead-of-time
    module of :mod:`rcfast.kernels.aot`, or Numba's on-disk cache where it cannot be built).

    The first run after installing (or after editing the kernels) compiles them, about 25 s;
    that is a one-off cost like building a binary, not part of a run's throughput.
    """
    src = ensure_dataset(cache_dir, 1000, 0)
    with tempfile.TemporaryDirectory(prefix="rcfast-bench-warm-") as tmp:
        run_tool("rcfast", src, pathlib.Path(tmp) / "warm", 0, timeout)


def run_tool(tool: str, src: pathlib.Path, out: pathlib.Path, workers: int,
             timeout: float) -> Measurement:
    code = _CHILD.format(tool=tool, src=str(src), out=str(out), workers=workers)
    return run_measured(tool, code, timeout=timeout)


def _error_line(stderr: str) -> str:
    """The line of a child's stderr that names the error (not a caret or a code line)."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln or "error" in ln:
            return ln
    return lines[-1] if lines else "?"


def median_run(runs: list[Measurement]) -> Measurement:
    """The run with the median time (the lower middle one of an even count); failed runs
    count as slowest."""
    def key(m: Measurement) -> float:
        secs = m.result.get("seconds")
        return secs if m.returncode == 0 and secs is not None else float("inf")

    return sorted(runs, key=key)[(len(runs) - 1) // 2]


def format_table(results: list[Measurement], rows: int, ref: str = "rcfast",
                 spread: dict[str, tuple[float, float]] | None = None) -> str:
    base = {m.name: m for m in results}.get(ref)
    lines = [f"{'tool':<8} {'seconds':>8} {'CPU s':>6} {'rows/s':>12} {'peak RSS':>9} "
             f"{'time vs rcfast':>15}  status"]
    for m in results:
        secs = m.result.get("seconds")
        ok = m.returncode == 0 and secs is not None
        rate = f"{rows / secs:,.0f}" if ok else "-"
        rss = f"{m.peak_rss_bytes / 2**20:,.0f} MB" if m.peak_rss_bytes else "-"
        cpu = m.result.get("cpu_s")
        cpu_txt = f"{cpu:.2f}" if ok and cpu is not None else "-"
        ratio = "-"
        if ok and base is not None and base.result.get("seconds"):
            ratio = f"{secs / base.result['seconds']:.2f}x"
        status = "ok" if ok else "FAILED: " + _error_line(m.stderr_tail)[:90]
        if ok and spread and m.name in spread:
            lo, hi = spread[m.name]
            status += f" (runs {lo:.2f}-{hi:.2f} s)"
        lines.append(f"{m.name:<8} {secs if ok else float('nan'):>8.2f} {cpu_txt:>6} {rate:>12} "
                     f"{rss:>9} {ratio:>15}  {status}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = make_parser(
        "python -m rcfast.bench combine",
        "Time the ingest step (Amazon-2023-style JSONL.gz in, Parquet out): rcfast against\n"
        "Polars, DuckDB, pyarrow and pandas, each tool in its own fresh process, on one\n"
        "generated file. Prints seconds, CPU seconds, rows/s and peak memory per tool.\n"
        "--malformed also runs every tool on a damaged copy (lines cut short, an invalid\n"
        "UTF-8 byte, a truncated gzip tail) and reports who finishes and how many rows each\n"
        "keeps.",
        ["python -m rcfast.bench combine --rows 1e6",
         "python -m rcfast.bench combine --rows 1e6 --malformed --repeat 5",
         "python -m rcfast.bench combine --tools rcfast,polars --repeat 3 --json combine.json"])
    ap.add_argument("--rows", type=parse_row_count, default=1_000_000,
                    help="input reviews (default: 1e6)")
    ap.add_argument("--tools", default=",".join(TOOLS),
                    help=f"comma-separated subset of {','.join(TOOLS)} (default: all)")
    add_common_arguments(
        ap, seed=True, json=True,
        cache_dir="where the generated input is kept and reused (default: $RCFAST_CACHE/bench, "
                  "else ~/.cache/rcfast/bench)",
        work_dir="where the tools write their outputs, kept for a look (default: a temporary "
                 "directory, removed afterwards)",
        repeat="rounds of every tool, interleaved (each round starts with the next tool); the "
               "table shows each tool's median run and the range of its times (shared machines "
               "drift by 10-40 %% from minute to minute) (default: 1)")
    add_deprecated_alias(ap, "--workdir", "--cache-dir", dest="cache_dir", type=pathlib.Path)
    ap.add_argument("--workers", type=int, default=0, metavar="N",
                    help="rcfast workers (default: 0, all CPUs)")
    ap.add_argument("--malformed", action="store_true",
                    help="also run every tool on a damaged copy of the input")
    ap.add_argument("--timeout", type=float, default=1800, metavar="SECONDS",
                    help="limit of one tool run (default: 1800)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has printed
        return int(exc.code or 0)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown or args.repeat < 1:
        print(f"error: unknown tools {unknown}" if unknown else
              "error: --repeat must be >= 1", file=sys.stderr)
        return 2
    if args.cache_dir:
        cache_dir = args.cache_dir
    else:
        from rcfast.synth import default_cache_dir

        cache_dir = default_cache_dir() / "bench"
    src = ensure_dataset(cache_dir, args.rows, args.seed)
    if "rcfast" in tools:
        warm_rcfast(cache_dir, args.timeout)
    report: dict = {"rows": args.rows, "input": str(src), "input_bytes": src.stat().st_size,
                    "cpus": os.cpu_count(), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="rcfast-bench-combine-") as scratch:
        work = args.work_dir or pathlib.Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        runs: dict[str, list[Measurement]] = {t: [] for t in tools}
        for r in range(args.repeat):
            for tool in tools[r % len(tools):] + tools[: r % len(tools)]:
                runs[tool].append(run_tool(tool, src, work / tool,
                                           args.workers or 0, args.timeout))
        results = [median_run(runs[t]) for t in tools]
        spread = None
        if args.repeat > 1:
            spread = {}
            for t in tools:
                secs = [m.result["seconds"] for m in runs[t]
                        if m.returncode == 0 and m.result.get("seconds") is not None]
                if secs:
                    spread[t] = (min(secs), max(secs))
        for m in results:
            report["runs"][m.name] = {
                "seconds": m.result.get("seconds"), "wall_s": m.wall_s,
                "cpu_s": m.result.get("cpu_s"),
                "peak_rss_bytes": m.peak_rss_bytes, "returncode": m.returncode,
                "rows": m.result.get("rows"),
                "all_seconds": [x.result.get("seconds") for x in runs[m.name]]}
        print(f"{args.rows:,} rows, {src.stat().st_size / 2**20:,.0f} MB gzip JSONL, "
              f"{os.cpu_count()} CPUs" + (f", median of {args.repeat} interleaved rounds"
                                         if args.repeat > 1 else ""))
        print(format_table(results, args.rows, spread=spread))
        if args.malformed:
            bad = work / "Damaged.jsonl.gz"
            info = make_malformed(src, bad)
            print(f"\ndamaged copy: {info['damaged_lines']} bad lines + a truncated gzip tail")
            report["malformed"] = {}
            for tool in tools:
                m = run_tool(tool, bad, work / (tool + "-bad"), args.workers or 0,
                             args.timeout)
                ok = m.returncode == 0 and m.result.get("rows") is not None
                summ = work / (tool + "-bad") / "ds" / "_summary.json"
                extra = ""
                if ok and summ.exists():
                    q = json.loads(summ.read_text())["quarantined"]
                    extra = ", quarantined: " + ", ".join(f"{k} {v}" for k, v in q.items())
                msg = f"finished, {m.result['rows']:,} rows kept{extra}" if ok else \
                    "stopped with an error: " + _error_line(m.stderr_tail)[:110]
                print(f"{tool:<8} {msg}")
                report["malformed"][tool] = {"ok": ok, "rows": m.result.get("rows"),
                                             "error": None if ok else m.stderr_tail[-500:]}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
