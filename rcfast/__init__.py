"""rcfast: weekly per-product panels from huge review dumps, fast."""

import os as _os

# Numba's OpenMP threads spin between parallel regions by default; with any other busy thread
# on the cores (our own Parquet writer, a neighbour's job on a shared node) every region then
# waits for a scheduler tick, ~10 ms. Passive waiting costs microseconds. Set it yourself to
# override; it must be set before the first parallel kernel runs.
_os.environ.setdefault("OMP_WAIT_POLICY", "passive")

__version__ = "0.1.0"
SPEC_VERSION = "1"

__all__ = ["SPEC_VERSION", "__version__"]
