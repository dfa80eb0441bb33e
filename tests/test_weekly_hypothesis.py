"""Random tables (hypothesis): the Numba path equals the naive reference."""

from __future__ import annotations

import pyarrow as pa
from helpers import MONDAY_MS, WEEK_MS, check_against_naive
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PRODUCTS = ["a", "b", "B", "ab", "é", "", "x" * 20, "P0001"]
RATINGS = [1.0, 2.0, 3.0, 4.0, 5.0, 1.5, 2.5, 4.5, 3.3, 0.5, 5.5]


@st.composite
def review_tables(draw):
    n = draw(st.integers(0, 60))
    span_weeks = draw(st.sampled_from([1, 3, 20, 80]))
    base = MONDAY_MS + draw(st.sampled_from([0, -52 * 60 * WEEK_MS]))  # also before 1970
    rows = draw(st.lists(st.tuples(
        st.sampled_from(PRODUCTS + [None]) if draw(st.booleans()) else st.sampled_from(PRODUCTS),
        st.integers(-span_weeks * WEEK_MS, span_weeks * WEEK_MS) | st.just(None),
        st.sampled_from(RATINGS + [None]),
        st.integers(0, 50) | st.none(),
        st.booleans() | st.none(),
        st.integers(0, 2000) | st.none(),
    ), min_size=n, max_size=n))
    t = pa.table({
        "product_id": pa.array([r[0] for r in rows], type=pa.string()),
        "timestamp": pa.array([None if r[1] is None else base + r[1] for r in rows],
                              type=pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "rating": pa.array([r[2] for r in rows], type=pa.float64()),
        "helpful_votes": pa.array([r[3] for r in rows], type=pa.int64()),
        "verified": pa.array([r[4] for r in rows], type=pa.bool_()),
        "text_len": pa.array([r[5] for r in rows], type=pa.int32()),
    })
    if draw(st.booleans()):
        t = t.set_column(0, "product_id", t.column(0).dictionary_encode())
    if n and draw(st.booleans()):
        t = pa.Table.from_batches(t.to_batches(max_chunksize=draw(st.integers(1, n))))
    return t


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=review_tables(),
       windows=st.sampled_from([(4, 12, 52), (1,), (2, 3)]),
       lags=st.sampled_from([(1, 2, 4), (1,), (3, 7)]),
       dense=st.booleans())
def test_random_tables_match_reference(table, windows, lags, dense):
    check_against_naive(table, windows=windows, lags=lags, dense=dense)


@settings(max_examples=25, deadline=None)
@given(table=review_tables(), until=st.sampled_from(["2021-03-10", "2021-06-01", "1962-01-01"]))
def test_random_tables_until(table, until):
    check_against_naive(table, dense=True, until=until)
