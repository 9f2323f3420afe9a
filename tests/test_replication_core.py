"""Sans-I/O replication (kvcluster.node.replication): the backlog, PSYNC decisions, the replica's link.

No processes here: the objects are fed bytes and offsets and their outputs are checked
against simple models (a bytes string for the backlog, a list of events for the link).
"""

from __future__ import annotations

import random

import pytest
from kvcluster.node.replication import (
    Backlog,
    LinkConfig,
    LinkState,
    PsyncContinue,
    PsyncFull,
    ReplicaLink,
    ReplicationLog,
    encode_command,
    encoded_length,
)

# -- Backlog --------------------------------------------------------------------------------


def test_backlog_keeps_the_newest_bytes_across_wrap_arounds() -> None:
    rnd = random.Random(1)
    size = 97
    backlog = Backlog(size)
    stream = bytearray()
    for _ in range(2000):
        n = rnd.choice((0, 1, 2, 5, 40, 96, 97, 98, 250))
        data = bytes(rnd.randrange(256) for _ in range(n))
        backlog.append(data)
        stream += data
        assert backlog.end == len(stream)
        assert len(backlog) == min(size, len(stream))
        assert backlog.start == len(stream) - len(backlog)
        # Every offset the backlog claims to cover reads back exactly the stream's tail.
        offset = rnd.randint(backlog.start, backlog.end)
        assert backlog.covers(offset)
        assert backlog.read_from(offset) == bytes(stream[offset:])
        assert backlog.read_from(backlog.start) == bytes(stream[backlog.start :])
        if backlog.start > 0:
            assert not backlog.covers(backlog.start - 1)
        assert not backlog.covers(backlog.end + 1)


def test_backlog_accepts_memoryview_and_bytearray() -> None:
    backlog = Backlog(8)
    backlog.append(memoryview(b"abcdef"))
    backlog.append(bytearray(b"ghij"))
    assert backlog.read_from(backlog.start) == b"cdefghij"
    assert backlog.start == 2


@pytest.mark.parametrize("new_size", [1, 10, 37, 64, 200])
def test_backlog_resize_keeps_the_newest_bytes(new_size: int) -> None:
    backlog = Backlog(64, end=1000)  # a backlog that starts mid-stream (offset 1000)
    stream = bytes(range(256)) * 2
    for i in range(0, len(stream), 7):  # several wraps before the resize
        backlog.append(stream[i : i + 7])
    end = 1000 + len(stream)
    assert backlog.end == end
    backlog.resize(new_size)
    kept = min(64, new_size)
    assert backlog.size == new_size
    assert backlog.end == end
    assert len(backlog) == kept
    assert backlog.read_from(backlog.start) == stream[len(stream) - kept :]
    # And it goes on working at the new size.
    backlog.append(b"XYZ" * 50)
    tail = (stream + b"XYZ" * 50)[-new_size:]
    assert backlog.read_from(backlog.start) == tail
    assert backlog.end == end + 150


def test_backlog_clear_keeps_the_end_and_covers_nothing_before_it() -> None:
    backlog = Backlog(16)
    backlog.append(b"0123456789")
    backlog.clear()
    assert len(backlog) == 0
    assert backlog.start == backlog.end == 10
    assert backlog.covers(10) and not backlog.covers(9)
    assert backlog.read_from(10) == b""
    backlog.append(b"abc")
    assert backlog.read_from(10) == b"abc"


# -- the stream and PSYNC -----------------------------------------------------------------------


def test_encoded_length_matches_the_encoding() -> None:
    rnd = random.Random(2)
    for _ in range(200):
        args = [bytes(rnd.randrange(256) for _ in range(rnd.choice((0, 1, 9, 10, 99, 100, 1000)))) for _ in range(5)]
        args = args[: rnd.randint(1, 5)]
        assert encoded_length(args) == len(encode_command(args))


