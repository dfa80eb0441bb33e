"""``python -m rcfast.weekly``."""

import os

# The command never calls BLAS, but OpenBLAS starts a thread per core when numpy is imported,
# and they spin: ~0.1 CPU-s of a 1M-row run on a 2-core machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from rcfast._cli import exit_cli  # noqa: E402
from rcfast.weekly.cli import main  # noqa: E402

exit_cli(main())
