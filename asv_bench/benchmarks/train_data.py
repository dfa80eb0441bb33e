"""asv: windows/s of the training data path, vectorized gather vs per-sample Dataset.

``track_windows_per_s`` reports windows per second (higher is better) for both paths on the same
panel and origins; ``time_*`` time one batch of 1024 windows. The per-sample path is the
``torch.utils.data.Dataset`` + ``DataLoader`` one writes first (:class:`PerSampleWindowDataset`);
the gather path is what ``train/run.py`` uses. ``TrainDataBuild`` measures building the
training data (``read_panel``: the dense store; the origin sampler with its focus windows, the
"window index"): ``peakmem_build`` its peak RSS, ``time_build`` its time. Needs the ``train``
extra (torch).
"""

import shutil
import tempfile
from pathlib import Path

BATCH = 1024


def _panel() -> str:
    """The weekly panel of 300,000 generated reviews (rcfast.synth + rcfast.weekly)."""
    from rcfast.bench.train_data import build_panel
    d = Path(tempfile.mkdtemp(prefix="rcfast-asv-train-"))
    panel = build_panel(300_000, 0, d)
    keep = Path(tempfile.gettempdir()) / "rcfast-asv-train-panel.parquet"
    shutil.copy(panel, keep)
    shutil.rmtree(d, ignore_errors=True)
    return str(keep)


class TrainData:
    params = [["gather", "per_sample"]]
    param_names = ["path"]
    timeout = 600
    unit = "windows/s"

    def setup_cache(self):
        return _panel()

    def setup(self, panel_path, path):
        import torch
        torch.set_num_threads(1)
        from rcfast.bench.train_data import prepare
        from rcfast.nn.data import PerSampleWindowDataset, make_batch
        self.panel, self.sampler = prepare(Path(panel_path))
        self.pt = self.panel.tensors()
        self.make_batch = make_batch
        prod, origin = self.sampler.sample(0, BATCH)
        self.ds = PerSampleWindowDataset(self.panel, prod.numpy(), origin.numpy(), 52, 4)
        self.loader = torch.utils.data.DataLoader(self.ds, batch_size=BATCH, shuffle=True)
        self.make_batch(self.pt, *self.sampler.sample(1, BATCH), 52, 4)  # warm-up

    def time_batch_of_1024(self, panel_path, path):
        if path == "gather":
            self.make_batch(self.pt, *self.sampler.sample(2, BATCH), 52, 4)
        else:
            for _ in self.loader:
                pass

    def track_windows_per_s(self, panel_path, path):
        from rcfast.bench.train_data import time_gather, time_per_sample
        if path == "gather":
            return time_gather(self.panel, self.sampler, 50 * BATCH, BATCH)
        return time_per_sample(self.panel, self.sampler, 4 * BATCH, BATCH)

    track_windows_per_s.unit = "windows/s"


def _build(panel_path):
    from rcfast.nn.data import OriginSampler, make_split, read_panel
    panel = read_panel(panel_path, min_weeks=52 + 12)
    split = make_split(panel.end_week, 4)
    sampler = OriginSampler(panel, context_length=52, horizon=4,
                            last_origin=split.train_last_origin, focus_share=0.6,
                            focus_min_reviews=26)
    return panel, sampler


class TrainDataBuild:
    """The training data as ``train/run.py`` builds them: panel -> dense store -> sampler."""

    timeout = 600

    def setup_cache(self):
        return _panel()

    def setup(self, panel_path):
        import torch  # imported before the measurement: its own memory is not the data's
        torch.set_num_threads(1)

    def peakmem_build(self, panel_path):
        _build(panel_path)

    def time_build(self, panel_path):
        _build(panel_path)
