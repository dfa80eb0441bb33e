"""``python -m rcfast.weekly`` as a user runs it: real Parquet files in, real Parquet out."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from helpers import MONDAY_MS, WEEK_MS, reviews

from naive import assert_panel_equal, naive_panel, table_to_naive_input
from rcfast.weekly import SUMMARY_KEY, main, weekly_panel


def sample_table(n=500, seed=0, products=37) -> pa.Table:
    rng = np.random.default_rng(seed)
    rows = [(f"P{rng.integers(products):03d}",
             int(MONDAY_MS + rng.integers(-30, 30) * WEEK_MS + rng.integers(0, WEEK_MS)),
             float(rng.integers(1, 6)), int(rng.integers(0, 4)), bool(rng.random() < 0.8),
             int(rng.integers(0, 900))) for _ in range(n)]
    return reviews(rows)


def write(table, path, **kw):
    pq.write_table(table, path, **kw)
    return str(path)


def test_file_in_file_out_with_summary(tmp_path, capsys):
    t = sample_table()
    src = write(t, tmp_path / "in.parquet", row_group_size=128)
    out = tmp_path / "panel.parquet"
    assert main([src, "-o", str(out)]) == 0
    panel = ds.dataset(out).to_table()
    exp, _ = naive_panel(table_to_naive_input(t))
    assert_panel_equal(panel, exp)
    meta = json.loads(pq.read_schema(out).metadata[SUMMARY_KEY])
    side = json.loads((tmp_path / "panel.summary.json").read_text())
    for s in (meta, side):
        assert s["rows_read"] == 500 == s["rows_aggregated"] + s["rows_rejected"]
        assert s["spec_version"] == "1" and s["rcfast_version"]
        assert s["panel_rows"] == panel.num_rows
        assert s["options"]["windows"] == [4, 12, 52]
    assert "panel rows" in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_directory_glob_and_directory_output(tmp_path):
    t = sample_table(900)
    d = tmp_path / "in"
    d.mkdir()
    for k in range(3):  # a product's rows spread over several files
        write(t.slice(k * 300, 300), d / f"part{k}.parquet")
    (d / "_SUCCESS").write_text("")
    exp, _ = naive_panel(table_to_naive_input(t), dense=True)
    for inputs in ([str(d)], [str(d / "*.parquet")]):
        out = tmp_path / "outdir"
        assert main([*inputs, "-o", str(out), "--dense", "--quiet"]) == 0
        assert_panel_equal(ds.dataset(out).to_table(), exp)
        assert json.loads((out / "_summary.json").read_text())["rows_read"] == 900


def test_windows_lags_until_options(tmp_path):
    t = sample_table(300)
    src = write(t, tmp_path / "in.parquet")
    out = tmp_path / "p.parquet"
    assert main([src, "-o", str(out), "--windows", "2,8", "--lags", "3", "--dense",
                 "--until", "2021-04-15", "--quiet"]) == 0
    panel = pq.read_table(out)
    assert "n_reviews_r8" in panel.column_names and "n_reviews_lag3" in panel.column_names
    assert "n_reviews_r52" not in panel.column_names
    from rcfast.weekly.options import parse_until

    exp, rej = naive_panel(table_to_naive_input(t), windows=(2, 8), lags=(3,), dense=True,
                           until_week=parse_until("2021-04-15"))
    assert_panel_equal(panel.replace_schema_metadata(None), exp)
    s = json.loads((tmp_path / "p.summary.json").read_text())
    assert s["rejected"]["after_until"] == rej["after_until"] > 0


def test_column_mapping_raw_names(tmp_path):
    t = sample_table(200)
    raw = pa.table({"asin": t.column("product_id"),
                    "unixReviewTime": pc_seconds(t.column("timestamp")),
                    "overall": t.column("rating"), "helpful": t.column("helpful_votes")})
    src = write(raw, tmp_path / "raw.parquet")
    out = tmp_path / "p.parquet"
    assert main([src, "-o", str(out), "--quiet"]) == 0  # aliases, unixReviewTime in seconds
    mapped = pa.table({"item": t.column("product_id"), "when": t.column("timestamp"),
                       "stars_x": t.column("rating")})
    src2 = write(mapped, tmp_path / "m.parquet")
    out2 = tmp_path / "p2.parquet"
    assert main([src2, "-o", str(out2), "--quiet", "--map", "product_id=item",
                 "--map", "timestamp=when", "--map", "rating=stars_x"]) == 0
    a, b = pq.read_table(out), pq.read_table(out2)
    assert a.column("n_reviews").equals(b.column("n_reviews"))
    assert a.column("product_id").equals(b.column("product_id"))


def pc_seconds(ts):
    import pyarrow.compute as pc

    return pc.floor(pc.divide(ts.cast(pa.int64()).cast(pa.float64()), 1000.0)).cast(pa.int64())


@pytest.mark.parametrize("case", ["missing", "wrong_type", "empty", "corrupt", "not_found",
                                  "ms_as_s", "s_as_ms", "bad_map", "bad_windows",
                                  "huge_text_len"])
def test_bad_input_names_file_and_column(tmp_path, capsys, case):
    t = sample_table(50)
    path = tmp_path / "bad.parquet"
    extra: list[str] = []
    if case == "missing":
        write(t.drop_columns(["rating"]), path)
        needle = "rating"
    elif case == "wrong_type":
        write(t.set_column(2, "rating", t.column("rating").cast(pa.string())), path)
        needle = "'rating'"
    elif case == "empty":
        path.write_bytes(b"")
        needle = "empty"
    elif case == "corrupt":
        write(t, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        needle = "Parquet"
    elif case == "not_found":
        path = tmp_path / "nope.parquet"
        needle = "no such file"
    elif case == "ms_as_s":
        ms = t.column("timestamp").cast(pa.int64())
        write(t.set_column(1, "timestamp", ms.cast(pa.timestamp("s", tz="UTC"))), path)
        needle = "milliseconds read as seconds"
    elif case == "s_as_ms":
        write(t.set_column(1, "timestamp", pc_seconds(t.column("timestamp"))), path)
        needle = "seconds read as milliseconds"
    elif case == "huge_text_len":
        big = pa.array([2**60] * t.num_rows, type=pa.int64())
        write(t.set_column(t.schema.get_field_index("text_len"), "text_len", big), path)
        needle = "'text_len'"
    elif case == "bad_map":
        write(t, path)
        extra = ["--map", "rating=nothere"]
        needle = "nothere"
    else:
        write(t, path)
        extra = ["--windows", "4,x"]
        needle = "--windows"
    out = tmp_path / "p.parquet"
    assert main([str(path), "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err, err
    if case not in ("not_found", "bad_windows"):
        assert "bad.parquet" in err, err
    assert not out.exists()


@pytest.mark.parametrize("extra, needle", [
    (["--windows", "4,4"], "--windows '4,4' names a value twice"),
    (["--lags", "1,2,1"], "--lags '1,2,1' names a value twice"),
    (["--windows", "4,,12"], "--windows expects"),
    (["--workers", "0"], "--workers must be >= 1"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--partitions", "0"], "--partitions must be >= 1"),
])
def test_bad_usage_exits_2_with_reason(tmp_path, capsys, extra, needle):
    src = write(sample_table(20), tmp_path / "in.parquet")
    out = tmp_path / "p.parquet"
    assert main([src, "-o", str(out), "--quiet", *extra]) == 2
    assert needle in capsys.readouterr().err
    assert not out.exists()


def test_odd_dates_kept_with_warning_unrepresentable_set_aside(tmp_path, capsys):
    """The spec sets aside only unreadable times: 1850 and 2150 are aggregated (with a warning
    in the summary); times no ns timestamp holds and seconds that overflow int64 ms are not."""
    ms_1850, ms_2150 = -3_786_825_600_000, 5_680_281_600_000  # 1850-01-01, 2150-01-01
    t = pa.table({"product_id": ["a", "a", "b", "c", "d"],
                  "timestamp": pa.array([ms_1850, MONDAY_MS, ms_2150, 10**15, -(10**15)]),
                  "rating": [4.0, 5.0, 3.0, 2.0, 1.0]})
    src = write(t, tmp_path / "in.parquet")
    out = tmp_path / "p.parquet"
    assert main([src, "-o", str(out), "--quiet"]) == 0
    panel = pq.read_table(out)
    exp, rej = naive_panel(table_to_naive_input(t))
    assert_panel_equal(panel, exp)
    assert panel.column("week_start").to_pylist()[0].year == 1849  # Monday 1849-12-31
    s = json.loads((tmp_path / "p.summary.json").read_text())
    assert s["rejected"]["timestamp_out_of_range"] == 2 == rej["timestamp_out_of_range"]
    assert s["rows_aggregated"] == 3
    assert s["warnings"] and "before 1900 or after 2099" in s["warnings"][0]
    assert "warning:" in capsys.readouterr().err
    # integer seconds so large that ms would overflow int64: set aside, never wrapped around
    secs = pa.table({"product_id": ["a", "a"], "timestamp": pa.array([2**62, 1_600_000_000]),
                     "rating": [4.0, 5.0]})
    src = write(secs, tmp_path / "s.parquet")
    assert main([src, "-o", str(out), "--quiet", "--timestamp-unit", "s"]) == 0
    s = json.loads((tmp_path / "p.summary.json").read_text())
    assert s["rejected"]["timestamp_out_of_range"] == 1 and s["rows_aggregated"] == 1
    assert s["warnings"] == []


def test_string_timestamps_in_several_forms(tmp_path):
    t = pa.table({"product_id": ["a"] * 6,
                  "timestamp": ["2021-01-04 10:00:00", "2021-01-04T11:00:00",
                                "2021-01-05T12:00:00Z", "2021-01-10", "04/01/2021", None],
                  "rating": [1.0, 2.0, 3.0, 4.0, 5.0, 5.0]})
    src = write(t, tmp_path / "in.parquet")
    out = tmp_path / "p.parquet"
    assert main([src, "-o", str(out), "--quiet"]) == 0
    panel = pq.read_table(out).to_pylist()
    assert [(r["week_start"].isoformat(), r["n_reviews"], r["rating_mean"]) for r in panel] == \
        [("2021-01-04", 4, 2.5)]
    s = json.loads((tmp_path / "p.summary.json").read_text())
    assert s["rejected"]["null_timestamp"] == 2  # the unreadable form and the null


def test_seconds_column_with_unit_option(tmp_path):
    t = sample_table(50)
    secs = t.set_column(1, "timestamp", pc_seconds(t.column("timestamp")))
    src = write(secs, tmp_path / "s.parquet")
    out = tmp_path / "p.parquet"
    assert main([src, "-o", str(out), "--timestamp-unit", "s", "--quiet"]) == 0
    assert pq.read_table(out).column("n_reviews").to_pylist() == \
        weekly_panel(t)[0].column("n_reviews").to_pylist()


def test_strict_names_row_and_tolerant_counts(tmp_path, capsys):
    t = sample_table(40)
    rating = t.column("rating").to_pylist()
    rating[17] = 9.0
    rating[30] = None
    t = t.set_column(2, "rating", pa.array(rating, type=pa.float64()))
    src = write(t, tmp_path / "r.parquet")
    out = tmp_path / "p.parquet"
    assert main([src, "-o", str(out), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "r.parquet" in err and "row 17" in err and "rating_out_of_range" in err
    assert not out.exists()
    assert main([src, "-o", str(out)]) == 0
    s = json.loads((tmp_path / "p.summary.json").read_text())
    assert s["rejected"]["rating_out_of_range"] == 1 and s["rejected"]["null_rating"] == 1
    assert s["rows_read"] == 40 and s["rows_aggregated"] == 38
    assert {(e["row"], e["reason"]) for e in s["rejected_examples"]} == \
        {(17, "rating_out_of_range"), (30, "null_rating")}


def test_rerun_replaces_output_atomically(tmp_path):
    t = sample_table(100)
    src = write(t, tmp_path / "in.parquet")
    out = tmp_path / "p.parquet"
    assert main([src, "-o", str(out), "--quiet"]) == 0
    first = pq.read_table(out)
    assert main([src, "-o", str(out), "--quiet"]) == 0
    assert pq.read_table(out).equals(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "p.parquet",
                                                          "p.summary.json"]


def test_killed_run_leaves_no_complete_looking_output(tmp_path):
    """SIGKILL in the middle of writing: no file under the final name."""
    t = sample_table(3000)
    src = write(t, tmp_path / "in.parquet")
    out = tmp_path / "p.parquet"
    code = ("import sys, pyarrow.parquet as pq, os, signal\n"
            "orig = pq.ParquetWriter.write_table\n"
            "def boom(self, *a, **k):\n"
            "    orig(self, *a, **k); os.kill(os.getpid(), signal.SIGKILL)\n"
            "pq.ParquetWriter.write_table = boom\n"
            "from rcfast.weekly import main\n"
            f"main([{src!r}, '-o', {str(out)!r}, '--quiet'])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    assert not out.exists()
    assert not (tmp_path / "p.summary.json").exists()


def test_module_entry_point_runs(tmp_path):
    t = sample_table(60)
    src = write(t, tmp_path / "in.parquet")
    proc = subprocess.run([sys.executable, "-m", "rcfast.weekly", src, "-o",
                           str(tmp_path / "p.parquet")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "rows read" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "rcfast.weekly", "-o", "x.parquet"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no INPUT" in bad.stderr


def test_in_process_run_never_imports_pandas(tmp_path):
    """pyarrow would import pandas (0.25-0.4 s of start-up) only to look for pandas objects;
    the in-process command line keeps it out, a library caller that has pandas keeps it."""
    src = write(sample_table(60), tmp_path / "in.parquet")
    code = ("import sys; from rcfast.weekly import main; "
            f"rc = main([{src!r}, '-o', {str(tmp_path / 'p.parquet')!r}, '--quiet']); "
            "print(rc, 'pandas' in sys.modules); import pandas; print('importable')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "False", "importable"]
    assert pq.read_table(tmp_path / "p.parquet").num_rows > 0


def test_directory_output_parallel_parts_keep_order(tmp_path, monkeypatch):
    """Many part files written by parallel threads: read in name order, the panel is intact."""
    import rcfast.weekly.panel
    import rcfast.weekly.write as weekly

    monkeypatch.setattr(weekly, "PART_ROWS", 50)
    monkeypatch.setattr(rcfast.weekly.panel, "SLICE_ROWS", 40)
    t = sample_table(2000, products=300)
    src = write(t, tmp_path / "in.parquet")
    single = tmp_path / "one.parquet"
    assert main([src, "-o", str(single), "--quiet"]) == 0
    out = tmp_path / "panel"
    assert main([src, "-o", str(out), "--quiet", "--threads", "3"]) == 0
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) > 3
    assert ds.dataset(out).to_table().replace_schema_metadata(None).equals(
        pq.read_table(single).replace_schema_metadata(None))
    for p in parts:  # every part carries the run summary
        assert json.loads(pq.read_schema(p).metadata[SUMMARY_KEY])["rows_read"] == 2000


def test_file_output_row_groups_encoded_in_parallel(tmp_path, monkeypatch):
    """A file output's row groups are encoded by --threads threads and stitched together
    (rcfast.parquet_stitch): the same file as one encoder writes, and the reference panel."""
    import rcfast.weekly.panel
    import rcfast.parquet_stitch as stitch
    import rcfast.weekly.write as weekly

    monkeypatch.setattr(weekly, "ROW_GROUP_ROWS", 30)
    monkeypatch.setattr(rcfast.weekly.panel, "SLICE_ROWS", 70)
    stitched: list[int] = []  # row groups that went through the parallel encoders
    write_row_group = stitch.StitchedParquetWriter.write_row_group
    monkeypatch.setattr(stitch.StitchedParquetWriter, "write_row_group",
                        lambda self, t: (stitched.append(t.num_rows), write_row_group(self, t)))
    t = sample_table(2000, products=300)
    src = write(t, tmp_path / "in.parquet")
    one, three = tmp_path / "one.parquet", tmp_path / "three.parquet"
    assert main([src, "-o", str(one), "--quiet", "--threads", "1"]) == 0
    assert stitched == []  # one thread: pyarrow's own writer
    assert main([src, "-o", str(three), "--quiet", "--threads", "3"]) == 0
    a, b = pq.ParquetFile(three).metadata, pq.ParquetFile(one).metadata
    assert a.num_row_groups == b.num_row_groups > 10
    assert len(stitched) == a.num_row_groups and sum(stitched) == a.num_rows
    for i in range(a.num_row_groups):
        assert a.row_group(i).to_dict() == b.row_group(i).to_dict()
    panel = pq.read_table(three)
    assert json.loads(panel.schema.metadata[SUMMARY_KEY])["rows_read"] == 2000
    exp, _ = naive_panel(table_to_naive_input(t))
    assert_panel_equal(panel, exp)


def test_write_bar_counts_every_row_before_it_closes(tmp_path, monkeypatch):
    """The write bar (shown when progress is on) reaches the panel's row count before it is
    closed, with the stitched encoders too: their last row groups used to land only at the
    file's close, after the bar (96 % on a 10M-row run)."""
    import rcfast._cli as cli
    import rcfast.weekly.panel
    import rcfast.weekly.write as weekly

    monkeypatch.setattr(weekly, "ROW_GROUP_ROWS", 30)
    monkeypatch.setattr(rcfast.weekly.panel, "SLICE_ROWS", 70)
    bars: dict[str, list] = {}

    class Bar:
        def __init__(self, desc):
            self.n, self.at_close = 0, None
            bars[desc] = self

        def update(self, n=1):
            self.n += n

        def close(self):
            if self.at_close is None:
                self.at_close = self.n

    monkeypatch.setattr(cli, "progress_bar", lambda show, total, desc: Bar(desc))
    src = write(sample_table(2000, products=300), tmp_path / "in.parquet")
    for threads in ("1", "3"):
        out = tmp_path / f"p{threads}.parquet"
        assert main([src, "-o", str(out), "--threads", threads]) == 0
        rows = pq.ParquetFile(out).metadata.num_rows
        assert bars["write"].at_close == rows > 60, threads


