"""The weekly step: review rows -> the weekly per-product panel (docs/spec-weekly.md).

Modules: :mod:`~rcfast.weekly.api` (the Python API), :mod:`~rcfast.weekly.cli` (``python -m
rcfast.weekly``), :mod:`~rcfast.weekly.read` (input), :mod:`~rcfast.weekly.write` (output),
:mod:`~rcfast.weekly.summary`, :mod:`~rcfast.weekly.distributed` (Dask).
"""

from rcfast.weekly.api import weekly_panel
from rcfast.weekly.cli import main
from rcfast.weekly.write import SUMMARY_KEY

__all__ = ["SUMMARY_KEY", "main", "weekly_panel"]
