"""Redis RDB snapshots, sans-I/O: a streaming writer, an incremental reader, DUMP/RESTORE payloads.

Nothing here touches a socket or an event loop; everything works on ``bytes``. The format
is described in docs/persistence-format.md; the short version:

- **We write** RDB version 10 (what Redis 7.0 writes and loads) with plain encodings only:
  strings as raw length-prefixed bytes, lists as ``RDB_TYPE_LIST``, sets as ``RDB_TYPE_SET``,
  sorted sets as ``RDB_TYPE_ZSET_2`` (binary doubles), hashes as ``RDB_TYPE_HASH``; AUX fields,
  ``SELECTDB`` + ``RESIZEDB`` per non-empty database, ``EXPIRETIME_MS`` per key with a TTL,
  optionally ``IDLE``/``FREQ``; ``EOF`` and the CRC-64/Jones of everything before it.
- **We read** everything Redis 7.0-7.4 writes for strings, lists, sets, sorted sets and hashes,
  including the compact encodings (int and LZF strings, ziplist, quicklist, listpack, intset,
  zipmap), every opcode, and verify the checksum (0 means "not computed", as in Redis).
  Streams, module values and 7.4's hashes with field TTLs are refused with an error naming the
  type and key.

Values use the keyspace's types (``bytes``, ``collections.deque``, ``set``, ``dict``, ``ZSet``).

The writer (:class:`RDBWriter`) yields chunks of at most ``chunk_size`` bytes while it walks
the keyspace, and also every ``keys_per_yield`` keys, so a caller can interleave it with
serving clients. By default it copies each database's key->value and key->expiry maps when
it is created (references only: about 50 bytes per key, no values are copied), which makes
the output a point-in-time snapshot even while clients keep writing, on one condition: before
a collection value is modified *in place* (HSET, LPUSH, SADD, ZADD, ... — any write command,
on each key it names) the caller calls :meth:`RDBWriter.before_write`, which serializes that
key's snapshot-time value at once; SWAPDB needs :meth:`RDBWriter.swap_dbs`. Overwrites,
deletions, expiry and FLUSHALL need nothing (the copied maps still reference the old values).
``snapshot=False`` walks the live maps instead, for a caller that does not modify the
keyspace until the walk is over (a forked child, a blocking SAVE).

The reader (:class:`RDBReader`) is fed chunks as they arrive and returns complete entries;
the checksum is only known at the end, so :class:`KeyspaceLoader` builds fresh databases and
swaps them in only once the whole payload has been read and verified.
"""

from __future__ import annotations

import contextlib
import gc
import os
import struct
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from kvcluster.common.crc64 import crc64
from kvcluster.node.keyspace import Database, Keyspace, ZSet

# -- format constants (src/rdb.h) ----------------------------------------------

RDB_VERSION = 10  # what we write: Redis 7.0's version, the newest 7.0 loads
MAX_READ_VERSION = 12  # 7.2 writes 11, 7.4 writes 12
DEFAULT_CHUNK_SIZE = 1 << 17
REDIS_VER = "7.0.0"  # the redis-ver AUX field: the Redis release whose format we write

TYPE_STRING = 0
TYPE_LIST = 1
TYPE_SET = 2
TYPE_ZSET = 3
TYPE_HASH = 4
TYPE_ZSET_2 = 5
TYPE_MODULE_PRE_GA = 6
TYPE_MODULE_2 = 7
TYPE_HASH_ZIPMAP = 9
TYPE_LIST_ZIPLIST = 10
TYPE_SET_INTSET = 11
TYPE_ZSET_ZIPLIST = 12
TYPE_HASH_ZIPLIST = 13
TYPE_LIST_QUICKLIST = 14
TYPE_STREAM_LISTPACKS = 15
TYPE_HASH_LISTPACK = 16
TYPE_ZSET_LISTPACK = 17
TYPE_LIST_QUICKLIST_2 = 18
TYPE_STREAM_LISTPACKS_2 = 19
TYPE_SET_LISTPACK = 20
TYPE_STREAM_LISTPACKS_3 = 21
TYPE_HASH_METADATA_PRE_GA = 22
TYPE_HASH_LISTPACK_EX_PRE_GA = 23
TYPE_HASH_METADATA = 24
TYPE_HASH_LISTPACK_EX = 25

OP_SLOT_INFO = 244
OP_FUNCTION2 = 245
OP_FUNCTION_PRE_GA = 246
OP_MODULE_AUX = 247
OP_IDLE = 248
OP_FREQ = 249
OP_AUX = 250
OP_RESIZEDB = 251
OP_EXPIRETIME_MS = 252
OP_EXPIRETIME = 253
OP_SELECTDB = 254
OP_EOF = 255

_QUICKLIST_NODE_PLAIN = 1
_QUICKLIST_NODE_PACKED = 2

_UNSUPPORTED_TYPES = {
    TYPE_MODULE_PRE_GA: "module value (4.0 release-candidate format)",
    TYPE_STREAM_LISTPACKS: "stream",
    TYPE_STREAM_LISTPACKS_2: "stream",
    TYPE_STREAM_LISTPACKS_3: "stream",
    TYPE_HASH_METADATA_PRE_GA: "hash with field TTLs",
    TYPE_HASH_LISTPACK_EX_PRE_GA: "hash with field TTLs",
    TYPE_HASH_METADATA: "hash with field TTLs",
    TYPE_HASH_LISTPACK_EX: "hash with field TTLs",
}

_MODULE_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# -- errors ----------------------------------------------------------------------


