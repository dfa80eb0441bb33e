"""rcfast.nn: the forecasting model and its data path (needs the ``train`` extra: torch).

* :mod:`rcfast.nn.config`  -- ``TrainConfig``, the documented dataclass (YAML/JSON + overrides)
* :mod:`rcfast.nn.data`    -- the data path (re-exports the three below):
  :mod:`rcfast.nn.panel` (panel -> values/offsets store), :mod:`rcfast.nn.sampling` (split,
  bulk origin sampling), :mod:`rcfast.nn.windows` (window gather, features)
* :mod:`rcfast.nn.model`   -- Transformer encoder + negative-binomial head, DeepAR scaling
* :mod:`rcfast.nn.metrics` -- baselines (naive, seasonal naive, MA4/12, zero), MAE/RMSSE/MASE
* :mod:`rcfast.nn.launch`  -- Slurm -> torch.distributed variables, ports, requeue, metrics log
* :mod:`rcfast.nn.trainer` -- one DeepSpeed run: ``setup`` -> ``fit`` -> ``validate`` -> ``export``
* :mod:`rcfast.nn.run_records` -- hparams.json, checkpoints and resume, averaged fp32 weights

Training: ``deepspeed train/run.py`` (a thin entry point over :mod:`rcfast.nn.trainer`);
forecasts and evaluation: ``python -m rcfast.forecast``.
"""
