"""One Parquet file from row groups encoded in parallel.

Kept only while pyarrow cannot encode the row groups of one file in parallel: pyarrow 26's
``ParquetWriter`` has no such option (Arrow C++'s column-parallel ``use_threads`` writer
property is not exposed either). When it can, write through it and delete this module.

pyarrow encodes a Parquet file on one thread (its writer's column-parallel mode is not exposed),
and for the weekly panel that single encoder is the critical path: ~0.5 CPU-s per million panel
rows, half of it snappy, ~7 s of a 31.8M-review run. Here each row group is encoded on its own
thread as a complete one-row-group Parquet file in memory, with the same writer options; the
pieces are then appended in order to the output (their page data, byte for byte) and one footer
is written for all of them.

The footer is Thrift (compact protocol). Each piece's footer is decoded generically (every field
kept, whatever its id), its row groups' file offsets are shifted by the piece's position in the
output (``RowGroup.file_offset``, ``ColumnChunk.file_offset``, the page-index offsets and, in
``ColumnMetaData``, the data, index and dictionary page and bloom filter offsets) and their
ordinals renumbered; schema, ``created_by`` and column orders come from the first piece. What
pyarrow would write for the same row groups, statistics included, up to those offsets:
``tests/test_parquet_stitch.py`` reads the result back with pyarrow, Polars and DuckDB.
Field ids: ``parquet.thrift`` of the Parquet format.
"""

from __future__ import annotations

import struct
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# compact-protocol type ids
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = \
    range(13)

# FileMetaData / RowGroup / ColumnChunk / ColumnMetaData field ids (parquet.thrift)
_FMD_NUM_ROWS, _FMD_ROW_GROUPS, _FMD_KV = 3, 4, 5
_RG_COLUMNS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 5, 7
_CC_OFFSETS = (2, 4, 6)  # file_offset, offset_index_offset, column_index_offset
_CC_META = 3
_CMD_OFFSETS = (9, 10, 11, 14)  # data, index, dictionary page; bloom filter

Field = list  # [field id, type, value]


class _Reader:
    def __init__(self, buf: memoryview) -> None:
        self.b = buf
        self.p = 0

    def byte(self) -> int:
        v = self.b[self.p]
        self.p += 1
        return v

    def varint(self) -> int:
        shift = r = 0
        while True:
            c = self.byte()
            r |= (c & 0x7F) << shift
            if not c & 0x80:
                return r
            shift += 7

    def zigzag(self) -> int:
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def value(self, t: int) -> Any:
        if t in (_TRUE, _FALSE):  # a bool inside a container: one byte
            return self.byte() == _TRUE
        if t == _BYTE:
            return self.byte()
        if t in (_I16, _I32, _I64):
            return self.zigzag()
        if t == _DOUBLE:
            self.p += 8
            return bytes(self.b[self.p - 8:self.p])
        if t == _BINARY:
            n = self.varint()
            self.p += n
            return bytes(self.b[self.p - n:self.p])
        if t in (_LIST, _SET):
            h = self.byte()
            n, et = h >> 4, h & 0x0F
            if n == 15:
                n = self.varint()
            return (et, [self.value(et) for _ in range(n)])
        if t == _MAP:
            n = self.varint()
            if n == 0:
                return (0, 0, [])
            kv = self.byte()
            kt, vt = kv >> 4, kv & 0x0F
            return (kt, vt, [(self.value(kt), self.value(vt)) for _ in range(n)])
        if t == _STRUCT:
            return self.struct()
        raise ValueError(f"Parquet footer: unknown Thrift type {t} at byte {self.p}")

    def struct(self) -> list[Field]:
        fields: list[Field] = []
        last = 0
        while True:
            h = self.byte()
            t = h & 0x0F
            if t == _STOP:
                return fields
            d = h >> 4
            fid = last + d if d else self.zigzag()
            last = fid
            fields.append([fid, t, t == _TRUE] if t in (_TRUE, _FALSE) else
                          [fid, t, self.value(t)])


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def varint(self, v: int) -> None:
        while v >= 0x80:
            self.out.append((v & 0x7F) | 0x80)
            v >>= 7
        self.out.append(v)

    def zigzag(self, v: int) -> None:
        self.varint((v << 1) ^ (v >> 63))

    def value(self, t: int, v: Any) -> None:
        if t in (_TRUE, _FALSE):
            self.out.append(_TRUE if v else _FALSE)
        elif t == _BYTE:
            self.out.append(v)
        elif t in (_I16, _I32, _I64):
            self.zigzag(v)
        elif t == _DOUBLE:
            self.out += v
        elif t == _BINARY:
            self.varint(len(v))
            self.out += v
        elif t in (_LIST, _SET):
            et, items = v
            if len(items) < 15:
                self.out.append((len(items) << 4) | et)
            else:
                self.out.append(0xF0 | et)
                self.varint(len(items))
            for x in items:
                self.value(et, x)
        elif t == _MAP:
            kt, vt, items = v
            self.varint(len(items))
            if items:
                self.out.append((kt << 4) | vt)
                for k, x in items:
                    self.value(kt, k)
                    self.value(vt, x)
        elif t == _STRUCT:
            self.struct(v)
        else:
            raise ValueError(f"Thrift type {t}")

    def struct(self, fields: list[Field]) -> None:
        last = 0
        for fid, t, v in fields:
            ft = (_TRUE if v else _FALSE) if t in (_TRUE, _FALSE) else t
            d = fid - last
            if 0 < d <= 15:
                self.out.append((d << 4) | ft)
            else:
                self.out.append(ft)
                self.zigzag(fid)
            last = fid
            if t not in (_TRUE, _FALSE):
                self.value(t, v)
        self.out.append(_STOP)


