"""The RDB snapshot format (kvcluster.node.rdb): encodings, streaming, corruption, and a real Redis.

Hand-built payloads cover every encoding Redis has ever written (the test-side builders of
listpacks, ziplists, intsets and zipmaps below follow listpack.c, ziplist.c, intset.c and
zipmap.c); the interop tests at the end exchange snapshots and DUMP payloads with a real
redis-server 7.x in both directions.
"""

from __future__ import annotations

import gc
import math
import os
import random
import shutil
import signal
import struct
import subprocess
import time
import tracemalloc
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import free_port, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kvcluster.common.crc64 import CHECK, crc64, crc64_py
from kvcluster.node import rdb
from kvcluster.node.keyspace import Keyspace, ZSet

# -- test-side encoders for the compact formats ------------------------------------


def rdb_len(n: int) -> bytes:
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def rdb_str(s: bytes) -> bytes:
    return rdb_len(len(s)) + s


def _as_int(e: bytes | int) -> int | None:
    if isinstance(e, int):
        return e
    try:
        v = int(e)
    except ValueError:
        return None
    return v if b"%d" % v == e and -(2**63) <= v < 2**63 else None


def lp_backlen(n: int) -> bytes:
    if n <= 127:
        return bytes([n])
    if n < 16383:
        return bytes([n >> 7, (n & 127) | 128])
    if n < 2097151:
        return bytes([n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128])
    if n < 268435455:
        return bytes([n >> 21, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128, (n & 127) | 128])
    return bytes([n >> 28, ((n >> 21) & 127) | 128, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128, (n & 127) | 128])


def listpack(entries: list[bytes | int]) -> bytes:
    """A listpack with each entry in its smallest encoding (integers where they are canonical)."""
    body = bytearray()
    for e in entries:
        v = _as_int(e)
        if v is not None and 0 <= v <= 127:
            enc = bytes([v])
        elif v is not None and -4096 <= v <= 4095:
            u = v & 0x1FFF
            enc = bytes([0xC0 | (u >> 8), u & 0xFF])
        elif v is not None and -(2**15) <= v < 2**15:
            enc = b"\xf1" + v.to_bytes(2, "little", signed=True)
        elif v is not None and -(2**23) <= v < 2**23:
            enc = b"\xf2" + v.to_bytes(3, "little", signed=True)
        elif v is not None and -(2**31) <= v < 2**31:
            enc = b"\xf3" + v.to_bytes(4, "little", signed=True)
        elif v is not None:
            enc = b"\xf4" + v.to_bytes(8, "little", signed=True)
        else:
            assert isinstance(e, bytes)
            n = len(e)
            if n < 64:
                enc = bytes([0x80 | n]) + e
            elif n < 4096:
                enc = bytes([0xE0 | (n >> 8), n & 0xFF]) + e
            else:
                enc = b"\xf0" + n.to_bytes(4, "little") + e
        body += enc + lp_backlen(len(enc))
    total = 6 + len(body) + 1
    count = len(entries) if len(entries) < 65535 else 65535
    return total.to_bytes(4, "little") + count.to_bytes(2, "little") + bytes(body) + b"\xff"


def ziplist(entries: list[bytes | int]) -> bytes:
    """A ziplist with each entry in its smallest encoding."""
    body = bytearray()
    prev = 0
    tail = 10
    for e in entries:
        v = _as_int(e)
        if v is not None and 0 <= v <= 12:
            enc = bytes([0xF1 + v])
        elif v is not None and -128 <= v <= 127:
            enc = b"\xfe" + v.to_bytes(1, "little", signed=True)
        elif v is not None and -(2**15) <= v < 2**15:
            enc = b"\xc0" + v.to_bytes(2, "little", signed=True)
        elif v is not None and -(2**23) <= v < 2**23:
            enc = b"\xf0" + v.to_bytes(3, "little", signed=True)
        elif v is not None and -(2**31) <= v < 2**31:
            enc = b"\xd0" + v.to_bytes(4, "little", signed=True)
        elif v is not None:
            enc = b"\xe0" + v.to_bytes(8, "little", signed=True)
        else:
            assert isinstance(e, bytes)
            n = len(e)
            if n < 64:
                enc = bytes([n]) + e
            elif n < 16384:
                enc = bytes([0x40 | (n >> 8), n & 0xFF]) + e
            else:
                enc = b"\x80" + n.to_bytes(4, "big") + e
        prevlen = bytes([prev]) if prev < 254 else b"\xfe" + prev.to_bytes(4, "little")
        entry = prevlen + enc
        tail = 10 + len(body)
        body += entry
        prev = len(entry)
    total = 10 + len(body) + 1
    return (
        total.to_bytes(4, "little") + tail.to_bytes(4, "little") + len(entries).to_bytes(2, "little") + body + b"\xff"
    )


def intset(values: list[int], width: int) -> bytes:
    code = {2: "h", 4: "i", 8: "q"}[width]
    return struct.pack(f"<II{len(values)}{code}", width, len(values), *sorted(values))


def zipmap(pairs: list[tuple[bytes, bytes]]) -> bytes:
    def zlen(n: int) -> bytes:
        return bytes([n]) if n < 254 else b"\xfe" + n.to_bytes(4, "little")

    out = bytearray([len(pairs) if len(pairs) < 254 else 254])
    for k, v in pairs:
        out += zlen(len(k)) + k + zlen(len(v)) + b"\x02" + v + b"\xaa\xbb"  # 2 free bytes
    return bytes(out) + b"\xff"


def lzf_compress(data: bytes) -> bytes:
    """A simple greedy LZF compressor (the format lzf_d.c decodes), for test payloads."""
    out = bytearray()
    lit = bytearray()
    table: dict[bytes, int] = {}
    i = 0
    n = len(data)

    def flush_literals() -> None:
        while lit:
            part = lit[:32]
            del lit[:32]
            out.append(len(part) - 1)
            out.extend(part)

    while i < n:
        ref = table.get(data[i : i + 3]) if i + 3 <= n else None
        if i + 3 <= n:
            table[data[i : i + 3]] = i
        if ref is not None and 0 < i - ref <= 8192:
            length = 3
            while i + length < n and length < 264 and data[ref + length] == data[i + length]:
                length += 1
            flush_literals()
            dist = i - ref - 1
            ln = length - 2
            if ln < 7:
                out.append((ln << 5) | (dist >> 8))
            else:
                out.append((7 << 5) | (dist >> 8))
                out.append(ln - 7)
            out.append(dist & 0xFF)
            i += length
        else:
            lit.append(data[i])
            i += 1
    flush_literals()
    return bytes(out)


