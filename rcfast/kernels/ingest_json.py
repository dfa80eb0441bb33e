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

Speed. Strings (most of the bytes) are scanned 8 bytes at a time (SWAR: one 64-bit load finds
the first quote, backslash or control character of a word); the review text is hashed a word at a
time in the same pass (the text hash of :mod:`rcfast.kernels.ingest_hash`) and its code points
counted from the words' UTF-8 continuation bytes. A text with escapes is decoded into a scratch
buffer first. UTF-8 is validated per line, only for lines with a byte >= 0x80. The hot helpers
are inlined and use lookup tables instead of loops and comparison chains on their cold paths:
under Numba, cold code inside a hot loop (a loop, a call) made the loop 2-3x slower.

Keys: dumps write every record's keys in the same order, so each key is first compared (as
three 8-byte words masked to its length) with the key met at the same position of the previous
record, wanted or not, and only on a miss searched among the wanted keys (~10 % of the scan).
Wanted string values (ids) are copied out 8 bytes at a time (~7 %).

Kinds of wanted fields: see the ``KIND_*`` constants. Unknown keys are skipped, with string and
bracket structure checked (and UTF-8, per line).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from llvmlite import ir
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from rcfast.kernels.ingest_hash import _W_SEED, word_final, word_hash, word_mix
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
from rcfast.kernels.strings import load8


#: per key length 0..24: the masks of its three 8-byte words (bytes beyond the key cleared)
_KMASK = np.zeros((25, 3), np.uint64)
for _l in range(25):
    for _w in range(3):
        _nb = min(max(_l - 8 * _w, 0), 8)
        _KMASK[_l, _w] = np.uint64((1 << (8 * _nb)) - 1)
del _l, _w, _nb

_POW10 = np.array([10.0**i for i in range(23)])

#: byte after a backslash: 0 invalid, 1 one-character escape, 2 \uXXXX
_ESC = np.zeros(256, np.uint8)
for _c in b'"\\/bfnrt':
    _ESC[_c] = 1