class RDBError(ValueError):
    """A snapshot or DUMP payload that cannot be loaded; ``offset`` is the byte it was noticed at."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.offset = offset


class RDBCorruptError(RDBError):
    """Bytes that do not follow the format (bad magic, bad encoding, bad compact blob...)."""


class RDBTruncatedError(RDBError):
    """The data ended before the snapshot did."""


class RDBChecksumError(RDBError):
    """The CRC-64 footer does not match the data."""


class RDBUnsupportedError(RDBError):
    """A well-formed value of a type we do not support (stream, module, hash with field TTLs)."""


class _NeedMore(Exception):
    """The buffer ends before the item being parsed: ``end`` is how far it must reach."""

    def __init__(self, end: int, what: str):
        self.end = end
        self.what = what


class _Corrupt(Exception):
    def __init__(self, pos: int, message: str):
        self.pos = pos
        self.message = message


class _BlobError(Exception):
    pass


# -- writing: primitives ---------------------------------------------------------

# Length prefixes for 0..16383, the two short forms (6-bit, 14-bit big-endian).
_LEN: list[bytes] = [bytes([n]) for n in range(64)] + [bytes([0x40 | (n >> 8), n & 0xFF]) for n in range(64, 16384)]
_pack_q = struct.Struct("<q").pack
_pack_d = struct.Struct("<d").pack


def _len_bytes(n: int) -> bytes:
    if n < 16384:
        return _LEN[n]
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _put_str(buf: bytearray, s: bytes) -> None:
    n = len(s)
    buf += _LEN[n] if n < 16384 else _len_bytes(n)
    buf += s


def _put_list(buf: bytearray, value: Any) -> None:
    buf += _len_bytes(len(value))
    for e in value:
        n = len(e)
        buf += _LEN[n] if n < 16384 else _len_bytes(n)
        buf += e


def _put_zset(buf: bytearray, value: ZSet) -> None:
    items = value.dict
    buf += _len_bytes(len(items))
    for m, score in items.items():
        n = len(m)
        buf += _LEN[n] if n < 16384 else _len_bytes(n)
        buf += m
        buf += _pack_d(score)


def _put_hash(buf: bytearray, value: dict[bytes, bytes]) -> None:
    buf += _len_bytes(len(value))
    for f, v in value.items():
        n = len(f)
        buf += _LEN[n] if n < 16384 else _len_bytes(n)
        buf += f
        n = len(v)
        buf += _LEN[n] if n < 16384 else _len_bytes(n)
        buf += v


# Python class of a value -> (RDB type byte, payload writer). Plain encodings only.
_WRITERS: dict[type, tuple[int, Any]] = {
    bytes: (TYPE_STRING, _put_str),
    deque: (TYPE_LIST, _put_list),
    set: (TYPE_SET, _put_list),
    ZSet: (TYPE_ZSET_2, _put_zset),
    dict: (TYPE_HASH, _put_hash),
}


def _writer_for(value: Any) -> tuple[int, Any]:
    w = _WRITERS.get(value.__class__)
    if w is None:
        raise TypeError(f"cannot serialize a {type(value).__name__} value to RDB")
    return w


def encode_value(value: Any) -> bytes:
    """The DUMP payload of ``value``: type byte, value, RDB version (2 bytes LE), CRC-64 (8 bytes LE)."""
    rdb_type, put = _writer_for(value)
    buf = bytearray((rdb_type,))
    put(buf, value)
    buf += RDB_VERSION.to_bytes(2, "little")
    buf += crc64(buf).to_bytes(8, "little")
    return bytes(buf)


def _aux_value(value: str | bytes | int) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


# -- writing: the snapshot -------------------------------------------------------


class RDBWriter:
    """A whole-keyspace snapshot as RDB, produced as an iterator of bounded chunks.

    Iterating (``for chunk in writer``) walks the keyspace once; each chunk is at most
    ``chunk_size`` bytes, and control also returns to the caller every ``keys_per_yield``
    keys. With ``snapshot=True`` (the default) the content is the keyspace as it was when the
    writer was created, provided :meth:`before_write` / :meth:`swap_dbs` are called as the
    module docstring says. ``access=True`` adds each key's IDLE (LRU keyspace) or FREQ (LFU
    keyspace) opcode, as Redis does when maxmemory-policy is an LRU or LFU one.

    The ``repl_*`` arguments become the AUX fields Redis uses to resume replication after a
    restart (``repl-stream-db``, ``repl-id``, ``repl-offset``); ``aux`` adds more fields.
    """

    def __init__(
        self,
        keyspace: Keyspace,
        *,
        snapshot: bool = True,
        access: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        keys_per_yield: int = 1024,
        repl_id: str | None = None,
        repl_offset: int | None = None,
        repl_stream_db: int | None = None,
        aof_base: bool = False,
        used_mem: int = 0,
        ctime: int | None = None,
        aux: Mapping[str | bytes, str | bytes | int] | None = None,
    ):
        if chunk_size < 64:
            raise ValueError("chunk_size must be at least 64 bytes")
        self.keyspace = keyspace
        self.chunk_size = chunk_size
        self.keys_per_yield = max(1, keys_per_yield)
        self.snapshot = snapshot
        self.keys_written = 0
        self.bytes_written = 0
        self.crc = 0
        self._started = False
        self._finished = False
        fields: dict[bytes, bytes] = {
            b"redis-ver": REDIS_VER.encode(),
            b"redis-bits": b"64",
            b"ctime": _aux_value(int(time.time()) if ctime is None else ctime),
            b"used-mem": _aux_value(used_mem),
        }
        if repl_id is not None:
            fields[b"repl-stream-db"] = _aux_value(repl_stream_db or 0)
            fields[b"repl-id"] = _aux_value(repl_id)
            fields[b"repl-offset"] = _aux_value(repl_offset or 0)
        fields[b"aof-base"] = b"1" if aof_base else b"0"
        for k, v in (aux or {}).items():
            fields[_aux_value(k)] = _aux_value(v)
        self._aux = fields
        # The access clock, read once: IDLE is relative to the moment of the snapshot.
        self._access = access
        self._lfu = keyspace.lfu
        self._now_s = keyspace.clock_ms() // 1000
        dbs = keyspace.dbs
        if snapshot:
            # Point-in-time copies of the maps (references, not values); walked by popping,
            # so before_write can take a key out of the walk by popping it first.
            self._snap: list[dict[bytes, Any] | None] = [db.data.copy() if db.data else None for db in dbs]
            self._exps: list[dict[bytes, int]] = [db.expires.copy() if db.data and db.expires else {} for db in dbs]
        else:
            self._snap = [db.data if db.data else None for db in dbs]
            self._exps = [db.expires for db in dbs]
        self._sizes = [(len(s), len(e)) if s else (0, 0) for s, e in zip(self._snap, self._exps, strict=True)]
        # Records of keys taken out of the walk by before_write, per snapshot database.
        self._side: list[bytearray | None] = [None] * len(dbs)
        # Live database index -> snapshot database index (SWAPDB moves values between them).
        self._live_to_snap = list(range(len(dbs)))

    # -- hooks for a caller that keeps serving writes --------------------------

    def before_write(self, db_index: int, key: bytes) -> None:
        """Call before ``key`` of live database ``db_index`` is modified in place.

        If the key is still waiting in the walk, its snapshot-time value is serialized now
        (into a side buffer emitted with its database), so later mutations cannot leak into
        the snapshot. Cheap when the key was already written or did not exist at the start.
        """
        if not self.snapshot:
            raise RuntimeError("before_write needs RDBWriter(snapshot=True)")
        if self._finished:
            return
        i = self._live_to_snap[db_index]
        snap = self._snap[i]
        if not snap:
            return
        value = snap.pop(key, None)
        if value is None or (not value and value.__class__ is not bytes):
            return
        side = self._side[i]
        if side is None:
            side = self._side[i] = bytearray()
        self._put_record(side, i, db_index, key, value)
        self.keys_written += 1

    def swap_dbs(self, first: int, second: int) -> None:
        """Call on SWAPDB: the live databases now hold each other's snapshot-time values."""
        m = self._live_to_snap
        m[first], m[second] = m[second], m[first]

    # -- output ------------------------------------------------------------------

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks()

    def _put_record(self, buf: bytearray, snap_index: int, live_index: int, key: bytes, value: Any) -> None:
        expire = self._exps[snap_index].get(key)
        if expire is not None:
            buf += b"\xfc"
            buf += _pack_q(expire)
        if self._access:
            self._put_access(buf, live_index, key)
        rdb_type, put = _writer_for(value)
        buf.append(rdb_type)
        _put_str(buf, key)
        put(buf, value)

    def _put_access(self, buf: bytearray, db_index: int, key: bytes) -> None:
        word = self.keyspace.dbs[db_index].access.get(key)
        if self._lfu:
            buf += b"\xf9"
            buf.append(self.keyspace.lfu_counter(word))
        elif word is not None:
            buf += b"\xf8"
            buf += _len_bytes(max(0, self._now_s - word))

    def chunks(self) -> Iterator[bytes]:
        """The RDB bytes, in chunks of at most ``chunk_size``; the last one ends with the CRC."""
        if self._started:
            raise RuntimeError("an RDBWriter produces its output once")
        self._started = True
        cs = self.chunk_size
        kpy = self.keys_per_yield
        buf = bytearray(b"REDIS%04d" % RDB_VERSION)
        for k, v in self._aux.items():
            buf.append(OP_AUX)
            _put_str(buf, k)
            _put_str(buf, v)
        since_yield = 0
        access = self._access
        for i, snap in enumerate(self._snap):
            if not snap and not self._side[i]:
                continue
            nkeys, nexp = self._sizes[i]
            buf.append(OP_SELECTDB)
            buf += _len_bytes(i)
            buf.append(OP_RESIZEDB)
            buf += _len_bytes(nkeys)
            buf += _len_bytes(nexp)
            exps = self._exps[i]
            live = self._live_to_snap.index(i)  # where the access clock of these keys lives now
            # Snapshot mode pops, so that before_write (between yields) finds only keys to come.
            pairs = _pop_all(snap) if self.snapshot else iter(snap.items()) if snap else iter(())
            written = 0
            for key, value in pairs:
                if value.__class__ is bytes:
                    # The common case, inlined: [expire] [access] 0x00 key value.
                    if exps:
                        expire = exps.get(key)
                        if expire is not None:
                            buf += b"\xfc"
                            buf += _pack_q(expire)
                    if access:
                        self._put_access(buf, live, key)
                    buf += b"\x00"
                    n = len(key)
                    buf += _LEN[n] if n < 16384 else _len_bytes(n)
                    buf += key
                    n = len(value)
                    buf += _LEN[n] if n < 16384 else _len_bytes(n)
                    if n <= cs:
                        buf += value
                    else:  # a huge string goes out in slices, never copied whole
                        yield from self._flush(buf, whole=True)
                        yield from self._slices(value)
                elif not value:
                    continue  # an empty collection: Redis would skip it on load anyway
                else:
                    self._put_record(buf, i, live, key, value)
                written += 1
                since_yield += 1
                if len(buf) >= cs or since_yield >= kpy:
                    self.keys_written += written
                    written = 0
                    yield from self._flush(buf, whole=since_yield >= kpy)
                    since_yield = 0
            self.keys_written += written
            if self.snapshot:
                self._snap[i] = None
            side = self._side[i]
            if side:
                self._side[i] = None
                buf += side
                if len(buf) >= cs:
                    yield from self._flush(buf, whole=False)
        self._finished = True
        buf.append(OP_EOF)
        yield from self._flush(buf, whole=True)
        trailer = self.crc.to_bytes(8, "little")
        self.bytes_written += 8
        yield trailer

    def _slices(self, data: bytes) -> Iterator[bytes]:
        cs = self.chunk_size
        for off in range(0, len(data), cs):
            chunk = data[off : off + cs]
            self.crc = crc64(chunk, self.crc)
            self.bytes_written += len(chunk)
            yield chunk

    def _flush(self, buf: bytearray, whole: bool) -> Iterator[bytes]:
        """Yield ``buf`` in ``chunk_size`` pieces (all of it if ``whole``, else whole pieces only)."""
        cs = self.chunk_size
        n = len(buf)
        end = n if whole else n - n % cs
        if not end:
            return
        if end <= cs:
            chunk = bytes(buf) if end == n else bytes(buf[:end])
            pieces = [chunk]
        else:
            with memoryview(buf) as mv:
                pieces = [bytes(mv[off : min(off + cs, end)]) for off in range(0, end, cs)]
        del buf[:end]
        for chunk in pieces:
            self.crc = crc64(chunk, self.crc)
            self.bytes_written += len(chunk)
            yield chunk


