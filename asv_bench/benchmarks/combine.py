"""asv benchmarks of the ingest step (``rcfast.combine``) against Polars, DuckDB, pyarrow, pandas.

Every contender reads the same generated Amazon-2023-style JSONL.gz and writes Parquet with the
same fields (see :mod:`rcfast.bench.combine`, which runs the same functions in separate
processes for the README table).
"""

import os
import shutil
import tempfile

from rcfast.bench.combine import RUNNERS

from ._data import rows as _rows

ROWS = 200_000


class Combine:
    params = [["pandas", "pyarrow", "duckdb", "polars", "rcfast"], [ROWS]]
    param_names = ["tool", "rows"]
    timeout = 600
    number = 1
    repeat = 3

    def setup_cache(self):
        from rcfast.synth import write_jsonl

        d = tempfile.mkdtemp(prefix="rcfast-asv-combine-")
        src = os.path.join(d, "Electronics.jsonl.gz")
        write_jsonl(src, _rows(ROWS), 0)
        return src

    def setup(self, src, tool, rows):
        if tool in ("polars", "duckdb", "pandas"):
            try:
                __import__(tool)
            except ImportError:
                raise NotImplementedError(f"{tool} is not installed") from None
        self.out = tempfile.mkdtemp(prefix="rcfast-asv-out-")
        if tool == "rcfast":
            # warm the Numba scanner (cached on disk) outside the timed part
            RUNNERS["rcfast"](src, self.out)
            shutil.rmtree(self.out)
            os.makedirs(self.out)

    def teardown(self, src, tool, rows):
        shutil.rmtree(self.out, ignore_errors=True)

    def time_combine(self, src, tool, rows):
        shutil.rmtree(self.out, ignore_errors=True)
        os.makedirs(self.out)
        RUNNERS[tool](src, self.out)

    def peakmem_combine(self, src, tool, rows):
        shutil.rmtree(self.out, ignore_errors=True)
        os.makedirs(self.out)
        RUNNERS[tool](src, self.out)

    def track_rows_per_second(self, src, tool, rows):
        import time

        shutil.rmtree(self.out, ignore_errors=True)
        os.makedirs(self.out)
        t0 = time.perf_counter()
        n = RUNNERS[tool](src, self.out)
        return n / (time.perf_counter() - t0)

    track_rows_per_second.unit = "rows/s"

    def track_cpu_seconds(self, src, tool, rows):
        """Process CPU time (all threads, and helper processes such as rcfast's decompression
        helper): on a shared machine with busy cores it decides the wall time."""
        shutil.rmtree(self.out, ignore_errors=True)
        os.makedirs(self.out)
        c0 = os.times()
        RUNNERS[tool](src, self.out)
        c1 = os.times()
        return sum(c1[:4]) - sum(c0[:4])

    track_cpu_seconds.unit = "s"
