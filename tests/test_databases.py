"""Numbered databases: SELECT, DBSIZE, FLUSHDB/FLUSHALL, MOVE and SWAPDB, as Redis 7.0 answers.

Against a real ``kvcluster node`` (replies, several connections seeing a swap, WATCH,
redis-cli), an in-process node on a fake clock (exact TTLs and idle times, the
dirty counter), and byte-for-byte against a real ``redis-server``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from helpers import NodeProcess, RawClient, free_port, wait_until
from kvcluster.common.resp import OK, ErrorReply
from kvcluster.node.commands.table import REGISTRY
from kvcluster.node.core import Node
from kvcluster.node.settings import node_config

INT_RANGE = "value is out of range, value must between -2147483648 and 2147483647"


@pytest.fixture
def r2(node: NodeProcess) -> Iterator[redis.Redis]:
    """A RESP2 client on one connection (SELECT is per connection), on a flushed node."""
    c = node.client(protocol=2, single_connection_client=True)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def other(node: NodeProcess, r2: redis.Redis) -> Iterator[redis.Redis]:
    c = node.client(protocol=2, single_connection_client=True)
    yield c
    c.close()


@pytest.fixture
def raw2(node: NodeProcess, r2: redis.Redis) -> Iterator[RawClient]:
    with RawClient(node.port, resp=2) as c:
        yield c


def error_of(r: redis.Redis, *args: object) -> str:
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command(*args)
    return str(e.value)


def exec_watched(raw: RawClient) -> bytes:
    assert raw.call("MULTI") == b"+OK\r\n"
    assert raw.call("PING") == b"+QUEUED\r\n"
    return raw.call("EXEC")


class InProcessNode:
    """A Node without sockets, on a fake clock, with one client."""

    def __init__(self) -> None:
        self.now = 1_700_000_000_000
        self.node = Node(node_config(), clock_ms=lambda: self.now)
        self.client = self.node.new_client()
        self.ks = self.node.keyspace

    def __call__(self, *args: Any) -> Any:
        return self.node.execute(self.client, [a if isinstance(a, bytes) else str(a).encode() for a in args])

    def advance(self, ms: int) -> None:
        self.now += ms
        self.ks.update_lru_clock()


@pytest.fixture
def mem() -> InProcessNode:
    return InProcessNode()


# ---------------------------------------------------------------------------
# SELECT
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ("16", "DB index is out of range"),
        ("-1", "DB index is out of range"),
        ("x", "value is not an integer or out of range"),
        ("+1", "value is not an integer or out of range"),  # Redis's strict integer parsing
        (" 1", "value is not an integer or out of range"),
        ("1.0", "value is not an integer or out of range"),
        ("99999999999", INT_RANGE),
    ],
)
def test_select_errors(r2: redis.Redis, index: str, message: str) -> None:
    assert error_of(r2, "SELECT", index) == message


def test_select_isolates_databases(r2: redis.Redis) -> None:
    r2.set("k", "db0")
    assert r2.select(15) is True
    assert r2.get("k") is None
    r2.set("k", "db15")
    assert r2.dbsize() == 1
    r2.select(0)
    assert r2.get("k") == b"db0"


# ---------------------------------------------------------------------------
# MOVE
# ---------------------------------------------------------------------------


def test_move_keeps_value_and_ttl(r2: redis.Redis) -> None:
    r2.set("k", "v", px=60_000)
    deadline = r2.pexpiretime("k")
    assert r2.move("k", 3) is True
    assert r2.exists("k") == 0
    r2.select(3)
    assert r2.get("k") == b"v"
    assert r2.pexpiretime("k") == deadline  # the same deadline, to the millisecond
    # And back, without a TTL this time.
    r2.persist("k")
    assert r2.move("k", 0) is True
    r2.select(0)
    assert r2.ttl("k") == -1


def test_move_every_type(r2: redis.Redis) -> None:
    r2.rpush("list", "a", "b")
    r2.sadd("set", "a")
    r2.hset("hash", "f", "v")
    r2.zadd("zset", {"m": 2})
    for key in ("list", "set", "hash", "zset"):
        assert r2.move(key, 1) is True
    assert r2.dbsize() == 0
    r2.select(1)
    assert r2.lrange("list", 0, -1) == [b"a", b"b"]
    assert r2.smembers("set") == {b"a"}
    assert r2.hgetall("hash") == {b"f": b"v"}
    assert r2.zrange("zset", 0, -1, withscores=True) == [(b"m", 2.0)]


def test_move_does_not_overwrite(r2: redis.Redis) -> None:
    r2.set("k", "src", ex=100)
    r2.select(1)
    r2.set("k", "dst")
    r2.select(0)
    assert r2.move("k", 1) is False
    assert r2.get("k") == b"src"
    assert r2.ttl("k") in (99, 100)
    r2.select(1)
    assert r2.get("k") == b"dst"
    assert r2.ttl("k") == -1
    r2.select(0)
    assert r2.move("nokey", 1) is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("MOVE", "k", "0"), "source and destination objects are the same"),
        (("MOVE", "nokey", "0"), "source and destination objects are the same"),
        (("MOVE", "k", "16"), "DB index is out of range"),
        (("MOVE", "nokey", "-1"), "DB index is out of range"),
        (("MOVE", "k", "x"), "value is not an integer or out of range"),
        (("MOVE", "k", "+1"), "value is not an integer or out of range"),
        (("MOVE", "k", "99999999999"), INT_RANGE),
        (("MOVE", "k"), "wrong number of arguments for 'move' command"),
        (("MOVE", "k", "1", "2"), "wrong number of arguments for 'move' command"),
    ],
)
def test_move_errors(r2: redis.Redis, args: tuple[str, ...], message: str) -> None:
    r2.set("k", "v")
    assert error_of(r2, *args) == message
    assert r2.get("k") == b"v"


def test_move_and_swapdb_raw_replies(node: NodeProcess, raw2: RawClient) -> None:
    raw2.call("SET", "k", "v")
    assert raw2.call("MOVE", "k", "1") == b":1\r\n"
    assert raw2.call("MOVE", "k", "1") == b":0\r\n"
    with RawClient(node.port, resp=3) as raw3:
        raw3.call("SELECT", "1")
        assert raw3.call("MOVE", "k", "2") == b":1\r\n"
        assert raw3.call("SWAPDB", "1", "2") == b"+OK\r\n"


def test_move_lazily_expired_keys(mem: InProcessNode) -> None:
    expired: list[tuple[int, bytes]] = []
    mem.ks.on_expired_hook = lambda db, key: expired.append((db.id, key))
    mem("SET", "k", "v", "PX", 10)
    mem("SELECT", 1)
    mem("SET", "k", "old", "PX", 10)
    mem("SET", "k2", "v")
    mem("SELECT", 0)
    mem("SET", "k2", "v2")
    mem.advance(10)
    # An expired source is no key; an expired destination is no obstacle.
    assert mem("MOVE", "k", 1) == 0
    assert expired == [(0, b"k")]
    mem("SET", "k", "new")
    assert mem("MOVE", "k", 1) == 1
    assert expired == [(0, b"k"), (1, b"k")]
    mem("SELECT", 1)
    assert mem("GET", "k") == b"new"
    assert mem("PTTL", "k") == -1


def test_move_keeps_the_access_time(mem: InProcessNode) -> None:
    mem("SET", "k", "v")
    mem.advance(10_000)
    assert mem("OBJECT", "IDLETIME", "k") == 10
    assert mem("MOVE", "k", 1) == 1  # its lookup is an access, as in Redis
    mem.advance(3_000)
    mem("SELECT", 1)
    assert mem("OBJECT", "IDLETIME", "k") == 3


# ---------------------------------------------------------------------------
# SWAPDB
# ---------------------------------------------------------------------------


def test_swapdb_every_client_sees_the_swap(r2: redis.Redis, other: redis.Redis) -> None:
    r2.set("a", "in0", px=60_000)
    deadline = r2.pexpiretime("a")
    r2.select(1)
    r2.mset({"b": "in1", "c": "in1"})
    r2.select(0)
    other.select(1)
    assert other.dbsize() == 2
    assert r2.swapdb(0, 1) is True
    # Clients keep their index and see the other contents at once, TTLs included.
    assert sorted(r2.keys("*")) == [b"b", b"c"]
    assert other.keys("*") == [b"a"]
    assert other.pexpiretime("a") == deadline
    assert sorted(r2.scan(0, count=100)[1]) == [b"b", b"c"]
    assert r2.randomkey() in (b"b", b"c")
    # Writes go to the swapped-in data.
    other.set("d", "x")
    assert r2.swapdb(1, 0) is True
    assert sorted(r2.keys("*")) == [b"a", b"d"]
    assert sorted(other.keys("*")) == [b"b", b"c"]


def test_swapdb_with_an_empty_database_and_flush(r2: redis.Redis) -> None:
    r2.mset({"x": 1, "y": 2})
    assert r2.swapdb(0, 15) is True
    assert r2.dbsize() == 0
    r2.select(15)
    assert r2.dbsize() == 2
    r2.flushdb()
    r2.select(0)
    assert r2.swapdb(15, 0) is True
    assert r2.dbsize() == 0


def test_swapdb_same_index(r2: redis.Redis, other: redis.Redis, raw2: RawClient) -> None:
    r2.set("k", "v")
    raw2.call("WATCH", "k")
    assert other.swapdb(0, 0) is True
    assert r2.get("k") == b"v"
    assert exec_watched(raw2) == b"*1\r\n+PONG\r\n"  # nothing changed: the WATCH holds


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("SWAPDB", "0", "x"), "invalid second DB index"),
        (("SWAPDB", "x", "0"), "invalid first DB index"),
        (("SWAPDB", "x", "y"), "invalid first DB index"),  # the first is checked first
        (("SWAPDB", "99999999999", "0"), "invalid first DB index"),
        (("SWAPDB", "0", "99999999999"), "invalid second DB index"),
        (("SWAPDB", "+1", "0"), "invalid first DB index"),
        (("SWAPDB", "0", "16"), "DB index is out of range"),
        (("SWAPDB", "16", "0"), "DB index is out of range"),
        (("SWAPDB", "-1", "0"), "DB index is out of range"),
        (("SWAPDB", "0", "-1"), "DB index is out of range"),
        (("SWAPDB", "0"), "wrong number of arguments for 'swapdb' command"),
        (("SWAPDB", "0", "1", "2"), "wrong number of arguments for 'swapdb' command"),
    ],
)
def test_swapdb_errors(r2: redis.Redis, args: tuple[str, ...], message: str) -> None:
    r2.set("k", "v")
    assert error_of(r2, *args) == message
    assert r2.get("k") == b"v"


# ---------------------------------------------------------------------------
# WATCH across databases
# ---------------------------------------------------------------------------


def test_watch_and_move(r2: redis.Redis, other: redis.Redis, raw2: RawClient) -> None:
    # The watcher of the source key.
    r2.set("k", "v")
    raw2.call("WATCH", "k")
    other.move("k", 1)
    assert exec_watched(raw2) == b"*-1\r\n"
    # The watcher of the destination (the key did not exist there).
    r2.flushall()
    r2.set("k", "v")
    raw2.call("SELECT", "1")
    raw2.call("WATCH", "k")
    other.move("k", 1)
    assert exec_watched(raw2) == b"*-1\r\n"
    # A MOVE that does nothing changes nothing.
    raw2.call("WATCH", "k")
    other.move("k", 1)  # k is gone from db 0 now
    other.move("nokey", 1)
    assert exec_watched(raw2) == b"*1\r\n+PONG\r\n"


def test_watch_and_swapdb(r2: redis.Redis, other: redis.Redis, raw2: RawClient) -> None:
    # Watching a key that exists in neither database: the swap changes nothing for it.
    r2.set("k", "v")
    raw2.call("WATCH", "missing")
    other.swapdb(0, 1)
    assert exec_watched(raw2) == b"*1\r\n+PONG\r\n"
    # A swap of two other databases leaves db 0's watchers alone.
    raw2.call("WATCH", "missing")
    other.swapdb(2, 3)
    assert exec_watched(raw2) == b"*1\r\n+PONG\r\n"
    # A watched key absent from the watcher's database but present in the other one: the swap
    # brings it in, which is a change.
    r2.select(1)
    assert r2.get("k") == b"v"  # moved to db 1 by the first swap
    raw2.call("WATCH", "k")  # raw2 is on db 0, where k is absent
    other.swapdb(0, 1)
    assert exec_watched(raw2) == b"*-1\r\n"
    r2.select(0)


# ---------------------------------------------------------------------------
# redis-cli
# ---------------------------------------------------------------------------


def test_redis_cli_database_option(node: NodeProcess, r2: redis.Redis, redis_cli: str) -> None:
    cli = [redis_cli, "-p", str(node.port)]
    r2.mset({"a": 1, "b": 2})

    def run(*args: str) -> str:
        return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=30, check=True).stdout.strip()

    assert run("SWAPDB", "0", "7") == "OK"
    assert run("-n", "7", "DBSIZE") == "2"
    assert run("DBSIZE") == "0"
    assert run("-n", "7", "MOVE", "a", "0") == "1"
    assert run("GET", "a") == "1"
    assert run("MOVE", "a", "0") == "ERR source and destination objects are the same"
    assert run("SWAPDB", "0", "x") == "ERR invalid second DB index"


# ---------------------------------------------------------------------------
# In-process: the dirty counter
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "changes"),
    [
        (("MOVE", "k", 1), 1),
        (("MOVE", "nokey", 1), 0),
        (("MOVE", "taken", 1), 0),
        (("SWAPDB", 0, 1), 1),
        (("SWAPDB", 0, 0), 1),  # Redis counts it too
        (("SWAPDB", 0, 16), 0),
        (("SELECT", 1), 0),
        (("DBSIZE",), 0),
    ],
)
def test_dirty_counter(mem: InProcessNode, command: tuple, changes: int) -> None:
    mem("SET", "k", "v")
    mem("SET", "taken", "v")
    mem("SELECT", 1)
    mem("SET", "taken", "v")
    mem("SELECT", 0)
    before = mem.ks.dirty
    mem(*command)
    assert mem.ks.dirty - before == changes


def test_in_process_replies(mem: InProcessNode) -> None:
    assert mem("SWAPDB", 0, 1) == OK
    assert mem("MOVE", "k", 0) == ErrorReply("ERR source and destination objects are the same")
    assert mem("SELECT", 16) == ErrorReply("ERR DB index is out of range")


# ---------------------------------------------------------------------------
# Byte-for-byte against a real redis-server
# ---------------------------------------------------------------------------


def _pong(port: int) -> bool:
    with RawClient(port) as c:
        return c.call("PING") == b"+PONG\r\n"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real redis-server on a free port: the reference for exact replies."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: `make deps` installs Debian's redis-server")
    port = free_port()
    directory = tmp_path_factory.mktemp("redis-reference")
    with open(directory / "redis.log", "wb") as log:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--daemonize", "no", "--dir", str(directory)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: _pong(port), timeout=10, what="redis-server")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


SCRIPT: list[tuple[str, ...]] = [
    ("SET", "k", "v"),
    ("SELECT", "99999999999"),
    ("SELECT", "+1"),
    ("SELECT", " 1"),
    ("SELECT", "16"),
    ("SELECT", "-1"),
    ("SELECT", "x"),
    ("SELECT",),
    ("MOVE", "k", "0"),
    ("MOVE", "k", "16"),
    ("MOVE", "k", "-1"),
    ("MOVE", "k", "x"),
    ("MOVE", "k", "99999999999"),
    ("MOVE", "k", " 1"),
    ("MOVE", "nokey", "1"),
    ("MOVE", "nokey", "0"),
    ("EXPIREAT", "k", "4102444800"),
    ("MOVE", "k", "1"),
    ("MOVE", "k", "1"),
    ("EXISTS", "k"),
    ("DBSIZE",),
    ("SELECT", "1"),
    ("GET", "k"),
    ("EXPIRETIME", "k"),
    ("DBSIZE",),
    ("SET", "k2", "local"),
    ("SELECT", "0"),
    ("SET", "k2", "here"),
    ("MOVE", "k2", "1"),
    ("GET", "k2"),
    ("SWAPDB", "0", "x"),
    ("SWAPDB", "x", "0"),
    ("SWAPDB", "x", "y"),
    ("SWAPDB", "0", "16"),
    ("SWAPDB", "16", "0"),
    ("SWAPDB", "0", "99999999999"),
    ("SWAPDB", "-1", "0"),
    ("SWAPDB", "0", "-1"),
    ("SWAPDB", "0"),
    ("SWAPDB", "0", "0"),
    ("GET", "k2"),
    ("SWAPDB", "0", "1"),
    ("GET", "k2"),
    ("GET", "k"),
    ("EXPIRETIME", "k"),
    ("DBSIZE",),
    ("SWAPDB", "1", "0"),
    ("GET", "k2"),
    ("FLUSHDB",),
    ("DBSIZE",),
    ("SELECT", "1"),
    ("DBSIZE",),
    ("FLUSHALL",),
    ("DBSIZE",),
]


@pytest.mark.parametrize("resp", [2, 3])
def test_replies_match_redis(node: NodeProcess, redis_server: int, resp: int) -> None:
    ours, reference = RawClient(node.port, resp), RawClient(redis_server, resp)
    try:
        for conn in (ours, reference):
            conn.call("FLUSHALL")
        for command in SCRIPT:
            assert ours.call(*command) == reference.call(*command), command
    finally:
        ours.close()
        reference.close()


DATABASE_COMMANDS = ["select", "dbsize", "flushdb", "flushall", "move", "swapdb"]


def test_command_table_matches_redis(redis_server: int) -> None:
    reference = redis.Redis(host="127.0.0.1", port=redis_server, protocol=2, decode_responses=True)
    try:
        info = reference.execute_command("COMMAND", "INFO", *DATABASE_COMMANDS)
    finally:
        reference.close()
    assert sorted(info) == sorted(DATABASE_COMMANDS)
    for name, entry in info.items():
        cmd = REGISTRY[name]
        assert cmd.arity == entry["arity"], name
        assert cmd.flags == frozenset(entry["flags"]), name
        assert (cmd.first_key, cmd.last_key, cmd.key_step) == (
            entry["first_key_pos"],
            entry["last_key_pos"],
            entry["step_count"],
        ), name
    assert (REGISTRY["move"].group, REGISTRY["swapdb"].group) == ("generic", "server")