def test_many_read_batches_equal_reference(tmp_path, monkeypatch):
    """Products spread over many read batches: the per-batch codes unify into one panel."""
    import rcfast.weekly.read as weekly_read

    monkeypatch.setattr(weekly_read, "BATCH_ROWS", 128)
    t = sample_table(1500, products=90)
    src = write(t, tmp_path / "in.parquet", row_group_size=100)
    out = tmp_path / "p.parquet"
    assert main([src, "-o", str(out), "--quiet", "--dense"]) == 0
    exp, _ = naive_panel(table_to_naive_input(t), dense=True)
    assert_panel_equal(pq.read_table(out).replace_schema_metadata(None), exp)


def test_tune_malloc_respects_user_setting(monkeypatch):
    import os
    import sys as _sys

    from rcfast.weekly.cli import tune_malloc

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert tune_malloc() is False
    # a Dask nanny started earlier in this process sets MALLOC_TRIM_THRESHOLD_ here too
    for key in [k for k in os.environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(key)
    if _sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6").mallopt  # noqa: B018 - glibc only
        except (OSError, AttributeError):
            pytest.skip("not glibc")
        assert tune_malloc() is True


def test_arrow_pool_jemalloc_for_the_run_unless_chosen(tmp_path, monkeypatch):
    """The run gives Arrow jemalloc (when pyarrow has it), restores the caller's pool after, and
    leaves the pool alone when the user chose one."""
    import pyarrow as pa

    from rcfast.weekly import cli as weekly

    src = tmp_path / "in.parquet"
    from rcfast import synth

    synth.write_parquet(src, 2_000, 5)
    seen = []
    real_run = weekly.run_job

    def spy(args):
        seen.append(pa.default_memory_pool().backend_name)
        return real_run(args)

    monkeypatch.setattr(weekly, "run_job", spy)
    before = pa.default_memory_pool().backend_name
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    assert weekly.main([str(src), "-o", str(tmp_path / "a.parquet"), "--quiet"]) == 0
    try:
        pa.jemalloc_memory_pool()
        assert seen[-1] == "jemalloc"
    except NotImplementedError:
        assert seen[-1] == before
    assert pa.default_memory_pool().backend_name == before
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    assert weekly.arrow_pool_for_run() is None
    assert weekly.main([str(src), "-o", str(tmp_path / "b.parquet"), "--quiet"]) == 0
    assert seen[-1] == before
    assert pq.read_table(tmp_path / "a.parquet").equals(pq.read_table(tmp_path / "b.parquet"))


def test_demo_quick_start_shows_where_and_what(tmp_path, capsys, monkeypatch):
    """The README's first command: the summary says where the panel went, and a preview shows
    what a panel row holds."""
    monkeypatch.setenv("RCFAST_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo-out" / "panel.parquet"
    assert main(["--demo", "--demo-rows", "20000", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "panel rows" in text
    assert "preview: last weeks of the most-reviewed product" in text
    assert "n_reviews_ewm" in text and "read it with" in text
    assert pq.read_metadata(out).num_rows > 0


def test_prefetch_reads_ahead_from_the_start_and_stops_when_closed():
    """The reader thread starts when the prefetcher is made (so Numba's set-up can overlap the
    first batch), hands over items in order and the reader's error in its place, and close()
    stops it even when nothing was taken or the consumer stopped early."""
    import threading

    from rcfast.weekly.read import Prefetch

    started = threading.Event()

    def items():
        started.set()
        yield from range(5)

    p = Prefetch(items())
    assert started.wait(5)  # before any next()
    assert list(p) == [0, 1, 2, 3, 4]
    assert list(p) == []  # exhausted stays exhausted
    p.close()

    def failing():
        yield 1
        raise ValueError("corrupt row group")

    p = Prefetch(failing())
    assert next(p) == 1
    with pytest.raises(ValueError, match="corrupt row group"):
        next(p)
    p.close()

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    for take in (0, 2):
        produced.clear()
        p = Prefetch(endless(), depth=1)
        for _ in range(take):
            next(p)
        p.close()
        assert not p._thread.is_alive()
        n = len(produced)
        assert n <= take + 3  # a bounded read-ahead, then it stopped


def test_panel_integers_delta_packed_and_row_groups_whole_slices(tmp_path, monkeypatch):
    """Integer columns are DELTA_BINARY_PACKED (uncompressed under snappy, compressed under
    zstd), the others snappy; each computed slice of whole products is one row group."""
    import rcfast.weekly.panel
    import rcfast.weekly.write as weekly

    monkeypatch.setattr(rcfast.weekly.panel, "SLICE_ROWS", 70)
    monkeypatch.setattr(weekly, "ROW_GROUP_ROWS", 70)
    t = sample_table(2000, products=300)
    src = write(t, tmp_path / "in.parquet")
    exp, _ = naive_panel(table_to_naive_input(t))
    for codec in ("snappy", "zstd"):
        out = tmp_path / f"{codec}.parquet"
        assert main([src, "-o", str(out), "--quiet", "--compression", codec]) == 0
        assert_panel_equal(pq.read_table(out), exp)
        md = pq.ParquetFile(out).metadata
        sizes = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
        assert max(sizes) <= 70 and min(sizes[:-1]) > 50  # no 70 + small-tail pairs
        products = pq.read_table(out, columns=["product_id"]).column(0).to_pylist()
        ends = np.cumsum(sizes)[:-1]
        assert all(products[e - 1] != products[e] for e in ends)  # a product never spans two
        cols = {md.row_group(0).column(i).path_in_schema: md.row_group(0).column(i)
                for i in range(md.num_columns)}
        for name in ("n_reviews", "star_5", "n_reviews_r52", "n_reviews_lag1", "weeks_since_prev"):
            assert "DELTA_BINARY_PACKED" in cols[name].encodings, name
            assert cols[name].compression == ("UNCOMPRESSED" if codec == "snappy" else "ZSTD")
        assert cols["rating_mean"].compression == codec.upper()
        assert "RLE_DICTIONARY" in cols["week_start"].encodings
        assert "RLE_DICTIONARY" not in cols["product_id"].encodings
        assert cols["product_id"].statistics.has_min_max


def test_null_typed_columns_are_all_null_columns(tmp_path):
    """pandas writes an all-None column with Arrow type null: it reads as that many nulls, so
    an optional one gives the same panel as a typed all-null column, and null required values
    are set aside and counted like any other nulls (rows read = aggregated + set aside)."""
    base = {"product_id": ["a", "a", "b"],
            "timestamp": pa.array([MONDAY_MS, MONDAY_MS + WEEK_MS + 1, MONDAY_MS]),
            "rating": [3.0, 4.0, 5.0]}
    typed = pa.table({**base, "helpful_votes": pa.array([None] * 3, pa.int64()),
                      "verified": pa.array([None] * 3, pa.bool_()),
                      "text_len": pa.array([None] * 3, pa.int32())})
    nulls = pa.table({**base, **{c: pa.nulls(3) for c in
                                 ("helpful_votes", "verified", "text_len")}})
    assert nulls.schema.field("verified").type == pa.null()
    out_t, out_n = tmp_path / "t.parquet", tmp_path / "n.parquet"
    assert main([write(typed, tmp_path / "t_in.parquet"), "-o", str(out_t), "--quiet"]) == 0
    assert main([write(nulls, tmp_path / "n_in.parquet"), "-o", str(out_n), "--quiet"]) == 0
    got = pq.read_table(out_n)
    assert got.equals(pq.read_table(out_t))
    exp, _ = naive_panel(table_to_naive_input(typed))
    assert_panel_equal(got, exp)
    assert got.column("helpful_votes").to_pylist() == [0, 0, 0]
    assert got.column("verified_share").null_count == got.column("text_len_mean").null_count == 3
    for col, reason in (("rating", "null_rating"), ("timestamp", "null_timestamp"),
                        ("product_id", "null_product_id")):
        t = pa.table({**base, col: pa.nulls(3)})
        assert main([write(t, tmp_path / f"{col}.parquet"), "-o", str(out_n), "--quiet"]) == 0
        s = json.loads((tmp_path / "n.summary.json").read_text())
        assert s["rows_read"] == 3 and s["rows_aggregated"] == 0, (col, s)
        assert s["rows_rejected"] == s["rejected"][reason] == 3, (col, s["rejected"])
        assert pq.read_table(out_n).num_rows == 0


def test_input_without_rows_warns_and_writes_an_empty_panel(tmp_path, capsys):
    t = pa.table({"product_id": pa.array([], pa.string()),
                  "timestamp": pa.array([], pa.timestamp("ms")),
                  "rating": pa.array([], pa.float64())})
    out = tmp_path / "p.parquet"
    assert main([write(t, tmp_path / "empty.parquet"), "-o", str(out), "--quiet"]) == 0
    s = json.loads((tmp_path / "p.summary.json").read_text())
    assert s["rows_read"] == 0 and s["panel_rows"] == 0
    assert any("no rows" in w for w in s["warnings"])
    assert "warning: the input holds no rows" in capsys.readouterr().err
    assert pq.read_table(out).num_rows == 0