def _pop_all(d: dict[bytes, Any]) -> Iterator[tuple[bytes, Any]]:
    while d:  # re-checked after every yield: before_write may have emptied it
        yield d.popitem()


def dump_rdb(keyspace: Keyspace, **options: Any) -> Iterator[bytes]:
    """The keyspace as RDB chunks: ``RDBWriter(keyspace, **options)`` iterated."""
    return iter(RDBWriter(keyspace, **options))


def dump_rdb_bytes(keyspace: Keyspace, **options: Any) -> bytes:
    """The whole snapshot in memory (tests, small keyspaces)."""
    return b"".join(RDBWriter(keyspace, **options))


def save_rdb_file(keyspace: Keyspace, path: str | os.PathLike[str], **options: Any) -> RDBWriter:
    """Write a snapshot to ``path`` atomically (temp file, fsync, rename), blocking; returns the writer.

    Options are :class:`RDBWriter`'s; by default the live maps are walked (``snapshot=False``),
    since nothing else runs while this does.
    """
    options.setdefault("snapshot", False)
    options.setdefault("chunk_size", 1 << 20)
    writer = RDBWriter(keyspace, **options)
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            for chunk in writer:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a crash
    finally:
        os.close(dir_fd)
    return writer


# -- reading: LZF ----------------------------------------------------------------


def lzf_decompress(src: bytes, out_len: int) -> bytes:
    """Decompress liblzf data (Redis's LZF string encoding) that must expand to ``out_len`` bytes."""
    out = bytearray()
    olen = 0  # len(out), tracked to save a call per token
    i = 0
    n = len(src)
    try:
        while i < n:
            ctrl = src[i]
            i += 1
            if ctrl < 32:  # a literal run of ctrl + 1 bytes
                j = i + ctrl + 1
                if j > n:
                    raise _BlobError(f"literal run of {ctrl + 1} bytes at byte {i - 1} overruns the input")
                out += src[i:j]
                olen += j - i
                i = j
                continue
            # A back reference: 3 bits of length - 2 (7: one more byte of it), 13 bits of distance - 1.
            length = ctrl >> 5
            if length == 7:
                length += src[i]
                i += 1
            length += 2
            dist = ((ctrl & 0x1F) << 8) + src[i] + 1
            i += 1
            start = olen - dist
            if start < 0:
                raise _BlobError(f"back reference {dist} bytes back, only {olen} decompressed")
            if dist >= length:
                out += out[start : start + length]
            else:  # overlapping: the last ``dist`` bytes repeat
                pattern = out[start:]
                reps, rest = divmod(length, dist)
                out += pattern * reps + pattern[:rest]
            olen += length
    except IndexError:
        raise _BlobError("back reference cut short at the end of the input") from None
    if olen != out_len:
        raise _BlobError(f"decompressed to {olen} bytes, declared {out_len}")
    return bytes(out)


# -- reading: compact blobs (a string holding a ziplist, listpack, intset or zipmap) -------

_INT_STR: list[bytes] = [b"%d" % i for i in range(128)]


def _lp_backlen_size(entry_len: int) -> int:
    # Bytes of the reversed length that ends every listpack entry (lpEncodeBacklen's bounds).
    if entry_len <= 127:
        return 1
    if entry_len < 16383:
        return 2
    if entry_len < 2097151:
        return 3
    if entry_len < 268435455:
        return 4
    return 5


