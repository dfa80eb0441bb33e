"""Decompression of an input stream, in this process or in a helper process.

Standard library (and the optional ``isal``/``zstandard`` packages) only: this module is also the
body of the helper process ``python -m rcfast.ingest._inflate`` and must start in milliseconds.

Why a helper process: ISA-L's inflate (``isal_zlib``, twice as fast as zlib) holds the GIL for
the whole call, so in a thread it serializes with everything else that needs the GIL (building
Arrow arrays, normalizing, spilling). In a process of its own it runs on its own core, and the
parent only reads whole blocks (``read`` releases the GIL). The helper also cuts the stream into
blocks of whole lines (the parent counts their newlines with its compiled kernel; importing
numpy here would cost more than it saves), and it decodes a few blocks ahead.

Shared memory (Linux): the parent hands the helper a ``memfd`` cut into slots of about one block;
ISA-L decodes straight into a slot and only a header crosses the pipe. Through a pipe every
block was copied twice more (into the pipe, out of it into a fresh ``bytes`` the kernel had to
zero first): ~10 % of the CPU time of a run. On the helper's stdin the parent acknowledges each
slot block's header as it reads it (``<q`` -1: the helper keeps at most ``depth`` unread, as a
pipe would) and returns a slot (its index) once nothing refers to the block any more (it
unmaps it first: an unmap that fails means a reference is still alive, and the slot waits).
While the parent holds every slot, blocks travel through the pipe instead (see
:class:`_HelperSlots`).

Protocol on the helper's stdout: frames of a 40-byte header ``<qqqqq`` = (kind, compressed bytes
read since the last frame, payload length, -1, slot) followed by the payload, unless ``slot``
>= 0: then the payload is the first ``payload length`` bytes of that slot.
kind 0: a block of whole lines; 1: the rest after the last newline (the end of the stream);
2: the stream ended early or is corrupt, payload = the message (after the last kind-1 frame);
3: the end (no payload; the fourth field is the helper's own peak RSS in bytes).
"""

from __future__ import annotations

import bz2
import os
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

try:  # ISA-L inflates gzip about twice as fast as zlib (same API); optional
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - depends on the environment
    _isal_zlib = None

READ_CHUNK = 1 << 20  # compressed bytes per read; also the progress-bar granularity
HEADER = struct.Struct("<qqqqq")
RELEASE = struct.Struct("<q")  #: parent -> helper: a returned slot's index, or -1: a header read
_ACK = RELEASE.pack(-1)
K_BLOCK, K_REST, K_ERROR, K_END = 0, 1, 2, 3


