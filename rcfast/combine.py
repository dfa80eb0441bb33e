"""``rcfast combine INPUT... -o OUT`` (``python -m rcfast.combine``): raw review dumps → one
normalized Parquet dataset.

Reads Amazon 2023 / 2018 / 2014 JSON lines, the header-less 2014 CSV, Yelp ``review.json`` and
CSV/TSV/Parquet with ``--map FIELD=COLUMN``, plain or .gz/.zst/.bz2, and writes the normalized
review table of ``docs/spec-weekly.md`` as ``OUT/part-00000.parquet`` … partitioned by a stable
hash of product_id (every product lives in exactly one part file), with ``OUT/_summary.json``
and bad lines in ``OUT/_quarantine/quarantine.jsonl``. See ``docs/combine.md``. The engine is
:mod:`rcfast.ingest.run`; this module is its command line.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from rcfast._cli import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_common_arguments,
    gc_paused,
    one_line,
    setup_logging,
    show_progress,
    without_pandas,
)
from rcfast.errors import InputError, StrictFailure
from rcfast.ingest.run import DEFAULT_BLOCK_BYTES, combine
from rcfast.ingest.sources import FORMATS
from rcfast.schema import PARTITIONING_KEY

__all__ = ["combine", "main", "InputError", "StrictFailure", "PARTITIONING_KEY"]


def format_summary(summary: dict[str, Any], with_warnings: bool = True) -> str:
    """The short terminal table: one line per input file and a total."""
    rows = [("file", "format", "lines", "written", "dups", "quarantined")]
    for f in summary["files"]:
        q = f["quarantined"]
        qs = str(f["quarantined_total"])
        if q:
            qs += " (" + ", ".join(f"{k} {v}" for k, v in q.items()) + ")"
        rows.append((os.path.basename(f["path"]), f["format"], f"{f['lines_read']:,}",
                     f"{f['rows_written']:,}", f"{f['duplicates']:,}", qs))
    q = summary["quarantined"]
    qs = str(summary["quarantined_total"])
    if q:
        qs += " (" + ", ".join(f"{k} {v}" for k, v in q.items()) + ")"
    rows.append(("total", "", f"{summary['lines_read']:,}", f"{summary['rows_written']:,}",
                 f"{summary['duplicates']:,}", qs))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for j, r in enumerate(rows):
        cells = [r[i].ljust(widths[i]) if i < 2 else r[i].rjust(widths[i]) for i in range(5)]
        lines.append("  ".join(cells) + "  " + r[5])
        if j == 0 or j == len(rows) - 2:
            lines.append("-" * (sum(widths) + 10 + len("quarantined")))
    for w in summary.get("warnings", []) if with_warnings else []:
        lines.append("warning: " + w)
    rate = summary["lines_read"] / summary["elapsed_s"] if summary["elapsed_s"] else 0.0
    lines.append(
        f"{summary['partitioning']['n']} partitions in {summary['output']} "
        f"({summary['elapsed_s']:.1f} s, {rate:,.0f} lines/s)"
    )
    return "\n".join(lines)


_EXAMPLES = """\
examples:
  python -m rcfast.combine Books.jsonl.gz Electronics.jsonl.gz -o combined/
  rcfast combine dumps/ -o combined/ --workers 8
  rcfast combine reviews.csv -o combined/ --map product_id=item --map rating=stars
  rcfast combine yelp/review.json -o yelp-combined/ --strict
  python -m rcfast.weekly combined/ -o panel.parquet    # the next step

