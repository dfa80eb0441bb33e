"""Training with DeepSpeed: :func:`setup` -> :func:`fit` -> :func:`export` (``train/run.py``).

* :func:`setup` reads the configs and the panel, joins the process group, builds the engine,
  resumes from the latest checkpoint when asked and writes the run records; it returns a
  :class:`TrainingRun`, the state the other steps share.
* :func:`fit` runs the training loop: bulk-sampled windows, the NB loss, checkpoints, a stop
  request honoured at a step boundary (checkpoint, ``scontrol requeue``, exit status
  ``EXIT_REQUEUE``), :func:`validate` every ``eval_every`` steps and at the end.
* :func:`export` writes the consolidated fp32 weights (the mean of the last ``average_last``
  checkpoints) to ``RUN_DIR/model.pt`` and evaluates them on the test weeks.

torch and deepspeed are imported inside the functions: importing this module stays as light as
``train/run.py --help`` needs.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rcfast.nn.config import TrainConfig
from rcfast.nn.data import (OriginSampler, Panel, PanelTensors, Split, make_batch, make_split,
                            read_panel)
from rcfast.nn.hardware import (apply_precision, choose_data_placement, choose_precision,
                                panel_device_bytes)
from rcfast.nn.launch import (EXIT_REQUEUE, MetricsLog, StopRequest, agree_on_free_port,
                              release_port_file, release_shm_buffer, requeue_job,
                              slurm_to_torch_env)
from rcfast.nn.run_records import (averaged_weights, restore_checkpoint, save_checkpoint,
                                   write_hparams)

__all__ = ["TrainingRun", "device_is_cpu", "export", "fit", "load_configs", "setup",
           "validate"]


@dataclass
class TrainingRun:
    """What :func:`setup` built and :func:`fit`, :func:`validate` and :func:`export` use."""

    args: argparse.Namespace
    """The command line of ``train/run.py`` (``panel``, ``out``, ``precision``, ``no_eval``)."""
    cfg: TrainConfig
    """The training configuration after ``--config``, ``--set`` and ``--max-steps``."""
    stop: StopRequest
    """Set by a SIGUSR1; :func:`fit` honours it at the next step boundary."""
    rank: int
    world: int
    out: Path
    """The run directory."""
    ckpt_dir: Path
    """``RUN_DIR/checkpoints``: DeepSpeed checkpoints, one ``stepNNNNNNNN`` tag each."""
    engine: Any
    """The DeepSpeed engine around the :class:`~rcfast.nn.model.ForecastModel`."""
    optimizer: Any
    scheduler: Any
    panel: Panel
    split: Split
    sampler: OriginSampler
    """Draws the global batch of a step, a pure function of (seed, step), on every rank."""
    pt: PanelTensors
    """The panel's values and offsets, on the device or in host memory (``placement``)."""
    placement: str
    """``"device"`` or ``"host"`` (each batch gathered on the host, then copied)."""
    device: Any
    micro: int
    """Windows per micro-batch and rank."""
    gas: int
    """Gradient accumulation steps."""
    global_batch: int
    """micro x gas x world: windows per optimizer step."""
    start_step: int
    """0, or the step of the checkpoint a ``--resume`` continued from."""
    log: MetricsLog | None = None
    """``metrics.jsonl`` (rank 0 writes, the other ranks' logs are no-ops); :func:`setup` opens
    it after the run records."""


def device_is_cpu() -> bool:
    from deepspeed.accelerator import get_accelerator
    return get_accelerator().device_name() == "cpu"


def load_configs(args: argparse.Namespace) -> tuple[TrainConfig, dict, Path]:
    """The TrainConfig (model + optimisation) and the DeepSpeed JSON, the batch fields of the
    former written into the latter; raises ValueError/FileNotFoundError on bad input."""
    cfg = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    cfg = cfg.override(args.set)
    if args.max_steps is not None:
        cfg = cfg.override([f"max_steps={args.max_steps}"])
    if not args.deepspeed_config:
        raise ValueError("--deepspeed_config is required (see train/configs/)")
    ds_path = Path(args.deepspeed_config)
    if not ds_path.is_file():
        raise FileNotFoundError(f"DeepSpeed config not found: {ds_path}")
    ds_config = json.loads(ds_path.read_text())
    if cfg.micro_batch_size:
        ds_config["train_micro_batch_size_per_gpu"] = cfg.micro_batch_size
    if cfg.grad_accum:
        ds_config["gradient_accumulation_steps"] = cfg.grad_accum
    ds_config.pop("train_batch_size", None)  # derived: micro x accumulation x world
    ds_config.setdefault("steps_per_print", 10**9)
    return cfg, ds_config, ds_path


