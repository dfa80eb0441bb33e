"""Plain-Python references of the ingest step's two string hashes, for the tests: written from
their definitions (rcfast.kernels.hashing, rcfast.kernels.ingest_hash), one byte or word at a
time, sharing no code with the library."""

from __future__ import annotations

_MASK64 = (1 << 64) - 1


def _fmix64(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    h ^= h >> 33
    return h


def fnv_hash_py(value: bytes) -> int:
    """The partition hash: FNV-1a 64, the length xor-ed in, murmur3's finalizer."""
    h = 0xCBF29CE484222325
    for b in value:
        h ^= b
        h = (h * 0x100000001B3) & _MASK64
    return _fmix64(h ^ len(value))


def text_hash_py(value: bytes) -> int:
    """The text hash of ``value`` (the UTF-8 bytes of a text): little-endian 8-byte words, the
    last one zero-padded, each xor-ed in, multiplied and rotated; the length; the finalizer."""

    def mix(h: int, w: int) -> int:
        h = ((h ^ w) * 0x9E3779B97F4A7C15) & _MASK64
        return ((h << 31) | (h >> 33)) & _MASK64

    h = 0x243F6A8885A308D3
    for i in range(0, len(value), 8):
        h = mix(h, int.from_bytes(value[i : i + 8].ljust(8, b"\0"), "little"))
    return _fmix64(h ^ len(value))
