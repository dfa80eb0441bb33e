"""What a training run leaves in its directory besides the metrics, for :mod:`rcfast.nn.trainer`.

* ``hparams.json`` (``hparams.resumeN.json`` for a run resumed at step N): the configs, the world,
  the split, the precision and data placement chosen and why, the git commit.
* ``checkpoints/stepNNNNNNNN``: DeepSpeed's shards of every rank, with the step, the sampler's
  state and every rank's RNG states (torch, numpy, python) in the client state, so that a
  resumed run draws the same batches and dropout masks as one never stopped.
* the fp32 weights of ``model.pt``: the uniform mean of the last ``average_last`` regular
  checkpoints, consolidated from the ZeRO shards.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rcfast.nn.config import TrainConfig
from rcfast.nn.data import date_of_week
from rcfast.nn.launch import average_state_dicts, checkpoint_tags, git_info

if TYPE_CHECKING:
    from rcfast.nn.trainer import TrainingRun

__all__ = ["averaged_weights", "restore_checkpoint", "save_checkpoint", "write_hparams"]


def write_hparams(run: TrainingRun, *, ds_config: dict, ds_path: Path, launch_mode: str,
                  precision: tuple[str, str], placement: tuple[str, str, int],
                  source: Path) -> None:
    """Rank 0: ``hparams.json`` (or ``hparams.resumeN.json``), and the run's set-up in one
    line on stderr. ``precision``: (chosen, reason); ``placement``: (chosen, reason, bytes)."""
    import deepspeed
    import torch

    args, cfg, panel, split, sampler = run.args, run.cfg, run.panel, run.split, run.sampler
    hp = {"config": cfg.to_dict(), "deepspeed_config": ds_config,
          "deepspeed_config_file": str(ds_path), "world_size": run.world,
          "launch": launch_mode, "global_batch": run.global_batch, "micro_batch": run.micro,
          "grad_accum": run.gas, "panel": str(Path(args.panel).resolve()),
          "end_week": str(date_of_week(panel.end_week)),
          "split": {"train_last_origin": str(date_of_week(split.train_last_origin)),
                    "val_origin": str(date_of_week(split.val_origin)),
                    "test_origin": str(date_of_week(split.test_origin))},
          "products": panel.n_products, "training_windows": sampler.n_windows,
          "focus_windows": sampler.n_focus_windows,
          "git": git_info(source), "torch": torch.__version__,
          "deepspeed": deepspeed.__version__, "resumed_from_step": run.start_step,
          "precision": {"requested": args.precision, "chosen": precision[0],
                        "reason": precision[1]},
          "data_placement": {"chosen": placement[0], "reason": placement[1],
                             "bytes": placement[2]},
          "master_port": os.environ.get("MASTER_PORT", "")}
    print(f"precision {precision[0]} ({precision[1]}); data on {placement[0]} "
          f"({placement[1]}); {run.world} rank(s), master port "
          f"{os.environ.get('MASTER_PORT', '')}", file=sys.stderr, flush=True)
    name = "hparams.json" if run.start_step == 0 else f"hparams.resume{run.start_step}.json"
    (run.out / name).write_text(json.dumps(hp, indent=2))


def save_checkpoint(run: TrainingRun, step: int) -> None:
    """Every rank (a collective): its shards under tag ``stepNNNNNNNN``, and in the client
    state the step, the sampler's state and the RNG states of all ranks."""
    import torch
    import torch.distributed as dist

    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
           "python": random.getstate()}
    all_rng: list = [None] * run.world
    dist.all_gather_object(all_rng, rng)
    client = {"step": step, "sampler": {"seed": run.cfg.seed, "next_step": step},
              "rng": all_rng, "config": run.cfg.to_dict(), "world_size": run.world}
    run.engine.save_checkpoint(str(run.ckpt_dir), tag=f"step{step:08d}", client_state=client)


def restore_checkpoint(engine, ckpt_dir: Path, rank: int, cfg: TrainConfig) -> int:
    """Load the latest checkpoint into the engine and this rank's RNG states; the step to
    continue from (0 when there is no checkpoint)."""
    import torch

    path, client = engine.load_checkpoint(str(ckpt_dir))
    if path is None:
        if rank == 0:
            print(f"--resume: no checkpoint in {ckpt_dir}, starting from step 0",
                  file=sys.stderr)
        return 0
    start_step = int(client["step"])
    if client["sampler"]["seed"] != cfg.seed:
        raise ValueError("--resume: the checkpoint was made with another seed")
    rng = client["rng"][rank]
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    return start_step


def averaged_weights(ckpt_dir: Path, cfg: TrainConfig) -> tuple[dict, list[str]]:
    """The fp32 state dict averaged over the last ``average_last`` regular checkpoints (every
    ``ckpt_every`` steps, and the last step), and their tags."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

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
    return state, tags
