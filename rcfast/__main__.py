"""``rcfast COMMAND ...`` (and ``python -m rcfast COMMAND ...``): one entry point for the commands.

Each command is also ``python -m rcfast.COMMAND``; a command's module is imported only when it
is asked for, so ``rcfast --help`` answers at once.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

#: command -> (``"module:function"`` taking ``argv`` and returning the exit status, summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "weekly": ("rcfast.weekly:main", "review rows -> the weekly per-product panel"),
    "combine": ("rcfast.combine:main", "raw review dumps -> one normalized Parquet dataset"),
    "forecast": ("rcfast.forecast:main", "forecasts (and evaluation) from a trained run"),
    "synth": ("rcfast.synth:main", "synthetic Amazon-like reviews"),
    "bench": ("rcfast.bench.__main__:main", "the comparison benchmarks"),
}


def _usage() -> str:
    from rcfast import __version__

    width = max(map(len, COMMANDS))
    lines = [f"usage: rcfast {{{','.join(COMMANDS)}}} [options]",
             "       rcfast COMMAND --help", "",
             f"rcfast {__version__}: weekly per-product panels from huge review dumps.", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "examples:",
              "  rcfast weekly --demo -o demo-out/panel.parquet",
              "  rcfast combine Books.jsonl.gz -o combined/",
              "  rcfast weekly combined/ -o panel.parquet",
              "", "The weekly panel is specified in docs/spec-weekly.md."]
    return "\n".join(lines)


def _load(target: str) -> Callable[[list[str]], int]:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func or "main")


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a command; exit status 2 on an unknown or missing one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(_usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from rcfast import __version__

        print(f"rcfast {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"rcfast: error: unknown command {name!r}; choose from {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    return int(_load(COMMANDS[name][0])(rest) or 0)


if __name__ == "__main__":
    from rcfast._cli import exit_cli

    exit_cli(main())