def listpack_entries(lp: bytes) -> list[bytes]:
    """The entries of a listpack, integers rendered as decimal strings."""
    n = len(lp)
    if n < 7:
        raise _BlobError(f"a listpack is at least 7 bytes, this one is {n}")
    total = int.from_bytes(lp[0:4], "little")
    if total != n:
        raise _BlobError(f"header says {total} bytes, blob has {n}")
    count = lp[4] | (lp[5] << 8)
    out: list[bytes] = []
    app = out.append
    p = 6
    last = n - 1
    while p < last:
        e = lp[p]
        if e < 0x80:  # 7-bit unsigned integer
            app(_INT_STR[e])
            p += 2
        elif e < 0xC0:  # string, 6-bit length (the entry is under 128 bytes: a 1-byte backlen)
            s = p + 1
            p = s + (e & 0x3F)
            app(lp[s:p])
            p += 1
        elif e < 0xE0:  # 13-bit signed integer
            v = ((e & 0x1F) << 8) | lp[p + 1]
            app(b"%d" % (v - 8192 if v >= 4096 else v))
            p += 3
        elif e < 0xF0:  # string, 12-bit length
            ln = ((e & 0x0F) << 8) | lp[p + 1]
            s = p + 2
            p = s + ln
            app(lp[s:p])
            p += _lp_backlen_size(ln + 2)
        elif e == 0xF0:  # string, 32-bit length
            ln = int.from_bytes(lp[p + 1 : p + 5], "little")
            s = p + 5
            p = s + ln
            app(lp[s:p])
            p += _lp_backlen_size(ln + 5)
        elif e <= 0xF4:  # 16/24/32/64-bit signed integer
            size = (2, 3, 4, 8)[e - 0xF1]
            app(b"%d" % int.from_bytes(lp[p + 1 : p + 1 + size], "little", signed=True))
            p += size + 2
        else:
            raise _BlobError(f"bad entry encoding 0x{e:02x} at byte {p}")
    if p != last or lp[last] != 0xFF:
        raise _BlobError(f"entries overrun the end marker at byte {last}")
    if count != 65535 and count != len(out):
        raise _BlobError(f"header says {count} entries, found {len(out)}")
    return out


def ziplist_entries(zl: bytes) -> list[bytes]:
    """The entries of a (pre-7.0) ziplist, integers rendered as decimal strings."""
    n = len(zl)
    if n < 11:
        raise _BlobError(f"a ziplist is at least 11 bytes, this one is {n}")
    total = int.from_bytes(zl[0:4], "little")
    if total != n:
        raise _BlobError(f"header says {total} bytes, blob has {n}")
    count = zl[8] | (zl[9] << 8)
    out: list[bytes] = []
    app = out.append
    p = 10
    last = n - 1
    while p < last:
        p += 1 if zl[p] < 254 else 5  # the previous entry's length
        e = zl[p]
        if e < 0x40:
            s = p + 1
            p = s + e
            app(zl[s:p])
        elif e < 0x80:
            s = p + 2
            p = s + (((e & 0x3F) << 8) | zl[p + 1])
            app(zl[s:p])
        elif e == 0x80:
            s = p + 5
            p = s + int.from_bytes(zl[p + 1 : s], "big")
            app(zl[s:p])
        elif 0xF1 <= e <= 0xFD:  # 4-bit immediate 0..12
            app(_INT_STR[(e & 0x0F) - 1])
            p += 1
        else:
            size = _ZIPLIST_INT_SIZES.get(e)
            if size is None:
                raise _BlobError(f"bad entry encoding 0x{e:02x} at byte {p}")
            app(b"%d" % int.from_bytes(zl[p + 1 : p + 1 + size], "little", signed=True))
            p += 1 + size
    if p != last or zl[last] != 0xFF:
        raise _BlobError(f"entries overrun the end marker at byte {last}")
    if count != 65535 and count != len(out):
        raise _BlobError(f"header says {count} entries, found {len(out)}")
    return out


_ZIPLIST_INT_SIZES = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}
_INTSET_CODES = {2: "h", 4: "i", 8: "q"}


def intset_members(blob: bytes) -> list[bytes]:
    """The members of an intset, as decimal strings."""
    if len(blob) < 8:
        raise _BlobError(f"an intset header is 8 bytes, blob has {len(blob)}")
    width = int.from_bytes(blob[0:4], "little")
    count = int.from_bytes(blob[4:8], "little")
    code = _INTSET_CODES.get(width)
    if code is None:
        raise _BlobError(f"bad integer width {width}")
    if len(blob) != 8 + width * count:
        raise _BlobError(f"{count} integers of {width} bytes need {8 + width * count} bytes, blob has {len(blob)}")
    return [b"%d" % v for v in struct.unpack_from(f"<{count}{code}", blob, 8)]


def zipmap_pairs(zm: bytes) -> list[bytes]:
    """The fields and values (alternating) of a (pre-2.6) zipmap."""

    def length(p: int) -> tuple[int, int]:
        b = zm[p]
        if b < 254:
            return b, p + 1
        if b == 254:
            return int.from_bytes(zm[p + 1 : p + 5], "little"), p + 5
        raise _BlobError(f"bad length byte 0x{b:02x} at byte {p}")

    out: list[bytes] = []
    p = 1
    while zm[p] != 0xFF:
        klen, p = length(p)
        out.append(zm[p : p + klen])
        p += klen
        vlen, p = length(p)
        free = zm[p]
        p += 1
        out.append(zm[p : p + vlen])
        p += vlen + free
    if p != len(zm) - 1:
        raise _BlobError("data after the end marker")
    return out


# -- reading: stream primitives ------------------------------------------------
# Each takes (data, position) and returns (value, new position); running out of data raises
# _NeedMore (or IndexError, which the record loop treats the same), bad bytes raise _Corrupt.


def _read_len(d: bytes, p: int) -> tuple[int, int]:
    b = d[p]
    if b < 0x40:
        return b, p + 1
    if b < 0x80:
        return ((b & 0x3F) << 8) | d[p + 1], p + 2
    if b == 0x80:
        if p + 5 > len(d):
            raise _NeedMore(p + 5, "a 32-bit length")
        return int.from_bytes(d[p + 1 : p + 5], "big"), p + 5
    if b == 0x81:
        if p + 9 > len(d):
            raise _NeedMore(p + 9, "a 64-bit length")
        return int.from_bytes(d[p + 1 : p + 9], "big"), p + 9
    raise _Corrupt(p, f"expected a length, found byte 0x{b:02x}")


def _read_str(d: bytes, p: int) -> tuple[bytes, int]:
    b = d[p]
    if b < 0x40:
        s = p + 1
        e = s + b
    elif b < 0x80:
        s = p + 2
        e = s + (((b & 0x3F) << 8) | d[p + 1])
    elif b == 0x80 or b == 0x81:
        ln, s = _read_len(d, p)
        e = s + ln
    else:
        return _read_special_str(d, p, b)
    if e > len(d):
        raise _NeedMore(e, f"a string of {e - s} bytes")
    return d[s:e], e


def _read_special_str(d: bytes, p: int, b: int) -> tuple[bytes, int]:
    if 0xC0 <= b <= 0xC2:  # an integer stored in 1, 2 or 4 bytes
        size = 1 << (b - 0xC0)
        e = p + 1 + size
        if e > len(d):
            raise _NeedMore(e, f"a {size * 8}-bit integer string")
        return b"%d" % int.from_bytes(d[p + 1 : e], "little", signed=True), e
    if b == 0xC3:  # LZF: compressed length, original length, data
        clen, q = _read_len(d, p + 1)
        ulen, q = _read_len(d, q)
        e = q + clen
        if e > len(d):
            raise _NeedMore(e, f"an LZF string of {clen} compressed bytes")
        try:
            return lzf_decompress(d[q:e], ulen), e
        except _BlobError as exc:
            raise _Corrupt(q, f"bad LZF data: {exc}") from None
    raise _Corrupt(p, f"unknown string encoding 0x{b:02x}")