def test_command_bytes_selects_only_when_the_database_changes() -> None:
    log = ReplicationLog(1024)
    first = log.command_bytes(0, [b"SET", b"a", b"1"])
    assert first == b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n" + encode_command([b"SET", b"a", b"1"])
    assert log.command_bytes(0, [b"DEL", b"a"]) == encode_command([b"DEL", b"a"])
    assert log.command_bytes(12, [b"DEL", b"a"]).startswith(b"*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n")
    log.shift_replid()  # a new history must re-select: a replica may start anywhere
    assert log.command_bytes(12, [b"DEL", b"a"]).startswith(b"*2\r\n$6\r\nSELECT")


def _log_with(nbytes: int, backlog_size: int = 100) -> ReplicationLog:
    log = ReplicationLog(backlog_size)
    log.feed(b"x" * nbytes)
    return log


def test_psync_continues_inside_the_backlog_and_fully_resyncs_outside() -> None:
    log = _log_with(250, backlog_size=100)  # backlog holds stream bytes [150, 250)
    rid = log.replid
    # PSYNC offsets are "the next byte wanted" (applied + 1).
    assert log.psync(rid, 251) == PsyncContinue(rid, 250)  # fully caught up: nothing to send
    assert log.psync(rid, 151) == PsyncContinue(rid, 150)
    assert log.psync(rid, 200) == PsyncContinue(rid, 199)
    too_old = log.psync(rid, 150)
    assert isinstance(too_old, PsyncFull) and "not in the backlog" in too_old.reason
    assert (too_old.replid, too_old.offset) == (rid, 250)
    ahead = log.psync(rid, 252)
    assert isinstance(ahead, PsyncFull) and "ahead" in ahead.reason
    other = log.psync("f" * 40, 200)
    assert isinstance(other, PsyncFull) and "mismatch" in other.reason
    fresh = log.psync("?", -1)
    assert isinstance(fresh, PsyncFull) and fresh.reason == "replica asked for a full resync"


def test_psync2_previous_history_is_accepted_up_to_the_split() -> None:
    # A replica that applied 300 bytes of its leader's history is promoted, then takes writes.
    old = "a" * 40
    promoted = ReplicationLog(1000, replid=old, offset=0)
    promoted.feed(b"y" * 300)
    promoted.shift_replid()
    assert promoted.replid2 == old and promoted.second_offset == 300 and promoted.replid != old
    promoted.feed(b"z" * 50)
    new = promoted.replid
    # A sibling (or the old leader) at or before the split continues under the old id.
    assert promoted.psync(old, 301) == PsyncContinue(new, 300)
    assert promoted.psync(old, 101) == PsyncContinue(new, 100)
    # One that saw more of the old history than we did has diverged: full resync.
    diverged = promoted.psync(old, 302)
    assert isinstance(diverged, PsyncFull) and "past the end of the previous history" in diverged.reason
    # The new id works as usual.
    assert promoted.psync(new, 351) == PsyncContinue(new, 350)
    # Forgetting replid2 (e.g. after our own full sync) ends the old history's validity.
    promoted.clear_replid2()
    assert isinstance(promoted.psync(old, 301), PsyncFull)


def test_psync2_previous_history_still_needs_the_backlog() -> None:
    promoted = ReplicationLog(100, replid="b" * 40)
    promoted.feed(b"y" * 300)
    promoted.shift_replid()
    promoted.feed(b"z" * 50)  # backlog now [250, 350)
    assert isinstance(promoted.psync("b" * 40, 250), PsyncFull)  # byte 249 is not held any more
    assert promoted.psync("b" * 40, 251) == PsyncContinue(promoted.replid, 250)


def test_reset_adopts_the_leaders_history() -> None:
    log = _log_with(50)
    log.shift_replid()
    log.reset("c" * 40, 1000)
    assert (log.replid, log.offset, log.replid2, log.second_offset) == ("c" * 40, 1000, "0" * 40, -1)
    assert len(log.backlog) == 0 and log.backlog.end == 1000
    assert log.psync("c" * 40, 1001) == PsyncContinue("c" * 40, 1000)
    log.feed(b"abc")
    assert log.backlog.read_from(1000) == b"abc"


# -- the replica's link ---------------------------------------------------------------------------

RID = "d" * 40


def _drive(link: ReplicaLink, data: bytes, chunk: int | None) -> list:
    events = []
    if chunk is None:
        return link.receive(data)
    for i in range(0, len(data), chunk):
        events.extend(link.receive(data[i : i + chunk]))
    return events


