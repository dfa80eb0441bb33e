"""Kernels on their own: strings, weeks, grouping (hypothesis against plain Python)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rcfast.kernels import aggregate, group, strings
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


short_strings = st.lists(st.binary(max_size=strings.KEY_MAX_BYTES) | st.sampled_from(
    [b"", b"\x00", b"a", b"a\x00", b"abcdefgh", b"abcdefgh\x00", b"B000007L0E",
     b"\xff" * 15, b"\x00" * 15]), max_size=80)


@settings(max_examples=200, deadline=None)
@given(short_strings, st.integers(1, 3))
def test_keys_round_trip_sort_and_encode(values, bucket_bits):
    # packed keys must order like bytes, come back unchanged, and encode equal iff equal
    offsets, data = buffers(values)
    assert strings.max_length(offsets) == max((len(v) for v in values), default=0)
    k0, k1 = strings.pack_keys(offsets, data)
    off2, data2 = strings.unpack_keys(k0, k1)
    assert off2.tolist() == offsets.tolist() and bytes(data2) == bytes(data)
    order = strings.argsort_keys(k0, k1)
    assert [values[i] for i in order] == sorted(values)
    o_off, o_data = strings.unpack_keys_at(k0, k1, order)
    assert [bytes(o_data[o_off[i]:o_off[i + 1]]) for i in range(len(values))] == sorted(values)
    codes, u0, u1 = strings.encode_keys(k0, k1, bucket_bits=bucket_bits)
    u_off, u_data = strings.unpack_keys(u0, u1)
    uniques = [bytes(u_data[u_off[c]:u_off[c + 1]]) for c in range(len(u0))]
    assert sorted(uniques) == sorted(set(values))
    assert [uniques[c] for c in codes] == values


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0, 0xFFFF, 0xFFFF0000FFFF, 2**64 - 1]),
       st.integers(65536, 300_000))
def test_argsort_keys_in_parallel_blocks_is_stable_byte_order(seed, vary, n):
    # enough keys for several blocks per radix pass (the hypothesis lists above stay in one);
    # ``vary`` leaves some 16-bit digits shared by every key (those passes are skipped)
    rng = np.random.default_rng(seed)
    k0 = (rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2)) & np.uint64(vary)
    k0 |= np.uint64(0x4230000000000000) & ~np.uint64(vary)
    k1 = rng.integers(0, 4, n, dtype=np.uint64) << np.uint64(48) | np.uint64(10)
    order = strings.argsort_keys(k0, k1)
    ref = np.lexsort((np.arange(n), k1, k0))  # by k0, then k1, then position: stable
    assert np.array_equal(order, ref)
    assert np.array_equal(strings.take(k1, order), k1[ref])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.none() | st.binary(max_size=20).map(
    lambda b: b.decode("latin-1")), max_size=30), max_size=5), st.booleans())
def test_product_encoder_mixes_short_long_dict_and_null(batches, as_dict):
    # ids that fit a key and longer ones, plain and dictionary chunks, over several batches:
    # every row's final code is its id's rank in byte order
    import pyarrow as pa

    from rcfast.weekly.products import ProductEncoder

    enc = ProductEncoder()
    pool_codes = []
    for k, vals in enumerate(batches):
        arr = pa.array(vals, type=pa.string())
        if as_dict and k % 2:
            arr = arr.dictionary_encode()
        pool_codes.append(enc.add([arr]))
    mapping, products = enc.finish()
    got = products.to_pylist()
    assert got == sorted(got, key=lambda x: x.encode("utf-8"))
    assert len(set(got)) == len(got)
    for vals, pc in zip(batches, pool_codes):
        for v, c in zip(vals, pc):
            if v is None:
                assert c == -1
            else:
                assert got[mapping[c]] == v


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.none() | st.binary(max_size=18).map(
    lambda b: b.decode("latin-1")), max_size=30), max_size=5), st.booleans(),
    st.lists(st.integers(0, 40), max_size=3))
def test_product_keys_carry_ids_or_hand_over_to_the_encoder(batches, as_dict, rejected):
    # the split stage's collector: while every id fits a key, each row's key sorts as its id
    # does; after the first longer id (in any batch), every kept row's code is its id's rank
    import pyarrow as pa

    from rcfast.weekly.products import ProductKeys

    rows = [v for vals in batches for v in vals]
    ids = ProductKeys(len(rows))
    code = np.empty(len(rows), dtype=np.int32)
    pos = 0
    for k, vals in enumerate(batches):
        arr = pa.array(vals, type=pa.string())
        if as_dict and k % 2:
            arr = arr.dictionary_encode()
        code[pos:pos + len(vals)] = ids.add([arr])
        pos += len(vals)
    for i in rejected:  # rows set aside by the checks after the ids were added
        if i < len(rows):
            code[i] = -1
    products = ids.finish(code)
    kept = [(i, v) for i, v in enumerate(rows) if v is not None and i not in rejected]
    assert all(code[i] == -1 for i, v in enumerate(rows) if v is None or i in rejected)
    if products is None:
        assert all(len(v.encode()) <= strings.KEY_MAX_BYTES for v in rows if v is not None)
        keys = {v: (int(ids.k0[i]), int(ids.k1[i])) for i, v in kept}
        by_key = sorted(keys, key=keys.get)
        assert by_key == sorted(keys, key=lambda x: x.encode("utf-8"))
    else:
        assert any(v is not None and len(v.encode()) > strings.KEY_MAX_BYTES for v in rows)
        got = products.to_pylist()
        assert got == sorted(got, key=lambda x: x.encode("utf-8"))
        for i, v in kept:
            assert got[code[i]] == v


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


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 7, 2048, 2049, 5000, 70_000]),
       st.sampled_from([0, 50, 5000, 200_000]), st.integers(1, 4), st.booleans())
def test_counting_sort_wide_equals_one_pass(seed, n_keys, n, blocks, skewed):
    # key counts on both sides of 2**HIGH_BITS (no low bits, then several), rows enough for
    # several blocks, left-out (-1) rows, and one key holding most rows when skewed
    rng = np.random.default_rng(seed)
    keys = rng.integers(-1, n_keys, n).astype(np.int32)
    if skewed and n:
        keys[rng.random(n) < 0.7] = n_keys - 1
    rows = np.arange(n, dtype=np.int32)
    weeks = rng.integers(-5, 5, n).astype(np.int32)
    want = group.counting_sort(keys, n_keys, blocks, rows, weeks)
    got = group.counting_sort_wide(keys, n_keys, blocks, rows.copy(), weeks.copy())
    for a, b in zip(got, want):
        assert np.array_equal(a, b)


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


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 6, 513, 5000, 70_000]),
       st.sampled_from([0, 1, 300, 100_000]), st.sampled_from([1, 52, 3000, 40_000]),
       st.integers(1, 3), st.booleans())
def test_sort_by_product_week_many_products_and_weeks(seed, n_products, n, span, blocks,
                                                      overwrite):
    # product counts past 2**HIGH_BITS (bucket-local sorts by the low bits), week spans on
    # both sides of BUCKET_WEEKS_MAX (the global week sort), several blocks, -1 rows, and the
    # result written over the inputs
    rng = np.random.default_rng(seed)
    code = rng.integers(-1, n_products, n).astype(np.int32)
    week = (rng.integers(0, span, n) - span // 2).astype(np.int32)
    order = np.lexsort((np.arange(n), week, code))
    order = order[code[order] >= 0]
    want_off = np.searchsorted(code[order], np.arange(n_products + 1), side="left")
    want_sw = week[order]
    perm, offsets, sw = group.sort_by_product_week(code, week, n_products, blocks, overwrite)
    assert np.array_equal(perm, order)
    assert np.array_equal(sw, want_sw)
    assert np.array_equal(offsets, want_off)


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


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-2**63, 2**63 - 1),
    st.integers(-128, 127),
    st.integers(-2**59 + 1, 2**59 - 1),
    st.booleans()), max_size=40), st.integers(0, 3))
def test_packed_rows_round_trip(rows, start):
    # every value a review carries must come back bit for bit through pack + gather
    n = len(rows)
    r = np.array([x[0] for x in rows], dtype=np.float64)
    h = np.array([x[1] for x in rows], dtype=np.int64)
    v = np.array([x[2] for x in rows], dtype=np.int8)
    t = np.array([x[3] for x in rows], dtype=np.int64)
    tv = np.array([x[4] for x in rows], dtype=np.bool_)
    out = np.zeros((n + start, aggregate.ROW_WIDTH), dtype=np.int64)
    aggregate.pack_rows(out, start, r, h, v, t, tv)
    idx = np.arange(start, n + start)[::-1].copy()
    gr, gh, gv, gt, gtv = aggregate.gather_rows(idx, out)
    assert gr.view(np.int64).tolist() == r[::-1].view(np.int64).tolist()
    assert gh.tolist() == h[::-1].tolist()
    assert gv.tolist() == np.sign(v[::-1]).tolist()  # null (negative), false, true
    assert gtv.tolist() == tv[::-1].tolist()
    assert gt.tolist() == np.where(tv, t, 0)[::-1].tolist()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(-2**40, 2**40), st.integers(-2, 3)), max_size=70))
def test_ratio_bits_match_numpy(pairs):
    # bitmaps LSB first (Arrow's layout), lengths not a multiple of 8, all-valid and none-valid
    num = np.array([p[0] for p in pairs], dtype=np.int64)
    den = np.array([p[1] for p in pairs], dtype=np.int32)
    values, bits, n_valid = aggregate.ratio_bits(num, den)
    valid = den > 0
    assert np.array_equal(bits, np.packbits(valid, bitorder="little"))
    assert n_valid == int(valid.sum())
    assert values[valid].tolist() == (num[valid] / den[valid]).tolist()
    assert (values[~valid] == 0).all()
