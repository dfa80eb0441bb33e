"""Partitions of whole products by ranges of the product id: the out-of-core and Dask stages.

Two stages, no maths of their own (that is :func:`rcfast.weekly.panel.panel_batches`):

1. :func:`split_block` — one block of input rows (a file, or consecutive row groups of one)
   is read and checked exactly as the in-memory run reads it (:func:`rcfast.weekly.load.
   load_rows`: the same rows set aside, the same counts and examples), and its kept rows are
   cut by the product-id ranges of a :class:`PartitionPlan` into one Arrow IPC piece per
   partition on scratch: each row's product id as a two-word key (or, in a block with ids too
   long for keys, dictionary-encoded), its week and its packed values.
2. :func:`partition_batches` — the pieces of one partition, read in block order (so every
   product's rows keep their input order, and sums match the in-memory run bit for bit), give
   the partition's panel through the in-memory code path, in slices of whole products.

Partition ``p`` holds the ids ``splitters[p - 1] <= id < splitters[p]`` (byte order), so the
partitions' panels, written one after the other, are already in the panel's global order.
The splitters are quantiles of a sample of the input's ids (:func:`sample_product_ids`).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rcfast.arrow_buffers import string_buffers
from rcfast.kernels import aggregate, split, strings
from rcfast.weekly.load import Rejects, load_rows
from rcfast.weekly.panel import Columns, PanelOptions, PanelStats, panel_batches
from rcfast.weekly.products import ProductEncoder, ProductKeys
from rcfast.weekly.read import (
    Batch,
    Prefetch,
    ReadOptions,
    map_columns,
    open_parquet,
    read_batches,
)

#: Ids drawn for the splitters per partition: quantiles of 256 draws are within a few
#: percent of the true ones, so partitions come out within ~1.3x of their target size.
SAMPLES_PER_PARTITION = 256
#: Rows read for the sample from each row group at most (its first rows: pyarrow decodes a
#: row group's pages in order, so the first rows are the cheap ones).
SAMPLE_ROWS_PER_GROUP = 4096

_CODE_PIECE_FIELDS = ("product_id", "week", "values")
_KEY_PIECE_FIELDS = ("key0", "key1", "week", "values")


@dataclass(frozen=True)
class Block:
    """Consecutive input rows for one split task: a file, or some of its row groups."""

    path: Path
    row_groups: tuple[int, ...] | None  #: None: the whole file
    rows: int


@dataclass(frozen=True)
class PartitionPlan:
    """Where each product goes: ``splitters`` are the sorted least ids of partitions 1..P-1."""

    splitters: tuple[bytes, ...]

    @property
    def n_parts(self) -> int:
        return len(self.splitters) + 1

    def splitter_keys(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The splitters as two-word keys (byte order kept), or None if one is too long."""
        if any(len(s) > strings.KEY_MAX_BYTES for s in self.splitters):
            return None
        arr = pa.array(list(self.splitters), type=pa.binary())
        return strings.pack_keys(*string_buffers(arr))


@dataclass
class SplitResult:
    """What a split task returns to the caller: small, whatever the block's size."""

    rows_read: int
    rejects: Rejects
    part_rows: list[int]  #: kept rows per partition
    pieces: list[str | None]  #: piece file per partition (None: no rows)


@dataclass
class PartitionResult:
    """What a panel task returns: counts, the week range and the part file it wrote."""

    stats: PanelStats = field(default_factory=PanelStats)
    week_min: dt.date | None = None
    week_max: dt.date | None = None
    part: str | None = None


def plan_blocks(paths: list[Path], max_rows: int) -> list[Block]:
    """Blocks of at most ``max_rows`` rows (whole row groups; a row group larger than that is
    a block of its own), in input order."""
    blocks: list[Block] = []
    for path in paths:
        md = open_parquet(path).metadata
        if md.num_rows <= max_rows or md.num_row_groups < 2:
            blocks.append(Block(path, None, md.num_rows))
            continue
        group: list[int] = []
        rows = 0
        for rg in range(md.num_row_groups):
            n = md.row_group(rg).num_rows
            if group and rows + n > max_rows:
                blocks.append(Block(path, tuple(group), rows))
                group, rows = [], 0
            group.append(rg)
            rows += n
        if group:
            blocks.append(Block(path, tuple(group), rows))
    return blocks


