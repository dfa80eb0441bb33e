"""Benchmark inputs: generated once per process with fixed seeds (rcfast.synth)."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import pyarrow as pa

SEED = 0


def smoke() -> bool:
    """True in CI's smoke run (``RCFAST_ASV_SMOKE=1``): every benchmark runs once on tiny
    inputs, to prove it works, not to time it."""
    return os.environ.get("RCFAST_ASV_SMOKE", "") not in ("", "0")


#: Input rows of every benchmark in the smoke run.
SMOKE_ROWS = 20_000


def rows(n: int) -> int:
    """``n``, or :data:`SMOKE_ROWS` in the smoke run."""
    return min(n, SMOKE_ROWS) if smoke() else n


@functools.lru_cache(maxsize=4)
def reviews(n_rows: int) -> pa.Table:
    from rcfast.synth import generate_batches

    return pa.Table.from_batches(list(generate_batches(rows(n_rows), seed=SEED)))


def reviews_parquet(n_rows: int) -> Path:
    """The same reviews as a Parquet file, cached across runs (in $RCFAST_CACHE or tmp)."""
    from rcfast.synth import demo_parquet

    cache = Path(os.environ.get("RCFAST_BENCH_CACHE", Path(tempfile.gettempdir()) / "rcfast-asv"))
    return demo_parquet(cache_dir=cache, n_rows=rows(n_rows), seed=SEED)