def rdb_file(body: bytes, version: int = 10, checksum: bool = True) -> bytes:
    data = b"REDIS%04d" % version + body + b"\xff"
    if version >= 5:
        data += (crc64(data) if checksum else 0).to_bytes(8, "little")
    return data


def one_key(rdb_type: int, payload: bytes, key: bytes = b"k", version: int = 10) -> Any:
    """Parse a file holding one key of ``rdb_type`` and return its value."""
    entries = read_all(rdb_file(b"\xfe\x00" + bytes([rdb_type]) + rdb_str(key) + payload, version))
    assert len(entries) == 1
    assert entries[0].key == key
    return entries[0].value


def read_all(data: bytes, chunk: int | None = None) -> list[rdb.RDBEntry]:
    reader = rdb.RDBReader()
    out: list[rdb.RDBEntry] = []
    if chunk is None:
        out += reader.feed(data)
    else:
        for off in range(0, len(data), chunk):
            out += reader.feed(data[off : off + chunk])
    out += reader.finish()
    return out


def zset(scores: dict[bytes, float]) -> ZSet:
    z = ZSet()
    for m, s in scores.items():
        z.add(m, s)
    return z


def norm(value: Any) -> Any:
    """A comparable copy of a keyspace value (type name + contents)."""
    if isinstance(value, bytes):
        return ("string", value)
    if isinstance(value, deque):
        return ("list", list(value))
    if isinstance(value, set):
        return ("set", set(value))
    if isinstance(value, dict):
        return ("hash", dict(value))
    if isinstance(value, ZSet):
        assert list(value.sorted) == sorted((s, m) for m, s in value.dict.items())
        return ("zset", dict(value.dict))
    raise TypeError(type(value))


def keyspace_contents(ks: Keyspace) -> dict[tuple[int, bytes], tuple[Any, int | None]]:
    return {(db.id, key): (norm(value), db.expires.get(key)) for db in ks.dbs for key, value in db.data.items()}


def entries_contents(entries: list[rdb.RDBEntry]) -> dict[tuple[int, bytes], tuple[Any, int | None]]:
    out = {}
    for e in entries:
        assert (e.db, e.key) not in out
        out[(e.db, e.key)] = (norm(e.value), e.expire_ms)
    return out


def varied_keyspace() -> Keyspace:
    """A keyspace with every type, binary data, TTLs, several databases and large values."""
    ks = Keyspace()
    db = ks.dbs[0]
    db.set(b"str", b"hello")
    db.set(b"", b"the empty key")
    db.set(b"empty-value", b"")
    db.set(b"\x00\xff\r\n binary key", bytes(range(256)) * 3)
    db.set("unicodé ✓".encode(), "välue ✓".encode())
    db.set(b"int-like", b"12345")
    db.set(b"neg-int-like", b"-9223372036854775808")
    db.set(b"big-string", os.urandom(300_000))
    db.set(b"list", deque([b"a", b"", b"1", b"-2", b"x" * 20_000, bytes(range(256))]))
    db.set(b"long-list", deque(b"item-%d" % i for i in range(5000)))
    db.set(b"set", {b"a", b"b", b"\x00", b""})
    db.set(b"int-set", {b"1", b"2", b"-3", b"9223372036854775807"})
    db.set(b"big-set", {b"m%d" % i for i in range(3000)})
    db.set(b"hash", {b"f": b"v", b"": b"empty field", b"num": b"42", b"bin\x00": b"\xff" * 100})
    db.set(b"big-hash", {b"field%d" % i: b"value%d" % i for i in range(1000)})
    db.set(b"zset", zset({b"a": 1.5, b"b": -2.25, b"c": 0.0, b"inf": math.inf, b"-inf": -math.inf, b"tiny": 5e-324}))
    db.set(b"big-zset", zset({b"m%d" % i: i / 7 for i in range(1000)}))
    now = ks.clock_ms()
    for key, delta in ((b"str", 3_600_000), (b"list", 7_200_000), (b"hash", 86_400_000), (b"zset", 10_000_000)):
        db.set_expire(key, now + delta)
    for i in range(1, 16):
        ks.dbs[i].set(b"key-in-db-%d" % i, b"value %d" % i)
        if i % 3 == 0:
            ks.dbs[i].set(b"hash-in-db-%d" % i, {b"db": b"%d" % i})
            ks.dbs[i].set_expire(b"hash-in-db-%d" % i, now + i * 1_000_000)
    return ks


# -- CRC-64 ----------------------------------------------------------------------------


def test_crc64_check_value_and_fallback_agree() -> None:
    assert crc64(b"123456789") == CHECK == 0xE9C6D914C4B8D9CA
    assert crc64_py(b"123456789") == CHECK
    data = random.Random(7).randbytes(100_003)
    assert crc64_py(data) == crc64(data)
    # Chunked: feeding the previous result back in continues the checksum.
    assert crc64(data[5000:], crc64(data[:5000])) == crc64(data)
    assert crc64_py(memoryview(data)[3:], crc64_py(data[:3])) == crc64(data)
    assert crc64(b"") == 0 and crc64(b"", 123) == 123


# -- length and string encodings ----------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 63, 64, 16383, 16384, 2**32 - 1, 2**32, 2**40])
def test_length_encodings_round_trip(n: int) -> None:
    encoded = rdb._len_bytes(n)
    assert encoded == rdb_len(n)
    assert rdb._read_len(encoded, 0) == (n, len(encoded))


def test_string_encodings() -> None:
    assert one_key(0, b"\xc0\x7f") == b"127"
    assert one_key(0, b"\xc0\x80") == b"-128"
    assert one_key(0, b"\xc1" + (-30000).to_bytes(2, "little", signed=True)) == b"-30000"
    assert one_key(0, b"\xc2" + (2**31 - 1).to_bytes(4, "little", signed=True)) == b"2147483647"
    assert one_key(0, rdb_str(b"x" * 70_000)) == b"x" * 70_000
    assert one_key(0, b"\x80" + (5).to_bytes(4, "big") + b"hello") == b"hello"  # 32-bit form, short string
    assert one_key(0, b"\x81" + (3).to_bytes(8, "big") + b"abc") == b"abc"


