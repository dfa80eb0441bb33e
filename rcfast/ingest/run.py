"""The ingest step's engine: :func:`combine` turns raw review dumps into one normalized Parquet
dataset partitioned by product (``rcfast combine`` is its command line; see docs/combine.md).

Accounting, per input file and in total: lines_read = rows_written + duplicates + quarantined.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rcfast import __version__
from rcfast._cli import one_line, progress_bar
from rcfast.errors import InputError
from rcfast.ingest.sources import FORMATS, Detected, expand_inputs
from rcfast.publish import publish, remove_stale, temporary_sibling
from rcfast.resources import available_cpus
from rcfast.schema import (
    PARTITIONING_KEY,
    PLAUSIBLE_MAX_MS,
    PLAUSIBLE_MIN_MS,
    SECONDS_AS_MS_BELOW_MS,
)

# pyarrow, Numba and the pipeline are imported inside combine(): ``--help`` or a usage error
# answers at once.

__all__ = ["DEFAULT_BLOCK_BYTES", "auto_partitions", "combine", "default_workers"]

# 16 MiB: half the per-block work of 8 MiB (normalizing, one spill piece per partition) for
# ~4 % less CPU at 1M rows, with the same peak RSS; 32 MiB raised the peak by 30 %
DEFAULT_BLOCK_BYTES = 16 << 20
# Input bytes (uncompressed estimate) per output partition under --partitions auto: a partition
# is read back whole at the end, so this bounds the finalize memory whatever the input size.
# 64 MiB: ~78,000 Amazon-2023 reviews, close to the 62,000 of the 16-partition minimum at 1M
# rows, so the peak memory of a 10M-row run is that of a 1M-row run.
_AUTO_BYTES_PER_PARTITION = 64 << 20
_MAX_AUTO_PARTITIONS = 4096
_COMPRESSION_RATIO = {"gzip": 4, "zstd": 5, "bz2": 6, None: 1}
# Estimated uncompressed input above which the spill files are lz4-compressed (disk space);
# below it they are written raw (less CPU; small inputs stay in the page cache). Each block
# is cut into one piece per partition, and lz4 frames every buffer of every piece: with 128
# partitions that overhead made a 10M-row run 25 % slower (52.6 -> 46.3 CPU-s raw), so the
# spill is raw up to ~60M rows (~90 bytes per row of temporary disk, ~5 GB) and lz4 above.
_SPILL_COMPRESS_ABOVE = 32 << 30


def default_workers() -> int:
    return available_cpus()


def estimated_input_bytes(detected: list[Detected]) -> int:
    """Uncompressed size estimate of the inputs (compressed size times a typical ratio)."""
    est = 0
    for d in detected:
        size = os.path.getsize(d.path)
        est += size * (3 if d.format == "parquet" else _COMPRESSION_RATIO.get(d.compression, 4))
    return est


def auto_partitions(detected: list[Detected]) -> int:
    """At least 16, more (a power of two) when the input is large; see _AUTO_BYTES_PER_PARTITION."""
    est = estimated_input_bytes(detected)
    n = 16
    while est / n > _AUTO_BYTES_PER_PARTITION and n < _MAX_AUTO_PARTITIONS:
        n *= 2
    return n


def _ensure_open_files(n: int) -> None:
    """One spill file per partition is open at a time: raise the soft fd limit if needed."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = n + 256
        if soft != resource.RLIM_INFINITY and soft < want:
            new = want if hard == resource.RLIM_INFINITY else min(hard, want)
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            if new < want:
                raise InputError(
                    f"--partitions {n} needs {want} open files, the limit is {hard}; "
                    "use fewer partitions"
                )
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX
        pass


def _split_text_mapping(items: list[str] | None) -> tuple[list[str], str | None]:
    """``--map text=COLUMN`` is ours (the review text); the rest goes to ``parse_mapping``."""
    rest, text = [], None
    for item in items or []:
        f, sep, col = item.partition("=")
        if sep and f.strip() == "text":
            if not col.strip():
                raise ValueError(f"--map expects FIELD=COLUMN, got {item!r}")
            text = col.strip()
        else:
            rest.append(item)
    return rest, text


def _prepare_output(out: str, inputs: list[str]) -> tuple[str, str]:
    out_abs = os.path.abspath(out.rstrip("/") or out)
    if os.path.exists(out_abs):
        if not os.path.isdir(out_abs):
            raise InputError(f"-o {out}: exists and is not a directory")
        if os.listdir(out_abs) and not os.path.exists(os.path.join(out_abs, "_summary.json")):
            raise InputError(
                f"-o {out}: directory exists and is not an rcfast.combine output "
                "(no _summary.json); refusing to replace it"
            )
    real_out = os.path.realpath(out_abs) + os.sep
    for p in inputs:
        if os.path.realpath(p).startswith(real_out):
            raise InputError(f"input {p} lies inside the output directory {out}")
    parent = os.path.dirname(out_abs)
    up = parent
    while up and not os.path.exists(up):
        up = os.path.dirname(up)
    if up and not os.path.isdir(up):
        raise InputError(f"-o {out}: {up} is a file, not a directory")
    try:
        os.makedirs(parent, exist_ok=True)
        remove_stale(Path(out_abs))  # what killed runs on this host left
        tmp = str(temporary_sibling(Path(out_abs)))
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
    except OSError as exc:  # read-only, under a file, ...: the user's to fix, before any work
        raise InputError(f"-o {out}: cannot create the output: {one_line(exc)}") from exc
    return out_abs, tmp


