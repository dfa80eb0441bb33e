"""Train the global weekly review-count forecaster with DeepSpeed (ZeRO 1/2/3, fp16 or bf16).

Arguments here, the rest in :mod:`rcfast.nn.trainer`: ``setup`` (config -> panel -> distributed
init -> model and engine -> resume -> run records) -> ``fit`` (training loop: bulk-sampled
windows, gather, NB loss; checkpoints) -> ``export`` (fp32 weights -> evaluation,
``RUN_DIR/eval.json``).

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
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, str(REPO))

from rcfast.nn.launch import StopRequest  # noqa: E402  (light: no torch)

# Before the heavy imports: from here on a SIGUSR1 (Slurm's time-limit warning; srun passes it
# to the ranks as soon as it comes) is remembered, and honoured at the next step boundary.
STOP = StopRequest() if __name__ == "__main__" else None

from rcfast.nn.data import PanelError  # noqa: E402
from rcfast.nn.hardware import PRECISIONS  # noqa: E402
from rcfast.nn.trainer import export, fit, setup  # noqa: E402  (torch, deepspeed: lazily)


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


def main(argv: list[str] | None = None) -> int:
    """setup -> fit -> export (rcfast.nn.trainer); 0, or EXIT_REQUEUE (75) after a stop."""
    stop = STOP or StopRequest()
    args = parse_args(argv)
    run = setup(args, stop, source=REPO)
    status = fit(run)
    if status == 0:
        export(run)
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (PanelError, ValueError, FileNotFoundError) as e:
        print(f"run.py: error: {e}", file=sys.stderr)
        sys.exit(2)
