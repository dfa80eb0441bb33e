"""asv benchmarks of the ingest step's kernels: the JSON-lines scanner and the newline count.

Each against the plain way to do the same (``json.loads`` per line and a field lookup; CPython's
``bytes.count`` and numpy's compare-and-count) on the same generated Amazon-2023-style lines,
in blocks of the size ``rcfast.combine`` reads (16 MiB). ``setup`` generates the input once
(fixed seed) and loads the compiled kernels, untimed.
"""

import gzip
import json
import os
import tempfile

import numpy as np

ROWS = 50_000
BLOCK = 16 << 20
FIELDS = ("rating", "text", "asin", "parent_asin", "user_id", "timestamp", "helpful_vote",
          "verified_purchase")


def _lines() -> bytes:
    from rcfast.synth import write_jsonl

    d = tempfile.mkdtemp(prefix="rcfast-asv-ingest-")
    path = os.path.join(d, "Electronics.jsonl.gz")
    write_jsonl(path, ROWS, 0)
    with gzip.open(path, "rb") as f:
        return f.read()


def _blocks(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        j = len(data) if i + BLOCK >= len(data) else data.rfind(b"\n", i, i + BLOCK) + 1
        out.append(data[i:j])
        i = j
    return out


def _scanner():
    """The scanner ``rcfast.combine`` uses and its key arguments for the Amazon 2023 fields."""
    from rcfast.ingest.pipeline import get_scanner

    try:
        from rcfast.kernels import json_fields as f
    except ImportError:  # commits before the field kinds moved (the backfill runs old code)
        from rcfast.kernels import nojit as f

    kinds = {"rating": f.KIND_FLOAT, "text": f.KIND_TEXT, "timestamp": f.KIND_INT,
             "helpful_vote": f.KIND_INT, "verified_purchase": f.KIND_BOOL}
    names = [n.encode() for n in FIELDS]
    blob = np.frombuffer(b"".join(names), dtype=np.uint8).copy()
    offs = np.cumsum([0] + [len(n) for n in names]).astype(np.int64)
    k = np.array([kinds.get(n, f.KIND_STR) for n in FIELDS], dtype=np.uint8)
    return get_scanner(), (blob, offs, k, *f.key_words(blob, offs))


class ScanJsonLines:
    params = [["python", "rcfast"], [ROWS]]
    param_names = ["tool", "rows"]

    def setup(self, tool, rows):
        self.blocks = _blocks(_lines())
        if tool == "rcfast":
            self.scan, self.args = _scanner()
            self.arrays = [np.frombuffer(b, dtype=np.uint8) for b in self.blocks]
            self.scan(self.arrays[0], *self.args, -1)  # loads the kernel, untimed

    def _run(self, tool):
        if tool == "rcfast":
            # [0] is n_ok: the backfill runs commits whose scanner returned a plain tuple
            return sum(int(self.scan(a, *self.args, -1)[0]) for a in self.arrays)
        n = 0
        for b in self.blocks:
            for line in b.splitlines():
                obj = json.loads(line)
                row = [obj.get(f) for f in FIELDS]
                row[1] = len(row[1]) if row[1] is not None else None
                n += 1
        return n

    def time_scan(self, tool, rows):
        self._run(tool)

    def peakmem_scan(self, tool, rows):
        self._run(tool)


class CountNewlines:
    params = [["bytes.count", "numpy", "rcfast"], [ROWS]]
    param_names = ["tool", "rows"]

    def setup(self, tool, rows):
        self.blocks = _blocks(_lines())
        self.arrays = [np.frombuffer(b, dtype=np.uint8) for b in self.blocks]
        if tool == "rcfast":
            from rcfast.kernels.ingest_json import count_newlines

            try:  # older commits compiled it ahead of time, when they could
                from rcfast.kernels import aot

                mod = aot.load()
                count_newlines = mod.count_newlines if mod is not None else count_newlines
            except ImportError:
                pass
            self.count = count_newlines
            self.count(self.arrays[0])

    def _run(self, tool):
        if tool == "bytes.count":
            return sum(b.count(b"\n") for b in self.blocks)
        if tool == "numpy":
            return sum(int(np.count_nonzero(a == 10)) for a in self.arrays)
        return sum(int(self.count(a)) for a in self.arrays)

    def time_count(self, tool, rows):
        self._run(tool)

    def peakmem_count(self, tool, rows):
        self._run(tool)
