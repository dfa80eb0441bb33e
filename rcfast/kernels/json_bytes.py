"""The byte-level half of the JSON-lines scanner (:mod:`rcfast.kernels.ingest_json`): strings,
8 bytes at a time, with their escapes, UTF-8 and text hash; and the newline count.

Strings (most of the bytes) are scanned with SWAR ("SIMD within a register"): one 64-bit load
finds the first quote, backslash or control character of a word. The review text is hashed a
word at a time in the same pass (the text hash of :mod:`rcfast.kernels.ingest_hash`) and its code
points counted from the words' UTF-8 continuation bytes; a text with escapes is decoded into a
scratch buffer first. Cold paths use lookup tables instead of comparison chains: under Numba,
cold code inside a hot loop made the loop 2-3x slower.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from rcfast.kernels.ingest_hash import _W_SEED, word_final, word_hash, word_mix
from rcfast.kernels.intrinsics import load8

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
# and for the newline count
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_NEWLINES = np.uint64(0x0A0A0A0A0A0A0A0A)
_LANES16 = np.uint64(0x00FF00FF00FF00FF)
_SUM16 = np.uint64(0x0001000100010001)


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
def skip_string(data, p, end):
    """p at the opening quote: the index after the closing quote, or -1 (a control character,
    a bad escape, no closing quote). UTF-8 is not checked here (see ``utf8_valid``)."""
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
def plain_string_end(data, p, end):
    """p at the opening quote: the index of the closing quote of a string without escapes or
    control characters, else -1."""
    q = _next_special(data, p + 1, end)
    if q < end and data[q] == 34:
        return q
    return -1


@njit(inline="always", nogil=True)
def scan_plain_text(data, p, end):
    """p at the opening quote of a text without escapes: (index after the closing quote or -1,
    text hash, code points). -1: an escape or a control character (``decode_text`` decides)
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
def utf8_valid(data, a, b):
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
def has_high_byte(data, a, b):
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
def decode_text(data, s, end, scratch):
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


@njit(inline="always", nogil=True)
def count_newline_bytes(data, n):
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
    return count_newline_bytes(data, data.shape[0])