def new_decompressor(comp: str, isal=True):
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

    Streaming by hand (rather than ``gzip.open``) keeps everything decoded before a truncated or
    corrupt tail: ``GzipFile.read`` raises ``EOFError`` and loses the partial buffer. Concatenated
    members/frames/streams (``cat a.gz b.gz``, pbzip2) are followed.
    """
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


def _write_all(fd: int, data) -> None:
    mv = memoryview(data)
    while mv:
        mv = mv[os.write(fd, mv):]


class _QueuedWriter:
    """Writes frames to ``fd`` from a thread, up to ``depth`` blocks ahead of the reader.

    While the parent is still starting up (importing pyarrow and Numba, ~0.8 s) the helper
    keeps inflating into this queue instead of stalling on a full pipe, so start-up and
    decompression overlap. ``os.write`` releases the GIL; the queue bounds the memory.
    """

    def __init__(self, fd: int, depth: int) -> None:
        import queue
        import threading

        self.fd = fd
        self.q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is None:
                try:
                    for part in item:
                        _write_all(self.fd, part)
                except BaseException as exc:  # noqa: BLE001 - reported by write()/close()
                    self.error = exc

    def write(self, *parts) -> None:
        if self.error is not None:
            raise self.error
        self.q.put(parts)

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class _HelperSlots:
    """The helper's side of the shared-memory slots: which are free, and their mappings.

    The parent acknowledges each slot block as it reads its header (``-1`` on the channel)
    and returns the slot when done with the block (its index). The helper keeps at most
    ``depth`` slot blocks unacknowledged, as a pipe would hold ``depth`` blocks: that bounds
    how far ahead it decodes. It never waits for a free slot: while the parent holds them all
    (its workers are behind, or a caller keeps blocks), blocks go through the pipe, as before.
    So the shared memory per helper stays small and nothing the parent holds can stall it.
    """

    def __init__(self, fd: int, slot_size: int, n: int, channel: int, depth: int) -> None:
        import mmap

        self._mmap = mmap
        self.fd = fd
        self.size = slot_size
        self.free = list(range(n))
        self.maps: dict[int, object] = {}
        self.channel = channel
        self.depth = max(1, depth)
        self.unacked = 0  #: slot blocks sent whose header the parent has not read yet
        self.closed = False  #: the parent closed the channel
        os.set_blocking(channel, False)
        self._partial = b""

    def _drain(self) -> None:
        """Take the acknowledgements and returned slots sent so far (without waiting)."""
        while not self.closed:
            try:
                data = os.read(self.channel, 1 << 12)
            except BlockingIOError:
                return
            if not data:
                self.closed = True
                return
            data = self._partial + data
            k = len(data) - len(data) % RELEASE.size
            for (i,) in RELEASE.iter_unpack(data[:k]):
                if i < 0:
                    self.unacked -= 1
                else:
                    self.free.append(i)
            self._partial = data[k:]

    def sent(self) -> None:
        self.unacked += 1

    def try_acquire(self):
        """``(index, writable mapping)`` of a free slot, or None when the parent holds all;
        first waits while ``depth`` slot blocks are unacknowledged."""
        import select

        self._drain()
        while self.unacked >= self.depth and not self.closed:
            select.select([self.channel], [], [])
            self._drain()
        if not self.free:
            return None
        i = self.free.pop()  # the most recently returned: its pages are warm
        mm = self.maps.get(i)
        if mm is None:
            mm = self.maps[i] = self._mmap.mmap(self.fd, self.size, offset=i * self.size)
        return i, mm


def _child_gzip_isal(path: str, block_size: int, out: _QueuedWriter,
                     slots: _HelperSlots | None = None) -> StreamState:
    """The fast gzip path of the helper: ISA-L's reader decodes straight into the block buffer,
    a shared-memory slot when the parent gave some (``slots``), else a private buffer whose
    bytes follow the header through the pipe.

    ``_GzipReader`` drops the last partial chunk of a truncated or corrupt stream, so on any
    error the stream is decoded again with :func:`iter_decompressed` (which keeps every byte
    before the break and names the error), skipping what was already decoded: the rare broken
    file costs a second pass, the common one no copies.
    """
    state = StreamState()
    got = slots.try_acquire() if slots is not None else None
    slot, buf = got if got is not None else (-1, bytearray(block_size))
    filled = 0  # bytes of buf holding data not yet sent
    decoded = 0  # bytes decoded so far (sent or in buf)
    sent_in = 0  # compressed bytes reported so far

    def take(n_new: int, consumed: int) -> int:
        """Account for ``n_new`` bytes just placed in buf; send whole blocks; return consumed
        bytes still to report."""
        nonlocal filled, buf, slot
        filled += n_new
        if filled < len(buf):
            return consumed
        cut = buf.rfind(b"\n", 0, filled)
        if cut < 0:  # one very long record: a larger private buffer
            if slot >= 0:
                new = bytearray(2 * len(buf))
                new[:filled] = buf[:filled]
                slots.free.append(slot)
                slot, buf = -1, new
            else:
                buf.extend(bytes(block_size))
            return consumed
        rest = buf[cut + 1 : filled]  # a copy: the block's bytes are the parent's from now on
        if slot >= 0:
            out.write(HEADER.pack(K_BLOCK, consumed, cut + 1, -1, slot))
            slots.sent()
        else:  # queued as is: buf is replaced, not reused, after this
            out.write(HEADER.pack(K_BLOCK, consumed, cut + 1, -1, -1), memoryview(buf)[: cut + 1])
        got = slots.try_acquire() if slots is not None and len(rest) < slots.size else None
        slot, buf = got if got is not None else (-1, bytearray(max(block_size, 2 * len(rest))))
        buf[: len(rest)] = rest
        filled = len(rest)
        return 0

    pending = 0
    with open(path, "rb") as f:
        reader = _isal_zlib._GzipReader(f, READ_CHUNK)
        broken = False
        while True:
            try:
                n = reader.readinto(memoryview(buf)[filled:])
            except Exception:  # noqa: BLE001 - truncated/corrupt: decoded again below
                broken = True
                break
            pos = f.tell()
            pending += pos - sent_in
            sent_in = pos
            if not n:
                break
            decoded += n
            pending = take(n, pending)
        if broken:  # decode again, keeping every byte before the break
            skip = decoded
            for piece in iter_decompressed(path, "gzip", state, None):
                if skip >= len(piece):
                    skip -= len(piece)
                    continue
                piece = piece[skip:]
                skip = 0
                while piece:
                    k = min(len(buf) - filled, len(piece))
                    buf[filled : filled + k] = piece[:k]
                    piece = piece[k:]
                    pending = take(k, pending)
            pending += os.path.getsize(path) - sent_in
    tail = bytes(buf[:filled])
    out.write(HEADER.pack(K_REST, pending, len(tail), -1, -1), tail)
    return state


def _child_main(argv: list[str]) -> int:
    path, comp, block_size = argv[0], argv[1], int(argv[2])
    depth = int(argv[3]) if len(argv) > 3 else 1
    slots = None
    if len(argv) > 5:  # shared memory: memfd number, slot size and count; returns on stdin
        slots = _HelperSlots(int(argv[4]), int(argv[5]), int(argv[6]), sys.stdin.fileno(),
                             depth)
    out = _QueuedWriter(sys.stdout.fileno(), depth)
    consumed = 0

    def on_bytes(n: int) -> None:
        nonlocal consumed
        consumed += n

    try:
        if comp == "gzip" and _isal_zlib is not None and hasattr(_isal_zlib, "_GzipReader"):
            state = _child_gzip_isal(path, slots.size if slots else block_size, out, slots)
        else:
            state = StreamState()
            for kind, data in iter_line_blocks(path, comp, block_size, state, on_bytes):
                out.write(HEADER.pack(kind, consumed, len(data), -1, -1), data)
                consumed = 0
        if state.truncated:
            msg = state.error.encode("utf-8", "backslashreplace")
            out.write(HEADER.pack(K_ERROR, consumed, len(msg), 0, -1), msg)
            consumed = 0
        out.write(HEADER.pack(K_END, consumed, 0, _own_peak_rss(), -1))
        out.close()
    except (BrokenPipeError, OSError):  # the parent stopped reading (an error, --strict)
        return 1
    return 0


def _own_peak_rss() -> int:
    """VmHWM of this process's own address space (``ru_maxrss`` would include the parent's pages
    from before ``exec``), less the shared-memory slots (still mapped here at the end, and
    mapped by the parent too, which counts them in its own RSS)."""
    got = {}
    try:
        with open("/proc/self/status", "rb") as f:
            for ln in f:
                if ln.startswith((b"VmHWM:", b"RssShmem:")):
                    got[ln.split(b":")[0]] = int(ln.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(0, got.get(b"VmHWM", 0) - got.get(b"RssShmem", 0))


#: the largest peak RSS a decompression helper process of this process reported (bytes)
helper_peak_rss = 0


def _read_exact(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise RuntimeError("rcfast.combine: the decompression helper process ended early")
    return data


#: blocks a helper may decode ahead of the parent (its memory: about depth x block size)
PREFETCH_BLOCKS = 3
#: shared-memory slots beyond the prefetch, by default: the blocks the parent is expected to
#: hold (queued and in flight in its workers, the one being cut); beyond them, the pipe
SLOTS_IN_PARENT = 8


class _SharedSlots:
    """The parent's side of a helper's shared-memory slots (see the module docstring)."""

    def __init__(self, fd: int, slot_size: int, n: int) -> None:
        import threading

        self.fd = fd
        self.size = slot_size
        self.n = n
        self.release_fd = -1
        self._lock = threading.Lock()
        self._waiting: list[tuple[int, object]] = []  # returned, but a reference is alive

    @classmethod
    def create(cls, block_size: int, n: int) -> _SharedSlots | None:
        if not hasattr(os, "memfd_create"):
            return None
        import mmap

        size = -(-block_size // mmap.PAGESIZE) * mmap.PAGESIZE
        try:
            fd = os.memfd_create("rcfast-inflate", 0)  # no name on disk: a kill leaves nothing
            os.ftruncate(fd, size * n)
        except OSError:
            return None
        return cls(fd, size, n)

    def view(self, slot: int, n: int):
        """``(read-only memoryview of the block, release)``."""
        import mmap

        # MAP_POPULATE: every page is read anyway (newline count, scanner); mapping them all
        # in one call costs a third less than one fault per 16 pages
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        mm = mmap.mmap(self.fd, self.size, flags=flags, prot=mmap.PROT_READ,
                       offset=slot * self.size)
        return memoryview(mm)[:n], lambda: self._release(slot, mm)

    def ack(self) -> None:
        """Tell the helper a slot block's header was read (it bounds its lookahead by these)."""
        if self.release_fd >= 0:
            try:
                os.write(self.release_fd, _ACK)
            except OSError:  # the helper has ended
                self.release_fd = -1

    def _release(self, slot: int, mm) -> None:
        with self._lock:
            self._waiting.append((slot, mm))
            self._flush()

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        freed, still = [], []
        for slot, mm in self._waiting:
            try:
                mm.close()  # BufferError while any view of the block is alive
                freed.append(slot)
            except BufferError:
                still.append((slot, mm))
        # a slot whose block is still referenced (say, by an exception's traceback) waits here;
        # the helper does not wait for it: it sends through the pipe while it has no slot
        self._waiting = still
        if freed and self.release_fd >= 0:
            try:
                os.write(self.release_fd, b"".join(RELEASE.pack(i) for i in freed))
            except OSError:  # the helper has ended
                self.release_fd = -1

    def close(self) -> None:
        with self._lock:
            self.release_fd = -1
            if self.fd >= 0:
                os.close(self.fd)  # mappings still alive stay valid
                self.fd = -1