def decode_footer(buf) -> tuple[list[Field], int]:
    """``(FileMetaData fields, footer start)`` of a whole Parquet file in ``buf``."""
    mv = memoryview(buf).cast("B")  # pa.Buffer's view is of signed bytes
    if len(mv) < 12 or bytes(mv[:4]) != b"PAR1" or bytes(mv[-4:]) != b"PAR1":
        raise ValueError("not a Parquet file")
    n = struct.unpack("<i", mv[-8:-4])[0]
    start = len(mv) - 8 - n
    return _Reader(mv[start:len(mv) - 8]).struct(), start


def encode_struct(fields: list[Field]) -> bytes:
    w = _Writer()
    w.struct(fields)
    return bytes(w.out)


def _get(fields: list[Field], fid: int) -> Field | None:
    return next((f for f in fields if f[0] == fid), None)


def _shift_row_group(rg: list[Field], delta: int, ordinal: int) -> None:
    for f in rg:
        if f[0] == _RG_FILE_OFFSET:
            f[2] += delta
        elif f[0] == _RG_ORDINAL:
            f[2] = ordinal
    for cc in _get(rg, _RG_COLUMNS)[2][1]:
        for f in cc:
            if f[0] in _CC_OFFSETS and f[2]:  # 0: not set (parquet-cpp leaves file_offset 0)
                f[2] += delta
            elif f[0] == _CC_META:
                for g in f[2]:
                    if g[0] in _CMD_OFFSETS:
                        g[2] += delta


def encode_piece(table: pa.Table, schema: pa.Schema, **options: Any) -> pa.Buffer:
    """``table`` as a complete one-row-group Parquet file in memory."""
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, schema, **options) as w:
        w.write_table(table, row_group_size=max(table.num_rows, 1))
    return sink.getvalue()


class StitchedParquetWriter:
    """A Parquet file written from row groups that ``threads`` threads encode at once.

    ``write_row_group`` hands a table to the encoders and returns at once unless more than
    ``threads`` row groups are pending (memory stays bounded); row groups land in the file
    in the order given. ``add_key_value_metadata`` and ``close`` as on ``pq.ParquetWriter``.
    """

    def __init__(self, where: str | Path, schema: pa.Schema, threads: int,
                 on_written=None, **options: Any) -> None:
        self.schema = schema
        self.options = options
        self.threads = max(1, threads)
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="rcfast-encode")
        self.pending: deque[Future] = deque()
        self.on_written = on_written
        self.f = open(where, "wb")  # noqa: SIM115 - closed in close()/abort()
        self.f.write(b"PAR1")
        self.pos = 4
        self.template: list[Field] | None = None
        self.row_groups: list[list[Field]] = []
        self.rows = 0
        self.kv: dict[bytes, bytes] = {}

    def write_row_group(self, table: pa.Table) -> None:
        self.pending.append(self.pool.submit(encode_piece, table, self.schema, **self.options))
        while len(self.pending) > self.threads:
            self._append(self.pending.popleft().result())

    def flush(self) -> None:
        """Wait for every pending row group and append it."""
        while self.pending:
            self._append(self.pending.popleft().result())

    def _append(self, buf: pa.Buffer) -> None:
        meta, start = decode_footer(buf)
        if self.template is None:
            self.template = meta
        rgs = _get(meta, _FMD_ROW_GROUPS)
        for rg in (rgs[2][1] if rgs else []):
            _shift_row_group(rg, self.pos - 4, len(self.row_groups))
            self.row_groups.append(rg)
        n = _get(meta, _FMD_NUM_ROWS)[2]
        self.rows += n
        self.f.write(memoryview(buf).cast("B")[4:start])
        self.pos += start - 4
        if self.on_written is not None:
            self.on_written(n)

    def append_file(self, path: str | Path) -> None:
        """Append the row groups of the Parquet file ``path`` (written with the same schema and
        options), its page data byte for byte; memory holds one mapped file at a time."""
        self.flush()
        with pa.memory_map(str(path)) as source:
            self._append(source.read_buffer())

    def add_key_value_metadata(self, kv: dict) -> None:
        self.kv.update({(k.encode() if isinstance(k, str) else k):
                        (v.encode() if isinstance(v, str) else v) for k, v in kv.items()})

    def close(self) -> None:
        self.flush()
        self.pool.shutdown()
        if self.template is None:  # no row group at all: the footer of an empty file
            self._append(encode_piece(self.schema.empty_table(), self.schema, **self.options))
        meta = [list(f) for f in self.template if f[0] != _FMD_KV]
        for f in meta:
            if f[0] == _FMD_NUM_ROWS:
                f[2] = self.rows
            elif f[0] == _FMD_ROW_GROUPS:
                f[2] = (_STRUCT, self.row_groups)
        if self.kv:
            items = [[[1, _BINARY, k], [2, _BINARY, v]] for k, v in self.kv.items()]
            meta.append([_FMD_KV, _LIST, (_STRUCT, items)])
            meta.sort(key=lambda f: f[0])
        footer = encode_struct(meta)
        self.f.write(footer)
        self.f.write(struct.pack("<i", len(footer)))
        self.f.write(b"PAR1")
        self.f.close()

    def abort(self) -> None:
        for fut in self.pending:
            fut.cancel()
        self.pool.shutdown()
        self.f.close()
