"""The Arrow layer of the weekly step: find inputs, read only the needed columns, map raw
names, check types and units, and turn Arrow columns into plain arrays for the kernels.

Every problem names the file and column (and, for a rejected row, its row number in the file)
and says how to fix it.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rcfast.kernels import aggregate, strings
from rcfast.kernels.time import to_ms
from rcfast.panel import string_buffers
from rcfast.schema import (
    ALIASES,
    FIELDS,
    NORMALIZED_SCHEMA,
    PLAUSIBLE_MAX_MS,
    PLAUSIBLE_MIN_MS,
    REQUIRED,
    parse_time_strings,
)

#: Reasons a row is set aside, in the order they are checked (a row counts once, first reason).
REJECT_REASONS = (
    "null_product_id",
    "null_timestamp",
    "timestamp_out_of_range",
    "null_rating",
    "rating_out_of_range",
    "after_until",
)
_UNIT_FACTORS = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1_000_000)}
_GLOB_CHARS = set("*?[")


from rcfast.errors import InputError  # noqa: E402,F401 (one owner: rcfast.errors)


@dataclass
class ReadOptions:
    mapping: dict[str, str] = field(default_factory=dict)  #: field -> raw column
    #: unit of integer timestamps; None: ms, or s for a column found as unixReviewTime
    timestamp_unit: str | None = None


def resolve_inputs(inputs: list[str]) -> list[Path]:
    """Parquet files named by files, directories (recursively) and globs, in a stable order."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and not any(part.startswith(("_", "."))
                                           for part in f.relative_to(p).parts)
                and f.suffix in (".parquet", ".pq", "")
            )
            if not found:
                raise InputError(f"{item}: directory holds no Parquet files")
            files += found
        elif _GLOB_CHARS & set(item):
            found = sorted(Path(f) for f in glob.glob(item, recursive=True) if os.path.isfile(f))
            if not found:
                raise InputError(f"{item}: the pattern matches no file")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{item}: no such file or directory")
    seen: set[Path] = set()
    unique = []
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(f)
    return unique


def open_parquet(path: Path) -> pq.ParquetFile:
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); remove it or regenerate it")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}); is it truncated or "
                         "another format? (raw JSON/CSV dumps go through python -m rcfast.combine)"
                         ) from exc


def map_columns(path: Path, names: list[str], opts: ReadOptions) -> dict[str, str]:
    """``{field: raw column}`` for one file; raise when a required field has no column."""
    out: dict[str, str] = {}
    for fld in FIELDS:
        if fld in opts.mapping:
            col = opts.mapping[fld]
            if col not in names:
                raise InputError(f"{path}: --map {fld}={col}: no column {col!r}; "
                                 f"the file has {', '.join(names)}")
            out[fld] = col
            continue
        for cand in (fld, *ALIASES.get(fld, ())):
            if cand in names and cand not in out.values():
                out[fld] = cand
                break
        else:
            if fld in REQUIRED:
                tried = ", ".join((fld, *ALIASES.get(fld, ())))
                raise InputError(f"{path}: no column for required field {fld!r} (looked for "
                                 f"{tried}); pass --map {fld}=COLUMN. The file has "
                                 f"{', '.join(names)}")
    return out


def _fully_dictionary_encoded(pf: pq.ParquetFile, col: str) -> bool:
    # Reading as dictionary pays off only when Parquet stored dictionary pages throughout;
    # after a fallback to PLAIN, Arrow would hash every value itself, single-threaded.
    try:
        idx = pf.schema_arrow.get_field_index(col)
        md = pf.metadata
        for rg in range(md.num_row_groups):
            c = md.row_group(rg).column(idx)
            if not c.has_dictionary_page or "PLAIN" in c.encodings:
                return False
        return md.num_row_groups > 0
    except Exception:  # noqa: BLE001 - metadata quirks only cost the fast path
        return False


WANTED = ("product_id", "timestamp", "rating", "helpful_votes", "verified", "text_len")
#: Rows per read batch: its strings and hash tables stay in cache, and memory stays bounded.
BATCH_ROWS = 1 << 20


@dataclass
class Batch:
    """Columns of consecutive rows of one source, starting at row ``row0`` of that source."""

    path: Path
    row0: int
    cols: dict[str, pa.ChunkedArray]
    colmap: dict[str, str]


def parquet_rows(paths: list[Path]) -> int:
    return sum(open_parquet(p).metadata.num_rows for p in paths)


