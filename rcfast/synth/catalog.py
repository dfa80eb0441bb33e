"""The product catalog behind the synthetic reviews: the data's time range, each product's ASIN-like
id, launch date, decay scale, quality, verified share and category, and the Zipf law of product
and user popularity. A catalog is drawn once per ``(n_rows, seed, n_products)`` and cached; the
counter-based hash here also seeds the per-product dynamics and the user ids.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

_MS_PER_DAY = 86_400_000
_END_MS = int(np.datetime64("2023-09-30T23:59:59.999", "ms").astype(np.int64))
_Y1998_MS = int(np.datetime64("1998-01-01", "ms").astype(np.int64))
_Y2012_MS = int(np.datetime64("2012-01-01", "ms").astype(np.int64))
_LAUNCH_END_MS = int(np.datetime64("2023-07-31", "ms").astype(np.int64))

#: Catalog products per review when n_products is not given.
_REVIEWS_PER_PRODUCT = 12
#: Zipf offset as a fraction of the catalog: keeps the top product near 30k reviews at any scale.
_ZIPF_OFFSET_FRACTION = 4e-5

#: Median scale (days) of the post-launch decay of a product's review rate (lognormal per
#: product, sd 0.7 in log; 30 % of reviews follow a 5x slower tail): most products peak within
#: a few months of launch and fade, as consumer goods do.
_DECAY_DAYS = 90.0

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

_B36 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)


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

def zipf_share(cat: _Catalog, k: np.ndarray) -> np.ndarray:
    """P(k): the Zipf weight of catalog products ``k`` (the share of rows before the data's end
    cuts products' lives short; see :func:`_draw_products`)."""
    k = np.asarray(k, dtype=np.float64)
    b, n = cat.zipf_b, cat.n_products
    return (np.log1p((k + 1) / b) - np.log1p(k / b)) / np.log1p(n / b)


def _resolve_products(n_rows: int, n_products: int | None) -> int:
    if n_products is None:
        return max(1, round(n_rows / _REVIEWS_PER_PRODUCT))
    if isinstance(n_products, bool) or not isinstance(n_products, (int, np.integer)) \
            or not 1 <= n_products <= MAX_ID_INDEX // 4:
        raise ValueError(f"n_products must be an integer in 1..{MAX_ID_INDEX // 4}, "
                         f"got {n_products!r}")
    return int(n_products)
