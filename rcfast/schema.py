"""The normalized review table (input of the weekly step, output of ``rcfast.combine``).

See ``SPEC-weekly.md`` ("Input: the normalized review table"). One schema, shared by the demo
generator, the ingest step and the weekly step, so that every path agrees on names and types.
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
