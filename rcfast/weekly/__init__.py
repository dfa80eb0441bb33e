"""The weekly step: review rows -> the weekly per-product panel (docs/spec-weekly.md).

Modules, in the order data flows: :mod:`~rcfast.weekly.read` (find inputs, map columns, read
batches), :mod:`~rcfast.weekly.convert` (check and convert a batch's columns),
:mod:`~rcfast.weekly.products` (product ids -> codes), :mod:`~rcfast.weekly.load` (batches ->
:class:`~rcfast.weekly.panel.Columns`, rows set aside), :mod:`~rcfast.weekly.panel` (the kernels'
caller: the panel itself), :mod:`~rcfast.weekly.write` and :mod:`~rcfast.weekly.summary`
(output); :mod:`~rcfast.weekly.spill` and :mod:`~rcfast.weekly.partitions` (out of core),
:mod:`~rcfast.weekly.distributed` (Dask); :mod:`~rcfast.weekly.run` (one job),
:mod:`~rcfast.weekly.api` (the Python API) and :mod:`~rcfast.weekly.cli` (``python -m
rcfast.weekly``) at the edge.
"""

from rcfast.weekly.api import weekly_panel
from rcfast.weekly.cli import main
from rcfast.weekly.write import SUMMARY_KEY

__all__ = ["SUMMARY_KEY", "main", "weekly_panel"]
