"""Out of core: the spilled run equals the in-memory run, cell for cell; scratch and temporary
outputs never outlive a run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import MONDAY_MS, WEEK_MS, reviews
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_weekly_hypothesis import review_tables

from rcfast.weekly import main
from rcfast.weekly.partitions import plan_partitions
from rcfast.weekly.spill import plan_memory

SPILL = ["--memory-limit", "1MB"]  # far below any input: always out of core


def _panel(path):
    return pq.read_table(path).replace_schema_metadata(None)


def _summary(path):
    return json.loads(path.with_suffix(".summary.json").read_text())


def _same_run(tmp_path, inputs, extra=(), partitions=5, name="x"):
    """In memory and out of core with ``partitions``: identical panels and counts."""
    mem, spill = tmp_path / f"{name}-mem.parquet", tmp_path / f"{name}-spill.parquet"
    scratch = tmp_path / "scratch"
    assert main([*map(str, inputs), "-o", str(mem), "--quiet", *extra]) == 0
    assert main([*map(str, inputs), "-o", str(spill), "--quiet", *SPILL, "--partitions",
                 str(partitions), "--tmp-dir", str(scratch), *extra]) == 0
    a, b = _panel(mem), _panel(spill)
    assert a.schema == b.schema
    assert a.equals(b), (a.num_rows, b.num_rows)
    sa, sb = _summary(mem), _summary(spill)
    for k in ("rows_read", "rows_aggregated", "rows_rejected", "rejected", "rejected_examples",
              "products", "panel_rows", "first_week", "last_week"):
        assert sa[k] == sb[k], k
    assert sb["options"]["out_of_core"] is True and sa["options"]["out_of_core"] is False
    assert not list(scratch.iterdir()), "scratch left behind"
    return b, sb


def _rows(products, weeks, seed=0):
    """Reviews of ``products`` spread over ``weeks`` weeks, with some rows to set aside."""
    import random

    rng = random.Random(seed)
    out = []
    for i in range(len(products) * 7):
        p = products[i % len(products)]
        bad = rng.random()
        ms = MONDAY_MS + rng.randrange(-weeks, 1) * WEEK_MS + rng.randrange(WEEK_MS)
        rating = float(rng.choice([1, 2, 3, 4, 5, 3.5]))
        if bad < 0.03:
            rating = 7.0  # out of range: set aside
        out.append((None if bad > 0.985 else p, ms, rating, rng.randrange(5),
                    rng.random() < 0.6, rng.randrange(1, 900)))
    return out


def test_products_split_across_files_and_row_groups(tmp_path):
    products = [f"B{k:05d}" for k in range(120)] + ["", "é", "z" * 30, "A", "a"]
    t = reviews(_rows(products, 90))
    d = tmp_path / "in"
    d.mkdir()
    third = t.num_rows // 3
    # every product's rows lie in all three files, in row groups of 37 rows
    pq.write_table(t.slice(0, third), d / "a.parquet", row_group_size=37)
    pq.write_table(t.slice(third, third), d / "b.parquet", row_group_size=37)
    pq.write_table(t.slice(2 * third), d / "c.parquet", row_group_size=37)
    _, s = _same_run(tmp_path, [d], partitions=7)
    assert s["rows_rejected"] > 0 and s["options"]["partitions"] > 3


def test_key_pieces_and_dictionary_pieces_in_one_partition(tmp_path):
    """A block whose ids fit two-word keys writes key pieces; a block with a longer id writes
    dictionary pieces; a partition made of both encodes its products once, in byte order."""
    import numpy as np

    from rcfast.weekly.partitions import Block, PartitionPlan, load_partition, split_block
    from rcfast.weekly.read import ReadOptions

    short = ["B00A", "b", "B00Z", "m", "é"]
    long = "B00A" + "x" * 20  # 24 bytes: no key
    paths = []
    for name, ids in (("a", short), ("b", short + [long])):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(reviews(_rows(ids, 12, seed=len(ids))), path)
        paths.append(path)
    plan = PartitionPlan((b"B00Z",))  # partition 0: ids < "B00Z" (the long one included)
    scratch = tmp_path / "scratch"
    results = [split_block(Block(p, None, pq.ParquetFile(p).metadata.num_rows), ReadOptions(),
                           None, False, plan, scratch, f"b{k}") for k, p in enumerate(paths)]
    first_fields = [pa.ipc.open_file(r.pieces[0]).schema.names[0] for r in results]
    assert first_fields == ["key0", "product_id"]
    for part in range(2):
        cols = load_partition([r.pieces[part] for r in results])
        products = cols.products.to_pylist()
        assert products == sorted(products, key=lambda x: x.encode()) and len(set(products)) \
            == len(products)
        expected = sorted({i for i in short + [long] if (i.encode() < b"B00Z") == (part == 0)},
                          key=lambda x: x.encode())
        assert products == expected
        # every row's code names its product: the kept rows of file a, then of file b, in order
        kept = [pid for path in paths
                for pid, rating in zip(*pq.read_table(path, columns=["product_id", "rating"])
                                       .to_pydict().values())
                if pid in expected and 1 <= rating <= 5]
        assert np.all(cols.product_code >= 0)
        assert [products[c] for c in cols.product_code] == kept
        assert len(kept) == sum(r.part_rows[part] for r in results)


@pytest.mark.parametrize("extra", [["--dense"], ["--dense", "--until", "2021-03-20"],
                                   ["--until", "2020-12-31", "--windows", "2,5", "--lags", "3"]])
def test_options_out_of_core(tmp_path, extra):
    t = reviews(_rows([f"p{k}" for k in range(40)], 30, seed=4))
    src = tmp_path / "in.parquet"
    pq.write_table(t, src, row_group_size=50)
    _same_run(tmp_path, [src], extra=extra, partitions=4)


def test_one_product_larger_than_a_partition(tmp_path):
    """A product with most of the rows stays whole; its neighbours' partitions may be empty."""
    rows = _rows(["HUGE"] * 40, 150, seed=1) * 5 + _rows(["a", "b", "zz"], 10, seed=2)
    src = tmp_path / "in.parquet"
    pq.write_table(reviews(rows), src, row_group_size=100)
    panel, s = _same_run(tmp_path, [src], partitions=6)
    assert s["products"] == 4
    huge = panel.filter(pa.compute.equal(panel.column("product_id"), "HUGE"))
    assert huge.column("n_reviews_cum").to_pylist()[-1] > 1000


