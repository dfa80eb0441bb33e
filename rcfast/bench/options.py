"""The command-line convention of ``python -m rcfast.bench``: the options every subcommand spells
the same way (:func:`add_common_arguments`), parsers whose help is plain text ending with
examples (:func:`make_parser`), and the help and dispatch of a command made of subcommands
(:func:`subcommand_help`, :func:`dispatch`). Row counts: :func:`rcfast._cli.parse_row_count`
(re-exported here for the subcommands).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from rcfast._cli import parse_row_count  # noqa: F401 - re-exported for the subcommands

#: The help of each shared option where a subcommand says nothing more specific.
STANDARD_HELP = {
    "cache_dir": "where generated inputs are kept and reused (default: $RCFAST_CACHE, else "
                 "~/.cache/rcfast)",
    "work_dir": "where the tools write their outputs (default: a temporary directory, removed "
                "afterwards)",
    "repeat": "runs of every tool, round robin (default: 1)",
    "json": "also write the results to FILE as JSON",
    "seed": "seed of the generated input (default: 0)",
}


def make_parser(prog: str, description: str,
                examples: Sequence[str] = ()) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` whose description is printed as written (wrap it yourself) and whose
    help ends with ``examples``, one command a line."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) if examples else None
    return argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_common_arguments(parser: argparse.ArgumentParser, *, cache_dir: bool | str = False,
                         work_dir: bool | str = False, repeat: bool | str = False,
                         json: bool | str = False, seed: bool | str = False) -> None:
    """Add the options the bench subcommands share, each spelled, typed and defaulted the same
    way everywhere: ``--cache-dir DIR`` and ``--work-dir DIR`` (``Path``, default None),
    ``--repeat N`` (int, default 1), ``--json FILE`` (``Path``, default None), ``--seed N`` (int,
    default 0).

    Each keyword: False, the subcommand has no such option; True, it has it with the help of
    :data:`STANDARD_HELP`; a string, it has it with that help (what the option means in this
    subcommand, its default included).
    """
    def text(value: bool | str, key: str) -> str:
        return value if isinstance(value, str) else STANDARD_HELP[key]

    if cache_dir:
        parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                            help=text(cache_dir, "cache_dir"))
    if work_dir:
        parser.add_argument("--work-dir", type=Path, default=None, metavar="DIR",
                            help=text(work_dir, "work_dir"))
    if repeat:
        parser.add_argument("--repeat", type=int, default=1, metavar="N",
                            help=text(repeat, "repeat"))
    if json:
        parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                            help=text(json, "json"))
    if seed:
        parser.add_argument("--seed", type=int, default=0, metavar="N", help=text(seed, "seed"))


class _DeprecatedAlias(argparse.Action):
    """Stores into the new option's destination and warns that the old spelling is going."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated, use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(parser: argparse.ArgumentParser, old: str, new: str, dest: str,
                         type=None) -> None:
    """Accept ``old`` as a hidden, deprecated spelling of the option ``new`` (same ``dest``)."""
    parser.add_argument(old, dest=dest, type=type, action=_DeprecatedAlias, new=new,
                        help=argparse.SUPPRESS)


def subcommand_help(prog: str, about: Sequence[str], summaries: Mapping[str, str],
                    examples: Sequence[str], notes: Sequence[str] = ()) -> str:
    """The help of a command made of subcommands: usage, ``about`` (lines), the subcommands one
    line each, ``notes`` (lines), examples."""
    width = max(map(len, summaries))
    lines = [f"usage: {prog} SUBCOMMAND [options]", "", *about, "", "subcommands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, summary in summaries.items()]
    lines += ["", *notes, f"'{prog} SUBCOMMAND --help' lists a subcommand's options.", "",
              "examples:"]
    lines += [f"  {e}" for e in examples]
    return "\n".join(lines)


def dispatch(argv: list[str], names: Sequence[str], run: Callable[[str, list[str]], int],
             help_text: str) -> int:
    """``run(name, rest)`` for ``argv = [name, *rest]``; the help on stdout for ``-h`` or
    ``--help`` (exit status 0), on stderr with exit status 2 for no or an unknown subcommand."""
    if not argv or argv[0] in ("-h", "--help"):
        print(help_text, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] not in names:
        print(f"{help_text}\n\nerror: unknown subcommand {argv[0]!r}; choose from "
              f"{', '.join(names)}", file=sys.stderr)
        return 2
    return run(argv[0], argv[1:])
