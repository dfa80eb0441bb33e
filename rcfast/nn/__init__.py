"""rcfast.nn: the forecasting model and its data path (needs the ``train`` extra: torch).

* :mod:`rcfast.nn.config`  -- ``TrainConfig``, the documented dataclass (YAML/JSON + overrides)
* :mod:`rcfast.nn.data`    -- the data path (re-exports the three below):
  :mod:`rcfast.nn.panel` (panel -> values/offsets store), :mod:`rcfast.nn.sampling` (split,
  bulk origin sampling), :mod:`rcfast.nn.windows` (window gather, features)
* :mod:`rcfast.nn.model`   -- Transformer encoder + negative-binomial head, DeepAR scaling
* :mod:`rcfast.nn.metrics` -- baselines (naive, seasonal naive, MA4/12, zero), MAE/RMSSE/MASE
* :mod:`rcfast.nn.launch`  -- Slurm -> torch.distributed variables, run records

Training: ``train/run.py``; forecasts and evaluation: ``python -m rcfast.forecast``.
"""
