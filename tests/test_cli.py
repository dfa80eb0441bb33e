"""The command-line convention shared by rcfast's commands: the ``rcfast`` entry point,
``--version``, ``-q``/``--no-progress``, progress in log files, and exit 2 with one line for
every bad input or output path (tests for ``rcfast combine`` and ``rcfast synth``)."""

from __future__ import annotations

import gzip
import json
import logging
import os
import resource
import signal
import subprocess
import sys

import pytest

import rcfast
from rcfast import _cli, combine as combine_mod, forecast, synth
from rcfast.__main__ import COMMANDS
from rcfast.__main__ import main as rcfast_main


def _line(i: int) -> str:
    return json.dumps({"parent_asin": f"P{i % 7}", "user_id": f"u{i}", "rating": 4.0,
                       "timestamp": 1_600_000_000_000 + i * 86_400_000, "text": "ok",
                       "helpful_vote": 0, "verified_purchase": True})


@pytest.fixture
def dump(tmp_path):
    src = tmp_path / "in.jsonl.gz"
    src.write_bytes(gzip.compress("".join(_line(i) + "\n" for i in range(3000)).encode()))
    return src


def _one_error_line(err: str, prog: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


# ------------------------------------------------------------------------ entry point


def test_rcfast_lists_its_commands(capsys):
    assert rcfast_main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("weekly", "combine", "forecast", "synth", "bench"):
        assert f"  {name} " in out
    assert rcfast_main([]) == 2
    assert rcfast_main(["nonsense"]) == 2
    assert "unknown command 'nonsense'" in capsys.readouterr().err


def test_weekly_dispatches_to_rcfast_weekly_main():
    import rcfast.weekly

    module, _, func = COMMANDS["weekly"][0].partition(":")
    assert (module, func) == ("rcfast.weekly", "main")
    assert getattr(rcfast.weekly, func) is rcfast.weekly.main


def test_dispatch_passes_the_arguments_and_the_exit_status(tmp_path, capsys):
    assert rcfast_main(["synth", "-o", str(tmp_path / "s.parquet"), "--rows", "100", "-q"]) == 0
    assert (tmp_path / "s.parquet").exists()
    assert rcfast_main(["synth", "--rows", "10"]) == 2  # no -o


@pytest.mark.parametrize("main", [combine_mod.main, forecast.main, synth.main])
def test_version_on_every_command(main, capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip().endswith(rcfast.__version__)


def test_version_of_the_entry_point(capsys):
    assert rcfast_main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"rcfast {rcfast.__version__}"


@pytest.mark.parametrize("main", [combine_mod.main, forecast.main, synth.main])
def test_help_has_examples_and_the_same_quiet_and_progress_options(main, capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "-q, --quiet" in out and "--no-progress" in out


# -------------------------------------------------------------------------- progress


def test_progress_in_a_log_file_is_periodic_lines(capsys):
    _cli.setup_logging("rcfast.test")
    try:
        bar = _cli.progress_bar(True, 300, "read", interval=0.0)  # stderr captured: no terminal
        for _ in range(3):
            bar.update(100)
        bar.close()
        err = capsys.readouterr().err
        lines = err.splitlines()
        assert len(lines) == 4 and "\r" not in err
        assert lines[0].startswith("rcfast.test: read: 100 of 300 row (33 %)")
        assert "(100 %)" in lines[-1]
        assert isinstance(_cli.progress_bar(False, 300, "read"), _cli._NoBar)
    finally:
        logging.getLogger("rcfast").handlers.clear()


def test_quiet_prints_nothing_but_warnings(dump, tmp_path, capsys):
    assert combine_mod.main([str(dump), "-o", str(tmp_path / "out"), "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ------------------------------------------------------------------- combine: bad paths


def _read_only_dir(tmp_path):
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ro
    # root ignores permission bits: sysfs refuses new entries to everyone
    if not os.path.isdir("/sys/kernel") or os.access("/sys", os.W_OK) and _mkdir_works("/sys"):
        pytest.skip("no read-only directory available to root here")
    return "/sys"


def _mkdir_works(parent) -> bool:
    try:
        os.mkdir(os.path.join(parent, "rcfast-probe"))
    except OSError:
        return False
    os.rmdir(os.path.join(parent, "rcfast-probe"))
    return True


def test_combine_output_in_a_read_only_directory(dump, tmp_path, capsys):
    out = os.path.join(_read_only_dir(tmp_path), "out")
    assert combine_mod.main([str(dump), "-o", out, "--no-progress"]) == 2
    line = _one_error_line(capsys.readouterr().err, "rcfast.combine")
    assert f"-o {out}" in line


def test_combine_output_under_an_existing_file(dump, tmp_path, capsys):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    out = afile / "out"
    assert combine_mod.main([str(dump), "-o", str(out), "--no-progress"]) == 2
    line = _one_error_line(capsys.readouterr().err, "rcfast.combine")
    assert f"-o {out}: {afile} is a file, not a directory" in line
    assert afile.read_text() == "x"


def test_combine_output_that_is_a_file(dump, tmp_path, capsys):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    assert combine_mod.main([str(dump), "-o", str(afile), "--no-progress"]) == 2
    assert "not a directory" in _one_error_line(capsys.readouterr().err, "rcfast.combine")


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_combine_disk_full(dump, tmp_path):
    # a run without the limit first: Numba's cache of the kernels is then written already
    assert combine_mod.main([str(dump), "-o", str(tmp_path / "warm"), "-q"]) == 0
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "rcfast.combine", str(dump), "-o", str(out),
                        "--no-progress"], preexec_fn=_file_size_limit(20_000),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    line = _one_error_line(r.stderr, "rcfast.combine")
    assert "File too large" in line and str(out) in line
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]  # cleaned up


def test_combine_ctrl_c_exits_130(dump, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(combine_mod, "combine", interrupted)
    assert combine_mod.main([str(dump), "-o", str(tmp_path / "out"), "--no-progress"]) == 130
    assert "interrupted" in _one_error_line(capsys.readouterr().err, "rcfast.combine")


@pytest.mark.parametrize("content", [b"", gzip.compress(b"")], ids=["empty", "empty-gzip"])
def test_combine_empty_input_warns(tmp_path, capsys, content):
    src = tmp_path / ("empty.jsonl" if not content else "empty.jsonl.gz")
    src.write_bytes(content)
    out = tmp_path / "out"
    assert combine_mod.main([str(src), "-o", str(out), "--no-progress", "-q"]) == 0
    err = capsys.readouterr().err
    assert f"rcfast.combine: warning: {src.name}: the file holds no rows" in err
    summary = json.loads((out / "_summary.json").read_text())
    assert any("holds no rows" in w for w in summary["warnings"])


def test_combine_file_with_rows_gives_no_empty_warning(dump, tmp_path, capsys):
    assert combine_mod.main([str(dump), "-o", str(tmp_path / "out"), "--no-progress",
                             "-q"]) == 0
    assert "no rows" not in capsys.readouterr().err


# --------------------------------------------------------------------- synth: bad paths


def test_synth_output_under_an_existing_file(tmp_path, capsys):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    assert synth.main(["-o", str(afile / "s.parquet"), "--rows", "100", "-q"]) == 2
    assert "-o " in _one_error_line(capsys.readouterr().err, "rcfast.synth")


def test_synth_output_in_a_read_only_directory(tmp_path, capsys):
    out = os.path.join(_read_only_dir(tmp_path), "s.parquet")
    assert synth.main(["-o", out, "--rows", "100", "-q"]) == 2
    _one_error_line(capsys.readouterr().err, "rcfast.synth")


def test_synth_disk_full(tmp_path):
    out = tmp_path / "s.parquet"
    r = subprocess.run([sys.executable, "-m", "rcfast.synth", "-o", str(out), "--rows", "1e5",
                        "-q"], preexec_fn=_file_size_limit(50_000), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    _one_error_line(r.stderr, "rcfast.synth")
    assert not out.exists()
