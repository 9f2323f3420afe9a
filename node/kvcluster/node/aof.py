"""The append-only file, sans-I/O: Redis 7's multi-part layout, our record framing, the reader.

Layout (as Redis 7): a directory (``appenddirname``) holding a *manifest*
(``<appendfilename>.manifest``) that lists one *base* file (a snapshot: RDB when
``aof-use-rdb-preamble yes``, else commands) and the *incremental* files written
since, in order::

    file appendonly.aof.3.base.rdb seq 3 type b
    file appendonly.aof.5.incr.aof seq 5 type i
    file appendonly.aof.6.incr.aof seq 6 type i

Incremental files hold the replication stream (the effects of writes, as RESP
commands) framed in *batches*, each preceded by an annotation line that Redis's
own loader skips (lines starting with ``#``)::

    #kv-replid <40 hex>\\r\\n                    the replication id of what follows
    #kv <offset> <length> <crc64 hex>\\r\\n<length bytes of RESP commands>

``offset`` is the replication offset of the batch's first byte (-1 in a command
base file, which is not part of the stream) and the CRC-64 (Redis's, as in RDB)
covers the batch's bytes, so a flipped byte anywhere is detected, not replayed.
Batches hold whole commands (never half a MULTI/EXEC). Offsets let a restarted
node know exactly which replication offset its data corresponds to (see
docs/persistence-format.md); gaps between batches are stream bytes that are not
writes (the leader's PINGs). Files written by Redis (plain RESP, no annotations)
load too.

Everything here works on bytes and file objects; the node's I/O (threads, fsync,
fork, the event loop) is in :mod:`kvcluster.node.persistence`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from kvcluster.common.crc64 import crc64
from kvcluster.node.keyspace import Keyspace, ZSet

BASE = "b"
INCR = "i"
HISTORY = "h"

# Redis reads annotation lines with a 128-byte buffer (fgets): keep ours shorter.
_MAX_LINE = 128
# Items per command when a collection is written as commands (Redis's AOF_REWRITE_ITEMS_PER_CMD).
ITEMS_PER_COMMAND = 64


class AOFError(Exception):
    """A problem in an AOF file at byte ``offset``.

    ``truncated``: the file ends in the middle of a record (a torn write: what a crash
    leaves); ``at_eof``: a damaged record that is also the file's last one (a torn write
    the disk did not finish). Anything else is corruption in the body.
    """

    def __init__(self, path: str, offset: int, message: str, truncated: bool = False, at_eof: bool = False):
        super().__init__(f"{path}: {message} at offset {offset}")
        self.path = path
        self.offset = offset
        self.message = message
        self.truncated = truncated
        self.at_eof = at_eof

    @property
    def torn(self) -> bool:
        return self.truncated or self.at_eof


class ManifestError(Exception):
    pass


# -- names and the manifest ----------------------------------------------------------


def manifest_name(filename: str) -> str:
    return f"{filename}.manifest"


def base_name(filename: str, seq: int, rdb: bool) -> str:
    return f"{filename}.{seq}.base.{'rdb' if rdb else 'aof'}"


def incr_name(filename: str, seq: int) -> str:
    return f"{filename}.{seq}.incr.aof"


@dataclass
class AOFInfo:
    name: str
    seq: int
    type: str

    def line(self) -> str:
        return f"file {_quote(self.name)} seq {self.seq} type {self.type}\n"


@dataclass
class Manifest:
    base: AOFInfo | None = None
    incrs: list[AOFInfo] = field(default_factory=list)
    history: list[AOFInfo] = field(default_factory=list)

    def files(self) -> list[AOFInfo]:
        """The files to load, in order: the base, then the incremental files."""
        return ([self.base] if self.base else []) + self.incrs

    def next_base_seq(self) -> int:
        return (self.base.seq if self.base else 0) + 1

    def next_incr_seq(self) -> int:
        return max((f.seq for f in self.incrs), default=0) + 1

    def format(self) -> bytes:
        lines = [f.line() for f in (*self.history, *self.files())]
        return "".join(lines).encode()

    @classmethod
    def parse(cls, text: bytes, path: str = "manifest") -> Manifest:
        """Redis 7's manifest syntax: ``file <name> seq <n> type <b|h|i>`` per line, extra keys ignored."""
        m = cls()
        last_incr = 0
        for lineno, raw in enumerate(text.split(b"\n"), 1):
            line = raw.strip()
            if not line or line.startswith(b"#"):
                continue
            if len(line) > 1024:
                raise ManifestError(f"{path}:{lineno}: line too long")
            try:
                words = _split(line.decode("utf-8", "surrogateescape"))
            except ValueError as e:
                raise ManifestError(f"{path}:{lineno}: {e}") from None
            if len(words) < 6 or len(words) % 2:
                raise ManifestError(f"{path}:{lineno}: expected 'file <name> seq <n> type <b|h|i>'")
            keys = dict(zip(words[::2], words[1::2], strict=True))
            name, seq, kind = keys.get("file"), keys.get("seq"), keys.get("type")
            if not name or seq is None or not seq.isdigit() or kind not in (BASE, INCR, HISTORY):
                raise ManifestError(f"{path}:{lineno}: expected 'file <name> seq <n> type <b|h|i>'")
            if "/" in name or name in (".", ".."):
                raise ManifestError(f"{path}:{lineno}: file name {name!r} is not a plain name")
            info = AOFInfo(name, int(seq), kind)
            if kind == BASE:
                if m.base is not None:
                    raise ManifestError(f"{path}:{lineno}: a second base file")
                m.base = info
            elif kind == INCR:
                if info.seq <= last_incr:
                    raise ManifestError(f"{path}:{lineno}: incremental file sequence numbers must increase")
                last_incr = info.seq
                m.incrs.append(info)
            else:
                m.history.append(info)
        return m