def _read_strs(d: bytes, p: int, n: int, what: str) -> tuple[list[bytes], int]:
    """``n`` consecutive strings (the body of plain lists, sets and hashes)."""
    end = len(d)
    if p + n > end:
        raise _NeedMore(p + n, f"{n} {what}")  # every string is at least one byte
    out: list[bytes] = []
    app = out.append
    for _ in range(n):
        b = d[p]
        if b < 0x40:  # the short form, inlined
            e = p + 1 + b
            if e > end:
                raise _NeedMore(e, f"a string of {b} bytes")
            app(d[p + 1 : e])
            p = e
        else:
            s, p = _read_str(d, p)
            app(s)
    return out, p


def _blob(parse: Any, d: bytes, p: int, kind: str) -> tuple[list[bytes], int]:
    """Read a string and decode it as a compact ``kind`` blob."""
    blob, q = _read_str(d, p)
    try:
        return parse(blob), q
    except (_BlobError, IndexError) as e:
        why = str(e) if isinstance(e, _BlobError) else "it ends in the middle of an entry"
        raise _Corrupt(p, f"bad {kind} ({len(blob)} bytes): {why}") from None


def _score(s: bytes, p: int) -> float:
    try:
        v = float(s)
    except ValueError:
        raise _Corrupt(p, f"sorted set score {s[:40]!r} is not a number") from None
    if v != v:
        raise _Corrupt(p, "sorted set score is NaN")
    return v


def _new_zset(scores: dict[bytes, float]) -> ZSet:
    z = ZSet()
    z.dict = scores
    z.sorted.update([(s, m) for m, s in scores.items()])
    return z


def _pairs_to_zset(items: list[bytes], p: int) -> ZSet:
    if len(items) % 2:
        raise _Corrupt(p, "sorted set blob has an odd number of entries")
    members = items[0::2]
    scores = dict(zip(members, [_score(s, p) for s in items[1::2]], strict=True))
    if len(scores) != len(members):
        raise _Corrupt(p, "duplicate sorted set members")
    return _new_zset(scores)


def _pairs_to_hash(items: list[bytes], p: int) -> dict[bytes, bytes]:
    if len(items) % 2:
        raise _Corrupt(p, "hash blob has an odd number of entries")
    h = dict(zip(items[0::2], items[1::2], strict=True))
    if len(h) * 2 != len(items):
        raise _Corrupt(p, "duplicate hash fields")
    return h


def _to_set(items: list[bytes], p: int) -> set[bytes]:
    s = set(items)
    if len(s) != len(items):
        raise _Corrupt(p, "duplicate set members")
    return s


# -- reading: values, one function per RDB type ----------------------------------


def _r_string(d: bytes, p: int) -> tuple[bytes, int]:
    return _read_str(d, p)


def _r_list(d: bytes, p: int) -> tuple[deque[bytes], int]:
    n, p = _read_len(d, p)
    items, p = _read_strs(d, p, n, "list elements")
    return deque(items), p


def _r_set(d: bytes, p: int) -> tuple[set[bytes], int]:
    start = p
    n, p = _read_len(d, p)
    items, p = _read_strs(d, p, n, "set members")
    return _to_set(items, start), p


def _r_hash(d: bytes, p: int) -> tuple[dict[bytes, bytes], int]:
    start = p
    n, p = _read_len(d, p)
    items, p = _read_strs(d, p, 2 * n, "hash fields and values")
    return _pairs_to_hash(items, start), p


def _r_zset_2(d: bytes, p: int) -> tuple[ZSet, int]:
    start = p
    n, p = _read_len(d, p)
    if p + 9 * n > len(d):
        raise _NeedMore(p + 9 * n, f"{n} sorted set members")
    scores: dict[bytes, float] = {}
    unpack = _unpack_d
    for _ in range(n):
        m, p = _read_str(d, p)
        if p + 8 > len(d):
            raise _NeedMore(p + 8, "a binary score")
        (v,) = unpack(d, p)
        if v != v:
            raise _Corrupt(p, "sorted set score is NaN")
        scores[m] = v
        p += 8
    if len(scores) != n:
        raise _Corrupt(start, "duplicate sorted set members")
    return _new_zset(scores), p


_unpack_d = struct.Struct("<d").unpack_from


def _r_zset(d: bytes, p: int) -> tuple[ZSet, int]:
    start = p
    n, p = _read_len(d, p)
    scores: dict[bytes, float] = {}
    for _ in range(n):
        m, p = _read_str(d, p)
        b = d[p]
        if b == 253:
            raise _Corrupt(p, "sorted set score is NaN")
        if b == 254:
            v = float("inf")
            p += 1
        elif b == 255:
            v = float("-inf")
            p += 1
        else:
            e = p + 1 + b
            if e > len(d):
                raise _NeedMore(e, "a score")
            v = _score(d[p + 1 : e], p)
            p = e
        scores[m] = v
    if len(scores) != n:
        raise _Corrupt(start, "duplicate sorted set members")
    return _new_zset(scores), p


def _r_list_ziplist(d: bytes, p: int) -> tuple[deque[bytes], int]:
    items, p = _blob(ziplist_entries, d, p, "ziplist")
    return deque(items), p


def _r_list_quicklist(d: bytes, p: int) -> tuple[deque[bytes], int]:
    n, p = _read_len(d, p)
    out: deque[bytes] = deque()
    for _ in range(n):
        items, p = _blob(ziplist_entries, d, p, "quicklist ziplist node")
        out.extend(items)
    return out, p


def _r_list_quicklist_2(d: bytes, p: int) -> tuple[deque[bytes], int]:
    n, p = _read_len(d, p)
    out: deque[bytes] = deque()
    for _ in range(n):
        at = p
        container, p = _read_len(d, p)
        if container == _QUICKLIST_NODE_PLAIN:  # one large element, stored as is
            s, p = _read_str(d, p)
            out.append(s)
        elif container == _QUICKLIST_NODE_PACKED:
            items, p = _blob(listpack_entries, d, p, "quicklist listpack node")
            out.extend(items)
        else:
            raise _Corrupt(at, f"unknown quicklist node container {container}")
    return out, p


def _r_set_intset(d: bytes, p: int) -> tuple[set[bytes], int]:
    start = p
    items, p = _blob(intset_members, d, p, "intset")
    return _to_set(items, start), p


def _r_set_listpack(d: bytes, p: int) -> tuple[set[bytes], int]:
    start = p
    items, p = _blob(listpack_entries, d, p, "set listpack")
    return _to_set(items, start), p


def _r_zset_ziplist(d: bytes, p: int) -> tuple[ZSet, int]:
    start = p
    items, p = _blob(ziplist_entries, d, p, "sorted set ziplist")
    return _pairs_to_zset(items, start), p


def _r_zset_listpack(d: bytes, p: int) -> tuple[ZSet, int]:
    start = p
    items, p = _blob(listpack_entries, d, p, "sorted set listpack")
    return _pairs_to_zset(items, start), p


def _r_hash_zipmap(d: bytes, p: int) -> tuple[dict[bytes, bytes], int]:
    start = p
    items, p = _blob(zipmap_pairs, d, p, "zipmap")
    return _pairs_to_hash(items, start), p


