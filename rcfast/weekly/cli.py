"""``python -m rcfast.weekly`` — the weekly per-product panel of docs/spec-weekly.md.

Examples::

    python -m rcfast.weekly --demo -o panel.parquet
    python -m rcfast.weekly reviews/ -o panel.parquet --windows 4,12,52 --lags 1,2,4
    python -m rcfast.weekly 'dump/*.parquet' -o panel/ --dense --until 2023-09-30
    python -m rcfast.weekly combined/ -o panel.parquet --workers 4 --threads 8
    python -m rcfast.weekly data.parquet -o p.parquet --map product_id=asin --map rating=overall

Exit code 0 on success, 2 on bad usage or bad input (the reason on stderr).
"""

from __future__ import annotations

import argparse
import logging
import gc
import os
import sys
import pyarrow as pa

from rcfast._cli import add_common_arguments, setup_logging
from rcfast.errors import InputError
from rcfast.weekly.run import WeeklyJob, run_job

log = logging.getLogger("rcfast.weekly")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rcfast.weekly",
        description="Weekly per-product panel (its columns: docs/spec-weekly.md) from normalized "
                    "review Parquet. Over its memory limit it runs out of core; with "
                    "--workers or a scheduler, on Dask.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples::", 1)[1] if __doc__ else None)
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="Parquet file, directory of Parquet files, or glob")
    p.add_argument("-o", "--output", required=True,
                   help="output: FILE.parquet, or a directory (written as part files)")
    p.add_argument("--demo", action="store_true",
                   help="run on the built-in generated demo data (rcfast.synth)")
    p.add_argument("--demo-rows", type=int, default=2_000_000, help="rows of demo data")
    p.add_argument("--dense", action="store_true",
                   help="also emit weeks without reviews, from each product's first week")
    p.add_argument("--until", metavar="DATE",
                   help="last week of the panel: the Monday-to-Sunday week containing DATE "
                        "(YYYY-MM-DD). Reviews of later weeks are set aside (after_until); "
                        "the whole week of DATE is kept, so no last week is partial. Dense "
                        "panels extend every product to this week")
    p.add_argument("--windows", default="4,12,52", help="rolling windows in weeks")
    p.add_argument("--lags", default="1,2,4", help="lags in weeks")
    p.add_argument("--map", action="append", metavar="FIELD=COLUMN", default=[],
                   help="read FIELD from raw COLUMN (repeatable)")
    p.add_argument("--timestamp-unit", choices=["s", "ms", "us", "ns"],
                   help="unit of integer timestamp columns (default ms; s for unixReviewTime)")
    p.add_argument("--workers", type=int, default=None,
                   help="Dask worker processes (default 1: one process, all cores as Numba "
                        "threads, the fastest on one node); >1 starts a local Dask cluster")
    p.add_argument("--threads", type=int, default=None,
                   help="Numba threads per worker (default: cores // workers)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="use a running Dask scheduler (e.g. tcp://node1:8786) across nodes")
    p.add_argument("--scheduler-file", metavar="FILE",
                   help="use the Dask scheduler described in FILE (dask scheduler "
                        "--scheduler-file, as in slurm/weekly-multinode.sbatch)")
    p.add_argument("--partitions", type=int, default=None,
                   help="partitions of whole products when the run is distributed or out of "
                        "core (default: as many as the memory limit needs, at least 2 x "
                        "workers)")
    p.add_argument("--memory-limit", metavar="SIZE",
                   help="memory the run may use (per worker with Dask), e.g. 4GB or 1500MB; "
                        "an input that would not fit is computed out of core, spilled to "
                        "--tmp-dir (default: half of the cgroup limit, Slurm's --mem or the "
                        "physical memory, whichever is least)")
    p.add_argument("--tmp-dir", metavar="DIR",
                   help="scratch for out-of-core runs (default: $TMPDIR, else $SLURM_TMPDIR, "
                        "else the system's temporary directory); removed at the end")
    p.add_argument("--strict", action="store_true",
                   help="fail on the first row that would be set aside")
    p.add_argument("--compression", default="snappy",
                   choices=["snappy", "zstd", "lz4", "gzip", "none"],
                   help="Parquet codec of the panel (default snappy, pyarrow's default: fast "
                        "to write; zstd gives ~25%% smaller files for ~60%% more write time)")
    add_common_arguments(p)
    return p


def os_error_line(exc: OSError) -> str:
    """One line for a failed write: the path, the system's reason and the fix."""
    where = exc.filename or "the output or scratch"
    return (f"cannot write {where}: {exc.strerror or exc}; choose an output (-o) and scratch "
            "(--tmp-dir) on a writable file system with free space")


def tune_malloc() -> bool:
    """Keep glibc from handing freed arrays back to the kernel, so that the next ones reuse
    their pages.

    glibc serves arrays of 128 kB and more with mmap and returns them with munmap, and trims
    the heap's free top; every batch, block and partition then gets fresh pages, one page fault
    and a zeroed page per 4 kB. Out of core that was 12.5 % of a 318M-review run
    (alternating runs, docs/scaling.md), so every array comes from the heap (M_MMAP_MAX 0)
    and the heap keeps up to 2 GB of free top. Only the weekly CLI's own process is tuned; a
    user's MALLOC_* settings win. Returns whether set.
    """
    if any(k.startswith("MALLOC_") for k in os.environ) or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
        ok = libc.mallopt(m_mmap_max, 0) == 1
        return ok and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False


def arrow_pool_for_run() -> pa.MemoryPool | None:
    """The memory pool the weekly run should give Arrow: jemalloc, unless the user chose one
    with ``ARROW_DEFAULT_MEMORY_POOL`` or pyarrow was built without it (then None: keep the
    default).

    jemalloc made the 31.8M-review run ~6 % faster than the wheel's default mimalloc, with
    less peak memory (figures in docs/benchmarks.md); the gain is in the Parquet read, where
    Arrow allocates its buffers.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return None
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return None


def main(argv: list[str] | None = None) -> int:
    tune_malloc()
    from rcfast._bytecode import ensure_compiled
    from rcfast._cli import Terminated, raised_by, sigterm_raises, without_pandas

    ensure_compiled()  # once, where PYTHONDONTWRITEBYTECODE keeps Python from doing it
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the reason
        return int(exc.code or 0)
    setup_logging("rcfast.weekly", quiet=args.quiet)
    # Numba's OpenMP threads spin between kernels by default, on the cores that the Parquet
    # reader and writer threads need: passive waiting made 2M-review runs ~10 % faster. Read by
    # the OpenMP runtime when it starts (the first kernel); restored for in-process callers.
    omp_before = os.environ.get("OMP_WAIT_POLICY")
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    gc_was_enabled = gc.isenabled()
    # Dask's scheduler and workers need pandas; the in-process run does not
    in_process = not ((args.workers or 1) > 1 or args.scheduler or args.scheduler_file)
    if in_process:
        # The in-process run makes many short-lived objects and no reference cycles worth
        # collecting: the cyclic GC would only re-scan the imported modules' heap (~5 % of a
        # run). A Dask client keeps it (its event loop makes cycles).
        gc.disable()
    pool_before = pa.default_memory_pool()
    pool = arrow_pool_for_run()
    try:
        if pool is not None:
            pa.set_memory_pool(pool)  # for this run; restored below for in-process callers
        with sigterm_raises(), without_pandas(in_process):
            run_job(WeeklyJob(**vars(args)))
    except InputError as exc:
        print(f"rcfast.weekly: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the output or scratch cannot be written (input errors are named)
        print(f"rcfast.weekly: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated, SystemError) as exc:
        # scratch and temporary outputs are gone: the with blocks ended. A signal's exception
        # raised while Numba called back into Python arrives as a SystemError caused by it.
        if raised_by(exc, Terminated):
            print("rcfast.weekly: terminated (SIGTERM); no output was written", file=sys.stderr)
            return 143
        if raised_by(exc, KeyboardInterrupt):
            print("rcfast.weekly: interrupted; no output was written", file=sys.stderr)
            return 130
        raise
    finally:
        if omp_before is None:
            os.environ.pop("OMP_WAIT_POLICY", None)
        if pool is not None:
            pa.set_memory_pool(pool_before)
        if gc_was_enabled:
            gc.enable()
    return 0

