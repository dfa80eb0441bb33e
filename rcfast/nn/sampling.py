"""The temporal split and bulk sampling of training forecast origins.

Forecast origins are drawn in bulk: a product by inverse CDF over per-product weights, then a
uniform origin inside that product's admissible range; the batch of step ``s`` is a pure
function of ``(seed, s)``, which makes resuming and splitting a global batch across ranks exact.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .panel import Panel, PanelError, date_of_week


@dataclasses.dataclass(frozen=True)
class Split:
    """Forecast origins of the temporal split (week indices)."""
    test_origin: int     #: test targets: test_origin ... end_week
    val_origin: int      #: validation targets: val_origin ... test_origin - 1
    #: training targets end at train_last_origin + H - 1: before val_origin, or before
    #: test_origin when refitting
    train_last_origin: int


def make_split(end_week: int, horizon: int, refit: bool = False) -> Split:
    test = end_week - horizon + 1
    val = test - horizon
    return Split(test_origin=test, val_origin=val,
                 train_last_origin=(test if refit else val) - horizon)


class OriginSampler:
    """Draws (product, origin) pairs in bulk; step ``s``'s batch depends on (seed, s) only."""

    def __init__(self, panel: Panel, *, context_length: int, horizon: int, last_origin: int,
                 min_history: int = 1, power: float = 1.0, seed: int = 0,
                 focus_share: float = 0.0, focus_min_reviews: int = 26,
                 device: str | torch.device = "cpu") -> None:
        # with the whole history stored, an origin needs min_history weeks since the first
        # review (earlier weeks are zeros); with a truncated store, all L weeks must be held.
        first_origin = panel.first_week + min_history
        cut = panel.store_start > panel.first_week
        first_origin = np.where(cut, np.maximum(first_origin, panel.store_start + context_length),
                                first_origin)
        n_orig = np.maximum(last_origin - first_origin + 1, 0)
        if n_orig.sum() == 0:
            raise PanelError(
                f"no training forecast origins: every product's first review is too late for "
                f"a window ending before the validation weeks (last training origin "
                f"{date_of_week(last_origin)})")
        # mean weekly reviews of each product over its training range
        tr = panel.week < last_origin
        tot = np.bincount(panel.code[tr], weights=panel.count[tr], minlength=panel.n_products)
        span = np.maximum(last_origin - panel.first_week, 1)
        w = n_orig * (1.0 + tot / span) ** power
        self.device = torch.device(device)
        self.weights = torch.from_numpy(w / w.sum()).to(self.device)
        self.cdf = torch.cumsum(self.weights, 0)
        self.first_origin = torch.from_numpy(first_origin.astype(np.int64)).to(self.device)
        self.n_origins = torch.from_numpy(n_orig.astype(np.int64)).to(self.device)
        self.seed = int(seed)
        self.n_windows = int(n_orig.sum())
        self.focus_share = float(focus_share)
        fp, fo = (focus_windows(panel, first_origin, n_orig, focus_min_reviews, last_origin)
                  if focus_share > 0 else (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        self.focus_prod = torch.from_numpy(fp).to(self.device)
        self.focus_origin = torch.from_numpy(fo).to(self.device)
        self.n_focus_windows = len(fp)

    def generator(self, step: int) -> torch.Generator:
        g = torch.Generator(device=self.device)
        g.manual_seed((self.seed * 1_000_003 + step * 7919 + 12345) % (2**63 - 1))
        return g

    def sample(self, step: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` windows for global step ``step``: (product [n], origin [n]) int64 tensors."""
        g = self.generator(step)
        # inverse-CDF draw of the products (torch.multinomial would rebuild the CDF per call)
        v = torch.rand(n, generator=g, dtype=torch.float64, device=self.device)
        prod = torch.searchsorted(self.cdf, v * self.cdf[-1], right=True).clamp_max(
            len(self.cdf) - 1)
        u = torch.rand(n, generator=g, dtype=torch.float64, device=self.device)
        off = (u * self.n_origins[prod]).long().clamp_max(self.n_origins[prod] - 1)
        origin = self.first_origin[prod] + off
        m = round(self.focus_share * n) if self.n_focus_windows else 0
        if m:  # the last m draws come from the focus windows instead, then all are shuffled
            k = (torch.rand(m, generator=g, dtype=torch.float64, device=self.device)
                 * self.n_focus_windows).long().clamp_max(self.n_focus_windows - 1)
            prod = torch.cat([prod[:n - m], self.focus_prod[k]])
            origin = torch.cat([origin[:n - m], self.focus_origin[k]])
            perm = torch.randperm(n, generator=g, device=self.device)
            prod, origin = prod[perm], origin[perm]
        return prod, origin


def focus_windows(panel: Panel, first_origin: np.ndarray, n_orig: np.ndarray, min_reviews: int,
                  last_origin: int, weeks: int = 52) -> tuple[np.ndarray, np.ndarray]:
    """Training windows (product, origin) whose ``weeks`` weeks before the origin hold at least
    ``min_reviews`` reviews: the training counterpart of the evaluation's head. From the
    sparse rows, over only the products with that many reviews before ``last_origin``."""
    tr = panel.week < last_origin
    tot = np.bincount(panel.code[tr], weights=panel.count[tr], minlength=panel.n_products)
    sel = np.nonzero((tot >= min_reviews) & (n_orig > 0))[0]
    if len(sel) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # each selected product's weeks first_week .. last_origin-1, densely, one after another
    span = last_origin - panel.first_week[sel]
    base = np.zeros(panel.n_products, np.int64)
    base[sel] = np.r_[0, np.cumsum(span)[:-1]]
    keep = tr & np.isin(panel.code, sel)
    dense = np.zeros(int(span.sum()) + 1)
    c = panel.code[keep]
    np.add.at(dense, base[c] + panel.week[keep] - panel.first_week[c], panel.count[keep])
    csum = np.r_[0.0, np.cumsum(dense)]          # csum[i] = reviews in dense rows before i
    prod = np.repeat(sel, n_orig[sel])
    origin = first_origin[prod] + (np.arange(len(prod)) -
                                   np.repeat(np.cumsum(n_orig[sel]) - n_orig[sel], n_orig[sel]))
    start = base[prod]
    i = start + origin - panel.first_week[prod]  # dense row of the origin week
    act = csum[i] - csum[np.maximum(start, i - weeks)]
    ok = act >= min_reviews
    return prod[ok].astype(np.int64), origin[ok].astype(np.int64)
