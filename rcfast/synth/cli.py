"""``python -m rcfast.synth`` and ``rcfast synth``: the command line that writes generated reviews
to a Parquet file or a JSON-lines dump, checks its arguments, turns a bad output path into exit
status 2 with one line on stderr, and logs a summary of what it wrote.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

from rcfast._cli import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_common_arguments,
    one_line,
    parse_row_count,
    setup_logging,
    show_progress,
)
from rcfast.synth.catalog import _resolve_products
from rcfast.synth.writers import _Stats, write_jsonl, write_parquet


#: Row counts as the generator takes them: 0 is allowed (an empty file).
_parse_rows = functools.partial(parse_row_count, minimum=0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rcfast.synth",
        description="Generate synthetic Amazon-like reviews: the normalized table of "
        "docs/spec-weekly.md as Parquet, or raw Amazon-style JSON lines for rcfast.combine.",
        epilog="""examples:
  python -m rcfast.synth -o reviews.parquet --rows 1e6
  rcfast synth -o dump.jsonl.gz --rows 1e6 --flavor amazon2018   # input for rcfast combine
  rcfast synth -o big.parquet --rows 3e7 --seed 7 --no-progress

Exit status: 0 written, 2 bad usage or output path (one line on stderr).""",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True, help="output file (.parquet, .jsonl[.gz|.zst])")
    p.add_argument("--rows", type=_parse_rows, required=True, help="number of reviews, e.g. 1e6")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--products", type=_parse_rows, default=None,
                   help="catalog size (default rows/12)")
    p.add_argument("--format", choices=("parquet", "jsonl"), default=None,
                   help="default: from the file name")
    p.add_argument("--flavor", choices=("amazon2023", "amazon2018"), default="amazon2023",
                   help="JSONL field names")
    p.add_argument("--compression", choices=("zstd", "snappy"), default="zstd",
                   help="Parquet compression")
    p.add_argument("--row-group-rows", type=_parse_rows, default=1_000_000,
                   help="Parquet rows per row group (default 1e6)")
    add_common_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 on bad usage)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed the message
        return int(e.code or 0)
    fmt = args.format
    name = args.output.lower()
    if fmt is None:
        fmt = "jsonl" if any(name.endswith(s) for s in (".jsonl", ".json", ".jsonl.gz",
                                                        ".json.gz", ".jsonl.zst", ".json.zst")) \
            else "parquet"
    log = setup_logging("rcfast.synth", args.quiet)
    for bad, msg in ((args.seed < 0, "--seed must be >= 0"),
                     (args.products is not None and args.products < 1, "--products must be >= 1"),
                     (args.row_group_rows < 1, "--row-group-rows must be >= 1")):
        if bad:
            parser.print_usage(sys.stderr)
            log.error("%s", msg)
            return EXIT_USAGE
    stats = _Stats(_resolve_products(args.rows, args.products))
    t0 = time.perf_counter()
    try:
        if fmt == "parquet":
            out = write_parquet(args.output, args.rows, args.seed,
                                row_group_rows=args.row_group_rows, compression=args.compression,
                                n_products=args.products, progress=show_progress(args),
                                _stats=stats)
        else:
            out = write_jsonl(args.output, args.rows, args.seed, flavor=args.flavor,
                              n_products=args.products, progress=show_progress(args),
                              _stats=stats)
    except OSError as exc:  # read-only directory, -o under a file, disk full
        log.error("-o %s: %s", args.output, one_line(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted; nothing was written")
        return EXIT_INTERRUPTED
    secs = time.perf_counter() - t0
    s = stats.as_dict()
    size = out.stat().st_size
    log.info("wrote %s: %s rows, %s products, %s .. %s, %.1f MB, %.1f s (%.2f M rows/s)",
             out, f"{s['rows']:,}", f"{s['products']:,}", s["first"], s["last"], size / 1e6,
             secs, s["rows"] / max(secs, 1e-9) / 1e6)
    return EXIT_OK
