"""Seeded generator of Amazon-Reviews-2023-like review tables (the demo data and benchmark input).

What it imitates, and why each piece matters for the weekly panel:

* **Product popularity** is a continuous Zipf law (exponent 1) over a catalog of
  ``n_rows / 12`` products: ~12 reviews per catalog product on average, the top 1 % of products
  hold about half of all reviews, and the most popular products have tens of thousands
  (that skew is what makes per-product work unbalanced).
* **Launch dates** are mostly 2012-2023 with a thin tail back to 1998; each product's review
  intensity rises over its first month and decays (see life cycles below), so
  products have long, gappy weekly histories. Reviews end at 2023-09-30 like the 2023 dump,
  and a product keeps only the reviews of its life before that end: one launched two months
  earlier has two months' worth (version 3 gave every product its whole lifetime's reviews,
  crammed into the time left for recent launches).
* **Seasonality**: December and January peaks and a small day-of-week effect, by thinning.
* **Popularity waves and launch ramps**: real products' review rates rise and fall with
  promotions, competitors and fashions, by tens of percent over a few months, and build
  up over the first month after launch. Each product's log-intensity carries a smooth random
  function of time (a Gaussian process approximated by random Fourier features, standard
  deviation 0.3, length scale ~10 weeks) and is ramped by ``1 - exp(-age / ~1 month)``. The
  parameters come from a hash of the product index, so they cost no memory, and
  ``train/oracle_floor.py`` recomputes the exact expected counts.
* **Life cycles**: the decay after launch has a median scale of 90 days (lognormal per
  product; 30 % of a product's reviews follow a 5x slower tail), so most products' reviews rise
  and fade within months, as consumer goods' do. Generator version 2 had a 300-day median and
  neither ramps nor waves: every product's rate was a slow smooth decay that a 12-week moving
  average tracks almost perfectly, so no forecaster could show skill on it (not even the true
  rate beat the moving averages by 10 % in RMSSE; see docs/training.md).
* **Ratings** are integers 1-5 from an ordered logit around a per-product quality: J-shaped,
  about 60 % five stars and 10 % one star, as on Amazon.
* **Helpful votes** are 0 for ~72 % of reviews, Pareto-tailed otherwise; **verified** is ~88 %
  true; **text lengths** are lognormal; **categories** follow the 2023 dump's category sizes.
* Timestamps are epoch milliseconds with real sub-second parts.

Determinism: rows are drawn in fixed internal blocks of :data:`BLOCK_ROWS` rows, each from its own
``SeedSequence([seed, block])``, so the table depends on ``(n_rows, seed, n_products)`` only, never
on ``chunk_rows``. Everything is vectorized numpy/pyarrow; memory is bounded by one chunk plus the
product table (~30 bytes per catalog product).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import os
import pathlib
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rcfast._cli import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_common_arguments,
    one_line,
    setup_logging,
    show_progress,
)
from rcfast.schema import NORMALIZED_SCHEMA

__all__ = [
    "BLOCK_ROWS",
    "GENERATOR_VERSION",
    "demo_parquet",
    "generate_batches",
    "main",
    "write_jsonl",
    "write_parquet",
]

#: Bump whenever the generated rows change for the same arguments (it keys the demo cache).
GENERATOR_VERSION = 4

#: Rows per internal RNG block. Part of the output's identity: changing it changes the data.
BLOCK_ROWS = 1 << 17

_MS_PER_DAY = 86_400_000
_END_MS = int(np.datetime64("2023-09-30T23:59:59.999", "ms").astype(np.int64))
_Y1998_MS = int(np.datetime64("1998-01-01", "ms").astype(np.int64))
_Y2012_MS = int(np.datetime64("2012-01-01", "ms").astype(np.int64))
_LAUNCH_END_MS = int(np.datetime64("2023-07-31", "ms").astype(np.int64))

#: Catalog products per review when n_products is not given.
_REVIEWS_PER_PRODUCT = 12
#: Zipf offset as a fraction of the catalog: keeps the top product near 30k reviews at any scale.
_ZIPF_OFFSET_FRACTION = 4e-5

# Ordered-logit thresholds calibrated (quality ~ N(0, 1), logistic noise) to the Amazon shares
# 1★ 10 %, 2★ 6 %, 3★ 8 %, 4★ 15 %, 5★ 61 %.
_RATING_THRESHOLDS = np.array([-2.562, -1.960, -1.376, -0.538])

# Review-intensity multipliers used for thinning; index 0 = January / Monday.
_MONTH_WEIGHT = np.array([1.25, 1.0, 1.0, 1.0, 1.0, 1.0, 1.05, 1.0, 1.0, 1.0, 1.1, 1.45])
_DOW_WEIGHT = np.array([1.08, 1.05, 1.02, 1.0, 0.95, 0.92, 0.98])

#: Popularity waves: each product's log-intensity carries a smooth random function of time, a
#: Gaussian process with a squared-exponential kernel approximated by _WAVE_TERMS random Fourier
#: features (cosines of random frequency and phase), with this standard deviation ...
_WAVE_SD = 0.3
#: ... and a length scale drawn per product, lognormal around this median (days).
_WAVE_LENGTH_DAYS = 70.0
_WAVE_TERMS = 4
#: Median scale (days) of the post-launch decay of a product's review rate (lognormal per
#: product, sd 0.7 in log; 30 % of reviews follow a 5x slower tail): most products peak within
#: a few months of launch and fade, as consumer goods do.
_DECAY_DAYS = 90.0
#: Share of a product's reviews on the slow tail of its life cycle, and that tail's scale
#: as a multiple of the product's decay scale.
_TAIL_SHARE = 0.3
_TAIL_MULT = 5.0
#: Reviews build up after launch as sales do: intensity x (1 - exp(-age / ramp)), the ramp
#: lognormal per product around this median (days).
_RAMP_DAYS = 30.0

#: Amazon Reviews 2023 categories, weighted by their review counts (millions) in the dump.
_CATEGORIES: tuple[tuple[str, float], ...] = (
    ("All_Beauty", 0.7), ("Amazon_Fashion", 2.5), ("Appliances", 2.1),
    ("Arts_Crafts_and_Sewing", 9.0), ("Automotive", 20.0), ("Baby_Products", 6.0),
    ("Beauty_and_Personal_Care", 23.9), ("Books", 29.5), ("CDs_and_Vinyl", 4.8),
    ("Cell_Phones_and_Accessories", 20.8), ("Clothing_Shoes_and_Jewelry", 66.0),
    ("Digital_Music", 0.13), ("Electronics", 43.9), ("Gift_Cards", 0.15),
    ("Grocery_and_Gourmet_Food", 14.3), ("Handmade_Products", 0.66),
    ("Health_and_Household", 25.6), ("Health_and_Personal_Care", 0.49),
    ("Home_and_Kitchen", 67.4), ("Industrial_and_Scientific", 5.2), ("Kindle_Store", 25.6),
    ("Magazine_Subscriptions", 0.07), ("Movies_and_TV", 17.3), ("Musical_Instruments", 3.0),
    ("Office_Products", 12.8), ("Patio_Lawn_and_Garden", 16.5), ("Pet_Supplies", 16.8),
    ("Software", 4.9), ("Sports_and_Outdoors", 19.6), ("Subscription_Boxes", 0.016),
    ("Tools_and_Home_Improvement", 27.0), ("Toys_and_Games", 16.3), ("Video_Games", 4.6),
    ("Unknown", 63.8),
)

_B32 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", dtype=np.uint8)
_B36 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)

_WORDS = (
    "great product works well quality price love this the it and for my was not very good "
    "would recommend easy to use fit perfect bought as described fast shipping arrived broke "
    "after two weeks cheap disappointed returned color size small large exactly what needed "
    "happy with purchase again five stars sturdy value money looks nice but a little too "
    "expensive worth every penny does job kids daughter son gift christmas battery life sound "
    "screen comfortable material soft strong smell taste fresh box instructions assembly "
    "minutes set up highly well made poor customer service replacement months"
).split()  # noqa: SIM905 - a wrapped paragraph reads better than a list


# --------------------------------------------------------------------------------------------
# catalog and blocks


@dataclass(frozen=True)
class _Catalog:
    n_products: int
    n_users: int
    zipf_b: float
    user_b: float
    id_bytes: np.ndarray  # (n_products, 10) uint8, "B0" + 8 base-36 chars
    launch_ms: np.ndarray  # int64
    decay_days: np.ndarray  # float32, scale of the post-launch decay
    quality: np.ndarray  # float32, ordered-logit location
    p_verified: np.ndarray  # float32
    category: np.ndarray  # uint8 index into _CATEGORIES
    user_key: np.uint64
    dyn_key: np.uint64  # seeds the per-product wave and ramp parameters (see _dynamics)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Counter-based hash (uint64 → uint64); wraps on purpose."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _zipf_index(u: np.ndarray, n: int, b: float) -> np.ndarray:
    """Inverse CDF of p(x) ∝ 1/(x + b) on [0, n): rank 0 is the most popular."""
    x = b * np.exp(u * np.log1p(n / b)) - b
    return np.minimum(x.astype(np.int64), n - 1)


_ID_SPACE = 36**8
_ID_MUL = 1_237_940_039_285  # coprime to 36, ~0.44 of the space: neighbours land far apart
_ID_ADD = 9_876_543_211
_ID_MUL_HI = (_ID_MUL << 16) % _ID_SPACE
#: Largest index the overflow-free affine map below supports (ids beyond are not needed).
MAX_ID_INDEX = 1 << 38


def _id_bytes(index: np.ndarray) -> np.ndarray:
    """(n, 10) uint8 ASIN-like ids "B0" + 8 base-36 chars, a bijection of ``index``.

    An affine map mod 36**8 with a multiplier coprime to 36 never collides, and it scatters
    popularity ranks over the id space (byte order ≠ popularity order). The product is split
    in 16-bit halves so that it is exact in uint64 for any index < :data:`MAX_ID_INDEX`.
    """
    i = index.astype(np.uint64)
    m = np.uint64(_ID_SPACE)
    code = ((i >> np.uint64(16)) * np.uint64(_ID_MUL_HI)) % m
    code = (code + (i & np.uint64(0xFFFF)) * np.uint64(_ID_MUL) % m + np.uint64(_ID_ADD)) % m
    out = np.empty((index.size, 10), dtype=np.uint8)
    out[:, 0] = ord("B")
    out[:, 1] = ord("0")
    for k in range(9, 1, -1):
        out[:, k] = _B36[(code % np.uint64(36)).astype(np.intp)]
        code //= np.uint64(36)
    return out


def _product_ids(n: int) -> np.ndarray:
    return _id_bytes(np.arange(n, dtype=np.uint64))


# Small cache: a catalog is ~30 bytes per product (250 MB at 1e8 rows).
@functools.lru_cache(maxsize=2)
def _catalog(n_rows: int, seed: int, n_products: int) -> _Catalog:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC47A1096]))
    n = n_products
    u = rng.random(n)
    recent = rng.random(n) < 0.88
    # Recent launches: density rising towards 2023 (sqrt); old ones: thinning back to 1998.
    launch = np.where(
        recent,
        _Y2012_MS + (_LAUNCH_END_MS - _Y2012_MS) * np.sqrt(u),
        _Y2012_MS - (_Y2012_MS - _Y1998_MS) * u * u,
    ).astype(np.int64)
    decay = rng.lognormal(np.log(_DECAY_DAYS), 0.7, n).astype(np.float32)
    quality = rng.normal(0.0, 1.0, n).astype(np.float32)
    p_verified = np.where(rng.random(n) < 0.1, 0.6, 0.92).astype(np.float32)
    w = np.array([c[1] for c in _CATEGORIES])
    category = rng.choice(len(_CATEGORIES), size=n, p=w / w.sum()).astype(np.uint8)
    n_users = max(1, n_rows // 6)
    return _Catalog(
        n_products=n,
        n_users=n_users,
        zipf_b=max(1.0, n * _ZIPF_OFFSET_FRACTION),
        user_b=max(5.0, n_users * 1e-3),
        id_bytes=_product_ids(n),
        launch_ms=launch,
        decay_days=decay,
        quality=quality,
        p_verified=p_verified,
        category=category,
        user_key=np.uint64(int(rng.integers(0, 2**63))),
        dyn_key=np.uint64(int(rng.integers(0, 2**63))),
    )


@dataclass(frozen=True)
class _Dynamics:
    """Per-product time dynamics (one row per product index given to :func:`_dynamics`)."""

    ramp_days: np.ndarray  # (n,) float64
    omega: np.ndarray  # (n, _WAVE_TERMS) float64, rad/day
    phase: np.ndarray  # (n, _WAVE_TERMS) float64

    def log_wave(self, day: np.ndarray) -> np.ndarray:
        """Log-multiplier of the intensity on ``day`` (days since 1970; any shape broadcasting
        against (n, 1)), in [-2 A K, 0] with A = _WAVE_SD sqrt(2 / K): constant within a day."""
        mid = np.asarray(day, dtype=np.float64) + 0.5
        a = _WAVE_SD * np.sqrt(2.0 / _WAVE_TERMS)
        col = (-1,) + (1,) * (mid.ndim - 1)
        acc = sum(np.cos(self.omega[:, j].reshape(col) * mid + self.phase[:, j].reshape(col))
                  for j in range(_WAVE_TERMS))
        return a * (acc - _WAVE_TERMS)

    def take(self, idx: np.ndarray | slice) -> _Dynamics:
        return _Dynamics(self.ramp_days[idx], self.omega[idx], self.phase[idx])


def _hash_uniforms(prod: np.ndarray, key: np.uint64, m: int) -> np.ndarray:
    """(n, m) uniforms in (0, 1) that depend only on (product index, key): no per-product
    storage, so a 10^8-row catalog costs no extra memory and the oracle can recompute them."""
    base = _splitmix64(prod.astype(np.uint64) ^ key)
    out = np.empty((prod.size, m))
    h = base
    for j in range(m):
        h = _splitmix64(h + np.uint64(j))
        out[:, j] = ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    return out


def _normals(u: np.ndarray) -> np.ndarray:
    # Box-Muller: one normal from each pair of uniforms
    return np.sqrt(-2.0 * np.log(u[:, 0::2])) * np.cos(2.0 * np.pi * u[:, 1::2])


def _ramp_days(cat: _Catalog, prod: np.ndarray) -> np.ndarray:
    """The launch ramp of products ``prod`` alone (the first normal of :func:`_dynamics`)."""
    return _RAMP_DAYS * np.exp(0.5 * _normals(_hash_uniforms(prod, cat.dyn_key, 2))[:, 0])


def _dynamics(cat: _Catalog, prod: np.ndarray) -> _Dynamics:
    k = _WAVE_TERMS
    z = _normals(_hash_uniforms(prod, cat.dyn_key, 2 * k + 4))  # (n, k + 2)
    ramp = _RAMP_DAYS * np.exp(0.5 * z[:, 0])
    length = _WAVE_LENGTH_DAYS * np.exp(0.4 * z[:, 1])
    omega = z[:, 2:] / length[:, None]
    phase = 2.0 * np.pi * _hash_uniforms(prod, cat.dyn_key ^ np.uint64(0x5EA5), k)
    return _Dynamics(ramp_days=ramp, omega=omega, phase=phase)


_FIRST_DAY = _Y1998_MS // _MS_PER_DAY - 1


@functools.lru_cache(maxsize=1)
def _day_weight() -> np.ndarray:
    """Season × weekday intensity weight for each day from 1998 to the end of the data."""
    days = np.arange(_FIRST_DAY, _END_MS // _MS_PER_DAY + 1)
    month = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    dow = (days + 3) % 7  # 1970-01-01 was a Thursday → Monday = 0
    return _MONTH_WEIGHT[month] * _DOW_WEIGHT[dow]


def zipf_share(cat: _Catalog, k: np.ndarray) -> np.ndarray:
    """P(k): the Zipf weight of catalog products ``k`` (the share of rows before the data's end
    cuts products' lives short; see :func:`_draw_products`)."""
    k = np.asarray(k, dtype=np.float64)
    b, n = cat.zipf_b, cat.n_products
    return (np.log1p((k + 1) / b) - np.log1p(k / b)) / np.log1p(n / b)


def _days_left(launch_ms: np.ndarray) -> np.ndarray:
    """Days from launch to the data's end (a floor keeps the decay masses finite)."""
    return np.maximum((_END_MS - np.asarray(launch_ms, dtype=np.float64)) / _MS_PER_DAY, 1e-3)


def life_in_data(launch_ms: np.ndarray, scale_days: np.ndarray,
                 ramp_days: np.ndarray) -> np.ndarray:
    """The share of a product's life that falls before the data's end: the chance that one of
    its reviews is in the dump. The life is the launch ramp times the exponential decay,
    exp(-a/s) (1 - exp(-a/r)) = exp(-a/s) - exp(-a/s') with s' = s r / (s + r), whose integral
    over [0, T] is s (1 - exp(-T/s)) - s' (1 - exp(-T/s')) and over [0, inf) is s - s'. The
    seasons and popularity waves decide when the reviews come, not how many."""
    span = _days_left(launch_ms)
    s = np.asarray(scale_days, dtype=np.float64)
    s2 = s * ramp_days / (s + ramp_days)
    return (-s * np.expm1(-span / s) + s2 * np.expm1(-span / s2)) / (s - s2)


def _draw_products(cat: _Catalog, rng: np.random.Generator, n: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Product index and decay scale (days) for ``n`` rows.

    A review is first a draw from a product's whole life: product k by its Zipf weight P(k),
    a decay component (:data:`_TAIL_SHARE` of the slow one), and a post-launch age from that
    ramped exponential. A review whose age falls after the data's end is not in the dump, so
    the row is drawn again from scratch; that rejection keeps product k's rows in proportion to
    P(k) x (share of its life inside the data, :func:`life_in_data`), and a product launched
    two months before the end has two months' worth of reviews, not its whole lifetime's
    (versions before 4 kept the product and drew the age again, which crammed a recent
    launch's lifetime of reviews into the weeks left: two to three times the rate of the same
    product a year earlier). Whether the age lands inside depends only on that share, so it is
    decided without drawing the age.
    """
    prod = np.empty(n, dtype=np.int64)
    scale = np.empty(n)
    todo = np.arange(n)
    # The in-data share of all products' lives is ~0.9, so the redraws shrink geometrically.
    while todo.size:
        m = todo.size
        p = _zipf_index(rng.random(m), cat.n_products, cat.zipf_b)
        s = cat.decay_days[p].astype(np.float64) \
            * np.where(rng.random(m) < _TAIL_SHARE, _TAIL_MULT, 1.0)
        keep = life_in_data(cat.launch_ms[p], s, _ramp_days(cat, p))
        prod[todo], scale[todo] = p, s
        todo = todo[rng.random(m) >= keep]
    return prod, scale


def _block(cat: _Catalog, seed: int, block: int, n: int, with_text: bool) -> dict[str, np.ndarray]:
    """Draw the numeric columns of one block of ``n`` rows."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB10C, block]))
    prod, scale = _draw_products(cat, rng, n)
    user = _zipf_index(rng.random(n), cat.n_users, cat.user_b)

    launch = cat.launch_ms[prod]
    dyn = _dynamics(cat, prod)
    # Mass of the truncated exponential inside [launch, end], per row, reused across retries.
    mass = -np.expm1(-_days_left(launch) / scale)
    weight = _day_weight()
    fmax = weight.max()
    ts = np.empty(n, dtype=np.int64)
    todo: np.ndarray | None = None  # None = all rows (saves the gathers in the first pass)
    # Thinning: draw a post-launch age from the decay, keep it with probability
    # season x weekday weight x launch ramp x wave (each <= 1). Every factor is bounded away
    # from 0, so the rows left shrink geometrically; the cap is only a safety valve.
    for attempt in range(1000):
        if todo is None:
            s, m, l0, sub = scale, mass, launch, dyn
        else:
            s, m, l0, sub = scale[todo], mass[todo], launch[todo], dyn.take(todo)
        age = -s * np.log1p(-rng.random(s.size) * m)
        t = np.minimum(l0 + (age * _MS_PER_DAY).astype(np.int64), _END_MS)
        day = t // _MS_PER_DAY
        p = weight[day - _FIRST_DAY] / fmax * -np.expm1(-age / sub.ramp_days) \
            * np.exp(sub.log_wave(day))
        keep = rng.random(s.size) < p
        if attempt == 999:
            keep[:] = True
        if todo is None:
            ts[:] = t
            todo = np.flatnonzero(~keep)
        else:
            ts[todo[keep]] = t[keep]
            todo = todo[~keep]
        if todo.size == 0:
            break

    latent = cat.quality[prod] + rng.logistic(0.0, 1.0, n)
    rating = (1 + np.searchsorted(_RATING_THRESHOLDS, latent)).astype(np.float32)

    # float32 draws where 24 bits of resolution are plenty: they are twice as fast.
    hv_u = rng.random(n, dtype=np.float32)
    tail = np.floor(np.maximum(rng.random(n, dtype=np.float32), 1e-9) ** np.float32(-1.0 / 1.15))
    helpful = np.where(hv_u < 0.72, 0.0, np.minimum(tail, 100_000.0)).astype(np.int32)
    verified = rng.random(n, dtype=np.float32) < cat.p_verified[prod]
    z = rng.standard_normal(n, dtype=np.float32)
    text_len = np.minimum(np.exp(np.float32(np.log(110.0)) + np.float32(1.05) * z),
                          20_000).astype(np.int32)
    text_len[hv_u > 0.99] = 0  # hv_u < 0.72 decides votes; its top 1 % is independent of that
    out = {
        "prod": prod, "user": user, "ts": ts, "rating": rating, "helpful": helpful,
        "verified": verified, "text_len": text_len,
    }
    if with_text:
        out["title_len"] = np.minimum(rng.lognormal(np.log(22.0), 0.6, n), 200).astype(np.int32)
        out["text_off"] = rng.integers(0, 1 << 20, 2)
        # 2023 dump: "asin" is the reviewed variant, "parent_asin" the product (our product_id)
        out["variant"] = np.where(rng.random(n) < 0.6, 0, rng.integers(1, 4, n)).astype(np.int64)
    return out


# --------------------------------------------------------------------------------------------
# string columns


def _take_rows(mat: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``mat[idx]`` for a (n, w) uint8 matrix, as one gather of w-byte items (much faster)."""
    w = mat.shape[1]
    return mat.view(f"V{w}").ravel()[idx].view(np.uint8).reshape(-1, w)


def _fixed_width_strings(mat: np.ndarray) -> pa.Array:
    n, w = mat.shape
    offsets = np.arange(n + 1, dtype=np.int32) * w
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets),
                                       pa.py_buffer(np.ascontiguousarray(mat).reshape(-1)))


_B32_PAIRS = np.stack([np.repeat(_B32, 32), np.tile(_B32, 32)], axis=1).copy().view(np.uint16)[:, 0]


@functools.lru_cache(maxsize=1)
def _b32_quads() -> np.ndarray:
    """uint32 holding the 4 base-32 chars of each 20-bit value (a 4 MiB table)."""
    i = np.arange(1 << 20, dtype=np.uint32)
    chars = np.stack([_B32[(i >> np.uint32(s)) & np.uint32(31)] for s in (15, 10, 5, 0)], axis=1)
    return np.ascontiguousarray(chars).view(np.uint32)[:, 0]


def _user_id_bytes(cat: _Catalog, user: np.ndarray) -> np.ndarray:
    """(n, 28) uint8 Amazon-2023-like user ids: "A" + [EFGH] + 26 base-32 chars.

    The hot path of the generator, so 4 chars per gather from a 20-bit table (~2x fewer numpy
    passes than :func:`_user_chars`, which serves the 14-char 2018 ids).
    """
    h0 = _splitmix64(user.astype(np.uint64) ^ cat.user_key)
    h1 = _splitmix64(h0)
    h2 = _splitmix64(h1)
    out = np.empty((user.size, 28), dtype=np.uint8)
    out[:, 0] = ord("A")
    out[:, 1] = np.frombuffer(b"EFGH", dtype=np.uint8)[(h0 >> np.uint64(62)).astype(np.intp)]
    out.view(np.uint16)[:, 1] = _B32_PAIRS[(h0 & np.uint64(1023)).astype(np.intp)]
    quads = _b32_quads()
    out32 = out.view(np.uint32)
    mask = np.uint64((1 << 20) - 1)
    for k in range(6):
        h = h1 if k < 3 else h2
        out32[:, 1 + k] = quads[((h >> np.uint64(20 * (k % 3))) & mask).astype(np.intp)]
    return out


def _user_chars(cat: _Catalog, user: np.ndarray, width: int, second: bytes) -> np.ndarray:
    """``width``-char base-32 ids: "A" + one of ``second`` + hash chars (Amazon look)."""
    if width % 2:
        raise ValueError("width must be even")
    pairs = width // 2 - 1
    h = _splitmix64(user.astype(np.uint64) ^ cat.user_key)
    out = np.empty((user.size, width), dtype=np.uint8)
    out[:, 0] = ord("A")
    sec = np.frombuffer(second, dtype=np.uint8)
    out[:, 1] = sec[(h >> np.uint64(60)).astype(np.intp) % sec.size]
    # Two characters (10 bits) per gather from a 1024-entry table, six pairs per 64-bit hash.
    out16 = out.view(np.uint16)
    for k in range(pairs):
        if k and k % 6 == 0:
            h = _splitmix64(h)
        bits = ((h >> np.uint64(10 * (k % 6))) & np.uint64(1023)).astype(np.intp)
        out16[:, 1 + k] = _B32_PAIRS[bits]
    return out


@functools.lru_cache(maxsize=1)
def _word_stream() -> np.ndarray:
    """A fixed 1 MiB periodic stream of lower-case words; texts are slices of it (JSON-safe)."""
    rng = np.random.default_rng(20231)
    words = np.array(_WORDS)[rng.integers(0, len(_WORDS), 400_000)]
    ends = rng.random(words.size) < 0.08
    words = np.where(ends, np.char.add(words, "."), words)
    text = " ".join(words.tolist()).encode()
    return np.frombuffer(text[: 1 << 20], dtype=np.uint8)


def _stream_strings(lengths: np.ndarray, start: int) -> pa.Array:
    """Strings of the given lengths cut consecutively from the word stream at ``start``."""
    stream = _word_stream()
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    rolled = np.concatenate([stream[start % stream.size:], stream[: start % stream.size]])
    data = np.resize(rolled, total)
    if total < 2**31 - 1:
        return pa.StringArray.from_buffers(lengths.size, pa.py_buffer(offsets.astype(np.int32)),
                                           pa.py_buffer(data))
    return pa.LargeStringArray.from_buffers(lengths.size, pa.py_buffer(offsets), pa.py_buffer(data))


# --------------------------------------------------------------------------------------------
# public generator


def _check_n_rows(n_rows: int) -> None:
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 0:
        raise ValueError(f"n_rows must be a non-negative integer, got {n_rows!r}")


def _resolve_products(n_rows: int, n_products: int | None) -> int:
    if n_products is None:
        return max(1, round(n_rows / _REVIEWS_PER_PRODUCT))
    if isinstance(n_products, bool) or not isinstance(n_products, (int, np.integer)) \
            or not 1 <= n_products <= MAX_ID_INDEX // 4:
        raise ValueError(f"n_products must be an integer in 1..{MAX_ID_INDEX // 4}, "
                         f"got {n_products!r}")
    return int(n_products)


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


# --------------------------------------------------------------------------------------------
# writers


class _Stats:
    """Running summary for the CLI: rows, distinct products, time range."""

    def __init__(self, n_products: int) -> None:
        self.rows = 0
        self.seen = np.zeros(n_products, dtype=bool)
        self.t_min = np.iinfo(np.int64).max
        self.t_max = np.iinfo(np.int64).min

    def add(self, cols: dict[str, np.ndarray]) -> None:
        self.rows += cols["ts"].size
        self.seen[cols["prod"]] = True
        if cols["ts"].size:
            self.t_min = min(self.t_min, int(cols["ts"].min()))
            self.t_max = max(self.t_max, int(cols["ts"].max()))

    def as_dict(self) -> dict[str, object]:
        rng = (None, None)
        if self.rows:
            rng = (str(np.datetime64(self.t_min, "ms")), str(np.datetime64(self.t_max, "ms")))
        return {"rows": self.rows, "products": int(self.seen.sum()), "first": rng[0],
                "last": rng[1]}


def _tmp_beside(path: pathlib.Path) -> pathlib.Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return pathlib.Path(name)


def _progress(total: int, enabled: bool, desc: str):
    from rcfast._cli import progress_bar

    return progress_bar(enabled, total, desc)


def write_parquet(path: str | os.PathLike[str], n_rows: int, seed: int = 0, *,
                  row_group_rows: int = 1_000_000, compression: str = "zstd",
                  n_products: int | None = None, progress: bool = False,
                  _stats: _Stats | None = None) -> pathlib.Path:
    """Write ``n_rows`` synthetic reviews (normalized schema) to a Parquet file, atomically.

    Rows are generated and written one row group at a time, to a temporary file in the same
    directory that is renamed to ``path`` only when complete.
    """
    import pyarrow.parquet as pq

    if compression not in ("zstd", "snappy", "gzip", "lz4", "none"):
        raise ValueError(f"unknown compression {compression!r}")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_beside(path)
    try:
        with pq.ParquetWriter(tmp, NORMALIZED_SCHEMA, compression=compression,
                              # user_id is near-unique: dictionary pages would only be dropped.
                              use_dictionary=["product_id", "category"],
                              write_statistics=["product_id", "timestamp"]) as writer, \
                _progress(n_rows, progress, path.name) as bar:
            # Encoding + compression (pyarrow, GIL released) of chunk i overlaps the generation
            # of chunk i+1; at most two chunks are alive, so memory stays bounded.
            with ThreadPoolExecutor(1) as pool:
                pending: Future | None = None
                for cat, cols in _chunks(n_rows, seed, row_group_rows, n_products, False):
                    if _stats is not None:
                        _stats.add(cols)
                    batch = _to_batch(cat, cols, False)
                    if pending is not None:
                        pending.result()
                    pending = pool.submit(writer.write_batch, batch, row_group_size=row_group_rows)
                    bar.update(batch.num_rows)
                if pending is not None:
                    pending.result()
            if n_rows == 0:
                writer.write_table(NORMALIZED_SCHEMA.empty_table())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _str(arr: pa.Array | np.ndarray) -> pa.Array:
    return pc.cast(pa.array(arr), pa.string())


def _date_mdy(ms: np.ndarray) -> pa.Array:
    """Amazon 2014/2018 ``reviewTime``: zero-padded month, unpadded day, e.g. "09 1, 2016"."""
    d = ms // _MS_PER_DAY
    dd = d.astype("datetime64[D]")
    month = dd.astype("datetime64[M]").astype(np.int64) % 12 + 1
    year = dd.astype("datetime64[Y]").astype(np.int64) + 1970
    day = (dd - dd.astype("datetime64[M]")).astype(np.int64) + 1
    return pc.binary_join_element_wise(pc.utf8_lpad(_str(month), 2, "0"), " ", _str(day), ", ",
                                       _str(year), "")


def _vote_string(v: np.ndarray) -> pa.Array:
    """Helpful votes as the 2014/2018 dumps write them: "1,234" with thousands separators."""
    v = v.astype(np.int64)
    plain = _str(v)
    thousands = pc.binary_join_element_wise(_str(v // 1000), ",",
                                            pc.utf8_lpad(_str(v % 1000), 3, "0"), "")
    return pc.if_else(pa.array(v >= 1000), thousands, plain)


def _jsonl_lines(cat: _Catalog, cols: dict, flavor: str) -> pa.Array:
    pid = _fixed_width_strings(cols["pid_bytes"])
    rating = pc.binary_join_element_wise(_str(cols["rating"].astype(np.int64)), ".0", "")
    verified = pc.if_else(pa.array(cols["verified"]), "true", "false")
    if flavor == "amazon2023":
        uid = _fixed_width_strings(cols["uid_bytes"])
        parts = [
            '{"rating": ', rating, ', "title": "', cols["title"], '", "text": "', cols["text"],
            '", "images": [], "asin": "', _fixed_width_strings(cols["asin_bytes"]),
            '", "parent_asin": "', pid, '", "user_id": "', uid,
            '", "timestamp": ', _str(cols["ts"]), ', "helpful_vote": ', _str(cols["helpful"]),
            ', "verified_purchase": ', verified, "}\n",
        ]
    else:  # amazon2018: day resolution, seconds, optional string vote
        uid = _fixed_width_strings(_user_chars(cat, cols["user"], 14, b"0123456789ABCDEFGHIJ"))
        day_s = (cols["ts"] // _MS_PER_DAY) * 86_400
        vote = pc.if_else(pa.array(cols["helpful"] > 0),
                          pc.binary_join_element_wise(', "vote": "', _vote_string(cols["helpful"]),
                                                      '"', ""), "")
        names = pa.array(["Amazon Customer", "John", "Mary K.", "Kindle Customer", "D. Smith",
                          "Bob", "Linda", "Chris P.", "Anonymous", "J. Lee"])
        name = names.take(pa.array((cols["user"] % len(names)).astype(np.int32)))
        parts = [
            '{"overall": ', rating, vote, ', "verified": ', verified, ', "reviewTime": "',
            _date_mdy(cols["ts"]), '", "reviewerID": "', uid, '", "asin": "', pid,
            '", "reviewerName": "', name, '", "reviewText": "', cols["text"], '", "summary": "',
            cols["title"], '", "unixReviewTime": ', _str(day_s), "}\n",
        ]
    return pc.binary_join_element_wise(*parts, "")


def _open_compressed(path: pathlib.Path, final_name: str):
    if final_name.endswith(".gz"):
        # Level 1: the dumps are the benchmark input, not an archive; level 6 is ~4x slower.
        return gzip.open(path, "wb", compresslevel=1)
    if final_name.endswith(".zst"):
        import zstandard

        return zstandard.ZstdCompressor(level=3).stream_writer(open(path, "wb"), closefd=True)
    return open(path, "wb")


def write_jsonl(path: str | os.PathLike[str], n_rows: int, seed: int = 0, *,
                flavor: str = "amazon2023", n_products: int | None = None,
                progress: bool = False, _stats: _Stats | None = None) -> pathlib.Path:
    """Write the same rows as :func:`generate_batches` as a JSON-lines dump, atomically.

    ``flavor="amazon2023"`` uses the 2023 field names (rating, title, text, images, asin,
    parent_asin, user_id, timestamp in ms, helpful_vote, verified_purchase); ``"amazon2018"``
    the 2018 ones (overall, vote as "1,234" string only when > 0, verified, reviewTime,
    reviewerID, asin, reviewerName, reviewText, summary, unixReviewTime in seconds at UTC
    midnight, so 2018-flavor times lose their time of day, as in the real dump). The review
    dumps carry no category (Amazon names the file after it), so neither flavor writes one.
    Compressed with gzip when ``path`` ends in ``.gz``, zstd for ``.zst``.
    """
    if flavor not in ("amazon2023", "amazon2018"):
        raise ValueError(f"unknown flavor {flavor!r}; use amazon2023 or amazon2018")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_beside(path)
    try:
        with _open_compressed(tmp, path.name) as f, _progress(n_rows, progress, path.name) as bar:
            # Smaller chunks: the text columns make a JSON chunk ~500 bytes per row.
            for cat, cols in _chunks(n_rows, seed, 1 << 18, n_products, True):
                if _stats is not None:
                    _stats.add(cols)
                lines = _jsonl_lines(cat, cols, flavor)
                offs = np.frombuffer(lines.buffers()[1], dtype=np.int32 if lines.type == pa.string()
                                     else np.int64)[lines.offset:lines.offset + len(lines) + 1]
                data = lines.buffers()[2]
                f.write(memoryview(data)[int(offs[0]):int(offs[-1])])
                bar.update(len(lines))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def default_cache_dir() -> pathlib.Path:
    """``$RCFAST_CACHE`` if set, else ``~/.cache/rcfast``."""
    env = os.environ.get("RCFAST_CACHE")
    return pathlib.Path(env) if env else pathlib.Path.home() / ".cache" / "rcfast"


def demo_parquet(cache_dir: str | os.PathLike[str] | None = None, n_rows: int = 2_000_000,
                 seed: int = 0) -> pathlib.Path:
    """Return the demo dataset's Parquet path, generating it once into the cache directory.

    Keyed by (n_rows, seed, :data:`GENERATOR_VERSION`); written atomically, so concurrent
    callers at worst both generate and one rename wins.
    """
    _check_n_rows(n_rows)
    d = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = d / f"synth-v{GENERATOR_VERSION}-n{int(n_rows)}-s{int(seed)}.parquet"
    if not path.exists():
        write_parquet(path, n_rows, seed)
    return path


# --------------------------------------------------------------------------------------------
# CLI


def _parse_rows(text: str) -> int:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"must be a non-negative whole number: {text!r}")
    return int(value)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rcfast.synth",
        description="Generate synthetic Amazon-like reviews: the normalized table of "
        "docs/spec-weekly.md as Parquet, or raw Amazon-style JSON lines for rcfast.combine.",
        epilog="""examples:
  python -m rcfast.synth -o reviews.parquet --rows 1e6
  rcfast synth -o dump.jsonl.gz --rows 1e6 --flavor amazon2018   # input for rcfast combine
  rcfast synth -o big.parquet --rows 3e7 --seed 7 --no-progress

Exit status: 0 written, 2 bad usage or output path (one line on stderr).""",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True, help="output file (.parquet, .jsonl[.gz|.zst])")
    p.add_argument("--rows", type=_parse_rows, required=True, help="number of reviews, e.g. 1e6")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--products", type=_parse_rows, default=None,
                   help="catalog size (default rows/12)")
    p.add_argument("--format", choices=("parquet", "jsonl"), default=None,
                   help="default: from the file name")
    p.add_argument("--flavor", choices=("amazon2023", "amazon2018"), default="amazon2023",
                   help="JSONL field names")
    p.add_argument("--compression", choices=("zstd", "snappy"), default="zstd",
                   help="Parquet compression")
    p.add_argument("--row-group-rows", type=_parse_rows, default=1_000_000,
                   help="Parquet rows per row group (default 1e6)")
    add_common_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 on bad usage)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed the message
        return int(e.code or 0)
    fmt = args.format
    name = args.output.lower()
    if fmt is None:
        fmt = "jsonl" if any(name.endswith(s) for s in (".jsonl", ".json", ".jsonl.gz",
                                                        ".json.gz", ".jsonl.zst", ".json.zst")) \
            else "parquet"
    log = setup_logging("rcfast.synth", args.quiet)
    for bad, msg in ((args.seed < 0, "--seed must be >= 0"),
                     (args.products is not None and args.products < 1, "--products must be >= 1"),
                     (args.row_group_rows < 1, "--row-group-rows must be >= 1")):
        if bad:
            parser.print_usage(sys.stderr)
            log.error("%s", msg)
            return EXIT_USAGE
    stats = _Stats(_resolve_products(args.rows, args.products))
    t0 = time.perf_counter()
    try:
        if fmt == "parquet":
            out = write_parquet(args.output, args.rows, args.seed,
                                row_group_rows=args.row_group_rows, compression=args.compression,
                                n_products=args.products, progress=show_progress(args),
                                _stats=stats)
        else:
            out = write_jsonl(args.output, args.rows, args.seed, flavor=args.flavor,
                              n_products=args.products, progress=show_progress(args),
                              _stats=stats)
    except OSError as exc:  # read-only directory, -o under a file, disk full
        log.error("-o %s: %s", args.output, one_line(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted; nothing was written")
        return EXIT_INTERRUPTED
    secs = time.perf_counter() - t0
    s = stats.as_dict()
    size = out.stat().st_size
    log.info("wrote %s: %s rows, %s products, %s .. %s, %.1f MB, %.1f s (%.2f M rows/s)",
             out, f"{s['rows']:,}", f"{s['products']:,}", s["first"], s["last"], size / 1e6,
             secs, s["rows"] / max(secs, 1e-9) / 1e6)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
