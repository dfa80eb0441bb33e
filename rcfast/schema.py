"""The normalized review table (input of the weekly step, output of ``rcfast.combine``).

See ``docs/spec-weekly.md`` ("Input: the normalized review table"). One schema, shared by the
demo generator, the ingest step and the weekly step, so that every path agrees on names and
types.
"""

from __future__ import annotations

import pyarrow as pa

#: Compact Arrow types of the normalized table, as written by ``rcfast.combine`` and
#: ``rcfast.synth``. The weekly step accepts wider types too (any timestamp unit, int64, ...).
NORMALIZED_SCHEMA = pa.schema(
    [
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("rating", pa.float32(), nullable=False),
        pa.field("helpful_votes", pa.int32()),
        pa.field("verified", pa.bool_()),
        pa.field("text_len", pa.int32()),
        pa.field("category", pa.string()),
    ]
)

REQUIRED = ("product_id", "timestamp", "rating")
OPTIONAL = ("user_id", "helpful_votes", "verified", "text_len", "category")
FIELDS = REQUIRED + OPTIONAL

#: Raw column names of the public dumps, tried in order when a normalized name is missing.
#: Amazon 2023: parent_asin/helpful_vote/verified_purchase (timestamp in ms);
#: Amazon 2014/2018: asin/overall/unixReviewTime (seconds); Yelp: business_id/stars/date.
ALIASES: dict[str, tuple[str, ...]] = {
    "product_id": ("parent_asin", "asin", "business_id", "item_id", "product"),
    "user_id": ("reviewerID", "reviewer_id", "user"),
    "timestamp": ("unixReviewTime", "date", "time", "review_time"),
    "rating": ("overall", "stars", "score"),
    "helpful_votes": ("helpful_vote", "vote", "useful", "helpful"),
    "verified": ("verified_purchase",),
    "text_len": ("text_length",),
    "category": ("main_category",),
}


def parse_mapping(items: list[str] | None) -> dict[str, str]:
    """Parse ``--map FIELD=COLUMN`` items into ``{field: column}``; ValueError on bad input."""
    out: dict[str, str] = {}
    for item in items or []:
        field, sep, column = item.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise ValueError(f"--map expects FIELD=COLUMN, got {item!r}")
        if field not in FIELDS:
            raise ValueError(
                f"--map {item!r}: unknown field {field!r}; fields are {', '.join(FIELDS)}"
            )
        out[field] = column
    return out


# ---------------------------------------------------------------- times (weekly and combine)

#: Times a row may have: those a nanosecond timestamp can hold, from its first whole week
#: (1677-09-27, so that week_start is one too) to 2262-04-11 -- the range of pandas and most
#: tools. The spec sets aside only unreadable times, so an odd but readable date (1850, 2150)
#: is kept; outside this range a value is no review time in any unit (milliseconds read as
#: seconds land in the year ~50000): ``timestamp_out_of_range``, in both steps.
TS_MIN_MS = -9_222_854_400_000  # 1677-09-27
TS_MAX_MS = 9_223_372_036_855
#: Plausible review times, for both steps: a weekly input column whose times mostly fall
#: outside is a unit error (exit 2), a panel with weeks outside and a combine input with dates
#: outside get a warning in their summary.
PLAUSIBLE_MIN_MS = -2_208_988_800_000  # 1900-01-01
PLAUSIBLE_MAX_MS = 4_102_444_800_000  # 2100-01-01
#: Times before this (1970-02-18) that are plausible as *seconds* of 1995-2100 are the trace of
#: seconds read as milliseconds: 4.2e9 ms is 4.2e9 s, the year 2103.
SECONDS_AS_MS_BELOW_MS = 4_200_000_000

#: Parquet key-value metadata key (bytes, as pyarrow gives metadata) of the partitioning that
#: ``rcfast.combine`` writes into every part file (JSON) and the weekly step reads back.
PARTITIONING_KEY = b"rcfast.partitioning"
#: String timestamps, tried in turn and read as UTC: Yelp's, ISO 8601, a bare date.
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d")


def parse_time_strings(col, formats: tuple[str, ...] = TIME_FORMATS):
    """Epoch ms (int64) of time strings, the first of ``formats`` that reads each (whole
    string); null where none does. Each format only sees the values still unread."""
    import pyarrow.compute as pc

    parsed = None
    for fmt in formats:
        todo = col if parsed is None else pc.if_else(pc.is_null(parsed), col, None)
        if parsed is not None and todo.null_count == len(todo):
            break
        got = pc.cast(pc.strptime(todo, format=fmt, unit="ms", error_is_null=True), pa.int64())
        parsed = got if parsed is None else pc.coalesce(parsed, got)
    return parsed
