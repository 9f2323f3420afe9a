"""Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP), CLIENT UNBLOCK.

The waiting room is unit-tested sans-I/O; everything else runs real processes: a kvcluster node
next to a real redis-server, the same commands sent to both and the exact reply bytes compared
(raw sockets, so ``*-1`` and ``$-1`` differ). A blocked client is recognised by INFO's
blocked_clients, never by sleeping; timeouts are short and only their replies are compared.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import hiredis
import pytest
import redis
import redis.asyncio
from helpers import NodeProcess, RedisServerProcess, wait_until
from kvcluster.common.resp import CommandError
from kvcluster.node.blocking import Waiter, WaitingRoom
from kvcluster.node.commands.blocking import parse_timeout

DEADLINE = 30.0


# -- the waiting room, sans-I/O ----------------------------------------------------------------


class FakeClient:
    """A client as the room sees it: only an id."""

    def __init__(self, client_id: int) -> None:
        self.id = client_id


def waiter(client_id: int, *keys: bytes, db: int = 0, deadline: float | None = None) -> Waiter:
    return Waiter(FakeClient(client_id), db, keys, [b"BLPOP", *keys, b"0"], None, deadline)


def test_room_keeps_a_fifo_per_key_and_forgets_removed_waiters() -> None:
    room = WaitingRoom()
    first, second, third = waiter(1, b"k"), waiter(2, b"k", b"other"), waiter(3, b"k")
    for w in (first, second, third):
        room.add(w)
    assert room.waiters_on((0, b"k")) == [first, second, third]
    assert room.waiters_on((0, b"other")) == [second]
    assert len(room) == 3 and room.total_keys() == 2
    assert room.remove(second)
    assert not room.remove(second)
    assert room.waiters_on((0, b"k")) == [first, third]
    assert room.waiters_on((0, b"other")) == []
    assert room.total_keys() == 1
    assert room.waiter_of(3) is third and room.waiter_of(2) is None
    with pytest.raises(ValueError):
        room.add(waiter(1, b"again"))


def test_room_signals_only_waited_keys_in_order_without_repeats() -> None:
    room = WaitingRoom()
    room.add(waiter(1, b"a", b"b"))
    room.add(waiter(2, b"c", db=3))
    room.signal(0, b"nobody-waits")
    room.signal(0, b"b")
    room.signal(0, b"a")
    room.signal(0, b"b")
    room.signal(0, b"c")  # waited on in db 3, not 0
    assert room.take_ready() == [(0, b"b"), (0, b"a")]
    assert room.take_ready() == []
    room.signal_db(3)
    assert room.take_ready() == [(3, b"c")]


def test_room_waits_once_on_a_key_named_twice_and_reports_expired_waiters() -> None:
    room = WaitingRoom()
    twice = waiter(1, b"k", b"k", deadline=10.0)
    forever = waiter(2, b"k")
    later = waiter(3, b"k", deadline=20.0)
    for w in (twice, forever, later):
        room.add(w)
    assert room.waiters_on((0, b"k")) == [twice, forever, later]
    assert room.expired(15.0) == [twice]
    assert room.expired(25.0) == [twice, later]
    room.remove(twice)
    assert room.waiters_on((0, b"k")) == [forever, later]


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        (b"0", 0),
        (b"1", 1000),
        (b"0.001", 1),
        (b"0.0001", 1),
        (b"1.5", 1500),
        (b"-0.0001", 0),
        (b"1e1", 10000),
        (b"0x10", 16000),
        (b"0.0005", 1),
    ],
)
def test_timeout_is_seconds_as_a_double_rounded_up_to_milliseconds(text: bytes, millis: int) -> None:
    assert parse_timeout(text) == millis


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (b"-1", "ERR timeout is negative"),
        (b"-inf", "ERR timeout is negative"),
        (b"abc", "ERR timeout is not a float or out of range"),
        (b" 1", "ERR timeout is not a float or out of range"),
        (b"1 ", "ERR timeout is not a float or out of range"),
        (b"1_0", "ERR timeout is not a float or out of range"),
        (b"nan", "ERR timeout is not a float or out of range"),
        (b"", "ERR timeout is not a float or out of range"),
        (b"inf", "ERR timeout is negative"),
        (b"1e300", "ERR timeout is negative"),
        (b"9.3e15", "ERR timeout is negative"),
    ],
)
def test_timeout_errors(text: bytes, error: str) -> None:
    with pytest.raises(CommandError) as e:
        parse_timeout(text)
    assert e.value.message == error


# -- raw RESP connections ------------------------------------------------------------------------


def encode(*args: str | bytes) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class Raw:
    """One connection that sends commands and reads replies as the exact bytes of each reply."""

    def __init__(self, port: int, resp3: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.buf = b""
        if resp3:
            self.call("HELLO", "3")

    def send(self, *args: str | bytes) -> None:
        self.sock.sendall(encode(*args))

    def call(self, *args: str | bytes) -> bytes:
        self.send(*args)
        return self.reply()

    def reply(self) -> bytes:
        end = self._end_of_reply(0)
        data, self.buf = self.buf[:end], self.buf[end:]
        return data

    def _line(self, start: int) -> int:
        while True:
            i = self.buf.find(b"\r\n", start)
            if i >= 0:
                return i
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk

    def _end_of_reply(self, start: int) -> int:
        eol = self._line(start)
        kind, head = self.buf[start : start + 1], self.buf[start + 1 : eol]
        pos = eol + 2
        if kind in b"$=!" and head != b"-1" and head != b"?":
            while len(self.buf) < pos + int(head) + 2:
                self._line(len(self.buf))  # reads more
            return pos + int(head) + 2
        if kind in b"*~>%|" and head != b"-1":
            items = int(head) * (2 if kind in b"%|" else 1)
            for _ in range(items):
                pos = self._end_of_reply(pos)
        return pos

    def close(self) -> None:
        self.sock.close()


# -- both servers --------------------------------------------------------------------------------


class Pair:
    """A kvcluster node and a redis-server: the same commands, compared replies."""

    def __init__(self, node: NodeProcess, server: RedisServerProcess) -> None:
        self.node = node
        self.server = server
        self.ports = (node.port, server.port)
        self.clients = (node.client(), server.client())
        self.raws: list[Raw] = []

    def raw(self, resp3: bool = False) -> tuple[Raw, Raw]:
        pair = (Raw(self.ports[0], resp3), Raw(self.ports[1], resp3))
        self.raws.extend(pair)
        return pair

    def call(self, *args: str | bytes, resp3: bool = False) -> bytes:
        ours, theirs = self.raw(resp3)
        mine, reference = ours.call(*args), theirs.call(*args)
        assert mine == reference, f"{args}: kvcluster {mine!r} != redis {reference!r}"
        return mine

    def blocked(self, count: int) -> None:
        for c in self.clients:
            wait_until(lambda c=c: c.info("clients")["blocked_clients"] == count, DEADLINE, what=f"{count} blocked")

    def close_raws(self) -> None:
        for r in self.raws:
            r.close()
        self.raws.clear()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("blocking")
    node = NodeProcess(base / "node").start()
    try:
        server = RedisServerProcess(base / "redis")
    except BaseException:
        node.stop()
        raise
    try:
        yield Pair(node, server)
    finally:
        node.stop()
        server.stop()


@pytest.fixture
def pair(servers: Pair) -> Iterator[Pair]:
    for c in servers.clients:
        c.flushall()
    yield servers
    servers.close_raws()
    servers.blocked(0)


def both(pair: Pair, *commands: tuple[str, ...], resp3: bool = False) -> list[bytes]:
    return [pair.call(*cmd, resp3=resp3) for cmd in commands]


@pytest.mark.parametrize("resp3", [False, True])
def test_served_at_once_when_a_key_has_data(pair: Pair, resp3: bool) -> None:
    both(pair, ("RPUSH", "l2", "a", "b", "c"), ("ZADD", "z2", "1", "x", "2", "y", "3", "w"))
    replies = both(
        pair,
        ("BLPOP", "l1", "l2", "0"),
        ("BRPOP", "l1", "l2", "1"),
        ("BLMOVE", "l2", "dst", "LEFT", "RIGHT", "0"),
        ("BRPOPLPUSH", "dst", "l2", "0"),
        ("RPUSH", "l3", "1", "2", "3", "4"),
        ("BLMPOP", "0", "2", "l1", "l3", "RIGHT", "COUNT", "3"),
        ("BLMPOP", "0", "1", "l3", "LEFT"),
        ("EXISTS", "l3"),
        ("BZPOPMIN", "z1", "z2", "0"),
        ("BZPOPMAX", "z2", "0"),
        ("BZMPOP", "0", "1", "z2", "MIN", "COUNT", "5"),
        ("EXISTS", "z2"),
        ("LRANGE", "l2", "0", "-1"),
        resp3=resp3,
    )
    assert replies[0] == b"*2\r\n$2\r\nl2\r\n$1\r\na\r\n"


def _command_info(port: int, name: str) -> list:
    reader = hiredis.Reader()
    raw = Raw(port)
    try:
        reader.feed(raw.call("COMMAND", "INFO", name))
    finally:
        raw.close()
    return reader.gets()[0]


@pytest.mark.parametrize(
    "name", ["blpop", "brpop", "blmove", "brpoplpush", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "client|unblock"]
)
def test_command_table_matches_redis(servers: Pair, name: str) -> None:
    mine, reference = (_command_info(port, name) for port in servers.ports)
    assert mine[:2] == reference[:2]  # name, arity
    assert set(mine[2]) == set(reference[2])  # flags
    assert mine[3:6] == reference[3:6]  # first key, last key, step


def test_argument_errors_match_redis(pair: Pair) -> None:
    both(
        pair,
        ("SET", "s", "v"),
        ("BLPOP", "k", "-1"),
        ("BLPOP", "k", "x"),
        ("BLPOP", "k", "1x"),
        ("BLPOP", "k", "inf"),
        ("BLPOP", "k", "1e18"),
        ("BLPOP", "k", " 1"),
        ("BLPOP", "k"),
        ("BLPOP", "s", "0"),
        ("BRPOP", "missing", "s", "0"),
        ("BZPOPMIN", "s", "0"),
        ("BLMOVE", "a", "b", "UP", "LEFT", "0"),
        ("BLMOVE", "a", "b", "LEFT", "RIGHT", "-1"),
        ("BLMOVE", "a", "b", "LEFT", "RIGHT"),
        ("BRPOPLPUSH", "s", "b", "0"),
        ("BLMPOP", "0", "0", "k", "LEFT"),
        ("BLMPOP", "0", "2", "k", "LEFT"),
        ("BLMPOP", "0", "1", "k", "UP"),
        ("BLMPOP", "0", "1", "k", "LEFT", "COUNT", "0"),
        ("BLMPOP", "-1", "1", "k", "LEFT"),
        ("BLMPOP", "x", "x", "k", "LEFT"),
        ("BZMPOP", "0", "1", "k", "LEFT"),
        ("BZMPOP", "bad", "1", "k", "MIN"),
        ("BZMPOP", "0", "1", "s", "MIN"),
    )


@pytest.mark.parametrize("resp3", [False, True])
def test_timeout_answers_nil(pair: Pair, resp3: bool) -> None:
    ours, theirs = pair.raw(resp3)
    for cmd in (
        ("BLPOP", "k", "0.01"),
        ("BRPOP", "k", "k2", "0.01"),
        ("BLMOVE", "k", "d", "LEFT", "LEFT", "0.01"),
        ("BRPOPLPUSH", "k", "d", "0.01"),
        ("BLMPOP", "0.01", "1", "k", "LEFT"),
        ("BZPOPMIN", "k", "0.01"),
        ("BZPOPMAX", "k", "0.01"),
        ("BZMPOP", "0.01", "1", "k", "MAX", "COUNT", "2"),
    ):
        mine, reference = ours.call(*cmd), theirs.call(*cmd)
        assert mine == reference == (b"_\r\n" if resp3 else b"*-1\r\n"), cmd
    assert ours.call("PING") == theirs.call("PING")


@pytest.mark.parametrize("resp3", [False, True])
def test_inside_multi_they_never_block(pair: Pair, resp3: bool) -> None:
    ours, theirs = pair.raw(resp3)
    commands = [
        ("MULTI",),
        ("BLPOP", "k", "0"),
        ("BLMOVE", "k", "d", "LEFT", "LEFT", "0"),
        ("BRPOPLPUSH", "k", "d", "0"),
        ("BLMPOP", "0", "1", "k", "LEFT"),
        ("BZPOPMIN", "k", "0"),
        ("BZMPOP", "0", "1", "k", "MIN"),
        ("RPUSH", "k", "v"),
        ("BRPOP", "k", "0"),
        ("EXEC",),
    ]
    for cmd in commands:
        mine, reference = ours.call(*cmd), theirs.call(*cmd)
        assert mine == reference, cmd


def test_a_push_wakes_the_blocked_client_with_the_same_reply(pair: Pair) -> None:
    cases = [
        (("BLPOP", "a", "b", "0"), ("RPUSH", "b", "x", "y")),
        (("BRPOP", "a", "0"), ("LPUSH", "a", "x", "y")),
        (("BLPOP", "a", "a", "0"), ("RPUSH", "a", "x", "y")),
        (("BLMOVE", "a", "a", "LEFT", "RIGHT", "0"), ("RPUSH", "a", "x", "y")),
        (("BLPOP", "a", "0"), ("EVAL", "return redis.call('RPUSH', KEYS[1], 'in-a-script')", "1", "a")),
        (("BLMOVE", "a", "d", "RIGHT", "LEFT", "0"), ("RPUSH", "a", "x", "y")),
        (("BRPOPLPUSH", "a", "d", "0"), ("RPUSH", "a", "x")),
        (("BLMPOP", "0", "2", "a", "b", "LEFT", "COUNT", "5"), ("RPUSH", "b", "1", "2", "3")),
        (("BZPOPMIN", "z", "0"), ("ZADD", "z", "2", "two", "1", "one")),
        (("BZPOPMAX", "y", "z", "0"), ("ZADD", "z", "2", "two", "1", "one")),
        (("BZMPOP", "0", "1", "z", "MAX", "COUNT", "10"), ("ZADD", "z", "2.5", "m", "1", "n")),
    ]
    for waiting, push in cases:
        for c in pair.clients:
            c.flushall()
        ours, theirs = pair.raw()
        ours.send(*waiting)
        theirs.send(*waiting)
        pair.blocked(1)
        pair.call(*push)
        assert ours.reply() == theirs.reply(), waiting
        pair.blocked(0)
        for key in ("a", "b", "d"):
            pair.call("LRANGE", key, "0", "-1")
        pair.call("ZRANGE", "z", "0", "-1", "WITHSCORES")


def test_fifo_among_clients_blocked_on_the_same_key(pair: Pair) -> None:
    waiting = []
    for i in range(4):
        ours, theirs = pair.raw()
        cmd = ("BLPOP", "q", "0") if i % 2 == 0 else ("BRPOP", "other", "q", "0")
        ours.send(*cmd)
        theirs.send(*cmd)
        pair.blocked(i + 1)  # one at a time: the order they blocked in is known
        waiting.append((ours, theirs))
    pair.call("RPUSH", "q", "1", "2", "3")
    served = [(ours.reply(), theirs.reply()) for ours, theirs in waiting[:3]]
    assert [mine for mine, _ in served] == [reference for _, reference in served]
    # First blocked, first served: the BLPOP gets the head, the BRPOP after it the tail.
    assert served[0][0].endswith(b"$1\r\n1\r\n") and served[1][0].endswith(b"$1\r\n3\r\n")
    pair.blocked(1)
    pair.call("LPUSH", "q", "4")
    assert waiting[3][0].reply() == waiting[3][1].reply()


def test_a_blocked_client_runs_its_pipelined_commands_after_its_reply(pair: Pair) -> None:
    ours, theirs = pair.raw()
    for raw in (ours, theirs):
        raw.sock.sendall(encode("BLPOP", "k", "0") + encode("PING") + encode("LLEN", "k"))
    pair.blocked(1)
    for c in pair.clients:
        assert [entry["flags"] for entry in c.client_list() if entry["cmd"] == "blpop"] == ["b"]
    pair.call("RPUSH", "k", "a", "b")
    for _ in range(3):
        assert ours.reply() == theirs.reply()


def test_blmove_chain_serves_the_next_waiter_on_the_destination(pair: Pair) -> None:
    first = pair.raw()
    for raw in first:
        raw.send("BLMOVE", "src", "mid", "LEFT", "RIGHT", "0")
    pair.blocked(1)
    second = pair.raw()
    for raw in second:
        raw.send("BLPOP", "mid", "0")
    pair.blocked(2)
    pair.call("RPUSH", "src", "v")
    assert first[0].reply() == first[1].reply() == b"$1\r\nv\r\n"
    assert second[0].reply() == second[1].reply() == b"*2\r\n$3\r\nmid\r\n$1\r\nv\r\n"
    both(pair, ("EXISTS", "src", "mid"))


def test_blmove_to_a_destination_of_another_type_answers_wrongtype(pair: Pair) -> None:
    waiting = pair.raw()
    for raw in waiting:
        raw.send("BLMOVE", "src", "dst", "RIGHT", "LEFT", "0")
    pair.blocked(1)
    both(pair, ("SET", "dst", "string"), ("RPUSH", "src", "v"))
    assert waiting[0].reply() == waiting[1].reply()
    pair.blocked(0)
    both(pair, ("LRANGE", "src", "0", "-1"), ("GET", "dst"))


def test_monitor_shows_the_blocking_command_once(pair: Pair) -> None:
    monitors = pair.raw()
    for raw in monitors:
        assert raw.call("MONITOR") == b"+OK\r\n"
    waiting = pair.raw()
    for raw in waiting:
        raw.send("BLPOP", "k", "0")
    pair.blocked(1)
    both(pair, ("RPUSH", "k", "v"))
    assert waiting[0].reply() == waiting[1].reply()
    both(pair, ("ECHO", "end"))  # the last line each monitor reads
    for raw in monitors:
        lines = []
        while not lines or b'"ECHO"' not in lines[-1]:
            lines.append(raw.reply())
        commands = [line.split(b"] ", 1)[1].split(b" ", 1)[0] for line in lines if b"] " in line]
        assert commands.count(b'"BLPOP"') == 1, lines
        assert commands.count(b'"RPUSH"') == 1, lines


def test_a_key_deleted_then_recreated_keeps_the_client_waiting(pair: Pair) -> None:
    waiting = pair.raw()
    for raw in waiting:
        raw.send("BLPOP", "k", "0")
    pair.blocked(1)
    ours, theirs = pair.raw()
    for cmd in (("MULTI",), ("LPUSH", "k", "gone"), ("DEL", "k"), ("EXEC",)):
        assert ours.call(*cmd) == theirs.call(*cmd)
    assert ours.call("INFO", "clients").count(b"blocked_clients:1") == 1
    assert theirs.call("INFO", "clients").count(b"blocked_clients:1") == 1
    pair.call("RPUSH", "k", "new")
    assert waiting[0].reply() == waiting[1].reply() == b"*2\r\n$1\r\nk\r\n$3\r\nnew\r\n"


def test_client_unblock(pair: Pair) -> None:
    ids = []
    waiting = []
    for i in range(3):
        raws = pair.raw()
        ids.append([int(raw.call("CLIENT", "ID")[1:-2]) for raw in raws])
        for raw in raws:
            raw.send("BZPOPMIN", "z", "0")
        pair.blocked(i + 1)
        waiting.append(raws)
    ours, theirs = pair.raw()
    for index, mode in enumerate([(), ("TIMEOUT",), ("ERROR",)]):
        mine = ours.call("CLIENT", "UNBLOCK", str(ids[index][0]), *mode)
        reference = theirs.call("CLIENT", "UNBLOCK", str(ids[index][1]), *mode)
        assert mine == reference == b":1\r\n"
        assert waiting[index][0].reply() == waiting[index][1].reply()
        assert waiting[index][0].call("PING") == b"+PONG\r\n"  # the connection goes on
    # Not blocked any more, unknown, or bad arguments.
    for args in ([str(ids[0][0])], ["999999"], [str(ids[0][0]), "SOON"], ["x"]):
        reference_args = [str(ids[0][1]) if a == str(ids[0][0]) else a for a in args]
        assert ours.call("CLIENT", "UNBLOCK", *args) == theirs.call("CLIENT", "UNBLOCK", *reference_args)


def test_client_kill_of_a_blocked_client_leaves_the_data(pair: Pair) -> None:
    for raw in pair.raw():
        raw.send("BLMPOP", "0", "1", "k", "RIGHT")
    pair.blocked(1)
    for c in pair.clients:
        assert c.client_kill_filter(_type="normal", skipme=True) >= 1
    pair.blocked(0)
    both(pair, ("RPUSH", "k", "v"), ("LRANGE", "k", "0", "-1"))


def test_blocked_clients_do_not_time_out_but_idle_ones_do(pair: Pair) -> None:
    node_client = pair.clients[0]
    waiting = pair.raw()[0]
    idle = pair.raw()[0]
    idle_id = int(idle.call("CLIENT", "ID")[1:-2])
    waiting.send("BLPOP", "k", "0")
    wait_until(lambda: node_client.info("clients")["blocked_clients"] == 1, DEADLINE)
    node_client.config_set("timeout", 1)
    try:
        wait_until(lambda: all(c["id"] != idle_id for c in node_client.client_list()), DEADLINE, what="idle closed")
        assert node_client.info("clients")["blocked_clients"] == 1
        node_client.rpush("k", "v")
        assert waiting.reply() == b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n"
    finally:
        node_client.config_set("timeout", 0)


def test_wrongtype_when_the_waited_key_changes_type(pair: Pair) -> None:
    # Redis 7.2's behaviour (7.0 left the client waiting): the re-run of the command answers WRONGTYPE.
    node = pair.clients[0]
    waiting = Raw(pair.node.port)
    pair.raws.append(waiting)
    waiting.send("BLPOP", "k", "0")
    wait_until(lambda: node.info("clients")["blocked_clients"] == 1, DEADLINE)
    node.set("k", "string")
    assert waiting.reply().startswith(b"-WRONGTYPE")
    zset_waiter = Raw(pair.node.port)
    pair.raws.append(zset_waiter)
    zset_waiter.send("BZPOPMIN", "z", "0")
    wait_until(lambda: node.info("clients")["blocked_clients"] == 1, DEADLINE)
    node.rpush("z", "a list")
    assert zset_waiter.reply().startswith(b"-WRONGTYPE")
    assert node.lrange("z", 0, -1) == [b"a list"]


def test_swapdb_and_move_serve_waiters(pair: Pair) -> None:
    node = pair.clients[0]
    waiting = Raw(pair.node.port)
    pair.raws.append(waiting)
    waiting.call("SELECT", "1")
    waiting.send("BLPOP", "k", "0")
    wait_until(lambda: node.info("clients")["blocked_clients"] == 1, DEADLINE)
    node.rpush("k", "from-db0")
    node.swapdb(0, 1)
    assert waiting.reply() == b"*2\r\n$1\r\nk\r\n$8\r\nfrom-db0\r\n"
    waiting.send("BLPOP", "m", "0")
    wait_until(lambda: node.info("clients")["blocked_clients"] == 1, DEADLINE)
    node.rpush("m", "moved")
    node.move("m", 1)
    assert waiting.reply() == b"*2\r\n$1\r\nm\r\n$5\r\nmoved\r\n"


def test_redis_py_threads_and_asyncio(pair: Pair) -> None:
    port = pair.node.port
    results: list[tuple[bytes, bytes] | None] = [None] * 3

    def pop(i: int) -> None:
        with redis.Redis(port=port, socket_timeout=DEADLINE) as c:
            results[i] = c.blpop(["threads"], timeout=0)

    threads = [threading.Thread(target=pop, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    wait_until(lambda: pair.clients[0].info("clients")["blocked_clients"] == 3, DEADLINE)
    pair.clients[0].rpush("threads", "a", "b", "c")
    for t in threads:
        t.join(DEADLINE)
    assert sorted(r[1] for r in results if r is not None) == [b"a", b"b", b"c"]

    async def main() -> list:
        clients = [redis.asyncio.Redis(port=port, socket_timeout=DEADLINE, protocol=3) for _ in range(3)]
        try:
            tasks = [asyncio.create_task(c.bzpopmax(["async"], timeout=0)) for c in clients]
            deadline = time.monotonic() + DEADLINE
            async with redis.asyncio.Redis(port=port) as admin:
                while (await admin.info("clients"))["blocked_clients"] < 3 and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                await admin.zadd("async", {"x": 1, "y": 2, "z": 3})
            return await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE)
        finally:
            for c in clients:
                await c.aclose()

    popped = asyncio.run(main())
    assert sorted(p[1] for p in popped) == [b"x", b"y", b"z"]


# -- replication, the AOF, role changes ---------------------------------------------------------


@pytest.fixture
def leader_and_replica(tmp_path: Path) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    leader = NodeProcess(tmp_path / "leader", "--appendonly", "yes", "--appendfsync", "always").start()
    replica = None
    try:
        replica = NodeProcess(tmp_path / "replica", "--replicaof", "127.0.0.1", str(leader.port)).start()
        wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up", DEADLINE)
        yield leader, replica
    finally:
        if replica is not None:
            replica.stop()
        leader.stop()


def _dump(c: redis.Redis) -> dict[bytes, object]:
    state: dict[bytes, object] = {}
    for key in sorted(c.keys()):
        kind = c.type(key)
        state[key] = c.lrange(key, 0, -1) if kind == b"list" else c.zrange(key, 0, -1, withscores=True)
    return state


def test_replica_converges_and_the_aof_logs_the_effects(leader_and_replica: tuple[NodeProcess, NodeProcess]) -> None:
    leader, replica = leader_and_replica
    lc, rc = leader.client(), replica.client()
    with pytest.raises(redis.ReadOnlyError):
        rc.blpop(["k"], timeout=0)  # a replica takes no writes, blocking ones included
    commands = [
        ("BLPOP", "l", "0"),
        ("BRPOP", "l", "0"),
        ("BLMOVE", "l", "moved", "LEFT", "RIGHT", "0"),
        ("BRPOPLPUSH", "l", "moved", "0"),
        ("BLMPOP", "0", "1", "l", "LEFT", "COUNT", "2"),
        ("BZPOPMIN", "z", "0"),
        ("BZPOPMAX", "z", "0"),
        ("BZMPOP", "0", "1", "z", "MIN", "COUNT", "2"),
    ]
    waiting = []
    for i, cmd in enumerate(commands):
        raw = Raw(leader.port)
        raw.send(*cmd)
        waiting.append(raw)
        wait_until(lambda n=i + 1: lc.info("clients")["blocked_clients"] == n, DEADLINE)
    lc.rpush("l", *[f"e{i}" for i in range(8)])
    lc.zadd("z", {f"m{i}": i for i in range(6)})
    replies = [raw.reply() for raw in waiting]
    for raw in waiting:
        raw.close()
    assert all(not r.startswith((b"-", b"*-1")) for r in replies), replies
    assert lc.info("clients")["blocked_clients"] == 0
    # An immediate serve is also replicated as its effect.
    assert lc.blpop(["l"], timeout=0) is not None
    wait_until(lambda: _dump(rc) == _dump(lc), DEADLINE, what="replica converged")
    assert lc.lrange("moved", 0, -1) == [b"e6", b"e1"]  # BLMOVE took e1, then BRPOPLPUSH e6
    aof_dir = leader.dir / "appendonlydir"
    logged = b"".join(p.read_bytes() for p in aof_dir.glob("*.incr.aof"))
    for effect in (b"LPOP", b"RPOP", b"LMOVE", b"RPOPLPUSH", b"ZPOPMIN", b"ZPOPMAX"):
        assert b"\r\n" + effect + b"\r\n" in logged
    for blocking in (b"BLPOP", b"BRPOP", b"BLMOVE", b"BRPOPLPUSH", b"BLMPOP", b"BZPOPMIN", b"BZPOPMAX", b"BZMPOP"):
        assert b"\r\n" + blocking + b"\r\n" not in logged
    expected = _dump(lc)
    leader.stop()
    leader.start()
    assert _dump(leader.client()) == expected


def test_becoming_a_replica_unblocks_with_an_error(tmp_path: Path) -> None:
    leader = NodeProcess(tmp_path / "leader").start()
    other = NodeProcess(tmp_path / "other").start()
    try:
        raw = Raw(other.port)
        raw.send("BLPOP", "k", "0")
        oc = other.client()
        wait_until(lambda: oc.info("clients")["blocked_clients"] == 1, DEADLINE)
        oc.replicaof("127.0.0.1", leader.port)
        assert raw.reply().startswith(b"-UNBLOCKED")
        assert oc.info("clients")["blocked_clients"] == 0
        raw.close()
    finally:
        other.stop()
        leader.stop()