def combine(
    inputs: list[str],
    out: str,
    *,
    fmt: str | None = None,
    mapping: list[str] | dict[str, str] | None = None,
    strict: bool = False,
    keep_text: bool = False,
    keep_duplicates: bool = False,
    partitions: int | None = None,
    workers: int | None = None,
    category: str | None = None,
    timestamp_unit: str | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Ingest ``inputs`` into the dataset directory ``out``; return the run summary.

    Raises :class:`InputError` on bad usage or unreadable input and :class:`StrictFailure` for
    the first bad line under ``strict``; in both cases nothing is written under ``out``.
    """
    t0 = time.perf_counter()
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if timestamp_unit not in (None, "auto", "s", "ms"):
        raise InputError(f"--timestamp-unit {timestamp_unit!r}: choose auto, s or ms")
    if isinstance(mapping, dict):
        mapping = [f"{k}={v}" for k, v in mapping.items()]
    if partitions is not None and partitions < 1:
        raise InputError("--partitions must be at least 1")
    if block_bytes < 1024:
        raise InputError("--block-size is too small")
    workers = workers or default_workers()
    if workers < 1:
        raise InputError("--workers must be at least 1")
    paths = expand_inputs(list(inputs))
    if not paths:
        raise InputError("no input files")

    return _combine(paths, out, fmt=fmt, mapping=mapping, strict=strict, keep_text=keep_text,
                    keep_duplicates=keep_duplicates, partitions=partitions, workers=workers,
                    category=category, timestamp_unit=timestamp_unit, block_bytes=block_bytes,
                    progress=progress, t0=t0)


def _inflight(workers: int) -> int:
    """Blocks queued or being processed at a time (a reader holds one more while it waits)."""
    return workers + 2


def _combine(paths, out, *, fmt, mapping, strict, keep_text, keep_duplicates,
             partitions, workers, category, timestamp_unit, block_bytes, progress, t0):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rcfast.ingest.formats import _json_sample_schema, make_plan
    from rcfast.ingest.sources import category_from_name, detect_format
    from rcfast.schema import parse_mapping

    try:
        rest, text_col = _split_text_mapping(mapping)
        fmap = parse_mapping(rest)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if text_col:
        fmap["text"] = text_col
    detected: list[Detected] = []
    plans: list = []
    for p in paths:
        det = detect_format(p, fmt, fmap)
        parquet_cols = None
        sample_schema = None
        if det.format == "parquet":
            try:
                parquet_cols = pq.ParquetFile(p).schema_arrow.names
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"{p}: not a readable Parquet file: {exc}") from exc
        elif det.format == "jsonl":
            sample_schema = _json_sample_schema(det)
        detected.append(det)
        plans.append(make_plan(det, fmap, category=category, keep_text=keep_text,
                               ts_unit=timestamp_unit, file_category=category_from_name(p),
                               parquet_columns=parquet_cols, json_sample_schema=sample_schema))
    n_parts = partitions or auto_partitions(detected)
    _ensure_open_files(n_parts)

    out_abs, tmp = _prepare_output(out, paths)
    try:
        summary = _run(paths, detected, plans, tmp, out_abs, n_parts, workers, strict, keep_text,
                       keep_duplicates, block_bytes, progress, t0,
                       {"format": fmt, "map": fmap, "strict": strict, "keep_text": keep_text,
                        "keep_duplicates": keep_duplicates, "partitions": n_parts,
                        "workers": workers, "category": category,
                        "timestamp_unit": timestamp_unit, "block_bytes": block_bytes})
        publish(Path(tmp), Path(out_abs))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _run(paths, detected, plans, tmp, out_abs, n_parts, workers, strict, keep_text,
         keep_duplicates, block_bytes, progress, t0, options) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rcfast.ingest.pipeline import (
        PARTITION_HASH,
        BlockProcessor,
        FileStats,
        Quarantine,
        Spill,
        run_blocks,
        write_summary,
    )
    from rcfast.ingest.finalize import finalize_partition
    from rcfast.ingest.decompress import StreamState
    from rcfast.ingest.raw_blocks import iter_blocks

    stats = [
        FileStats(p, d.format, d.compression, os.path.getsize(p), pl.category)
        for p, d, pl in zip(paths, detected, plans)
    ]
    spill = Spill(os.path.join(tmp, "_spill"), n_parts, keep_text,
                  compress=estimated_input_bytes(detected) > _SPILL_COMPRESS_ABOVE)
    quarantine = Quarantine(os.path.join(tmp, "_quarantine"), paths, strict)
    proc = BlockProcessor(plans, spill, quarantine)
    stop = threading.Event()

    bar = progress_bar(progress, sum(s.bytes for s in stats), "combine", unit="B")
    bar_lock = threading.Lock()

    def on_bytes(n: int) -> None:
        with bar_lock:
            bar.update(n)

    def make_reader(i: int):
        det, plan = detected[i], plans[i]

        def read(submit) -> None:
            if plan.kind == "parquet":
                pf = pq.ParquetFile(det.path)
                row = 0
                batch_rows = max(65536, block_bytes // 64)
                for seq, rb in enumerate(pf.iter_batches(batch_size=batch_rows,
                                                         columns=plan.read_columns)):
                    if stop.is_set():
                        return
                    t = pa.Table.from_batches([rb])
                    submit(lambda t=t, r=row, s=seq: proc.process_table(i, t, r, s))
                    row += t.num_rows
                on_bytes(stats[i].bytes)
                return
            state = StreamState()
            for blk in iter_blocks(det.path, i, det.compression, block_bytes, state, on_bytes,
                                   quoted=plan.kind == "csv"):
                if stop.is_set():
                    return
                submit(lambda b=blk: proc.process_block(b))
            if state.truncated:
                stats[i].stream_error = state.error

        return read

    try:
        results = run_blocks(
            [make_reader(i) for i in range(len(paths))], workers, _inflight(workers), stop
        )
    finally:
        spill.close()
        quarantine.close()
        bar.close()
    for r in results:
        s = stats[r.file_idx]
        s.lines_read += r.lines
        s.blank_lines += r.blank
        s.rows_spilled += r.spilled
        s.quarantined.update(r.quarantined)
        s.add_range(r.ts_min, r.ts_max)

    partitioning = {"by": "product_id", "hash": PARTITION_HASH, "n": n_parts,
                    "files": "part-{i:05d}.parquet", "rule": "i = hash(utf8(product_id)) % n"}
    meta = {PARTITIONING_KEY: json.dumps(partitioning).encode(),
            b"rcfast.version": __version__.encode()}

    def fin(p: int):
        return finalize_partition(
            spill, p, os.path.join(tmp, f"part-{p:05d}.parquet"), keep_text=keep_text,
            keep_duplicates=keep_duplicates, n_files=len(paths), metadata=meta,
        )

    # finalize holds a whole partition in memory: fewer threads than blocks keep it bounded
    fbar = progress_bar(progress, n_parts, "finalize", unit="part")
    with ThreadPoolExecutor(max_workers=max(1, min(workers, n_parts))) as pool:
        for written, dups in pool.map(fin, range(n_parts)):
            for i in range(len(paths)):
                stats[i].rows_written += int(written[i])
                stats[i].duplicates += int(dups[i])
            fbar.update(1)
    fbar.close()
    shutil.rmtree(spill.directory, ignore_errors=True)

    for s in stats:
        if s.rows_written + s.duplicates != s.rows_spilled or (
            s.lines_read != s.rows_written + s.duplicates + sum(s.quarantined.values())
        ):  # an internal invariant, not user input: fail loudly rather than publish
            raise RuntimeError(f"rcfast.combine accounting mismatch for {s.path}: {s.as_dict()}")
    quarantined: Counter = Counter()
    for s in stats:
        quarantined.update(s.quarantined)
    warnings = []
    for s in stats:
        if s.lines_read == 0 and not s.stream_error:
            # the same rule as the weekly step: an input without rows is no error, but never
            # silent (a wrong path or an export that failed upstream)
            warnings.append(f"{os.path.basename(s.path)}: the file holds no rows")
        # dates outside the plausible range, or all in the first weeks of 1970, mean a unit
        # mix-up (seconds read as milliseconds land in January 1970)
        if s.ts_min is not None and (s.ts_min < PLAUSIBLE_MIN_MS or s.ts_max > PLAUSIBLE_MAX_MS
                                     or 0 <= s.ts_max < SECONDS_AS_MS_BELOW_MS):
            d = s.as_dict()
            warnings.append(
                f"{os.path.basename(s.path)}: reviews from {d['first_review']} to "
                f"{d['last_review']}; if that is wrong, the timestamps are in another unit "
                "(see --timestamp-unit)"
            )
    summary = {
        "rcfast_version": __version__,
        "step": "combine",
        "output": out_abs,
        "lines_read": sum(s.lines_read for s in stats),
        "rows_written": sum(s.rows_written for s in stats),
        "duplicates": sum(s.duplicates for s in stats),
        "quarantined": dict(sorted(quarantined.items())),
        "quarantined_total": sum(quarantined.values()),
        "blank_lines": sum(s.blank_lines for s in stats),
        "input_bytes": sum(s.bytes for s in stats),
        "partitioning": partitioning,
        "quarantine_file": "_quarantine/quarantine.jsonl" if quarantine.count else None,
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "options": options,
        "warnings": warnings,
        "files": [s.as_dict() for s in stats],
    }
    write_summary(os.path.join(tmp, "_summary.json"), summary)
    return summary
