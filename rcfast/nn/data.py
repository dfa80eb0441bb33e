"""The training data path: the sparse weekly panel as contiguous tensors, windows by gather.

The panel of ``python -m rcfast.weekly`` has one row per (product, week with reviews). Here it is
loaded once and rebuilt densely, product after product, into one ``values`` tensor
(``[rows, channels]``, float32; weeks without reviews are zero rows) plus ``offsets``
(``[products + 1]``): product ``p`` owns rows ``offsets[p] : offsets[p+1]``, which hold the weeks
``store_start[p] ... end_week``. A batch of windows is then one index computation and one gather:

    t     = origin[:, None] + arange(-L, H)            # [B, L+H] absolute weeks
    idx   = offsets[p][:, None] + t - store_start[p]    # rows of `values`
    x     = values[idx] * (t >= first_week[p])          # zeros before a product's first review

No Python runs per window, and on a GPU the whole thing (sampling included) stays on the device.
Forecast origins are drawn in bulk: a product by ``torch.multinomial`` over per-product weights,
then a uniform origin inside that product's admissible range; the batch of step ``s`` is a pure
function of ``(seed, s)``, which makes resuming and splitting a global batch across ranks exact.

Weeks are integers: ``w = (days since 1970-01-01 + 3) // 7``, the spec's Monday-start week index.
A forecast *origin* ``o`` means: history is weeks ``o-L ... o-1``, targets weeks ``o ... o+H-1``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import pathlib

import numpy as np
import torch

#: Columns the training needs; rating_mean is optional (zeros when absent).
REQUIRED_COLUMNS = ("product_id", "week_start", "n_reviews")
OPTIONAL_COLUMNS = ("rating_mean",)
#: Channels of the dense store.
CH_COUNT, CH_RATING = 0, 1
N_CHANNELS = 2
#: Per-step input features built from a window (see :func:`window_features`).
N_STEP_FEATURES = 9
N_STATIC_FEATURES = 2


class PanelError(ValueError):
    """The panel cannot be used for training (missing, empty, too short, lacking columns)."""


def week_of_date(d: _dt.date | str) -> int:
    if isinstance(d, str):
        try:
            d = _dt.date.fromisoformat(d)
        except ValueError as e:
            raise ValueError(f"not an ISO date (YYYY-MM-DD): {d!r}") from e
    return (d.toordinal() - _dt.date(1970, 1, 1).toordinal() + 3) // 7


def date_of_week(w: int) -> _dt.date:
    return _dt.date(1970, 1, 1) + _dt.timedelta(days=int(w) * 7 - 3)


@dataclasses.dataclass
class Panel:
    """A weekly panel in training form. Sparse arrays are sorted by (code, week)."""

    product_ids: np.ndarray      #: [P] object (str) product ids, code order
    code: np.ndarray             #: [R] int64 product code of each sparse row
    week: np.ndarray             #: [R] int64 week index of each sparse row
    count: np.ndarray            #: [R] float64 n_reviews
    rating: np.ndarray           #: [R] float64 rating_mean (0 where unknown)
    first_week: np.ndarray       #: [P] int64 first week with reviews
    end_week: int                #: last week of the data (inclusive)
    store_start: np.ndarray      #: [P] int64 first week held in `values`
    offsets: np.ndarray          #: [P+1] int64
    values: np.ndarray           #: [N, N_CHANNELS] float32 dense rows
    source: str = ""

    @property
    def n_products(self) -> int:
        return len(self.product_ids)

    def tensors(self, device: str | torch.device = "cpu", pin: bool = False) -> PanelTensors:
        """The store as tensors on ``device``; ``pin``: in page-locked host memory (for the
        streaming path, whose per-step batch copies to a GPU are then asynchronous)."""
        def t(a: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(a)
            return x.pin_memory() if pin else x.to(device)
        return PanelTensors(values=t(self.values), offsets=t(self.offsets),
                            store_start=t(self.store_start), first_week=t(self.first_week),
                            end_week=int(self.end_week))


@dataclasses.dataclass
class PanelTensors:
    values: torch.Tensor
    offsets: torch.Tensor
    store_start: torch.Tensor
    first_week: torch.Tensor
    end_week: int

    @property
    def device(self) -> torch.device:
        return self.values.device


def read_panel(path: str | os.PathLike[str], *, end_week: str | int | None = None,
               min_weeks: int = 1, keep_weeks: int = 0) -> Panel:
    """Read a panel Parquet file (or directory) and build the dense store.

    ``min_weeks``: the panel must span at least this many weeks (L + H for training), else
    :class:`PanelError`. ``keep_weeks`` > 0 keeps only the last ``keep_weeks`` weeks densely
    (first weeks and the sparse arrays are kept whole).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    p = pathlib.Path(path)
    if not p.exists():
        raise PanelError(f"panel not found: {p} (make one with `python -m rcfast.weekly INPUT "
                         f"-o {p}`)")
    try:
        dataset = ds.dataset(str(p), format="parquet")
        names = set(dataset.schema.names)
    except Exception as e:  # corrupt / not parquet
        raise PanelError(f"cannot read panel {p} as Parquet: {e}") from e
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise PanelError(f"panel {p} lacks column(s) {missing}; it has {sorted(names)}. "
                         f"Expected the output of `python -m rcfast.weekly`.")
    cols = list(REQUIRED_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in names]
    table = dataset.to_table(columns=cols)
    if table.num_rows == 0:
        raise PanelError(f"panel {p} is empty (0 rows)")

    wcol = table.column("week_start")
    if pa.types.is_timestamp(wcol.type):
        wcol = pc.cast(wcol, pa.date32())
    if not pa.types.is_date(wcol.type):
        raise PanelError(f"panel {p}: column week_start must be a date, got {wcol.type}")
    if wcol.null_count:
        raise PanelError(f"panel {p}: week_start has {wcol.null_count} nulls")
    days = pc.cast(pc.cast(wcol, pa.date32()), pa.int32()).to_numpy()
    week = (days.astype(np.int64) + 3) // 7

    pid = table.column("product_id")
    if pid.null_count:
        raise PanelError(f"panel {p}: product_id has {pid.null_count} nulls")
    enc = pc.dictionary_encode(pid.combine_chunks() if hasattr(pid, "combine_chunks") else pid)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    uniq = enc.dictionary
    # codes in byte order of the ids, so that code order = the spec's product order
    order = np.asarray(pc.sort_indices(uniq), dtype=np.int64)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    code = rank[np.asarray(enc.indices, dtype=np.int64)]
    product_ids = np.asarray(uniq.take(pa.array(order)).to_pylist(), dtype=object)

    cnt = table.column("n_reviews")
    if cnt.null_count:
        raise PanelError(f"panel {p}: n_reviews has {cnt.null_count} nulls")
    count = cnt.to_numpy().astype(np.float64)
    if (count < 0).any():
        raise PanelError(f"panel {p}: n_reviews has negative values")
    if "rating_mean" in table.column_names:
        rating = pc.fill_null(table.column("rating_mean"), 0.0).to_numpy().astype(np.float64)
        rating = np.nan_to_num(rating)
    else:
        rating = np.zeros_like(count)

    return panel_from_arrays(product_ids, code, week, count, rating, end_week=end_week,
                             min_weeks=min_weeks, keep_weeks=keep_weeks, source=str(p))


