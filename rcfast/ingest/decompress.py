"""Decompression of an input stream into blocks of whole lines.

gzip goes through python-isal's ``igzip_threaded`` reader: ISA-L's inflate (about twice zlib's
speed) runs on a thread of its own with the GIL released, so it overlaps the parsing of earlier
blocks. Measured against the hand-written helper process this replaced (a subprocess handing
blocks over shared memory), on 1M gzipped Amazon-2023-style reviews: the same CPU time and wall
time within the noise (docs/benchmarks.md), with a tenth of the code. zstd and bz2 (and gzip
without python-isal) stream through a decompressor object on the reading thread.
"""

from __future__ import annotations

import bz2
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

try:  # ISA-L inflates gzip about twice as fast as zlib (same API); optional
    from isal import igzip_threaded as _igzip_threaded
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - depends on the environment
    _isal_zlib = _igzip_threaded = None

READ_CHUNK = 1 << 20  # compressed bytes per read; also the progress granularity
K_BLOCK, K_REST = 0, 1  #: a block of whole lines; the rest after the last newline


def new_decompressor(comp: str, isal: bool = True):
    if comp == "gzip":
        if isal and _isal_zlib is not None:
            return _isal_zlib.decompressobj(wbits=31)
        return zlib.decompressobj(wbits=31)
    if comp == "bz2":
        return bz2.BZ2Decompressor()
    if comp == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()
    raise ValueError(comp)


@dataclass
class StreamState:
    """What the decompressing reader found out about the stream."""

    truncated: bool = False  #: the compressed stream ended early or was corrupt
    error: str = ""


def iter_decompressed(
    path: str,
    comp: str | None,
    state: StreamState,
    on_bytes: Callable[[int], None] | None = None,
    chunk: int = READ_CHUNK,
    isal: bool = True,
) -> Iterator[bytes]:
    """Yield the decompressed bytes of ``path`` in pieces.

    gzip uses the threaded ISA-L reader where it can (:func:`_iter_gzip_threaded`). Otherwise
    the stream is fed to a decompressor by hand (rather than ``gzip.open``), which keeps
    everything decoded before a truncated or corrupt tail: ``GzipFile.read`` raises
    ``EOFError`` and loses the partial buffer. Concatenated members/frames/streams
    (``cat a.gz b.gz``, pbzip2) are followed.
    """
    if comp == "gzip" and isal and _igzip_threaded is not None:
        yield from _iter_gzip_threaded(path, state, on_bytes, chunk)
    else:
        yield from _iter_streaming(path, comp, state, on_bytes, chunk, isal)


def _iter_gzip_threaded(path: str, state: StreamState, on_bytes: Callable[[int], None] | None,
                        chunk: int) -> Iterator[bytes]:
    """gzip through ``igzip_threaded`` (inflate on its own thread, without the GIL). On a
    truncated or corrupt stream that reader raises and drops what it had decoded, so the file
    is decoded again by hand, skipping the bytes already given out: a broken file pays twice,
    a sound one never."""
    given = 0
    reported = 0
    try:
        with open(path, "rb") as raw, _igzip_threaded.open(raw, "rb", threads=1,
                                                           block_size=chunk) as f:
            while True:
                data = f.read(chunk)
                if not data:
                    break
                given += len(data)
                if on_bytes:
                    pos = raw.tell()  # the reader thread's position: at most a chunk ahead
                    on_bytes(pos - reported)
                    reported = pos
                yield data
    except Exception:  # noqa: BLE001 - EOFError, IsalError, ...: decoded again below
        skip = given
        for piece in _iter_streaming(path, "gzip", state, None, chunk, True):
            if skip >= len(piece):
                skip -= len(piece)
                continue
            yield piece[skip:] if skip else piece
            skip = 0
    if on_bytes:
        on_bytes(os.path.getsize(path) - reported)


def _iter_streaming(path: str, comp: str | None, state: StreamState,
                    on_bytes: Callable[[int], None] | None, chunk: int,
                    isal: bool) -> Iterator[bytes]:
    with open(path, "rb") as f:
        if comp is None:
            while True:
                data = f.read(chunk)
                if not data:
                    return
                if on_bytes:
                    on_bytes(len(data))
                yield data
        d = new_decompressor(comp, isal)
        fed = False  # bytes given to the current decompressor
        while True:
            data = f.read(chunk)
            if on_bytes and data:
                on_bytes(len(data))
            if not data:
                if fed and not d.eof:
                    state.truncated = True
                    state.error = f"{comp} stream ends before its end marker (truncated file)"
                return
            while data:
                try:
                    out = d.decompress(data)
                except (zlib.error, OSError, EOFError, ValueError) as exc:
                    state.truncated = True
                    state.error = f"corrupt {comp} data: {exc}"
                    return
                except Exception as exc:  # zstandard.ZstdError has no common base
                    state.truncated = True
                    state.error = f"corrupt {comp} data: {exc}"
                    return
                fed = True
                if out:
                    yield out
                if d.eof:
                    rest = d.unused_data
                    d = new_decompressor(comp, isal)
                    fed = False
                    # gzip pads some archives with NULs after the last member
                    data = rest if rest.strip(b"\x00") else b""
                else:
                    data = b""


def iter_line_blocks(
    path: str, comp: str | None, block_size: int, state: StreamState,
    on_bytes: Callable[[int], None] | None = None, isal: bool = True,
) -> Iterator[tuple[int, bytes]]:
    """(kind, data): blocks of whole lines of about ``block_size`` bytes, then the rest.

    Pieces are joined once per block (one copy), not appended to a growing buffer.
    """
    pieces: list[bytes] = []
    size = 0
    for piece in iter_decompressed(path, comp, state, on_bytes, isal=isal):
        pieces.append(piece)
        size += len(piece)
        if size < block_size:
            continue
        k = len(pieces) - 1
        cut = -1
        while k >= 0:
            cut = pieces[k].rfind(b"\n")
            if cut >= 0:
                break
            k -= 1
        if cut < 0:
            continue  # one very long record: keep reading
        last = pieces[k]
        data = b"".join(pieces[:k] + [last[: cut + 1]])
        rest = b"".join([last[cut + 1 :]] + pieces[k + 1 :])
        pieces = [rest] if rest else []
        size = len(rest)
        yield K_BLOCK, data
    yield K_REST, b"".join(pieces)