def _r_hash_ziplist(d: bytes, p: int) -> tuple[dict[bytes, bytes], int]:
    start = p
    items, p = _blob(ziplist_entries, d, p, "hash ziplist")
    return _pairs_to_hash(items, start), p


def _r_hash_listpack(d: bytes, p: int) -> tuple[dict[bytes, bytes], int]:
    start = p
    items, p = _blob(listpack_entries, d, p, "hash listpack")
    return _pairs_to_hash(items, start), p


_READERS: dict[int, Any] = {
    TYPE_STRING: _r_string,
    TYPE_LIST: _r_list,
    TYPE_SET: _r_set,
    TYPE_ZSET: _r_zset,
    TYPE_HASH: _r_hash,
    TYPE_ZSET_2: _r_zset_2,
    TYPE_HASH_ZIPMAP: _r_hash_zipmap,
    TYPE_LIST_ZIPLIST: _r_list_ziplist,
    TYPE_SET_INTSET: _r_set_intset,
    TYPE_ZSET_ZIPLIST: _r_zset_ziplist,
    TYPE_HASH_ZIPLIST: _r_hash_ziplist,
    TYPE_LIST_QUICKLIST: _r_list_quicklist,
    TYPE_HASH_LISTPACK: _r_hash_listpack,
    TYPE_ZSET_LISTPACK: _r_zset_listpack,
    TYPE_LIST_QUICKLIST_2: _r_list_quicklist_2,
    TYPE_SET_LISTPACK: _r_set_listpack,
}


def module_name(module_id: int) -> str:
    """The 9-character name packed in a module type id (the low 10 bits are its encoding version)."""
    return "".join(_MODULE_CHARSET[(module_id >> (64 - 6 * (i + 1))) & 63] for i in range(9))


def _unsupported(t: int, d: bytes, p: int) -> str:
    """Describe an unsupported value type (its module's name, when the id can be read)."""
    if t == TYPE_MODULE_2:
        try:
            module_id, _ = _read_len(d, p)
            return f"module value (module {module_name(module_id)!r})"
        except (_NeedMore, _Corrupt, IndexError):
            return "module value"
    return _UNSUPPORTED_TYPES.get(t, "")


def _skip_module_data(d: bytes, p: int) -> int:
    """Skip a module's self-describing data (opcode, value)* up to its EOF opcode."""
    while True:
        at = p
        op, p = _read_len(d, p)
        if op == 0:  # RDB_MODULE_OPCODE_EOF
            return p
        if op in (1, 2):  # SINT, UINT
            _, p = _read_len(d, p)
        elif op == 3:  # FLOAT
            p += 4
        elif op == 4:  # DOUBLE
            p += 8
        elif op == 5:  # STRING
            _, p = _read_str(d, p)
        else:
            raise _Corrupt(at, f"unknown module data opcode {op}")
        if p > len(d):
            raise _NeedMore(p, "module data")


# -- reading: the snapshot -------------------------------------------------------


class RDBEntry(NamedTuple):
    """One key of a snapshot."""

    db: int
    key: bytes
    value: Any
    expire_ms: int | None  # absolute Unix milliseconds
    idle: int | None = None  # seconds since last access (IDLE opcode: the writer used an LRU policy)
    freq: int | None = None  # LFU counter (FREQ opcode: the writer used an LFU policy)


_HEADER, _BODY, _CHECKSUM, _DONE = range(4)