def lzf_string(plain: bytes, compressed: bytes | None = None) -> bytes:
    c = lzf_compress(plain) if compressed is None else compressed
    return b"\xc3" + rdb_len(len(c)) + rdb_len(len(plain)) + c


def test_lzf_strings() -> None:
    # Hand-made: literal "abc", then a 9-byte back reference 3 bytes back (overlapping copy).
    assert rdb.lzf_decompress(b"\x02abc\xe0\x00\x02", 12) == b"abc" * 4
    # A short back reference (length 3 stored as 1 in the top bits).
    assert rdb.lzf_decompress(b"\x03abcd\x20\x03", 7) == b"abcdabc"
    for plain in (b"a" * 1000, b"abcdefgh" * 500 + os.urandom(100), bytes(range(256)) * 40):
        assert one_key(0, lzf_string(plain)) == plain
    with pytest.raises(rdb.RDBCorruptError, match="LZF"):
        one_key(0, lzf_string(b"abc" * 4, b"\x02abc\xe0\x00\x09"))  # reference before the start
    with pytest.raises(rdb.RDBCorruptError, match="LZF"):
        one_key(0, b"\xc3\x07\x0d" + b"\x02abc\xe0\x00\x02")  # declares 13 bytes, makes 12


@given(st.binary(max_size=3000))
@settings(max_examples=60, deadline=None)
def test_lzf_round_trip(data: bytes) -> None:
    assert rdb.lzf_decompress(lzf_compress(data), len(data)) == data


# -- compact blobs ------------------------------------------------------------------------

# Entries that exercise every listpack/ziplist entry encoding.
BLOB_ENTRIES: list[bytes] = [
    b"0",
    b"12",
    b"13",
    b"127",
    b"128",
    b"-1",
    b"-4096",
    b"4095",
    b"4096",
    b"-32768",
    b"32767",
    b"8388607",
    b"-8388608",
    b"2147483647",
    b"-2147483648",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"",
    b"a",
    b"x" * 63,
    b"y" * 64,
    b"z" * 300,
    b"w" * 5000,
    b"v" * 20_000,
    b"007",  # not canonical: stays a string
    b"+1",
]


def test_listpack_all_entry_encodings() -> None:
    assert rdb.listpack_entries(listpack(BLOB_ENTRIES)) == BLOB_ENTRIES


def test_ziplist_all_entry_encodings() -> None:
    assert rdb.ziplist_entries(ziplist(BLOB_ENTRIES)) == BLOB_ENTRIES


def test_intset_widths() -> None:
    for width, values in ((2, [1, -5, 32767]), (4, [70000, -1]), (8, [2**62, -(2**63)])):
        assert rdb.intset_members(intset(values, width)) == [b"%d" % v for v in sorted(values)]


def test_zipmap() -> None:
    pairs = [(b"f", b"v"), (b"long", b"q" * 300), (b"", b"")]
    assert rdb.zipmap_pairs(zipmap(pairs)) == [x for p in pairs for x in p]


# -- every value type -----------------------------------------------------------------------


def test_lists_in_every_encoding() -> None:
    items = [b"a", b"1", b"-7", b"x" * 300, b""]
    assert one_key(1, rdb_len(len(items)) + b"".join(rdb_str(e) for e in items)) == deque(items)
    assert one_key(10, rdb_str(ziplist(items))) == deque(items)
    ql = rdb_len(2) + rdb_str(ziplist(items[:2])) + rdb_str(ziplist(items[2:]))
    assert one_key(14, ql) == deque(items)
    # quicklist 2: a packed listpack node, a plain node, an LZF-compressed listpack node.
    ql2 = (
        rdb_len(3)
        + rdb_len(2)
        + rdb_str(listpack(items[:2]))
        + rdb_len(1)
        + rdb_str(b"p" * 1000)
        + rdb_len(2)
        + lzf_string(listpack(items[2:] * 10))
    )
    assert one_key(18, ql2) == deque(items[:2] + [b"p" * 1000] + items[2:] * 10)


def test_sets_in_every_encoding() -> None:
    members = [b"a", b"b", b"17", b""]
    assert one_key(2, rdb_len(4) + b"".join(rdb_str(m) for m in members)) == set(members)
    assert one_key(11, rdb_str(intset([3, -1, 2**40], 8))) == {b"3", b"-1", b"1099511627776"}
    assert one_key(20, rdb_str(listpack(members)), version=11) == set(members)
    with pytest.raises(rdb.RDBCorruptError, match="duplicate set members"):
        one_key(2, rdb_len(2) + rdb_str(b"a") + rdb_str(b"a"))


def test_zsets_in_every_encoding() -> None:
    scores = {b"a": 1.5, b"b": -3.0, b"c": math.inf, b"d": -math.inf, b"e": 1e-300, b"f": 2.0**60}
    # RDB_TYPE_ZSET: scores as strings; 254/255 are +inf/-inf.
    plain = rdb_len(len(scores))
    for m, s in scores.items():
        plain += rdb_str(m)
        if s == math.inf:
            plain += b"\xfe"
        elif s == -math.inf:
            plain += b"\xff"
        else:
            plain += rdb_str(repr(s).encode())
    assert one_key(3, plain).dict == scores
    binary = rdb_len(len(scores)) + b"".join(rdb_str(m) + struct.pack("<d", s) for m, s in scores.items())
    z = one_key(5, binary)
    assert z.dict == scores
    assert list(z.sorted) == sorted((s, m) for m, s in scores.items())
    flat: list[bytes | int] = []
    for m, s in scores.items():
        flat += [m, b"%d" % s if s.is_integer() and abs(s) < 2**63 else repr(s).encode()]
    assert one_key(12, rdb_str(ziplist(flat))).dict == scores
    assert one_key(17, rdb_str(listpack(flat))).dict == scores
    with pytest.raises(rdb.RDBCorruptError, match="NaN"):
        one_key(5, rdb_len(1) + rdb_str(b"m") + struct.pack("<d", math.nan))
    with pytest.raises(rdb.RDBCorruptError, match="not a number"):
        one_key(17, rdb_str(listpack([b"m", b"abc"])))