def read_batches(path: Path, opts: ReadOptions, row_groups: list[int] | None = None,
                 batch_rows: int | None = None):
    """Yield :class:`Batch` es of whole row groups of one Parquet file, needed columns only."""
    batch_rows = batch_rows or BATCH_ROWS
    pf = open_parquet(path)
    colmap = map_columns(path, pf.schema_arrow.names, opts)
    wanted = [f for f in WANTED if f in colmap]
    raw_cols = [colmap[f] for f in wanted]
    if _fully_dictionary_encoded(pf, raw_cols[0]):
        pf = pq.ParquetFile(path, read_dictionary=[raw_cols[0]])
    md = pf.metadata
    groups = list(range(md.num_row_groups)) if row_groups is None else row_groups
    row0 = sum(md.row_group(i).num_rows for i in range(groups[0])) if groups else 0
    block: list[int] = []
    rows = 0
    for k, rg in enumerate(groups):
        block.append(rg)
        rows += md.row_group(rg).num_rows
        if rows >= batch_rows or k == len(groups) - 1:
            try:
                t = pf.read_row_groups(block, columns=raw_cols, use_threads=True)
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"{path}: cannot read columns {raw_cols} of row groups "
                                 f"{block[0]}..{block[-1]}: {exc}") from exc
            yield Batch(path, row0, {f: t.column(colmap[f]) for f in wanted}, colmap)
            row0 += t.num_rows
            block, rows = [], 0
    if not groups:
        t = pf.schema_arrow.empty_table().select(raw_cols)
        yield Batch(path, 0, {f: t.column(colmap[f]) for f in wanted}, colmap)


def table_batches(table: pa.Table, opts: ReadOptions, where: Path,
                  batch_rows: int | None = None):
    """Yield :class:`Batch` es of an in-memory table (the same path as files take)."""
    batch_rows = batch_rows or BATCH_ROWS
    colmap = map_columns(where, table.column_names, opts)
    n = table.num_rows
    for start in range(0, max(n, 1), batch_rows):
        t = table.slice(start, batch_rows)
        yield Batch(where, start, {f: t.column(c) for f, c in colmap.items() if f in WANTED},
                    colmap)


# -- conversions: Arrow column -> plain arrays -------------------------------------------------

def _large(arr: pa.Array) -> pa.Array:
    return arr if pa.types.is_large_string(arr.type) else arr.cast(pa.large_string())


class ProductEncoder:
    """Product ids of many batches -> one integer code per row, products in byte order.

    Each batch is encoded on its own (its keys and table stay in cache; of a dictionary chunk
    only the dictionary is encoded, then its indices gathered), its distinct ids join a pool,
    and :meth:`finish` encodes the pool, sorts the distinct ids and gives the map from pool
    codes to final codes. While every id has at most
    :data:`~rcfast.kernels.strings.KEY_MAX_BYTES` bytes (ASINs have 10) they travel as
    two-word integer keys; the first longer id turns the pool into strings for the rest.
    """

    def __init__(self) -> None:
        self._pool: list[pa.Array] = []  #: string mode: distinct ids of each batch
        self._keys: list[tuple[np.ndarray, np.ndarray]] | None = []  #: key mode (None: off)
        self._size = 0

    def _to_strings(self) -> None:
        if self._keys is None:
            return
        for k0, k1 in self._keys:
            self._pool.append(_strings_of_keys(k0, k1))
        self._keys = None

    def _add_plain(self, a: pa.Array) -> tuple[np.ndarray, int]:
        """Local codes of one plain string chunk, its distinct ids appended to the pool."""
        off, data = string_buffers(a)
        if self._keys is not None and strings.max_length(off) <= strings.KEY_MAX_BYTES:
            local, u0, u1 = strings.encode_keys(*strings.pack_keys(off, data))
            self._keys.append((u0, u1))
            return local, len(u0)
        self._to_strings()
        local, u_off, u_data = strings.encode_strings(off, data)
        self._pool.append(pa.Array.from_buffers(
            pa.large_string(), len(u_off) - 1, [None, pa.py_buffer(u_off),
                                                pa.py_buffer(u_data)]))
        return local, len(u_off) - 1

    def add(self, chunks: list[pa.Array]) -> np.ndarray:
        """Pool codes (int32, -1 for null) of the rows of ``chunks``."""
        out = []
        for ch in chunks:
            if pa.types.is_dictionary(ch.type):
                d = _large(ch.dictionary)
                idx = ch.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
                # the dictionary itself goes through the plain path: it joins the pool encoded
                d_codes, n_new = self._add_plain(d)
                lookup = d_codes + np.int32(self._size)
                if d.null_count:
                    lookup[~d.is_valid().to_numpy(zero_copy_only=False)] = -1
                codes = (np.where(idx >= 0, lookup[np.maximum(idx, 0)], -1).astype(np.int32)
                         if len(d) else np.full(len(idx), -1, dtype=np.int32))
            else:
                a = _large(ch)
                local, n_new = self._add_plain(a)
                codes = local + np.int32(self._size)
                if a.null_count:
                    codes[~a.is_valid().to_numpy(zero_copy_only=False)] = -1
            self._size += n_new
            out.append(codes)
        return np.concatenate(out) if out else np.empty(0, np.int32)

    def finish(self) -> tuple[np.ndarray, pa.Array]:
        """``(mapping int32[pool], products)``: pool code -> rank of the id in byte order."""
        if self._keys is not None:
            k0 = (np.concatenate([k[0] for k in self._keys]) if self._keys
                  else np.empty(0, np.uint64))
            k1 = (np.concatenate([k[1] for k in self._keys]) if self._keys
                  else np.empty(0, np.uint64))
            self._keys = []
            codes, u0, u1 = strings.encode_keys(k0, k1)
            del k0, k1
            order = strings.argsort_keys(u0, u1)
            s_off, s_data = strings.unpack_keys_at(u0, u1, order)
        else:
            pool = (pa.concat_arrays(self._pool) if len(self._pool) > 1 else
                    self._pool[0] if self._pool else pa.array([], type=pa.large_string()))
            self._pool = []
            off, data = string_buffers(pool)
            codes, u_off, u_data = strings.encode_strings(off, data)
            order = strings.argsort_strings(u_off, u_data)
            s_off, s_data = strings.take_strings(u_off, u_data, order)
        rank = np.empty(order.shape[0], dtype=np.int32)
        rank[order] = np.arange(order.shape[0], dtype=np.int32)
        products = pa.Array.from_buffers(pa.large_string(), len(order),
                                         [None, pa.py_buffer(s_off), pa.py_buffer(s_data)])
        if s_off[-1] < 2**31:
            products = products.cast(pa.string())
        return strings.take(rank, codes), products