def _init_distributed() -> tuple[str, int, int]:
    """Join the process group (deepspeed launcher, srun, or a world of one): the launch mode,
    rank and world size."""
    launch_mode = slurm_to_torch_env()
    port_picked = launch_mode == "launcher" and agree_on_free_port()
    import deepspeed
    import torch
    import torch.distributed as dist

    deepspeed.init_distributed()
    rank, world = dist.get_rank(), dist.get_world_size()
    if device_is_cpu():
        # DeepSpeed's CPU all-reduce maps every rank's /dev/shm segment during init and never
        # unlinks it. Past this barrier every rank holds its mappings, so the names can go
        # now: then not even a killed rank leaves its 67 MB behind.
        dist.barrier()
        release_shm_buffer()
    atexit.register(release_shm_buffer)  # a no-op unless the segment appeared later
    if port_picked:  # every rank has joined: the port file has done its job
        dist.barrier()
        if os.environ.get("LOCAL_RANK", "0") == "0":
            release_port_file()
    if not device_is_cpu():  # srun gives each task all GPUs of its node: pick LOCAL_RANK's
        from deepspeed.accelerator import get_accelerator
        get_accelerator().set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if device_is_cpu() and "OMP_NUM_THREADS" not in os.environ:
        # the model's ops are small: on CPU one intra-op thread per rank is fastest (more ranks
        # scale better than more threads, and threads thrash on a shared machine)
        torch.set_num_threads(1)
    return launch_mode, rank, world


def setup(args: argparse.Namespace, stop: StopRequest, source: Path | None = None
          ) -> TrainingRun:
    """Configs, panel, process group, engine, data placement, resume and run records.

    The panel is read before any process group exists, so bad input fails fast on every rank.
    ``source``: the checkout whose git commit ``hparams.json`` records (default: the one
    holding this package).
    """
    cfg, ds_config, ds_path = load_configs(args)
    from deepspeed.accelerator import get_accelerator
    precision, precision_reason = choose_precision(args.precision, ds_config,
                                                   get_accelerator().device_name())
    ds_config = apply_precision(ds_config, precision)

    L, H = cfg.context_length, cfg.horizon
    panel = read_panel(args.panel, end_week=cfg.end_week or None, min_weeks=L + 3 * H)
    split = make_split(panel.end_week, H, refit=cfg.refit)
    sampler_kw = dict(context_length=L, horizon=H, last_origin=split.train_last_origin,
                      min_history=cfg.min_history, power=cfg.sample_power, seed=cfg.seed,
                      focus_share=cfg.focus_share, focus_min_reviews=cfg.head_min_reviews)
    sampler = OriginSampler(panel, **sampler_kw)

    launch_mode, rank, world = _init_distributed()
    import deepspeed
    import torch
    import torch.distributed as dist

    from rcfast.nn.model import ForecastModel, lr_lambda
    out = Path(args.out)
    ckpt_dir = out / "checkpoints"
    if rank == 0:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    dist.barrier()

    # ---- model, optimizer, schedule, engine --------------------------------------------------
    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    model = ForecastModel(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                  weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config)
    device = engine.device
    micro, gas = engine.train_micro_batch_size_per_gpu(), engine.gradient_accumulation_steps()
    need = panel_device_bytes(int(panel.offsets[-1]), panel.n_products,
                              sampler.n_focus_windows)
    free = None
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    placement, placement_reason = choose_data_placement(cfg.data_placement, device.type, need,
                                                        free)
    if placement == "device":
        pt = panel.tensors(device)  # values + offsets on the device: batches are built there
    else:  # streaming: gathered on the host, each batch copied (asynchronously when pinned)
        pt = panel.tensors("cpu", pin=device.type == "cuda")
    if pt.device.type != "cpu":  # and origins are drawn there too
        sampler = OriginSampler(panel, **sampler_kw, device=device)
    torch.manual_seed(cfg.seed + 1 + rank)  # dropout stream of this rank

    start_step = restore_checkpoint(engine, ckpt_dir, rank, cfg) if args.resume else 0
    run = TrainingRun(args=args, cfg=cfg, stop=stop, rank=rank, world=world, out=out,
                      ckpt_dir=ckpt_dir, engine=engine, optimizer=optimizer, scheduler=scheduler,
                      panel=panel, split=split, sampler=sampler, pt=pt, placement=placement,
                      device=device, micro=micro, gas=gas, global_batch=micro * gas * world,
                      start_step=start_step)
    if rank == 0:
        write_hparams(run, ds_config=ds_config, ds_path=ds_path, launch_mode=launch_mode,
                      precision=(precision, precision_reason),
                      placement=(placement, placement_reason, need),
                      source=source or Path(__file__).resolve().parents[2])
    run.log = MetricsLog(out, enabled=rank == 0)
    return run


