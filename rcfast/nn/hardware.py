"""What the machine a run lands on decides: the precision and where the training data live.

**Precision.** :func:`choose_precision` resolves ``auto`` (the default of ``train/run.py
--precision``): on a GPU bf16 where the GPU supports it, else fp16; on a CPU bf16 only where the
CPU has native bf16 arithmetic (the ``avx512_bf16`` or ``amx_bf16`` flag of ``/proc/cpuinfo``),
else fp32, because elsewhere bf16 is emulated and a step takes 3-7x longer than in fp32 (figures
in docs/training.md). An explicit choice always wins: ``--precision fp32|fp16|bf16`` first, then
a DeepSpeed config whose ``fp16`` or ``bf16`` section says ``"enabled": true``. A config section
that says ``"enabled": "auto"`` (the ``zero*_cpu.json`` configs) or none leaves it to the
hardware. :func:`apply_precision` writes the choice into the DeepSpeed config.

**Data placement.** :func:`choose_data_placement`: the panel's tensors (and the origin sampler's)
go to the accelerator when they take at most ``DEVICE_SHARE`` of its free memory; otherwise they
stay in host memory (pinned, so that the per-step copy of a batch is asynchronous) and each batch
is gathered on the host and copied to the device.
"""

from __future__ import annotations

from pathlib import Path

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: /proc/cpuinfo flags of native bf16 arithmetic (AVX512-BF16 on Cooper Lake / Zen 4 and later;
#: AMX on Sapphire Rapids and later)
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: the share of the accelerator's free memory the data may take (the rest: model, optimizer,
#: activations of a batch, the allocator's slack)
DEVICE_SHARE = 0.5


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The ``flags`` of the first CPU in ``/proc/cpuinfo`` (empty where there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def _config_choice(ds_config: dict) -> str | None:
    """The precision a DeepSpeed config asks for explicitly (``"enabled": true``), else None."""
    on = [name for name in ("fp16", "bf16")
          if (ds_config.get(name) or {}).get("enabled") is True]
    if len(on) > 1:
        raise ValueError("the DeepSpeed config enables both fp16 and bf16")
    return on[0] if on else None


def choose_precision(requested: str, ds_config: dict, device_type: str, *,
                     flags: set[str] | None = None,
                     gpu_bf16: bool | None = None) -> tuple[str, str]:
    """(precision, reason): ``fp32``, ``fp16`` or ``bf16`` and why it was chosen.

    ``device_type``: ``"cpu"`` or an accelerator's (``"cuda"``, ...). ``flags``: the CPU's
    flags (default: this machine's). ``gpu_bf16``: whether the accelerator supports bf16
    (default: asks torch).
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    if requested != "auto":
        return requested, f"--precision {requested}"
    cfg = _config_choice(ds_config)
    if cfg is not None:
        return cfg, f'the DeepSpeed config sets "{cfg}": {{"enabled": true}}'
    if device_type == "cpu":
        flags = cpu_flags() if flags is None else flags
        native = sorted(f for f in NATIVE_BF16_FLAGS if f in flags)
        if native:
            return "bf16", f"auto: CPU with native bf16 ({', '.join(native)})"
        return "fp32", ("auto: CPU without native bf16 (no avx512_bf16/amx_bf16 flag; bf16 "
                        "would be emulated, several times slower than fp32)")
    if gpu_bf16 is None:
        import torch
        gpu_bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if gpu_bf16:
        return "bf16", f"auto: {device_type} device with bf16 support"
    return "fp16", f"auto: {device_type} device without bf16 support"


def apply_precision(ds_config: dict, precision: str) -> dict:
    """A copy of ``ds_config`` with fp16/bf16 enabled as ``precision`` says (other keys of an
    fp16 section, such as the loss scaling, are kept)."""
    out = dict(ds_config)
    for name in ("fp16", "bf16"):
        sec = dict(out.get(name) or {})
        if name == precision:
            sec["enabled"] = True
            out[name] = sec
        elif sec:
            sec["enabled"] = False
            out[name] = sec
    return out


# ------------------------------------------------------------------------------------------
# where the data live
# ------------------------------------------------------------------------------------------
PLACEMENTS = ("auto", "device", "host")


def panel_device_bytes(n_dense_rows: int, n_products: int, n_focus_windows: int = 0,
                       channels: int = 2) -> int:
    """Bytes the training data take on the device: the values store (float32), offsets,
    store_start, first_week (int64 each) and the sampler's per-product weights, CDF
    (float64), first origin and origin count (int64), and its focus windows (2 x int64)."""
    return (n_dense_rows * channels * 4 + (n_products + 1) * 8 + 2 * n_products * 8
            + 4 * n_products * 8 + 2 * n_focus_windows * 8)


def choose_data_placement(requested: str, device_type: str, need_bytes: int,
                          free_bytes: int | None) -> tuple[str, str]:
    """(``"device"`` or ``"host"``, reason). On a CPU the two are the same memory; ``host``
    there still takes the streaming code path (gather, then copy), which is how it is tested."""
    if requested not in PLACEMENTS:
        raise ValueError(f"data_placement must be one of {PLACEMENTS}, got {requested!r}")
    if requested != "auto":
        return requested, f"data_placement={requested}"
    if device_type == "cpu":
        return "device", "auto: CPU run, the data are in host memory either way"
    gib = 2.0**30
    if free_bytes is not None and need_bytes <= DEVICE_SHARE * free_bytes:
        return "device", (f"auto: the data ({need_bytes / gib:.2f} GiB) fit in "
                          f"{DEVICE_SHARE:.0%} of the device's free {free_bytes / gib:.1f} GiB")
    free = "unknown" if free_bytes is None else f"{free_bytes / gib:.1f} GiB"
    return "host", (f"auto: the data ({need_bytes / gib:.2f} GiB) exceed {DEVICE_SHARE:.0%} of "
                    f"the device's free memory ({free}): pinned host memory, batches copied "
                    f"per step")
