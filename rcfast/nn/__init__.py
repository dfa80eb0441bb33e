"""rcfast.nn: the forecasting model and its data path (needs the ``train`` extra: torch).

* :mod:`rcfast.nn.config`  -- ``TrainConfig``, the documented dataclass (YAML/JSON + overrides)
* :mod:`rcfast.nn.data`    -- panel -> values/offsets tensors, bulk origin sampling, window gather
* :mod:`rcfast.nn.model`   -- Transformer encoder + negative-binomial head, DeepAR scaling
* :mod:`rcfast.nn.metrics` -- baselines (naive, seasonal naive, MA4/12, zero), MAE/RMSSE/MASE
* :mod:`rcfast.nn.launch`  -- Slurm -> torch.distributed variables, run records

Training: ``train/run.py``; forecasts and evaluation: ``python -m rcfast.forecast``.
"""
