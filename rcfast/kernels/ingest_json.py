"""A Numba scanner for JSON-lines review dumps: the ingest step's fast path.

Review dumps are flat JSON objects, one per line, of which the ingest step needs 6-8 fields; the
review text (most of the bytes) is needed only for its length and a hash. A general JSON parser
materializes everything; this scanner walks each line once, keeps only the wanted fields as byte
spans or numbers, and computes the text's length in code points and its hash on the fly while
decoding escapes, without building the string.

It is deliberately strict and conservative: anything it does not fully understand (an escape in
an id, a float where an integer is expected, a lone surrogate, a malformed line, invalid UTF-8)
marks the line for the slow path (pyarrow's reader, then record-by-record diagnosis), which then
decides whether the line is good or goes to quarantine with its reason. So the scanner never
decides that a line is bad, only that it is certainly good.

Kinds of wanted fields: see the ``KIND_*`` constants. Unknown keys are skipped, with UTF-8 and
string/bracket structure checked.
"""

from __future__ import annotations

import numpy as np
from numba import njit

KIND_STR = 0  #: string without escapes → byte span
KIND_INT = 1  #: integer → int64
KIND_FLOAT = 2  #: number → float64
KIND_BOOL = 3  #: true/false → 0/1
KIND_LIST_FIRST = 4  #: [int, ...] → first element (Amazon 2014 ``helpful``)
KIND_TEXT = 5  #: string → code-point length (ival) and hash (of its UTF-8 bytes)

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_POW10 = np.array([10.0**i for i in range(23)])


@njit(inline="always", nogil=True)
def _is_ws(c):
    # no newline: in JSON lines a record never spans lines, so a newline ends the scan
    return c == 32 or c == 9 or c == 13


@njit(inline="always", nogil=True)
def _skip_ws(data, p, end):
    while p < end and _is_ws(data[p]):
        p += 1
    return p


@njit(inline="always", nogil=True)
def _utf8_seq(data, p, end):
    """Length of the valid UTF-8 sequence starting at non-ASCII byte data[p], or 0."""
    c = data[p]
    if c < 0xC2:
        return 0
    if c < 0xE0:
        if p + 1 < end and (data[p + 1] & 0xC0) == 0x80:
            return 2
        return 0
    if c < 0xF0:
        if p + 2 >= end:
            return 0
        c1 = data[p + 1]
        if (c1 & 0xC0) != 0x80 or (data[p + 2] & 0xC0) != 0x80:
            return 0
        if c == 0xE0 and c1 < 0xA0:
            return 0
        if c == 0xED and c1 >= 0xA0:
            return 0
        return 3
    if c < 0xF5:
        if p + 3 >= end:
            return 0
        c1 = data[p + 1]
        if (c1 & 0xC0) != 0x80 or (data[p + 2] & 0xC0) != 0x80 or (data[p + 3] & 0xC0) != 0x80:
            return 0
        if c == 0xF0 and c1 < 0x90:
            return 0
        if c == 0xF4 and c1 >= 0x90:
            return 0
        return 4
    return 0


@njit(inline="always", nogil=True)
def _hex4(data, p, end):
    if p + 4 > end:
        return -1
    v = 0
    for j in range(p, p + 4):
        c = data[j]
        if 48 <= c <= 57:
            d = c - 48
        elif 65 <= c <= 70:
            d = c - 55
        elif 97 <= c <= 102:
            d = c - 87
        else:
            return -1
        v = v * 16 + d
    return v


@njit(nogil=True)
def _skip_string(data, p, end):
    """p at the opening quote; return the index after the closing quote, or -1."""
    p += 1
    while p < end:
        c = data[p]
        if c == 34:
            return p + 1
        if c == 92:
            if p + 1 >= end:
                return -1
            e = data[p + 1]
            if e == 117:
                if _hex4(data, p + 2, end) < 0:
                    return -1
                p += 6
            elif e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110 or e == 114 \
                    or e == 116:
                p += 2
            else:
                return -1
        elif c < 32:
            return -1
        elif c >= 128:
            n = _utf8_seq(data, p, end)
            if n == 0:
                return -1
            p += n
        else:
            p += 1
    return -1


