"""Training that fits the machine: precision by hardware, data placement, a free port each.

The choice functions are tested on given CPU flags and memory sizes (every branch, whatever this
machine is); the launches are real ``deepspeed`` CPU runs (``DS_ACCELERATOR=cpu``), two of them
started at once on this machine without ``--master_port``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("deepspeed")

from rcfast.nn.hardware import (apply_precision, choose_data_placement,  # noqa: E402
                                choose_precision, cpu_flags, panel_device_bytes)
from rcfast.nn.launch import (DEEPSPEED_DEFAULT_PORT, agree_on_free_port,  # noqa: E402
                              port_file, release_port_file)

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "train" / "run.py"
CONFIGS = REPO / "train" / "configs"
AUTO = {"bf16": {"enabled": "auto"}, "zero_optimization": {"stage": 1}}
FP16 = json.loads((CONFIGS / "zero2_fp16.json").read_text())
BF16 = json.loads((CONFIGS / "zero1_bf16_cpu.json").read_text())


# ------------------------------------------------------------------------------- precision
def test_cpu_flags_parse():
    text = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512_bf16\n\nprocessor\t: 1\nflags : x\n"
    assert cpu_flags(text) == {"fpu", "sse2", "avx2", "avx512_bf16"}
    assert cpu_flags("processor : 0\n") == set()
    assert cpu_flags("Features : fp asimd bf16\n") == {"fp", "asimd", "bf16"}  # arm64 spelling


@pytest.mark.parametrize("flags, want", [
    ({"avx2", "fma"}, "fp32"),                       # this project's EPYC kind: bf16 emulated
    ({"avx2", "avx512f", "avx512_bf16"}, "bf16"),    # Cooper Lake, Zen 4
    ({"avx2", "amx_tile", "amx_bf16"}, "bf16"),      # Sapphire Rapids
    (set(), "fp32"),
])
def test_auto_on_cpu_by_flags(flags, want):
    got, why = choose_precision("auto", AUTO, "cpu", flags=flags)
    assert got == want and why.startswith("auto:")
    # a config without any precision section is auto as well
    assert choose_precision("auto", {}, "cpu", flags=flags)[0] == want


@pytest.mark.parametrize("gpu_bf16, want", [(True, "bf16"), (False, "fp16")])
def test_auto_on_gpu(gpu_bf16, want):
    got, why = choose_precision("auto", AUTO, "cuda", gpu_bf16=gpu_bf16)
    assert got == want and "cuda" in why


def test_explicit_choice_wins():
    # --precision over everything, the hardware included
    for p in ("fp32", "fp16", "bf16"):
        assert choose_precision(p, BF16, "cpu", flags=set()) == (p, f"--precision {p}")
    # a config that enables a precision explicitly, over the hardware
    assert choose_precision("auto", BF16, "cpu", flags=set())[0] == "bf16"
    assert choose_precision("auto", FP16, "cuda", gpu_bf16=True)[0] == "fp16"
    with pytest.raises(ValueError, match="both"):
        choose_precision("auto", {"fp16": {"enabled": True}, "bf16": {"enabled": True}}, "cpu")
    with pytest.raises(ValueError, match="precision"):
        choose_precision("fp8", AUTO, "cpu")


def test_apply_precision_writes_the_deepspeed_config():
    assert apply_precision(AUTO, "fp32")["bf16"] == {"enabled": False}
    assert "fp16" not in apply_precision(AUTO, "fp32")
    assert apply_precision(AUTO, "bf16")["bf16"] == {"enabled": True}
    on = apply_precision(FP16, "bf16")
    assert on["bf16"] == {"enabled": True} and on["fp16"]["enabled"] is False
    assert on["fp16"]["loss_scale_window"] == FP16["fp16"]["loss_scale_window"]  # kept
    back = apply_precision(FP16, "fp16")["fp16"]
    assert back == FP16["fp16"]
    assert AUTO["bf16"] == {"enabled": "auto"}  # the input is not changed


def test_shipped_cpu_configs_leave_precision_to_the_hardware():
    for z in (1, 2, 3):
        cfg = json.loads((CONFIGS / f"zero{z}_cpu.json").read_text())
        assert cfg["bf16"] == {"enabled": "auto"} and "fp16" not in cfg
        assert cfg["zero_optimization"]["stage"] == z
        for flags, want in (({"avx2"}, "fp32"), ({"avx512_bf16"}, "bf16")):
            assert choose_precision("auto", cfg, "cpu", flags=flags)[0] == want


# ------------------------------------------------------------------------------- placement
def test_data_placement():
    gib = 2**30
    need = panel_device_bytes(10**9, 10**7, 10**6)
    assert need == 10**9 * 8 + (10**7 + 1) * 8 + 6 * 10**7 * 8 + 2 * 10**6 * 8
    assert choose_data_placement("auto", "cuda", need, 80 * gib)[0] == "device"
    where, why = choose_data_placement("auto", "cuda", need, 12 * gib)
    assert where == "host" and "pinned" in why
    assert choose_data_placement("auto", "cuda", need, None)[0] == "host"
    assert choose_data_placement("auto", "cpu", need, None)[0] == "device"
    assert choose_data_placement("host", "cuda", 1, 80 * gib)[0] == "host"
    assert choose_data_placement("device", "cuda", need, 1)[0] == "device"
    with pytest.raises(ValueError):
        choose_data_placement("gpu", "cuda", 1, 1)


# ------------------------------------------------------------------------------- ports
def test_port_agreement_rules(tmp_path, monkeypatch):
    # an explicit port stays; a world of one takes a free one
    env = {"MASTER_PORT": "12345", "WORLD_SIZE": "1"}
    assert not agree_on_free_port(env) and env["MASTER_PORT"] == "12345"
    env = {"MASTER_PORT": DEEPSPEED_DEFAULT_PORT, "WORLD_SIZE": "1"}
    assert agree_on_free_port(env) and env["MASTER_PORT"] != DEEPSPEED_DEFAULT_PORT
    # several nodes: a port file cannot reach them, the given port stays
    env = {"MASTER_PORT": DEEPSPEED_DEFAULT_PORT, "WORLD_SIZE": "4", "LOCAL_SIZE": "2",
           "CROSS_SIZE": "2", "LOCAL_RANK": "0"}
    assert not agree_on_free_port(env) and env["MASTER_PORT"] == DEEPSPEED_DEFAULT_PORT
    # one node, several ranks: the non-zero local rank reads what local rank 0 wrote
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    env0 = {"MASTER_PORT": DEEPSPEED_DEFAULT_PORT, "WORLD_SIZE": "2", "LOCAL_SIZE": "2",
            "LOCAL_RANK": "0"}
    env1 = dict(env0, LOCAL_RANK="1")
    with pytest.raises(RuntimeError, match="no rendezvous port"):  # rank 0 never wrote one
        agree_on_free_port(dict(env1), timeout_s=0.0)
    assert agree_on_free_port(env0) and agree_on_free_port(env1)
    assert env0["MASTER_PORT"] == env1["MASTER_PORT"] != DEEPSPEED_DEFAULT_PORT
    assert port_file().read_text() == env0["MASTER_PORT"]
    release_port_file()
    assert not list(tmp_path.iterdir())


TINY = ["--set", "d_model=16", "--set", "n_heads=2", "--set", "d_ff=32", "--set", "n_layers=1",
        "--set", "log_every=1", "--set", "eval_every=0", "--set", "eval_batch_size=512",
        "--set", "warmup_steps=2", "--set", "lr=0.01", "--set", "micro_batch_size=16",
        "--set", "ckpt_every=0", "--max-steps", "8", "--no-eval"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO),
               TQDM_DISABLE="1")
    return env


def _deepspeed() -> list[str]:
    exe = shutil.which("deepspeed")
    return [exe] if exe else [sys.executable, "-m", "deepspeed.launcher.runner"]


def test_two_trainings_at_once_both_finish(train_panel, tmp_path):
    """Two 2-rank runs started together, neither given --master_port (both would take
    DeepSpeed's 29500): each agrees on its own free port and finishes. One keeps its data on
    the device, the other takes the streaming path (host memory, a copy per batch): same
    weights. Their precision is what the hardware of this machine calls for."""
    procs = {}
    for name, placement in (("a", "device"), ("b", "host")):
        cmd = [*_deepspeed(), "--num_gpus", "2", str(RUN), "--panel", str(train_panel),
               "--out", str(tmp_path / name), "--deepspeed_config",
               str(CONFIGS / "zero1_cpu.json"), *TINY, "--set", f"data_placement={placement}"]
        procs[name] = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
    outs = {}
    deadline = time.monotonic() + 600
    for name, p in procs.items():
        try:
            outs[name] = p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
        except subprocess.TimeoutExpired:
            for q in procs.values():
                q.kill()
            pytest.fail(f"run {name} did not finish in 600 s")
    for name, p in procs.items():
        assert p.returncode == 0, f"run {name} failed:\n{outs[name][-4000:]}"
    hp = {n: json.loads((tmp_path / n / "hparams.json").read_text()) for n in procs}
    ports = {n: hp[n]["master_port"] for n in procs}
    assert DEEPSPEED_DEFAULT_PORT not in ports.values() and ports["a"] != ports["b"], ports
    assert hp["a"]["data_placement"]["chosen"] == "device"
    assert hp["b"]["data_placement"]["chosen"] == "host"
    want, _ = choose_precision("auto", {"bf16": {"enabled": "auto"}}, "cpu")
    for n in procs:
        assert hp[n]["world_size"] == 2
        assert hp[n]["precision"]["chosen"] == want, hp[n]["precision"]
        assert hp[n]["deepspeed_config"]["bf16"]["enabled"] is (want == "bf16")
        assert f"precision {want}" in outs[n]  # the log says it too
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=False)["state_dict"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_precision_flag_wins_in_a_run(train_panel, tmp_path):
    """--precision bf16 on a config that leaves it to the hardware: the run records it."""
    r = subprocess.run([sys.executable, str(RUN), "--panel", str(train_panel), "--out",
                        str(tmp_path / "r"), "--deepspeed_config", str(CONFIGS / "zero1_cpu.json"),
                        *TINY, "--max-steps", "2", "--precision", "bf16"],
                       env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    hp = json.loads((tmp_path / "r" / "hparams.json").read_text())
    assert hp["precision"] == {"requested": "bf16", "chosen": "bf16",
                               "reason": "--precision bf16"}
    assert hp["deepspeed_config"]["bf16"]["enabled"] is True


def test_sigusr1_outside_slurm_checkpoints_and_stops(train_panel, tmp_path):
    """Without Slurm a SIGUSR1 still checkpoints at the next step boundary and stops with
    status 75 (nothing to requeue); --resume then finishes the run."""
    import signal

    out = tmp_path / "r"
    args = [sys.executable, str(RUN), "--panel", str(train_panel), "--out", str(out),
            "--deepspeed_config", str(CONFIGS / "zero1_cpu.json"), *TINY, "--max-steps", "2000"]
    env = {k: v for k, v in _env().items() if not k.startswith("SLURM_")}
    p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        deadline = time.monotonic() + 300
        while not _logged_step(out, 5):
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()[1][-3000:]
            time.sleep(0.1)
        p.send_signal(signal.SIGUSR1)
        _, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 75, err[-3000:]
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    stop = [r for r in recs if "requeued" in r]
    assert len(stop) == 1 and stop[0]["requeued"] is False
    k = stop[0]["step"]
    assert 5 <= k < 2000 and (out / "checkpoints" / f"step{k:08d}").is_dir()
    assert "not a Slurm job" in err and not (out / "model.pt").exists()
    r = subprocess.run(args + ["--resume", "--max-steps", str(k + 3)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / f"hparams.resume{k}.json").exists() and (out / "model.pt").exists()


def _logged_step(run: Path, step: int) -> bool:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return False
    return any(json.loads(x).get("step", 0) >= step for x in lines if x.endswith("}"))
