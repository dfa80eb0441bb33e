"""rcfast's speed-up over pandas, Polars and DuckDB, measured inside one benchmark run.

Absolute timings on a shared machine move with its load (the same commit has moved by 57 %
between two runs); a ratio of two tools timed back to back in the same process moves far less,
because a busy period slows both. Each ``track_speedup`` runs ``PAIRS`` alternating pairs
(peer, rcfast) on the same input and returns ``median(peer s) / median(rcfast s)``: higher is
better, 1.0 means equal speed. These are the dashboard's key graphs and the inputs of the
regression gate (``python -m rcfast.bench asv compare``).

The peers' versions are pinned in ``constraints/bench.txt``; ``python -m rcfast.bench asv run``
refuses to record results under other versions, so a jump on the graph is rcfast's, not a
library upgrade's.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ._data import reviews_parquet, rows, smoke

#: Alternating (peer, rcfast) pairs per measurement.
PAIRS = 5
PEERS = ["pandas", "polars", "duckdb"]


def _median_ratio(peer, ours, pairs: int) -> float:
    tp, tr = [], []
    for _ in range(pairs):
        t0 = time.perf_counter()
        peer()
        t1 = time.perf_counter()
        ours()
        t2 = time.perf_counter()
        tp.append(t1 - t0)
        tr.append(t2 - t1)
    return statistics.median(tp) / statistics.median(tr)


class _Speedup:
    """What every speed-up benchmark shares: parameters (peer, input rows), the time limit and
    the unit. A ``track_`` benchmark's value is whatever one call returns (here the median of
    ``PAIRS`` pairs), so asv's ``rounds``, ``repeat`` and ``number`` do not apply to it."""

    param_names = ["peer", "rows"]
    timeout = 900
    unit = "x"


class WeeklySpeedup(_Speedup):
    """The weekly step (read Parquet, sparse panel, write Parquet): peer s / rcfast s."""

    params = [PEERS, [1_000_000]]

    def setup(self, peer, rows):
        __import__(peer)  # a missing peer fails here, visibly, not as a ratio
        self.src = str(reviews_parquet(rows))
        self.dir = Path(tempfile.mkdtemp(prefix="rcfast-asv-ratio-"))
        self._rcfast()  # Numba's cache and the page cache, outside the timed pairs

    def teardown(self, peer, rows):
        shutil.rmtree(self.dir, ignore_errors=True)

    def _rcfast(self):
        from rcfast.weekly import main

        if main([self.src, "-o", str(self.dir / "rcfast.parquet"), "--quiet"]):
            raise RuntimeError("rcfast.weekly failed")

    def track_speedup(self, peer, rows):
        import pyarrow.parquet as pq

        from rcfast.baselines import TOOLS

        def run_peer():
            pq.write_table(TOOLS[peer](self.src), self.dir / "peer.parquet")

        return _median_ratio(run_peer, self._rcfast, 1 if smoke() else PAIRS)

    track_speedup.unit = "x"


class CombineSpeedup(_Speedup):
    """The combine step (Amazon-2023 JSONL.gz in, Parquet out): peer s / rcfast s."""

    params = [PEERS, [200_000]]

    def setup_cache(self):
        from rcfast.synth import write_jsonl

        d = tempfile.mkdtemp(prefix="rcfast-asv-ratio-combine-")
        srcs = {}
        for n in self.params[1]:
            srcs[n] = os.path.join(d, f"r{n}", "Electronics.jsonl.gz")
            os.makedirs(os.path.dirname(srcs[n]))
            write_jsonl(srcs[n], rows(n), 0)
        return srcs

    def setup(self, srcs, peer, rows):
        __import__(peer)
        from rcfast.bench.combine import RUNNERS

        self.runners = RUNNERS
        self.src = srcs[rows]
        self.out = tempfile.mkdtemp(prefix="rcfast-asv-ratio-out-")
        self._run("rcfast")  # the compiled scanner and the page cache, outside the timed pairs

    def teardown(self, srcs, peer, rows):
        shutil.rmtree(self.out, ignore_errors=True)

    def _run(self, tool):
        out = os.path.join(self.out, tool)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        self.runners[tool](self.src, out)

    def track_speedup(self, srcs, peer, rows):
        return _median_ratio(lambda: self._run(peer), lambda: self._run("rcfast"),
                             1 if smoke() else PAIRS)

    track_speedup.unit = "x"
