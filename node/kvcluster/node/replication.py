"""Replication, sans-I/O: the leader's stream and backlog, and the replica's end of the link.

Theory of operation
-------------------
Every write a leader executes becomes bytes of one *replication stream*: the command's
effects as RESP multibulk (``SELECT`` first when the database changes). The stream has an
identity, the *replication id* (40 hex characters), and a position, the *offset*: the number
of bytes produced under that history. Replicas apply the same bytes in the same order and
count them, so two nodes with the same id and offset hold the same dataset.

:class:`ReplicationLog` is the leader's side: it produces the stream, keeps the last
``repl-backlog-size`` bytes in a :class:`Backlog`, and answers ``PSYNC <replid> <offset>``
with "continue from the backlog" or "full resync". Like Redis's PSYNC2 it remembers one
previous id (``replid2``) and the offset where that history ended (``second_offset``): a
replica promoted to leader starts a new id but still accepts ``PSYNC`` from its former
siblings (and its former leader) under the old id, up to the point where the histories split.

Replicas keep a log too (they feed it the bytes they apply), so a promoted replica has the
backlog its siblings need to partial-resync from it.

:class:`ReplicaLink` is the replica's side of one connection to a leader, fed the bytes that
arrive and returning what to send and what happened (:class:`LinkEvent`). The handshake, in
order (it must stay in this order: each reply answers the previous request)::

    PING -> [AUTH masterauth] -> REPLCONF listening-port -> [REPLCONF ip-address]
         -> REPLCONF capa eof capa psync2 -> REPLCONF epoch <ours>  (kvcluster only)
         -> PSYNC <replid> <offset+1>
         -> +FULLRESYNC <replid> <offset>, then $<len>\\r\\n<snapshot> (or $EOF:<mark>)
            | +CONTINUE [<replid>]
         -> the command stream

``REPLCONF epoch`` is our addition (a real Redis leader answers it with an error, which the
link treats as "epoch 0"): the leader answers with its own epoch, and a replica never follows
a leader whose epoch is lower than its own (see docs/protocol.md, "Epochs and fencing").
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Any

import hiredis

# Replication offsets in PSYNC are "the next byte wanted": a replica that has applied
# `offset` bytes asks for offset + 1.


def new_replid() -> str:
    return os.urandom(20).hex()


class Backlog:
    """The newest ``size`` bytes of the stream, addressed by stream offset.

    ``end`` is the offset just after the newest byte (the stream's length so far);
    the backlog holds stream bytes ``[end - len(self), end)``.
    """

    __slots__ = ("_buf", "_held", "_pos", "end", "size")

    def __init__(self, size: int, end: int = 0):
        self.size = max(size, 1)
        self._buf = bytearray(self.size)
        self._pos = 0  # where the next byte goes in _buf
        self._held = 0
        self.end = end

    def __len__(self) -> int:
        return self._held

    @property
    def start(self) -> int:
        return self.end - self._held

    def append(self, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        self.end += n
        size = self.size
        if n >= size:
            self._buf[:] = data[n - size :]
            self._pos = 0
            self._held = size
            return
        pos = self._pos
        first = min(n, size - pos)
        self._buf[pos : pos + first] = data[:first]
        if first < n:
            self._buf[: n - first] = data[first:]
        self._pos = (pos + n) % size
        self._held = min(size, self._held + n)

    def covers(self, offset: int) -> bool:
        """True if every stream byte from ``offset`` on is held (offset == end: nothing missing)."""
        return self.start <= offset <= self.end

    def read_from(self, offset: int) -> bytes:
        """Stream bytes ``[offset, end)``; ``covers(offset)`` must hold."""
        n = self.end - offset
        if n <= 0:
            return b""
        size = self.size
        begin = (self._pos - n) % size
        if begin + n <= size:
            return bytes(self._buf[begin : begin + n])
        return bytes(self._buf[begin:]) + bytes(self._buf[: self._pos])

    def resize(self, size: int) -> None:
        """Keep the newest ``min(len, size)`` bytes in a buffer of the new size."""
        keep = self.read_from(self.end - min(self._held, size))
        end = self.end
        self.size = max(size, 1)
        self._buf = bytearray(self.size)
        self._pos = 0
        self._held = 0
        self.end = end - len(keep)
        self.append(keep)

    def clear(self) -> None:
        self._pos = 0
        self._held = 0


def encode_command(args: list[bytes]) -> bytes:
    """The canonical multibulk encoding of one command (what the stream carries)."""
    # A list, not a generator: join is faster with one (this runs for every replicated write).
    return b"*%d\r\n" % len(args) + b"".join([b"$%d\r\n%b\r\n" % (len(a), a) for a in args])


def encoded_length(args: list[bytes]) -> int:
    """``len(encode_command(args))`` without building it."""
    n = 3 + len(str(len(args)))
    for a in args:
        size = len(a)
        n += size + 5 + len(str(size))
    return n


@dataclass
class PsyncContinue:
    """Partial resync: send ``+CONTINUE <replid>`` and the backlog from ``offset``."""

    replid: str
    offset: int


@dataclass
class PsyncFull:
    """Full resync: ``+FULLRESYNC <replid> <offset>``, then a snapshot taken at ``offset``."""

    replid: str
    offset: int
    reason: str


class ReplicationLog:
    """The stream this node produces (leader) or relays (replica), with its identity and backlog."""

    def __init__(self, backlog_size: int, replid: str | None = None, offset: int = 0):
        self.replid = replid or new_replid()
        self.replid2 = "0" * 40
        # The offset up to which replid2's history is ours (PSYNC under replid2 is accepted
        # for offsets <= second_offset); -1 when there is no previous history.
        self.second_offset = -1
        self.offset = offset
        self.backlog = Backlog(backlog_size, end=offset)
        # The database the stream's last SELECT chose; -1 forces a SELECT before the next command.
        self.selected_db = -1

    def feed(self, data: bytes) -> None:
        """Append stream bytes (the leader's own writes, or what a replica applied)."""
        self.offset += len(data)
        self.backlog.append(data)

    def command_bytes(self, db_id: int, args: list[bytes]) -> bytes:
        """The stream bytes of one write in ``db_id``: ``SELECT`` first when the database changes."""
        encoded = encode_command(args)
        if db_id != self.selected_db:
            self.selected_db = db_id
            db = str(db_id).encode()
            encoded = b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%b\r\n" % (len(db), db) + encoded
        return encoded

    def shift_replid(self) -> None:
        """Start a new history (promotion): the old id stays valid up to the current offset."""
        self.replid2 = self.replid
        self.second_offset = self.offset
        self.replid = new_replid()
        self.selected_db = -1

    def clear_replid2(self) -> None:
        self.replid2 = "0" * 40
        self.second_offset = -1

    def reset(self, replid: str, offset: int) -> None:
        """Adopt a leader's history after a full sync: new id and offset, empty backlog."""
        self.replid = replid
        self.offset = offset
        self.clear_replid2()
        self.backlog.end = offset
        self.backlog.clear()
        self.selected_db = -1

    def psync(self, replid: str, offset: int) -> PsyncContinue | PsyncFull:
        """Answer ``PSYNC replid offset`` (offset: the next byte the replica wants)."""
        applied = offset - 1
        same_history = replid == self.replid or (replid == self.replid2 and applied <= self.second_offset)
        if not same_history:
            if replid == "?":
                reason = "replica asked for a full resync"
            elif replid == self.replid2:
                reason = f"replica offset {applied} is past the end of the previous history ({self.second_offset})"
            else:
                reason = f"replication id mismatch (ours {self.replid}, theirs {replid})"
            return PsyncFull(self.replid, self.offset, reason)
        if offset > self.offset + 1:
            return PsyncFull(self.replid, self.offset, f"replica offset {applied} is ahead of ours ({self.offset})")
        if not self.backlog.covers(applied):
            return PsyncFull(
                self.replid,
                self.offset,
                f"offset {applied} is not in the backlog ({self.backlog.start}..{self.backlog.end})",
            )
        return PsyncContinue(self.replid, applied)


@dataclass
class ReplicaInfo:
    """Leader side: what we know of one connected replica (INFO's slaveN line, WAIT, lag)."""

    ip: str
    listening_port: int = 0
    capa: set[str] = field(default_factory=set)
    epoch: int = 0
    # wait_bgsave (PSYNC seen, snapshot not started), send_bulk (snapshot streaming), online.
    state: str = "wait_bgsave"
    ack_offset: int = 0
    ack_time: float = 0.0
    # Stream bytes produced while the snapshot is being sent; flushed when it is done.
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0

    @property
    def online(self) -> bool:
        return self.state == "online"


# ---------------------------------------------------------------------------
# The replica's end of the link
# ---------------------------------------------------------------------------


class LinkState(enum.IntEnum):
    """Handshake states, in the order they happen (ordered like Redis's repl_state)."""

    CONNECTING = 0
    RECEIVE_PING = 1
    RECEIVE_AUTH = 2
    RECEIVE_PORT = 3
    RECEIVE_IP = 4
    RECEIVE_CAPA = 5
    RECEIVE_EPOCH = 6
    RECEIVE_PSYNC = 7
    TRANSFER = 8
    CONNECTED = 9
    FAILED = 10


@dataclass(slots=True)
class LinkEvent:
    """Something the shell must act on."""

    kind: str  # send | full_sync | snapshot_data | snapshot_end | continue | command | error | epoch
    data: Any = None
    extra: Any = None


@dataclass
class LinkConfig:
    listening_port: int
    announce_ip: str = ""
    masterauth: str = ""
    masteruser: str = ""
    epoch: int = 0
    # What the replica has: its history and the bytes applied under it.
    replid: str = "?"
    offset: int = -1


@dataclass
class ReplicaLink:
    """Sans-I/O replica side of one connection: call :meth:`start`, then :meth:`receive` with bytes."""

    config: LinkConfig
    state: LinkState = LinkState.CONNECTING
    leader_epoch: int = 0
    _buf: bytearray = field(default_factory=bytearray)
    _transfer_left: int = -1  # bytes of the snapshot still expected (-1: EOF-marked)
    _eof_mark: bytes = b""
    _reader: Any = None

    def start(self) -> list[LinkEvent]:
        self.state = LinkState.RECEIVE_PING
        return [LinkEvent("send", encode_command([b"PING"]))]

    def receive(self, data: bytes) -> list[LinkEvent]:
        events: list[LinkEvent] = []
        if self.state == LinkState.CONNECTED:
            self._stream(data, events)
            return events
        self._buf += data
        while self.state not in (LinkState.CONNECTED, LinkState.FAILED):
            if self.state == LinkState.TRANSFER:
                if not self._transfer(events):
                    break
                continue
            line = self._line()
            if line is None:
                break
            if not line:  # a leader sends newlines to keep the link alive while it prepares
                continue
            self._handshake_reply(line, events)
        if self.state == LinkState.CONNECTED and self._buf:
            rest = bytes(self._buf)
            self._buf.clear()
            self._stream(rest, events)
        return events

    # -- handshake -------------------------------------------------------------

    def _line(self) -> bytes | None:
        nl = self._buf.find(b"\n")
        if nl < 0:
            if len(self._buf) > 64 * 1024:
                raise ValueError("leader sent a line longer than 64 KiB during the handshake")
            return None
        line = bytes(self._buf[:nl]).rstrip(b"\r")
        del self._buf[: nl + 1]
        return line

    def _fail(self, events: list[LinkEvent], message: str) -> None:
        self.state = LinkState.FAILED
        events.append(LinkEvent("error", message))

    def _handshake_reply(self, line: bytes, events: list[LinkEvent]) -> None:
        cfg = self.config
        state = self.state
        text = line.decode("utf-8", "replace")
        if state == LinkState.RECEIVE_PING:
            # -NOAUTH is fine here: AUTH comes next. Any other error is not.
            if line.startswith(b"-") and not line.startswith((b"-NOAUTH", b"-NOPERM", b"-ERR operation not permitted")):
                return self._fail(events, f"leader answered PING with {text}")
            if cfg.masterauth:
                self.state = LinkState.RECEIVE_AUTH
                auth = [b"AUTH", cfg.masterauth.encode()]
                if cfg.masteruser:
                    auth.insert(1, cfg.masteruser.encode())
                events.append(LinkEvent("send", encode_command(auth)))
                return None
            return self._send_port(events)
        if state == LinkState.RECEIVE_AUTH:
            if line.startswith(b"-"):
                return self._fail(events, f"leader refused AUTH: {text}")
            return self._send_port(events)
        if state == LinkState.RECEIVE_PORT:
            # Errors from REPLCONF are not fatal (Redis ignores them too: old leaders).
            if cfg.announce_ip:
                self.state = LinkState.RECEIVE_IP
                events.append(LinkEvent("send", encode_command([b"REPLCONF", b"ip-address", cfg.announce_ip.encode()])))
                return None
            return self._send_capa(events)
        if state == LinkState.RECEIVE_IP:
            return self._send_capa(events)
        if state == LinkState.RECEIVE_CAPA:
            self.state = LinkState.RECEIVE_EPOCH
            events.append(LinkEvent("send", encode_command([b"REPLCONF", b"epoch", str(cfg.epoch).encode()])))
            return None
        if state == LinkState.RECEIVE_EPOCH:
            if line.startswith(b":"):
                try:
                    self.leader_epoch = int(line[1:])
                except ValueError:
                    return self._fail(events, f"leader sent a bad epoch: {text}")
            elif line.startswith(b"-FENCED"):
                return self._fail(events, f"leader is fenced: {text}")
            else:
                self.leader_epoch = 0  # a real Redis leader: no epochs
            if self.leader_epoch < cfg.epoch:
                return self._fail(
                    events,
                    f"refusing to follow a leader at epoch {self.leader_epoch}: this node is at epoch {cfg.epoch}",
                )
            events.append(LinkEvent("epoch", self.leader_epoch))
            self.state = LinkState.RECEIVE_PSYNC
            offset = str(cfg.offset + 1).encode() if cfg.replid != "?" else b"-1"
            events.append(LinkEvent("send", encode_command([b"PSYNC", cfg.replid.encode(), offset])))
            return None
        if state == LinkState.RECEIVE_PSYNC:
            if line.startswith(b"+FULLRESYNC"):
                parts = line.split()
                if len(parts) < 3:
                    return self._fail(events, f"bad FULLRESYNC reply: {text}")
                replid, offset = parts[1].decode(), int(parts[2])
                self.state = LinkState.TRANSFER
                self._transfer_left = -2  # waiting for the $<len> line
                events.append(LinkEvent("full_sync", replid, offset))
                return None
            if line.startswith(b"+CONTINUE"):
                parts = line.split()
                new_id = parts[1].decode() if len(parts) > 1 else None
                self.state = LinkState.CONNECTED
                events.append(LinkEvent("continue", new_id))
                return None
            return self._fail(events, f"leader refused PSYNC: {text}")
        return None

    def _send_port(self, events: list[LinkEvent]) -> None:
        self.state = LinkState.RECEIVE_PORT
        port = str(self.config.listening_port).encode()
        events.append(LinkEvent("send", encode_command([b"REPLCONF", b"listening-port", port])))

    def _send_capa(self, events: list[LinkEvent]) -> None:
        self.state = LinkState.RECEIVE_CAPA
        events.append(LinkEvent("send", encode_command([b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])))

    # -- snapshot transfer -------------------------------------------------------

    def _transfer(self, events: list[LinkEvent]) -> bool:
        """Consume snapshot bytes; False when more data is needed."""
        if self._transfer_left == -2:
            line = self._line()
            if line is None:
                return False
            if not line:
                return True  # keepalive newline before the payload
            if line.startswith(b"$EOF:"):
                self._eof_mark = line[5:]
                if len(self._eof_mark) != 40:
                    self._fail(events, "bad EOF mark in the snapshot header")
                    return False
                self._transfer_left = -1
                return True
            if not line.startswith(b"$"):
                self._fail(events, f"expected the snapshot's $<length>, got {line[:64]!r}")
                return False
            try:
                self._transfer_left = int(line[1:])
            except ValueError:
                self._fail(events, f"bad snapshot length {line[:64]!r}")
                return False
            return True
        buf = self._buf
        if self._transfer_left >= 0:
            take = min(len(buf), self._transfer_left)
            if take:
                events.append(LinkEvent("snapshot_data", bytes(buf[:take])))
                del buf[:take]
                self._transfer_left -= take
            if self._transfer_left > 0:
                return False
        else:
            # EOF-marked: everything up to the 40-byte mark is snapshot; hold back what could be its start.
            mark = self._eof_mark
            at = buf.find(mark)
            if at < 0:
                safe = len(buf) - len(mark)
                if safe > 0:
                    events.append(LinkEvent("snapshot_data", bytes(buf[:safe])))
                    del buf[:safe]
                return False
            if at:
                events.append(LinkEvent("snapshot_data", bytes(buf[:at])))
            del buf[: at + len(mark)]
        self.state = LinkState.CONNECTED
        events.append(LinkEvent("snapshot_end"))
        return True

    # -- the command stream ----------------------------------------------------------

    def _stream(self, data: bytes, events: list[LinkEvent]) -> None:
        if self._reader is None:
            self._reader = hiredis.Reader()
        reader = self._reader
        reader.feed(data)
        while True:
            try:
                cmd = reader.gets()
            except hiredis.ProtocolError as e:
                self._fail(events, f"protocol error in the replication stream: {e}")
                return
            if cmd is False:
                return
            bad = cmd.__class__ is not list or not cmd
            if not bad:
                try:
                    b"".join(cmd)  # TypeError unless every argument is bytes (C speed, per command)
                except TypeError:
                    bad = True
            if bad:
                self._fail(events, f"unexpected item in the replication stream: {cmd!r:.100}")
                return
            # The shell re-encodes the command to relay it; that length is the offset it adds.
            events.append(LinkEvent("command", cmd))