class RDBReader:
    """Incremental RDB parser: ``feed(chunk)`` returns the entries completed so far.

    After the EOF opcode and the checksum (verified unless it is 0, "not computed"),
    ``done`` is true; bytes after the snapshot are kept in ``unused_data`` (a replication
    stream may continue after it). Call :meth:`finish` when the input ends: it raises
    :class:`RDBTruncatedError` unless the snapshot was complete. Errors carry the absolute
    byte offset. AUX fields land in ``aux``, function libraries (FUNCTION2) in ``functions``,
    module AUX data is skipped (its module names in ``module_aux``).
    """

    def __init__(self, *, databases: int | None = None, verify_checksum: bool = True):
        self.databases = databases
        self.verify_checksum = verify_checksum
        self.version: int | None = None
        self.aux: dict[bytes, bytes] = {}
        self.functions: list[bytes] = []
        self.module_aux: list[str] = []
        self.resize_hints: dict[int, tuple[int, int]] = {}
        self.empty_keys_skipped = 0
        self.checksum: int | None = None  # the footer's value, once read
        self.done = False
        self.unused_data = b""
        self.bytes_read = 0
        self.error: RDBError | None = None
        self._state = _HEADER
        self._data = b""  # unparsed input starts at _data[_pos]
        self._pos = 0
        self._base = 0  # absolute offset of _data[0]
        self._more: list[bytes] = []  # chunks not yet joined into _data
        self._more_len = 0
        self._need = 9  # don't try to parse before this many bytes are available
        self._need_what = "the 9-byte header"
        self._need_at = 0
        self._crc = 0
        self._db = 0
        self._expire: int | None = None
        self._idle: int | None = None
        self._freq: int | None = None

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[RDBEntry]:
        """Add input; returns the entries it completed (possibly none)."""
        if self.error is not None:
            raise self.error
        if self.done:
            if chunk:
                self.unused_data += bytes(chunk)
            return []
        if not chunk:
            return []
        if chunk.__class__ is not bytes:
            chunk = bytes(chunk)
        self.bytes_read += len(chunk)
        self._more.append(chunk)
        self._more_len += len(chunk)
        if len(self._data) - self._pos + self._more_len < self._need:
            return []
        if self._pos < len(self._data):
            data = b"".join([memoryview(self._data)[self._pos :], *self._more])
        elif len(self._more) == 1:
            data = self._more[0]
        else:
            data = b"".join(self._more)
        self._base += self._pos
        self._data = data
        self._pos = 0
        self._more = []
        self._more_len = 0
        out: list[RDBEntry] = []
        self._parse_gc_paused(out)
        return out

    def finish(self) -> list[RDBEntry]:
        """The input has ended: the last entries, or raise unless a whole snapshot was read.

        ``feed`` may hold back a record that is complete but arrived in pieces (it waits for
        enough data to be worth a parse attempt), so the entries returned here count too.
        """
        if self.error is not None:
            raise self.error
        out: list[RDBEntry] = []
        if not self.done and self._more:
            data = b"".join([memoryview(self._data)[self._pos :], *self._more])
            self._base += self._pos
            self._data = data
            self._pos = 0
            self._more = []
            self._more_len = 0
            self._parse_gc_paused(out)
        if self.done:
            return out
        end = self._base + len(self._data)
        raise RDBTruncatedError(
            f"RDB truncated: the data ends at offset {end} but {self._need_what} "
            f"starting at offset {self._need_at} needs more",
            end,
        )

    def _parse_gc_paused(self, out: list[RDBEntry]) -> None:
        if self.error is not None:
            raise self.error
        # The values built here (containers of bytes and floats) cannot form reference
        # cycles, yet allocating millions of them makes the cyclic GC rescan the growing
        # heap over and over: pausing it while a chunk is parsed doubles the load speed.
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            self._parse(out)
        except RDBError as e:
            self.error = e  # the stream is unusable from here on: every later call says why
            raise
        finally:
            if paused:
                gc.enable()

    # -- the parser ------------------------------------------------------------------

    def _header(self, d: bytes, p: int) -> None:
        magic = d[p : p + 5]
        if magic != b"REDIS":
            raise RDBCorruptError(f"not an RDB file: expected magic 'REDIS' at offset 0, found {magic!r}", 0)
        digits = d[p + 5 : p + 9]
        if not digits.isdigit():
            raise RDBCorruptError(f"bad RDB version field {digits!r} at offset 5", 5)
        version = int(digits)
        if not 1 <= version <= MAX_READ_VERSION:
            raise RDBUnsupportedError(
                f"RDB version {version} is not supported (we read 1..{MAX_READ_VERSION}, Redis up to 7.4)", 5
            )
        self.version = version

    def _parse(self, out: list[RDBEntry]) -> None:
        d = self._data
        p = self._pos
        crc_from = p
        try:
            if self._state == _HEADER:
                if len(d) - p < 9:
                    raise _NeedMore(p + 9, "the 9-byte header")
                self._header(d, p)
                p += 9
                self._pos = p
                self._state = _BODY
            if self._state == _BODY:
                p = self._body(d, p, out)
                # _body returns after the EOF opcode.
                self._crc = crc64(memoryview(d)[crc_from:p], self._crc)
                crc_from = p
                self._pos = p
                self._state = _CHECKSUM if self.version >= 5 else _DONE
            if self._state == _CHECKSUM:
                if len(d) - p < 8:
                    raise _NeedMore(p + 8, "the 8-byte checksum")
                stored = int.from_bytes(d[p : p + 8], "little")
                self.checksum = stored
                if self.verify_checksum and stored != 0 and stored != self._crc:
                    raise RDBChecksumError(
                        f"RDB checksum mismatch: the footer at offset {self._base + p} says 0x{stored:016x}, "
                        f"the {self._base + p} bytes before it hash to 0x{self._crc:016x}",
                        self._base + p,
                    )
                p += 8
                self._pos = p
                self._state = _DONE
            if self._state == _DONE:
                self.done = True
                self.unused_data = d[p:]
                self._data = b""
                self._pos = 0
        except (_NeedMore, IndexError) as e:
            p = self._pos
            avail = len(d) - p
            if isinstance(e, _NeedMore):
                self._need = max(2 * avail, e.end - p, 1)
                self._need_what = e.what
            else:
                self._need = max(2 * avail, 1)
                self._need_what = "the record"
            self._need_at = self._base + p
        except _Corrupt as e:
            start = self._pos
            where = ""
            if self._state == _BODY and start < len(d):
                where = f" (in the record starting at offset {self._base + start})"
            offset = self._base + e.pos
            raise RDBCorruptError(f"corrupt RDB at offset {offset}: {e.message}{where}", offset) from None
        finally:
            if self._state in (_HEADER, _BODY) and self._pos > crc_from:
                self._crc = crc64(memoryview(d)[crc_from : self._pos], self._crc)

    def _body(self, d: bytes, p: int, out: list[RDBEntry]) -> int:
        """Parse records from ``p`` until the EOF opcode (returns the position after it).

        The hot loop keeps its state in locals: ``p`` only advances past whole records, and
        on any exception the position and pending opcodes of the last whole record are saved,
        so the next attempt resumes at a record boundary.
        """
        app = out.append
        readers = _READERS
        new_entry = tuple.__new__  # RDBEntry without NamedTuple's Python-level __new__
        n = len(d)
        db, expire, idle, freq = self._db, self._expire, self._idle, self._freq
        try:
            while True:
                t = d[p]
                if t == 0:  # a string: key and value, short forms inlined
                    b = d[p + 1]
                    if b < 0x40:
                        q = p + 2 + b
                        if q > n:
                            raise _NeedMore(q, f"a {b}-byte key")
                        key = d[p + 2 : q]
                    else:
                        key, q = _read_str(d, p + 1)
                    b = d[q]
                    if b < 0x40:
                        e = q + 1 + b
                        if e > n:
                            raise _NeedMore(e, f"the {b}-byte value of key {key[:60]!r}")
                        value = d[q + 1 : e]
                        q = e
                    elif b < 0x80:
                        s = q + 2
                        e = s + (((b & 0x3F) << 8) | d[q + 1])
                        if e > n:
                            raise _NeedMore(e, f"the {e - s}-byte value of key {key[:60]!r}")
                        value = d[s:e]
                        q = e
                    else:
                        value, q = _read_str(d, q)
                elif t < OP_SLOT_INFO:
                    key, q = _read_str(d, p + 1)
                    reader = readers.get(t)
                    if reader is None:
                        self._bad_type(t, key, d, q, p, db)
                    try:
                        value, q = reader(d, q)
                    except _Corrupt as e:
                        raise _Corrupt(e.pos, f"{e.message} (value of key {key[:60]!r}, type {t})") from None
                    if not value:
                        self.empty_keys_skipped += 1
                        expire = idle = freq = None
                        p = q
                        continue
                elif t == OP_EXPIRETIME_MS:
                    q = p + 9
                    if q > n:
                        raise _NeedMore(q, "an 8-byte expire time")
                    expire = int.from_bytes(d[p + 1 : q], "little", signed=True)
                    p = q
                    continue
                else:
                    self._db, self._expire, self._idle, self._freq = db, expire, idle, freq
                    q = self._opcode(t, d, p)
                    db, expire, idle, freq = self._db, self._expire, self._idle, self._freq
                    p = q
                    if t == OP_EOF:
                        return q
                    continue
                app(new_entry(RDBEntry, (db, key, value, expire, idle, freq)))
                expire = idle = freq = None
                p = q
        finally:
            self._pos = p
            self._db, self._expire, self._idle, self._freq = db, expire, idle, freq

    def _bad_type(self, t: int, key: bytes, d: bytes, q: int, p: int, db: int) -> None:
        what = _unsupported(t, d, q)
        if what:
            raise RDBUnsupportedError(
                f"RDB at offset {self._base + p}: key {key[:60]!r} in db {db} is a {what}, "
                "which kvcluster does not support",
                self._base + p,
            )
        raise _Corrupt(p, f"unknown value type {t}")

    def _opcode(self, t: int, d: bytes, p: int) -> int:
        """Parse the opcode record at ``p`` (``t == d[p]``); returns the position after it."""
        q = p + 1
        if t == OP_EXPIRETIME_MS:
            if q + 8 > len(d):
                raise _NeedMore(q + 8, "an 8-byte expire time")
            self._expire = int.from_bytes(d[q : q + 8], "little", signed=True)
            return q + 8
        if t == OP_SELECTDB:
            db, q = _read_len(d, q)
            if self.databases is not None and db >= self.databases:
                raise RDBCorruptError(
                    f"RDB at offset {self._base + p} selects database {db}, but there are only {self.databases}",
                    self._base + p,
                )
            self._db = db
            return q
        if t == OP_RESIZEDB:
            size, q = _read_len(d, q)
            expires, q = _read_len(d, q)
            self.resize_hints[self._db] = (size, expires)
            return q
        if t == OP_AUX:
            k, q = _read_str(d, q)
            v, q = _read_str(d, q)
            self.aux[k] = v
            return q
        if t == OP_EOF:
            return q
        if t == OP_EXPIRETIME:
            if q + 4 > len(d):
                raise _NeedMore(q + 4, "a 4-byte expire time")
            self._expire = int.from_bytes(d[q : q + 4], "little", signed=True) * 1000
            return q + 4
        if t == OP_IDLE:
            self._idle, q = _read_len(d, q)
            return q
        if t == OP_FREQ:
            self._freq = d[q]
            return q + 1
        if t == OP_FUNCTION2:
            code, q = _read_str(d, q)
            self.functions.append(code)
            return q
        if t == OP_MODULE_AUX:
            module_id, q = _read_len(d, q)
            when_op, q = _read_len(d, q)
            if when_op != 2:  # RDB_MODULE_OPCODE_UINT
                raise _Corrupt(q, f"module AUX data with 'when' opcode {when_op}, expected 2")
            _, q = _read_len(d, q)
            q = _skip_module_data(d, q)
            self.module_aux.append(module_name(module_id))
            return q
        if t == OP_SLOT_INFO:  # cluster slot sizes (7.4): a hint we have no use for
            for _ in range(3):
                _, q = _read_len(d, q)
            return q
        if t == OP_FUNCTION_PRE_GA:
            raise RDBUnsupportedError(
                f"RDB at offset {self._base + p}: functions in the Redis 7.0 release-candidate format "
                "are not supported",
                self._base + p,
            )
        raise _Corrupt(p, f"unknown opcode {t}")


