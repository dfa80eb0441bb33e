"""Forecasts and evaluation from a trained run: ``python -m rcfast.forecast``.

    python -m rcfast.forecast --checkpoint RUN_DIR --panel PANEL -o FORECASTS.parquet [--eval]

Writes, for every product with a review before the forecast origin, the next H weeks' forecast:
one row per (product_id, week_start) with ``mean`` (the NB mean), ``q10``/``q50``/``q90`` (exact
NB quantiles; the config's ``quantiles``), ``horizon`` (1..H) and ``origin``. Without ``--eval``
the origin is the week after the panel's last week (true forecasts). With ``--eval`` it also
scores the model on the test weeks (the last H weeks of the data, never seen in training) against
the baselines of :mod:`rcfast.nn.metrics`, writes ``RUN_DIR/eval.json``::

    {"test_weeks": [first, last], "horizon": H,
     "subsets": {"all": S, "head": S}}      # S = {"series": N, "mae": {...}, "rmsse": {...},
                                            #      "mase": {...}} over model + 5 baselines

plus ``eval_details.json``, ``eval_table.md``, ``forecasts_test.parquet`` and
``forecast_head.png`` (history, forecast and 10-90 % interval of a few head products).

``--checkpoint`` is a run directory (its ``model.pt``), a ``model.pt`` file, or a DeepSpeed
checkpoint directory (consolidated on the fly with ``zero_to_fp32``). Runs on CPU or one GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from rcfast.nn.data import Panel, PanelError, date_of_week, make_batch, make_split, read_panel


def load_model(checkpoint: str | Path, device: str = "cpu"):
    """(model, TrainConfig, meta) from a run dir, a model.pt, or a DeepSpeed checkpoint dir."""
    import torch

    from rcfast.nn.config import TrainConfig
    from rcfast.nn.model import ForecastModel, upgrade_state_dict

    p = Path(checkpoint)
    if p.is_dir() and (p / "model.pt").is_file():
        p = p / "model.pt"
    if p.is_file():
        blob = torch.load(p, map_location="cpu", weights_only=False)
        cfg = TrainConfig.from_dict(blob["config"])
        state = blob["state_dict"]
        meta = {k: v for k, v in blob.items() if k not in ("state_dict",)}
        run_dir = p.parent
    elif p.is_dir() and ((p / "latest").is_file() or (p / "checkpoints" / "latest").is_file()):
        ck = p if (p / "latest").is_file() else p / "checkpoints"
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
        state = get_fp32_state_dict_from_zero_checkpoint(str(ck))
        tag = (ck / "latest").read_text().strip()
        states = sorted((ck / tag).glob("*mp_rank_00_model_states.pt"))
        if not states:
            raise FileNotFoundError(f"no model states in DeepSpeed checkpoint {ck / tag}")
        client = torch.load(states[0], map_location="cpu", weights_only=False)
        cfg = TrainConfig.from_dict(client["config"])
        meta = {"step": client.get("step")}
        run_dir = ck.parent
    else:
        raise FileNotFoundError(f"no model.pt or DeepSpeed checkpoint at {checkpoint}")
    model = ForecastModel(cfg)
    model.load_state_dict({k: v.float() for k, v in upgrade_state_dict(state).items()})
    model.eval().to(device)
    meta["run_dir"] = str(run_dir)
    return model, cfg, meta


def predict(model, cfg, panel: Panel, prods: np.ndarray, origin: int,
            device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """NB (mu, alpha) [P, H] for products ``prods`` at forecast origin ``origin``."""
    import torch

    pt = panel.tensors(device)
    mus, alphas = [], []
    with torch.no_grad():
        for i in range(0, len(prods), cfg.eval_batch_size):
            pr = torch.from_numpy(np.asarray(prods[i:i + cfg.eval_batch_size], dtype=np.int64))
            b = make_batch(pt, pr, torch.full_like(pr, origin), cfg.context_length, cfg.horizon)
            mu, alpha = model(b["steps"], b["static"], b["scale"])
            mus.append(mu.cpu().numpy())
            alphas.append(alpha.cpu().numpy())
    H = cfg.horizon
    if not mus:
        return np.zeros((0, H)), np.zeros((0, H))
    return np.concatenate(mus).astype(np.float64), np.concatenate(alphas).astype(np.float64)


def forecast_table(panel: Panel, prods: np.ndarray, origin: int, mu: np.ndarray,
                   alpha: np.ndarray, quantiles: list[float]):
    import pyarrow as pa
    import torch

    from rcfast.kernels.time import week_to_days
    from rcfast.nn.model import nb_quantiles

    P, H = mu.shape
    q = nb_quantiles(torch.from_numpy(mu), torch.from_numpy(alpha), quantiles).numpy()
    days = week_to_days(origin + np.arange(H))
    cols = {
        "product_id": pa.array(np.repeat(panel.product_ids[prods], H).tolist(), pa.string()),
        "week_start": pa.array(np.tile(days, P), pa.int32()).cast(pa.date32()),
        "horizon": pa.array(np.tile(np.arange(1, H + 1), P).astype(np.int32)),
        "origin": pa.array(np.full(P * H, days[0], np.int32), pa.int32()).cast(pa.date32()),
        "mean": pa.array(mu.reshape(-1)),
    }
    for i, qq in enumerate(quantiles):
        cols[f"q{int(round(qq * 100)):02d}"] = pa.array(q[i].reshape(-1).astype(np.float64))
    cols["dispersion"] = pa.array(alpha.reshape(-1))
    return pa.table(cols), q


def _write_parquet(table, path: Path) -> None:
    import pyarrow.parquet as pq
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def plot_head(panel: Panel, prods: np.ndarray, origin: int, mu: np.ndarray, q: np.ndarray,
              head: np.ndarray, path: Path, n: int = 6, history: int = 52) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rcfast.nn.metrics import actual_matrix, history_matrix

    idx = np.nonzero(head)[0]
    if len(idx) == 0:
        idx = np.arange(min(len(prods), n))
    hist_all = history_matrix(panel, prods[idx], origin, history)
    # a spread of head products: busiest, median, quietest of the head
    order = idx[np.argsort(-hist_all.sum(1))]
    pick = order[np.unique(np.linspace(0, len(order) - 1, min(n, len(order))).astype(int))]
    H = mu.shape[1]
    hist = history_matrix(panel, prods[pick], origin, history)
    act = actual_matrix(panel, prods[pick], origin, H)
    cols = 3
    rows = (len(pick) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3 * rows), squeeze=False)
    x_hist = np.arange(-history, 0)
    x_fc = np.arange(0, H)
    for a, (k, i) in zip(axes.flat, enumerate(pick)):
        a.plot(x_hist, hist[k], color="0.3", lw=1, label="history")
        a.plot(x_fc, act[k], "o-", color="k", ms=3, lw=1, label="actual")
        a.plot(x_fc, mu[i], "o-", color="C0", ms=3, label="forecast mean")
        a.fill_between(x_fc, q[0][i], q[-1][i], color="C0", alpha=0.25, label="q10-q90")
        a.set_title(str(panel.product_ids[prods[i]]), fontsize=9)
        a.axvline(-0.5, color="0.6", ls=":")
    for a in list(axes.flat)[len(pick):]:
        a.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"weekly reviews, forecast origin {date_of_week(origin)} (weeks from origin)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def evaluate_run(run_dir: str | Path, panel: Panel | None = None, panel_path: str | None = None,
                 device: str = "cpu", plot: bool = True) -> dict:
    """Score the run's model on the test weeks; write eval.json and friends into the run dir."""
    from rcfast.nn.metrics import evaluate, table

    model, cfg, meta = load_model(run_dir, device)
    run_dir = Path(meta["run_dir"])
    if panel is None:
        panel = read_panel(panel_path or meta["panel"], end_week=cfg.end_week or None,
                           min_weeks=cfg.context_length + 3 * cfg.horizon)
    H = cfg.horizon
    split = make_split(panel.end_week, H)
    o = split.test_origin
    prods = np.nonzero(panel.first_week < o)[0]
    mu, alpha = predict(model, cfg, panel, prods, o, device)
    tab, q = forecast_table(panel, prods, o, mu, alpha, cfg.quantiles)
    point = mu
    if cfg.point_forecast == "median":
        point = q[list(cfg.quantiles).index(0.5)] if 0.5 in cfg.quantiles else None
        if point is None:
            from rcfast.nn.model import nb_quantiles
            import torch
            point = nb_quantiles(torch.from_numpy(mu), torch.from_numpy(alpha), [0.5])[0]
            point = point.numpy()
    body, details = evaluate(panel, o, H, point, prods, cfg.head_min_reviews)
    # the other point forecast, for the record (eval.json scores cfg.point_forecast only)
    from rcfast.nn.model import nb_quantiles
    import torch
    other = (nb_quantiles(torch.from_numpy(mu), torch.from_numpy(alpha), [0.5])[0].numpy()
             if cfg.point_forecast == "mean" else mu)
    alt, _ = evaluate(panel, o, H, other, prods, cfg.head_min_reviews)
    other_name = "median" if cfg.point_forecast == "mean" else "mean"
    for sub in alt["subsets"]:
        details[sub][f"model_{other_name}"] = {m: alt["subsets"][sub][m]["model"]
                                               for m in ("mae", "rmsse", "mase")}
    ev = {"test_weeks": [str(date_of_week(o)), str(date_of_week(o + H - 1))], **body}
    (run_dir / "eval.json").write_text(json.dumps(ev, indent=2))
    (run_dir / "eval_details.json").write_text(json.dumps(
        {"point_forecast": cfg.point_forecast, "origin": str(date_of_week(o)),
         "step": meta.get("step"), **details}, indent=2))
    md = table(ev)
    (run_dir / "eval_table.md").write_text(md)
    _write_parquet(tab, run_dir / "forecasts_test.parquet")
    if plot:
        from rcfast.nn.metrics import history_matrix
        head = history_matrix(panel, prods, o, 52).sum(1) >= cfg.head_min_reviews
        plot_head(panel, prods, o, mu, q, head, run_dir / "forecast_head.png")
    ev = dict(ev)
    ev["table"] = md
    return ev


