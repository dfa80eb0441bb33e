"""Writing generated reviews to files, atomically (a temporary file beside the target, renamed
when complete): :func:`write_parquet` in the normalized schema, and :func:`write_jsonl` as raw
Amazon 2023- or 2018-style JSON-lines dumps (plain, gzip or zstd) for ``rcfast combine``. Both
can fill a :class:`_Stats` summary of what they wrote, for the CLI.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rcfast.schema import NORMALIZED_SCHEMA
from rcfast.synth.catalog import _MS_PER_DAY, _Catalog
from rcfast.synth.generator import _chunks, _to_batch
from rcfast.synth.string_columns import _fixed_width_strings, _user_chars


class _Stats:
    """Running summary for the CLI: rows, distinct products, time range."""

    def __init__(self, n_products: int) -> None:
        self.rows = 0
        self.seen = np.zeros(n_products, dtype=bool)
        self.t_min = np.iinfo(np.int64).max
        self.t_max = np.iinfo(np.int64).min

    def add(self, cols: dict[str, np.ndarray]) -> None:
        self.rows += cols["ts"].size
        self.seen[cols["prod"]] = True
        if cols["ts"].size:
            self.t_min = min(self.t_min, int(cols["ts"].min()))
            self.t_max = max(self.t_max, int(cols["ts"].max()))

    def as_dict(self) -> dict[str, object]:
        rng = (None, None)
        if self.rows:
            rng = (str(np.datetime64(self.t_min, "ms")), str(np.datetime64(self.t_max, "ms")))
        return {"rows": self.rows, "products": int(self.seen.sum()), "first": rng[0],
                "last": rng[1]}


def _tmp_beside(path: pathlib.Path) -> pathlib.Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return pathlib.Path(name)


def _progress(total: int, enabled: bool, desc: str):
    from rcfast._cli import progress_bar

    return progress_bar(enabled, total, desc)


def write_parquet(path: str | os.PathLike[str], n_rows: int, seed: int = 0, *,
                  row_group_rows: int = 1_000_000, compression: str = "zstd",
                  n_products: int | None = None, progress: bool = False,
                  _stats: _Stats | None = None) -> pathlib.Path:
    """Write ``n_rows`` synthetic reviews (normalized schema) to a Parquet file, atomically.

    Rows are generated and written one row group at a time, to a temporary file in the same
    directory that is renamed to ``path`` only when complete.
    """
    import pyarrow.parquet as pq

    if compression not in ("zstd", "snappy", "gzip", "lz4", "none"):
        raise ValueError(f"unknown compression {compression!r}")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_beside(path)
    try:
        with pq.ParquetWriter(tmp, NORMALIZED_SCHEMA, compression=compression,
                              # user_id is near-unique: dictionary pages would only be dropped.
                              use_dictionary=["product_id", "category"],
                              write_statistics=["product_id", "timestamp"]) as writer, \
                _progress(n_rows, progress, path.name) as bar:
            # Encoding + compression (pyarrow, GIL released) of chunk i overlaps the generation
            # of chunk i+1; at most two chunks are alive, so memory stays bounded.
            with ThreadPoolExecutor(1) as pool:
                pending: Future | None = None
                for cat, cols in _chunks(n_rows, seed, row_group_rows, n_products, False):
                    if _stats is not None:
                        _stats.add(cols)
                    batch = _to_batch(cat, cols, False)
                    if pending is not None:
                        pending.result()
                    pending = pool.submit(writer.write_batch, batch, row_group_size=row_group_rows)
                    bar.update(batch.num_rows)
                if pending is not None:
                    pending.result()
            if n_rows == 0:
                writer.write_table(NORMALIZED_SCHEMA.empty_table())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _str(arr: pa.Array | np.ndarray) -> pa.Array:
    return pc.cast(pa.array(arr), pa.string())


def _date_mdy(ms: np.ndarray) -> pa.Array:
    """Amazon 2014/2018 ``reviewTime``: zero-padded month, unpadded day, e.g. "09 1, 2016"."""
    d = ms // _MS_PER_DAY
    dd = d.astype("datetime64[D]")
    month = dd.astype("datetime64[M]").astype(np.int64) % 12 + 1
    year = dd.astype("datetime64[Y]").astype(np.int64) + 1970
    day = (dd - dd.astype("datetime64[M]")).astype(np.int64) + 1
    return pc.binary_join_element_wise(pc.utf8_lpad(_str(month), 2, "0"), " ", _str(day), ", ",
                                       _str(year), "")


def _vote_string(v: np.ndarray) -> pa.Array:
    """Helpful votes as the 2014/2018 dumps write them: "1,234" with thousands separators."""
    v = v.astype(np.int64)
    plain = _str(v)
    thousands = pc.binary_join_element_wise(_str(v // 1000), ",",
                                            pc.utf8_lpad(_str(v % 1000), 3, "0"), "")
    return pc.if_else(pa.array(v >= 1000), thousands, plain)


def _jsonl_lines(cat: _Catalog, cols: dict, flavor: str) -> pa.Array:
    pid = _fixed_width_strings(cols["pid_bytes"])
    rating = pc.binary_join_element_wise(_str(cols["rating"].astype(np.int64)), ".0", "")
    verified = pc.if_else(pa.array(cols["verified"]), "true", "false")
    if flavor == "amazon2023":
        uid = _fixed_width_strings(cols["uid_bytes"])
        parts = [
            '{"rating": ', rating, ', "title": "', cols["title"], '", "text": "', cols["text"],
            '", "images": [], "asin": "', _fixed_width_strings(cols["asin_bytes"]),
            '", "parent_asin": "', pid, '", "user_id": "', uid,
            '", "timestamp": ', _str(cols["ts"]), ', "helpful_vote": ', _str(cols["helpful"]),
            ', "verified_purchase": ', verified, "}\n",
        ]
    else:  # amazon2018: day resolution, seconds, optional string vote
        uid = _fixed_width_strings(_user_chars(cat, cols["user"], 14, b"0123456789ABCDEFGHIJ"))
        day_s = (cols["ts"] // _MS_PER_DAY) * 86_400
        vote = pc.if_else(pa.array(cols["helpful"] > 0),
                          pc.binary_join_element_wise(', "vote": "', _vote_string(cols["helpful"]),
                                                      '"', ""), "")
        names = pa.array(["Amazon Customer", "John", "Mary K.", "Kindle Customer", "D. Smith",
                          "Bob", "Linda", "Chris P.", "Anonymous", "J. Lee"])
        name = names.take(pa.array((cols["user"] % len(names)).astype(np.int32)))
        parts = [
            '{"overall": ', rating, vote, ', "verified": ', verified, ', "reviewTime": "',
            _date_mdy(cols["ts"]), '", "reviewerID": "', uid, '", "asin": "', pid,
            '", "reviewerName": "', name, '", "reviewText": "', cols["text"], '", "summary": "',
            cols["title"], '", "unixReviewTime": ', _str(day_s), "}\n",
        ]
    return pc.binary_join_element_wise(*parts, "")


def _open_compressed(path: pathlib.Path, final_name: str):
    if final_name.endswith(".gz"):
        # Level 1: the dumps are the benchmark input, not an archive; level 6 is ~4x slower.
        return gzip.open(path, "wb", compresslevel=1)
    if final_name.endswith(".zst"):
        import zstandard

        return zstandard.ZstdCompressor(level=3).stream_writer(open(path, "wb"), closefd=True)
    return open(path, "wb")


def write_jsonl(path: str | os.PathLike[str], n_rows: int, seed: int = 0, *,
                flavor: str = "amazon2023", n_products: int | None = None,
                progress: bool = False, _stats: _Stats | None = None) -> pathlib.Path:
    """Write the same rows as :func:`generate_batches` as a JSON-lines dump, atomically.

    ``flavor="amazon2023"`` uses the 2023 field names (rating, title, text, images, asin,
    parent_asin, user_id, timestamp in ms, helpful_vote, verified_purchase); ``"amazon2018"``
    the 2018 ones (overall, vote as "1,234" string only when > 0, verified, reviewTime,
    reviewerID, asin, reviewerName, reviewText, summary, unixReviewTime in seconds at UTC
    midnight, so 2018-flavor times lose their time of day, as in the real dump). The review
    dumps carry no category (Amazon names the file after it), so neither flavor writes one.
    Compressed with gzip when ``path`` ends in ``.gz``, zstd for ``.zst``.
    """
    if flavor not in ("amazon2023", "amazon2018"):
        raise ValueError(f"unknown flavor {flavor!r}; use amazon2023 or amazon2018")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_beside(path)
    try:
        with _open_compressed(tmp, path.name) as f, _progress(n_rows, progress, path.name) as bar:
            # Smaller chunks: the text columns make a JSON chunk ~500 bytes per row.
            for cat, cols in _chunks(n_rows, seed, 1 << 18, n_products, True):
                if _stats is not None:
                    _stats.add(cols)
                lines = _jsonl_lines(cat, cols, flavor)
                offs = np.frombuffer(lines.buffers()[1], dtype=np.int32 if lines.type == pa.string()
                                     else np.int64)[lines.offset:lines.offset + len(lines) + 1]
                data = lines.buffers()[2]
                f.write(memoryview(data)[int(offs[0]):int(offs[-1])])
                bar.update(len(lines))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
