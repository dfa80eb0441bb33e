"""``python -m rcfast.bench train-data``: windows/s of the training data path.

Compares, on the same panel and the same forecast origins, the two ways of feeding the model:

* **gather** (what ``train/run.py`` does): the panel as one values tensor + offsets, origins drawn
  in bulk (:class:`rcfast.nn.data.OriginSampler`), each batch one vectorized gather
  (:func:`rcfast.nn.data.make_batch`);
* **per-sample**: a map-style ``torch.utils.data.Dataset`` whose ``__getitem__`` builds one
  window from a per-product array (:class:`rcfast.nn.data.PerSampleWindowDataset`), batched by a
  ``DataLoader`` with the default collate.

Both produce identical tensors (checked). Prints windows/s of each and the ratio; ``--json``
writes them too. The panel is built from ``rcfast.synth`` demo reviews with ``rcfast.weekly``
unless ``--panel`` is given.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rcfast.bench.options import add_common_arguments, make_parser, parse_row_count


def build_panel(rows: int, seed: int, workdir: Path) -> Path:
    from rcfast import synth
    from rcfast.weekly import main as weekly_main

    raw = workdir / "reviews.parquet"
    synth.write_parquet(raw, rows, seed)
    panel = workdir / "panel.parquet"
    rc = weekly_main([str(raw), "-o", str(panel), "--quiet"])
    if rc != 0:
        raise RuntimeError(f"rcfast.weekly failed with status {rc}")
    return panel


def prepare(panel_path: Path, context_length: int = 52, horizon: int = 4, seed: int = 0):
    from rcfast.nn.data import OriginSampler, make_split, read_panel

    panel = read_panel(panel_path, min_weeks=context_length + 3 * horizon)
    split = make_split(panel.end_week, horizon)
    sampler = OriginSampler(panel, context_length=context_length, horizon=horizon,
                            last_origin=split.train_last_origin, seed=seed)
    return panel, sampler


def time_gather(panel, sampler, n_windows: int, batch_size: int, L: int = 52, H: int = 4,
                device: str = "cpu") -> float:
    """Windows/s of bulk sampling + vectorized gather + features."""
    from rcfast.nn.data import make_batch

    pt = panel.tensors(device)
    make_batch(pt, *sampler.sample(0, batch_size), L, H)  # warm-up
    n_batches = max(1, n_windows // batch_size)
    t0 = time.perf_counter()
    for s in range(n_batches):
        b = make_batch(pt, *sampler.sample(s, batch_size), L, H)
    b["target"].sum().item()
    return n_batches * batch_size / (time.perf_counter() - t0)


def time_per_sample(panel, sampler, n_windows: int, batch_size: int, L: int = 52, H: int = 4,
                    workers: int = 0) -> float:
    """Windows/s of a per-sample Dataset + DataLoader over the same kind of origins."""
    import torch

    from rcfast.nn.data import PerSampleWindowDataset

    prod, origin = sampler.sample(0, n_windows)
    ds = PerSampleWindowDataset(panel, prod.numpy(), origin.numpy(), L, H)
    dl = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True,
                                     num_workers=workers, drop_last=False)
    t0 = time.perf_counter()
    n = 0
    for b in dl:
        n += len(b["target"])
    return n / (time.perf_counter() - t0)


class _RawWindows:
    """A lean per-sample Dataset: numpy slicing of one window per item (no per-item features);
    the features are then computed per batch. The strongest per-sample variant."""

    def __init__(self, panel, prods, origins, L, H):
        import torch
        self.torch = torch
        self.panel, self.prods, self.origins, self.L, self.H = panel, prods, origins, L, H

    def __len__(self):
        return len(self.prods)

    def __getitem__(self, i):
        pn, p, o = self.panel, int(self.prods[i]), int(self.origins[i])
        lo, hi = int(pn.offsets[p]), int(pn.offsets[p + 1])
        a = o - self.L - int(pn.store_start[p])
        b = a + self.L + self.H
        x = pn.values[lo + max(a, 0): lo + min(b, hi - lo)]
        x = np.pad(x, ((max(-a, 0), max(b - (hi - lo), 0)), (0, 0)))
        return x, o, int(pn.first_week[p])


def time_per_sample_lean(panel, sampler, n_windows: int, batch_size: int, L: int = 52,
                         H: int = 4) -> float:
    import torch

    from rcfast.nn.data import window_features

    prod, origin = sampler.sample(0, n_windows)
    dl = torch.utils.data.DataLoader(_RawWindows(panel, prod.numpy(), origin.numpy(), L, H),
                                     batch_size=batch_size, shuffle=True)
    t0 = time.perf_counter()
    n = 0
    for x, o, f in dl:
        t = o[:, None] + torch.arange(-L, H)[None, :]
        b = window_features(x, t >= f[:, None], o, f, L)
        n += len(b["target"])
    return n / (time.perf_counter() - t0)


def check_same(panel, sampler, n: int = 512, L: int = 52, H: int = 4) -> None:
    import torch

    from rcfast.nn.data import PerSampleWindowDataset, make_batch

    prod, origin = sampler.sample(123, n)
    fast = make_batch(panel.tensors(), prod, origin, L, H)
    ds = PerSampleWindowDataset(panel, prod.numpy(), origin.numpy(), L, H)
    slow = torch.utils.data.default_collate([ds[i] for i in range(n)])
    for k in fast:
        if not torch.allclose(fast[k], slow[k], rtol=1e-6, atol=1e-6):
            raise AssertionError(f"gather and per-sample paths differ in {k!r}")


def main(argv: list[str] | None = None) -> int:
    p = make_parser(
        "python -m rcfast.bench train-data",
        "Windows/s of the training data path, two ways on the same panel and origins: the\n"
        "gather path train/run.py uses (values + offsets, origins drawn in bulk, one vectorized\n"
        "gather a batch) against a per-sample torch Dataset + DataLoader. Checks that both give\n"
        "the same tensors, then prints windows/s of each and their ratio.",
        ["python -m rcfast.bench train-data",
         "python -m rcfast.bench train-data --rows 1e6 --workers 2 --json train-data.json",
         "python -m rcfast.bench train-data --panel panel.parquet --device cuda"])
    p.add_argument("--panel", type=Path, default=None, metavar="FILE",
                   help="weekly panel Parquet (default: build one from generated reviews)")
    p.add_argument("--rows", type=parse_row_count, default=500_000,
                   help="generated reviews when no --panel (default: 5e5)")
    add_common_arguments(p, json=True,
                         seed="seed of the generated reviews and of the origins drawn (default: 0)")
    p.add_argument("--windows", type=int, default=200_000, metavar="N",
                   help="windows for the gather path (default: 200000)")
    p.add_argument("--per-sample-windows", type=int, default=20_000, metavar="N",
                   help="windows for the (slow) per-sample path (default: 20000)")
    p.add_argument("--batch-size", type=int, default=1024, metavar="N",
                   help="windows a batch (default: 1024)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="DataLoader workers of the per-sample path (default: 0)")
    p.add_argument("--device", default="cpu", help="torch device of the gather path (default: cpu)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch intra-op threads for both paths (default: 1, fair on a shared "
                        "machine)")
    a = p.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)

    with tempfile.TemporaryDirectory(prefix="rcfast-train-data-") as tmp:
        panel_path = a.panel or build_panel(a.rows, a.seed, Path(tmp))
        panel, sampler = prepare(panel_path, seed=a.seed)
        check_same(panel, sampler)
        fast = time_gather(panel, sampler, a.windows, a.batch_size, device=a.device)
        slow = time_per_sample(panel, sampler, a.per_sample_windows, a.batch_size,
                               workers=a.workers)
        lean = time_per_sample_lean(panel, sampler, 5 * a.per_sample_windows, a.batch_size)
    res = {"products": panel.n_products, "dense_rows": int(panel.offsets[-1]),
           "batch_size": a.batch_size, "torch_threads": torch.get_num_threads(),
           "gather_windows_per_s": fast, "per_sample_windows_per_s": slow,
           "per_sample_lean_windows_per_s": lean, "ratio_lean": fast / lean,
           "per_sample_workers": a.workers, "ratio": fast / slow, "device": a.device}
    print(f"panel: {res['products']:,} products, {res['dense_rows']:,} dense rows; "
          f"batch {a.batch_size}, L=52, H=4")
    print(f"| path | windows/s |\n|---|---|\n| gather (values+offsets, bulk origins) | "
          f"{fast:,.0f} |\n| per-sample Dataset + DataLoader ({a.workers} workers) | "
          f"{slow:,.0f} |\n| per-sample, lean (numpy slice per item, features per batch) | "
          f"{lean:,.0f} |\n| ratio gather / per-sample | {fast / slow:,.1f}x |\n"
          f"| ratio gather / lean per-sample | {fast / lean:,.1f}x |")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
