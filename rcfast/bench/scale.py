"""``python -m rcfast.bench scale`` — the weekly step past one process's memory.

Each contender runs as its own command, and its peak memory is that of its whole process tree
(the client and every Dask worker, summed, sampled every 50 ms with psutil), with the client's
own peak beside it:

- ``rcfast``: ``python -m rcfast.weekly`` with its defaults (in memory while the input fits
  half the machine's memory, else out of core);
- ``rcfast-limit``: the same with ``--memory-limit LIMIT`` (out of core when over it);
- ``rcfast-dask``: ``--workers N --memory-limit LIMIT`` (each worker limited), workers writing
  the output's parts;
- ``duckdb-limit``: DuckDB's SQL of the spec without the EWM column, ``memory_limit=LIMIT``;
- ``dask-p2p-shuffle`` (only when named): Dask's P2P shuffle of the input's needed columns by
  product id into partitions written as Parquet, on the same workers: what rcfast's split
  stage does (its output is no panel, so it is not checked).

Examples::

    python -m rcfast.bench scale --rows 3.18e7 --memory-limit 1GB --workers 4
    python -m rcfast.bench scale --rows 1e6,1e7,3.18e7 --json scale.json --plot scale.png
    python -m rcfast.bench scale --input big.parquet --tools rcfast
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rcfast.bench.machine import machine_info
from rcfast.bench.options import add_common_arguments, make_parser, parse_row_count

TOOLS = ("rcfast", "rcfast-limit", "rcfast-dask", "duckdb-limit")
#: Measured on request only: not a panel, the counterpart of rcfast's split stage.
EXTRA_TOOLS = ("dask-p2p-shuffle",)


@dataclass
class TreeRun:
    """One command's wall time and peak memory (bytes)."""

    tool: str
    rows: int
    wall_s: float
    peak_tree_bytes: int  #: the whole process tree, summed
    peak_client_bytes: int  #: the command's own process
    returncode: int
    stderr_tail: str = ""