def _handshake(link: ReplicaLink, leader_epoch: bytes = b":3\r\n") -> list[bytes]:
    """Answer the handshake requests one by one, as a leader does; returns what the link sent."""
    sent = [e.data for e in link.start() if e.kind == "send"]
    replies = {
        b"PING": b"+PONG\r\n",
        b"AUTH": b"+OK\r\n",
        b"listening-port": b"+OK\r\n",
        b"ip-address": b"+OK\r\n",
        b"capa": b"+OK\r\n",
        b"epoch": leader_epoch,
    }
    while link.state < LinkState.RECEIVE_PSYNC:
        last = sent[-1]
        reply = next(v for k, v in replies.items() if k in last)
        events = link.receive(reply)
        if link.state == LinkState.FAILED:
            return sent + [e.data for e in events]
        sent += [e.data for e in events if e.kind == "send"]
    return sent


def test_handshake_order_and_psync_request() -> None:
    cfg = LinkConfig(listening_port=7001, announce_ip="10.0.0.7", masterauth="pw", epoch=2, replid=RID, offset=99)
    link = ReplicaLink(cfg)
    sent = _handshake(link)
    assert sent == [
        encode_command([b"PING"]),
        encode_command([b"AUTH", b"pw"]),
        encode_command([b"REPLCONF", b"listening-port", b"7001"]),
        encode_command([b"REPLCONF", b"ip-address", b"10.0.0.7"]),
        encode_command([b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]),
        encode_command([b"REPLCONF", b"epoch", b"2"]),
        encode_command([b"PSYNC", RID.encode(), b"100"]),
    ]
    assert link.leader_epoch == 3


def test_a_new_replica_asks_for_a_full_resync() -> None:
    link = ReplicaLink(LinkConfig(listening_port=1))
    sent = _handshake(link)
    assert sent[-1] == encode_command([b"PSYNC", b"?", b"-1"])


def test_a_leader_behind_our_epoch_is_refused_before_psync() -> None:
    link = ReplicaLink(LinkConfig(listening_port=1, epoch=5))
    sent = _handshake(link, leader_epoch=b":4\r\n")
    assert link.state == LinkState.FAILED
    assert not any(s.startswith(b"*3\r\n$5\r\nPSYNC") for s in sent if isinstance(s, bytes))
    assert "refusing to follow a leader at epoch 4: this node is at epoch 5" in sent[-1]


def test_a_real_redis_leader_has_epoch_zero() -> None:
    link = ReplicaLink(LinkConfig(listening_port=1, epoch=0))
    sent = _handshake(link, leader_epoch=b"-ERR Unrecognized REPLCONF option: epoch\r\n")
    assert link.state == LinkState.RECEIVE_PSYNC and link.leader_epoch == 0
    assert sent[-1].startswith(b"*3\r\n$5\r\nPSYNC")
    # ... but a node that has seen an epoch does not follow it.
    link = ReplicaLink(LinkConfig(listening_port=1, epoch=1))
    _handshake(link, leader_epoch=b"-ERR Unrecognized REPLCONF option: epoch\r\n")
    assert link.state == LinkState.FAILED


def test_a_fenced_leader_is_refused() -> None:
    link = ReplicaLink(LinkConfig(listening_port=1))
    sent = _handshake(link, leader_epoch=b"-FENCED this node's epoch 1 is behind epoch 2\r\n")
    assert link.state == LinkState.FAILED and "fenced" in sent[-1]


def test_ping_errors_other_than_auth_fail_the_link() -> None:
    link = ReplicaLink(LinkConfig(listening_port=1, masterauth="pw"))
    link.start()
    events = link.receive(b"-NOAUTH Authentication required.\r\n")
    assert [e.data for e in events] == [encode_command([b"AUTH", b"pw"])]
    events = link.receive(b"-WRONGPASS invalid username-password pair\r\n")
    assert link.state == LinkState.FAILED and "refused AUTH" in events[-1].data
    link = ReplicaLink(LinkConfig(listening_port=1))
    link.start()
    events = link.receive(b"-LOADING Redis is loading the dataset in memory\r\n")
    assert link.state == LinkState.FAILED and events[-1].kind == "error"


