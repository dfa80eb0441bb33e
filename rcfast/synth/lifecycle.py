"""When a product's reviews come: the post-launch decay with its slow tail, the launch ramp, the
popularity waves and the season x weekday weight of each day, plus the share of a product's
life that falls before the data's end (:func:`life_in_data`). The per-product ramp and wave
parameters come from a hash of the product index, so they cost no memory and
``train/oracle_floor.py`` recomputes them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from rcfast.synth.catalog import _END_MS, _MS_PER_DAY, _Y1998_MS, _Catalog, _splitmix64

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
#: Share of a product's reviews on the slow tail of its life cycle, and that tail's scale
#: as a multiple of the product's decay scale.
_TAIL_SHARE = 0.3
_TAIL_MULT = 5.0
#: Reviews build up after launch as sales do: intensity x (1 - exp(-age / ramp)), the ramp
#: lognormal per product around this median (days).
_RAMP_DAYS = 30.0


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
