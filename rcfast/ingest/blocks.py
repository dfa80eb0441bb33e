"""Block parsing: a block of whole records → normalized rows, spilled by partition.

The Numba scanner reads the JSON lines it fully understands; pyarrow's C++ JSON/CSV readers
take the rest (both release the GIL). A range that fails to parse is split and retried down to
single records, so a bad line costs only its own neighbourhood and is reported with its exact
line number. The records of a block and pyarrow's readers on them are
:mod:`rcfast.ingest.records`.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .formats import Plan
from .normalize import REJECTS, normalize
from .raw_blocks import RawBlock
from .records import (
    Records,
    _check_utf8,
    _classify,
    _drop_header,
    _Invalid,
    _parse_bytes,
    _record_bounds,
)
from .string_hashes import hash_strings

if TYPE_CHECKING:
    from .pipeline import Quarantine, Spill

_LEAF = 16  # records: below this a failing range is parsed record by record
_SPLIT = 8  # a failing range is retried in this many pieces


def partition_ids(product_id: pa.Array, n: int) -> np.ndarray:
    """Output partition of each product: stable hash of its UTF-8 bytes modulo ``n``."""
    if n == 1:
        return np.zeros(len(product_id), dtype=np.int64)
    h = hash_strings(product_id, short=True)
    return (h % np.uint64(n)).astype(np.int64)


_scanner_lock = threading.Lock()
_scanner = None


def get_scanner():
    """The JSON-lines scanner, once per process, loaded from Numba's on-disk cache (compiled on
    a machine's first run) and called once so that later threads find it ready."""
    global _scanner
    with _scanner_lock:
        if _scanner is None:
            from rcfast.kernels import init_numba
            from rcfast.kernels.ingest_json import key_words, scan_jsonl

            init_numba()
            # the argument types of the real calls, so that the cached overload is loaded
            keys, offs = np.zeros(1, dtype=np.uint8), np.array([0, 1], dtype=np.int64)
            scan_jsonl(np.frombuffer(b"{}\n", dtype=np.uint8), keys, offs,
                       np.zeros(1, dtype=np.uint8), *key_words(keys, offs), -1)
            _scanner = scan_jsonl
    return _scanner


@dataclass
class BlockResult:
    file_idx: int
    lines: int = 0
    blank: int = 0
    spilled: int = 0
    quarantined: Counter = field(default_factory=Counter)
    ts_min: int | None = None  #: epoch ms of the kept rows
    ts_max: int | None = None
    #: --strict: the block's bad lines, (line, reason, detail, raw); the first is raised once
    #: the whole block is read (line-level reasons are found while parsing, row-level ones
    #: after normalizing, so the order they are met in is not the order of the lines)
    strict_hits: list = field(default_factory=list)


