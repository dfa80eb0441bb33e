"""Rows cut into partitions of products (the split stage of out-of-core and Dask runs) by
ranges of the products' keys. Each partition's rows keep their input order: blocks of rows are
counted, then scattered, in order."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(inline="always")
def _part_starts(counts):
    """Where each block's rows of each partition go, blocks in order within a partition:
    ``(starts[block, part], offsets[part + 1])``."""
    nb, n_parts = counts.shape
    starts = np.empty((nb, n_parts), dtype=np.int64)
    offsets = np.zeros(n_parts + 1, dtype=np.int64)
    total = 0
    for p in range(n_parts):
        offsets[p] = total
        for t in range(nb):
            starts[t, p] = total
            total += counts[t, p]
    offsets[n_parts] = total
    return starts, offsets


@njit(parallel=True, nogil=True, cache=True)
def split_by_key_ranges(k0, k1, keep, week, rows, s0, s1, n_blocks):
    """Rows cut into partitions by their product's two-word key
    (:func:`rcfast.kernels.string_keys.pack_keys`, whose order is the ids' byte order; a
    product code is a key ``(code, 0)``): partition ``p`` holds the keys from splitter ``p - 1``
    (``(s0, s1)``, sorted) up to splitter ``p``; rows with ``keep < 0`` are dropped. Each
    partition's rows keep their input order. Returns ``(offsets, k0, k1, week, rows)`` with
    partition ``p`` at ``offsets[p]:offsets[p + 1]``."""
    n = k0.shape[0]
    n_parts = s0.shape[0] + 1
    nb = max(1, min(n_blocks, n // 65536 + 1))
    block = (n + nb - 1) // nb
    part = np.empty(n, dtype=np.int32)
    counts = np.zeros((nb, n_parts), dtype=np.int64)
    for t in prange(nb):
        for i in range(t * block, min(n, (t + 1) * block)):
            if keep[i] < 0:
                part[i] = -1
                continue
            a = k0[i]
            b = k1[i]
            lo, hi = 0, n_parts - 1  # the number of splitters <= the key
            while lo < hi:
                mid = (lo + hi) // 2
                if s0[mid] < a or (s0[mid] == a and s1[mid] <= b):
                    lo = mid + 1
                else:
                    hi = mid
            part[i] = lo
            counts[t, lo] += 1
    starts, offsets = _part_starts(counts)
    total = offsets[n_parts]
    k0_out = np.empty(total, dtype=np.uint64)
    k1_out = np.empty(total, dtype=np.uint64)
    week_out = np.empty(total, dtype=np.int32)
    rows_out = np.empty((total, rows.shape[1]), dtype=rows.dtype)
    for t in prange(nb):
        pos = starts[t].copy()
        for i in range(t * block, min(n, (t + 1) * block)):
            p = part[i]
            if p < 0:
                continue
            j = pos[p]
            pos[p] = j + 1
            k0_out[j] = k0[i]
            k1_out[j] = k1[i]
            week_out[j] = week[i]
            for k in range(rows.shape[1]):
                rows_out[j, k] = rows[i, k]
    return offsets, k0_out, k1_out, week_out, rows_out
