"""GPU check: fp16 ZeRO-2 training on generated data, in one command, in under 5 minutes.

    python train/gpu_check.py                 # one GPU, no network, no launcher needed
    python train/gpu_check.py --seconds 60    # shorter

What it does: generates a weekly panel in memory (intermittent negative-binomial counts with
launches, trends and yearly seasonality; 60,000 products x 260 weeks by default), puts it on the
GPU as values + offsets, and trains the forecaster with DeepSpeed ZeRO-2 and fp16 dynamic loss
scaling (``train/configs/zero2_fp16.json``) for ``--seconds`` of steps, sampling origins and
building every batch on the GPU. It then checks and prints:

* the loss falls (mean of the last 10 % of steps below 0.9 x the mean of the first 20 steps;
  the model reaches its floor within a few hundred steps, so the first 10 % of a long run
  is already trained and would make a useless yardstick);
* the loss scale is not stuck: no more than 2 % of the steps after the first 50 were skipped for
  overflow, and the final scale is above the configured minimum;
* windows/s, the share of the step time spent building batches (sampling + gather + features,
  timed with CUDA synchronisation), and the GPU memory used (peak allocated and reserved).

Exit status 0 when the checks pass, 1 when one fails, 2 without a GPU. A JSON summary is the
last line of the output (``--json FILE`` writes it too).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def generate_panel(n_products: int, n_weeks: int, seed: int = 0):
    """Sparse weekly counts: NB(mean = level x trend x season, dispersion 0.5) after a launch."""
    from rcfast.nn.data import panel_from_arrays

    rng = np.random.default_rng(seed)
    end = 2800  # a week index (2023)
    weeks = np.arange(end - n_weeks + 1, end + 1)
    launch = rng.integers(0, n_weeks - 20, n_products)
    level = np.exp(rng.normal(-1.0, 1.5, n_products))              # heavy-tailed popularity
    trend = rng.normal(0, 0.01, n_products)
    phase = rng.uniform(0, 2 * np.pi, n_products)
    t = np.arange(n_weeks)[None, :]
    mean = (level[:, None] * np.exp(trend[:, None] * (t - launch[:, None]).clip(0))
            * (1 + 0.4 * np.sin(2 * np.pi * t / 52.18 + phase[:, None])))
    mean = np.where(t >= launch[:, None], mean.clip(max=500), 0.0)
    r = 2.0
    counts = rng.poisson(rng.gamma(r, mean / r))
    counts[np.arange(n_products), launch] = np.maximum(counts[np.arange(n_products), launch], 1)
    code, col = np.nonzero(counts)
    ids = np.array([f"P{i:07d}" for i in range(n_products)], dtype=object)
    return panel_from_arrays(ids, code, weeks[col], counts[code, col].astype(np.float64),
                             rng.uniform(1, 5, len(code)), source="generated")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=150.0, help="training time budget")
    p.add_argument("--max-steps", type=int, default=20_000)
    p.add_argument("--products", type=int, default=60_000)
    p.add_argument("--weeks", type=int, default=260)
    p.add_argument("--micro-batch", type=int, default=2048)
    p.add_argument("--deepspeed_config", default=str(REPO / "train/configs/zero2_fp16.json"))
    p.add_argument("--set", action="append", default=["d_model=128", "n_heads=8", "d_ff=256",
                                                       "n_layers=3"],
                   help="TrainConfig overrides (default: a GPU-sized model)")
    p.add_argument("--json", help="also write the summary here")
    a = p.parse_args(argv)

    import torch
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible; this check needs one", file=sys.stderr)
        return 2
    os.environ.setdefault("DS_ACCELERATOR", "cuda")
    from rcfast.nn.launch import slurm_to_torch_env
    slurm_to_torch_env()
    import deepspeed

    from rcfast.nn.config import TrainConfig
    from rcfast.nn.data import OriginSampler, make_batch, make_split
    from rcfast.nn.model import ForecastModel, lr_lambda, nb_nll

    t_start = time.perf_counter()
    cfg = TrainConfig().override(a.set + [f"max_steps={a.max_steps}", "warmup_steps=100"])
    panel = generate_panel(a.products, a.weeks)
    t_gen = time.perf_counter() - t_start
    ds_config = json.loads(Path(a.deepspeed_config).read_text())
    ds_config["train_micro_batch_size_per_gpu"] = a.micro_batch
    ds_config["gradient_accumulation_steps"] = 1
    assert ds_config.get("fp16", {}).get("enabled"), "gpu_check is an fp16 check"
    deepspeed.init_distributed()
    torch.manual_seed(0)
    model = ForecastModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    engine, opt, _, sched = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=sched,
                                                 config=ds_config)
    dev = engine.device
    L, H = cfg.context_length, cfg.horizon
    split = make_split(panel.end_week, H)
    pt = panel.tensors(dev)
    sampler = OriginSampler(panel, context_length=L, horizon=H,
                            last_origin=split.train_last_origin, seed=0, device=dev)
    B = a.micro_batch
    losses, scales, build_s, step_s = [], [], 0.0, 0.0
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    step = 0
    while step < a.max_steps and time.perf_counter() - t0 < a.seconds:
        torch.cuda.synchronize()
        ts = time.perf_counter()
        b = make_batch(pt, *sampler.sample(step, B), L, H)
        torch.cuda.synchronize()
        tb = time.perf_counter()
        mu, alpha = engine(b["steps"], b["static"], b["scale"])
        loss = nb_nll(b["target"], mu, alpha).mean()
        engine.backward(loss)
        engine.step()
        losses.append(float(loss.detach()))  # syncs
        te = time.perf_counter()
        if step >= 5:  # leave out warm-up (kernel selection, allocator)
            build_s += tb - ts
            step_s += te - ts
        scales.append(float(getattr(opt, "cur_scale", getattr(opt, "loss_scale", 0.0))))
        step += 1
        if step % 200 == 0:
            print(f"step {step}: loss {np.mean(losses[-200:]):.4f}, scale {scales[-1]:.0f}, "
                  f"skipped {engine.skipped_steps}", flush=True)
    train_s = time.perf_counter() - t0
    n = len(losses)
    k = max(1, n // 10)
    first, last = float(np.mean(losses[:min(20, n)])), float(np.mean(losses[-k:]))
    # a skipped step leaves the scale halved; count overflows after the warm-up from the scales
    halvings = sum(1 for i in range(51, n) if scales[i] < scales[i - 1])
    min_scale = float(ds_config["fp16"].get("min_loss_scale", 1))
    timed = max(n - 5, 1)
    summary = {
        "device": torch.cuda.get_device_name(0), "steps": n, "micro_batch": B,
        "train_seconds": round(train_s, 1), "data_gen_seconds": round(t_gen, 1),
        "windows_per_s": round(timed * B / step_s, 1) if step_s else None,
        "batch_build_share": round(build_s / step_s, 4) if step_s else None,
        "loss_first_20_steps": round(first, 5), "loss_last_10pct": round(last, 5),
        "skipped_steps_total": int(engine.skipped_steps),
        "overflow_halvings_after_step_50": halvings,
        "final_loss_scale": scales[-1] if scales else None,
        "gpu_mem_peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
        "gpu_mem_peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 3),
        # ZeRO-3 partitions parameters: numel() then counts the local shard, ds_numel the whole
        "params": sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters()),
        "zero_stage": ds_config["zero_optimization"]["stage"],
    }
    checks = {
        "loss_falls": last < 0.9 * first,
        "loss_scale_not_stuck": n > 60 and halvings <= 0.02 * (n - 50)
                                and (scales[-1] if scales else 0) > min_scale,
        "under_5_minutes": time.perf_counter() - t_start < 300,
    }
    summary["checks"] = checks
    ok = all(checks.values())
    print(f"windows/s {summary['windows_per_s']}, batch building {summary['batch_build_share']:.1%}"
          f" of step time, GPU memory peak {summary['gpu_mem_peak_allocated_gib']} GiB allocated"
          f" / {summary['gpu_mem_peak_reserved_gib']} GiB reserved")
    print(("PASS" if ok else "FAIL") + ": " + ", ".join(f"{k}={v}" for k, v in checks.items()))
    line = json.dumps(summary)
    print(line)
    if a.json:
        Path(a.json).write_text(line + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