def iter_rdb(chunks: Iterable[bytes], *, databases: int | None = None) -> Iterator[RDBEntry]:
    """Every entry of the snapshot in ``chunks``; raises at the end if it was truncated or corrupt.

    Entries come out before the checksum has been verified: use :class:`KeyspaceLoader`
    to load them with all-or-nothing semantics.
    """
    reader = RDBReader(databases=databases)
    for chunk in chunks:
        yield from reader.feed(chunk)
    yield from reader.finish()


def read_file_chunks(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            yield chunk


# -- DUMP / RESTORE payloads -----------------------------------------------------


def decode_value(payload: bytes) -> Any:
    """The value in a DUMP payload (from us or from Redis), after checking its version and CRC.

    Raises :class:`RDBChecksumError` or :class:`RDBUnsupportedError` for a payload Redis's
    RESTORE would reject with "DUMP payload version or checksum are wrong", and
    :class:`RDBCorruptError` for "Bad data format".
    """
    payload = bytes(payload)
    if len(payload) < 11:
        raise RDBCorruptError("DUMP payload too short", 0)
    body_end = len(payload) - 10
    version = payload[body_end] | (payload[body_end + 1] << 8)
    if version > MAX_READ_VERSION:
        raise RDBUnsupportedError(f"DUMP payload of RDB version {version} (we read up to {MAX_READ_VERSION})", body_end)
    stored = int.from_bytes(payload[body_end + 2 :], "little")
    computed = crc64(memoryview(payload)[: body_end + 2])
    if stored != computed:
        raise RDBChecksumError(f"DUMP payload checksum 0x{stored:016x} does not match 0x{computed:016x}", body_end + 2)
    body = payload[:body_end]
    t = body[0]
    reader = _READERS.get(t)
    if reader is None:
        what = _unsupported(t, body, 1)
        if what:
            raise RDBUnsupportedError(f"DUMP payload holds a {what}, which kvcluster does not support", 0)
        raise RDBCorruptError(f"DUMP payload has unknown value type {t}", 0)
    try:
        value, p = reader(body, 1)
    except _Corrupt as e:
        raise RDBCorruptError(f"bad DUMP payload at byte {e.pos}: {e.message}", e.pos) from None
    except (_NeedMore, IndexError):
        raise RDBCorruptError("bad DUMP payload: the value is cut short", body_end) from None
    if p != body_end:
        raise RDBCorruptError(f"bad DUMP payload: {body_end - p} bytes after the value", p)
    return value


# -- loading into a keyspace -------------------------------------------------------


class LoadStats(NamedTuple):
    keys: int  # keys loaded
    expired_skipped: int  # keys already expired at ``now_ms`` and so not loaded
    version: int  # the snapshot's RDB version
    aux: dict[bytes, bytes]
    functions: list[bytes]  # FUNCTION2 payloads (library code), not loaded


class KeyspaceLoader:
    """Load a snapshot into ``keyspace`` all-or-nothing: feed chunks, then :meth:`finish`.

    Entries go into fresh databases; only when the snapshot is complete and its checksum
    verified does :meth:`finish` swap them in (replacing every database's contents). Until
    then, and after any error, the keyspace is untouched. With ``now_ms`` set, keys already
    expired then are dropped, as a Redis master does when it loads; a replica keeps them.
    """

    def __init__(self, keyspace: Keyspace, *, now_ms: int | None = None):
        self.keyspace = keyspace
        self.now_ms = now_ms
        self.reader = RDBReader(databases=len(keyspace.dbs))
        self._fresh: list[Database] = [type(db)(db.id, keyspace) for db in keyspace.dbs]
        self.keys = 0
        self.expired_skipped = 0
        self._finished = False

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        entries = self.reader.feed(chunk)
        if entries:
            self._add(entries)

    def _add(self, entries: list[RDBEntry]) -> None:
        fresh = self._fresh
        now = self.now_ms
        ks = self.keyspace
        for db_index, key, value, expire, idle, freq in entries:
            if expire is not None and now is not None and expire <= now:
                self.expired_skipped += 1
                continue
            db = fresh[db_index]
            if key in db.data:
                raise RDBCorruptError(
                    f"duplicate key {key[:60]!r} in db {db_index} (seen again before offset {self.reader.bytes_read})",
                    self.reader.bytes_read,
                )
            db.set(key, value)
            if expire is not None:
                db.expires[key] = expire
            if idle is not None and not ks.lfu:
                db.access[key] = db.lru_clock - idle
            elif freq is not None and ks.lfu:
                db.access[key] = (ks.lfu_new() & ~0xFF) | freq
            self.keys += 1

    def finish(self) -> LoadStats:
        """Check the snapshot was complete, then replace the keyspace's contents with it."""
        if self._finished:
            raise RuntimeError("KeyspaceLoader.finish called twice")
        last = self.reader.finish()
        if last:
            self._add(last)
        self._finished = True
        ks = self.keyspace
        for db, new in zip(ks.dbs, self._fresh, strict=True):
            ks.signal_db_flushed(db)  # WATCHed keys that existed count as modified
            db.swap_contents(new)
            ks.signal_db_flushed(db)  # ... and so do the ones that exist now
        self._fresh = []
        r = self.reader
        assert r.version is not None
        return LoadStats(self.keys, self.expired_skipped, r.version, r.aux, r.functions)


def load_rdb(keyspace: Keyspace, data: bytes | Iterable[bytes], *, now_ms: int | None = None) -> LoadStats:
    """Load a whole snapshot (bytes, or an iterable of chunks) into ``keyspace``, all-or-nothing."""
    loader = KeyspaceLoader(keyspace, now_ms=now_ms)
    if isinstance(data, bytes | bytearray | memoryview):
        loader.feed(data)
    else:
        for chunk in data:
            loader.feed(chunk)
    return loader.finish()


def load_rdb_file(keyspace: Keyspace, path: str | os.PathLike[str], *, now_ms: int | None = None) -> LoadStats:
    """Load the snapshot file at ``path`` into ``keyspace``, all-or-nothing (blocking)."""
    return load_rdb(keyspace, read_file_chunks(path), now_ms=now_ms)