def _batch(run: TrainingRun, prod, origin) -> dict:
    b = make_batch(run.pt, prod, origin, run.cfg.context_length, run.cfg.horizon)
    if run.placement == "host":  # a no-op copy on a CPU run, the streaming path on a GPU
        b = {k: v.to(run.device, non_blocking=True) for k, v in b.items()}
    return b


def validate(run: TrainingRun, step: int, net=None, prefix: str = "val") -> dict:
    """Validation weeks (never a training target): NB NLL on all products, and the test's
    own metrics (MAE, RMSSE of the point forecast vs the best baseline) on the head.
    ``net``: another model to score (rank 0 only), logged with keys ``{prefix}_...``."""
    import torch

    from rcfast.nn.metrics import best_baseline, evaluate
    from rcfast.nn.model import nb_nll
    cfg, panel, H = run.cfg, run.panel, run.cfg.horizon
    net = run.engine if net is None else net
    dev = run.device if net is run.engine else next(net.parameters()).device
    with torch.no_grad():
        net.eval()
        o = run.split.val_origin
        prods = np.nonzero(panel.first_week < o)[0]
        nll, n, mus = 0.0, 0, []
        for i in range(0, len(prods), cfg.eval_batch_size):  # same batches on every rank
            pr = torch.from_numpy(prods[i:i + cfg.eval_batch_size])
            b = make_batch(run.pt, pr, torch.full_like(pr, o), cfg.context_length, H)
            b = {k: v.to(dev, non_blocking=True) for k, v in b.items()}
            mu, alpha = net(b["steps"], b["static"], b["scale"])
            nll += float(nb_nll(b["target"], mu, alpha).sum())
            mus.append(mu.float().cpu().numpy())
            n += len(pr)
        rec: dict = {"nll": nll / max(n * H, 1)}
        if mus:
            body, _ = evaluate(panel, o, H, np.concatenate(mus).astype(np.float64), prods,
                               cfg.head_min_reviews)
            hs = body["subsets"]["head"]
            rec["head_series"] = hs["series"]
            for m in ("mae", "rmsse"):
                bname, bval = best_baseline(hs, m)
                rec[f"{m}_head"] = hs[m]["model"]
                rec[f"{m}_head_best_baseline"] = bval
                rec[f"{m}_head_gain"] = 1.0 - hs[m]["model"] / bval if bval > 0 else 0.0
            rec["mae_head_naive"] = hs["mae"]["naive"]
        rec = {f"{prefix}_{k}": v for k, v in rec.items()}
        run.log.log(step, **rec)
        run.engine.train()
    return rec