def _strings_of_keys(k0: np.ndarray, k1: np.ndarray) -> pa.Array:
    off, data = strings.unpack_keys(k0, k1)
    return pa.Array.from_buffers(pa.large_string(), len(k0),
                                 [None, pa.py_buffer(off), pa.py_buffer(data)])


def encode_products(chunks: list[pa.Array]) -> tuple[np.ndarray, pa.Array]:
    """Integer code per row (-1 for null) and the distinct ids in byte order."""
    enc = ProductEncoder()
    codes = enc.add(chunks)
    mapping, products = enc.finish()
    strings.remap(codes, mapping)
    return codes, products


def timestamps_ms(path: Path, raw_name: str, col: pa.ChunkedArray,
                  unit: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Epoch ms (int64) and a validity mask, from timestamp, date, integer or string columns."""
    typ = col.type
    if pa.types.is_dictionary(typ):
        col = col.cast(typ.value_type)
        typ = col.type
    if pa.types.is_timestamp(typ):
        num, den = _UNIT_FACTORS[typ.unit]
        raw = col.cast(pa.int64())
    elif pa.types.is_date32(typ):
        num, den = 86_400_000, 1
        raw = col.cast(pa.int32()).cast(pa.int64())
    elif pa.types.is_date64(typ):
        num, den = 1, 1
        raw = col.cast(pa.int64())
    elif pa.types.is_integer(typ):
        u = unit or ("s" if raw_name == "unixReviewTime" else "ms")
        num, den = _UNIT_FACTORS[u]
        raw = col.cast(pa.int64())
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        raw = parse_time_strings(col)
        num, den = 1, 1
    else:
        raise InputError(f"{path}: column {raw_name!r} (timestamp) has type {typ}; expected a "
                         "timestamp, an integer epoch in ms, a date or a 'YYYY-MM-DD HH:MM:SS' "
                         "string")
    valid = raw.is_valid().to_numpy(zero_copy_only=False) if raw.null_count else None
    vals = raw.fill_null(0).to_numpy(zero_copy_only=False) if raw.null_count else \
        raw.to_numpy(zero_copy_only=False)
    vals = np.ascontiguousarray(vals, dtype=np.int64)
    ms = vals if (num, den) == (1, 1) else to_ms(vals, np.int64(num), np.int64(den))
    if valid is None:
        valid = np.ones(len(ms), dtype=bool)
    _check_unit(path, raw_name, ms[valid], typ)
    return ms, valid


def _check_unit(path: Path, name: str, ms: np.ndarray, typ: pa.DataType) -> None:
    if ms.size == 0:
        return
    sample = ms if ms.size <= 100_000 else ms[:: ms.size // 100_000]
    med = float(np.median(sample))
    lo, hi = PLAUSIBLE_MIN_MS, PLAUSIBLE_MAX_MS
    inside = float(np.mean((sample >= lo) & (sample < hi)))
    if inside >= 0.5 and not (7.9e8 <= med <= 4.2e9):
        return
    if med > hi and lo <= med / 1000 < hi:
        hint = (f"values look like milliseconds read as seconds (median lands in year "
                f"{1970 + med / 3.15576e10:.0f})")
    elif med > hi and lo <= med / 1e6 < hi:
        hint = "values look like microseconds read as milliseconds"
    elif 7.9e8 <= med <= 4.2e9:
        hint = ("values look like seconds read as milliseconds (they land in January 1970; "
                "as seconds they would be in 1995-2100)")
    else:
        return  # no unit explains it: out-of-range rows are set aside one by one
    raise InputError(f"{path}: column {name!r} (timestamp, type {typ}): {hint}. Fix the unit: "
                     "pass --timestamp-unit s|ms|us|ns for an integer column, or cast the "
                     "column to the right timestamp type")


def numeric(path: Path, name: str, fld: str, col: pa.ChunkedArray, dtype) -> pa.ChunkedArray:
    typ = col.type
    if pa.types.is_dictionary(typ):
        col = col.cast(typ.value_type)
        typ = col.type
    if fld == "helpful_votes" and (pa.types.is_list(typ) or pa.types.is_large_list(typ)):
        col = pc.list_element(col, 0)  # Amazon 2014 "helpful": [helpful, total]
        typ = col.type
    if fld == "helpful_votes" and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        try:  # Amazon 2018 "vote": "1,234"; 2014 "helpful" as text: "[1, 12]"
            pair = pc.struct_field(pc.extract_regex(col, r"^\s*\[\s*(?P<h>\d+)"), [0])
            plain = pc.replace_substring(col, ",", "")
            col = pc.if_else(pc.starts_with(col, "["), pair, plain).cast(pa.int64())
        except pa.ArrowInvalid as exc:
            raise InputError(f"{path}: column {name!r} ({fld}) holds text that is not a "
                             f"number: {exc}") from exc
        typ = col.type
    if fld == "verified" and not pa.types.is_boolean(typ):
        if pa.types.is_integer(typ):
            return col.cast(pa.int8())
        raise InputError(f"{path}: column {name!r} (verified) has type {typ}; expected bool")
    if fld != "verified" and not (pa.types.is_integer(typ) or pa.types.is_floating(typ)
                                  or pa.types.is_decimal(typ)):
        raise InputError(f"{path}: column {name!r} ({fld}) has type {typ}; expected a number. "
                         "Map the right column with --map, or convert it first")
    try:
        return col.cast(dtype)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: column {name!r} ({fld}) cannot be read as {dtype}: {exc}"
                         ) from exc


#: Column types read zero-copy from Arrow's buffers (others are cast first, with checks)
_INTS = {pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32()}
_RATINGS = _INTS | {pa.float32(), pa.float64()}
_NO_BITS = np.zeros(0, dtype=np.uint8)


@dataclass
class Piece:
    """Rows ``start:stop`` of a batch's column as Arrow lays them out: ``values`` from element
    ``at`` (for booleans a bitmap, from bit ``at``), an LSB-first validity bitmap from bit
    ``vat`` (empty when the rows hold no null)."""

    start: int
    stop: int
    values: np.ndarray
    at: int
    valid: np.ndarray
    vat: int


def column_pieces(col: pa.ChunkedArray) -> list[Piece]:
    """Zero-copy :class:`Piece` s of a numeric or boolean column, one per non-empty chunk."""
    out = []
    pos = 0
    boolean = pa.types.is_boolean(col.type)
    dtype = np.dtype(np.uint8) if boolean else np.dtype(col.type.to_pandas_dtype())
    for ch in col.chunks:
        n = len(ch)
        if n == 0:
            continue
        bufs = ch.buffers()
        vals = (np.frombuffer(bufs[1], dtype=dtype, count=bufs[1].size // dtype.itemsize)
                if bufs[1] is not None else np.zeros(0, dtype=dtype))  # all null
        if ch.null_count:
            valid = np.frombuffer(bufs[0], dtype=np.uint8)
        else:
            valid = _NO_BITS
        out.append(Piece(pos, pos + n, vals, ch.offset, valid, ch.offset))
        pos += n
    return out


@dataclass
class BatchArrays:
    """One batch's columns, checked: times as plain arrays, the values packed into rows
    (:meth:`pack`) as :class:`Piece` s (None: the column is absent)."""

    ms: np.ndarray
    ts_valid: np.ndarray
    n: int
    rating: list[Piece]
    helpful: list[Piece] | None
    verified: list[Piece] | None
    text_len: list[Piece] | None
    product_chunks: list[pa.Array]

    def pack(self, rows: np.ndarray, pos: int) -> tuple[int, int]:
        """Write the batch's rows into ``rows[pos:pos + n]`` (:func:`aggregate.pack_columns`);
        return the least and greatest text length."""
        cols = (self.rating, self.helpful, self.verified, self.text_len)
        cuts = sorted({0, self.n} | {p.start for c in cols if c for p in c})
        lo = hi = 0
        idx = [0, 0, 0, 0]
        empty = np.zeros(0, dtype=np.int64)
        for a, b in zip(cuts[:-1], cuts[1:]):
            args = []
            for j, c in enumerate(cols):
                if not c:  # absent: all null
                    args += [empty if j != 2 else _NO_BITS, 0, _NO_BITS, 0]
                    continue
                while c[idx[j]].stop <= a:
                    idx[j] += 1
                p = c[idx[j]]
                args += [p.values, p.at + a - p.start, p.valid, p.vat + a - p.start]
            lo_s, hi_s = aggregate.pack_columns(rows, pos + a, b - a, *args)
            lo, hi = min(lo, lo_s), max(hi, hi_s)
        return lo, hi


def _value_pieces(path: Path, raw: str, fld: str, col: pa.ChunkedArray, fast: set,
                  dtype) -> list[Piece]:
    if col.type not in fast:
        col = numeric(path, raw, fld, col, dtype)  # checks the type, casts safely
    return column_pieces(col)


#: The type a column of Arrow type ``null`` is read as (its normalized type): such a column
#: holds only nulls (pandas writes an all-None column so), which the spec's null rules cover.
_NULL_AS = {f: NORMALIZED_SCHEMA.field(f).type for f in WANTED}


#: Arrow's view layouts (Polars exports strings so) read as the classic ones.
_VIEW_AS = {"string_view": pa.large_string(), "binary_view": pa.large_binary()}


def convert_batch(path: Path, cols: dict[str, pa.ChunkedArray], colmap: dict[str, str],
                  opts: ReadOptions) -> BatchArrays:
    """Check types and units of one batch's columns; plain arrays for the times, zero-copy
    views of the values wherever Arrow's layout allows."""
    cols = {f: c.cast(_NULL_AS[f]) if pa.types.is_null(c.type) and f in _NULL_AS else
            c.cast(_VIEW_AS[str(c.type)]) if str(c.type) in _VIEW_AS else c
            for f, c in cols.items()}
    n = len(cols["product_id"])
    pid = cols["product_id"]
    typ = pid.type
    value_type = typ.value_type if pa.types.is_dictionary(typ) else typ
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        if pa.types.is_integer(typ) or pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
            pid = pid.cast(pa.string())
        else:
            raise InputError(f"{path}: column {colmap['product_id']!r} (product_id) has type "
                             f"{typ}; expected a string")
    ms, ts_valid = timestamps_ms(path, colmap["timestamp"], cols["timestamp"],
                                 opts.timestamp_unit)
    rating = _value_pieces(path, colmap["rating"], "rating", cols["rating"], _RATINGS,
                           pa.float64())
    helpful = text_len = verified = None
    if "helpful_votes" in cols:
        helpful = _value_pieces(path, colmap["helpful_votes"], "helpful_votes",
                                cols["helpful_votes"], _INTS, pa.int64())
    if "text_len" in cols:
        text_len = _value_pieces(path, colmap["text_len"], "text_len", cols["text_len"],
                                 _INTS, pa.int64())
    if "verified" in cols:
        v = cols["verified"]
        if not pa.types.is_boolean(v.type):  # integer flags: > 0 true, 0 false, < 0 null
            v = numeric(path, colmap["verified"], "verified", v, pa.int8())
            v = pc.if_else(pc.less(v, 0), pa.scalar(None, pa.bool_()), pc.greater(v, 0))
        verified = column_pieces(v)
    return BatchArrays(ms, ts_valid, n, rating, helpful, verified, text_len, list(pid.chunks))