def test_hashes_in_every_encoding() -> None:
    h = {b"f": b"v", b"n": b"12", b"": b"", b"long": b"l" * 400}
    flat = [x for kv in h.items() for x in kv]
    assert one_key(4, rdb_len(len(h)) + b"".join(rdb_str(x) for x in flat)) == h
    assert one_key(9, rdb_str(zipmap(list(h.items())))) == h
    assert one_key(13, rdb_str(ziplist(flat))) == h
    assert one_key(16, rdb_str(listpack(flat))) == h
    with pytest.raises(rdb.RDBCorruptError, match="odd number"):
        one_key(16, rdb_str(listpack([b"f", b"v", b"g"])))


def test_empty_collections_are_skipped_like_redis() -> None:
    body = b"\xfe\x00" + b"\x01" + rdb_str(b"empty") + rdb_len(0) + b"\x00" + rdb_str(b"s") + rdb_str(b"v")
    reader = rdb.RDBReader()
    entries = reader.feed(rdb_file(body)) + reader.finish()
    assert [e.key for e in entries] == [b"s"]
    assert reader.empty_keys_skipped == 1


# -- opcodes -----------------------------------------------------------------------------------


def test_all_opcodes() -> None:
    module_id = 0
    for ch in "mymodule1":
        module_id = (module_id << 6) | rdb._MODULE_CHARSET.index(ch)
    module_id = (module_id << 10) | 3
    module_aux = (
        b"\xf7"
        + rdb_len(module_id)
        + rdb_len(2)  # 'when' opcode: UINT
        + rdb_len(1)  # when: before keys
        + rdb_len(2)
        + rdb_len(77)  # UINT 77
        + rdb_len(5)
        + rdb_str(b"module state")  # STRING
        + rdb_len(4)
        + struct.pack("<d", 1.5)  # DOUBLE
        + rdb_len(3)
        + struct.pack("<f", 2.5)  # FLOAT
        + rdb_len(0)  # EOF
    )
    body = (
        b"\xfa" + rdb_str(b"redis-ver") + rdb_str(b"7.2.4")
        + b"\xfa" + rdb_str(b"ctime") + b"\xc2" + (1700000000).to_bytes(4, "little")
        + b"\xf5" + rdb_str(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)")
        + module_aux
        + b"\xfe" + rdb_len(3)
        + b"\xfb" + rdb_len(10) + rdb_len(2)
        + b"\xf4" + rdb_len(100) + rdb_len(5) + rdb_len(1)  # SLOT_INFO (7.4)
        + b"\xfd" + (2_000_000_000).to_bytes(4, "little") + b"\x00" + rdb_str(b"sec") + rdb_str(b"1")
        + b"\xfc" + (1_900_000_000_123).to_bytes(8, "little") + b"\x00" + rdb_str(b"ms") + rdb_str(b"2")
        + b"\xf8" + rdb_len(5000) + b"\x00" + rdb_str(b"idle") + rdb_str(b"3")
        + b"\xf9" + b"\x07" + b"\x00" + rdb_str(b"freq") + rdb_str(b"4")
        + b"\x00" + rdb_str(b"plain") + rdb_str(b"5")
    )  # fmt: skip
    reader = rdb.RDBReader()
    entries = reader.feed(rdb_file(body, version=12)) + reader.finish()
    assert reader.done and reader.version == 12
    assert reader.aux == {b"redis-ver": b"7.2.4", b"ctime": b"1700000000"}
    assert reader.functions[0].startswith(b"#!lua name=lib")
    assert reader.module_aux == ["mymodule1"]
    assert reader.resize_hints == {3: (10, 2)}
    got = {e.key: (e.db, e.value, e.expire_ms, e.idle, e.freq) for e in entries}
    assert got == {
        b"sec": (3, b"1", 2_000_000_000_000, None, None),
        b"ms": (3, b"2", 1_900_000_000_123, None, None),
        b"idle": (3, b"3", None, 5000, None),
        b"freq": (3, b"4", None, None, 7),
        b"plain": (3, b"5", None, None, None),
    }


def test_old_versions_without_checksum_and_zero_checksum() -> None:
    body = b"\xfe\x00\x00" + rdb_str(b"k") + rdb_str(b"v")
    old = b"REDIS0004" + body + b"\xff"  # before version 5 there is no checksum at all
    assert [e.value for e in read_all(old)] == [b"v"]
    unchecked = rdb_file(body, checksum=False)  # rdbchecksum no: an all-zero footer
    assert [e.value for e in read_all(unchecked)] == [b"v"]


def test_unsupported_types_are_refused_with_their_name() -> None:
    body = b"\xfe\x02\x0f" + rdb_str(b"mystream") + rdb_str(b"listpack bytes")
    with pytest.raises(rdb.RDBUnsupportedError, match=r"b'mystream' in db 2 is a stream"):
        read_all(rdb_file(body))
    module_id = 0
    for ch in "ReJSON-RL":
        module_id = (module_id << 6) | rdb._MODULE_CHARSET.index(ch)
    module_id <<= 10
    body = b"\xfe\x00\x07" + rdb_str(b"doc") + rdb_len(module_id)
    with pytest.raises(rdb.RDBUnsupportedError, match="module 'ReJSON-RL'"):
        read_all(rdb_file(body))
    body = b"\xfe\x00\x19" + rdb_str(b"h") + rdb_len(0)
    with pytest.raises(rdb.RDBUnsupportedError, match="hash with field TTLs"):
        read_all(rdb_file(body, version=12))
    with pytest.raises(rdb.RDBUnsupportedError, match="version 13"):
        read_all(rdb_file(b"", version=13))
    with pytest.raises(rdb.RDBCorruptError, match="unknown value type 8"):
        read_all(rdb_file(b"\xfe\x00\x08" + rdb_str(b"k")))


# -- round trips -----------------------------------------------------------------------------