@njit(nogil=True)
def _skip_value(data, p, end):
    """Skip one JSON value starting at p; return the index after it, or -1."""
    if p >= end:
        return -1
    c = data[p]
    if c == 34:
        return _skip_string(data, p, end)
    if c == 123 or c == 91:
        # nested object/array: track bracket depth, strings checked for escapes and UTF-8
        depth = 0
        while p < end:
            c = data[p]
            if c == 34:
                p = _skip_string(data, p, end)
                if p < 0:
                    return -1
                continue
            if c == 123 or c == 91:
                depth += 1
            elif c == 125 or c == 93:
                depth -= 1
                if depth == 0:
                    return p + 1
            elif c >= 128 or c == 10:
                return -1
            p += 1
        return -1
    if c == 116:
        if p + 4 <= end and data[p + 1] == 114 and data[p + 2] == 117 and data[p + 3] == 101:
            return p + 4
        return -1
    if c == 102:
        if p + 5 <= end and data[p + 1] == 97 and data[p + 2] == 108 and data[p + 3] == 115 \
                and data[p + 4] == 101:
            return p + 5
        return -1
    if c == 110:
        if p + 4 <= end and data[p + 1] == 117 and data[p + 2] == 108 and data[p + 3] == 108:
            return p + 4
        return -1
    if c == 45 or 48 <= c <= 57:
        return _skip_number(data, p, end)
    return -1


@njit(nogil=True)
def _skip_number(data, p, end):
    """JSON number grammar -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; next index or -1."""
    if data[p] == 45:
        p += 1
    if p >= end or not (48 <= data[p] <= 57):
        return -1
    if data[p] == 48:
        p += 1
    else:
        while p < end and 48 <= data[p] <= 57:
            p += 1
    if p < end and data[p] == 46:
        p += 1
        q = p
        while p < end and 48 <= data[p] <= 57:
            p += 1
        if p == q:
            return -1
    if p < end and (data[p] == 101 or data[p] == 69):
        p += 1
        if p < end and (data[p] == 43 or data[p] == 45):
            p += 1
        q = p
        while p < end and 48 <= data[p] <= 57:
            p += 1
        if p == q:
            return -1
    return p


@njit(inline="always", nogil=True)
def _is_null(data, p, end):
    return p + 4 <= end and data[p] == 110 and data[p + 1] == 117 and data[p + 2] == 108 \
        and data[p + 3] == 108


@njit(nogil=True)
def _parse_int(data, p, end):
    """(value, next index) of an integer; next = -1 if not a plain integer."""
    neg = False
    if p < end and data[p] == 45:
        neg = True
        p += 1
    start = p
    v = 0
    while p < end and 48 <= data[p] <= 57:
        v = v * 10 + (data[p] - 48)
        p += 1
    nd = p - start
    if nd == 0 or nd > 18:
        return 0, -1
    if nd > 1 and data[start] == 48:
        return 0, -1
    if p < end and (data[p] == 46 or data[p] == 101 or data[p] == 69):
        return 0, -1
    return (-v if neg else v), p


@njit(nogil=True)
def _parse_float(data, p, end):
    """(value, next index) of a JSON number with at most 18 significant digits; -1 otherwise."""
    neg = False
    if p < end and data[p] == 45:
        neg = True
        p += 1
    start = p
    m = 0
    nd = 0
    while p < end and 48 <= data[p] <= 57:
        m = m * 10 + (data[p] - 48)
        nd += 1
        p += 1
    if nd == 0 or (nd > 1 and data[start] == 48):
        return 0.0, -1
    fd = 0
    if p < end and data[p] == 46:
        p += 1
        while p < end and 48 <= data[p] <= 57:
            m = m * 10 + (data[p] - 48)
            nd += 1
            fd += 1
            p += 1
        if fd == 0:
            return 0.0, -1
    if nd > 18 or fd > 22:
        return 0.0, -1
    e = 0
    if p < end and (data[p] == 101 or data[p] == 69):
        p += 1
        eneg = False
        if p < end and (data[p] == 43 or data[p] == 45):
            eneg = data[p] == 45
            p += 1
        ne = 0
        while p < end and 48 <= data[p] <= 57:
            e = e * 10 + (data[p] - 48)
            ne += 1
            p += 1
        if ne == 0 or ne > 3:
            return 0.0, -1
        if eneg:
            e = -e
    x = float(m)
    if m >= 1 << 53:
        return 0.0, -1
    # m and 10**k are exact doubles, so one division/multiplication is correctly rounded
    e -= fd
    if e < 0:
        if -e > 22:
            return 0.0, -1
        x = x / _POW10[-e]
    elif e > 0:
        if e > 22:
            return 0.0, -1
        x = x * _POW10[e]
    return (-x if neg else x), p


@njit(inline="always", nogil=True)
def _fnv_byte(h, b):
    h ^= np.uint64(b)
    return h * _FNV_PRIME


