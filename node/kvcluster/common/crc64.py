"""CRC-64/Jones as Redis computes it (src/crc64.c): the RDB and DUMP checksum.

Parameters (RevEng's "CRC-64/REDIS"): polynomial 0xad93d23594c935a9, reflected input and
output, initial value 0, no final xor; the check value of b"123456789" is 0xe9c6d914c4b8d9ca.
Because nothing is xored in or out, the CRC of a concatenation is computed by feeding the
previous result back in: ``crc64(b, crc64(a)) == crc64(a + b)``, so a stream is checksummed
chunk by chunk.

The fast path is anycrc (a C library using carry-less multiply, several GB/s); without it a
pure-Python slicing-by-8 table implementation (tens of MB/s) gives the same results.
"""

from __future__ import annotations

import sys

POLY = 0xAD93D23594C935A9
CHECK = 0xE9C6D914C4B8D9CA  # crc64(b"123456789")
_MASK = (1 << 64) - 1


def _reflect64(x: int) -> int:
    return int(f"{x:064b}"[::-1], 2)


def _make_tables() -> list[list[int]]:
    poly = _reflect64(POLY)  # the reflected algorithm shifts right with the reversed polynomial
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(7):  # tables[k][i]: byte i followed by k zero bytes (slicing-by-8)
        prev = tables[-1]
        tables.append([(v >> 8) ^ t0[v & 0xFF] for v in prev])
    return tables


_TABLES: list[list[int]] | None = None


def crc64_py(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """Pure-Python CRC-64/Jones of ``data``, continuing from ``crc``."""
    global _TABLES
    if _TABLES is None:
        _TABLES = _make_tables()
    t0, t1, t2, t3, t4, t5, t6, t7 = _TABLES
    mv = memoryview(data).cast("B")
    n = len(mv)
    head = n - n % 8
    if head and sys.byteorder == "little":
        # Eight bytes per step: xor a little-endian word in, then one lookup per byte.
        for w in mv[:head].cast("Q"):
            c = crc ^ w
            crc = (
                t7[c & 0xFF]
                ^ t6[(c >> 8) & 0xFF]
                ^ t5[(c >> 16) & 0xFF]
                ^ t4[(c >> 24) & 0xFF]
                ^ t3[(c >> 32) & 0xFF]
                ^ t2[(c >> 40) & 0xFF]
                ^ t1[(c >> 48) & 0xFF]
                ^ t0[c >> 56]
            )
    else:
        head = 0
    for b in mv[head:]:
        crc = t0[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc & _MASK


try:
    import anycrc as _anycrc

    _MODEL = _anycrc.Model("CRC64-REDIS")
    if _MODEL.calc(b"123456789") != CHECK:  # pragma: no cover - a broken build: do not trust it
        _MODEL = None
except ImportError:  # pragma: no cover - anycrc is a dependency; the fallback keeps us working without it
    _MODEL = None

if _MODEL is not None:
    _calc = _MODEL.calc

    def crc64(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
        """CRC-64/Jones of ``data``, continuing from ``crc`` (0 to start)."""
        if not data:
            return crc
        return _calc(data, crc)

    ACCELERATED = True
else:  # pragma: no cover
    crc64 = crc64_py
    ACCELERATED = False
