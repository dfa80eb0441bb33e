"""Windows of the panel store as model inputs: one vectorized gather, then the features.

A batch of windows is one index computation and one gather (see :mod:`rcfast.nn.data`); no
Python runs per window, and on a GPU the whole thing stays on the device.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .panel import CH_COUNT, CH_RATING, N_CHANNELS, Panel, PanelTensors

#: Per-step input features built from a window (see :func:`window_features`).
N_STEP_FEATURES = 9
N_STATIC_FEATURES = 2


def gather_windows(pt: PanelTensors, prod: torch.Tensor, origin: torch.Tensor,
                   context_length: int, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows ``[B, L+H, N_CHANNELS]`` and the in-history mask ``[B, L+H]`` (bool).

    Weeks before a product's first review and after ``end_week`` are zeros (mask False for the
    former). All on ``pt``'s device, no Python per window.
    """
    dev = pt.device
    prod = prod.to(dev)
    origin = origin.to(dev)
    steps = torch.arange(-context_length, horizon, device=dev)
    t = origin[:, None] + steps[None, :]                       # [B, L+H]
    start = pt.store_start[prod][:, None]
    rel = t - start
    n = (pt.offsets[prod + 1] - pt.offsets[prod])[:, None]
    inside = (rel >= 0) & (rel < n)
    idx = pt.offsets[prod][:, None] + rel.clamp(min=0).minimum((n - 1).clamp(min=0))
    x = pt.values[idx.clamp(max=max(pt.values.shape[0] - 1, 0))]  # [B, L+H, C]
    x = x * inside[..., None].to(x.dtype)
    alive = t >= pt.first_week[prod][:, None]
    return x, alive


def window_features(x: torch.Tensor, alive: torch.Tensor, origin: torch.Tensor,
                    first_week: torch.Tensor, context_length: int) -> dict[str, torch.Tensor]:
    """Model inputs from gathered windows; DeepAR scaling by the history mean.

    Returns ``steps`` [B, L+H, N_STEP_FEATURES], ``static`` [B, N_STATIC_FEATURES],
    ``scale`` [B] (1 + mean count over the history weeks since the first review) and
    ``target`` [B, H] (counts of the H forecast weeks).
    """
    L = context_length
    B, T, _ = x.shape
    dev, dt = x.device, x.dtype
    y = x[..., CH_COUNT]
    yp = y[:, :L]
    hist_alive = alive[:, :L]
    n_alive = hist_alive.sum(1).clamp(min=1)
    scale = 1.0 + (yp * hist_alive).sum(1) / n_alive                # [B]
    origin = origin.to(dev)
    out = torch.zeros(B, T, N_STEP_FEATURES, dtype=dt, device=dev)  # future steps: no counts
    out[:, :L, 0] = yp / scale[:, None]
    out[:, :L, 1] = torch.log1p(yp)
    out[:, :L, 2] = torch.where(yp > 0, x[:, :L, CH_RATING] - 3.0, 0.0) / 2.0
    out[..., 3] = alive
    out[:, L:, 4] = 1.0
    # week of year (52.1775 weeks a year): sin/cos of the origin's phase, rotated per offset
    w = 2 * math.pi / 52.1775
    ph = origin.to(torch.float64) * w
    so, co = torch.sin(ph).to(dt)[:, None], torch.cos(ph).to(dt)[:, None]
    k = torch.arange(-L, T - L, device=dev, dtype=torch.float64) * w
    sk, ck = torch.sin(k).to(dt)[None, :], torch.cos(k).to(dt)[None, :]
    out[..., 5] = so * ck + co * sk
    out[..., 6] = co * ck - so * sk
    age0 = (origin - first_week).to(dt)                                # weeks since 1st review
    age = (age0[:, None] + torch.arange(-L, T - L, device=dev, dtype=dt)[None, :]).clamp(min=0)
    out[..., 7] = (age / 52.0).clamp(max=10.0)
    out[..., 8] = torch.log1p(age) / 5.0
    static = torch.stack([torch.log(scale), torch.log1p(age0.clamp(min=0)) / 5.0], dim=-1)
    return {"steps": out, "static": static, "scale": scale, "target": y[:, L:]}


def make_batch(pt: PanelTensors, prod: torch.Tensor, origin: torch.Tensor,
               context_length: int, horizon: int) -> dict[str, torch.Tensor]:
    x, alive = gather_windows(pt, prod, origin, context_length, horizon)
    return window_features(x, alive, origin, pt.first_week[prod.to(pt.device)], context_length)


# ------------------------------------------------------------------------------------------
# the straightforward alternative, kept for the benchmark: one window per __getitem__
# ------------------------------------------------------------------------------------------
class PerSampleWindowDataset(torch.utils.data.Dataset):
    """What one writes first: per-product numpy series, one window built per ``__getitem__``.

    Used only by the data-path benchmark as the baseline; it yields the same features.
    """

    def __init__(self, panel: Panel, prods: np.ndarray, origins: np.ndarray,
                 context_length: int, horizon: int) -> None:
        self.L, self.H = context_length, horizon
        self.prods, self.origins = prods, origins
        self.first = panel.first_week
        # per-product dense series, like a dict of pandas Series
        self.series = [panel.values[panel.offsets[i]:panel.offsets[i + 1]]
                       for i in range(panel.n_products)]
        self.start = panel.store_start

    def __len__(self) -> int:
        return len(self.prods)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        p, o = int(self.prods[i]), int(self.origins[i])
        L, H = self.L, self.H
        s = self.series[p]
        x = np.zeros((L + H, N_CHANNELS), dtype=np.float32)
        for j, t in enumerate(range(o - L, o + H)):
            r = t - self.start[p]
            if 0 <= r < len(s):
                x[j] = s[r]
        alive = np.arange(o - L, o + H) >= self.first[p]
        f = window_features(torch.from_numpy(x)[None], torch.from_numpy(alive)[None],
                            torch.tensor([o]), torch.tensor([self.first[p]]), L)
        return {k: v[0] for k, v in f.items()}
