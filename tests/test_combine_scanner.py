"""The Numba JSON-lines scanner and the text hash against plain-Python references."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from rcfast.ingest.formats import text_hashes
from rcfast.kernels.ingest_hash import text_hash_py, text_hash_strings
from rcfast.kernels.ingest_json import (
    KIND_BOOL,
    KIND_FLOAT,
    KIND_INT,
    KIND_STR,
    KIND_TEXT,
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


def scan(data: bytes):
    return scan_jsonl(np.frombuffer(data, dtype=np.uint8), *SPEC)


def test_text_hash_kernel_matches_reference():
    vals = [b"", b"a", b"abcdefgh", b"abcdefghi", "caf\u00e9 \U0001F600".encode(), b"x" * 100]
    offsets = np.cumsum([0] + [len(v) for v in vals]).astype(np.int64)
    data = np.frombuffer(b"".join(vals), dtype=np.uint8)
    h = text_hash_strings(offsets, data, np.ones(len(vals), dtype=np.bool_))
    assert [int(x) for x in h] == [text_hash_py(v) for v in vals]
    arr = pa.array([v.decode() for v in vals] + [None])
    assert [int(x) for x in text_hashes(arr)] == [text_hash_py(v) for v in vals] + [0]
    assert len({text_hash_py(v) for v in vals}) == len(vals)


def _str(soffs, sbytes, slot, k, w) -> str:
    o = soffs[slot[k]]
    return bytes(sbytes[slot[k], o[w] : o[w + 1]]).decode()


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
    (n_ok, blank, rs, re_, li, status, ok_idx, present, iv, fv, th, soffs, sbytes,
     slot) = scan(data)
    assert blank == 0 and len(rs) == len(lines)
    for r, line in enumerate(lines):
        assert data[rs[r] : re_[r]] == line
    ok_rows = list(ok_idx)
    for r, (good, *_rest) in enumerate(expect):
        if not good:
            assert status[r] == 1, lines[r]  # never accepts a bad line
    for w, r in enumerate(ok_rows):
        good, pid, uid, ts, rating, votes, ver, text = expect[r]
        assert good
        assert _str(soffs, sbytes, slot, 0, w) == pid and _str(soffs, sbytes, slot, 1, w) == uid
        assert iv[2, w] == ts and fv[3, w] == float(rating) and iv[4, w] == votes
        assert bool(iv[5, w]) == ver
        assert iv[6, w] == len(text)
        assert int(th[w]) == text_hash_py(text.encode())
    # plain-ASCII ids and no damage: the scanner takes the line itself
    for r, (good, pid, uid, *_x) in enumerate(expect):
        if good and pid.isascii() and uid.isascii():
            assert status[r] == 0, lines[r]


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
        assert (res[0] == 1) == ok, name
        if ok and name != "null_text":
            text = json.loads(line)["text"]
            assert res[8][6, 0] == len(text) and int(res[10][0]) == text_hash_py(text.encode())
    # a record at the very end of the block without a newline, and short tails
    for tail in (b'{"text": "ab"}', b'{"text": "abcdefghijklmnop"}', b"{}"):
        res = scan(tail)
        assert res[0] == 1
