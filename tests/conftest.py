from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/naive.py

SHARED_REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture
def real_dir() -> Path:
    if not (SHARED_REAL / "musical_instruments_2014_5core_part.csv").exists():
        pytest.skip("../shared/data/real is not beside this checkout")
    return SHARED_REAL

from hypothesis import settings  # noqa: E402

# JIT compilation on first call must not count against hypothesis' per-example deadline.
settings.register_profile("rcfast", deadline=None, print_blob=True)
settings.load_profile("rcfast")


@pytest.fixture(scope="session")
def train_panel(tmp_path_factory) -> Path:
    """A small weekly panel for the training tests (30,000 synthetic reviews of 150 products,
    through rcfast.weekly), made once per session; tests only read it."""
    from rcfast import synth
    from rcfast.weekly import main as weekly_main

    d = tmp_path_factory.mktemp("train-panel")
    synth.write_parquet(d / "reviews.parquet", 30_000, seed=3, n_products=150)
    assert weekly_main([str(d / "reviews.parquet"), "-o", str(d / "panel.parquet"),
                        "--quiet"]) == 0
    return d / "panel.parquet"
