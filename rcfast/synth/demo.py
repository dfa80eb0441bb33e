"""The demo dataset: generated reviews cached as Parquet under :func:`default_cache_dir`, keyed
by row count, seed and :data:`~rcfast.synth.generator.GENERATOR_VERSION`, so that the demo run,
the benchmarks and the tests generate each input only once per machine.
"""

from __future__ import annotations

import os
import pathlib

from rcfast.synth.generator import GENERATOR_VERSION, _check_n_rows
from rcfast.synth.writers import write_parquet


def default_cache_dir() -> pathlib.Path:
    """``$RCFAST_CACHE`` if set, else ``~/.cache/rcfast``."""
    env = os.environ.get("RCFAST_CACHE")
    return pathlib.Path(env) if env else pathlib.Path.home() / ".cache" / "rcfast"


def demo_parquet(cache_dir: str | os.PathLike[str] | None = None, n_rows: int = 2_000_000,
                 seed: int = 0) -> pathlib.Path:
    """Return the demo dataset's Parquet path, generating it once into the cache directory.

    Keyed by (n_rows, seed, :data:`GENERATOR_VERSION`); written atomically, so concurrent
    callers at worst both generate and one rename wins.
    """
    _check_n_rows(n_rows)
    d = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = d / f"synth-v{GENERATOR_VERSION}-n{int(n_rows)}-s{int(seed)}.parquet"
    if not path.exists():
        write_parquet(path, n_rows, seed)
    return path