def test_round_trip_varied_keyspace_and_header() -> None:
    ks = varied_keyspace()
    data = rdb.dump_rdb_bytes(ks, repl_id="a" * 40, repl_offset=12345, repl_stream_db=0, used_mem=1 << 20)
    assert data.startswith(b"REDIS0010")
    reader = rdb.RDBReader()
    entries = reader.feed(data) + reader.finish()
    assert entries_contents(entries) == keyspace_contents(ks)
    assert reader.aux[b"redis-ver"] == b"7.0.0"
    assert reader.aux[b"redis-bits"] == b"64"
    assert reader.aux[b"repl-id"] == b"a" * 40
    assert reader.aux[b"repl-offset"] == b"12345"
    assert reader.aux[b"repl-stream-db"] == b"0"
    assert reader.aux[b"aof-base"] == b"0"
    assert reader.aux[b"used-mem"] == str(1 << 20).encode()
    assert abs(int(reader.aux[b"ctime"]) - time.time()) < 60
    assert reader.checksum == crc64(data[:-8])
    assert reader.resize_hints[0] == (len(ks.dbs[0].data), len(ks.dbs[0].expires))
    # The same through a fresh keyspace and back out again: byte-identical (same key order).
    ks2 = Keyspace()
    stats = rdb.load_rdb(ks2, data)
    assert stats.keys == len(entries) and stats.version == 10
    assert keyspace_contents(ks2) == keyspace_contents(ks)


keys_st = st.binary(max_size=12)
strs_st = st.binary(max_size=40)
values_st = st.one_of(
    st.binary(max_size=300),
    st.lists(strs_st, min_size=1, max_size=8).map(deque),
    st.sets(strs_st, min_size=1, max_size=8),
    st.dictionaries(strs_st, strs_st, min_size=1, max_size=8),
    st.dictionaries(strs_st, st.floats(allow_nan=False), min_size=1, max_size=8).map(zset),
)
dataset_st = st.dictionaries(
    st.tuples(st.integers(0, 15), keys_st),
    st.tuples(values_st, st.none() | st.integers(1, 2**62)),
    max_size=25,
)


def build_keyspace(dataset: dict[tuple[int, bytes], tuple[Any, int | None]]) -> Keyspace:
    ks = Keyspace()
    for (db, key), (value, expire) in dataset.items():
        ks.dbs[db].set(key, value)
        if expire is not None:
            ks.dbs[db].set_expire(key, expire)
    return ks


@given(dataset_st, st.integers(64, 600), st.integers(1, 5), st.randoms(use_true_random=False))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip_random_datasets(dataset: Any, chunk_size: int, kpy: int, rnd: random.Random) -> None:
    ks = build_keyspace(dataset)
    chunks = list(rdb.RDBWriter(ks, chunk_size=chunk_size, keys_per_yield=kpy))
    assert all(0 < len(c) <= chunk_size for c in chunks)
    data = b"".join(chunks)
    # Fed in random pieces, the reader resumes at record boundaries and loses nothing.
    reader = rdb.RDBReader()
    entries: list[rdb.RDBEntry] = []
    pos = 0
    while pos < len(data):
        step = rnd.choice((1, 2, 7, 50, 1000))
        entries += reader.feed(data[pos : pos + step])
        pos += step
    entries += reader.finish()
    assert entries_contents(entries) == keyspace_contents(ks)
    ks2 = Keyspace()
    rdb.load_rdb(ks2, data)
    assert keyspace_contents(ks2) == keyspace_contents(ks)


@given(values_st)
@settings(max_examples=150, deadline=None)
def test_dump_payload_round_trip(value: Any) -> None:
    payload = rdb.encode_value(value)
    assert payload[-10:-8] == b"\x0a\x00"  # RDB version 10, little-endian
    assert int.from_bytes(payload[-8:], "little") == crc64(payload[:-8])
    assert norm(rdb.decode_value(payload)) == norm(value)


def test_dump_payload_errors() -> None:
    payload = bytearray(rdb.encode_value({b"f": b"v"}))
    with pytest.raises(rdb.RDBCorruptError, match="too short"):
        rdb.decode_value(b"\x00\x00")
    bad = bytes(payload[:3]) + bytes([payload[3] ^ 1]) + bytes(payload[4:])
    with pytest.raises(rdb.RDBChecksumError):
        rdb.decode_value(bad)
    future = bytes(payload[:-10]) + (99).to_bytes(2, "little")
    with pytest.raises(rdb.RDBUnsupportedError, match="version 99"):
        rdb.decode_value(future + crc64(future).to_bytes(8, "little"))
    trailing = bytes(payload[:-10]) + b"junk" + b"\x0a\x00"
    with pytest.raises(rdb.RDBCorruptError, match="4 bytes after the value"):
        rdb.decode_value(trailing + crc64(trailing).to_bytes(8, "little"))
    cut = bytes(payload[:-11]) + b"\x0a\x00"
    with pytest.raises(rdb.RDBCorruptError, match="cut short"):
        rdb.decode_value(cut + crc64(cut).to_bytes(8, "little"))
    with pytest.raises(TypeError):
        rdb.encode_value(42)


def test_access_opcodes_round_trip() -> None:
    ks = Keyspace()
    db = ks.dbs[0]
    db.set(b"old", b"1")
    db.set(b"new", b"2")
    db.access[b"old"] = ks.clock_ms() // 1000 - 5000
    entries = read_all(rdb.dump_rdb_bytes(ks, access=True))
    idle = {e.key: e.idle for e in entries}
    assert idle[b"old"] >= 5000 and idle[b"new"] <= 2
    ks2 = Keyspace()
    rdb.load_rdb(ks2, rdb.dump_rdb_bytes(ks, access=True))
    assert ks2.dbs[0].idle_seconds(b"old") >= 5000
    ks.set_lfu(True)
    db.access[b"old"] = (ks.lfu_new() & ~0xFF) | 200
    freq = {e.key: e.freq for e in read_all(rdb.dump_rdb_bytes(ks, access=True))}
    assert freq[b"old"] == 200 and freq[b"new"] == 5
    ks3 = Keyspace()
    ks3.set_lfu(True)
    rdb.load_rdb(ks3, rdb.dump_rdb_bytes(ks, access=True))
    assert ks3.lfu_counter(ks3.dbs[0].access[b"old"]) == 200


# -- loading into a keyspace ----------------------------------------------------------------


