"""The string columns of the generated reviews, built without per-row Python: product ids as
fixed-width Arrow strings, Amazon-like user ids of the 2023 and 2018 dumps from a hash of the
user index, and titles and review texts cut from a fixed periodic stream of words.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa

from rcfast.synth.catalog import _Catalog, _splitmix64

_B32 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", dtype=np.uint8)

_WORDS = (
    "great product works well quality price love this the it and for my was not very good "
    "would recommend easy to use fit perfect bought as described fast shipping arrived broke "
    "after two weeks cheap disappointed returned color size small large exactly what needed "
    "happy with purchase again five stars sturdy value money looks nice but a little too "
    "expensive worth every penny does job kids daughter son gift christmas battery life sound "
    "screen comfortable material soft strong smell taste fresh box instructions assembly "
    "minutes set up highly well made poor customer service replacement months"
).split()  # noqa: SIM905 - a wrapped paragraph reads better than a list


def _take_rows(mat: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``mat[idx]`` for a (n, w) uint8 matrix, as one gather of w-byte items (much faster)."""
    w = mat.shape[1]
    return mat.view(f"V{w}").ravel()[idx].view(np.uint8).reshape(-1, w)


def _fixed_width_strings(mat: np.ndarray) -> pa.Array:
    n, w = mat.shape
    offsets = np.arange(n + 1, dtype=np.int32) * w
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets),
                                       pa.py_buffer(np.ascontiguousarray(mat).reshape(-1)))


_B32_PAIRS = np.stack([np.repeat(_B32, 32), np.tile(_B32, 32)], axis=1).copy().view(np.uint16)[:, 0]


@functools.lru_cache(maxsize=1)
def _b32_quads() -> np.ndarray:
    """uint32 holding the 4 base-32 chars of each 20-bit value (a 4 MiB table)."""
    i = np.arange(1 << 20, dtype=np.uint32)
    chars = np.stack([_B32[(i >> np.uint32(s)) & np.uint32(31)] for s in (15, 10, 5, 0)], axis=1)
    return np.ascontiguousarray(chars).view(np.uint32)[:, 0]


def _user_id_bytes(cat: _Catalog, user: np.ndarray) -> np.ndarray:
    """(n, 28) uint8 Amazon-2023-like user ids: "A" + [EFGH] + 26 base-32 chars.

    The hot path of the generator, so 4 chars per gather from a 20-bit table (~2x fewer numpy
    passes than :func:`_user_chars`, which serves the 14-char 2018 ids).
    """
    h0 = _splitmix64(user.astype(np.uint64) ^ cat.user_key)
    h1 = _splitmix64(h0)
    h2 = _splitmix64(h1)
    out = np.empty((user.size, 28), dtype=np.uint8)
    out[:, 0] = ord("A")
    out[:, 1] = np.frombuffer(b"EFGH", dtype=np.uint8)[(h0 >> np.uint64(62)).astype(np.intp)]
    out.view(np.uint16)[:, 1] = _B32_PAIRS[(h0 & np.uint64(1023)).astype(np.intp)]
    quads = _b32_quads()
    out32 = out.view(np.uint32)
    mask = np.uint64((1 << 20) - 1)
    for k in range(6):
        h = h1 if k < 3 else h2
        out32[:, 1 + k] = quads[((h >> np.uint64(20 * (k % 3))) & mask).astype(np.intp)]
    return out


def _user_chars(cat: _Catalog, user: np.ndarray, width: int, second: bytes) -> np.ndarray:
    """``width``-char base-32 ids: "A" + one of ``second`` + hash chars (Amazon look)."""
    if width % 2:
        raise ValueError("width must be even")
    pairs = width // 2 - 1
    h = _splitmix64(user.astype(np.uint64) ^ cat.user_key)
    out = np.empty((user.size, width), dtype=np.uint8)
    out[:, 0] = ord("A")
    sec = np.frombuffer(second, dtype=np.uint8)
    out[:, 1] = sec[(h >> np.uint64(60)).astype(np.intp) % sec.size]
    # Two characters (10 bits) per gather from a 1024-entry table, six pairs per 64-bit hash.
    out16 = out.view(np.uint16)
    for k in range(pairs):
        if k and k % 6 == 0:
            h = _splitmix64(h)
        bits = ((h >> np.uint64(10 * (k % 6))) & np.uint64(1023)).astype(np.intp)
        out16[:, 1 + k] = _B32_PAIRS[bits]
    return out


@functools.lru_cache(maxsize=1)
def _word_stream() -> np.ndarray:
    """A fixed 1 MiB periodic stream of lower-case words; texts are slices of it (JSON-safe)."""
    rng = np.random.default_rng(20231)
    words = np.array(_WORDS)[rng.integers(0, len(_WORDS), 400_000)]
    ends = rng.random(words.size) < 0.08
    words = np.where(ends, np.char.add(words, "."), words)
    text = " ".join(words.tolist()).encode()
    return np.frombuffer(text[: 1 << 20], dtype=np.uint8)


def _stream_strings(lengths: np.ndarray, start: int) -> pa.Array:
    """Strings of the given lengths cut consecutively from the word stream at ``start``."""
    stream = _word_stream()
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    rolled = np.concatenate([stream[start % stream.size:], stream[: start % stream.size]])
    data = np.resize(rolled, total)
    if total < 2**31 - 1:
        return pa.StringArray.from_buffers(lengths.size, pa.py_buffer(offsets.astype(np.int32)),
                                           pa.py_buffer(data))
    return pa.LargeStringArray.from_buffers(lengths.size, pa.py_buffer(offsets), pa.py_buffer(data))