class BlockProcessor:
    """Parses, normalizes, quarantines and spills blocks; one instance shared by all workers."""

    def __init__(self, plans: list[Plan], spill: Spill, quarantine: Quarantine) -> None:
        self.plans = plans
        self.spill = spill
        self.quarantine = quarantine

    # -- text blocks ------------------------------------------------------------------------
    def process_block(self, blk: RawBlock) -> BlockResult:
        try:
            return self._raise_first_hit(self._process_block(blk))
        finally:
            blk.done()  # nothing made from the block refers to its bytes (they are copied)

    def _raise_first_hit(self, res: BlockResult) -> BlockResult:
        if res.strict_hits:
            line, reason, detail, raw = min(res.strict_hits, key=lambda h: h[0])
            self.quarantine.add(res.file_idx, line, reason, detail, raw)  # raises (strict)
        return res

    def _process_block(self, blk: RawBlock) -> BlockResult:
        plan = self.plans[blk.file_idx]
        res = BlockResult(blk.file_idx)
        data = blk.data
        first_line = blk.first_line
        if blk.seq == -1:  # the unterminated tail of a truncated compressed stream
            res.lines = 1
            self._quarantine(res, first_line, "truncated_stream",
                             "partial last line: the compressed stream ends inside it", data)
            return res
        if plan.kind == "csv" and plan.csv_has_header and blk.seq == 0:
            data, skipped = _drop_header(bytes(data))
            first_line += skipped
        if plan.scan is not None and len(data) < 2**31 - 1:
            parts, recs = self._scan_parts(data, plan, res, first_line,
                                           blk.newlines if data is blk.data else -1)
        else:
            data = bytes(data)  # pyarrow's readers and the record split want bytes
            parts, recs = self._arrow_parts(data, plan, res, first_line)
        if not parts:
            return res
        norms, rec_ids = [], []
        for table, ids in parts:
            if table.num_rows:
                norms.append(normalize(table, plan))
                rec_ids.append(np.arange(table.num_rows, dtype=np.int64) if ids is None else ids)
        if not norms:
            return res
        table = pa.concat_tables([n.table for n in norms]) if len(norms) > 1 else norms[0].table
        reject = np.concatenate([n.reject for n in norms])
        rec = np.concatenate(rec_ids)
        bad = np.flatnonzero(reject)
        if bad.size:
            if recs is None:
                recs = Records(data, *_record_bounds(data, plan.kind == "csv")[:3])
            for row in bad:
                r = int(rec[row])
                reason, detail = REJECTS[int(reject[row])]
                self._quarantine(res, first_line + int(recs.line_off[r]), reason, detail,
                                 recs.raw(r))
        self._spill(table, reject, rec, blk.file_idx, blk.seq, res)
        return res

    def _arrow_parts(self, data: bytes, plan: Plan, res: BlockResult, first_line: int):
        """pyarrow on the whole block; on failure, ranges of records down to single ones."""
        try:
            _check_utf8(data)
            table = _parse_bytes(data, plan)
            if plan.kind == "json":
                # one row per line is the common case; anything else (blank lines, two objects
                # on a line) is sorted out record by record below
                expected = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
                if table.num_rows != expected:
                    raise _Invalid("row count")
            res.lines += table.num_rows
            return [(table, None)], None
        except (_Invalid, pa.ArrowInvalid, UnicodeDecodeError):
            pass
        starts, ends, line_off, res.blank = _record_bounds(data, plan.kind == "csv")
        recs = Records(data, starts, ends, line_off)
        parts: list = []
        self._parse_range(recs, plan, np.arange(starts.size, dtype=np.int64), parts, res,
                          first_line)
        return parts, recs

    def _scan_parts(self, data: bytes, plan: Plan, res: BlockResult, first_line: int,
                    newlines: int = -1):
        """The Numba scanner reads the lines it fully understands; pyarrow takes the rest.
        ``newlines``: the reader's count of ``\n`` in ``data`` (-1: not known)."""
        from rcfast.kernels.json_fields import KIND_TEXT

        scan_jsonl = get_scanner()
        spec = plan.scan
        # always a read-only array: one Numba signature, loaded from the cache (a writable
        # array would be a new signature and a 20 s compile in the middle of a run)
        arr = np.frombuffer(data, dtype=np.uint8)
        if arr.flags.writeable:
            arr = np.frombuffer(bytes(data), dtype=np.uint8)
        out = scan_jsonl(arr, *spec.args, newlines)
        if out.n_ok < 0:  # the count was wrong (it never should be): the scanner counts itself
            out = scan_jsonl(arr, *spec.args, -1)
        n_ok, rs, status, present = out.n_ok, out.rec_start, out.status, out.present
        iv, fv, th = out.ival, out.fval, out.text_hash
        soffs, sbytes, slot = out.str_offsets, out.str_bytes, out.str_slot
        res.blank += int(out.n_blank)
        recs = Records(data, out.rec_start, out.rec_end, out.line_idx)
        parts: list = []
        if n_ok:
            cols, names = [], []
            for k, (name, kind) in enumerate(zip(spec.names, spec.kinds)):
                valid = present[k]
                mask = None if valid.all() else ~valid
                if kind == KIND_TEXT:
                    cols.append(pa.array(iv[k], pa.int64(), mask=mask))
                    names.append("__text_len")
                    cols.append(pa.array(th, pa.uint64()))
                    names.append("__text_hash")
                    continue
                if kind == 0:  # KIND_STR: the scanner already laid the bytes out Arrow-style
                    s = int(slot[k])
                    offsets = soffs[s, : n_ok + 1]
                    body = sbytes[s, : int(offsets[-1])]
                    bitmap = None if mask is None else pa.py_buffer(
                        np.packbits(valid, bitorder="little"))
                    col = pa.Array.from_buffers(
                        pa.string(), n_ok, [bitmap, pa.py_buffer(offsets), pa.py_buffer(body)],
                        null_count=-1 if mask is not None else 0)
                elif kind == 2:  # KIND_FLOAT
                    col = pa.array(fv[k], pa.float64(), mask=mask)
                elif kind == 3:  # KIND_BOOL
                    col = pa.array(iv[k].astype(np.bool_), pa.bool_(), mask=mask)
                else:  # KIND_INT, KIND_LIST_FIRST
                    col = pa.array(iv[k], pa.int64(), mask=mask)
                cols.append(col)
                names.append(name)
            parts.append((pa.Table.from_arrays(cols, names=names), out.ok_idx))
            res.lines += int(n_ok)
        if n_ok < rs.size:
            self._parse_range(recs, plan, np.flatnonzero(status), parts, res, first_line)
        return parts, recs

    def _parse_range(self, recs: Records, plan: Plan, ids: np.ndarray, parts: list,
                     res: BlockResult, first_line: int) -> None:
        """Parse the records ``ids`` with pyarrow, splitting the range on failure."""
        if ids.size == 0:
            return
        chunk = recs.chunk(ids)
        try:
            _check_utf8(chunk)
            t = _parse_bytes(chunk, plan)
            if t.num_rows != ids.size:
                raise _Invalid("row count")
            parts.append((t, ids))
            res.lines += int(ids.size)
            return
        except (_Invalid, pa.ArrowInvalid, UnicodeDecodeError):
            pass
        if ids.size > _LEAF:
            step = max(1, -(-ids.size // _SPLIT))
            for a in range(0, ids.size, step):
                self._parse_range(recs, plan, ids[a : a + step], parts, res, first_line)
            return
        for r in ids:
            r = int(r)
            rec = recs.raw(r)
            res.lines += 1
            reason, detail = _classify(rec, plan)
            if reason is None:
                try:
                    t = _parse_bytes(rec, plan)
                    if t.num_rows == 1:
                        parts.append((t, np.array([r], dtype=np.int64)))
                        continue
                    reason = "malformed_json" if plan.kind == "json" else "bad_csv_row"
                    detail = "record does not hold exactly one row"
                except pa.ArrowInvalid as exc:
                    reason, detail = "wrong_type", str(exc).splitlines()[0][:200]
            self._quarantine(res, first_line + int(recs.line_off[r]), reason, detail, rec)

    def _quarantine(self, res: BlockResult, line: int, reason: str, detail: str, raw) -> None:
        if self.quarantine.strict:
            res.strict_hits.append((line, reason, detail, raw))
            return
        self.quarantine.add(res.file_idx, line, reason, detail, raw)
        res.quarantined[reason] += 1

    def _spill(self, table: pa.Table, reject: np.ndarray, rec: np.ndarray | None, file_idx: int,
               seq: int, res: BlockResult) -> None:
        n = table.num_rows
        row = np.arange(n, dtype=np.int64) if rec is None else rec
        if reject.any():
            keep = reject == 0
            table = table.filter(pa.array(keep))
            row = row[keep]
        if table.num_rows == 0:
            return
        # (block seq, record) orders rows as in the file: dedup keeps the first occurrence
        seq_col = (np.int64(seq) << np.int64(32)) | row
        table = table.append_column("_file", pa.array(np.full(table.num_rows, file_idx,
                                                              dtype=np.int32)))
        table = table.append_column("_seq", pa.array(seq_col))
        table = pa.Table.from_arrays(table.columns, schema=self.spill.schema)
        parts = partition_ids(table.column("product_id").combine_chunks(), self.spill.n)
        self.spill.write(table, parts)
        res.spilled += table.num_rows
        lo, hi = pc.min_max(table.column("timestamp").cast(pa.int64())).values()
        res.ts_min, res.ts_max = lo.as_py(), hi.as_py()

    # -- Parquet input ----------------------------------------------------------------------
    def process_table(self, file_idx: int, batch: pa.Table, first_row: int, seq: int
                      ) -> BlockResult:
        plan = self.plans[file_idx]
        res = BlockResult(file_idx, lines=batch.num_rows)
        if batch.num_rows == 0:
            return res
        norm = normalize(batch, plan)
        bad = np.flatnonzero(norm.reject)
        if bad.size:
            rows = batch.take(pa.array(bad)).to_pylist()
            for i, rec in zip(bad, rows):
                reason, detail = REJECTS[int(norm.reject[i])]
                raw = orjson.dumps(rec, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
                self._quarantine(res, first_row + int(i) + 1, reason, detail, raw)
        self._raise_first_hit(res)
        self._spill(norm.table, norm.reject, None, file_idx, seq, res)
        return res