def sample_product_ids(paths: list[Path], ropts: ReadOptions, n_samples: int,
                       seed: int = 0) -> list[bytes]:
    """About ``n_samples`` product ids of the input, drawn in proportion to the rows of each
    row group.

    When there are many row groups only the first rows of each are decoded: whatever the
    input's order, each group then contributes ids from its own place in it (a file sorted by
    product gives one id per stretch of rows). When there are few, whole groups are read.
    """
    groups = []
    for path in paths:
        pf = open_parquet(path)
        col = map_columns(path, pf.schema_arrow.names, ropts)["product_id"]
        for rg in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(rg).num_rows
            if n:
                groups.append((path, col, rg, n))
    total = sum(g[3] for g in groups)
    if total == 0:
        return []
    rng = random.Random(seed)
    few_groups = len(groups) * SAMPLE_ROWS_PER_GROUP < 4 * n_samples
    sample: list[bytes] = []
    for path, col, rg, n in groups:
        want = max(1, math.ceil(n_samples * n / total))
        pf = pq.ParquetFile(path)
        if few_groups:
            ids = pf.read_row_group(rg, columns=[col]).column(0)
        else:
            batch = next(pf.iter_batches(batch_size=min(n, SAMPLE_ROWS_PER_GROUP),
                                         row_groups=[rg], columns=[col]))
            ids = batch.column(0)
        ids = pa.chunked_array([ids]) if isinstance(ids, pa.Array) else ids
        ids = ids.cast(pa.string()) if not pa.types.is_dictionary(ids.type) else ids
        picks = sorted(rng.sample(range(len(ids)), min(want, len(ids))))
        for v in ids.take(pa.array(picks, type=pa.int64())).to_pylist():
            if v is not None:
                sample.append(v.encode() if isinstance(v, str) else bytes(v))
    return sample


