"""From batches of Arrow columns to the plain arrays of :class:`rcfast.weekly.panel.Columns`.

Batch by batch: check and convert the columns, encode the product ids, compute weeks, set rows
aside (counted per reason, with examples; ``strict`` raises on the first), and copy the kept
values into preallocated compact arrays. Memory holds one batch plus the compact arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rcfast._cli import progress_bar
from rcfast.errors import InputError
from rcfast.kernels import aggregate, strings
from rcfast.kernels.time import week_and_reason
from rcfast.schema import TS_MAX_MS, TS_MIN_MS
from rcfast.weekly.convert import REJECT_REASONS, convert_batch
from rcfast.weekly.panel import Columns
from rcfast.weekly.products import ProductEncoder, ProductKeys
from rcfast.weekly.read import Batch, Prefetch, ReadOptions, parquet_rows, read_batches

MAX_EXAMPLES = 20

_FIELD_OF_REASON = {"null_product_id": "product_id", "null_timestamp": "timestamp",
                    "timestamp_out_of_range": "timestamp", "after_until": "timestamp",
                    "null_rating": "rating", "rating_out_of_range": "rating"}
_FIX = {
    "null_product_id": "drop or fill the row's product id",
    "null_timestamp": "fix the time, or map the right column with --map timestamp=COLUMN",
    "timestamp_out_of_range": "check the unit (--timestamp-unit) or drop the row",
    "null_rating": "drop the row or fill its rating",
    "rating_out_of_range": "ratings must lie in [1, 5]; map the right column or rescale it",
    "after_until": "raise --until or leave it out",
}


@dataclass
class Rejects:
    """Rows set aside, per reason, with a few examples (file, 0-based row in the file)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))
    examples: list[dict] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: Rejects) -> None:
        for k, v in other.counts.items():
            self.counts[k] = self.counts.get(k, 0) + v
        self.examples = sorted(self.examples + other.examples,
                               key=lambda e: (e["file"], e["row"]))[:MAX_EXAMPLES]


def count_rejects(batch: Batch, reason: np.ndarray, rej: Rejects, strict: bool) -> None:
    bad = np.flatnonzero(reason >= 0)
    if bad.size == 0:
        return
    for code, c in enumerate(np.bincount(reason[bad], minlength=len(REJECT_REASONS))):
        rej.counts[REJECT_REASONS[code]] += int(c)
    for i in bad[:max(0, MAX_EXAMPLES - len(rej.examples))]:
        why = REJECT_REASONS[reason[i]]
        fld = _FIELD_OF_REASON[why]
        rej.examples.append({"file": str(batch.path), "row": int(batch.row0 + i),
                             "column": batch.colmap.get(fld, fld), "reason": why})
    if strict:
        i = int(bad[0])
        why = REJECT_REASONS[reason[i]]
        col = batch.colmap.get(_FIELD_OF_REASON[why], _FIELD_OF_REASON[why])
        raise InputError(f"{batch.path}: row {batch.row0 + i} (0-based), column {col!r}: "
                         f"{why} ({_FIX[why]}); without --strict such rows are set aside "
                         "and counted")


@dataclass
class LoadedRows:
    """Every batch's rows, checked and converted, with the product ids not yet final: ``code``
    holds what the ``ids`` collector's ``add`` returned (-1 where a row is set aside)."""

    code: np.ndarray  #: int32 per row
    week: np.ndarray  #: int32 per row
    rows: np.ndarray  #: int64 [n, ROW_WIDTH], packed values
    rejects: Rejects
    rows_read: int


def load_rows(batches: Iterable[Batch], total_rows: int, ropts: ReadOptions,
              until_week: int | None, strict: bool, ids: ProductEncoder | ProductKeys,
              progress: bool = False) -> LoadedRows:
    """Convert every batch, its product ids through ``ids`` (a :class:`ProductEncoder`, or
    :class:`ProductKeys` for the split stage)."""
    code = np.empty(total_rows, dtype=np.int32)
    week = np.empty(total_rows, dtype=np.int32)
    rows = np.empty((total_rows, aggregate.ROW_WIDTH), dtype=np.int64)
    rej = Rejects()
    pos = 0
    bar = progress_bar(progress and total_rows >= 4 * (1 << 20), total_rows, "read")
    for batch in batches:
        b = convert_batch(batch.path, batch.cols, batch.colmap, ropts)
        n = b.n
        if pos + n > total_rows:
            raise InputError(f"{batch.path}: more rows than its metadata says; is the file "
                             "being written to?")
        tl_min, tl_max = b.pack(rows, pos)
        if tl_max >= aggregate.TEXT_LEN_LIMIT or tl_min <= -aggregate.TEXT_LEN_LIMIT:
            raise InputError(f"{batch.path}: column {batch.colmap.get('text_len')!r} "
                             f"(text_len): values must lie within +-2**59, got {tl_min} .. "
                             f"{tl_max}; is it the right column?")
        sl = slice(pos, pos + n)
        c = ids.add(b.product_chunks)
        rating = rows[sl, 0].view(np.float64)  # as packed: NaN where null
        w, reason, n_bad = week_and_reason(b.ms, b.ts_valid, rating, c, TS_MIN_MS, TS_MAX_MS,
                                           until_week if until_week is not None else 0,
                                           until_week is not None)
        if n_bad:
            count_rejects(batch, reason, rej, strict)
            c[reason >= 0] = -1
        code[sl], week[sl] = c, w
        pos += n
        bar.update(n)
        del b, batch
    bar.close()
    if pos != total_rows:
        code, week, rows = code[:pos], week[:pos], rows[:pos]
    return LoadedRows(code, week, rows, rej, pos)


def load_batches(batches: Iterable[Batch], total_rows: int, ropts: ReadOptions,
                 until_week: int | None, strict: bool,
                 progress: bool = False) -> tuple[Columns, Rejects, int]:
    """Convert every batch; return ``(Columns, Rejects, rows_read)``."""
    enc = ProductEncoder()
    got = load_rows(batches, total_rows, ropts, until_week, strict, enc, progress)
    mapping, products = enc.finish()
    strings.remap(got.code, mapping)
    return Columns(products, got.code, got.week, got.rows), got.rejects, got.rows_read


def load(paths: list[Path], ropts: ReadOptions, until_week: int | None, strict: bool,
         progress: bool = False, meanwhile=None) -> tuple[Columns, Rejects, int]:
    """Read, check and convert all files, batch by batch. ``meanwhile`` (a callable) runs on
    this thread once the reader has started on the first batch: Numba's set-up (0.3-0.4 s,
    Python) then overlaps the first batch's Parquet decoding (pyarrow, no GIL)."""

    def batches():
        for path in paths:
            yield from read_batches(path, ropts)

    reader = Prefetch(batches())
    try:
        if meanwhile is not None:
            meanwhile()
        return load_batches(reader, parquet_rows(paths), ropts, until_week, strict, progress)
    finally:
        reader.close()


__all__ = ["MAX_EXAMPLES", "LoadedRows", "Rejects", "count_rejects", "load", "load_batches",
           "load_rows"]
