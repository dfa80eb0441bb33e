"""The one configuration of the forecasting model and its training: a documented dataclass.

Load it from YAML or JSON with :meth:`TrainConfig.from_file`, override single fields with
``key=value`` strings (``--set lr=3e-4 --set n_layers=2`` on the command line) through
:meth:`TrainConfig.override`. Values are converted to the field's type; an unknown key or a value
of the wrong type raises ``ValueError`` naming it.

Parallelism and precision (ZeRO stage, fp16/bf16, gradient clipping) live in the DeepSpeed JSON
config, not here, except the two batch fields below, which override the DeepSpeed file when set
so that one can keep the global batch equal across world sizes from the command line.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class TrainConfig:
    # ---- task -------------------------------------------------------------------------------
    context_length: int = 52
    """L: weeks of history the model sees before a forecast origin."""
    horizon: int = 4
    """H: weeks forecast after the origin (the origin week itself is the first)."""
    end_week: str = ""
    """Last week of the data as an ISO date (its Monday, or any day of it); "" = the last
    week_start in the panel. The test weeks are the H weeks ending here, the validation weeks
    the H weeks before them, and training targets end before the validation weeks."""
    head_min_reviews: int = 26
    """A product is in the evaluation's "head" with at least this many reviews in the 52 weeks
    before the forecast origin."""
    refit: bool = False
    """Train on the validation weeks too: training targets then end just before the test weeks
    (the usual last step once a configuration has been chosen on validation). The validation
    metrics the run logs are then in-sample, good for monitoring only."""

    # ---- model ------------------------------------------------------------------------------
    patch_len: int = 4
    """History weeks per input token (the oldest patch is zero-padded when it does not divide
    context_length)."""
    d_model: int = 32
    """Width of the Transformer encoder."""
    n_layers: int = 2
    """Transformer encoder layers."""
    n_heads: int = 4
    """Attention heads (must divide d_model)."""
    d_ff: int = 64
    """Hidden width of each layer's feed-forward block."""
    dropout: float = 0.1
    """Dropout in the encoder (training only)."""
    linear_skip: bool = False
    """Add a linear map from the scaled 52-week count history straight to each forecast week's
    NB parameters (DLinear-style) beside the encoder."""
    min_dispersion: float = 1e-4
    """Floor of the negative-binomial dispersion alpha (var = mu + alpha*mu^2)."""

    # ---- optimisation -----------------------------------------------------------------------
    lr: float = 1e-3
    """Peak learning rate of AdamW."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.99
    """AdamW beta2."""
    warmup_steps: int = 100
    """Linear warm-up steps, then cosine decay to min_lr_ratio*lr at max_steps."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of lr."""
    max_steps: int = 2000
    """Optimizer steps in the whole run (``--max-steps`` overrides)."""
    micro_batch_size: int = 0
    """Windows per rank per micro-step; 0 = take train_micro_batch_size_per_gpu of the
    DeepSpeed config."""
    grad_accum: int = 0
    """Micro-steps per optimizer step; 0 = take gradient_accumulation_steps of the DeepSpeed
    config. Global batch = micro_batch_size * grad_accum * world size."""

    # ---- sampling ---------------------------------------------------------------------------
    seed: int = 0
    """Seed of the origin sampler (batch of step s is a function of (seed, s) only) and of
    model initialisation."""
    sample_power: float = 1.0
    """Product p is drawn with weight n_origins(p) * (1 + mean weekly reviews of p)^power:
    0 = every training window equally likely; 1 = DeepAR-style, busy products more often."""
    focus_share: float = 0.0
    """Share of each batch drawn uniformly from the *focus windows*: training windows whose 52
    weeks before the origin hold at least head_min_reviews reviews, the training counterpart
    of the evaluation's head (about 1 % of the demo panel's windows, which the weighted draw
    above gives ~3 % of a batch). 0 = none."""
    min_history: int = 1
    """Training origins start this many weeks after a product's first review week."""

    # ---- bookkeeping ------------------------------------------------------------------------
    log_every: int = 10
    """Steps between metric lines in RUN_DIR/metrics.jsonl."""
    eval_every: int = 500
    """Steps between validation passes (0 = only at the end)."""
    ckpt_every: int = 500
    """Steps between checkpoints (0 = only at the end)."""
    eval_batch_size: int = 4096
    """Windows per forward pass when validating and forecasting."""
    n_samples: int = 200
    """Samples drawn from the predictive distribution for the forecast quantiles."""
    quantiles: list[float] = field(default_factory=lambda: [0.1, 0.5, 0.9])
    """Quantiles written beside the mean forecast."""
    point_forecast: str = "mean"
    """Which forecast the evaluation scores as "model": "mean" or "median" of the NB."""
    average_last: int = 1
    """model.pt (what the forecasts and the evaluation use) holds the uniform average of the
    fp32 weights of the last ``average_last`` checkpoints of the run (SWA-style averaging along
    the tail of the cosine schedule; 1 = the final weights). Choose it on the validation weeks:
    the run logs val metrics of both the final and the averaged weights."""
    data_placement: str = "auto"
    """Where the panel's tensors live: "device" (batches gathered on the accelerator), "host"
    (streaming: gathered in pinned host memory, each batch copied per step) or "auto" (device
    when the data take at most half of the accelerator's free memory; rcfast.nn.hardware)."""
    debug_kill_at_step: int = 0
    """Test hook: rank 0 kills its process with SIGKILL right after this step (0 = never)."""

    # ------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"bad config: {msg}")
        need(self.context_length >= 2, f"context_length must be >= 2, got {self.context_length}")
        need(self.horizon >= 1, f"horizon must be >= 1, got {self.horizon}")
        need(self.d_model >= 1 and self.n_heads >= 1 and self.d_model % self.n_heads == 0,
             f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        need(self.n_layers >= 1, "n_layers must be >= 1")
        need(1 <= self.patch_len <= self.context_length,
             f"patch_len must be in [1, context_length], got {self.patch_len}")
        need(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}")
        need(self.micro_batch_size >= 0 and self.grad_accum >= 0,
             "micro_batch_size and grad_accum must be >= 0")
        need(self.min_history >= 1, "min_history must be >= 1")
        need(0.0 <= self.focus_share <= 1.0,
             f"focus_share must be in [0, 1], got {self.focus_share}")
        need(self.average_last >= 1, f"average_last must be >= 1, got {self.average_last}")
        need(self.point_forecast in ("mean", "median"),
             f"point_forecast must be 'mean' or 'median', got {self.point_forecast!r}")
        need(all(0 < q < 1 for q in self.quantiles), "quantiles must lie in (0, 1)")
        need(self.data_placement in ("auto", "device", "host"),
             f"data_placement must be auto, device or host, got {self.data_placement!r}")

    # ---- loading ------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        unknown = sorted(set(d) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown}; known: {cls.field_names()}")
        cfg = cls()
        for k, v in d.items():
            setattr(cfg, k, _coerce(k, v, cls.__dataclass_fields__[k]))
        cfg.validate()
        return cfg

    @classmethod
    def from_file(cls, path: str | pathlib.Path) -> TrainConfig:
        p = pathlib.Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        text = p.read_text()
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"config file {p} must hold a mapping, got {type(data).__name__}")
        return cls.from_dict(data)

    def override(self, assignments: list[str] | None) -> TrainConfig:
        """Return a copy with ``key=value`` strings applied (values parsed as YAML/JSON)."""
        d = self.to_dict()
        for a in assignments or []:
            if "=" not in a:
                raise ValueError(f"--set expects KEY=VALUE, got {a!r}")
            k, v = a.split("=", 1)
            k = k.strip()
            if k not in d:
                raise ValueError(f"--set: unknown config key {k!r}; known: {self.field_names()}")
            d[k] = _parse_scalar(v)
        return type(self).from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _parse_scalar(text: str) -> Any:
    try:
        import yaml
        return yaml.safe_load(text)
    except Exception:
        try:
            return json.loads(text)
        except Exception:
            return text


def _coerce(name: str, value: Any, f: dataclasses.Field) -> Any:
    typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if typ == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if typ == "float":
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if typ == "bool":
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            if not isinstance(value, (bool, int)):
                raise TypeError
            return bool(value)
        if typ == "str":
            return "" if value is None else str(value)
        if typ.startswith("list"):
            if isinstance(value, str):
                value = [float(x) for x in value.split(",") if x.strip()]
            return [float(x) for x in value]
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise ValueError(f"config key {name!r} expects {typ}, got {value!r}")
