"""Hand-made edge cases: the fast path against the naive reference, column by column."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from helpers import MONDAY_MS, WEEK_MS, check_against_naive, reviews

from rcfast.weekly import weekly_panel


@pytest.mark.parametrize("dense", [False, True])
def test_one_review(dense):
    got = check_against_naive(reviews([("A", MONDAY_MS + 5, 4.0)]), dense=dense)
    assert got.num_rows == 1
    row = got.to_pylist()[0]
    assert row["week_start"] == dt.date(2021, 3, 1)
    assert row["rating_std"] == 0.0
    assert row["n_reviews_lag1"] is None and row["weeks_since_prev"] is None
    assert row["n_reviews_ewm"] == 1.0


@pytest.mark.parametrize("gap", [1, 3, 60])
@pytest.mark.parametrize("dense", [False, True])
def test_gaps(gap, dense):
    rows = [("A", MONDAY_MS, 5.0), ("A", MONDAY_MS + 1000, 3.0),
            ("A", MONDAY_MS + gap * WEEK_MS, 1.0),
            ("A", MONDAY_MS + (gap + 1) * WEEK_MS + 7, 2.0)]
    got = check_against_naive(reviews(rows), dense=dense)
    if not dense:
        assert got.column("weeks_since_prev").to_pylist() == [None, gap, 1]
    else:
        assert got.num_rows == gap + 2


def test_sunday_night_and_monday_midnight():
    sunday = MONDAY_MS - 1  # Sunday 23:59:59.999
    got = check_against_naive(reviews([("A", sunday, 5.0), ("A", MONDAY_MS, 1.0)]))
    assert got.column("week_start").to_pylist() == [dt.date(2021, 2, 22), dt.date(2021, 3, 1)]
    assert got.column("n_reviews").to_pylist() == [1, 1]


def test_before_1970_floor_division():
    # 1969-12-31 23:59:59.999 (a Wednesday) -> week of Monday 1969-12-29; 1969-12-28 -> 12-22
    rows = [("A", -1, 3.0), ("A", -3 * 86_400_000 - 1, 4.0), ("A", -3 * 86_400_000, 2.0),
            ("B", -10 * WEEK_MS - 123, 5.0)]
    got = check_against_naive(reviews(rows), dense=True)
    a = [r for r in got.to_pylist() if r["product_id"] == "A"]
    assert [r["week_start"] for r in a] == [dt.date(1969, 12, 22), dt.date(1969, 12, 29)]
    assert [r["n_reviews"] for r in a] == [1, 2]


def test_duplicate_timestamps_and_half_up_stars():
    rows = [("A", MONDAY_MS, r) for r in (1.5, 2.5, 3.5, 4.5, 1.0, 4.49)]
    got = check_against_naive(reviews(rows))
    r = got.to_pylist()[0]
    # 1.0->1, 1.5->2, 2.5->3, 3.5->4, 4.49->4, 4.5->5
    assert [r[f"star_{s}"] for s in range(1, 6)] == [1, 1, 1, 2, 1]


def test_all_null_optional_columns():
    t = pa.table({
        "product_id": ["A", "A", "B"],
        "timestamp": pa.array([MONDAY_MS, MONDAY_MS + WEEK_MS, MONDAY_MS],
                              type=pa.timestamp("ms", tz="UTC")),
        "rating": [5.0, 4.0, 3.0],
        "helpful_votes": pa.array([None, None, None], type=pa.int32()),
        "verified": pa.array([None, None, None], type=pa.bool_()),
        "text_len": pa.array([None, None, None], type=pa.int32()),
    })
    got = check_against_naive(t)
    assert got.column("verified_share").null_count == 3
    assert got.column("text_len_mean").null_count == 3
    assert got.column("helpful_votes").to_pylist() == [0, 0, 0]


def test_missing_optional_columns():
    got = check_against_naive(reviews([("A", MONDAY_MS, 5.0), ("B", MONDAY_MS, 2.0)]))
    assert got.column("verified_share").null_count == 2


@pytest.mark.parametrize("dictionary", [False, True])
@pytest.mark.parametrize("chunks", [1, 3, 7])
def test_multichunk_and_dictionary(chunks, dictionary):
    rows = [(p, MONDAY_MS + i * 86_400_000 * 3 + p_i, 1.0 + (i * 7 + p_i) % 5, i % 4,
             [True, False, None][i % 3], None if i % 5 == 0 else 10 * i)
            for i in range(30) for p_i, p in enumerate(["b", "a", "ab", "é", "B"])]
    check_against_naive(reviews(rows, chunks=chunks, dictionary=dictionary),
                        windows=(2, 5), lags=(1, 3), dense=chunks == 3)


def test_rejected_rows_counted_not_lost():
    t = pa.table({
        "product_id": ["A", None, "A", "A", "A", "A"],
        "timestamp": pa.array([MONDAY_MS, MONDAY_MS, None, MONDAY_MS, MONDAY_MS,
                               10**15], type=pa.timestamp("ms", tz="UTC")),
        "rating": [5.0, 5.0, 5.0, None, 7.0, 3.0],
    })
    got, summary = weekly_panel(t)
    assert summary["rejected"] == {"null_product_id": 1, "null_timestamp": 1,
                                   "timestamp_out_of_range": 1, "null_rating": 1,
                                   "rating_out_of_range": 1, "after_until": 0}
    assert summary["rows_aggregated"] == 1 and got.num_rows == 1
    check_against_naive(t)


def test_empty_input():
    got = check_against_naive(reviews([]))
    assert got.num_rows == 0


def test_until_dense_extends_and_cuts():
    rows = [("A", MONDAY_MS, 5.0), ("B", MONDAY_MS + 2 * WEEK_MS, 4.0),
            ("B", MONDAY_MS + 9 * WEEK_MS, 4.0)]
    got = check_against_naive(reviews(rows), dense=True, until="2021-03-20")
    assert got.num_rows == 3 + 1  # A: 3 weeks to the week of 03-15; B: 1 week, later one cut


def test_non_integer_ratings_and_zero_windows():
    rows = [("A", MONDAY_MS + i * 5 * WEEK_MS, 1.1 + (i % 7) * 0.55) for i in range(40)]
    got = check_against_naive(reviews(rows), windows=(1, 2, 6), dense=True)
    # windows of zero reviews are exactly 0 and their means null
    n1 = got.column("n_reviews_r1").to_pylist()
    m1 = got.column("rating_mean_r1").to_pylist()
    assert all((m is None) == (n == 0) for n, m in zip(n1, m1))


def test_other_timestamp_units():
    for typ in (pa.timestamp("s", tz="UTC"), pa.timestamp("us"), pa.timestamp("ns", tz="UTC")):
        ms = [MONDAY_MS - 1000, MONDAY_MS + 1000, MONDAY_MS + WEEK_MS]
        factor = {"s": 1000, "us": 1, "ns": 1}[typ.unit]
        vals = [m // factor if typ.unit == "s" else m * (1000 if typ.unit == "us" else 10**6)
                for m in ms]
        t = pa.table({"product_id": ["A"] * 3, "timestamp": pa.array(vals, type=typ),
                      "rating": [1.0, 2.0, 3.0]})
        got, _ = weekly_panel(t)
        assert got.column("n_reviews").to_pylist() == [1, 1, 1], typ


def test_dictionary_with_empty_dictionary_and_null_index():
    pid = pa.DictionaryArray.from_arrays(pa.array([None], type=pa.int32()),
                                         pa.array([], type=pa.string()))
    t = pa.table({"product_id": pid,
                  "timestamp": pa.array([MONDAY_MS], type=pa.timestamp("ms", tz="UTC")),
                  "rating": [1.0]})
    got, summary = weekly_panel(t)
    assert got.num_rows == 0 and summary["rejected"]["null_product_id"] == 1