@njit(nogil=True)
def _scan_text(data, p, end):
    """p at the opening quote: (code points, hash of the decoded UTF-8, next index or -1)."""
    p += 1
    h = _FNV_OFFSET
    nbytes = 0
    ncp = 0
    while p < end:
        c = data[p]
        if c == 34:
            h ^= np.uint64(nbytes)
            h ^= h >> np.uint64(33)
            h *= np.uint64(0xFF51AFD7ED558CCD)
            h ^= h >> np.uint64(33)
            h *= np.uint64(0xC4CEB9FE1A85EC53)
            h ^= h >> np.uint64(33)
            return ncp, h, p + 1
        if c == 92:
            if p + 1 >= end:
                return 0, h, -1
            e = data[p + 1]
            if e == 117:
                cp = _hex4(data, p + 2, end)
                if cp < 0:
                    return 0, h, -1
                p += 6
                if 0xD800 <= cp < 0xDC00:
                    if p + 1 < end and data[p] == 92 and data[p + 1] == 117:
                        lo = _hex4(data, p + 2, end)
                        if 0xDC00 <= lo < 0xE000:
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                            p += 6
                        else:
                            return 0, h, -1
                    else:
                        return 0, h, -1
                elif 0xDC00 <= cp < 0xE000:
                    return 0, h, -1
                if cp < 0x80:
                    h = _fnv_byte(h, cp)
                    nbytes += 1
                elif cp < 0x800:
                    h = _fnv_byte(h, 0xC0 | (cp >> 6))
                    h = _fnv_byte(h, 0x80 | (cp & 0x3F))
                    nbytes += 2
                elif cp < 0x10000:
                    h = _fnv_byte(h, 0xE0 | (cp >> 12))
                    h = _fnv_byte(h, 0x80 | ((cp >> 6) & 0x3F))
                    h = _fnv_byte(h, 0x80 | (cp & 0x3F))
                    nbytes += 3
                else:
                    h = _fnv_byte(h, 0xF0 | (cp >> 18))
                    h = _fnv_byte(h, 0x80 | ((cp >> 12) & 0x3F))
                    h = _fnv_byte(h, 0x80 | ((cp >> 6) & 0x3F))
                    h = _fnv_byte(h, 0x80 | (cp & 0x3F))
                    nbytes += 4
                ncp += 1
                continue
            if e == 34 or e == 92 or e == 47:
                b = e
            elif e == 98:
                b = 8
            elif e == 102:
                b = 12
            elif e == 110:
                b = 10
            elif e == 114:
                b = 13
            elif e == 116:
                b = 9
            else:
                return 0, h, -1
            h = _fnv_byte(h, b)
            nbytes += 1
            ncp += 1
            p += 2
        elif c < 32:
            return 0, h, -1
        elif c >= 128:
            n = _utf8_seq(data, p, end)
            if n == 0:
                return 0, h, -1
            for j in range(p, p + n):
                h = _fnv_byte(h, data[j])
            nbytes += n
            ncp += 1
            p += n
        else:
            h = _fnv_byte(h, c)
            nbytes += 1
            ncp += 1
            p += 1
    return 0, h, -1


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
def _scan_object(data, p, end, keys, key_offs, kinds, r, present, sstart, send, ival, fval,
                 thash):
    """Read one object starting at p; return the index after its closing brace, or -1."""
    if p >= end or data[p] != 123:
        return -1
    p = _skip_ws(data, p + 1, end)
    if p < end and data[p] == 125:
        return p + 1
    while True:
        if p >= end or data[p] != 34:
            return -1
        ks = p + 1
        q = _skip_string(data, p, end)
        if q < 0:
            return -1
        ke = q - 1
        for j in range(ks, ke):
            if data[j] == 92:
                return -1  # an escaped key might spell a wanted one: pyarrow decides
        k = _match_key(data, ks, ke, keys, key_offs)
        p = _skip_ws(data, q, end)
        if p >= end or data[p] != 58:
            return -1
        p = _skip_ws(data, p + 1, end)
        if p >= end:
            return -1
        if k < 0:
            p = _skip_value(data, p, end)
            if p < 0:
                return -1
        elif _is_null(data, p, end):
            present[k, r] = False
            p += 4
        else:
            kind = kinds[k]
            if kind == KIND_STR:
                if data[p] != 34:
                    return -1
                q = _skip_string(data, p, end)
                if q < 0:
                    return -1
                for j in range(p + 1, q - 1):
                    if data[j] == 92:
                        return -1  # ids with escapes: let pyarrow decode them
                sstart[k, r] = p + 1
                send[k, r] = q - 1
                present[k, r] = True
                p = q
            elif kind == KIND_INT:
                v, q = _parse_int(data, p, end)
                if q < 0:
                    return -1
                ival[k, r] = v
                present[k, r] = True
                p = q
            elif kind == KIND_FLOAT:
                x, q = _parse_float(data, p, end)
                if q < 0:
                    return -1
                fval[k, r] = x
                present[k, r] = True
                p = q
            elif kind == KIND_BOOL:
                c = data[p]
                if c == 116 and p + 4 <= end and data[p + 1] == 114 and data[p + 2] == 117 \
                        and data[p + 3] == 101:
                    ival[k, r] = 1
                    p += 4
                elif c == 102 and p + 5 <= end and data[p + 1] == 97 and data[p + 2] == 108 \
                        and data[p + 3] == 115 and data[p + 4] == 101:
                    ival[k, r] = 0
                    p += 5
                else:
                    return -1
                present[k, r] = True
            elif kind == KIND_LIST_FIRST:
                if data[p] != 91:
                    return -1
                p = _skip_ws(data, p + 1, end)
                if p < end and data[p] == 93:
                    present[k, r] = False
                    p += 1
                else:
                    v, q = _parse_int(data, p, end)
                    if q < 0:
                        return -1
                    ival[k, r] = v
                    present[k, r] = True
                    p = _skip_ws(data, q, end)
                    while p < end and data[p] == 44:
                        p = _skip_ws(data, p + 1, end)
                        _v, q = _parse_int(data, p, end)
                        if q < 0:
                            return -1
                        p = _skip_ws(data, q, end)
                    if p >= end or data[p] != 93:
                        return -1
                    p += 1
            else:  # KIND_TEXT
                if data[p] != 34:
                    return -1
                ncp, h, q = _scan_text(data, p, end)
                if q < 0:
                    return -1
                ival[k, r] = ncp
                thash[r] = h
                present[k, r] = True
                p = q
        p = _skip_ws(data, p, end)
        if p >= end:
            return -1
        if data[p] == 44:
            p = _skip_ws(data, p + 1, end)
            continue
        if data[p] == 125:
            return p + 1
        return -1


