"""The public generator: :func:`generate_batches` regroups the fixed internal RNG blocks of
:data:`BLOCK_ROWS` rows (drawn on a few threads, each from its own seed) into output chunks and
turns them into record batches of :data:`rcfast.schema.NORMALIZED_SCHEMA`. It also owns
:data:`GENERATOR_VERSION`, the identity of the generated rows that keys the demo cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from rcfast.schema import NORMALIZED_SCHEMA
from rcfast.synth.catalog import _CATEGORIES, _Catalog, _catalog, _id_bytes, _resolve_products
from rcfast.synth.reviews import _block
from rcfast.synth.string_columns import (
    _fixed_width_strings,
    _stream_strings,
    _take_rows,
    _user_id_bytes,
)

#: Bump whenever the generated rows change for the same arguments (it keys the demo cache).
GENERATOR_VERSION = 4

#: Rows per internal RNG block. Part of the output's identity: changing it changes the data.
BLOCK_ROWS = 1 << 17


def _check_n_rows(n_rows: int) -> None:
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 0:
        raise ValueError(f"n_rows must be a non-negative integer, got {n_rows!r}")


def _chunks(n_rows: int, seed: int, chunk_rows: int, n_products: int | None,
            with_text: bool) -> Iterator[tuple[_Catalog, dict[str, np.ndarray]]]:
    """Yield (catalog, numeric columns) per output chunk, regrouping the fixed RNG blocks."""
    _check_n_rows(n_rows)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) \
            or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    cat = _catalog(int(n_rows), int(seed), _resolve_products(n_rows, n_products))
    n_blocks = -(-int(n_rows) // BLOCK_ROWS)

    def make(block: int) -> dict:
        n = min(BLOCK_ROWS, n_rows - block * BLOCK_ROWS)
        b = _block(cat, int(seed), block, n, with_text)
        b["pid_bytes"] = _take_rows(cat.id_bytes, b["prod"])
        b["uid_bytes"] = _user_id_bytes(cat, b["user"])
        b["cat_code"] = cat.category[b["prod"]].astype(np.int32)
        if with_text:
            # Text is tied to the block, not the chunk, to stay chunk-size independent.
            b["title"] = _stream_strings(b.pop("title_len"), int(b["text_off"][0]))
            b["text"] = _stream_strings(b["text_len"], int(b.pop("text_off")[1]))
            # Variant ids take indexes past the catalog, so they never equal a parent id.
            v = b.pop("variant")
            child = _id_bytes(cat.n_products + b["prod"] * 3 + v - 1)
            b["asin_bytes"] = np.where((v == 0)[:, None], b["pid_bytes"], child)
        return b

    # Blocks are independent (own seed), so threads may draw them in any order: numpy releases
    # the GIL in the bulk work. A bounded look-ahead keeps memory at a few chunks.
    from rcfast.resources import available_cpus

    workers = min(4, available_cpus())
    with ThreadPoolExecutor(workers) as pool:
        ahead: list[Future] = []
        next_block = 0
        lookahead = max(2 * workers, -(-chunk_rows // BLOCK_ROWS) + workers)

        def next_result() -> dict:
            nonlocal next_block
            while next_block < n_blocks and len(ahead) < lookahead:
                ahead.append(pool.submit(make, next_block))
                next_block += 1
            return ahead.pop(0).result()

        pending: list[dict] = []
        pending_rows = 0
        done = 0
        while done < n_rows:
            while pending_rows < min(chunk_rows, n_rows - done):
                b = next_result()
                pending.append(b)
                pending_rows += b["ts"].size
            take = min(chunk_rows, n_rows - done)
            merged = {k: (pa.concat_arrays([p[k] for p in pending])
                          if isinstance(pending[0][k], pa.Array)
                          else np.concatenate([p[k] for p in pending])) for k in pending[0]}
            out = {k: v[:take] for k, v in merged.items()}
            rest = {k: v[take:] for k, v in merged.items()}
            pending_rows -= take
            pending = [rest] if pending_rows else []
            done += take
            yield cat, out


def _to_batch(cat: _Catalog, cols: dict[str, np.ndarray], with_text: bool) -> pa.RecordBatch:
    cat_names = pa.array([c[0] for c in _CATEGORIES], pa.string())
    arrays = [
        _fixed_width_strings(cols["pid_bytes"]),
        _fixed_width_strings(cols["uid_bytes"]),
        pa.array(cols["ts"], pa.int64()).view(pa.timestamp("ms", tz="UTC")),
        pa.array(cols["rating"], pa.float32()),
        pa.array(cols["helpful"], pa.int32()),
        pa.array(cols["verified"], pa.bool_()),
        pa.array(cols["text_len"], pa.int32()),
        cat_names.take(pa.array(cols["cat_code"])),
    ]
    schema = NORMALIZED_SCHEMA
    if with_text:
        arrays += [cols["title"], cols["text"]]
        schema = schema.append(pa.field("title", cols["title"].type)) \
            .append(pa.field("text", cols["text"].type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def generate_batches(n_rows: int, seed: int = 0, *, chunk_rows: int = 1_000_000,
                     n_products: int | None = None,
                     with_text: bool = False) -> Iterator[pa.RecordBatch]:
    """Yield ``n_rows`` synthetic reviews as record batches of at most ``chunk_rows`` rows.

    Batches follow :data:`rcfast.schema.NORMALIZED_SCHEMA`; ``with_text=True`` appends ``title``
    and ``text`` columns (``text_len == len(text)``). The rows depend only on
    ``(n_rows, seed, n_products)``, not on ``chunk_rows``.
    """
    for cat, cols in _chunks(n_rows, seed, chunk_rows, n_products, with_text):
        yield _to_batch(cat, cols, with_text)
