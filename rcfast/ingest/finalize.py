"""The end of the ingest: each partition's spill read back alone, deduplicated, sorted by
product and time, and written as one Parquet file (memory: one partition at a time)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rcfast.arrow_buffers import string_buffers

from .normalize import output_schema
from .string_hashes import hash_strings

if TYPE_CHECKING:
    from .pipeline import Spill

ROW_GROUP_ROWS = 1 << 20


def finalize_partition(
    spill: Spill,
    p: int,
    out_path: str,
    *,
    keep_text: bool,
    keep_duplicates: bool,
    n_files: int,
    metadata: dict[bytes, bytes],
    row_group_rows: int = ROW_GROUP_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """Dedup, sort and write one partition; return (rows written, duplicates) per input file."""
    table = spill.read(p)
    written = np.zeros(n_files, dtype=np.int64)
    dups = np.zeros(n_files, dtype=np.int64)
    schema = output_schema(keep_text).with_metadata(metadata)
    if table.num_rows:
        order, dup = _order_and_duplicates(table, keep_duplicates)
        files = table.column("_file").to_numpy()
        if dup is not None and dup.any():
            dups += np.bincount(files[order[dup]], minlength=n_files)
            order = order[~dup]
        written += np.bincount(files[order], minlength=n_files)
        table = table.select(schema.names).take(pa.array(order)).cast(schema)
    else:
        table = schema.empty_table()
    with pq.ParquetWriter(out_path, schema, compression="zstd", compression_level=1,
                          use_dictionary=["product_id", "user_id", "category"],
                          write_statistics=True) as w:
        if table.num_rows:
            w.write_table(table, row_group_size=row_group_rows)
    return written, dups


def _np(col: pa.ChunkedArray) -> np.ndarray:
    return col.combine_chunks().to_numpy(zero_copy_only=False)


def _product_rank(dictionary: pa.Array) -> np.ndarray:
    """Rank of each (distinct, non-null) string of ``dictionary`` in UTF-8 byte order.

    Ids of up to 16 bytes (ASINs, Yelp business ids are 10-22) sort as two big-endian 64-bit
    words and the length, an integer ``lexsort``; longer ones go to Arrow's string sort.
    """
    d = len(dictionary)
    rank = np.empty(d, dtype=np.int64)
    if d == 0:
        return rank
    offsets, data = string_buffers(dictionary)
    lens = np.diff(offsets)
    if dictionary.null_count == 0 and int(lens.max()) <= 16 and data.size:
        width = np.arange(16, dtype=np.int64)
        pos = np.minimum(offsets[:-1, None] + width, data.size - 1)
        mat = np.where(width < lens[:, None], data[pos], 0).astype(np.uint8)
        words = mat.view(">u8").astype(np.uint64)  # native order: the SIMD sort's
        order = _argsort_stable(words[:, 0], (lens, words[:, 1]))
    else:
        order = pc.sort_indices(dictionary).to_numpy()
    rank[order] = np.arange(d, dtype=np.int64)
    return rank


def _argsort_stable(keys: np.ndarray, ties: tuple[np.ndarray, ...] = ()) -> np.ndarray:
    """``np.lexsort((*ties, keys))`` (``np.argsort(keys, kind="stable")`` without ``ties``),
    several times faster: numpy's SIMD quicksort of ``keys``, then only the (rare) runs of equal
    keys ordered by ``ties`` (least significant first, as ``lexsort``) and the index."""
    order = np.argsort(keys)
    s = keys[order]
    eq = s[1:] == s[:-1]
    if eq.any():
        in_run = np.zeros(keys.size, dtype=np.bool_)
        in_run[1:] |= eq
        in_run[:-1] |= eq
        pos = np.flatnonzero(in_run)
        run = np.cumsum(np.concatenate([[True], ~eq]))[pos]
        sub = order[pos]
        order[pos] = sub[np.lexsort((sub, *(t[sub] for t in ties), run))]
    return order


def _order_and_duplicates(table: pa.Table, keep_duplicates: bool
                          ) -> tuple[np.ndarray, np.ndarray | None]:
    """Row order (product_id bytes, timestamp, input order) and, in that order, the duplicates.

    Integer keys only: product_id is dictionary-encoded and its codes replaced by the rank of the
    string in byte order, so one ``np.lexsort`` replaces a multi-column string sort. Duplicates
    (same product, user, timestamp, text) are neighbours in that order: only runs of rows with
    the same product and timestamp (rare) are looked at, by a 64-bit key of user and text; equal
    keys are then checked field by field, and the first row in input order is kept.
    """
    enc = table.column("product_id").combine_chunks().dictionary_encode()
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    prank = _product_rank(enc.dictionary)[codes]
    ts = _np(table.column("timestamp").cast(pa.int64()))
    files = _np(table.column("_file"))
    seq = _np(table.column("_seq"))
    n = ts.size
    # fewer sort keys, same order: product rank and time packed into one key when they fit,
    # and the file index only when there are several files
    several = not (files.size == 0 or files.min() == files.max())
    t0 = int(ts.min()) if n else 0
    packed = None
    if n and int(prank.max()) < (1 << 21) and int(ts.max()) - t0 < (1 << 42):
        packed = (prank << np.int64(42)) | (ts - np.int64(t0))
        # blocks reach the spill in the order they finish: input order is (file, seq)
        order = _argsort_stable(packed, (seq, files) if several else (seq,))
    else:
        order = np.lexsort((seq, files, ts, prank) if several else (seq, ts, prank))
    if keep_duplicates or n < 2:
        return order, None
    # runs of equal (product, timestamp) in sorted order
    if packed is not None:
        ps = packed[order]
        brk = ps[1:] != ps[:-1]
    else:
        pr, tt = prank[order], ts[order]
        brk = (pr[1:] != pr[:-1]) | (tt[1:] != tt[:-1])
    in_run = np.zeros(n, dtype=np.bool_)
    in_run[1:] |= ~brk
    in_run[:-1] |= ~brk
    dup = np.zeros(n, dtype=np.bool_)
    pos = np.flatnonzero(in_run)  # positions (in sorted order) of rows that share a run
    if pos.size == 0:
        return order, dup
    run_id = np.cumsum(np.concatenate([[True], brk]))[pos]
    rows = order[pos]
    user = table.column("user_id").combine_chunks().take(pa.array(rows))
    uh = hash_strings(user, short=True)
    th = _np(table.column("_text_hash")).astype(np.uint64)[rows]
    key = uh ^ (th * np.uint64(0x9E3779B97F4A7C15))
    # lexsort is stable: equal (run, key) stay in sorted = input order, the first one is kept
    o2 = np.lexsort((key, run_id))
    same = (run_id[o2[1:]] == run_id[o2[:-1]]) & (key[o2[1:]] == key[o2[:-1]])
    if same.any():
        later, first = o2[1:][same], o2[:-1][same]
        exact = th[later] == th[first]
        ua, ub = user.take(pa.array(later)), user.take(pa.array(first))
        ueq = pc.or_(pc.fill_null(pc.equal(ua, ub), False),
                     pc.and_(pc.is_null(ua), pc.is_null(ub))).to_numpy(zero_copy_only=False)
        dup[pos[later[exact & ueq]]] = True
    return order, dup