_ESC[ord("u")] = 2
#: hex digit value, 255 for other bytes
_HEXD = np.full(256, 255, np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEXD[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEXD[_c] = 10 + _i
del _c, _i
#: per first byte of a UTF-8 sequence: its length (0: not a first byte) and the range of the
#: byte after it, narrower than 0x80-0xBF where it must rule out overlong forms, surrogates
#: and code points past U+10FFFF
_U8_LEN = np.zeros(256, np.uint8)
_U8_LEN[0xC2:0xE0] = 2
_U8_LEN[0xE0:0xF0] = 3
_U8_LEN[0xF0:0xF5] = 4
_U8_LO = np.full(256, 0x80, np.uint8)
_U8_HI = np.full(256, 0xBF, np.uint8)
_U8_LO[0xE0] = 0xA0
_U8_HI[0xED] = 0x9F
_U8_LO[0xF0] = 0x90
_U8_HI[0xF4] = 0x8F

# SWAR constants: for a word w, _specials(w) has the high bit set in the first byte that is a
# quote, a backslash or a control character (bytes after the first flagged one may be flagged
# wrongly; only the first is used).
_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)
_QUOTES = np.uint64(0x2222222222222222)
_BSLASHES = np.uint64(0x5C5C5C5C5C5C5C5C)
_CTLS = np.uint64(0x2020202020202020)


@intrinsic
def _borrow(typingctx, arr):
    """A view of ``arr`` without a reference count (null meminfo), for use while ``arr`` lives.

    Numba increments and decrements (atomically) the reference count of every array argument of
    every call that LLVM does not inline; with ~40 calls per record that was half the scanner's
    time. Calls with borrowed views skip the atomics (the null check stays).
    """
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        src = context.make_array(signature.args[0])(context, builder, args[0])
        dst = context.make_array(signature.return_type)(context, builder, value=src._getvalue())
        dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
        dst.parent = cgutils.get_null_value(dst.parent.type)
        return dst._getvalue()

    return arr(arr), codegen


@intrinsic
def _store8(typingctx, arr, idx, val):
    """Store the uint64 ``val`` little-endian at ``arr[idx : idx + 8]`` of a uint8 array
    (unaligned; the caller guarantees ``idx + 8 <= len(arr)``)."""
    if not isinstance(arr, types.Array) or arr.dtype != types.uint8:
        return None
    sig = types.void(arr, idx, types.uint64)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        p64 = builder.bitcast(ptr, ir.IntType(64).as_pointer())
        builder.store(args[2], p64, align=1)
        return context.get_dummy_value()

    return sig, codegen


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
    n = np.int64(_U8_LEN[c])
    if n == 0 or p + n > end:
        return 0
    c1 = data[p + 1]
    if c1 < _U8_LO[c] or c1 > _U8_HI[c]:
        return 0
    if n >= 3 and (data[p + 2] & 0xC0) != 0x80:
        return 0
    if n == 4 and (data[p + 3] & 0xC0) != 0x80:
        return 0
    return n


@njit(inline="always", nogil=True)
def _hex4(data, p, end):
    """Value of the 4 hex digits at p, or -1."""
    if p + 4 > end:
        return -1
    v = 0
    for j in range(p, p + 4):
        d = _HEXD[data[j]]
        if d > 15:
            return -1
        v = v * 16 + d
    return v


# SWAR ("SIMD within a register"): strings are scanned 8 bytes at a time. For a word w,
# _specials(w) has the high bit set in the first byte that is a quote, a backslash or a control
# character (bytes after the first flagged one may be flagged wrongly; only the first is used).
@njit(inline="always", nogil=True)
def _specials(w):
    xq = w ^ _QUOTES
    xb = w ^ _BSLASHES
    return (((xq - _ONES) & ~xq) | ((xb - _ONES) & ~xb) | ((w - _CTLS) & ~w)) & _HIGHS


@njit(inline="always", nogil=True)
def _low_bytes(k):
    """Mask of the k (0..7) low bytes of a word."""
    return (np.uint64(1) << np.uint64(8 * k)) - np.uint64(1)


@njit(inline="always", nogil=True)
def _n_cont(w):
    """Number of UTF-8 continuation bytes (0b10xxxxxx) in the word."""
    m = (w & ~(w << np.uint64(1))) & _HIGHS
    return ((m >> np.uint64(7)) * _ONES) >> np.uint64(56)


@njit(inline="always", nogil=True)
def _next_special(data, p, end):
    """Index of the first quote, backslash or control character at or after p (or end)."""
    while p + 8 <= end:
        sp = _specials(load8(data, p))
        if sp != 0:
            return p + (int(trailing_zeros(sp)) >> 3)
        p += 8
    while p < end:
        c = data[p]
        if c == 34 or c == 92 or c < 32:
            return p
        p += 1
    return end


@njit(inline="always", nogil=True)
def _skip_str(data, p, end):
    """p at the opening quote: the index after the closing quote, or -1 (a control character,
    a bad escape, no closing quote). UTF-8 is not checked here (see ``_line_utf8_ok``)."""
    p += 1
    while True:
        p = _next_special(data, p, end)
        if p >= end:
            return -1
        c = data[p]
        if c == 34:
            return p + 1
        if c != 92 or p + 1 >= end:
            return -1
        e = _ESC[data[p + 1]]
        if e == 0:
            return -1
        if e == 2:
            if p + 6 > end or (_HEXD[data[p + 2]] | _HEXD[data[p + 3]] | _HEXD[data[p + 4]]
                               | _HEXD[data[p + 5]]) > 15:
                return -1
            p += 6
        else:
            p += 2


@njit(inline="always", nogil=True)
def _plain_str_end(data, p, end):
    """p at the opening quote: the index of the closing quote of a string without escapes or
    control characters, else -1."""
    q = _next_special(data, p + 1, end)
    if q < end and data[q] == 34:
        return q
    return -1


@njit(inline="always", nogil=True)
def _text_fast(data, p, end):
    """p at the opening quote of a text without escapes: (index after the closing quote or -1,
    text hash, code points). -1: an escape or a control character (``_decode_text`` decides)
    or the end of the buffer. Code points = bytes - continuation bytes (UTF-8 validity is
    checked per line)."""
    s = p + 1
    p = s
    h = _W_SEED
    cont = np.uint64(0)
    while p + 8 <= end:
        w = load8(data, p)
        sp = _specials(w)
        if sp != 0:
            k = int(trailing_zeros(sp)) >> 3
            if data[p + k] != 34:
                return -1, h, 0
            if k:
                w &= _low_bytes(k)
                h = word_mix(h, w)
                cont += _n_cont(w)
            q = p + k
            nb = q - s
            return q + 1, word_final(h, nb), nb - int(cont)
        h = word_mix(h, w)
        cont += _n_cont(w)
        p += 8
    return -1, h, 0


@njit(nogil=True)
def _utf8_ok(data, a, b):
    """Whether data[a:b] is valid UTF-8."""
    p = a
    while p < b:
        if p + 8 <= b and (load8(data, p) & _HIGHS) == 0:
            p += 8
            continue
        c = data[p]
        if c < 128:
            p += 1
            continue
        n = _utf8_seq(data, p, b)
        if n == 0:
            return False
        p += n
    return True


@njit(inline="always", nogil=True)
def _has_high(data, a, b):
    """Whether data[a:b] holds a byte >= 0x80."""
    acc = np.uint64(0)
    p = a
    while p + 8 <= b:
        acc |= load8(data, p)
        p += 8
    while p < b:
        if data[p] >= 128:
            return True
        p += 1
    return (acc & _HIGHS) != 0


@njit(nogil=True)
def _skip_value(data, p, end):
    """Skip one JSON value starting at p; return the index after it, or -1."""
    if p >= end:
        return -1
    c = data[p]
    if c == 34:
        return _skip_str(data, p, end)
    if c == 123 or c == 91:
        # nested object/array: track bracket depth, strings checked for escapes
        depth = 0
        while p < end:
            c = data[p]
            if c == 34:
                p = _skip_str(data, p, end)
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
    if c == 116 or c == 102:
        return _parse_bool(data, p, end)[1]
    if c == 110:
        return p + 4 if _is_null(data, p, end) else -1
    if c == 45 or 48 <= c <= 57:
        return _skip_number(data, p, end)
    return -1


@njit(inline="always", nogil=True)
def _skip_digits(data, p, end):
    """Index of the first byte at or after p that is not a decimal digit (or end)."""
    while p < end and 48 <= data[p] <= 57:
        p += 1
    return p


@njit(nogil=True)
def _skip_number(data, p, end):
    """JSON number grammar -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; next index or -1."""
    if data[p] == 45:
        p += 1
    if p >= end or not (48 <= data[p] <= 57):
        return -1
    p = p + 1 if data[p] == 48 else _skip_digits(data, p, end)
    if p < end and data[p] == 46:
        q = _skip_digits(data, p + 1, end)
        if q == p + 1:
            return -1
        p = q
    if p < end and (data[p] == 101 or data[p] == 69):
        p += 1
        if p < end and (data[p] == 43 or data[p] == 45):
            p += 1
        q = _skip_digits(data, p, end)
        if q == p:
            return -1
        p = q
    return p


@njit(inline="always", nogil=True)
def _is_null(data, p, end):
    return p + 4 <= end and data[p] == 110 and data[p + 1] == 117 and data[p + 2] == 108 \
        and data[p + 3] == 108


@njit(inline="always", nogil=True)
def _parse_bool(data, p, end):
    """(1 or 0, next index) of ``true`` or ``false`` at p; next = -1 for anything else."""
    c = data[p]
    if c == 116 and p + 4 <= end and data[p + 1] == 114 and data[p + 2] == 117 \
            and data[p + 3] == 101:
        return 1, p + 4
    if c == 102 and p + 5 <= end and data[p + 1] == 97 and data[p + 2] == 108 \
            and data[p + 3] == 115 and data[p + 4] == 101:
        return 0, p + 5
    return 0, -1


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


# The sign and digit loops of _parse_int, written out again: a shared inline helper for them
# made the whole scan ~8 % slower (geometric mean of 8 runs).
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


@njit(nogil=True)
def _put_utf8(buf, o, cp):
    if cp < 0x80:
        buf[o] = cp
        return o + 1
    if cp < 0x800:
        buf[o] = 0xC0 | (cp >> 6)
        buf[o + 1] = 0x80 | (cp & 0x3F)
        return o + 2
    if cp < 0x10000:
        buf[o] = 0xE0 | (cp >> 12)
        buf[o + 1] = 0x80 | ((cp >> 6) & 0x3F)
        buf[o + 2] = 0x80 | (cp & 0x3F)
        return o + 3
    buf[o] = 0xF0 | (cp >> 18)
    buf[o + 1] = 0x80 | ((cp >> 12) & 0x3F)
    buf[o + 2] = 0x80 | ((cp >> 6) & 0x3F)
    buf[o + 3] = 0x80 | (cp & 0x3F)
    return o + 4


@njit(nogil=True)
def _decode_text(data, s, end, scratch):
    """s after the opening quote: decode the string's escapes into ``scratch`` (at least as long
    as the block), then (code points, text hash, next index or -1)."""
    p = s
    o = 0
    ncp = 0
    while p < end:
        c = data[p]
        if c == 34:
            return ncp, word_hash(scratch, 0, o), p + 1
        if c == 92:
            if p + 1 >= end:
                return 0, np.uint64(0), -1
            e = data[p + 1]
            if e == 117:
                cp = _hex4(data, p + 2, end)
                if cp < 0:
                    return 0, np.uint64(0), -1
                p += 6
                if 0xD800 <= cp < 0xDC00:
                    if p + 1 < end and data[p] == 92 and data[p + 1] == 117:
                        lo = _hex4(data, p + 2, end)
                        if 0xDC00 <= lo < 0xE000:
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                            p += 6
                        else:
                            return 0, np.uint64(0), -1
                    else:
                        return 0, np.uint64(0), -1
                elif 0xDC00 <= cp < 0xE000:
                    return 0, np.uint64(0), -1
                o = _put_utf8(scratch, o, cp)
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
                return 0, np.uint64(0), -1
            scratch[o] = b
            o += 1
            ncp += 1
            p += 2
        elif c < 32:
            return 0, np.uint64(0), -1
        elif c >= 128:
            n = _utf8_seq(data, p, end)
            if n == 0:
                return 0, np.uint64(0), -1
            for j in range(n):
                scratch[o + j] = data[p + j]
            o += n
            ncp += 1
            p += n
        else:
            scratch[o] = c
            o += 1
            ncp += 1
            p += 1
    return 0, np.uint64(0), -1


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
    p = _skip_ws(data, p + 1, end)
    if p < end and data[p] == 125:
        return p + 1
    nk = klen.shape[0]
    ordinal = 0
    while True:
        if p >= end or data[p] != 34:
            return -1
        ks = p + 1
        ke = _plain_str_end(data, p, end)
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
        p = _skip_ws(data, ke + 1, end)
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
            if kind == KIND_TEXT:
                if data[p] != 34:
                    return -1
                q, h, ncp = _text_fast(data, p, end)
                if q < 0:
                    ncp, h, q = _decode_text(data, p + 1, end, scratch)
                    if q < 0:
                        return -1
                ival[k, r] = ncp
                thash[r] = h
                present[k, r] = True
                p = q
            elif kind == KIND_STR:
                if data[p] != 34:
                    return -1
                q = _plain_str_end(data, p, end)
                if q < 0:
                    return -1  # ids with escapes: let pyarrow decode them
                sstart[k, r] = p + 1
                send[k, r] = q
                present[k, r] = True
                p = q + 1
            # one branch per kind, each storing only after its own check (a shared tail would
            # store first)
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
                v, q = _parse_bool(data, p, end)
                if q < 0:
                    return -1
                ival[k, r] = v
                present[k, r] = True
                p = q
            else:  # KIND_LIST_FIRST
                p = _list_first(data, p, end, k, r, present, ival)
                if p < 0:
                    return -1
        p = _skip_ws(data, p, end)
        if p >= end:
            return -1
        if data[p] == 44:
            p = _skip_ws(data, p + 1, end)
            continue
        if data[p] == 125:
            return p + 1
        return -1


@njit(nogil=True)
def _list_first(data, p, end, k, r, present, ival):
    """[int, ...] at p: its first element (absent when empty); the index after it, or -1."""
    if data[p] != 91:
        return -1
    p = _skip_ws(data, p + 1, end)
    if p < end and data[p] == 93:
        present[k, r] = False
        return p + 1
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
    return p + 1


_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_NEWLINES = np.uint64(0x0A0A0A0A0A0A0A0A)
_LANES16 = np.uint64(0x00FF00FF00FF00FF)
_SUM16 = np.uint64(0x0001000100010001)


@njit(inline="always", nogil=True)
def _count_nl(data, n):
    """Number of newline bytes in ``data[:n]``, 8 bytes at a time: an exact zero-byte test of
    ``word ^ 0x0A..`` per lane, summed in byte lanes for up to 255 words, then folded. A byte
    loop (a compare and a branch per byte) was ~8 % of the scanner's time."""
    total = 0
    p = 0
    while p + 8 <= n:
        acc = np.uint64(0)
        stop = min(n - 7, p + 8 * 255)  # a byte lane holds at most 255
        while p < stop:
            x = load8(data, p) ^ _NEWLINES
            t = ((x & _LOW7) + _LOW7) | x  # high bit clear exactly in the zero bytes of x
            acc += (~t & _HIGHS) >> np.uint64(7)
            p += 8
        acc = (acc & _LANES16) + ((acc >> np.uint64(8)) & _LANES16)
        total += int((acc * _SUM16) >> np.uint64(48))
    while p < n:
        total += data[p] == 10
        p += 1
    return total


@njit(nogil=True, cache=True)
def count_newlines(data):
    """Number of ``\n`` bytes (the reader's line numbering): one pass, no temporary array."""
    return _count_nl(data, data.shape[0])


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
    cap = 1 + (newlines if newlines >= 0 else _count_nl(data, n))
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
    # the calls below get views without reference counting (see _borrow), one line per array
    # because each array is its own type (Numba cannot loop over them)
    b_data = _borrow(data)
    b_keys = _borrow(keys)
    b_key_offs = _borrow(key_offs)
    b_klen = _borrow(klen)
    b_kw = _borrow(kw)
    b_kinds = _borrow(kinds)
    b_present = _borrow(present)
    b_sstart = _borrow(sstart)
    b_send = _borrow(send)
    b_ival = _borrow(ival)
    b_fval = _borrow(fval)
    b_thash = _borrow(thash)
    b_scratch = _borrow(scratch)
    kcache = np.full((16, 5), -1, np.int64)  # per key ordinal: length, 3 words, key index
    b_kcache = _borrow(kcache)
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
            q = _skip_ws(data, q, n)
            if q >= n or data[q] == 10:
                # UTF-8 is checked per line, and only when the line has a byte >= 0x80
                good = not _has_high(data, p, q) or _utf8_ok(b_data, p, q)
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
                        _store8(str_flat, d + j, load8(data, a + j))
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
    # reference: without a use here Numba frees them right after ``_borrow`` (at the variable's
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
