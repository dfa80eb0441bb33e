"""The training data path: the sparse weekly panel as contiguous tensors, windows by gather.

The panel of ``python -m rcfast.weekly`` has one row per (product, week with reviews). Here it is
loaded once and rebuilt densely, product after product, into one ``values`` tensor
(``[rows, channels]``, float32; weeks without reviews are zero rows) plus ``offsets``
(``[products + 1]``): product ``p`` owns rows ``offsets[p] : offsets[p+1]``, which hold the weeks
``store_start[p] ... end_week``. A batch of windows is then one index computation and one gather:

    t     = origin[:, None] + arange(-L, H)            # [B, L+H] absolute weeks
    idx   = offsets[p][:, None] + t - store_start[p]    # rows of `values`
    x     = values[idx] * (t >= first_week[p])          # zeros before a product's first review

No Python runs per window, and on a GPU the whole thing (sampling included) stays on the device.
Forecast origins are drawn in bulk: a product by inverse CDF over per-product weights,
then a uniform origin inside that product's admissible range; the batch of step ``s`` is a pure
function of ``(seed, s)``, which makes resuming and splitting a global batch across ranks exact.

Weeks are integers: the Monday-start week indices of :mod:`rcfast.kernels.time` (the one place
for week and date arithmetic; week 0 starts on Monday 1969-12-29).
A forecast *origin* ``o`` means: history is weeks ``o-L ... o-1``, targets weeks ``o ... o+H-1``.

The path lives in three modules, all re-exported here: :mod:`rcfast.nn.panel` (reading the panel,
the dense store), :mod:`rcfast.nn.sampling` (the temporal split, bulk origin sampling) and
:mod:`rcfast.nn.windows` (window gather and model features).
"""

from __future__ import annotations

from .panel import (CH_COUNT, CH_RATING, N_CHANNELS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Panel,
                    PanelError, PanelTensors, date_of_week, panel_from_arrays, read_panel,
                    week_of_date)
from .sampling import OriginSampler, Split, focus_windows, make_split
from .windows import (N_STATIC_FEATURES, N_STEP_FEATURES, PerSampleWindowDataset,
                      gather_windows, make_batch, window_features)

__all__ = ["CH_COUNT", "CH_RATING", "N_CHANNELS", "N_STATIC_FEATURES", "N_STEP_FEATURES",
           "OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "OriginSampler", "Panel", "PanelError",
           "PanelTensors", "PerSampleWindowDataset", "Split", "date_of_week", "focus_windows",
           "gather_windows", "make_batch", "make_split", "panel_from_arrays", "read_panel",
           "week_of_date", "window_features"]