def test_load_replaces_everything_and_drops_expired_keys_when_asked() -> None:
    src = Keyspace()
    now = src.clock_ms()
    src.dbs[0].set(b"live", b"1")
    src.dbs[0].set_expire(b"live", now + 100_000)
    src.dbs[0].set(b"dead", b"2")
    src.dbs[0].set_expire(b"dead", now - 1)
    data = rdb.dump_rdb_bytes(src)
    target = Keyspace()
    target.dbs[5].set(b"previous", b"gone after the load")
    stats = rdb.load_rdb(target, data, now_ms=now)
    assert stats.keys == 1 and stats.expired_skipped == 1
    assert set(target.dbs[0].data) == {b"live"} and not target.dbs[5].data
    assert target.dbs[0].scan(0, 10) == (0, [b"live"])  # keys are in the SCAN order too
    replica = Keyspace()
    rdb.load_rdb(replica, data)  # no now_ms: a replica keeps them for the leader's DEL
    assert set(replica.dbs[0].data) == {b"live", b"dead"}


def test_failed_load_leaves_the_keyspace_untouched(tmp_path: Path) -> None:
    data = rdb.dump_rdb_bytes(varied_keyspace())
    target = Keyspace()
    target.dbs[0].set(b"mine", b"kept")
    before = keyspace_contents(target)
    corrupt = data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0x55]) + data[len(data) // 2 + 1 :]
    for bad in (data[:-1], data[: len(data) // 3], corrupt):
        with pytest.raises(rdb.RDBError):
            rdb.load_rdb(target, bad)
        assert keyspace_contents(target) == before
    path = tmp_path / "dump.rdb"
    path.write_bytes(data[:-100])
    with pytest.raises(rdb.RDBTruncatedError):
        rdb.load_rdb_file(target, path)
    assert keyspace_contents(target) == before


def test_duplicate_keys_and_database_out_of_range_are_refused() -> None:
    rec = b"\x00" + rdb_str(b"k") + rdb_str(b"v")
    with pytest.raises(rdb.RDBCorruptError, match="duplicate key"):
        rdb.load_rdb(Keyspace(), rdb_file(b"\xfe\x00" + rec + rec))
    with pytest.raises(rdb.RDBCorruptError, match="selects database 16, but there are only 16"):
        rdb.load_rdb(Keyspace(), rdb_file(b"\xfe" + rdb_len(16) + rec))


def test_save_and_load_file(tmp_path: Path) -> None:
    ks = varied_keyspace()
    path = tmp_path / "dump.rdb"
    writer = rdb.save_rdb_file(ks, path)
    assert writer.bytes_written == path.stat().st_size
    assert not list(tmp_path.glob("*.tmp-*"))
    ks2 = Keyspace()
    rdb.load_rdb_file(ks2, path)
    assert keyspace_contents(ks2) == keyspace_contents(ks)


# -- streaming -------------------------------------------------------------------------------


def test_chunks_are_bounded_even_for_huge_values() -> None:
    ks = Keyspace()
    ks.dbs[0].set(b"huge-string", os.urandom(3_000_000))
    ks.dbs[0].set(b"huge-list", deque(os.urandom(100) for _ in range(20_000)))
    ks.dbs[0].set(b"huge-hash", {b"f%d" % i: os.urandom(50) for i in range(20_000)})
    for i in range(5000):
        ks.dbs[1].set(b"k%d" % i, b"v")
    writer = rdb.RDBWriter(ks, chunk_size=65536, keys_per_yield=100)
    sizes = [len(c) for c in writer]
    assert max(sizes) <= 65536 and min(sizes) > 0
    assert sum(sizes) == writer.bytes_written
    # 5000 tiny keys take ~40 KB, less than a chunk: control still returns every 100 keys.
    assert len(sizes) >= 5000 // 100
    assert writer.keys_written == 5003


def test_streaming_does_not_duplicate_the_dataset_in_memory() -> None:
    ks = Keyspace()
    for i in range(400):
        ks.dbs[i % 16].set(b"key-%d" % i, os.urandom(50_000))  # 20 MB of values
    for i in range(50):
        ks.dbs[0].set(b"hash-%d" % i, {b"f%d" % j: os.urandom(1000) for j in range(100)})  # 5 MB
    ks.dbs[2].set(b"huge", os.urandom(20_000_000))  # sent in slices, never copied whole
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        total = 0
        for chunk in rdb.RDBWriter(ks, chunk_size=1 << 16):
            total += len(chunk)  # sent on and dropped, like a socket write
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert total > 45_000_000
    assert peak < 2_000_000, f"peak {peak} bytes while streaming {total} bytes"


def test_snapshot_is_point_in_time_while_clients_write() -> None:
    ks = Keyspace()
    db0, db1 = ks.dbs[0], ks.dbs[1]
    for i in range(2000):
        db0.set(b"s%d" % i, b"old-%d" % i)
    db0.set(b"h", {b"f": b"old"})
    db0.set(b"l", deque([b"a"]))
    db0.set(b"ttl", b"x")
    db0.set_expire(b"ttl", 4_000_000_000_000)
    db1.set(b"in-db1", {b"x"})
    before = keyspace_contents(ks)
    writer = rdb.RDBWriter(ks, chunk_size=4096, keys_per_yield=50)
    chunks = []
    for n, chunk in enumerate(writer):
        chunks.append(chunk)
        if n == 1:
            # Between chunks, clients write; the command layer calls before_write first
            # for in-place mutations (and SWAPDB calls swap_dbs).
            for i in range(0, 2000, 3):
                db0.set(b"s%d" % i, b"new")  # overwrite: needs no hook
            for i in range(1, 2000, 3):
                db0.delete(b"s%d" % i)  # delete: needs no hook
            db0.set(b"created-later", b"not in the snapshot")
            writer.before_write(0, b"h")
            db0.data[b"h"][b"f"] = b"new"
            db0.data[b"h"][b"g"] = b"added"
            writer.before_write(0, b"l")
            db0.data[b"l"].append(b"b")
            db0.persist(b"ttl")
            ks.swap_dbs(0, 1)
            writer.swap_dbs(0, 1)
            writer.before_write(1, b"h")  # h now lives in db 1: already preserved, a no-op
            writer.before_write(0, b"in-db1")
            ks.dbs[0].data[b"in-db1"].add(b"y")
            ks.dbs[0].clear()  # FLUSHDB: needs no hook
    assert entries_contents(read_all(b"".join(chunks))) == before


def test_unused_data_after_the_snapshot_is_kept() -> None:
    data = rdb.dump_rdb_bytes(varied_keyspace())
    reader = rdb.RDBReader()
    entries = reader.feed(data[:1000]) + reader.feed(data[1000:] + b"*1\r\n$4\r\nPING\r\n")
    assert reader.done
    assert reader.unused_data == b"*1\r\n$4\r\nPING\r\n"
    reader.feed(b"more")
    assert reader.unused_data.endswith(b"more")
    assert len(entries + reader.finish()) == sum(len(db.data) for db in varied_keyspace().dbs)


# -- corruption --------------------------------------------------------------------------------


def test_truncated_anywhere_is_an_error_naming_the_offset() -> None:
    data = rdb.dump_rdb_bytes(varied_keyspace())
    rnd = random.Random(3)
    for cut in [0, 5, 9, 20, len(data) - 9, len(data) - 1, *rnd.sample(range(len(data)), 40)]:
        with pytest.raises(rdb.RDBTruncatedError) as info:
            read_all(data[:cut], chunk=rnd.choice((None, 1000, 70_000)))
        assert info.value.offset == cut
        assert f"ends at offset {cut}" in str(info.value)


def test_truncation_message_says_what_was_expected() -> None:
    data = rdb_file(b"\xfe\x00\x00" + rdb_str(b"key") + rdb_str(b"v" * 1000))
    with pytest.raises(rdb.RDBTruncatedError, match=r"the 1000-byte value of key b.key.") as info:
        read_all(data[:500])
    assert "starting at offset 11" in str(info.value)  # the record after the header and SELECTDB
    with pytest.raises(rdb.RDBTruncatedError, match="8-byte checksum"):
        read_all(data[:-3])


def test_flipped_byte_in_a_value_is_a_checksum_error_with_offset() -> None:
    ks = Keyspace()
    ks.dbs[0].set(b"k", b"A" * 10_000)
    data = rdb.dump_rdb_bytes(ks)
    mid = data.index(b"A" * 100) + 5000
    bad = data[:mid] + b"B" + data[mid + 1 :]
    with pytest.raises(rdb.RDBChecksumError, match=f"footer at offset {len(data) - 8}") as info:
        read_all(bad, chunk=4096)
    assert info.value.offset == len(data) - 8


def test_flipped_structure_byte_is_a_corruption_error_with_offset() -> None:
    data = rdb_file(b"\xfe\x00\x10" + rdb_str(b"h") + rdb_str(listpack([b"f", b"v"])))
    pos = data.index(b"\x81f")  # the entry encoding byte of "f" in the listpack
    bad = data[:pos] + b"\xf9" + data[pos + 1 :]
    with pytest.raises(rdb.RDBCorruptError, match=r"corrupt RDB at offset \d+: bad hash listpack") as info:
        read_all(bad)
    assert info.value.offset is not None and 11 <= info.value.offset <= pos


def test_a_failed_reader_keeps_failing() -> None:
    reader = rdb.RDBReader()
    with pytest.raises(rdb.RDBCorruptError) as info:
        reader.feed(b"NOTREDIS!" + b"\x00" * 10)
    with pytest.raises(rdb.RDBCorruptError) as again:
        reader.feed(b"more")
    assert again.value is info.value
    with pytest.raises(rdb.RDBCorruptError):
        reader.finish()


def test_bad_magic_and_version() -> None:
    with pytest.raises(rdb.RDBCorruptError, match="expected magic 'REDIS' at offset 0"):
        read_all(b"RESP0010" + b"\x00" * 20)
    with pytest.raises(rdb.RDBCorruptError, match="bad RDB version"):
        read_all(b"REDIS00x1" + b"\xff" + b"\x00" * 8)
    with pytest.raises(rdb.RDBTruncatedError, match="9-byte header"):
        read_all(b"REDI")


def test_random_corruption_never_crashes_the_reader() -> None:
    data = rdb.dump_rdb_bytes(varied_keyspace())
    rnd = random.Random(11)
    for _ in range(150):
        bad = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            bad[rnd.randrange(9, len(bad))] = rnd.randrange(256)
        if bad == data:
            continue
        with pytest.raises(rdb.RDBError):
            read_all(bytes(bad), chunk=rnd.choice((None, 512, 65536)))


# -- interop with a real redis-server -------------------------------------------------------------


def redis_binaries() -> tuple[str, str]:
    server, check = shutil.which("redis-server"), shutil.which("redis-check-rdb")
    if server is None or check is None:
        pytest.fail(
            "redis-server / redis-check-rdb are not installed: `make test` installs them "
            "(Debian's redis-server and redis-tools; the interop tests need a real Redis 7.x)"
        )
    return server, check


class RedisServer:
    """A real redis-server on a free port in ``directory``, stopped by its PID."""

    def __init__(self, directory: Path, *extra: str):
        self.dir = directory
        self.port = free_port()
        server, _ = redis_binaries()
        self.log = directory / "redis.log"
        self.proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory)]
            + ["--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no", "--logfile", str(self.log), *extra],
        )
        try:
            wait_until(self._ready, timeout=15, what=f"redis-server on port {self.port}")
        except Exception:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited: {self.log.read_text() if self.log.exists() else ''}")
        return self.client().ping()

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def redis_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "redis"
    d.mkdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def redis_contents(server: RedisServer) -> dict[tuple[int, bytes], tuple[Any, int | None]]:
    """Everything a real server holds, read with redis-py, in keyspace_contents' form."""
    out: dict[tuple[int, bytes], tuple[Any, int | None]] = {}
    for db in range(16):
        c = server.client(db)
        for key in c.scan_iter(count=1000):
            kind = c.type(key).decode()
            if kind == "string":
                value: Any = ("string", c.get(key))
            elif kind == "list":
                value = ("list", c.lrange(key, 0, -1))
            elif kind == "set":
                value = ("set", c.smembers(key))
            elif kind == "hash":
                value = ("hash", c.hgetall(key))
            elif kind == "zset":
                value = ("zset", dict(c.zrange(key, 0, -1, withscores=True)))
            else:
                raise AssertionError(f"unexpected type {kind}")
            expire = c.execute_command("PEXPIRETIME", key)
            out[(db, key)] = (value, None if expire < 0 else expire)
        c.close()
    return out


