"""JSON values for the JSON-lines scanner (:mod:`rcfast.kernels.ingest_json`): whitespace, the
literals, numbers, and skipping a whole value (an unknown key's), with its string and bracket
structure checked. Numbers are read exactly or not at all: an integer of more than 18 digits,
or a float that one correctly rounded multiplication or division by a power of ten cannot give,
goes to the slow path.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rcfast.kernels.json_bytes import skip_string

_POW10 = np.array([10.0**i for i in range(23)])


@njit(inline="always", nogil=True)
def _is_ws(c):
    # no newline: in JSON lines a record never spans lines, so a newline ends the scan
    return c == 32 or c == 9 or c == 13


@njit(inline="always", nogil=True)
def skip_ws(data, p, end):
    while p < end and _is_ws(data[p]):
        p += 1
    return p


@njit(inline="always", nogil=True)
def is_null(data, p, end):
    return p + 4 <= end and data[p] == 110 and data[p + 1] == 117 and data[p + 2] == 108 \
        and data[p + 3] == 108


@njit(inline="always", nogil=True)
def parse_bool(data, p, end):
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
def skip_value(data, p, end):
    """Skip one JSON value starting at p; return the index after it, or -1."""
    if p >= end:
        return -1
    c = data[p]
    if c == 34:
        return skip_string(data, p, end)
    if c == 123 or c == 91:
        # nested object/array: track bracket depth, strings checked for escapes
        depth = 0
        while p < end:
            c = data[p]
            if c == 34:
                p = skip_string(data, p, end)
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
        return parse_bool(data, p, end)[1]
    if c == 110:
        return p + 4 if is_null(data, p, end) else -1
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


@njit(nogil=True)
def parse_int(data, p, end):
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


# The sign and digit loops of parse_int, written out again: a shared inline helper for them
# made the whole scan ~8 % slower (geometric mean of 8 runs).
@njit(nogil=True)
def parse_float(data, p, end):
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
