"""``python -m rcfast.bench SUBCOMMAND ...`` — the comparison benchmarks.

Subcommands are looked up in :data:`SUBCOMMANDS` (name → ``"module:function"``); the function
takes the remaining arguments (``argv: list[str]``) and returns the exit status. Adding a
benchmark is one line here; its module is imported only when it is asked for.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

SUBCOMMANDS: dict[str, str] = {
    "weekly": "rcfast.bench.weekly:main",
    "train-data": "rcfast.bench.train_data:main",
    "combine": "rcfast.bench.combine:main",
    "scale": "rcfast.bench.scale:main",
    "asv": "rcfast.bench.asv:main",
}


def _load(target: str) -> Callable[[list[str]], int]:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func or "main")


def _usage() -> str:
    names = "|".join(SUBCOMMANDS)
    return (f"usage: python -m rcfast.bench {{{names}}} [options]\n"
            f"       python -m rcfast.bench SUBCOMMAND --help")


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand; exit status 2 on an unknown or missing one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"{_usage()}\nerror: unknown subcommand {name!r}; "
              f"choose from {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    return int(_load(SUBCOMMANDS[name])(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
