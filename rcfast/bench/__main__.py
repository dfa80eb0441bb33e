"""``python -m rcfast.bench SUBCOMMAND ...`` — the comparison benchmarks.

Subcommands are looked up in :data:`SUBCOMMANDS` (name → where its ``main`` is and one line of
what it does); ``main`` takes the remaining arguments (``argv: list[str]``) and returns the exit
status. Adding a benchmark is one line here; its module is imported only when it is asked for.
The options the subcommands share come from :func:`rcfast.bench.options.add_common_arguments`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import NamedTuple

from rcfast.bench.options import dispatch, subcommand_help


class Subcommand(NamedTuple):
    target: str  #: "module:function"
    summary: str  #: one line for the listing


SUBCOMMANDS: dict[str, Subcommand] = {
    "weekly": Subcommand("rcfast.bench.weekly:main",
                         "the weekly panel: rcfast vs pandas, Polars, DuckDB (time, memory, "
                         "agreement)"),
    "train-data": Subcommand("rcfast.bench.train_data:main",
                             "windows/s of the training data path: bulk gather vs a per-sample "
                             "Dataset"),
    "combine": Subcommand("rcfast.bench.combine:main",
                          "the ingest step (JSONL.gz to Parquet): rcfast vs Polars, DuckDB, "
                          "pyarrow, pandas"),
    "scale": Subcommand("rcfast.bench.scale:main",
                        "the weekly step past one process's memory: out of core, Dask, DuckDB's "
                        "limit"),
    "asv": Subcommand("rcfast.bench.asv:main",
                      "record, backfill, compare and publish the asv history (asv_bench/)"),
}

_EXAMPLES = [
    "python -m rcfast.bench weekly --rows 2e5 --tools rcfast,polars,duckdb",
    "python -m rcfast.bench combine --rows 1e6 --repeat 3 --json combine.json",
    "python -m rcfast.bench asv compare main",
]


def _load(target: str) -> Callable[[list[str]], int]:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func or "main")


def _usage() -> str:
    return subcommand_help(
        "python -m rcfast.bench",
        ["The comparison benchmarks: rcfast against pandas, Polars, DuckDB and others, each",
         "tool timed in its own process on the same generated input."],
        {name: sub.summary for name, sub in SUBCOMMANDS.items()}, _EXAMPLES,
        notes=["Shared options are spelled the same in every subcommand: --cache-dir DIR,",
               "--work-dir DIR, --repeat N, --json FILE, --seed N."])


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand; exit status 2 on an unknown or missing one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return dispatch(argv, list(SUBCOMMANDS),
                    lambda name, rest: int(_load(SUBCOMMANDS[name].target)(rest) or 0), _usage())


if __name__ == "__main__":
    sys.exit(main())
