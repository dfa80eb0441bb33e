"""A Numba scanner for JSON-lines review dumps: the ingest step's fast path.

Review dumps are flat JSON objects, one per line, of which the ingest step needs 6-8 fields; the
review text (most of the bytes) is needed only for its length and a hash. A general JSON parser
materializes everything; this scanner walks each line once, keeps only the wanted fields as byte
spans or numbers, and computes the text's length in code points and its hash on the fly, without
building the string.

It is deliberately strict and conservative: anything it does not fully understand (an escape in
an id, a float where an integer is expected, a lone surrogate, a malformed line, invalid UTF-8)
marks the line for the slow path (pyarrow's reader, then record-by-record diagnosis), which then
decides whether the line is good or goes to quarantine with its reason. So the scanner never
decides that a line is bad, only that it is certainly good.

This module holds the record loop (:func:`scan_jsonl`), objects and keys;
:mod:`rcfast.kernels.json_bytes` the strings, their UTF-8 and text hash, and the newline count;
:mod:`rcfast.kernels.json_values` numbers, literals and skipped values. Numba inlines across
modules as within one, but its on-disk cache checks only this file: after editing a module the
scanner imports, remove ``rcfast/kernels/__pycache__/ingest_json.*.nb?`` or the old build loads.

Speed. Strings (most of the bytes) are scanned 8 bytes at a time (SWAR) and the review text is
hashed and its code points counted in the same pass (see :mod:`rcfast.kernels.json_bytes`).
UTF-8 is validated per line, only for lines with a byte >= 0x80. The hot helpers are inlined
and use lookup tables instead of loops and comparison chains on their cold paths: under Numba,
cold code inside a hot loop (a loop, a call) made the loop 2-3x slower.

Keys: dumps write every record's keys in the same order, so each key is first compared (as
three 8-byte words masked to its length) with the key met at the same position of the previous
record, wanted or not, and only on a miss searched among the wanted keys (~10 % of the scan).
Wanted string values (ids) are copied out 8 bytes at a time (~7 %).

Kinds of wanted fields: see the ``KIND_*`` constants. Unknown keys are skipped, with string and
bracket structure checked (and UTF-8, per line).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rcfast.kernels.intrinsics import borrow, load8, store8
from rcfast.kernels.json_bytes import (  # noqa: F401 (count_newlines re-exported)
    count_newline_bytes,
    count_newlines,
    decode_text,
    has_high_byte,
    plain_string_end,
    scan_plain_text,
    utf8_valid,
)
from rcfast.kernels.json_fields import (  # noqa: F401 (re-exported)
    KIND_BOOL,
    KIND_FLOAT,
    KIND_INT,
    KIND_LIST_FIRST,
    KIND_STR,
    KIND_TEXT,
    ScanResult,
    key_words,
)
from rcfast.kernels.json_values import (
    is_null,
    parse_bool,
    parse_float,
    parse_int,
    skip_value,
    skip_ws,
)


#: per key length 0..24: the masks of its three 8-byte words (bytes beyond the key cleared)
_KMASK = np.zeros((25, 3), np.uint64)
for _l in range(25):
    for _w in range(3):
        _nb = min(max(_l - 8 * _w, 0), 8)
        _KMASK[_l, _w] = np.uint64((1 << (8 * _nb)) - 1)
del _l, _w, _nb


@njit(nogil=True)
def _match_key(data, ks, ke, keys, key_offs):
    kl = ke - ks
    for k in range(key_offs.shape[0] - 1):
        a = key_offs[k]
        b = key_offs[k + 1]
        if b - a != kl:
            continue
        same = True
        for j in range(kl):
            if data[ks + j] != keys[a + j]:
                same = False
                break
        if same:
            return k
    return -1


@njit(nogil=True)
def _scan_object(data, p, end, keys, key_offs, klen, kw, kinds, r, present, sstart, send,
                 ival, fval, thash, scratch, kcache):
    """Read one object starting at p; return the index after its closing brace, or -1."""
    if p >= end or data[p] != 123:
        return -1
    p = skip_ws(data, p + 1, end)
    if p < end and data[p] == 125:
        return p + 1
    nk = klen.shape[0]
    ordinal = 0
    while True:
        if p >= end or data[p] != 34:
            return -1
        ks = p + 1
        ke = plain_string_end(data, p, end)
        if ke < 0:
            return -1  # an escaped key might spell a wanted one: pyarrow decides
        kl = ke - ks
        k = -1
        if ks + 24 <= end and kl <= 24:
            # the words of the key, masked to its length (the bytes after it are not the key's)
            w0 = load8(data, ks) & _KMASK[kl, 0]
            w1 = load8(data, ks + 8) & _KMASK[kl, 1]
            w2 = load8(data, ks + 16) & _KMASK[kl, 2]
            # dumps write every record's keys in the same order: the key at this ordinal is
            # most likely the one met there last time (wanted or not), one comparison
            if ordinal < kcache.shape[0] and kcache[ordinal, 0] == kl \
                    and np.uint64(kcache[ordinal, 1]) == w0 \
                    and np.uint64(kcache[ordinal, 2]) == w1 \
                    and np.uint64(kcache[ordinal, 3]) == w2:
                k = kcache[ordinal, 4]
            else:
                for j in range(nk):
                    if klen[j] == kl and w0 == kw[j, 0] and w1 == kw[j, 1] and w2 == kw[j, 2]:
                        k = j
                        break
                if ordinal < kcache.shape[0]:
                    kcache[ordinal, 0] = kl
                    kcache[ordinal, 1] = np.int64(w0)
                    kcache[ordinal, 2] = np.int64(w1)
                    kcache[ordinal, 3] = np.int64(w2)
                    kcache[ordinal, 4] = k
        else:
            k = _match_key(data, ks, ke, keys, key_offs)
        ordinal += 1
        p = skip_ws(data, ke + 1, end)
        if p >= end or data[p] != 58:
            return -1
        p = skip_ws(data, p + 1, end)
        if p >= end:
            return -1
        if k < 0:
            p = skip_value(data, p, end)
            if p < 0:
                return -1
        elif is_null(data, p, end):
            present[k, r] = False
            p += 4
        else:
            kind = kinds[k]
            if kind == KIND_TEXT:
                if data[p] != 34:
                    return -1
                q, h, ncp = scan_plain_text(data, p, end)
                if q < 0:
                    ncp, h, q = decode_text(data, p + 1, end, scratch)
                    if q < 0:
                        return -1
                ival[k, r] = ncp
                thash[r] = h
                present[k, r] = True
                p = q
            elif kind == KIND_STR:
                if data[p] != 34:
                    return -1
                q = plain_string_end(data, p, end)
                if q < 0:
                    return -1  # ids with escapes: let pyarrow decode them
                sstart[k, r] = p + 1
                send[k, r] = q
                present[k, r] = True
                p = q + 1
            # one branch per kind, each storing only after its own check (a shared tail would
            # store first)
            elif kind == KIND_INT:
                v, q = parse_int(data, p, end)
                if q < 0:
                    return -1
                ival[k, r] = v
                present[k, r] = True
                p = q
            elif kind == KIND_FLOAT:
                x, q = parse_float(data, p, end)
                if q < 0:
                    return -1
                fval[k, r] = x
                present[k, r] = True
                p = q
            elif kind == KIND_BOOL:
                v, q = parse_bool(data, p, end)
                if q < 0:
                    return -1
                ival[k, r] = v
                present[k, r] = True
                p = q
            else:  # KIND_LIST_FIRST
                p = _list_first(data, p, end, k, r, present, ival)
                if p < 0:
                    return -1
        p = skip_ws(data, p, end)
        if p >= end:
            return -1
        if data[p] == 44:
            p = skip_ws(data, p + 1, end)
            continue
        if data[p] == 125:
            return p + 1
        return -1


@njit(nogil=True)
def _list_first(data, p, end, k, r, present, ival):
    """[int, ...] at p: its first element (absent when empty); the index after it, or -1."""
    if data[p] != 91:
        return -1
    p = skip_ws(data, p + 1, end)
    if p < end and data[p] == 93:
        present[k, r] = False
        return p + 1
    v, q = parse_int(data, p, end)
    if q < 0:
        return -1
    ival[k, r] = v
    present[k, r] = True
    p = skip_ws(data, q, end)
    while p < end and data[p] == 44:
        p = skip_ws(data, p + 1, end)
        _v, q = parse_int(data, p, end)
        if q < 0:
            return -1
        p = skip_ws(data, q, end)
    if p >= end or data[p] != 93:
        return -1
    return p + 1


def scan_jsonl(data, keys, key_offs, kinds, klen, kw, km, newlines) -> ScanResult:
    """Scan a block of JSON lines (``data``: a uint8 array). ``keys``/``key_offs``: the wanted
    keys' bytes, Arrow-style; ``kinds``: their ``KIND_*``; ``klen, kw, km``: :func:`key_words`
    of them (``km``, the word masks, is no longer read: a key's masks follow from its length).
    ``newlines``: the number of ``\n`` bytes in ``data`` when the caller has counted them
    already (the reader does, for line numbers), else -1.

    - per non-blank line (record) ``r``: its byte span (CR excluded), its line index in the
      block, ``status`` 0 = fully read / 1 = needs the slow path;
    - per fully read record ``w`` (``ok_idx[w]`` = its record index) and wanted key ``k``:
      ``present[k, w]``, the value in ``ival``/``fval`` (text: code points in ``ival`` and the
      hash in ``text_hash``), and for string keys the Arrow layout ``str_offsets[s]`` (int32,
      ``n_ok + 1``) / ``str_bytes[s]`` with ``s = str_slot[k]``.

    A ``newlines`` count below the true one is detected before any write out of bounds, and
    then ``n_ok`` is -1 and nothing else is meaningful: call again with -1.
    """
    return ScanResult(*_scan_jsonl(data, keys, key_offs, kinds, klen, kw, km, newlines))


@njit(nogil=True, cache=True)
def _scan_jsonl(data, keys, key_offs, kinds, klen, kw, km, newlines):
    """:func:`scan_jsonl` (the fields of :class:`ScanResult`, in order)."""
    n = data.shape[0]
    cap = 1 + (newlines if newlines >= 0 else count_newline_bytes(data, n))
    nk = kinds.shape[0]
    str_slot = np.full(nk, -1, np.int64)
    nstr = 0
    for k in range(nk):
        if kinds[k] == KIND_STR:
            str_slot[k] = nstr
            nstr += 1
    rec_start = np.empty(cap, np.int64)
    rec_end = np.empty(cap, np.int64)
    line_idx = np.empty(cap, np.int64)
    status = np.zeros(cap, np.uint8)
    ok_idx = np.empty(cap, np.int64)
    present = np.zeros((nk, cap), np.bool_)
    sstart = np.zeros((nk, cap), np.int64)
    send = np.zeros((nk, cap), np.int64)
    ival = np.zeros((nk, cap), np.int64)
    fval = np.zeros((nk, cap), np.float64)
    thash = np.zeros(cap, np.uint64)
    str_offsets = np.zeros((max(nstr, 1), cap + 1), np.int32)
    # one row of n bytes per string key (pages are touched only when written), flat so that
    # the ids are copied 8 bytes at a time
    str_flat = np.empty(max(nstr, 1) * n, np.uint8)
    spos = np.zeros(max(nstr, 1), np.int64)
    scratch = np.empty(n + 8, np.uint8)  # decoded text with escapes (pages touched on use)
    # the calls below get views without reference counting (see borrow), one line per array
    # because each array is its own type (Numba cannot loop over them)
    b_data = borrow(data)
    b_keys = borrow(keys)
    b_key_offs = borrow(key_offs)
    b_klen = borrow(klen)
    b_kw = borrow(kw)
    b_kinds = borrow(kinds)
    b_present = borrow(present)
    b_sstart = borrow(sstart)
    b_send = borrow(send)
    b_ival = borrow(ival)
    b_fval = borrow(fval)
    b_thash = borrow(thash)
    b_scratch = borrow(scratch)
    kcache = np.full((16, 5), -1, np.int64)  # per key ordinal: length, 3 words, key index
    b_kcache = borrow(kcache)
    nrec = 0
    nok = 0
    blank = 0
    line = 0
    pos = 0
    while pos < n:
        p = skip_ws(data, pos, n)
        if p >= n or data[p] == 10:  # whitespace-only line
            if p < n or p > pos:
                blank += 1
            line += 1
            pos = p + 1
            continue
        if nrec >= cap:  # every line is at most one record: only a wrong count gets here
            nok = -1
            break
        r = nrec
        nrec += 1
        rec_start[r] = pos
        line_idx[r] = line
        w = nok
        for k in range(nk):
            present[k, w] = False
        thash[w] = 0
        # the object is parsed without first looking for the line end (one pass over the
        # bytes instead of two); only a failed line is searched for its newline
        q = _scan_object(b_data, p, n, b_keys, b_key_offs, b_klen, b_kw, b_kinds, w,
                         b_present, b_sstart, b_send, b_ival, b_fval, b_thash, b_scratch,
                         b_kcache)
        good = False
        e = n
        if q >= 0:
            q = skip_ws(data, q, n)
            if q >= n or data[q] == 10:
                # UTF-8 is checked per line, and only when the line has a byte >= 0x80
                good = not has_high_byte(data, p, q) or utf8_valid(b_data, p, q)
                e = q
        if not good and e == n:
            e = p
            while e < n and data[e] != 10:
                e += 1
        le = e
        while le > pos and data[le - 1] == 13:
            le -= 1
        rec_end[r] = le
        if good:
            ok_idx[w] = r
            for k in range(nk):
                sl = str_slot[k]
                if sl < 0:
                    continue
                if present[k, w]:
                    a = sstart[k, w]
                    b = send[k, w]
                    o = spos[sl]
                    d = sl * n + o
                    # whole words while both the source and the row have 8 bytes left (a
                    # word may run past the id: the next id overwrites those bytes)
                    j = 0
                    while j < b - a and a + j + 8 <= n and o + j + 8 <= n:
                        store8(str_flat, d + j, load8(data, a + j))
                        j += 8
                    while j < b - a:
                        str_flat[d + j] = data[a + j]
                        j += 1
                    spos[sl] = o + b - a
                str_offsets[sl, w + 1] = spos[sl]
            nok += 1
        else:
            status[r] = 1
        line += 1
        pos = e + 1
    # ``scratch`` and ``kcache`` are only used through their borrowed views, which hold no
    # reference: without a use here Numba frees them right after ``borrow`` (at the variable's
    # last use), and decoding an escaped text then wrote into freed memory (a crash with
    # --strict on large gzip input, or silent corruption). These stores keep them alive until
    # the scan is done.
    scratch[0] = 0
    kcache[0, 0] = -1
    if nok < 0:
        return (nok, blank, rec_start[:0], rec_end[:0], line_idx[:0], status[:0], ok_idx[:0],
                present[:, :0], ival[:, :0], fval[:, :0], thash[:0], str_offsets,
                str_flat.reshape((max(nstr, 1), n)),
                str_slot)
    return (nok, blank, rec_start[:nrec], rec_end[:nrec], line_idx[:nrec], status[:nrec],
            ok_idx[:nok], present[:, :nok], ival[:, :nok], fval[:, :nok], thash[:nok],
            str_offsets, str_flat.reshape((max(nstr, 1), n)), str_slot)