def start_helper(path: str, comp: str, block_size: int, depth: int = PREFETCH_BLOCKS,
                 parent_blocks: int = SLOTS_IN_PARENT):
    """Start the decompression helper for ``path`` (it begins decoding at once).

    For gzip on Linux, blocks travel in ``depth`` + 1 + ``parent_blocks``
    shared-memory slots (their pages are the helper's whole lookahead and the parent's blocks
    in flight); while the parent holds them all, blocks go through the pipe instead, at most
    ``depth`` queued.
    """
    import subprocess

    slots = _SharedSlots.create(block_size, depth + 1 + parent_blocks) if comp == "gzip" else None
    args = [sys.executable, "-m", "rcfast.ingest._inflate", path, comp, str(block_size),
            str(depth)]
    if slots is not None:
        args += [str(slots.fd), str(slots.size), str(slots.n)]
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE if slots is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        bufsize=1 << 16,
        # Only the memfd is passed (not, say, another helper's memfd or a spill file opened
        # by another thread meanwhile). Python spawns with vfork here: no copy of the
        # parent's page tables, and the helper's peak RSS is its own.
        close_fds=True,
        pass_fds=(slots.fd,) if slots is not None else (),
    )
    if slots is not None:
        slots.release_fd = proc.stdin.fileno()
    proc.rcfast_slots = slots
    return proc


