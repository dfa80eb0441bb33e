"""The global forecasting model: a small Transformer encoder with a negative-binomial head.

One model for all products. The per-week features of :func:`rcfast.nn.data.window_features`
(the count divided by the window's DeepAR scale, log1p count, rating, "reviewed yet" and "future"
flags, week-of-year sin/cos, product age) become tokens: the L history weeks in patches of
``patch_len`` weeks (PatchTST-style: 52 weeks -> 13 tokens, which makes the encoder ~4x cheaper
than a token per week and lets each token see a month), and each of the H forecast weeks one
token of its own, carrying no count. Static inputs (log scale, log age at the origin)
are added to every token. The encoder is bidirectional: the forecast tokens read the whole
history, and the output at each forecast token gives that week's NB mean and dispersion:

    mu    = scale * softplus(a)                 (DeepAR: the net predicts in scaled units)
    alpha = softplus(b) / sqrt(scale) + floor   (var = mu + alpha * mu^2)

The head and the likelihood run in float32 whatever the precision of the encoder (bf16 / fp16
under DeepSpeed).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig
from .windows import N_STATIC_FEATURES, N_STEP_FEATURES


class Block(nn.Module):
    """Pre-norm Transformer encoder layer: ``x + drop(attn(ln(x)))``, then
    ``x + drop(ff(ln(x)))``, attention by two batched matmuls and a softmax.

    Why not ``nn.TransformerEncoderLayer``: on CPU its dropout on the attention weights and on
    the feed-forward hidden layer draws one random number per element, a third of a training
    step at this model's size, and its mask checks add a dozen small ops per layer. Dropout
    here acts on the two residual branches only (the same regularizer DeepAR-style models and
    GPT-2 rely on). Why not ``F.scaled_dot_product_attention``: with 17 tokens its CPU flash
    kernel's backward in bf16 was slower than the whole layer it would replace."""

    def __init__(self, d: int, n_heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, d_ff), nn.Linear(d_ff, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.n_heads, d // self.n_heads).unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, heads, T, dh]
        w = torch.softmax((q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5), dim=-1)
        a = w @ v
        a = self.proj(a.transpose(1, 2).reshape(B, T, d))
        x = x + F.dropout(a, self.dropout, self.training)
        f = self.ff2(F.gelu(self.ff1(self.ln2(x))))
        return x + F.dropout(f, self.dropout, self.training)


class ForecastModel(nn.Module):
    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        self.L, self.H = cfg.context_length, cfg.horizon
        d = cfg.d_model
        self.min_dispersion = cfg.min_dispersion
        self.P = cfg.patch_len
        self.n_patches = -(-self.L // self.P)          # ceil: the oldest patch is left-padded
        self.patch_in = nn.Linear(self.P * N_STEP_FEATURES, d)
        self.future_in = nn.Linear(N_STEP_FEATURES, d)
        self.static_in = nn.Linear(N_STATIC_FEATURES, d)
        self.pos = nn.Parameter(torch.zeros(self.n_patches + self.H, d))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(d, cfg.n_heads, cfg.d_ff, cfg.dropout)
                                    for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 2)
        # DLinear-style shortcut: the scaled history straight to each week's NB parameters
        self.skip = nn.Linear(self.L, 2 * self.H) if cfg.linear_skip else None
        if self.skip is not None:
            nn.init.zeros_(self.skip.weight)
            nn.init.zeros_(self.skip.bias)

    def forward(self, steps: torch.Tensor, static: torch.Tensor,
                scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``steps`` [B, L+H, F], ``static`` [B, S], ``scale`` [B] -> (mu, alpha) [B, H] fp32."""
        dt = self.patch_in.weight.dtype
        steps = steps.to(dt)
        B, F_ = steps.shape[0], steps.shape[-1]
        past = steps[:, :self.L]
        pad = self.n_patches * self.P - self.L
        if pad:
            past = F.pad(past, (0, 0, pad, 0))
        tokens = torch.cat([self.patch_in(past.reshape(B, self.n_patches, self.P * F_)),
                            self.future_in(steps[:, self.L:])], dim=1)
        h = tokens + self.static_in(static.to(dt))[:, None, :] + self.pos
        for block in self.blocks:
            h = block(h)
        out = self.head(self.norm(h[:, self.n_patches:])).float()  # [B, H, 2], fp32 from here
        if self.skip is not None:
            out = out + self.skip(steps[:, :self.L, 0]).float().view(B, self.H, 2)
        s = scale.float()[:, None]
        mu = s * F.softplus(out[..., 0]) + 1e-6
        alpha = F.softplus(out[..., 1]) / torch.sqrt(s) + self.min_dispersion
        return mu, alpha


#: Parameter names of torch's encoder layer (the layers of earlier model.pt files) -> Block's.
_TORCH_LAYER_NAMES = {"self_attn.in_proj_weight": "qkv.weight",
                      "self_attn.in_proj_bias": "qkv.bias", "self_attn.out_proj.": "proj.",
                      "linear1.": "ff1.", "linear2.": "ff2.", "norm1.": "ln1.", "norm2.": "ln2."}


def upgrade_state_dict(state: dict) -> dict:
    """Weights saved when the model stacked ``nn.TransformerEncoderLayer`` (keys
    ``encoder.layers.i.*``) renamed for :class:`Block`, which computes the same function
    (both are pre-norm; the parameters map one to one). Other state dicts pass unchanged."""
    out = {}
    for key, v in state.items():
        if key.startswith("encoder.layers."):
            i, rest = key[len("encoder.layers."):].split(".", 1)
            for old, new in _TORCH_LAYER_NAMES.items():
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    break
            key = f"blocks.{i}.{rest}"
        out[key] = v
    return out


def nb_nll(y: torch.Tensor, mu: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of counts ``y`` under NB(mean mu, dispersion alpha), fp32,
    elementwise. var = mu + alpha mu^2; r = 1/alpha."""
    y, mu, alpha = y.float(), mu.float(), alpha.float()
    r = 1.0 / alpha
    log_p = (torch.lgamma(y + r) - torch.lgamma(r) - torch.lgamma(y + 1.0)
             + r * (torch.log(r) - torch.log(r + mu))
             + y * (torch.log(mu) - torch.log(r + mu)))
    return -log_p


def nb_sample(mu: torch.Tensor, alpha: torch.Tensor, n: int,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` draws per element, [n, *mu.shape], via the Gamma-Poisson mixture."""
    r = (1.0 / alpha).double()
    shape = (n,) + tuple(mu.shape)
    # Gamma(r, scale=mu/r) by the torch._standard_gamma of r, then Poisson
    g = torch._standard_gamma(r.expand(shape).contiguous()) * (mu.double() / r)
    return torch.poisson(g, generator=generator).float()


def nb_quantiles(mu: torch.Tensor, alpha: torch.Tensor, qs: list[float],
                 budget: int = 1 << 24) -> torch.Tensor:
    """Exact NB quantiles from the CDF: the smallest k with P(Y <= k) >= q. Returns
    [len(qs), *mu.shape] float32. Elements are processed in chunks of at most ``budget``
    (element x count) cells, so a few huge means do not blow up memory."""
    shape = mu.shape
    mu = mu.detach().double().flatten().cpu()
    alpha = alpha.detach().double().flatten().cpu()
    r = 1.0 / alpha
    sd = torch.sqrt(mu + alpha * mu * mu)
    kmax = torch.ceil(mu + 10 * sd + 10).long()
    order = torch.argsort(kmax)
    out = torch.empty(len(qs), mu.numel(), dtype=torch.float32)
    qt = torch.tensor(qs, dtype=torch.float64)
    i, n = 0, mu.numel()
    while i < n:
        km = int(kmax[order[min(n - 1, i)]])
        j = i + max(1, budget // max(km, 1))
        while j > i + 1 and int(kmax[order[min(n, j) - 1]]) * (j - i) > budget:
            j = i + (j - i) // 2
        j = min(j, n)
        sel = order[i:j]
        K = int(kmax[sel].max())
        k = torch.arange(K + 1, dtype=torch.float64)[:, None]
        m, rr = mu[sel][None, :], r[sel][None, :]
        logp = (torch.lgamma(k + rr) - torch.lgamma(rr) - torch.lgamma(k + 1)
                + rr * (torch.log(rr) - torch.log(rr + m)) + k * (torch.log(m) - torch.log(rr + m)))
        cdf = torch.cumsum(torch.exp(logp), dim=0)               # [K+1, n_sel]
        out[:, sel] = (cdf[None, :, :] < qt[:, None, None]).sum(1).clamp(max=K).float()
        i = j
    return out.reshape(len(qs), *shape)


def lr_lambda(cfg: TrainConfig):
    """Linear warm-up then cosine decay to min_lr_ratio, as a LambdaLR multiplier."""
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / max(cfg.warmup_steps, 1)
        prog = min(1.0, (step - cfg.warmup_steps) / max(cfg.max_steps - cfg.warmup_steps, 1))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * prog))
    return f