def _full_sync_bytes(payload: bytes, commands: list[list[bytes]], eof: bool, mark: bytes = b"m" * 40) -> bytes:
    head = b"+FULLRESYNC " + RID.encode() + b" 1234\r\n\n\n"  # newlines: keepalives while it prepares
    body = b"$EOF:" + mark + b"\r\n" + payload + mark if eof else b"$%d\r\n" % len(payload) + payload
    return head + body + b"".join(encode_command(c) for c in commands)


COMMANDS = [[b"SELECT", b"0"], [b"SET", b"k", b"v\r\n$3\r\nx"], [b"PING"], [b"DEL", b"k"]]


@pytest.mark.parametrize("eof", [True, False], ids=["eof-mark", "length"])
@pytest.mark.parametrize("chunk", [1, 2, 7, 39, 40, 41, 1000, None])
def test_snapshot_transfer_then_stream(eof: bool, chunk: int | None) -> None:
    rnd = random.Random(chunk or 0)
    # The payload contains pieces of the mark and CR/LF: only the whole mark ends it.
    mark = bytes(rnd.choice(b"0123456789abcdef") for _ in range(40))
    payload = b"REDIS0010" + bytes(rnd.randrange(256) for _ in range(3000)) + mark[:39] + b"\r\n" + mark[1:] + b"END"
    link = ReplicaLink(LinkConfig(listening_port=1))
    _handshake(link)
    events = _drive(link, _full_sync_bytes(payload, COMMANDS, eof, mark), chunk)
    kinds = [e.kind for e in events]
    assert kinds[0] == "full_sync" and (events[0].data, events[0].extra) == (RID, 1234)
    end = kinds.index("snapshot_end")
    assert set(kinds[1:end]) <= {"snapshot_data"}
    assert b"".join(e.data for e in events[1:end]) == payload
    commands = events[end + 1 :]
    assert [e.kind for e in commands] == ["command"] * len(COMMANDS)
    assert [e.data for e in commands] == COMMANDS
    assert link.state == LinkState.CONNECTED


def test_eof_mark_split_across_reads_at_every_position() -> None:
    mark = b"0123456789abcdef0123456789abcdef01234567"
    payload = b"REDIS0010" + b"\x00\xff" * 50
    data = _full_sync_bytes(payload, [[b"PING"]], eof=True, mark=mark)
    at = data.index(mark + b"\r\n") + 42 + len(payload)  # where the closing mark starts
    for cut in range(at - 2, at + 42):
        link = ReplicaLink(LinkConfig(listening_port=1))
        _handshake(link)
        events = link.receive(data[:cut]) + link.receive(data[cut:])
        got = b"".join(e.data for e in events if e.kind == "snapshot_data")
        assert got == payload, cut
        assert [e.kind for e in events][-2:] == ["snapshot_end", "command"], cut


def test_continue_with_and_without_a_new_id() -> None:
    link = ReplicaLink(LinkConfig(listening_port=1, replid=RID, offset=10))
    _handshake(link)
    events = link.receive(b"+CONTINUE " + b"e" * 40 + b"\r\n" + encode_command([b"SET", b"a", b"b"]))
    assert [(e.kind, e.data) for e in events] == [("continue", "e" * 40), ("command", [b"SET", b"a", b"b"])]
    link = ReplicaLink(LinkConfig(listening_port=1, replid=RID, offset=10))
    _handshake(link)
    assert [(e.kind, e.data) for e in link.receive(b"+CONTINUE\r\n")] == [("continue", None)]


def test_psync_refused_and_garbage_in_the_stream_fail_the_link() -> None:
    link = ReplicaLink(LinkConfig(listening_port=1))
    _handshake(link)
    events = link.receive(b"-NOMASTERLINK Can't SYNC while not connected with my master\r\n")
    assert link.state == LinkState.FAILED and "refused PSYNC" in events[-1].data
    link = ReplicaLink(LinkConfig(listening_port=1, replid=RID, offset=10))
    _handshake(link)
    events = link.receive(b"+CONTINUE\r\n:12\r\n")
    assert events[-1].kind == "error" and link.state == LinkState.FAILED
