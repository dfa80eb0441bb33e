"""Product ids -> dense integer codes, products in byte order: :class:`ProductEncoder` across
the batches of a run, :func:`encode_products` for one set of chunks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from rcfast.arrow_buffers import string_buffers, validity
from rcfast.kernels import strings


class ProductEncoder:
    """Product ids of many batches -> one integer code per row, products in byte order.

    Each batch is encoded on its own (its keys and table stay in cache; of a dictionary chunk
    only the dictionary is encoded, then its indices gathered), its distinct ids join a pool,
    and :meth:`finish` encodes the pool, sorts the distinct ids and gives the map from pool
    codes to final codes. While every id has at most
    :data:`~rcfast.kernels.strings.KEY_MAX_BYTES` bytes (ASINs have 10) they travel as
    two-word integer keys; the first longer id turns the pool into strings for the rest.
    """

    def __init__(self) -> None:
        self._pool: list[pa.Array] = []  #: string mode: distinct ids of each batch
        self._keys: list[tuple[np.ndarray, np.ndarray]] | None = []  #: key mode (None: off)
        self._size = 0

    def _to_strings(self) -> None:
        if self._keys is None:
            return
        for k0, k1 in self._keys:
            self._pool.append(_strings_of_keys(k0, k1))
        self._keys = None

    def _add_plain(self, a: pa.Array) -> tuple[np.ndarray, int]:
        """Local codes of one plain string chunk, its distinct ids appended to the pool."""
        off, data = string_buffers(a)
        keys = _short_keys(off, data) if self._keys is not None else None
        if keys is not None:
            local, u0, u1 = strings.encode_keys(*keys)
            self._keys.append((u0, u1))
            return local, len(u0)
        self._to_strings()
        local, u_off, u_data = strings.encode_strings(off, data)
        self._pool.append(pa.Array.from_buffers(
            pa.large_string(), len(u_off) - 1, [None, pa.py_buffer(u_off),
                                                pa.py_buffer(u_data)]))
        return local, len(u_off) - 1

    def add_keys(self, k0: np.ndarray, k1: np.ndarray) -> int:
        """Rows given as two-word keys (:func:`row_keys`), one pool entry per row (not encoded
        here: :meth:`finish` encodes the pool). Returns the first row's pool code; the others
        follow it."""
        if self._keys is not None:
            self._keys.append((k0, k1))
        else:
            self._pool.append(_strings_of_keys(k0, k1))
        first = self._size
        self._size += len(k0)
        return first

    def add(self, chunks: list[pa.Array]) -> np.ndarray:
        """Pool codes (int32, -1 for null) of the rows of ``chunks``."""
        out = []
        for ch in chunks:
            if pa.types.is_dictionary(ch.type):
                d = ch.dictionary
                idx = ch.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
                # the dictionary itself goes through the plain path: it joins the pool encoded
                d_codes, n_new = self._add_plain(d)
                lookup = d_codes + np.int32(self._size)
                if d.null_count:
                    lookup[~d.is_valid().to_numpy(zero_copy_only=False)] = -1
                codes = (np.where(idx >= 0, lookup[np.maximum(idx, 0)], -1).astype(np.int32)
                         if len(d) else np.full(len(idx), -1, dtype=np.int32))
            else:
                codes, n_new = self._add_plain(ch)
                codes += np.int32(self._size)  # fresh from the kernel: shifted in place
                if ch.null_count:
                    codes[~ch.is_valid().to_numpy(zero_copy_only=False)] = -1
            self._size += n_new
            out.append(codes)
        if len(out) == 1:
            return out[0]
        return np.concatenate(out) if out else np.empty(0, np.int32)

    def finish(self) -> tuple[np.ndarray, pa.Array]:
        """``(mapping int32[pool], products)``: pool code -> rank of the id in byte order."""
        if self._keys is not None:
            k0 = (np.concatenate([k[0] for k in self._keys]) if self._keys
                  else np.empty(0, np.uint64))
            k1 = (np.concatenate([k[1] for k in self._keys]) if self._keys
                  else np.empty(0, np.uint64))
            self._keys = []
            codes, u0, u1 = strings.encode_keys(k0, k1)
            del k0, k1
            order = strings.argsort_keys(u0, u1)
            s_off, s_data = strings.unpack_keys_at(u0, u1, order)
        else:
            pool = (pa.concat_arrays(self._pool) if len(self._pool) > 1 else
                    self._pool[0] if self._pool else pa.array([], type=pa.large_string()))
            self._pool = []
            off, data = string_buffers(pool)
            codes, u_off, u_data = strings.encode_strings(off, data)
            order = strings.argsort_strings(u_off, u_data)
            s_off, s_data = strings.take_strings(u_off, u_data, order)
        rank = np.empty(order.shape[0], dtype=np.int32)
        rank[order] = np.arange(order.shape[0], dtype=np.int32)
        products = pa.Array.from_buffers(pa.large_string(), len(order),
                                         [None, pa.py_buffer(s_off), pa.py_buffer(s_data)])
        if s_off[-1] < 2**31:
            products = products.cast(pa.string())
        return strings.take(rank, codes), products


class ProductKeys:
    """Product ids of many batches -> each row's two-word key, not encoded: the split stage
    cuts rows by ranges of keys and leaves the encoding to each partition's one
    :class:`ProductEncoder`. Rows go in order; :meth:`add` returns 0 for a row with an id, -1
    for a null. The first id longer than :data:`~rcfast.kernels.strings.KEY_MAX_BYTES` hands
    the rows so far to a :class:`ProductEncoder`, which encodes the rest (``encoder`` is then
    set, and :meth:`add` returns its pool codes).
    """

    def __init__(self, total_rows: int) -> None:
        self.k0 = np.empty(total_rows, dtype=np.uint64)
        self.k1 = np.empty(total_rows, dtype=np.uint64)
        self.rows = 0  #: rows added as keys
        self.encoder: ProductEncoder | None = None

    def add(self, chunks: list[pa.Array]) -> np.ndarray:
        if self.encoder is None:
            keys = [row_keys(ch) for ch in chunks]
            if all(k is not None for k in keys):
                out = []
                for k0, k1, valid in keys:
                    n = len(k0)
                    self.k0[self.rows:self.rows + n] = k0
                    self.k1[self.rows:self.rows + n] = k1
                    self.rows += n
                    out.append(valid)
                if len(out) == 1:
                    return out[0]
                return np.concatenate(out) if out else np.empty(0, dtype=np.int32)
            self.encoder = ProductEncoder()
            self.encoder.add_keys(self.k0[:self.rows], self.k1[:self.rows])
        return self.encoder.add(chunks)

    def finish(self, code: np.ndarray) -> pa.Array | None:
        """None while every id had a key (they are ``k0[:rows]``, ``k1[:rows]``). Otherwise
        ``code`` (the values :meth:`add` returned, in order, -1 where a row was set aside)
        becomes final codes in place, and the products in byte order are returned."""
        if self.encoder is None:
            return None
        head = code[:self.rows]  # rows added as keys: pool code = row number
        head[head >= 0] = np.flatnonzero(head >= 0).astype(np.int32)
        self.k0 = self.k1 = None
        mapping, products = self.encoder.finish()
        strings.remap(code, mapping)
        return products


def row_keys(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(k0, k1, valid)`` of each row of a string (or dictionary) chunk: its id's two-word key
    (zeros for a null) and 0, or -1 for a null; None if an id is longer than a key holds."""
    if pa.types.is_dictionary(chunk.type):
        d0_d1 = row_keys(chunk.dictionary)
        if d0_d1 is None:
            return None
        d0, d1, d_valid = d0_d1
        idx = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        if len(d0) == 0:
            z = np.zeros(len(idx), dtype=np.uint64)
            return z, z.copy(), np.full(len(idx), -1, dtype=np.int32)
        safe = np.maximum(idx, 0)
        valid = np.where(idx >= 0, d_valid[safe], -1).astype(np.int32)
        return d0[safe], d1[safe], valid
    keys = _short_keys(*string_buffers(chunk))
    if keys is None:
        return None
    valid = np.zeros(len(chunk), dtype=np.int32)
    if chunk.null_count:
        valid[~validity(chunk)] = -1
    return keys[0], keys[1], valid


def _short_keys(offsets: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(k0, k1)`` of strings that all fit a two-word key, else None."""
    if strings.max_length(offsets) > strings.KEY_MAX_BYTES:
        return None
    return strings.pack_keys(offsets, data)


def _strings_of_keys(k0: np.ndarray, k1: np.ndarray) -> pa.Array:
    off, data = strings.unpack_keys(k0, k1)
    return pa.Array.from_buffers(pa.large_string(), len(k0),
                                 [None, pa.py_buffer(off), pa.py_buffer(data)])


def encode_products(chunks: list[pa.Array]) -> tuple[np.ndarray, pa.Array]:
    """Integer code per row (-1 for null) and the distinct ids in byte order."""
    enc = ProductEncoder()
    codes = enc.add(chunks)
    mapping, products = enc.finish()
    strings.remap(codes, mapping)
    return codes, products
