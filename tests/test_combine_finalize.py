"""The finalize step's integer-key ordering and duplicate search against a plain reference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from rcfast.ingest.finalize import _argsort_stable, _order_and_duplicates, _product_rank

_ids = st.sampled_from(["B0A", "B0B", "", "a", "ab", "B07XJ8C8F5", "B07XJ8C8F5X", "Ω",
                        "x" * 16, "x" * 17, "x" * 15, "x" * 15 + "\x00", "z" * 20, "é"])
_row = st.tuples(_ids.filter(bool), st.sampled_from(["u1", "u2", None, "u1x"]),
                 st.integers(0, 3), st.integers(0, 2), st.integers(0, 1))


def _table(rows, files_n, shuffle_seed):
    n = len(rows)
    files = [r[4] % files_n for r in rows]
    seq = list(range(n))
    perm = np.random.default_rng(shuffle_seed).permutation(n) if shuffle_seed else np.arange(n)
    pick = lambda xs: [xs[i] for i in perm]  # noqa: E731
    t = pa.table({
        "product_id": pa.array(pick([r[0] for r in rows]), pa.string()),
        "user_id": pa.array(pick([r[1] for r in rows]), pa.string()),
        "timestamp": pa.array(pick([1_600_000_000_000 + r[2] for r in rows]), pa.timestamp("ms")),
        "_text_hash": pa.array(pick([r[3] for r in rows]), pa.uint64()),
        "_file": pa.array(pick(files), pa.int32()),
        "_seq": pa.array(pick(seq), pa.int64()),
    })
    return t


def _reference(t: pa.Table):
    cols = t.to_pydict()
    n = t.num_rows
    ts = [int(x.timestamp() * 1000) for x in cols["timestamp"]]
    key = lambda i: (cols["product_id"][i].encode(), ts[i], cols["_file"][i], cols["_seq"][i])  # noqa: E731
    order = sorted(range(n), key=key)
    seen, dup = set(), []
    for i in sorted(range(n), key=lambda i: (cols["_file"][i], cols["_seq"][i])):
        k = (cols["product_id"][i], cols["user_id"][i], ts[i], cols["_text_hash"][i])
        if k in seen:
            dup.append(i)
        seen.add(k)
    dset = set(dup)
    return order, [i in dset for i in order]


@settings(max_examples=300, deadline=None)
@given(st.lists(_row, min_size=0, max_size=40), st.integers(1, 3), st.integers(0, 3))
def test_order_and_duplicates_match_reference(rows, files_n, shuffle_seed):
    t = _table(rows, files_n, shuffle_seed)
    order, dup = _order_and_duplicates(t, False)
    ref_order, ref_dup = _reference(t)
    assert order.tolist() == ref_order
    if len(rows) >= 2:
        assert dup.tolist() == ref_dup
    order2, none = _order_and_duplicates(t, True)
    assert none is None and order2.tolist() == ref_order


@given(st.lists(_ids, unique=True))
def test_product_rank_is_byte_order(ids):
    arr = pa.array(ids, pa.string())
    rank = _product_rank(arr)
    assert [ids[i] for i in np.argsort(rank)] == sorted(ids, key=lambda s: s.encode())


@given(st.lists(st.one_of(st.none(), st.text(min_size=0, max_size=12)), max_size=30),
       st.integers(0, 3))
def test_partition_hash_every_form_matches_reference(ids, cut):
    """The numpy hash (ragged and fixed-width paths) and the compiled kernel agree with the
    plain-Python reference, nulls (hash 0) and sliced arrays included."""
    from hash_reference import fnv_hash_py

    from rcfast.ingest.string_hashes import hash_strings

    fixed = [None if s is None else s.ljust(7, "x")[:7] for s in ids]
    for arr in (pa.array(ids, pa.string()), pa.array(fixed, pa.string()),
                pa.array(fixed, pa.string()).slice(cut)):
        want = [0 if s is None else fnv_hash_py(s.encode()) for s in arr.to_pylist()]
        assert hash_strings(arr, short=True).tolist() == want  # numpy
        assert hash_strings(arr).tolist() == want  # Numba kernel


def test_spill_raw_and_lz4_read_back_the_same(tmp_path):
    """Large inputs spill lz4-compressed, small ones raw: both give back every row, per
    partition, in the order written."""
    from rcfast.ingest.pipeline import Spill, spill_schema

    rng = np.random.default_rng(3)
    n, parts = 5000, 7
    schema = spill_schema(False)
    cols = {
        "product_id": pa.array([f"P{i % 97}" for i in range(n)]),
        "user_id": pa.array([None if i % 11 == 0 else f"U{i}" for i in range(n)]),
        "timestamp": pa.array(rng.integers(0, 2**40, n), pa.int64()).cast(schema.field(
            "timestamp").type),
        "rating": pa.array(rng.integers(1, 6, n).astype(np.float32)),
        "helpful_votes": pa.array(rng.integers(0, 9, n).astype(np.int32)),
        "verified": pa.array(rng.random(n) < 0.5),
        "text_len": pa.array(rng.integers(0, 900, n).astype(np.int32)),
        "category": pa.array(["Books"] * n),
        "_text_hash": pa.array(rng.integers(0, 2**62, n).astype(np.uint64)),
        "_file": pa.array(np.zeros(n, np.int32)),
        "_seq": pa.array(np.arange(n, dtype=np.int64)),
    }
    table = pa.table([cols[f.name] for f in schema], schema=schema)
    part = rng.integers(0, parts, n)
    got = {}
    for compress in (False, True):
        sp = Spill(str(tmp_path / f"s{compress}"), parts, False, compress=compress)
        for lo in range(0, n, 700):  # several blocks
            sp.write(table.slice(lo, 700), part[lo : lo + 700])
        sp.close()
        got[compress] = [sp.read(p) for p in range(parts)]
    for p in range(parts):
        expect = table.filter(pa.array(part == p))
        assert got[False][p].equals(expect) and got[True][p].equals(expect)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-3, 3), max_size=200), st.integers(0, 2))
def test_fast_stable_argsort_matches_numpy_stable(values, scale):
    keys = np.array(values, dtype=np.int64) << np.int64(20 * scale)  # many ties, big keys
    np.testing.assert_array_equal(_argsort_stable(keys), np.argsort(keys, kind="stable"))


def test_fast_stable_argsort_on_a_large_array_with_ties():
    keys = np.random.default_rng(1).integers(0, 5_000, 100_000).astype(np.int64)
    np.testing.assert_array_equal(_argsort_stable(keys), np.argsort(keys, kind="stable"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-2, 2), st.integers(0, 3), st.integers(0, 1)),
                max_size=200))
def test_fast_stable_argsort_with_tie_breakers_matches_lexsort(rows):
    keys = np.array([r[0] for r in rows], dtype=np.int64)
    seq = np.array([r[1] for r in rows], dtype=np.int64)
    files = np.array([r[2] for r in rows], dtype=np.int32)
    np.testing.assert_array_equal(_argsort_stable(keys, (seq,)), np.lexsort((seq, keys)))
    np.testing.assert_array_equal(_argsort_stable(keys, (seq, files)),
                                  np.lexsort((seq, files, keys)))
