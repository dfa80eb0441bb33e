"""Arrow columns -> packed rows straight from Arrow's buffers (``BatchArrays.pack``), against a
plain-Python reading of ``to_pylist()``: any chunking per column, sliced chunks (bit offsets
that are not a multiple of 8), nulls, and every accepted numeric type."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rcfast.errors import InputError
from rcfast.weekly.convert import convert_batch
from rcfast.weekly.read import ReadOptions
from rcfast.kernels import aggregate

RATING_TYPES = [pa.float32(), pa.float64(), pa.int8(), pa.int64(), pa.uint16(),
                pa.decimal128(5, 2), pa.dictionary(pa.int8(), pa.float64())]
INT_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32(),
             pa.uint64(), pa.float64(), pa.dictionary(pa.int16(), pa.int32())]
VERIFIED_TYPES = [pa.bool_(), pa.int8(), pa.int64()]


def chunked(values: list, typ: pa.DataType, cuts: list[int], pad: int) -> pa.ChunkedArray:
    """``values`` as chunks split at ``cuts``, each a slice of a longer array (offset ``pad``)."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(values)}), len(values)]
    chunks = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        part = [None] * pad + values[a:b] + [None] * 3
        base = (pa.array(part, type=typ.value_type).dictionary_encode().cast(typ)
                if pa.types.is_dictionary(typ) else pa.array(part, type=typ))
        chunks.append(base.slice(pad, b - a))
    return pa.chunked_array(chunks, type=typ)


def expected_row(r, h, v, t) -> tuple[int, int, int]:
    rb = np.array([np.nan if r is None else float(r)], dtype=np.float64).view(np.int64)[0]
    state = 0 if v is None or int(v) < 0 else (2 if int(v) > 0 else 1)
    tl, tv = (0, 0) if t is None else (int(t), 1)
    return int(rb), 0 if h is None else int(h), (tl << 3) | (tv << 2) | state


@st.composite
def batches(draw):
    n = draw(st.integers(0, 40))
    rt = draw(st.sampled_from(RATING_TYPES))
    ht = draw(st.sampled_from(INT_TYPES))
    tt = draw(st.sampled_from(INT_TYPES))
    vt = draw(st.sampled_from(VERIFIED_TYPES))
    small = st.integers(0, 100)
    maybe = lambda s: st.none() | s  # noqa: E731
    ratings = draw(st.lists(maybe(st.integers(1, 5)), min_size=n, max_size=n))
    helpful = draw(st.lists(maybe(small), min_size=n, max_size=n))
    text_len = draw(st.lists(maybe(small), min_size=n, max_size=n))
    verified = draw(st.lists(maybe(st.integers(-1, 1) if vt != pa.bool_() else st.booleans()),
                             min_size=n, max_size=n))
    present = draw(st.fixed_dictionaries({k: st.booleans()
                                          for k in ("helpful_votes", "verified", "text_len")}))
    cuts = lambda: draw(st.lists(st.integers(0, max(n, 1)), max_size=4))  # noqa: E731
    pads = lambda: draw(st.integers(0, 13))  # noqa: E731
    cols = {"product_id": pa.chunked_array([pa.array(["p"] * n, type=pa.string())]),
            "timestamp": pa.chunked_array([pa.array([0] * n, type=pa.timestamp("ms"))]),
            "rating": chunked(ratings, rt, cuts(), pads())}
    if present["helpful_votes"]:
        cols["helpful_votes"] = chunked(helpful, ht, cuts(), pads())
    if present["verified"]:
        cols["verified"] = chunked(verified, vt, cuts(), pads())
    if present["text_len"]:
        cols["text_len"] = chunked(text_len, tt, cuts(), pads())
    want = [expected_row(ratings[i],
                         helpful[i] if "helpful_votes" in cols else None,
                         verified[i] if "verified" in cols else None,
                         text_len[i] if "text_len" in cols else None) for i in range(n)]
    return cols, want


@settings(max_examples=300, deadline=None)
@given(batches(), st.integers(0, 3))
def test_pack_from_arrow_buffers_matches_python(batch, start):
    cols, want = batch
    colmap = {k: k for k in cols}
    b = convert_batch(Path("x.parquet"), cols, colmap, ReadOptions())
    assert b.n == len(want)
    rows = np.full((b.n + start, aggregate.ROW_WIDTH), -7, dtype=np.int64)
    lo, hi = b.pack(rows, start)
    assert [tuple(int(x) for x in r) for r in rows[start:]] == want
    assert rows[:start].tolist() == [[-7] * aggregate.ROW_WIDTH] * start  # nothing before
    lens = [w[2] >> 3 for w in want if w[2] & 4]
    assert (lo, hi) == (min([0, *lens]), max([0, *lens]))


def test_pack_rejects_text_too_long_and_bad_types():
    from rcfast.weekly.load import load_batches
    from rcfast.weekly.read import Batch

    n = 3
    cols = {"product_id": pa.chunked_array([pa.array(["a", "b", "c"])]),
            "timestamp": pa.chunked_array([pa.array([1.6e12] * n, type=pa.float64())
                                           .cast(pa.int64()).cast(pa.timestamp("ms"))]),
            "rating": pa.chunked_array([pa.array([1.0, 2.0, 3.0])]),
            "text_len": pa.chunked_array([pa.array([1, 2**60, 3], type=pa.int64())])}
    colmap = {k: k for k in cols}
    with pytest.raises(InputError, match=r"text_len.*2\*\*59"):
        load_batches([Batch(Path("t.parquet"), 0, cols, colmap)], n, ReadOptions(), None, False)
    cols["text_len"] = pa.chunked_array([pa.array(["1", "2", "3"])])
    with pytest.raises(InputError, match="text_len.*expected a number"):
        convert_batch(Path("t.parquet"), cols, colmap, ReadOptions())
    cols["text_len"] = pa.chunked_array([pa.array([1.5, 2.0, 3.0])])
    with pytest.raises(InputError, match="cannot be read as int64"):
        convert_batch(Path("t.parquet"), cols, colmap, ReadOptions())


def test_rating_nan_and_null_both_pack_as_nan():
    cols = {"product_id": pa.chunked_array([pa.array(["a", "b"])]),
            "timestamp": pa.chunked_array([pa.array([0, 0], type=pa.timestamp("ms"))]),
            "rating": pa.chunked_array([pa.array([math.nan, None], type=pa.float32())])}
    b = convert_batch(Path("t.parquet"), cols, {k: k for k in cols}, ReadOptions())
    rows = np.zeros((2, aggregate.ROW_WIDTH), dtype=np.int64)
    b.pack(rows, 0)
    assert np.isnan(rows[:, 0].view(np.float64)).all()