def test_redis_loads_our_snapshot(redis_dir: Path) -> None:
    _, check = redis_binaries()
    ks = varied_keyspace()
    ks.dbs[0].access[b"str"] = ks.clock_ms() // 1000 - 10_000  # idle for ~10000 s
    rdb.save_rdb_file(ks, redis_dir / "dump.rdb", access=True, repl_id="b" * 40, repl_offset=99)
    result = subprocess.run([check, str(redis_dir / "dump.rdb")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RDB looks OK" in result.stdout
    server = RedisServer(redis_dir)
    try:
        assert server.client().object("idletime", b"str") >= 10_000  # before anything touches it
        assert redis_contents(server) == keyspace_contents(ks)
        assert "Done loading RDB" in server.log.read_text()
    finally:
        server.stop()


def populate_compact_encodings(server: RedisServer) -> dict[str, str]:
    """Data that makes Redis 7 use each of its encodings; returns key -> expected OBJECT ENCODING."""
    c = server.client()
    c.set("int8", 100)
    c.set("int16", -30000)
    c.set("int32", 2**31 - 1)
    c.set("int64", -(2**62))
    c.set("lzf", "compressible " * 500)
    c.set("short", "hi")
    c.set("binary", bytes(range(256)))
    c.rpush("list-small", 1, "a", -5, 300, 70000, 2**40, "x" * 100, -(2**62), "")
    c.rpush("list-big", *[f"element-{i}-" + "p" * (i % 50) for i in range(3000)])
    c.rpush("list-plain-nodes", "s", "y" * 500, "t", "z" * 2000)
    c.sadd("set-ints", 1, 2, 3, -7, 2**40, 0)
    c.sadd("set-strings", "a", "b", "1")
    c.sadd("set-big", *[f"m{i}" for i in range(500)])
    c.zadd("zset-small", {"a": 1.5, "b": -2, "c": 3, "d": float("inf"), "e": float("-inf"), "f": 0.1})
    c.zadd("zset-big", {f"m{i}": i / 3 for i in range(500)})
    c.hset("hash-small", mapping={"f": "v", "n": 12, "neg": -1, "": ""})
    c.hset("hash-big", mapping={f"f{i}": f"v{i}" for i in range(600)})
    c.hset("hash-long-value", mapping={"f": "v" * 100})
    c.pexpire("short", 3_600_000)
    c.pexpire("zset-small", 7_200_000)
    c7 = server.client(7)
    c7.set("in-db-7", "seven")
    c7.close()
    return {
        "int8": "int",
        "int16": "int",
        "int32": "int",
        "int64": "int",
        "lzf": "raw",
        "short": "embstr",
        "list-small": "quicklist",
        "list-big": "quicklist",
        "list-plain-nodes": "quicklist",
        "set-ints": "intset",
        "set-strings": "hashtable",
        "set-big": "hashtable",
        "zset-small": "listpack",
        "zset-big": "skiplist",
        "hash-small": "listpack",
        "hash-big": "hashtable",
        "hash-long-value": "hashtable",
    }


def test_we_read_redis_snapshots_and_dump_payloads(redis_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small listpack nodes, compressed interior nodes, and a low plain-node threshold so that
    # quicklists contain packed, LZF-compressed and plain nodes.
    server = RedisServer(
        redis_dir,
        "--enable-debug-command",
        "yes",
        "--list-max-listpack-size",
        "16",
        "--list-compress-depth",
        "1",
        "--rdbcompression",
        "yes",
    )
    try:
        c = server.client()
        c.execute_command("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "400")
        encodings = populate_compact_encodings(server)
        for key, encoding in encodings.items():
            assert c.object("encoding", key).decode() == encoding, key
        expected = redis_contents(server)
        payloads = {key: c.dump(key) for (db, key) in expected if db == 0}
        assert c.save()
        data = (redis_dir / "dump.rdb").read_bytes()
        assert data[:9] == b"REDIS0010"
        # Record which value types and string encodings the file made us decode.
        seen: set[Any] = set()
        for t, fn in list(rdb._READERS.items()):
            monkeypatch.setitem(rdb._READERS, t, lambda d, p, t=t, fn=fn: seen.add(t) or fn(d, p))
        special = rdb._read_special_str
        monkeypatch.setattr(rdb, "_read_special_str", lambda d, p, b: seen.add(hex(b)) or special(d, p, b))
        # The whole file, fed in pieces as a replica would receive it.
        reader = rdb.RDBReader()
        entries = []
        for off in range(0, len(data), 777):
            entries += reader.feed(data[off : off + 777])
        entries += reader.finish()
        assert entries_contents(entries) == expected
        assert reader.aux[b"redis-ver"].startswith(b"7.")
        # set (2), hash (4), zset_2 (5), intset (11), hash/zset listpack (16, 17), quicklist 2 (18);
        # int8/16/32 strings (0xc0-0xc2) and LZF (0xc3). Strings (0) are parsed inline.
        assert {2, 4, 5, 11, 16, 17, 18, "0xc0", "0xc1", "0xc2", "0xc3"} <= seen, seen
        ks = Keyspace()
        rdb.load_rdb(ks, data)
        assert keyspace_contents(ks) == expected
        # DUMP payloads (Redis's own encodings) decode to the same values.
        for key, payload in payloads.items():
            assert norm(rdb.decode_value(payload)) == expected[(0, key)][0], key
        # Our DUMP payloads RESTORE into Redis, with REPLACE and ABSTTL.
        mine = varied_keyspace()
        for key, value in mine.dbs[0].data.items():
            c.restore(b"restored:" + key, 0, rdb.encode_value(value))
        c.restore(b"restored:str", 4_000_000_000_000, rdb.encode_value(b"replaced"), replace=True, absttl=True)
        for key, value in mine.dbs[0].data.items():
            got = redis_contents(server)[(0, b"restored:" + key)][0]
            if key == b"str":
                assert got == ("string", b"replaced")
                assert c.execute_command("PEXPIRETIME", b"restored:str") == 4_000_000_000_000
            else:
                assert got == norm(value), key
        with pytest.raises(redis.ResponseError, match="checksum"):
            bad = bytearray(rdb.encode_value(b"x"))
            bad[-1] ^= 1
            c.restore("bad", 0, bytes(bad))
    finally:
        server.stop()
