"""asv benchmarks of the synthetic data generator (rcfast.synth)."""

import shutil
import tempfile
from pathlib import Path

from rcfast import synth

from ._data import rows as _rows


class Generate:
    """Rows per second of the generator itself and of its Parquet and JSONL writers."""

    rows = _rows(1_000_000)
    timeout = 300

    def setup(self):
        self.dir = Path(tempfile.mkdtemp(prefix="rcfast-asv-"))
        # the catalog is cached per process; build it outside the timed part
        synth._catalog(self.rows, 0, synth._resolve_products(self.rows, None))

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_generate_batches(self):
        for _ in synth.generate_batches(self.rows, 0):
            pass

    def time_write_parquet_zstd(self):
        synth.write_parquet(self.dir / "r.parquet", self.rows, 0)

    def time_write_jsonl(self):
        synth.write_jsonl(self.dir / "r.jsonl", self.rows // 4, 0)

    def peakmem_write_parquet(self):
        synth.write_parquet(self.dir / "m.parquet", self.rows, 0)
