"""The whole weekly step (Parquet in, panel Parquet out) against the pandas baselines."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from ._data import reviews_parquet

SIZES = [100_000, 1_000_000]


class WeeklyStep:
    """``python -m rcfast.weekly`` vs ``rcfast.baselines.panel_pandas`` (vectorized windows) and
    ``panel_pandas_rolling`` (``groupby().rolling("28D")``, as the users wrote it), each +
    ``write_table``."""

    params = [["pandas", "pandas-rolling", "rcfast"], SIZES, ["sparse", "dense"]]
    param_names = ["tool", "rows", "mode"]
    timeout = 600

    def setup(self, tool, rows, mode):
        self.src = str(reviews_parquet(rows))
        self.dir = Path(tempfile.mkdtemp(prefix="rcfast-asv-weekly-"))
        self.flags = ["--dense"] if mode == "dense" else []
        if tool == "rcfast":  # warm the JIT cache and the page cache
            self._rcfast()

    def teardown(self, tool, rows, mode):
        shutil.rmtree(self.dir, ignore_errors=True)

    def _rcfast(self):
        from rcfast.weekly import main

        if main([self.src, "-o", str(self.dir / "panel.parquet"), "--quiet", *self.flags]):
            raise RuntimeError("rcfast.weekly failed")

    def time_weekly(self, tool, rows, mode):
        if tool == "rcfast":
            self._rcfast()
        else:
            from rcfast.baselines import TOOLS

            table = TOOLS[tool](self.src, dense=mode == "dense")
            pq.write_table(table, self.dir / "panel.parquet")

    def peakmem_weekly(self, tool, rows, mode):
        self.time_weekly(tool, rows, mode)