def fit(run: TrainingRun) -> int:
    """The training loop from ``run.start_step`` to ``max_steps``, then the final validation.
    Returns 0, or ``EXIT_REQUEUE`` when a stop request ended it early (after a checkpoint)."""
    import torch
    import torch.distributed as dist
    from tqdm import tqdm

    from rcfast.nn.model import nb_nll
    cfg, engine, device = run.cfg, run.engine, run.device
    rank, world, micro, gas = run.rank, run.world, run.micro, run.gas
    global_batch, start_step, log = run.global_batch, run.start_step, run.log
    bar = tqdm(total=cfg.max_steps, initial=start_step, disable=rank != 0, dynamic_ncols=True,
               desc="train", mininterval=1.0)
    engine.train()
    losses_window: list[float] = []
    for step in range(start_step, cfg.max_steps):
        t0 = time.perf_counter()
        prod, origin = run.sampler.sample(step, global_batch)  # identical on all ranks
        loss_sum = torch.zeros((), device=device)
        t_batch = 0.0
        for m in range(gas):
            lo = (m * world + rank) * micro
            tb = time.perf_counter()
            b = _batch(run, prod[lo:lo + micro], origin[lo:lo + micro])
            t_batch += time.perf_counter() - tb
            mu, alpha = engine(b["steps"], b["static"], b["scale"])
            loss = nb_nll(b["target"], mu, alpha).mean()  # fp32
            engine.backward(loss)
            engine.step()
            loss_sum += loss.detach().float()
        # one all-reduce for the loss and for a stop request that reached any rank
        red = torch.stack([loss_sum, torch.tensor(float(run.stop.requested), device=device)])
        dist.all_reduce(red)
        step_loss = float(red[0]) / (gas * world)
        stop_now = bool(red[1] > 0)
        dt = time.perf_counter() - t0
        losses_window.append(step_loss)
        bar.update(1)
        # refresh=False: drawn with the bar's own updates (at most once a second), not once a
        # step (which filled a Slurm log with one line per step)
        bar.set_postfix(loss=f"{step_loss:.4f}", win_s=f"{global_batch / dt:,.0f}",
                        refresh=False)
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.max_steps or done == start_step + 1:
            rec = {"loss": step_loss, "cpu_s": time.process_time(),
                   "loss_avg": float(np.mean(losses_window)),
                   "lr": float(run.scheduler.get_last_lr()[0]),
                   "windows_per_s": global_batch / dt, "batch_build_share": t_batch / dt,
                   "step_s": dt, "skipped_steps": int(getattr(engine, "skipped_steps", 0))}
            if engine.fp16_enabled():
                rec["loss_scale"] = float(getattr(run.optimizer, "cur_scale",
                                                  getattr(run.optimizer, "loss_scale", 0.0)))
            log.log(done, **rec)
            losses_window = []
        if cfg.eval_every and done % cfg.eval_every == 0 and done != cfg.max_steps:
            validate(run, done)
        if (cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == cfg.max_steps or stop_now:
            save_checkpoint(run, done)
        if stop_now and done < cfg.max_steps:
            bar.close()
            dist.barrier()  # every rank's shards are written
            if rank == 0:
                ok, what = requeue_job()
                log.log(done, stop_signal=run.stop.signum, requeued=ok)
                print(f"signal {run.stop.signum}: checkpoint of step {done} written; {what}",
                      file=sys.stderr, flush=True)
            log.close()
            return EXIT_REQUEUE
        if cfg.debug_kill_at_step and done == cfg.debug_kill_at_step and rank == 0:
            bar.close()
            print(f"debug_kill_at_step: killing rank 0 after step {done}", file=sys.stderr,
                  flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    bar.close()
    if start_step < cfg.max_steps:
        validate(run, cfg.max_steps)
    dist.barrier()
    return 0


def export(run: TrainingRun) -> None:
    """Rank 0: the fp32 weights consolidated from the ZeRO checkpoints (the mean of the last
    ``average_last`` regular ones, also scored on the validation weeks when more than one) to
    ``RUN_DIR/model.pt``, then the evaluation on the test weeks unless ``--no-eval``."""
    import torch
    import torch.distributed as dist

    cfg = run.cfg
    if run.rank == 0:
        from rcfast.nn.model import ForecastModel
        state, tags = averaged_weights(run.ckpt_dir, cfg)
        if len(tags) > 1:  # the averaged weights on the validation weeks, beside the final ones
            avg_model = ForecastModel(cfg)
            avg_model.load_state_dict(state)
            validate(run, cfg.max_steps, net=avg_model, prefix="val_avg")
        torch.save({"config": cfg.to_dict(), "state_dict": state, "step": cfg.max_steps,
                    "averaged_checkpoints": tags, "end_week": int(run.panel.end_week),
                    "panel": str(Path(run.args.panel).resolve())}, run.out / "model.pt")
        if not run.args.no_eval:
            from rcfast.forecast import evaluate_run
            ev = evaluate_run(run.out, panel=run.panel)
            print(ev["table"])
    run.log.close()
    dist.barrier()