def test_more_partitions_than_products(tmp_path):
    src = tmp_path / "in.parquet"
    pq.write_table(reviews(_rows(["x", "y"], 5, seed=3)), src, row_group_size=3)
    _same_run(tmp_path, [src], partitions=25)


def test_no_rows_kept(tmp_path):
    """Every row set aside: an empty panel, out of core as in memory."""
    rows = [("p", MONDAY_MS, 9.0), ("q", MONDAY_MS + WEEK_MS, 0.0)]
    src = tmp_path / "in.parquet"
    pq.write_table(reviews(rows), src)
    panel, s = _same_run(tmp_path, [src], partitions=3)
    assert panel.num_rows == 0 and s["rows_rejected"] == 2


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(table=review_tables(), partitions=st.integers(1, 9), files=st.integers(1, 3),
       row_group=st.integers(1, 25), dense=st.booleans())
def test_random_tables_out_of_core(tmp_path_factory, table, partitions, files, row_group, dense):
    tmp_path = tmp_path_factory.mktemp("h")
    d = tmp_path / "in"
    d.mkdir()
    n = table.num_rows
    step = max(1, -(-n // files))
    for k, start in enumerate(range(0, max(n, 1), step)):
        pq.write_table(table.slice(start, step), d / f"f{k}.parquet", row_group_size=row_group)
    _same_run(tmp_path, [d], extra=["--dense"] if dense else [], partitions=partitions)


def test_splitters_cut_at_sample_quantiles():
    sample = [b"a"] * 50 + [b"b"] * 10 + [b"c"] * 40
    assert plan_partitions(sample, 2).splitters == (b"b",)
    assert plan_partitions(sample, 1).splitters == ()
    # a value that fills several quantiles is one partition: fewer, never empty splitters
    assert plan_partitions([b"k"] * 100, 8).splitters == ()
    assert plan_partitions(sample, 10).splitters == (b"b", b"c")


def test_memory_plan_fits_the_limit():
    fits = plan_memory(1_000_000, 8 << 30, "test")
    assert not fits.spill
    big = plan_memory(318_000_000, 1_000_000_000, "test")
    assert big.spill and big.n_parts * big.partition_rows >= 318_000_000
    from rcfast.weekly.spill import PARTITION_BYTES_PER_ROW, PROCESS_BASE

    assert PROCESS_BASE + PARTITION_BYTES_PER_ROW * big.partition_rows <= 1_000_000_000


def test_memory_limit_from_slurm(tmp_path, monkeypatch):
    from rcfast.resources import available_memory

    monkeypatch.setenv("SLURM_MEM_PER_NODE", "3000")
    assert available_memory() == (3000 << 20, "SLURM_MEM_PER_NODE")
    monkeypatch.delenv("SLURM_MEM_PER_NODE")
    monkeypatch.setenv("SLURM_MEM_PER_CPU", "1000")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert available_memory() == (3000 << 20, "SLURM_MEM_PER_CPU x cpus")
    src = tmp_path / "in.parquet"
    pq.write_table(reviews(_rows(["a", "b"], 4)), src)
    assert main([str(src), "-o", str(tmp_path / "p.parquet"), "--quiet"]) == 0
    s = _summary(tmp_path / "p.parquet")
    assert s["options"]["memory_limit"] == 1500 << 20  # half of 3 x 1000 MB


def test_bad_memory_limit(tmp_path, capsys):
    src = tmp_path / "in.parquet"
    pq.write_table(reviews(_rows(["a"], 4)), src)
    assert main([str(src), "-o", str(tmp_path / "p.parquet"), "--memory-limit", "lots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--memory-limit" in err[0] and "1GB" in err[0]


def _big_input(tmp_path, n=1_500_000):
    from rcfast import synth

    return synth.write_parquet(tmp_path / "big.parquet", n, seed=2, row_group_rows=100_000,
                               compression="snappy")


@pytest.mark.parametrize("failure", ["error", "interrupt"])
@pytest.mark.parametrize("stage", ["cut_block", "write_pieces"])
def test_scratch_removed_after_error_and_ctrl_c(tmp_path, monkeypatch, capsys, failure, stage):
    """A failure while a block is cut (this thread) or while its pieces are written (the
    writer thread): exit status, one line, and no scratch or output left."""
    import rcfast.weekly.spill as spill

    src = tmp_path / "in.parquet"
    pq.write_table(reviews(_rows([f"p{k}" for k in range(30)], 20)), src, row_group_size=40)
    real = getattr(spill, stage)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # after two blocks are on scratch
            if failure == "error":
                raise OSError(28, "No space left on device", str(tmp_path / "scratch"))
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(spill, stage, failing)
    scratch = tmp_path / "scratch"
    out = tmp_path / "p.parquet"
    rc = main([str(src), "-o", str(out), *SPILL, "--partitions", "3", "--tmp-dir",
               str(scratch)])
    assert rc == (2 if failure == "error" else 130)
    assert not list(scratch.iterdir())
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    err = capsys.readouterr().err.strip().splitlines()
    assert err and (failure != "error" or "No space left" in err[-1])


def _spilling(src, out, scratch) -> subprocess.Popen:
    """An out-of-core CLI run, returned once its first pieces are on scratch."""
    cmd = [sys.executable, "-m", "rcfast.weekly", str(src), "-o", str(out), "--quiet",
           "--memory-limit", "1MB", "--partitions", "4", "--tmp-dir", str(scratch)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if scratch.is_dir() and list(scratch.rglob("*.arrow")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()
    return proc


def test_killed_run_leaves_no_output_and_the_next_cleans_up(tmp_path):
    """SIGKILL in the middle of the out-of-core run: no complete-looking output; the next
    run on this host removes the scratch and temporary output the dead one left."""
    src = _big_input(tmp_path)
    scratch = tmp_path / "scratch"
    out = tmp_path / "panel"
    proc = _spilling(src, out, scratch)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    left = [p.name for p in scratch.iterdir()]
    assert len(left) == 1 and left[0].startswith(
        f"rcfast-scratch-{socket.gethostname()}-{proc.pid}-")
    # a temporary output of a killed run, as a dead pid on this host leaves it
    stale = tmp_path / f".panel.tmp-{socket.gethostname()}-{proc.pid}"
    stale.mkdir()
    (stale / "part-00000.parquet").write_bytes(b"half")
    assert main([str(src), "-o", str(out), "--quiet", "--memory-limit", "1MB",
                 "--partitions", "4", "--tmp-dir", str(scratch)]) == 0
    assert not stale.exists() and not list(scratch.iterdir())
    assert pq.read_table(out).num_rows > 0


def test_sigterm_removes_scratch_and_writes_no_output(tmp_path):
    """SIGTERM (Slurm's scancel or time limit) in the middle of the out-of-core run: exit 143,
    one line, no output, and the run's own scratch removed (not left for the next run)."""
    src = _big_input(tmp_path)
    scratch = tmp_path / "scratch"
    out = tmp_path / "panel.parquet"
    proc = _spilling(src, out, scratch)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1].decode().strip().splitlines()
    assert proc.returncode == 143, err
    assert err and "terminated" in err[-1]
    assert not list(scratch.iterdir())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".panel")] and not out.exists()


def test_a_signal_inside_a_numba_callback_is_still_that_signal():
    """SIGTERM or Ctrl-C that lands while Numba calls back into Python (its cache's unpickling)
    reaches the CLI as a SystemError caused by it: the CLI still sees the signal."""
    from rcfast._cli import Terminated, raised_by

    try:
        try:
            raise Terminated()
        except Terminated as inner:
            raise SystemError("returned a result with an exception set") from inner
    except SystemError as exc:
        assert raised_by(exc, Terminated) and not raised_by(exc, KeyboardInterrupt)
    assert not raised_by(SystemError("other"), Terminated)


def test_output_under_a_file_is_one_line_exit_2(tmp_path, capsys):
    src = tmp_path / "in.parquet"
    pq.write_table(reviews(_rows(["a"], 4)), src)
    (tmp_path / "file").write_text("x")
    for extra in ([], SPILL):
        assert main([str(src), "-o", str(tmp_path / "file" / "p.parquet"), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "file" in err[0], err


def test_full_disk_is_one_line_exit_2(tmp_path):
    """Writes past a file-size limit fail as on a full disk (EFBIG): exit 2, one line, no
    output, no scratch; the same for the Dask workers, which inherit the limit."""
    import resource

    src = _big_input(tmp_path, 400_000)

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    for extra in (["--memory-limit", "1MB", "--partitions", "3"], ["--workers", "2"]):
        scratch = tmp_path / "scratch"
        out = tmp_path / "panel.parquet"
        proc = subprocess.run([sys.executable, "-m", "rcfast.weekly", str(src), "-o", str(out),
                               "--quiet", "--tmp-dir", str(scratch), *extra],
                              capture_output=True, text=True, preexec_fn=limit, timeout=600)
        assert proc.returncode == 2, proc.stderr
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("rcfast")]
        assert len(lines) == 1 and "cannot write" in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr
        assert not out.exists() and not list(scratch.iterdir())
        assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_environment_untouched_by_spill(tmp_path):
    before = dict(os.environ)
    src = tmp_path / "in.parquet"
    pq.write_table(reviews(_rows(["a", "b"], 4)), src)
    assert main([str(src), "-o", str(tmp_path / "p.parquet"), "--quiet", *SPILL]) == 0
    assert dict(os.environ) == before