def plan_partitions(sample: list[bytes], n_parts: int) -> PartitionPlan:
    """Splitters at the ``n_parts``-quantiles of ``sample`` (duplicates dropped: a product that
    fills several quantiles is one partition, whole)."""
    if n_parts <= 1 or not sample:
        return PartitionPlan(())
    ordered = sorted(sample)
    cuts = {ordered[min(len(ordered) - 1, (len(ordered) * k) // n_parts)]
            for k in range(1, n_parts)}
    cuts.discard(ordered[0])  # nothing would fall below the first sample's partition
    return PartitionPlan(tuple(sorted(cuts)))


def _product_bounds(products: pa.Array, splitters: tuple[bytes, ...]) -> np.ndarray:
    """``bounds[p]``: the first product code of partition ``p`` (products in byte order)."""
    values = products.cast(pa.binary()) if pa.types.is_string(products.type) else \
        products.cast(pa.large_binary())

    def first_at_least(key: bytes) -> int:
        lo, hi = 0, len(values)
        while lo < hi:
            mid = (lo + hi) // 2
            if values[mid].as_py() < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    return np.array([0] + [first_at_least(s) for s in splitters] + [len(values)],
                    dtype=np.int64)


def _publish_piece(path: Path, table: pa.Table) -> None:
    """One partition's rows of one block as an Arrow IPC file, written under a temporary name
    and renamed: a task rerun after a lost worker replaces it whole."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, path)


def _packed_values(values: np.ndarray) -> pa.Array:
    width = aggregate.ROW_WIDTH * 8
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(values), [None, pa.py_buffer(np.ascontiguousarray(values))])


def _code_piece(products: pa.Array, code: np.ndarray, week: np.ndarray, values: np.ndarray
                ) -> pa.Table:
    """Ids dictionary-encoded against the block's distinct ids (ids too long for keys)."""
    ids = pa.DictionaryArray.from_arrays(pa.array(code, type=pa.int32()), products)
    return pa.table([ids, pa.array(week, type=pa.int32()), _packed_values(values)],
                    names=_CODE_PIECE_FIELDS)


def _key_piece(k0: np.ndarray, k1: np.ndarray, week: np.ndarray, values: np.ndarray
               ) -> pa.Table:
    """Each row's id as its two-word key: nothing was encoded in the split stage."""
    return pa.table([pa.array(k0, type=pa.uint64()), pa.array(k1, type=pa.uint64()),
                     pa.array(week, type=pa.int32()), _packed_values(values)],
                    names=_KEY_PIECE_FIELDS)


@dataclass
class CutBlock:
    """One block's kept rows cut into partitions, not yet written: ``piece(p)`` is partition
    ``p``'s table (None: no rows)."""

    rows_read: int
    rejects: Rejects
    offsets: np.ndarray  #: partition p's rows are offsets[p]:offsets[p + 1]
    piece: Callable[[int], pa.Table | None]


def block_batches(blocks: list[Block], ropts: ReadOptions) -> Iterator[Batch | None]:
    """The batches of ``blocks`` in order, each block's followed by None: one reader (one
    :class:`Prefetch`) for a run's blocks decodes the next block's first batch while this one
    is cut."""
    for block in blocks:
        yield from read_batches(block.path, ropts, block.row_groups)
        yield None


def _until_none(items: Iterator[Batch | None]) -> Iterator[Batch]:
    for item in items:
        if item is None:
            return
        yield item


def cut_block(block: Block, ropts: ReadOptions, until_week: int | None, strict: bool,
              plan: PartitionPlan, batches: Iterator[Batch | None] | None = None) -> CutBlock:
    """Stage 1's computation: read and check one block (from ``batches`` when given), cut its
    kept rows by partition.

    While its ids (and the splitters) fit two-word keys, rows carry their keys into the pieces
    and are cut by comparing keys with the splitters: nothing is encoded here, each partition
    encodes its products once when it is loaded. A block with a longer id is encoded as the
    in-memory run encodes its input, and its pieces carry dictionary-encoded ids."""
    splitter_keys = plan.splitter_keys()
    ids: ProductKeys | ProductEncoder = (ProductKeys(block.rows) if splitter_keys is not None
                                         else ProductEncoder())
    if batches is not None:  # the block's part of a run's reader (:func:`block_batches`)
        got = load_rows(_until_none(batches), block.rows, ropts, until_week, strict, ids)
    else:  # the next batch's Parquet decoding (pyarrow, no GIL) overlaps this one's kernels
        reader = Prefetch(read_batches(block.path, ropts, block.row_groups))
        try:
            got = load_rows(reader, block.rows, ropts, until_week, strict, ids)
        finally:
            reader.close()
    rows_read, rejects = got.rows_read, got.rejects
    n_threads = numba.get_num_threads()
    if isinstance(ids, ProductKeys) and (products := ids.finish(got.code)) is None:
        s0, s1 = splitter_keys
        offsets, k0, k1, week, rows = split.split_by_key_ranges(
            ids.k0[:rows_read], ids.k1[:rows_read], got.code, got.week, got.rows,
            s0, s1, n_threads)
        del got, ids

        def piece(p: int) -> pa.Table | None:
            a, b = int(offsets[p]), int(offsets[p + 1])
            return _key_piece(k0[a:b], k1[a:b], week[a:b], rows[a:b]) if b > a else None
    else:
        if isinstance(ids, ProductEncoder):
            mapping, products = ids.finish()
            strings.remap(got.code, mapping)
        bounds = _product_bounds(products, plan.splitters)
        # codes are keys of one word: the same cut, by the partitions' first codes
        code = got.code.astype(np.uint64)
        inner = bounds[1:-1].astype(np.uint64)
        offsets, code, _, week, rows = split.split_by_key_ranges(
            code, np.zeros_like(code), got.code, got.week, got.rows, inner,
            np.zeros_like(inner), n_threads)
        del got

        def piece(p: int) -> pa.Table | None:
            a, b = int(offsets[p]), int(offsets[p + 1])
            if b == a:
                return None
            lo, hi = int(bounds[p]), int(bounds[p + 1])
            local = (code[a:b] - np.uint64(lo)).astype(np.int32)
            return _code_piece(products.slice(lo, hi - lo), local, week[a:b], rows[a:b])
    return CutBlock(rows_read, rejects, offsets, piece)


def write_pieces(cut: CutBlock, scratch: Path, name: str) -> SplitResult:
    """Stage 1's output: one piece per partition with rows (``scratch/pPPPPP/NAME.arrow``)."""
    part_rows, pieces = np.diff(cut.offsets).tolist(), []
    for p in range(len(part_rows)):
        table = cut.piece(p)
        if table is None:
            pieces.append(None)
            continue
        where = scratch / f"p{p:05d}"
        where.mkdir(parents=True, exist_ok=True)
        path = where / f"{name}.arrow"
        _publish_piece(path, table)
        pieces.append(str(path))
    return SplitResult(cut.rows_read, cut.rejects, part_rows, pieces)


def split_block(block: Block, ropts: ReadOptions, until_week: int | None, strict: bool,
                plan: PartitionPlan, scratch: Path, name: str) -> SplitResult:
    """Stage 1 for one block: :func:`cut_block`, then :func:`write_pieces`."""
    return write_pieces(cut_block(block, ropts, until_week, strict, plan), scratch, name)


def load_partition(pieces: list[str]) -> Columns:
    """The rows of one partition's pieces (in the given order) as :class:`Columns`.

    The partition's products are encoded once, by the in-memory run's
    :class:`~rcfast.weekly.products.ProductEncoder` (its hash and sort kernels): the keys of
    every row of the key pieces, and the dictionaries of the pieces of blocks with longer ids.
    """
    sources = [pa.ipc.open_file(pa.memory_map(p)) for p in pieces]
    batches = [src.get_batch(i) for src in sources for i in range(src.num_record_batches)]
    n = sum(b.num_rows for b in batches)
    encoder = ProductEncoder()
    # per batch: the first row's pool code (key pieces: the rows follow it) or the pool code
    # of each dictionary entry
    pool_codes = []
    for b in batches:
        if b.schema.names[0] == _KEY_PIECE_FIELDS[0]:
            pool_codes.append(encoder.add_keys(b.column(0).to_numpy(), b.column(1).to_numpy()))
        else:
            pool_codes.append(encoder.add([b.column(0).dictionary]))
    mapping, products = encoder.finish()
    code = np.empty(n, dtype=np.int32)
    week = np.empty(n, dtype=np.int32)
    rows = np.empty((n, aggregate.ROW_WIDTH), dtype=np.int64)
    pos = 0
    for k, batch in enumerate(batches):
        m = batch.num_rows
        if batch.schema.names[0] == _KEY_PIECE_FIELDS[0]:
            code[pos:pos + m] = mapping[pool_codes[k]:pool_codes[k] + m]
        else:
            final = strings.take(mapping, pool_codes[k])
            code[pos:pos + m] = strings.take(final, batch.column(0).indices.to_numpy())
        week[pos:pos + m] = batch.column(-2).to_numpy()
        packed = batch.column(-1)
        rows[pos:pos + m] = np.frombuffer(packed.buffers()[1], dtype=np.int64).reshape(
            -1, aggregate.ROW_WIDTH)[packed.offset:packed.offset + m]
        pos += m
    del batches, sources
    return Columns(products, code, week, rows)


def partition_batches(pieces: list[str], popts: PanelOptions, stats: PanelStats,
                      slice_rows: int | None = None) -> Iterator[pa.Table]:
    """Stage 2: the panel of one partition, in slices of whole products."""
    if not pieces:
        return
    t = time.perf_counter()
    columns = load_partition(pieces)
    stats.timings["load"] = stats.timings.get("load", 0.0) + time.perf_counter() - t
    yield from panel_batches(columns, popts, stats, slice_rows=slice_rows, consume=True)