@njit(nogil=True, cache=True)
def scan_jsonl(data, keys, key_offs, kinds):
    """Scan a block of JSON lines.

    Returns ``(n_ok, n_blank, rec_start, rec_end, line_idx, status, ok_idx, present, ival, fval,
    thash, str_offsets, str_bytes, str_slot)``:

    - per non-blank line (record) ``r``: its byte span (CR excluded), its line index in the
      block, ``status`` 0 = fully read / 1 = needs the slow path;
    - per fully read record ``w`` (``ok_idx[w]`` = its record index) and wanted key ``k``:
      ``present[k, w]``, the value in ``ival``/``fval`` (text: code points in ``ival`` and the
      hash in ``thash``), and for string keys the Arrow layout ``str_offsets[s]`` (int32,
      ``n_ok + 1``) / ``str_bytes[s]`` with ``s = str_slot[k]``.
    """
    n = data.shape[0]
    cap = 1
    for i in range(n):
        if data[i] == 10:
            cap += 1
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
    str_bytes = np.empty((max(nstr, 1), n), np.uint8)  # pages are touched only when written
    spos = np.zeros(max(nstr, 1), np.int64)
    nrec = 0
    nok = 0
    blank = 0
    line = 0
    pos = 0
    while pos < n:
        p = _skip_ws(data, pos, n)
        if p >= n or data[p] == 10:  # whitespace-only line
            if p < n or p > pos:
                blank += 1
            line += 1
            pos = p + 1
            continue
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
        q = _scan_object(data, p, n, keys, key_offs, kinds, w, present, sstart, send, ival,
                         fval, thash)
        good = False
        e = n
        if q >= 0:
            q = _skip_ws(data, q, n)
            if q >= n or data[q] == 10:
                good = True
                e = q
        if not good:
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
                    for j in range(b - a):
                        str_bytes[sl, o + j] = data[a + j]
                    spos[sl] = o + b - a
                str_offsets[sl, w + 1] = spos[sl]
            nok += 1
        else:
            status[r] = 1
        line += 1
        pos = e + 1
    return (nok, blank, rec_start[:nrec], rec_end[:nrec], line_idx[:nrec], status[:nrec],
            ok_idx[:nok], present[:, :nok], ival[:, :nok], fval[:, :nok], thash[:nok],
            str_offsets, str_bytes, str_slot)
