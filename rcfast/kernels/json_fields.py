"""The wanted fields of the JSON-lines scanner (:mod:`rcfast.kernels.ingest_json`): their kinds
and their keys as machine words. Importable without Numba (the ingest step plans its reads
before it needs a kernel)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

KIND_STR = 0  #: string without escapes → byte span
KIND_INT = 1  #: integer → int64
KIND_FLOAT = 2  #: number → float64
KIND_BOOL = 3  #: true/false → 0/1
KIND_LIST_FIRST = 4  #: [int, ...] → first element (Amazon 2014 ``helpful``)
KIND_TEXT = 5  #: string → code-point length (ival) and text hash (of its UTF-8 bytes)


def key_words(keys: np.ndarray, key_offs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lengths, first 24 bytes as 3 little-endian words, masks) of the scanner's wanted keys."""
    nk = key_offs.shape[0] - 1
    klen = np.diff(key_offs).astype(np.int64)
    kw = np.zeros((nk, 3), np.uint64)
    km = np.zeros((nk, 3), np.uint64)
    for k in range(nk):
        b = bytes(keys[key_offs[k] : key_offs[k + 1]])[:24]
        for j in range(3):
            part = b[8 * j : 8 * j + 8]
            kw[k, j] = int.from_bytes(part.ljust(8, b"\0"), "little")
            km[k, j] = (1 << (8 * len(part))) - 1
    return klen, kw, km


class ScanResult(NamedTuple):
    """What :func:`rcfast.kernels.ingest_json.scan_jsonl` returns. Records are the non-blank
    lines; ``w`` indexes the fully read ones, ``k`` the wanted keys, ``s`` the string keys."""

    n_ok: int  #: fully read records (-1: the caller's newline count was too low)
    n_blank: int  #: blank lines
    rec_start: np.ndarray  #: int64, per record: its first byte in the block
    rec_end: np.ndarray  #: int64, per record: the end of its bytes (CR excluded)
    line_idx: np.ndarray  #: int64, per record: its line index in the block
    status: np.ndarray  #: uint8, per record: 0 fully read, 1 needs the slow path
    ok_idx: np.ndarray  #: int64, per fully read record ``w``: its record index
    present: np.ndarray  #: bool ``[k, w]``: the key was there (and not null)
    ival: np.ndarray  #: int64 ``[k, w]``: integer values; code points of a text
    fval: np.ndarray  #: float64 ``[k, w]``: float values
    text_hash: np.ndarray  #: uint64 ``[w]``: the text hash of the text field
    str_offsets: np.ndarray  #: int32 ``[s, w]``: Arrow offsets (``n_ok + 1``) of string key ``s``
    str_bytes: np.ndarray  #: uint8 ``[s, :]``: Arrow data of string key ``s``
    str_slot: np.ndarray  #: int64, per key ``k``: its string slot ``s`` (-1: not a string key)