The output is the normalized review table of docs/spec-weekly.md, partitioned by product;
docs/combine.md describes the formats, the summary and the quarantine. Exit status: 0 done
(warnings on stderr), 2 bad usage, input or output path (one line on stderr), 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m rcfast.combine",
        description="Normalize raw review dumps (Amazon 2023/2018/2014, Yelp, CSV/TSV/Parquet; "
        "plain, .gz, .zst, .bz2) into one Parquet dataset partitioned by product.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("inputs", nargs="+", metavar="INPUT", help="files, directories or globs")
    ap.add_argument("-o", "--output", required=True, metavar="OUT",
                    help="output directory (replaced atomically if it is an earlier output)")
    ap.add_argument("--format", choices=FORMATS, default=None,
                    help="input format (default: detected from each file's content)")
    ap.add_argument("--map", action="append", metavar="FIELD=COLUMN", default=[],
                    help="take FIELD from raw COLUMN (fields: product_id, user_id, timestamp, "
                    "rating, helpful_votes, verified, text_len, category, text); repeatable")
    ap.add_argument("--strict", action="store_true",
                    help="stop at the first bad line (exit 2) instead of quarantining it")
    ap.add_argument("--keep-text", action="store_true", help="keep the review text column")
    ap.add_argument("--keep-duplicates", action="store_true",
                    help="keep exact duplicates (same user, product, timestamp and text)")
    ap.add_argument("--partitions", default="auto", metavar="N|auto",
                    help="number of output files (default auto: 16, more for inputs over ~2 GB "
                    "uncompressed, so that one partition stays small)")
    ap.add_argument("--workers", type=int, default=None,
                    help="worker threads (default: the CPUs this process may use, "
                    "SLURM_CPUS_PER_TASK in a Slurm job)")
    ap.add_argument("--category", default=None,
                    help="category of every row (default: a category column, else the file name)")
    ap.add_argument("--timestamp-unit", choices=("auto", "s", "ms"), default=None,
                    help="unit of numeric timestamps in CSV/TSV/Parquet/generic JSON (default: "
                    "by format; auto = seconds below 1e11, else milliseconds)")
    ap.add_argument("--block-size", type=float, default=DEFAULT_BLOCK_BYTES / 2**20,
                    metavar="MiB", help="decompressed bytes per parse block (default 16)")
    add_common_arguments(ap)
    return ap


PROG = "rcfast.combine"
log = logging.getLogger("rcfast.combine")


def main(argv: list[str] | None = None) -> int:
    """The command line: exit 0 done, 2 bad usage, input or output path, 130 interrupted."""
    from rcfast._bytecode import ensure_compiled

    ensure_compiled()  # once, where PYTHONDONTWRITEBYTECODE keeps Python from doing it
    ap = build_parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the reason (or --help, --version)
        return int(exc.code or 0)
    setup_logging(PROG, args.quiet)
    try:
        with gc_paused(), without_pandas():
            summary = _run_from_args(args)
    except (InputError, StrictFailure) as exc:
        log.error("%s", one_line(exc))
        return EXIT_USAGE
    except OSError as exc:  # an input or output path: unreadable, read-only, disk full, ...
        where = "" if exc.filename is not None else f" (writing {args.output})"
        log.error("%s%s", one_line(exc), where)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted; the output was not changed")
        return EXIT_INTERRUPTED
    for w in summary["warnings"]:
        log.warning("%s", w)
    if not args.quiet:
        print(format_summary(summary, with_warnings=False))
    return EXIT_OK


def _run_from_args(args: argparse.Namespace) -> dict[str, Any]:
    if args.partitions == "auto":
        partitions = None
    else:
        try:
            partitions = int(args.partitions)
        except ValueError:
            raise InputError(f"--partitions {args.partitions!r}: a number or auto") from None
    return combine(
        args.inputs, args.output, fmt=args.format, mapping=args.map, strict=args.strict,
        keep_text=args.keep_text, keep_duplicates=args.keep_duplicates,
        partitions=partitions, workers=args.workers, category=args.category,
        timestamp_unit=args.timestamp_unit, block_bytes=int(args.block_size * 2**20),
        progress=show_progress(args),
    )


if __name__ == "__main__":
    from rcfast._cli import exit_cli

    exit_cli(main())
