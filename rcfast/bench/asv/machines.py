"""Where asv's files are, and which machine results belong to: register this machine with asv
(``asv machine``), the machines asv knows, the one whose results are stored.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from rcfast.bench.machine import cpu_model
from rcfast.bench.options import make_parser

REPO = Path(__file__).resolve().parents[3]
ASV_DIR = REPO / "asv_bench"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def machine_names() -> list[str]:
    path = Path.home() / ".asv-machine.json"
    if not path.exists():
        return []
    return [k for k in json.loads(path.read_text()) if k != "version"]


def _default_machine(given: str | None) -> str:
    if given:
        return given
    names = machine_names()
    if len(names) != 1:
        raise SystemExit("error: name the machine with --machine (asv knows "
                         f"{names or 'none'}; register one with `python -m rcfast.bench asv "
                         "machine --machine NAME`)")
    return names[0]


def _stored_machine() -> str:
    names = sorted(d.name for d in (ASV_DIR / "results").iterdir()
                   if (d / "machine.json").exists())
    if not names:
        raise SystemExit("error: no results stored in asv_bench/results")
    return names[0]


def add_machine_argument(p: argparse.ArgumentParser, default: str) -> None:
    """``--machine NAME``, the asv machine a subcommand works on; ``default`` says which one it
    takes when none is given."""
    p.add_argument("--machine", default=None, metavar="NAME",
                   help=f"asv machine name (default: {default})")


def cmd_machine(argv: list[str]) -> int:
    p = make_parser(
        "python -m rcfast.bench asv machine",
        "Register this machine with asv: its name, and a description of the hardware (CPU\n"
        "model, cores, memory, OS) that asv stores with every result.",
        ["python -m rcfast.bench asv machine --machine epyc-2c-shared",
         "python -m rcfast.bench asv machine --machine box --note 'shared with two other "
         "benchmark runners'"])
    p.add_argument("--machine", required=True, metavar="NAME",
                   help="the name results are stored under")
    p.add_argument("--note", default="",
                   help="what else a reader of the timings must know, e.g. 'shared with two "
                        "other benchmark runners' (default: none)")
    args = p.parse_args(argv)
    import psutil

    cores = os.cpu_count() or 1
    cpu = f"{cpu_model()}, {cores} cores" + (f"; {args.note}" if args.note else "")
    ram = f"{psutil.virtual_memory().total / 2**30:.0f}GB"
    os_name = f"{platform.system()} {platform.release()} ({platform.libc_ver()[0]})"
    return subprocess.run(["asv", "machine", "--machine", args.machine, "--os", os_name,
                           "--arch", platform.machine(), "--cpu", cpu, "--num_cpu", str(cores),
                           "--ram", ram, "--yes"], cwd=ASV_DIR).returncode
