"""The Numba JSON-lines scanner and the text hash against plain-Python references."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hash_reference import text_hash_py

from rcfast.ingest.string_hashes import text_hashes
from rcfast.kernels.ingest_hash import text_hash_strings
from rcfast.kernels.ingest_json import (
    KIND_BOOL,
    KIND_FLOAT,
    KIND_INT,
    KIND_STR,
    KIND_TEXT,
    count_newlines,
    key_words,
    scan_jsonl,
)

FIELDS = [("parent_asin", KIND_STR), ("user_id", KIND_STR), ("timestamp", KIND_INT),
          ("rating", KIND_FLOAT), ("helpful_vote", KIND_INT), ("verified_purchase", KIND_BOOL),
          ("text", KIND_TEXT)]


def _spec():
    names = [n.encode() for n, _ in FIELDS]
    blob = np.frombuffer(b"".join(names), dtype=np.uint8).copy()
    offs = np.cumsum([0] + [len(n) for n in names]).astype(np.int64)
    kinds = np.array([k for _, k in FIELDS], dtype=np.uint8)
    return (blob, offs, kinds, *key_words(blob, offs))


SPEC = _spec()


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 63, 2039, 2040, 2041, 2047, 2048, 4097,
                                  100_003])
def test_count_newlines_equals_bytes_count(size):
    """The word-at-a-time newline count (lanes summed over 255 words, then folded) against
    ``bytes.count``: all-newline input (every lane full), bytes next to 0x0A (0x0B, 0x8A),
    sizes around the 8-byte word and the 255-word lane limit."""
    rng = np.random.default_rng(size)
    blobs = [b"\n" * size, bytes(size), bytes(rng.choice(np.array([10, 11, 138, 0x0A + 0x80, 255,
                                                                     32], np.uint8), size)),
             bytes(rng.integers(0, 256, size, dtype=np.uint8))]
    for blob in blobs:
        arr = np.frombuffer(blob, dtype=np.uint8)
        assert count_newlines(arr) == blob.count(b"\n")


def scan(data: bytes):
    """The scanner's result, checked equal, array for array, to a call given the newline count
    in advance."""
    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = data.count(b"\n")
    res = scan_jsonl(arr, *SPEC, -1)
    # the reader's newline count given in advance changes nothing; a count too low is
    # caught before any write out of bounds (n_ok = -1)
    for other in [scan_jsonl(arr, *SPEC, newlines)]:
        assert other._fields == res._fields
        for name, a, b in zip(res._fields, res, other):
            if name == "str_bytes":  # allocated uninitialized, compare the written bytes
                ends = np.asarray(res.str_offsets)[:, res.n_ok]
                a = np.concatenate([a[s, :e] for s, e in enumerate(ends)])
                b = np.concatenate([b[s, :e] for s, e in enumerate(ends)])
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    if newlines and len(res.rec_start) > newlines:  # more records than newlines: a short count
        assert scan_jsonl(arr, *SPEC, newlines - 1).n_ok == -1
    return res


def test_text_hash_kernel_matches_reference():
    vals = [b"", b"a", b"abcdefgh", b"abcdefghi", "caf\u00e9 \U0001F600".encode(), b"x" * 100]
    offsets = np.cumsum([0] + [len(v) for v in vals]).astype(np.int64)
    data = np.frombuffer(b"".join(vals), dtype=np.uint8)
    h = text_hash_strings(offsets, data, np.ones(len(vals), dtype=np.bool_))
    assert [int(x) for x in h] == [text_hash_py(v) for v in vals]
    arr = pa.array([v.decode() for v in vals] + [None])
    assert [int(x) for x in text_hashes(arr)] == [text_hash_py(v) for v in vals] + [0]
    assert len({text_hash_py(v) for v in vals}) == len(vals)


def _str(res, k, w) -> str:
    """The string value of key ``k`` in fully read record ``w``."""
    s = res.str_slot[k]
    o = res.str_offsets[s]
    return bytes(res.str_bytes[s, o[w] : o[w + 1]]).decode()


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
ids = st.text(alphabet="ABCDEFGHIJ0123456789é", min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(ids, ids, st.integers(0, 2**53), st.sampled_from([1.0, 2.5, 5.0, 3]),
                          st.integers(0, 10**6), st.booleans(), texts, st.booleans(),
                          st.sampled_from(["ok", "cut", "badutf8", "extra"])),
                min_size=1, max_size=12))
def test_scanner_matches_reference(rows):
    lines, expect = [], []
    for pid, uid, ts, rating, votes, ver, text, ascii_only, damage in rows:
        obj = {"rating": rating, "title": "t \u00e9", "text": text, "images": [{"u": "x"}],
               "parent_asin": pid, "user_id": uid, "timestamp": ts, "helpful_vote": votes,
               "verified_purchase": ver}
        line = json.dumps(obj, ensure_ascii=ascii_only).encode()
        if damage == "cut":
            line = line[: len(line) // 2]
        elif damage == "badutf8":
            line = line.replace(b'"title": "t', b'"title": "t\xff', 1)
        elif damage == "extra":
            line = line + b" x"
        lines.append(line)
        expect.append((damage == "ok", pid, uid, ts, rating, votes, ver, text))
    data = b"\n".join(lines) + b"\n"
    res = scan(data)
    iv, fv = res.ival, res.fval
    assert res.n_blank == 0 and len(res.rec_start) == len(lines)
    for r, line in enumerate(lines):
        assert data[res.rec_start[r] : res.rec_end[r]] == line
    for r, (good, *_rest) in enumerate(expect):
        if not good:
            assert res.status[r] == 1, lines[r]  # never accepts a bad line
    for w, r in enumerate(res.ok_idx):
        good, pid, uid, ts, rating, votes, ver, text = expect[r]
        assert good
        assert _str(res, 0, w) == pid and _str(res, 1, w) == uid
        assert iv[2, w] == ts and fv[3, w] == float(rating) and iv[4, w] == votes
        assert bool(iv[5, w]) == ver
        assert iv[6, w] == len(text)
        assert int(res.text_hash[w]) == text_hash_py(text.encode())
    # plain-ASCII ids and no damage: the scanner takes the line itself
    for r, (good, pid, uid, *_x) in enumerate(expect):
        if good and pid.isascii() and uid.isascii():
            assert res.status[r] == 0, lines[r]


_DECOYS = ["user_ix", "texts", "tex", "parent_asin_", "timestampX", "ratinf", "Text",
           "an_unknown_key_longer_than_24_bytes"]
_LONG = "a_wanted_key_longer_than_24_bytes"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.permutations(list(range(len(FIELDS) + 1 + len(_DECOYS)))),
                          st.integers(0, 2**16), st.integers(0, 99)),
                min_size=1, max_size=10))
def test_scanner_keys_in_any_order_with_decoys(rows):
    """Keys are matched by a per-ordinal cache (the key met at this position last time) and a
    search on a miss: records with their keys in different orders, some left out, and decoys
    (unknown keys of a wanted key's length or prefix, one over 24 bytes) give what
    ``json.loads`` reads; a wanted key over 24 bytes is matched byte by byte."""
    fields = FIELDS + [(_LONG, KIND_INT)]
    names = [n.encode() for n, _ in fields]
    blob = np.frombuffer(b"".join(names), dtype=np.uint8).copy()
    offs = np.cumsum([0] + [len(n) for n in names]).astype(np.int64)
    kinds = np.array([k for _, k in fields], dtype=np.uint8)
    spec = (blob, offs, kinds, *key_words(blob, offs))
    values = {"parent_asin": "P", "user_id": "U", "timestamp": 7, "rating": 4.0,
              "helpful_vote": 2, "verified_purchase": False, "text": "tx", _LONG: 11}
    lines, objs = [], []
    for perm, salt, keep in rows:
        obj = {}
        for i in perm:
            if i < len(fields):
                name = fields[i][0]
                if (salt >> i) & 1 and keep < 60:  # some wanted keys left out
                    continue
                v = values[name]
                obj[name] = v + str(salt) if isinstance(v, str) else v
            else:
                obj[_DECOYS[i - len(fields)]] = salt
        objs.append(obj)
        lines.append(json.dumps(obj).encode())
    data = b"\n".join(lines) + b"\n"
    arr = np.frombuffer(data, dtype=np.uint8)
    res = scan_jsonl(arr, *spec, -1)
    iv, fv = res.ival, res.fval
    assert res.n_ok == len(lines)
    for w, obj in enumerate(objs):
        for k, (name, kind) in enumerate(fields):
            assert bool(res.present[k, w]) == (name in obj), (name, obj)
            if name not in obj:
                continue
            if kind == KIND_STR:
                assert _str(res, k, w) == obj[name]
            elif kind == KIND_FLOAT:
                assert fv[k, w] == obj[name]
            elif kind == KIND_TEXT:
                assert iv[k, w] == len(obj[name])
                assert int(res.text_hash[w]) == text_hash_py(obj[name].encode())
            else:
                assert iv[k, w] == int(obj[name])


def test_scanner_edge_cases():
    base = {"parent_asin": "P1", "user_id": "U1", "timestamp": 5, "rating": 4.0,
            "helpful_vote": 0, "verified_purchase": True}
    cases = {
        "escapes": (json.dumps({**base, "text": 'a "q" \\ \n \t é \U0001F600'}), True),
        "long": (json.dumps({**base, "text": "y" * 1000}), True),
        "lone_surrogate": (json.dumps(base)[:-1] + ', "text": "\\ud800"}', False),
        "control": (json.dumps(base)[:-1] + ', "text": "a\tb"}', False),
        "bad_escape": (json.dumps(base)[:-1] + ', "text": "a\\qb"}', False),
        "bad_hex": (json.dumps(base)[:-1] + ', "text": "a\\u12g4"}', False),
        "escaped_id": (json.dumps({**base, "parent_asin": "P\\u0031"}), False),
        "null_text": (json.dumps({**base, "text": None}), True),
    }
    for name, (line, ok) in cases.items():
        res = scan(line.encode() + b"\n")
        assert (res.n_ok == 1) == ok, name
        if ok and name != "null_text":
            text = json.loads(line)["text"]
            assert res.ival[6, 0] == len(text)
            assert int(res.text_hash[0]) == text_hash_py(text.encode())
    # a record at the very end of the block without a newline, and short tails
    for tail in (b'{"text": "ab"}', b'{"text": "abcdefghijklmnop"}', b"{}"):
        assert scan(tail).n_ok == 1


def test_package_bytecode_compiled_once(tmp_path, monkeypatch):
    """Where PYTHONDONTWRITEBYTECODE is set, rcfast compiles its own .pyc files once (else
    every CLI run compiles its modules from source)."""
    import importlib.util

    import rcfast._bytecode as bc

    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    pyc = Path(importlib.util.cache_from_source(bc.__file__))
    if pyc.exists():
        pyc.unlink()
    assert bc.ensure_compiled() is True and pyc.exists()
    assert bc.ensure_compiled() is False  # up to date: nothing to do
    # any module edited after its .pyc was written (an editable install) is compiled again
    import rcfast.ingest.pipeline as pl

    other = Path(importlib.util.cache_from_source(pl.__file__))
    head = bytearray(other.read_bytes())
    head[8:12] = b"\0\0\0\0"  # the source mtime it was compiled from: not this one
    other.write_bytes(bytes(head))
    assert bc.ensure_compiled() is True
    assert bc.ensure_compiled() is False
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    assert bc.ensure_compiled() is False  # Python writes them itself
