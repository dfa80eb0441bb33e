"""Input files: expansion of paths and globs, compression and format detection.

Cutting a file into blocks of records is :mod:`rcfast.ingest.raw_blocks`.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field

import orjson

from rcfast.errors import InputError, StrictFailure  # noqa: F401 (re-exported)
from rcfast.input_paths import expand_paths, hidden

from .decompress import StreamState, iter_decompressed

COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
DATA_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".txt", ".parquet", ".pq")

FORMATS = (
    "amazon2023",
    "amazon2018",
    "amazon2014",
    "amazon2014-csv",
    "yelp",
    "jsonl",
    "csv",
    "tsv",
    "parquet",
)
JSON_FORMATS = {"amazon2023", "amazon2018", "amazon2014", "yelp", "jsonl"}
CSV_FORMATS = {"amazon2014-csv", "csv", "tsv"}

#: Column order of the header-less 2014 CSV (see ``shared/data/real/README.md``).
AMAZON2014_CSV_COLUMNS = (
    "reviewerID",
    "asin",
    "reviewerName",
    "helpful",
    "reviewText",
    "overall",
    "summary",
    "unixReviewTime",
    "reviewTime",
)

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BZ2_MAGIC = b"BZh"


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files, directories (their data files, recursively, sorted) or globs → unique files."""
    return expand_paths(inputs, _data_files, "review files")


def _data_files(directory: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not hidden(d))
        found += [os.path.join(root, name) for name in files if not hidden(name)
                  and _strip_compression(name.lower())[0].endswith(DATA_SUFFIXES)]
    return sorted(found)


def _strip_compression(name: str) -> tuple[str, str | None]:
    for suffix, comp in COMPRESSIONS.items():
        if name.endswith(suffix):
            return name[: -len(suffix)], comp
    return name, None


def detect_compression(path: str) -> str | None:
    """By magic bytes first (a mislabelled file still reads), then by extension."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    if head.startswith(_BZ2_MAGIC) and path.lower().endswith(".bz2"):
        return "bz2"
    return _strip_compression(path.lower())[1] if head else None


def category_from_name(path: str) -> str:
    """``Electronics.jsonl.gz`` → ``Electronics`` (the Amazon 2023 files are named by category)."""
    name = os.path.basename(path)
    name, _ = _strip_compression(name)
    for suffix in DATA_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name


def peek(path: str, comp: str | None, n: int = 1 << 16) -> bytes:
    """The first ``n`` decompressed bytes (or fewer), for format detection."""
    state = StreamState()
    buf = bytearray()
    for piece in iter_decompressed(path, comp, state, chunk=1 << 16):
        buf += piece
        if len(buf) >= n:
            break
    return bytes(buf[:n])


@dataclass
class Detected:
    """How to read one input file."""

    path: str
    format: str
    compression: str | None
    columns: list[str] = field(default_factory=list)  #: CSV column names (in file order)
    has_header: bool = False
    delimiter: str = ","
    sample_keys: list[str] = field(default_factory=list)  #: JSON keys seen in the sample


_2014_HELPFUL = re.compile(r"^\[\s*\d+\s*,\s*\d+\s*\]$")


def known_column_names(mapping: dict[str, str]) -> set[str]:
    from rcfast.schema import ALIASES, FIELDS  # imports pyarrow: not at start-up

    names = set(FIELDS) | {"text", "reviewText", "review_text"} | set(mapping.values())
    for aliases in ALIASES.values():
        names.update(aliases)
    return names


def detect_format(path: str, forced: str | None, mapping: dict[str, str]) -> Detected:
    """Decide the format of one file from its content (``forced`` overrides)."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if forced == "parquet" or (forced is None and magic == b"PAR1"):
        return Detected(path, "parquet", None)
    comp = detect_compression(path)
    head = peek(path, comp)
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    lines = [ln for ln in head.split(b"\n") if ln.strip()]
    # the last piece of the sample may be a cut line
    if len(lines) > 1 and not head.endswith(b"\n"):
        lines = lines[:-1]
    if not lines:
        # nothing decodable (an empty file, or a compressed stream broken before its first
        # line): not worth stopping a run over; it shows up with 0 lines in the summary
        if forced:
            return Detected(path, forced, comp, delimiter="\t" if forced == "tsv" else ",")
        return Detected(path, "empty", comp)
    first = lines[0].lstrip()
    # JSON lines if any of the first lines is a JSON object (the very first may be damaged)
    is_json = first.startswith(b"{") or any(_is_json_object(ln) for ln in lines[:50])
    if forced in JSON_FORMATS or (forced is None and is_json):
        keys: set[str] = set()
        for ln in lines[:50]:
            try:
                obj = orjson.loads(ln)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                keys.update(obj)
        fmt = forced or _json_format_from_keys(keys)
        if fmt is None:
            if not mapping and not (keys & known_column_names(mapping)):
                raise InputError(
                    f"{path}: JSON lines with unknown fields {sorted(keys)[:12]}; "
                    "give --format and/or --map FIELD=COLUMN"
                )
            fmt = "jsonl"
        return Detected(path, fmt, comp, sample_keys=sorted(keys))
    # delimited text
    text_first = first.decode("utf-8", errors="replace").rstrip("\r")
    if forced == "tsv":
        delim = "\t"
    elif forced in ("csv", "amazon2014-csv"):
        delim = ","
    else:
        delim = "\t" if text_first.count("\t") > text_first.count(",") else ","
    try:
        cells = next(csv.reader(io.StringIO(text_first), delimiter=delim))
    except (csv.Error, StopIteration):
        cells = []
    known = known_column_names(mapping)
    looks_2014 = (
        len(cells) == len(AMAZON2014_CSV_COLUMNS)
        and bool(_2014_HELPFUL.match(cells[3].strip()))
        and cells[7].strip().isdigit()
    )
    if forced == "amazon2014-csv" or (forced is None and looks_2014):
        return Detected(
            path, "amazon2014-csv", comp, columns=list(AMAZON2014_CSV_COLUMNS), delimiter=","
        )
    header = [c.strip() for c in cells]
    if forced in ("csv", "tsv") or (forced is None and set(header) & known):
        if not header or not all(header):
            raise InputError(f"{path}: CSV/TSV needs a header row with a name for every column")
        if len(set(header)) != len(header):
            raise InputError(f"{path}: duplicate column names in the header: {header}")
        return Detected(
            path, "tsv" if delim == "\t" else "csv", comp, columns=header, has_header=True,
            delimiter=delim,
        )
    if forced:
        raise InputError(f"{path}: does not look like {forced}")
    raise InputError(
        f"{path}: cannot detect the format (first line {text_first[:80]!r}); "
        f"give --format ({', '.join(FORMATS)}) and --map FIELD=COLUMN"
    )


def _is_json_object(line: bytes) -> bool:
    if not line.lstrip().startswith(b"{"):
        return False
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def _json_format_from_keys(keys: set[str]) -> str | None:
    if "business_id" in keys and ("stars" in keys or "date" in keys):
        return "yelp"
    if keys & {"parent_asin", "helpful_vote", "verified_purchase"} or (
        "asin" in keys and "timestamp" in keys and "rating" in keys
    ):
        return "amazon2023"
    # the 2014/2018 dumps always name the product `asin`; without it, `unixReviewTime` and
    # friends are aliases of a generic JSON-lines file
    if "asin" in keys and keys & {"unixReviewTime", "reviewerID", "overall"}:
        if keys & {"vote", "verified", "style", "image"}:
            return "amazon2018"
        if "helpful" in keys:
            return "amazon2014"
        return "amazon2018"
    return None