def stop_helper(proc) -> None:
    """Stop a helper that is no longer wanted (or finished) and release its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    slots = getattr(proc, "rcfast_slots", None)
    if slots is not None:
        slots.close()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None:
            f.close()


def iter_line_blocks_process(
    path: str, comp: str, block_size: int, state: StreamState,
    on_bytes: Callable[[int], None] | None = None, proc=None, zero_copy: bool = False,
    parent_blocks: int = SLOTS_IN_PARENT,
) -> Iterator[tuple[int, bytes, int, Callable[[], None] | None]]:
    """As :func:`iter_line_blocks` (with newline counts, -1: not counted), decompressing in a
    helper process (``proc``, started by :func:`start_helper` with the same path and block
    size, or a new one).

    Yields ``(kind, data, newlines, release)``. With ``zero_copy``, ``data`` may be a read-only
    view of a shared-memory slot; the caller must then drop every reference to it and call
    ``release()`` when done (the helper reuses the slot). Otherwise ``data`` is ``bytes`` and
    ``release`` is None.
    """
    if proc is None:
        proc = start_helper(path, comp, block_size, parent_blocks=parent_blocks)
    slots = getattr(proc, "rcfast_slots", None)
    try:
        try:  # a larger pipe: fewer wake-ups per block (Linux; best effort)
            import fcntl

            fcntl.fcntl(proc.stdout.fileno(), 1031, 1 << 20)  # F_SETPIPE_SZ
        except (ImportError, OSError):
            pass
        f = proc.stdout
        while True:
            if slots is not None:
                slots.flush()  # blocks whose last reference went after their release
            head = f.read(HEADER.size)
            if len(head) != HEADER.size:
                proc.wait()
                err = proc.stderr.read().decode("utf-8", "replace").strip()
                raise RuntimeError(
                    f"rcfast.combine: the decompression helper for {path} failed"
                    + (f": {err.splitlines()[-1]}" if err else f" (exit {proc.returncode})"))
            kind, consumed, n, newlines, slot = HEADER.unpack(head)
            if on_bytes and consumed:
                on_bytes(consumed)
            if kind == K_END:
                global helper_peak_rss
                helper_peak_rss = max(helper_peak_rss, newlines)
                break
            release = None
            if slot >= 0:
                slots.ack()
                data, release = slots.view(slot, n)
                if not zero_copy:
                    view, data = data, bytes(data)
                    view.release()
                    release()
                    release = None
            else:
                data = _read_exact(f, n) if n else b""
            if kind == K_ERROR:
                state.truncated = True
                state.error = data.decode("utf-8", "replace")
                continue
            yield kind, data, newlines, release
            data = release = None  # the consumer holds the block now; this frame must not
        proc.wait()
    finally:
        stop_helper(proc)


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