_EXAMPLES = """\
examples:
  python -m rcfast.forecast --checkpoint runs/demo -o forecasts.parquet --panel panel.parquet
  rcfast forecast --checkpoint runs/demo --panel panel.parquet -o fc.parquet --eval
  rcfast forecast --checkpoint runs/demo/checkpoints --panel panel.parquet -o fc.parquet \\
      --device cuda    # a DeepSpeed checkpoint directory, consolidated on the fly

The panel is the output of rcfast weekly (docs/spec-weekly.md); docs/training.md describes
training and the evaluation. Exit status: 0 done, 2 bad usage, input or output path (one line
on stderr), 130 interrupted.
"""


def main(argv: list[str] | None = None) -> int:
    from rcfast._cli import (
        EXIT_INTERRUPTED,
        EXIT_OK,
        EXIT_USAGE,
        add_common_arguments,
        one_line,
        setup_logging,
    )

    p = argparse.ArgumentParser(prog="python -m rcfast.forecast",
                                description="Per-product forecasts (and evaluation) from a run.",
                                epilog=_EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="run directory, model.pt, or DeepSpeed checkpoint directory")
    p.add_argument("--panel", required=True, help="weekly panel Parquet")
    p.add_argument("-o", "--output", required=True, help="forecasts Parquet to write")
    p.add_argument("--eval", action="store_true",
                   help="also score the test weeks and write RUN_DIR/eval.json")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--no-plot", action="store_true", help="no forecast_head.png with --eval")
    add_common_arguments(p)  # forecast draws no progress: --no-progress is accepted for symmetry
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the reason (or --help, --version)
        return int(exc.code or 0)
    log = setup_logging("rcfast.forecast", args.quiet)
    try:
        model, cfg, meta = load_model(args.checkpoint, args.device)
        panel = read_panel(args.panel, end_week=cfg.end_week or None,
                           min_weeks=cfg.context_length + 1)
        o = panel.end_week + 1
        prods = np.nonzero(panel.first_week < o)[0]
        mu, alpha = predict(model, cfg, panel, prods, o, args.device)
        tab, _ = forecast_table(panel, prods, o, mu, alpha, cfg.quantiles)
        _write_parquet(tab, Path(args.output))
        log.info("wrote %d rows (%d products x %d weeks from %s) to %s", tab.num_rows,
                 len(prods), cfg.horizon, date_of_week(o), args.output)
        if args.eval:
            ev = evaluate_run(meta["run_dir"], panel=read_panel(
                args.panel, end_week=cfg.end_week or None,
                min_weeks=cfg.context_length + 3 * cfg.horizon),
                device=args.device, plot=not args.no_plot)
            if not args.quiet:
                print(ev["table"])
            log.info("wrote %s", Path(meta["run_dir"]) / "eval.json")
    except (PanelError, ValueError, OSError) as e:  # OSError: missing input, bad output path
        log.error("%s", one_line(e))
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
