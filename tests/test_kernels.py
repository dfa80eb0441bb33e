"""Kernels on their own: strings, weeks, grouping (hypothesis against plain Python)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rcfast.kernels import group, strings
from rcfast.kernels.time import to_ms, week_index


def buffers(values: list[bytes]):
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(v) for v in values])
    data = np.frombuffer(b"".join(values), dtype=np.uint8).copy()
    return offsets, data


byte_strings = st.lists(st.binary(max_size=20) | st.sampled_from(
    [b"", b"\x00", b"a", b"a\x00", b"abcdefgh", b"abcdefgh\x00", b"abcdefghi", b"\xff" * 9]),
    max_size=80)


@settings(max_examples=200, deadline=None)
@given(byte_strings)
def test_argsort_strings_is_byte_order(values):
    offsets, data = buffers(values)
    order = strings.argsort_strings(offsets, data)
    assert [values[i] for i in order] == sorted(values)


@settings(max_examples=200, deadline=None)
@given(byte_strings, st.sampled_from([0xFFFFFFFFFFFFFFFF, 0xFF00000000000003, 0]))
def test_encode_strings_equal_iff_equal(values, hash_mask):
    # narrow hash masks force collisions: the exact fallback must still tell strings apart
    offsets, data = buffers(values)
    codes, u_off, u_data = strings.encode_strings(offsets, data, hash_mask=hash_mask)
    uniques = [bytes(u_data[u_off[c]:u_off[c + 1]]) for c in range(len(u_off) - 1)]
    assert sorted(uniques) == sorted(set(values))
    for i, v in enumerate(values):
        assert uniques[codes[i]] == v
    assert len(set(codes.tolist())) == len(set(values))


def test_hash_is_stable():
    offsets, data = buffers([b"B00ABC", b"", b"B00ABC"])
    h = strings.hash_strings(offsets, data)
    assert h[0] == h[2] and h[0] != h[1]
    # frozen: partitions written by one version must be found by the next
    assert int(h[0]) == 0x57A9B86A33FD3CD8


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-2**52, 2**52), max_size=50))
def test_week_index_floor(ms):
    arr = np.array(ms, dtype=np.int64)
    expect = [((m // 1000) + 259200) // 604800 for m in ms]
    assert week_index(arr).tolist() == expect


@given(st.lists(st.integers(-2**40, 2**40), max_size=50),
       st.sampled_from([(1000, 1), (1, 1000), (1, 1_000_000)]))
def test_to_ms_floors(vals, factor):
    arr = np.array(vals, dtype=np.int64)
    num, den = factor
    assert to_ms(arr, np.int64(num), np.int64(den)).tolist() == [v * num // den for v in vals]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-1, 6), max_size=300), st.integers(1, 8))
def test_counting_sort_stable(keys, blocks):
    k = np.array(keys, dtype=np.int32)
    rows = np.arange(len(keys), dtype=np.int64)
    offsets, perm, moved = group.counting_sort(k, 7, blocks, rows, (rows * 10).astype(np.int32))
    expect = sorted((key, i) for i, key in enumerate(keys) if key >= 0)
    assert perm.tolist() == [i for _, i in expect]
    assert moved.tolist() == [10 * i for _, i in expect]
    assert offsets.tolist() == [sum(1 for x in keys if 0 <= x < j) for j in range(8)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 5), st.integers(-3000, 3000)), max_size=300),
       st.integers(1, 4))
def test_sort_by_product_week(rows, blocks):
    code = np.array([r[0] for r in rows], dtype=np.int32)
    week = np.array([r[1] for r in rows], dtype=np.int32)
    perm, offsets, sw = group.sort_by_product_week(code, week, 6, blocks)
    expect = sorted((c, w, i) for i, (c, w) in enumerate(rows) if c >= 0)
    assert perm.tolist() == [i for _, _, i in expect]
    assert sw.tolist() == [w for _, w, _ in expect]
    assert offsets.tolist() == [sum(1 for c, _ in rows if 0 <= c < j) for j in range(7)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(-5, 40), max_size=70), max_size=6))
def test_week_runs(segments):
    sw = np.array([w for s in segments for w in sorted(s)], dtype=np.int32)
    offsets = np.zeros(len(segments) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in segments])
    g_off, run_start = group.week_runs(sw, offsets)
    assert np.diff(g_off).tolist() == [len(set(s)) for s in segments]
    starts = run_start[:-1].tolist()
    expect = [offsets[p] + sorted(s).index(w) for p, s in enumerate(segments)
              for w in sorted(set(s))]
    assert starts == expect