def panel_from_arrays(product_ids: np.ndarray, code: np.ndarray, week: np.ndarray,
                      count: np.ndarray, rating: np.ndarray | None = None, *,
                      end_week: str | int | None = None, min_weeks: int = 1,
                      keep_weeks: int = 0, source: str = "arrays") -> Panel:
    """Build a :class:`Panel` from sparse rows (product code, week index, count, rating)."""
    p = source
    code = np.asarray(code, dtype=np.int64)
    week = np.asarray(week, dtype=np.int64)
    count = np.asarray(count, dtype=np.float64)
    rating = np.zeros_like(count) if rating is None else np.asarray(rating, dtype=np.float64)
    product_ids = np.asarray(product_ids, dtype=object)
    if len(code) == 0:
        raise PanelError(f"panel {p} is empty (0 rows)")
    srt = np.lexsort((week, code))
    if not (np.all(np.diff(code) >= 0) and np.all(srt == np.arange(len(srt)))):
        code, week, count, rating = code[srt], week[srt], count[srt], rating[srt]
    # a dense panel has explicit zero rows: drop them (first_week must be a week with reviews)
    keep = count > 0
    if not keep.all():
        code, week, count, rating = code[keep], week[keep], count[keep], rating[keep]
        present = np.unique(code)
        if len(present) == 0:
            raise PanelError(f"panel {p} holds no reviews (all n_reviews are 0)")
        remap = np.full(len(product_ids), -1, dtype=np.int64)
        remap[present] = np.arange(len(present))
        product_ids, code = product_ids[present], remap[code]
    dup = (np.diff(code) == 0) & (np.diff(week) == 0)
    if dup.any():
        raise PanelError(f"panel {p}: duplicate (product_id, week_start) rows")

    if end_week is None or end_week == "":
        e = int(week.max())
    elif isinstance(end_week, (int, np.integer)):
        e = int(end_week)
    else:
        e = week_of_date(end_week)
    inside = week <= e
    if not inside.all():
        code, week, count, rating = code[inside], week[inside], count[inside], rating[inside]
        if len(code) == 0:
            raise PanelError(f"panel {p}: no rows on or before end_week {date_of_week(e)}")
    n_products = len(product_ids)
    starts = np.searchsorted(code, np.arange(n_products + 1))
    has_rows = starts[1:] > starts[:-1]
    first_week = np.full(n_products, e + 1, dtype=np.int64)
    first_week[has_rows] = week[starts[:-1][has_rows]]

    span = e - int(first_week.min()) + 1
    if span < min_weeks:
        raise PanelError(
            f"panel {p} spans {span} weeks ({date_of_week(first_week.min())} .. "
            f"{date_of_week(e)}); training needs at least {min_weeks} (context_length + "
            f"3 x horizon for train/validation/test origins)")

    store_start = first_week.copy()
    if keep_weeks and keep_weeks > 0:
        store_start = np.maximum(store_start, e - keep_weeks + 1)
    store_start = np.minimum(store_start, e + 1)
    lengths = (e + 1 - store_start).astype(np.int64)
    offsets = np.zeros(n_products + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.zeros((int(offsets[-1]), N_CHANNELS), dtype=np.float32)
    held = week >= store_start[code]
    pos = offsets[code[held]] + (week[held] - store_start[code[held]])
    values[pos, CH_COUNT] = count[held]
    values[pos, CH_RATING] = rating[held]
    return Panel(product_ids=product_ids, code=code, week=week, count=count, rating=rating,
                 first_week=first_week, end_week=e, store_start=store_start, offsets=offsets,
                 values=values, source=str(p))


# ------------------------------------------------------------------------------------------
# splits and bulk origin sampling
# ------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------
# vectorized window gather and features
# ------------------------------------------------------------------------------------------
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
