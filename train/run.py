"""Train the global weekly review-count forecaster with DeepSpeed (ZeRO 1/2/3, fp16 or bf16).

Read top to bottom: arguments -> config -> panel -> distributed init -> model and engine ->
(resume) -> training loop (bulk-sampled windows, gather, NB loss) -> checkpoints -> fp32 weights
-> evaluation (``RUN_DIR/eval.json``).

Launch (panel from ``python -m rcfast.weekly INPUT -o panel.parquet``):

    # one GPU node, all its GPUs, fp16 ZeRO-2
    deepspeed train/run.py --panel panel.parquet --out runs/r1 \
        --deepspeed_config train/configs/zero2_fp16.json

    # CPU, two ranks over gloo; precision auto: bf16 where the CPU has native bf16, else fp32
    DS_ACCELERATOR=cpu deepspeed --num_gpus 2 train/run.py --panel panel.parquet \
        --out runs/cpu --deepspeed_config train/configs/zero2_cpu.json --max-steps 500

    # a world of one without the launcher; resume a stopped run; override config fields
    python train/run.py --panel panel.parquet --out runs/r1 \
        --deepspeed_config train/configs/zero1_cpu.json --resume \
        --config train/configs/demo_cpu.yaml --set lr=3e-4 --set n_layers=3

    # Slurm: see slurm/train.sbatch (one node) and slurm/train-multinode.sbatch (srun, one task
    # per GPU; this script maps SLURM_PROCID/LOCALID/NTASKS/JOB_NODELIST to the torch variables)

Without ``--master_port`` a single-node launch gets a free rendezvous port (not DeepSpeed's
29500, which another run may hold). A SIGUSR1 (Slurm's time-limit warning) makes every rank write
a checkpoint at the next step boundary; rank 0 then runs ``scontrol requeue`` and the run exits
with status 75; ``--resume`` continues exactly.

The run directory gets: ``hparams.json`` (config, DeepSpeed config, world size, git commit),
``metrics.jsonl`` (and ``tb/`` when tensorboard is installed), ``checkpoints/`` (DeepSpeed,
every rank's shards, with step, sampler state and every rank's RNG states in client_state),
``model.pt`` (consolidated fp32 weights + config, what ``python -m rcfast.forecast`` loads),
``eval.json`` / ``eval_table.md`` / ``forecast_head.png`` and ``forecasts_test.parquet``.

Exit status 2 with a one-line reason on bad input (missing/empty/short panel, bad config).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, str(REPO))

from rcfast.nn.launch import StopRequest  # noqa: E402  (light: no torch)

# Before the heavy imports: from here on a SIGUSR1 (Slurm's time-limit warning; srun passes it
# to the ranks as soon as it comes) is remembered, and honoured at the next step boundary.
STOP = StopRequest() if __name__ == "__main__" else None

import numpy as np  # noqa: E402

from rcfast.nn.config import TrainConfig  # noqa: E402
from rcfast.nn.data import PanelError, OriginSampler, make_batch, make_split, read_panel  # noqa: E402
from rcfast.nn.data import date_of_week  # noqa: E402
from rcfast.nn.hardware import (  # noqa: E402
    PRECISIONS,
    apply_precision,
    choose_data_placement,
    choose_precision,
    panel_device_bytes,
)
from rcfast.nn.launch import (  # noqa: E402
    EXIT_REQUEUE,
    MetricsLog,
    StopRequest,
    agree_on_free_port,
    git_info,
    release_port_file,
    release_shm_buffer,
    requeue_job,
    slurm_to_torch_env,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    import deepspeed

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--panel", required=True, help="weekly panel Parquet (rcfast.weekly output)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--max-steps", type=int, default=None, help="override config max_steps")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in RUN_DIR/checkpoints")
    p.add_argument("--config", default=None, help="TrainConfig as YAML or JSON")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one TrainConfig field (repeatable)")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default): bf16 on GPUs that support it, else fp16; on CPUs bf16 "
                        "only with native bf16 (avx512_bf16/amx_bf16), else fp32. An explicit "
                        "value wins, then a DeepSpeed config with fp16/bf16 \"enabled\": true")
    p.add_argument("--local_rank", "--local-rank", type=int, default=-1,
                   help="set by the deepspeed launcher")
    p = deepspeed.add_config_arguments(p)  # --deepspeed, --deepspeed_config
    return p.parse_args(argv)


def device_is_cpu() -> bool:
    from deepspeed.accelerator import get_accelerator
    return get_accelerator().device_name() == "cpu"


def main(argv: list[str] | None = None) -> int:
    stop = STOP or StopRequest()
    args = parse_args(argv)

    # ---- configuration: TrainConfig (model + optimisation) and the DeepSpeed JSON -------------
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
    from deepspeed.accelerator import get_accelerator
    precision, precision_reason = choose_precision(args.precision, ds_config,
                                                   get_accelerator().device_name())
    ds_config = apply_precision(ds_config, precision)

    # ---- the panel, before any process group exists: bad input fails fast on every rank -----
    L, H = cfg.context_length, cfg.horizon
    panel = read_panel(args.panel, end_week=cfg.end_week or None, min_weeks=L + 3 * H)
    split = make_split(panel.end_week, H, refit=cfg.refit)
    sampler = OriginSampler(panel, context_length=L, horizon=H,
                            last_origin=split.train_last_origin, min_history=cfg.min_history,
                            power=cfg.sample_power, seed=cfg.seed,
                            focus_share=cfg.focus_share, focus_min_reviews=cfg.head_min_reviews)

    # ---- distributed init (deepspeed launcher, srun, or a world of one) ----------------------
    launch_mode = slurm_to_torch_env()
    port_picked = launch_mode == "launcher" and agree_on_free_port()
    import deepspeed
    import torch
    import torch.distributed as dist

    from rcfast.nn.model import ForecastModel, lr_lambda, nb_nll

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
    global_batch = micro * gas * world
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
        sampler = OriginSampler(panel, context_length=L, horizon=H,
                                last_origin=split.train_last_origin,
                                min_history=cfg.min_history, power=cfg.sample_power,
                                seed=cfg.seed, focus_share=cfg.focus_share,
                                focus_min_reviews=cfg.head_min_reviews, device=device)
    torch.manual_seed(cfg.seed + 1 + rank)  # dropout stream of this rank

    # ---- resume --------------------------------------------------------------------------------
    start_step = 0
    if args.resume:
        path, client = engine.load_checkpoint(str(ckpt_dir))
        if path is None:
            if rank == 0:
                print(f"--resume: no checkpoint in {ckpt_dir}, starting from step 0",
                      file=sys.stderr)
        else:
            start_step = int(client["step"])
            if client["sampler"]["seed"] != cfg.seed:
                raise ValueError("--resume: the checkpoint was made with another seed")
            rng = client["rng"][rank]
            torch.set_rng_state(rng["torch"])
            np.random.set_state(rng["numpy"])
            random.setstate(rng["python"])

    # ---- run records ---------------------------------------------------------------------------
    if rank == 0:
        hp = {"config": cfg.to_dict(), "deepspeed_config": ds_config,
              "deepspeed_config_file": str(ds_path), "world_size": world,
              "launch": launch_mode, "global_batch": global_batch, "micro_batch": micro,
              "grad_accum": gas, "panel": str(Path(args.panel).resolve()),
              "end_week": str(date_of_week(panel.end_week)),
              "split": {"train_last_origin": str(date_of_week(split.train_last_origin)),
                        "val_origin": str(date_of_week(split.val_origin)),
                        "test_origin": str(date_of_week(split.test_origin))},
              "products": panel.n_products, "training_windows": sampler.n_windows,
              "focus_windows": sampler.n_focus_windows,
              "git": git_info(REPO), "torch": torch.__version__,
              "deepspeed": deepspeed.__version__, "resumed_from_step": start_step,
              "precision": {"requested": args.precision, "chosen": precision,
                            "reason": precision_reason},
              "data_placement": {"chosen": placement, "reason": placement_reason,
                                 "bytes": need},
              "master_port": os.environ.get("MASTER_PORT", "")}
        print(f"precision {precision} ({precision_reason}); data on {placement} "
              f"({placement_reason}); {world} rank(s), master port "
              f"{os.environ.get('MASTER_PORT', '')}", file=sys.stderr, flush=True)
        name = "hparams.json" if start_step == 0 else f"hparams.resume{start_step}.json"
        (out / name).write_text(json.dumps(hp, indent=2))
    log = MetricsLog(out, enabled=rank == 0)

    def batch(prod, origin):
        b = make_batch(pt, prod, origin, L, H)
        if placement == "host":  # a no-op copy on a CPU run, the streaming path on a GPU
            b = {k: v.to(device, non_blocking=True) for k, v in b.items()}
        return b

    def save_checkpoint(step: int) -> None:
        rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
               "python": random.getstate()}
        all_rng: list = [None] * world
        dist.all_gather_object(all_rng, rng)
        client = {"step": step, "sampler": {"seed": cfg.seed, "next_step": step},
                  "rng": all_rng, "config": cfg.to_dict(), "world_size": world}
        engine.save_checkpoint(str(ckpt_dir), tag=f"step{step:08d}", client_state=client)

    @torch.no_grad()
    def validate(step: int, net=None, prefix: str = "val") -> dict:
        """Validation weeks (never a training target): NB NLL on all products, and the test's
        own metrics (MAE, RMSSE of the point forecast vs the best baseline) on the head.
        ``net``: another model to score (rank 0 only), logged with keys ``{prefix}_...``."""
        from rcfast.nn.metrics import best_baseline, evaluate
        net = engine if net is None else net
        dev = device if net is engine else next(net.parameters()).device
        net.eval()
        o = split.val_origin
        prods = np.nonzero(panel.first_week < o)[0]
        nll, n, mus = 0.0, 0, []
        for i in range(0, len(prods), cfg.eval_batch_size):  # same batches on every rank
            pr = torch.from_numpy(prods[i:i + cfg.eval_batch_size])
            b = make_batch(pt, pr, torch.full_like(pr, o), L, H)
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
        log.log(step, **rec)
        engine.train()
        return rec

    # ---- training loop -------------------------------------------------------------------------
    from tqdm import tqdm
    bar = tqdm(total=cfg.max_steps, initial=start_step, disable=rank != 0, dynamic_ncols=True,
               desc="train", mininterval=1.0)
    engine.train()
    losses_window: list[float] = []
    for step in range(start_step, cfg.max_steps):
        t0 = time.perf_counter()
        prod, origin = sampler.sample(step, global_batch)  # identical on all ranks
        loss_sum = torch.zeros((), device=device)
        t_batch = 0.0
        for m in range(gas):
            lo = (m * world + rank) * micro
            tb = time.perf_counter()
            b = batch(prod[lo:lo + micro], origin[lo:lo + micro])
            t_batch += time.perf_counter() - tb
            mu, alpha = engine(b["steps"], b["static"], b["scale"])
            loss = nb_nll(b["target"], mu, alpha).mean()  # fp32
            engine.backward(loss)
            engine.step()
            loss_sum += loss.detach().float()
        # one all-reduce for the loss and for a stop request that reached any rank
        red = torch.stack([loss_sum, torch.tensor(float(stop.requested), device=device)])
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
                   "lr": float(scheduler.get_last_lr()[0]), "windows_per_s": global_batch / dt,
                   "batch_build_share": t_batch / dt, "step_s": dt,
                   "skipped_steps": int(getattr(engine, "skipped_steps", 0))}
            if engine.fp16_enabled():
                rec["loss_scale"] = float(getattr(optimizer, "cur_scale",
                                                  getattr(optimizer, "loss_scale", 0.0)))
            log.log(done, **rec)
            losses_window = []
        if cfg.eval_every and done % cfg.eval_every == 0 and done != cfg.max_steps:
            validate(done)
        if (cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == cfg.max_steps or stop_now:
            save_checkpoint(done)
        if stop_now and done < cfg.max_steps:
            bar.close()
            dist.barrier()  # every rank's shards are written
            if rank == 0:
                ok, what = requeue_job()
                log.log(done, stop_signal=stop.signum, requeued=ok)
                print(f"signal {stop.signum}: checkpoint of step {done} written; {what}",
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
        validate(cfg.max_steps)
    dist.barrier()

    # ---- consolidated fp32 weights (rank 0), then the evaluation on the test weeks -------------
    if rank == 0:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        from rcfast.nn.launch import average_state_dicts, checkpoint_tags
        # only the regular checkpoints: an extra one written on a stop request must not
        # change what an interrupted run averages
        tags = [t for t in checkpoint_tags(ckpt_dir, cfg.max_steps)
                if int(t[4:]) == cfg.max_steps
                or (cfg.ckpt_every and int(t[4:]) % cfg.ckpt_every == 0)][-cfg.average_last:]
        if cfg.average_last > 1 and len(tags) < cfg.average_last:
            print(f"average_last={cfg.average_last}: only {len(tags)} checkpoints to average",
                  file=sys.stderr)
        states = [get_fp32_state_dict_from_zero_checkpoint(str(ckpt_dir), tag=t) for t in tags]
        state = average_state_dicts([{k: v.float() for k, v in st.items()} for st in states])
        del states
        if len(tags) > 1:  # the averaged weights on the validation weeks, beside the final ones
            avg_model = ForecastModel(cfg)
            avg_model.load_state_dict(state)
            validate(cfg.max_steps, net=avg_model, prefix="val_avg")
        torch.save({"config": cfg.to_dict(), "state_dict": state, "step": cfg.max_steps,
                    "averaged_checkpoints": tags, "end_week": int(panel.end_week),
                    "panel": str(Path(args.panel).resolve())}, out / "model.pt")
        if not args.no_eval:
            from rcfast.forecast import evaluate_run
            ev = evaluate_run(out, panel=panel)
            print(ev["table"])
    log.close()
    dist.barrier()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (PanelError, ValueError, FileNotFoundError) as e:
        print(f"run.py: error: {e}", file=sys.stderr)
        sys.exit(2)
