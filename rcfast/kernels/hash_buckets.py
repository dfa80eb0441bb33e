"""Hash buckets, the machinery that :func:`rcfast.kernels.strings.encode_strings` and
:func:`rcfast.kernels.string_keys.encode_keys` share: rows are split into blocks (one thread
each) and scattered into buckets by the top bits of a 64-bit hash, each bucket builds its own
small open-addressing table in parallel, and the codes go back into row order. One shared table
would be a sequential, cache-missing insert per row.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rcfast.kernels.hashing import mix64_array

# murmur3 finalizer: FNV alone leaves low-entropy high bits, which pick the bucket. One body
# for both: numpy over arrays (rcfast.kernels.hashing), compiled for scalars here.
mix64 = njit(inline="always")(mix64_array)


@njit(inline="always")
def row_blocks(n, n_blocks):
    """``(blocks, rows per block)``: at most ``n_blocks`` blocks, of at least 64k rows so that
    a block's rows outweigh its own row of the histogram."""
    nt = max(1, min(n_blocks, n // 65536 + 1))
    return nt, (n + nt - 1) // nt


@njit(inline="always")
def bucket_starts(per_block):
    """From ``per_block[t, b]`` (rows or bytes of bucket ``b`` in block ``t``): each bucket's
    start ``[buckets + 1]`` and each block's start inside it ``[blocks, buckets]``, buckets in
    order and blocks in order within a bucket (which keeps the scatter stable)."""
    nt, nb = per_block.shape
    bucket_start = np.zeros(nb + 1, dtype=np.int64)
    block_start = np.empty((nt, nb), dtype=np.int64)
    r = 0
    for b in range(nb):
        for t in range(nt):
            block_start[t, b] = r
            r += per_block[t, b]
        bucket_start[b + 1] = r
    return bucket_start, block_start


@njit(inline="always")
def new_table(m):
    """An empty open-addressing table for ``m`` rows: ``(codes, mask)``, codes -1 (free)."""
    # a power of two at least twice the rows: short probe runs, a mask instead of a modulo
    cap = 16
    while cap < 2 * m:
        cap *= 2
    return np.full(cap, -1, dtype=np.int64), np.uint64(cap - 1)


@njit(parallel=True, nogil=True, cache=True)
def merge_buckets(counts, n_local, codes_b, first, second):
    """Make the per-bucket codes global, in place (bucket ``b``'s codes follow the distinct
    values of the buckets before it), and return the distinct values' two columns, packed at
    each bucket's start in ``first``/``second``, in code order."""
    nb = n_local.shape[0]
    base = np.zeros(nb + 1, dtype=np.int64)
    for b in range(nb):
        base[b + 1] = base[b] + n_local[b]
    first_out = np.empty(base[nb], dtype=first.dtype)
    second_out = np.empty(base[nb], dtype=second.dtype)
    for b in prange(nb):
        lo = counts[b]
        for c in range(n_local[b]):
            first_out[base[b] + c] = first[lo + c]
            second_out[base[b] + c] = second[lo + c]
        for t in range(lo, counts[b + 1]):
            codes_b[t] = np.int32(codes_b[t] + base[b])
    return first_out, second_out


@njit(parallel=True, nogil=True, cache=True)
def unbucket(codes_b, hashes, bucket_bits, starts):
    """Codes back into row order, reading one sequential stream per bucket."""
    n = hashes.shape[0]
    nt = starts.shape[0]
    shift = np.uint64(64 - bucket_bits)
    block = (n + nt - 1) // nt
    codes = np.empty(n, dtype=np.int32)
    for t in prange(nt):
        rp = starts[t].copy()
        for i in range(t * block, min(n, (t + 1) * block)):
            b = np.int64(hashes[i] >> shift)
            codes[i] = codes_b[rp[b]]
            rp[b] += 1
    return codes