def run_tree(tool: str, rows: int, cmd: list[str], timeout: float | None = None) -> TreeRun:
    """Run ``cmd``; sample the RSS of it and all its descendants every 50 ms."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = {"tree": 0, "client": 0}
    done = threading.Event()

    def sample() -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.is_set():
            try:
                own = root.memory_info().rss
                total = own
                for child in root.children(recursive=True):
                    try:
                        total += child.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            peak["tree"] = max(peak["tree"], total)
            peak["client"] = max(peak["client"], own)
            done.wait(0.05)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    done.set()
    watcher.join()
    return TreeRun(tool, rows, time.perf_counter() - t0, peak["tree"], peak["client"],
                   proc.returncode, (err or "")[-1500:])


def commands(tool: str, src: Path, out: Path, limit: str, workers: int, tmp: Path) -> list[str]:
    weekly = [sys.executable, "-m", "rcfast.weekly", str(src), "-o", str(out), "--quiet",
              "--tmp-dir", str(tmp)]
    if tool == "rcfast":
        return weekly
    if tool == "rcfast-limit":
        return [*weekly, "--memory-limit", limit]
    if tool == "rcfast-dask":
        return [*weekly, "--workers", str(workers), "--memory-limit", limit]
    if tool == "duckdb-limit":
        code = ("import pyarrow.parquet as pq; from rcfast.baselines import panel_duckdb; "
                f"pq.write_table(panel_duckdb({str(src)!r}, ewm=False, memory_limit={limit!r}),"
                f" {str(out)!r})")
        return [sys.executable, "-c", code]
    if tool == "dask-p2p-shuffle":
        code = (
            "import dask, dask.dataframe as dd; from dask.distributed import Client, LocalCluster;"
            f"from rcfast.weekly.read import WANTED\n"
            f"cluster = LocalCluster(n_workers={workers}, threads_per_worker=1, "
            f"memory_limit={limit!r}, local_directory={str(tmp)!r}, dashboard_address=None)\n"
            "client = Client(cluster)\n"
            f"ddf = dd.read_parquet({str(src)!r}, columns=list(WANTED))\n"
            f"shuffled = ddf.shuffle('product_id', npartitions=max(ddf.npartitions, "
            f"{2 * workers}), shuffle_method='p2p')\n"
            f"shuffled.to_parquet({str(out)!r}, write_index=False)\n"
            "client.close(); cluster.close()")
        return [sys.executable, "-c", code]
    raise ValueError(f"unknown tool {tool!r}; choose from {', '.join(TOOLS + EXTRA_TOOLS)}")


def verify_products(src: Path, out: Path, n: int, seed: int = 0) -> list[str]:
    """The ids of the products, among ``n`` drawn at random from the input, whose rows in
    ``out`` differ from the panel of their own reviews computed in memory (the spec's panel of
    a product depends on its reviews only)."""
    import random

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from rcfast.weekly.api import weekly_panel

    source = ds.dataset(str(src))
    rng = random.Random(seed)
    total = source.count_rows()
    picks = set(rng.sample(range(total), min(n, total)))  # rows: busy products as often
    found, start = set(), 0
    for batch in source.to_batches(columns=["product_id"]):
        here = [i - start for i in picks if start <= i < start + batch.num_rows]
        if here:
            found.update(batch.column(0).take(pa.array(here)).to_pylist())
        start += batch.num_rows
    chosen = pa.array(sorted(p for p in found if p is not None), type=pa.string())
    mine = source.to_table(filter=pc.field("product_id").isin(chosen))
    expected = weekly_panel(mine).panel
    got = ds.dataset(str(out)).to_table(filter=pc.field("product_id").isin(chosen))
    got = got.replace_schema_metadata(None).cast(expected.schema)
    bad = []
    for pid in chosen.to_pylist():
        a = expected.filter(pc.equal(expected.column("product_id"), pid))
        b = got.filter(pc.equal(got.column("product_id"), pid))
        if not a.equals(b):
            bad.append(pid)
    return bad


def _rows_list(text: str) -> list[int]:
    return [parse_row_count(x) for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = make_parser(
        "python -m rcfast.bench scale",
        "Wall time and whole-process-tree peak memory of the weekly step in memory, out of\n"
        "core, on Dask workers, and of DuckDB under the same memory limit.",
        [e.strip() for e in __doc__.split("Examples::", 1)[1].strip().splitlines()
         if e.strip()])
    p.add_argument("--rows", default="3.18e7",
                   help="generated input sizes, comma-separated (default: %(default)s)")
    p.add_argument("--input", help="an existing review Parquet file instead of generated data")
    p.add_argument("--tools", default=",".join(TOOLS),
                   help="contenders, comma-separated (default: %(default)s; also "
                   "dask-p2p-shuffle)")
    p.add_argument("--memory-limit", default="1GB",
                   help="limit of rcfast-limit, of each rcfast-dask worker and of DuckDB "
                        "(default: %(default)s)")
    p.add_argument("--workers", type=int, default=4, help="Dask workers (default: 4)")
    add_common_arguments(p, work_dir="outputs and scratch (default: a temporary directory)",
                         repeat="rounds (default: 1)", json="write the measurements to FILE")
    p.add_argument("--plot", help="write a PNG of time and peak memory against rows here")
    p.add_argument("--merge", action="append", default=[], metavar="FILE",
                   help="also table and plot the runs of an earlier --json FILE (e.g. one "
                        "large --input run beside a generated series); repeatable")
    p.add_argument("--timeout", type=float, default=7200, help="seconds per run")
    p.add_argument("--verify", type=int, default=0, metavar="N",
                   help="check N random products of each output against the panel of that "
                        "product's reviews alone, computed in memory (default: 0, no check)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    bad = [t for t in tools if t not in TOOLS + EXTRA_TOOLS]
    if bad:
        print(f"bench scale: unknown tool(s) {bad}; choose from {', '.join(TOOLS + EXTRA_TOOLS)}",
              file=sys.stderr)
        return 2
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="rcfast-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.input:
        import pyarrow.parquet as pq

        inputs = [(pq.ParquetFile(args.input).metadata.num_rows, Path(args.input))]
    else:
        from rcfast import synth

        inputs = [(n, synth.demo_parquet(n_rows=n)) for n in _rows_list(args.rows)]
    runs: list[TreeRun] = []
    print(f"{'tool':<18}{'rows':>14}{'wall s':>10}{'tree peak GB':>14}{'client GB':>11}  ok")
    for rows, src in inputs:
        for _ in range(args.repeat):
            for tool in tools:
                out = work / f"{tool}-{rows}.parquet"
                tmp = work / "scratch"
                tmp.mkdir(exist_ok=True)
                r = run_tree(tool, rows, commands(tool, src, out, args.memory_limit,
                                                  args.workers, tmp), args.timeout)
                runs.append(r)
                print(f"{tool:<18}{rows:>14,}{r.wall_s:>10.1f}{r.peak_tree_bytes / 1e9:>14.2f}"
                      f"{r.peak_client_bytes / 1e9:>11.2f}  "
                      f"{'yes' if r.returncode == 0 else 'FAILED: ' + r.stderr_tail[-300:]}",
                      flush=True)
                if args.verify and r.returncode == 0 and tool in TOOLS:
                    bad = verify_products(src, out, args.verify)
                    print(f"{'':<18}verified {args.verify} random products against their own "
                          f"reviews: {'all equal' if not bad else f'MISMATCH {bad[:5]}'}",
                          flush=True)
                    r.stderr_tail += f" verified={args.verify} mismatches={len(bad)}"
                    if bad:
                        r.returncode = 3
                shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(
                    missing_ok=True)
    meta = {"memory_limit": args.memory_limit, "workers": args.workers,
            "machine": _machine()}
    for earlier in args.merge:
        for r in json.loads(Path(earlier).read_text())["runs"]:
            runs.append(TreeRun(**r))
            print(f"{r['tool']:<18}{r['rows']:>14,}{r['wall_s']:>10.1f}"
                  f"{r['peak_tree_bytes'] / 1e9:>14.2f}{r['peak_client_bytes'] / 1e9:>11.2f}  "
                  f"(from {earlier})")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta,
                                               "runs": [asdict(r) for r in runs]}, indent=1))
    if args.plot:
        plot(runs, Path(args.plot), meta)
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r.returncode == 0 for r in runs) else 1


def _machine() -> str:
    info = machine_info()
    return f"{info['cpu']}, {info['cores']} cores, {info['ram_gb']} GiB"


def plot(runs: list[TreeRun], path: Path, meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for tool in dict.fromkeys(r.tool for r in runs):
        mine = sorted((r for r in runs if r.tool == tool and r.returncode == 0),
                      key=lambda r: r.rows)
        if not mine:
            continue
        xs = [r.rows for r in mine]
        ax_t.plot(xs, [r.wall_s for r in mine], "o-", label=tool)
        ax_m.plot(xs, [r.peak_tree_bytes / 1e9 for r in mine], "o-", label=tool)
    for ax, what in ((ax_t, "wall time (s)"), (ax_m, "peak RSS, whole process tree (GB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("reviews")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend()
    fig.suptitle(f"weekly step past one process's memory (limit {meta['memory_limit']}, "
                 f"{meta['workers']} Dask workers) on {meta['machine']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
