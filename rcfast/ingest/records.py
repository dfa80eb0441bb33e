"""The records of a block: their byte spans and line offsets, pyarrow's JSON/CSV readers on a run
of whole records, and why a single record that fails to parse fails (the quarantine reason)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

if TYPE_CHECKING:
    from .formats import Plan


class _Invalid(Exception):
    """Raised when a range holds a record that cannot be parsed as a whole."""


def _check_utf8(data: bytes) -> None:
    if data.isascii():
        return
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64).tobytes())
    arr = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        arr.cast(pa.large_string())
    except pa.ArrowInvalid as exc:
        raise _Invalid("invalid_utf8") from exc


def _parse_bytes(data: bytes, plan: Plan) -> pa.Table:
    """Parse whole records with pyarrow; raise on any malformed record."""
    if plan.kind == "json":
        return pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(data) + 64),
            parse_options=pajson.ParseOptions(
                explicit_schema=plan.json_schema, unexpected_field_behavior="ignore"
            ),
        )
    cols = plan.read_columns
    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(
            use_threads=False, block_size=len(data) + 64, column_names=plan.csv_columns
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=plan.delimiter, newlines_in_values=True, double_quote=True
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in plan.csv_columns},
            include_columns=cols,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _record_bounds(data: bytes, quoted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(starts, ends, line offsets) of the non-blank records of a block, and the blank count.

    ``ends`` exclude the newline (and a CR before it); the line offset of a record is the number
    of newlines before its start. For CSV (``quoted``) a newline inside quotes ends nothing.
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    if quoted and nl.size and data.find(b'"') >= 0:
        parity = np.cumsum(arr == 34, dtype=np.int64)[nl] & 1
        rec_nl = nl[parity == 0]
    else:
        rec_nl = nl
    starts = np.concatenate([[0], rec_nl + 1]).astype(np.int64)
    ends = np.concatenate([rec_nl, [len(data)]]).astype(np.int64)
    if ends.size and starts[-1] == len(data):  # the block ends with a newline
        starts, ends = starts[:-1], ends[:-1]
    # strip CR and surrounding whitespace-only records (pyarrow skips them too)
    cr = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == 13)
    ends = ends - cr
    short = np.flatnonzero(ends - starts < 16)
    blank = np.zeros(starts.size, dtype=np.bool_)
    for i in short:
        if not data[starts[i] : ends[i]].strip():
            blank[i] = True
    line_off = np.searchsorted(nl, starts)
    keep = ~blank
    return starts[keep], ends[keep], line_off[keep], int(blank.sum())


@dataclass
class Records:
    """The non-blank records of a block: byte spans and line offsets within the block."""

    data: bytes
    starts: np.ndarray
    ends: np.ndarray
    line_off: np.ndarray

    def raw(self, r: int) -> bytes:
        # a copy: the block's memory is reused once the block is done
        return bytes(self.data[self.starts[r] : self.ends[r]])

    def chunk(self, ids: np.ndarray) -> bytes:
        """The records ``ids`` as one newline-separated byte string."""
        if ids.size and ids[-1] - ids[0] == ids.size - 1:  # contiguous: one slice, no copy loop
            return bytes(self.data[self.starts[ids[0]] : self.ends[ids[-1]]])
        return b"\n".join(self.raw(int(r)) for r in ids)


def _drop_header(data: bytes) -> tuple[bytes, int]:
    """Remove the first record (the header row); return the rest and the lines skipped."""
    pos = 0
    in_quote = False
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return b"", data.count(b"\n")
        in_quote ^= data.count(b'"', pos, nl) % 2 == 1
        if not in_quote:
            return data[nl + 1 :], data.count(b"\n", 0, nl + 1)
        pos = nl + 1


def _classify(rec: bytes, plan: Plan) -> tuple[str | None, str]:
    """Why a single record fails, or (None, '') when it looks fine on its own."""
    try:
        rec.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "invalid_utf8", f"invalid UTF-8 byte at column {exc.start + 1}"
    if plan.kind == "json":
        try:
            obj = orjson.loads(rec)
        except orjson.JSONDecodeError as exc:
            return "malformed_json", str(exc)[:200]
        if not isinstance(obj, dict):
            return "malformed_json", "line is not a JSON object"
        return None, ""

    try:
        rows = list(csv.reader(io.StringIO(rec.decode("utf-8")), delimiter=plan.delimiter))
    except csv.Error as exc:
        return "bad_csv_row", str(exc)[:200]
    if len(rows) != 1 or len(rows[0]) != len(plan.csv_columns):
        got = len(rows[0]) if len(rows) == 1 else f"{len(rows)} rows"
        return "bad_csv_row", f"expected {len(plan.csv_columns)} columns, got {got}"
    return None, ""
