"""Benchmark inputs: generated once per process with fixed seeds (rcfast.synth)."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import pyarrow as pa

SEED = 0


@functools.lru_cache(maxsize=4)
def reviews(n_rows: int) -> pa.Table:
    from rcfast.synth import generate_batches

    return pa.Table.from_batches(list(generate_batches(n_rows, seed=SEED)))


def reviews_parquet(n_rows: int) -> Path:
    """The same reviews as a Parquet file, cached across runs (in $RCFAST_CACHE or tmp)."""
    from rcfast.synth import demo_parquet

    cache = Path(os.environ.get("RCFAST_BENCH_CACHE", Path(tempfile.gettempdir()) / "rcfast-asv"))
    return demo_parquet(cache_dir=cache, n_rows=n_rows, seed=SEED)
