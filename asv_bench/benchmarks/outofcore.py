"""The weekly step out of core (``--memory-limit``) against the in-memory run, on one input:
time and, in the ``peakmem_`` twins, the peak memory the limit is meant to bound."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ._data import reviews_parquet

ROWS = 1_000_000


class WeeklyOutOfCore:
    """``python -m rcfast.weekly`` in memory, and with ``--memory-limit 1MB --partitions 4``
    (always out of core: four partitions of whole products spilled to scratch)."""

    params = [["in-memory", "out-of-core"]]
    param_names = ["mode"]
    timeout = 600

    def setup(self, mode):
        self.src = str(reviews_parquet(ROWS))
        self.dir = Path(tempfile.mkdtemp(prefix="rcfast-asv-ooc-"))
        self.flags = (["--memory-limit", "1MB", "--partitions", "4", "--tmp-dir",
                       str(self.dir)] if mode == "out-of-core" else [])
        self._run()  # warm the JIT cache and the page cache

    def teardown(self, mode):
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self):
        from rcfast.weekly import main

        if main([self.src, "-o", str(self.dir / "panel.parquet"), "--quiet", *self.flags]):
            raise RuntimeError("rcfast.weekly failed")

    def time_weekly(self, mode):
        self._run()

    def peakmem_weekly(self, mode):
        self._run()