def _quote(name: str) -> str:
    return (
        name if re.fullmatch(r"[A-Za-z0-9._-]+", name) else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    )


def _split(line: str) -> list[str]:
    from kvcluster.common.config import ConfigError, split_args

    try:
        return split_args(line)
    except ConfigError as e:
        raise ValueError(e.message) from None


# -- writing -------------------------------------------------------------------------------


def batch_crc(offset: int, payload: bytes) -> int:
    """CRC-64 of ``"<offset> <length> "`` then the payload: the header's numbers are covered too."""
    return crc64(payload, crc64(b"%d %d " % (offset, len(payload))))


def batch_header(offset: int, payload: bytes) -> bytes:
    return b"#kv %d %d %016x\r\n" % (offset, len(payload), batch_crc(offset, payload))


def replid_line(replid: str) -> bytes:
    return b"#kv-replid %s %016x\r\n" % (replid.encode(), crc64(replid.encode()))


def base_line(replid: str | None, offset: int, stream_db: int) -> bytes:
    """First line of a command base: the replication position its data corresponds to."""
    fields = b"%s %d %d" % ((replid or "-").encode(), offset if replid else -1, stream_db)
    return b"#kv-base %s %016x\r\n" % (fields, crc64(fields))


def encode_command(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def _score(score: float) -> bytes:
    if score == float("inf"):
        return b"inf"
    if score == float("-inf"):
        return b"-inf"
    return repr(score).encode()


def keyspace_commands(keyspace: Keyspace) -> Iterator[list[bytes]]:
    """The keyspace as commands that rebuild it (a base file without the RDB preamble)."""
    for db in keyspace.dbs:
        if not db.data:
            continue
        yield [b"SELECT", str(db.id).encode()]
        expires = db.expires
        for key, value in db.data.items():
            cls = value.__class__
            if cls is bytes:
                yield [b"SET", key, value]
            elif not value:
                continue
            elif cls is dict:
                items = [x for kv in value.items() for x in kv]
                for i in range(0, len(items), 2 * ITEMS_PER_COMMAND):
                    yield [b"HSET", key, *items[i : i + 2 * ITEMS_PER_COMMAND]]
            elif cls is ZSet:
                pairs = [x for m, s in value.dict.items() for x in (_score(s), m)]
                for i in range(0, len(pairs), 2 * ITEMS_PER_COMMAND):
                    yield [b"ZADD", key, *pairs[i : i + 2 * ITEMS_PER_COMMAND]]
            else:  # deque (list) or set
                verb = b"SADD" if cls is set else b"RPUSH"
                members = list(value)
                for i in range(0, len(members), ITEMS_PER_COMMAND):
                    yield [verb, key, *members[i : i + ITEMS_PER_COMMAND]]
            expire = expires.get(key) if expires else None
            if expire is not None:
                yield [b"PEXPIREAT", key, str(expire).encode()]


def write_command_base(
    keyspace: Keyspace, f: BinaryIO, replid: str | None, offset: int, stream_db: int, batch_size: int = 1 << 20
) -> int:
    """Write a command base file (the keyspace as commands, in checksummed batches); returns keys written."""
    f.write(base_line(replid, offset, stream_db))
    buf: list[bytes] = []
    size = 0
    keys = 0
    for args in keyspace_commands(keyspace):
        if args[0] in (b"SET", b"HSET", b"ZADD", b"RPUSH", b"SADD"):
            keys += 1
        cmd = encode_command(args)
        buf.append(cmd)
        size += len(cmd)
        if size >= batch_size:
            payload = b"".join(buf)
            f.write(batch_header(-1, payload) + payload)
            buf, size = [], 0
    # The loader continues the incremental stream in the database the stream was in.
    buf.append(encode_command([b"SELECT", str(stream_db).encode()]))
    payload = b"".join(buf)
    f.write(batch_header(-1, payload) + payload)
    return keys


# -- reading --------------------------------------------------------------------------------

CMD = 0  # (CMD, args, start, end)
BATCH = 1  # (BATCH, (offset, length), start, end): a verified batch begins; its commands follow
REPLID = 2  # (REPLID, replid, start, end)
BASE_POS = 3  # (BASE_POS, (replid | None, offset, stream_db), start, end)
NOTE = 4  # (NOTE, line, start, end): another annotation (Redis's #TS:...), skipped
BATCH_END = 5  # (BATCH_END, None, start, end)

Record = tuple[int, Any, int, int]


class _Need(Exception):
    pass


class _Bad(Exception):
    def __init__(self, pos: int, message: str):
        self.pos = pos
        self.message = message


def _int_line(d: bytes, p: int, end: int, what: str) -> tuple[int, int]:
    """The integer after a type byte at ``p`` up to CRLF; returns (value, position after CRLF)."""
    nl = d.find(b"\r\n", p + 1, min(end, p + 24))
    if nl < 0:
        if end - p < 24:
            raise _Need
        raise _Bad(p, f"bad {what} length line")
    text = d[p + 1 : nl]
    if not text.isdigit():
        raise _Bad(p, f"bad {what} length {text[:20]!r}")
    return int(text), nl + 2


def parse_command(d: bytes, p: int, end: int) -> tuple[list[bytes], int]:
    """One ``*N $len arg ...`` command at ``d[p:end]``; raises _Need if incomplete, _Bad if malformed."""
    if p >= end:
        raise _Need
    if d[p] != 0x2A:  # '*'
        raise _Bad(p, f"expected '*' (a command), found {d[p : p + 1]!r}")
    n, q = _int_line(d, p, end, "multibulk")
    if n < 1:
        raise _Bad(p, "empty command")
    args = []
    for _ in range(n):
        if q >= end:
            raise _Need
        if d[q] != 0x24:  # '$'
            raise _Bad(q, f"expected '$' (an argument), found {d[q : q + 1]!r}")
        size, q = _int_line(d, q, end, "bulk")
        stop = q + size
        if stop + 2 > end:
            raise _Need
        if d[stop : stop + 2] != b"\r\n":
            raise _Bad(stop, "argument not followed by CRLF")
        args.append(d[q:stop])
        q = stop + 2
    return args, q


_BATCH_RE = re.compile(rb"#kv (-?\d+) (\d+) ([0-9a-f]{16})\r\n")
_REPLID_RE = re.compile(rb"#kv-replid ([0-9a-f]{40}) ([0-9a-f]{16})\r\n")
_BASE_RE = re.compile(rb"#kv-base (([0-9a-f]{40}|-) (-?\d+) (\d+)) ([0-9a-f]{16})\r\n")


class AOFReader:
    """Reads one AOF file (ours or Redis's) as records, in bounded memory.

    Raises :class:`AOFError` at the first problem, with the byte offset where the last
    good record ended (a torn tail) or where the damage is (corruption).
    """

    def __init__(self, f: BinaryIO, path: str, chunk_size: int = 1 << 20):
        self.f = f
        self.path = path
        self.chunk_size = chunk_size
        self._buf = b""
        self._base = 0  # file offset of _buf[0]
        self._eof = False
        self._need = 0  # buffer length the record being parsed needs (0: one more chunk)
        self._p = 0
        self.framed = False  # our framing was seen: every command must be in a batch
        self.bytes_read = 0
        self.good_end = 0  # file offset after the last complete record

    def _more(self, need: int = 0) -> bool:
        """Read until the buffer holds ``need`` bytes (or at least one more chunk); False at EOF."""
        if self._eof:
            return False
        parts = [self._buf]
        have = len(self._buf)
        while True:
            chunk = self.f.read(max(self.chunk_size, need - have))
            if not chunk:
                self._eof = True
                break
            self.bytes_read += len(chunk)
            parts.append(chunk)
            have += len(chunk)
            if have >= need:
                break
        self._buf = b"".join(parts)
        return have > len(parts[0])

    def records(self) -> Iterator[Record]:
        p = 0
        while True:
            if p and (p >= len(self._buf) or p > (1 << 22)):
                # Drop what was consumed, so memory stays bounded.
                self._base += p
                self._buf = self._buf[p:]
                p = 0
            buf = self._buf
            if p >= len(buf):
                if not self._more():
                    return
                continue
            start = self._base + p
            self._need = 0
            try:
                if buf[p] == 0x23:  # '#': an annotation line
                    yield from self._annotation(p)
                    p = self._p
                else:
                    args, q = parse_command(buf, p, len(buf))
                    if self.framed:
                        raise _Bad(p, "a command outside a checksummed batch")
                    p = q
                    self.good_end = self._base + p
                    yield (CMD, args, start, self.good_end)
            except _Need:
                if not self._more(self._need):
                    raise AOFError(
                        self.path, start, "the file ends in the middle of a record", truncated=True
                    ) from None
            except _Bad as e:
                raise AOFError(self.path, self._base + e.pos, e.message) from None

    def _annotation(self, p: int) -> Iterator[Record]:
        buf = self._buf
        nl = buf.find(b"\r\n", p, p + _MAX_LINE)
        if nl < 0:
            if len(buf) - p < _MAX_LINE:
                raise _Need
            raise _Bad(p, "annotation line too long")
        line = buf[p : nl + 2]
        start = self._base + p
        q = nl + 2
        m = _BATCH_RE.fullmatch(line)
        if m is not None:
            self.framed = True
            offset, length, crc = int(m[1]), int(m[2]), int(m[3], 16)
            if q + length > len(buf):
                self._need = q + length  # re-entered at the same place once the buffer holds it
                raise _Need
            payload = buf[q : q + length]
            if batch_crc(offset, payload) != crc:
                # The very last record of the file: a write the disk did not finish, not rot.
                at_eof = q + length == len(self._buf) and not self._more()
                raise AOFError(
                    self.path,
                    start,
                    f"checksum mismatch in the batch of {length} bytes starting here",
                    at_eof=at_eof,
                )
            yield (BATCH, (offset, length), start, self._base + q + length)
            r = 0
            while r < length:
                try:
                    args, r2 = parse_command(payload, r, length)
                except _Need:
                    raise _Bad(q + r, "a command runs past the end of its batch") from None
                except _Bad as e:
                    raise _Bad(q + e.pos, e.message) from None
                yield (CMD, args, self._base + q + r, self._base + q + r2)
                r = r2
            self._p = q + length
            self.good_end = self._base + self._p
            yield (BATCH_END, None, start, self.good_end)
            return
        self._p = q
        m = _REPLID_RE.fullmatch(line)
        if m is not None:
            self.framed = True
            if crc64(m[1]) != int(m[2], 16):
                raise _Bad(p, "checksum mismatch in the replication id line")
            self.good_end = self._base + q
            yield (REPLID, m[1].decode(), start, self.good_end)
            return
        m = _BASE_RE.fullmatch(line)
        if m is not None:
            self.framed = True
            if crc64(m[1]) != int(m[5], 16):
                raise _Bad(p, "checksum mismatch in the base position line")
            replid = None if m[2] == b"-" else m[2].decode()
            self.good_end = self._base + q
            yield (BASE_POS, (replid, int(m[3]), int(m[4])), start, self.good_end)
            return
        if not line.startswith(b"#TS:"):
            # Only Redis's timestamps and our own lines exist: anything else is damage.
            raise _Bad(p, f"unknown or damaged annotation {line[:60]!r}")
        self.good_end = self._base + q
        yield (NOTE, line, start, self.good_end)


def is_rdb_file(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(5) == b"REDIS"


# -- checking (kvcluster check-aof) ------------------------------------------------------------


@dataclass
class FileCheck:
    path: str
    size: int
    ok_up_to: int
    error: str = ""
    torn: bool = False
    commands: int = 0
    open_multi_at: int = -1  # a MULTI without EXEC at the end (Redis reverts it on load)


def check_file(path: str) -> FileCheck:
    """Check one AOF file (commands) or RDB base file; never modifies it."""
    size = os.path.getsize(path)
    if size >= 5 and is_rdb_file(path):
        from kvcluster.node.rdb import RDBError, RDBReader, read_file_chunks

        reader = RDBReader()
        try:
            for chunk in read_file_chunks(path):
                reader.feed(chunk)
                if reader.done:
                    break
            reader.finish()
        except RDBError as e:
            return FileCheck(path, size, e.offset or 0, f"RDB: {e}")
        used = size - len(reader.unused_data)
        if reader.unused_data:
            return FileCheck(path, size, used, f"{len(reader.unused_data)} bytes after the end of the RDB")
        return FileCheck(path, size, size)
    result = FileCheck(path, size, 0)
    multi_at = -1
    with open(path, "rb") as f:
        reader = AOFReader(f, path)
        try:
            for kind, value, start, _end in reader.records():
                if kind == CMD:
                    result.commands += 1
                    name = value[0].lower()
                    if name == b"multi":
                        multi_at = start
                    elif name in (b"exec", b"discard"):
                        multi_at = -1
                result.ok_up_to = reader.good_end
        except AOFError as e:
            result.ok_up_to = e.offset
            result.error = e.message
            result.torn = e.torn
            return result
    result.ok_up_to = size
    result.open_multi_at = multi_at
    return result


def resolve_aof_files(path: str, filename: str = "appendonly.aof") -> tuple[str, list[str]]:
    """``path`` (an AOF directory, its manifest, or one file) -> (description, files in load order)."""
    if os.path.isdir(path):
        manifests = [n for n in os.listdir(path) if n.endswith(".manifest") and not n.startswith("temp-")]
        preferred = manifest_name(filename)
        if preferred in manifests:
            manifests = [preferred]
        if len(manifests) != 1:
            raise ManifestError(f"{path}: expected one manifest file, found {len(manifests)}")
        path = os.path.join(path, manifests[0])
    if path.endswith(".manifest"):
        with open(path, "rb") as f:
            manifest = Manifest.parse(f.read(), path)
        directory = os.path.dirname(path)
        return f"manifest {path}", [os.path.join(directory, info.name) for info in manifest.files()]
    return f"file {path}", [path]


def truncate_file(path: str, size: int) -> None:
    """Cut ``path`` to ``size`` bytes, durably."""
    with open(path, "r+b") as f:
        f.truncate(size)
        f.flush()
        os.fsync(f.fileno())
