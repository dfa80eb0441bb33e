"""Drawing the rows of one internal RNG block: which product each review is of (rejecting reviews
that would fall after the data's end), its timestamp by thinning against the life cycle, and
its rating, helpful votes, verified flag and text length. Only numbers here; the string
columns are built from them by :mod:`rcfast.synth.string_columns`.
"""

from __future__ import annotations

import numpy as np

from rcfast.synth.catalog import _END_MS, _MS_PER_DAY, _Catalog, _zipf_index
from rcfast.synth.lifecycle import (
    _FIRST_DAY,
    _TAIL_MULT,
    _TAIL_SHARE,
    _day_weight,
    _days_left,
    _dynamics,
    _ramp_days,
    life_in_data,
)

# Ordered-logit thresholds calibrated (quality ~ N(0, 1), logistic noise) to the Amazon shares
# 1★ 10 %, 2★ 6 %, 3★ 8 %, 4★ 15 %, 5★ 61 %.
_RATING_THRESHOLDS = np.array([-2.562, -1.960, -1.376, -0.538])


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
