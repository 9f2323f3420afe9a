"""The string command family: GET, SET and friends, exactly as Redis 7 answers.

Three layers:

* redis-py against a real ``kvcluster node`` (RESP2 and RESP3), for behaviour a
  client sees;
* an in-process :class:`Node` with a fake clock, for what needs exact control or
  inspection: TTL arithmetic, hit/miss statistics, the dirty counter, wrong-type
  keys, replica behaviour;
* byte-for-byte comparison with a real ``redis-server`` started here, over the
  same command scripts (fixed and seeded-random) and the command table metadata.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from helpers import NodeProcess, free_port, wait_until
from kvcluster.common.resp import OK, ErrorReply
from kvcluster.node.commands.strings import string2ll
from kvcluster.node.commands.table import REGISTRY
from kvcluster.node.core import Node
from kvcluster.node.settings import node_config

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "value is not an integer or out of range"
LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _encode(args: tuple[Any, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = b"%d" % a
        out.append(b"$%d\r\n%b\r\n" % (len(a), a))
    return b"".join(out)


class RawConnection:
    """A socket speaking RESP that returns each reply's exact bytes (types and all)."""

    def __init__(self, port: int, resp: int = 2):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        if resp == 3:
            assert self.call("HELLO", "3").startswith(b"%")

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n") + 2
        line, self.buf = self.buf[:end], self.buf[end:]
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _reply(self) -> bytes:
        line = self._line()
        kind = line[:1]
        if kind in b"$=!":
            n = int(line[1:-2])
            return line if n < 0 else line + self._exactly(n + 2)
        if kind in b"*~>%|":
            n = int(line[1:-2])
            if n < 0:
                return line
            n *= 2 if kind in b"%|" else 1
            return line + b"".join(self._reply() for _ in range(n))
        return line

    def call(self, *args: Any) -> bytes:
        self.sock.sendall(_encode(args))
        return self._reply()


class InProcessNode:
    """A Node without sockets, on a fake clock, with one client."""

    def __init__(self) -> None:
        self.now = 1_700_000_000_000
        self.node = Node(node_config(), clock_ms=lambda: self.now)
        self.client = self.node.new_client()
        self.db = self.client.db
        self.stats = self.node.stats
        self.ks = self.node.keyspace

    def __call__(self, *args: Any) -> Any:
        return self.node.execute(self.client, [a if isinstance(a, bytes) else str(a).encode() for a in args])


def err(message: str) -> ErrorReply:
    return ErrorReply(message)


@pytest.fixture
def raw(node: NodeProcess, r: redis.Redis) -> Iterator[RawConnection]:
    """A raw RESP2 connection to the flushed test node."""
    conn = RawConnection(node.port)
    yield conn
    conn.close()


@pytest.fixture
def raw3(node: NodeProcess, r: redis.Redis) -> Iterator[RawConnection]:
    conn = RawConnection(node.port, resp=3)
    yield conn
    conn.close()


@pytest.fixture
def mem() -> InProcessNode:
    return InProcessNode()


# ---------------------------------------------------------------------------
# string2ll: Redis's strict integer parser
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"0", 0),
        (b"7", 7),
        (b"-7", -7),
        (b"1234567890", 1234567890),
        (b"9223372036854775807", LLONG_MAX),
        (b"-9223372036854775808", LLONG_MIN),
        (b"9223372036854775808", None),
        (b"-9223372036854775809", None),
        (b"99999999999999999999", None),
        (b"", None),
        (b"-", None),
        (b"+1", None),
        (b" 1", None),
        (b"1 ", None),
        (b"01", None),
        (b"-0", None),
        (b"00", None),
        (b"1.0", None),
        (b"1e3", None),
        (b"0x10", None),
        (b"1_000", None),
        (b"\xd9\xa1", None),  # ARABIC-INDIC DIGIT ONE: not an ASCII digit
        (b"000000000000000000001", None),
    ],
)
def test_string2ll(text: bytes, value: int | None) -> None:
    assert string2ll(text) == value


# ---------------------------------------------------------------------------
# GET / SET and options, against the real node
# ---------------------------------------------------------------------------


def test_get_set_binary_safe(r: redis.Redis) -> None:
    values = [b"", b"\x00\r\n\xff", b"x" * 100_000, "héllo".encode()]
    for i, value in enumerate(values):
        assert r.set(f"k{i}", value) is True
        assert r.get(f"k{i}") == value
    assert r.get("missing") is None
    assert r.set("k0", "overwritten") is True
    assert r.get("k0") == b"overwritten"


def test_set_replies_raw(raw: RawConnection) -> None:
    assert raw.call("SET", "k", "v") == b"+OK\r\n"
    assert raw.call("SET", "k", "v2", "NX") == b"$-1\r\n"
    assert raw.call("SET", "k", "v2", "XX") == b"+OK\r\n"
    assert raw.call("SET", "new", "v", "XX") == b"$-1\r\n"
    assert raw.call("GET", "new") == b"$-1\r\n"
    assert raw.call("SET", "new", "v", "NX") == b"+OK\r\n"
    # GET: the old value (or nil) instead of OK, also when NX/XX stop the write.
    assert raw.call("SET", "k", "v3", "GET") == b"$2\r\nv2\r\n"
    assert raw.call("SET", "k", "v4", "NX", "GET") == b"$2\r\nv3\r\n"
    assert raw.call("GET", "k") == b"$2\r\nv3\r\n"
    assert raw.call("SET", "fresh", "x", "GET") == b"$-1\r\n"
    assert raw.call("GET", "fresh") == b"$1\r\nx\r\n"
    assert raw.call("SET", "absent", "x", "XX", "GET") == b"$-1\r\n"
    assert raw.call("GET", "absent") == b"$-1\r\n"
    # Options are case-insensitive and may repeat.
    assert raw.call("SET", "k", "v", "nx", "Nx") == b"$-1\r\n"
    assert raw.call("SET", "k", "v", "ex", "100", "EX", "200", "get", "GET") == b"$2\r\nv3\r\n"


def test_set_replies_resp3(raw3: RawConnection) -> None:
    assert raw3.call("SET", "k", "v", "GET") == b"_\r\n"
    assert raw3.call("SET", "k", "v", "NX") == b"_\r\n"
    assert raw3.call("SET", "k", "w", "GET") == b"$1\r\nv\r\n"
    assert raw3.call("GET", "nope") == b"_\r\n"


@pytest.mark.parametrize(
    "options",
    [
        ["NX", "XX"],
        ["XX", "NX"],
        ["EX"],
        ["PX"],
        ["EXAT"],
        ["PXAT"],
        ["NX", "EX"],
        ["EX", "10", "PX", "10"],
        ["PX", "10", "EXAT", "10"],
        ["EXAT", "10", "PXAT", "10"],
        ["KEEPTTL", "EX", "5"],
        ["EX", "5", "KEEPTTL"],
        ["PERSIST"],
        ["KEEPTTL", "PERSIST"],
        ["FOO"],
        ["KEEPTTLX"],
        ["GETX"],
        ["N"],
        ["a-very-long-option-name"],
        ["NX", "10"],
    ],
)
def test_set_syntax_errors(r: redis.Redis, options: list[str]) -> None:
    with pytest.raises(redis.ResponseError, match=r"^syntax error$"):
        r.execute_command("SET", "k", "v", *options)
    assert r.get("k") is None


@pytest.mark.parametrize(
    "options",
    [
        ["EX", "0"],
        ["EX", "-1"],
        ["PX", "0"],
        ["PX", "-100"],
        ["EXAT", "0"],
        ["PXAT", "-1"],
        # Would overflow a signed 64-bit unix-ms time.
        ["EX", "9223372036854775"],
        ["EX", "9223372036854776"],
        ["PX", "9223372036854775807"],
        ["PX", "9223372036854775000"],
        ["EXAT", "9223372036854776"],
    ],
)
def test_set_invalid_expire_time(r: redis.Redis, options: list[str]) -> None:
    with pytest.raises(redis.ResponseError, match=r"^invalid expire time in 'set' command$"):
        r.execute_command("SET", "k", "v", *options)
    assert r.get("k") is None


@pytest.mark.parametrize("value", ["abc", "+10", " 10", "010", "1.5", "", "9223372036854775808"])
def test_set_expire_not_an_integer(r: redis.Redis, value: str) -> None:
    with pytest.raises(redis.ResponseError, match=f"^{NOT_INTEGER}$"):
        r.execute_command("SET", "k", "v", "EX", value)


def test_set_with_ttl_expires(r: redis.Redis) -> None:
    assert r.set("k", "v", px=50) is True
    assert r.get("k") == b"v"
    wait_until(lambda: r.get("k") is None, timeout=5, what="key with PX 50 to expire")
    # An absolute time already past: OK, and the key is gone for every read.
    assert r.set("past", "v", pxat=1) is True
    assert r.get("past") is None
    assert r.mget("past") == [None]
    assert r.strlen("past") == 0
    # Extreme but valid absolute times are accepted.
    assert r.execute_command("SET", "far", "v", "PXAT", str(LLONG_MAX)) is True
    assert r.execute_command("SET", "far2", "v", "EXAT", "9223372036854775") is True
    assert r.get("far") == b"v"
    assert r.get("far2") == b"v"


def test_setnx_setex_psetex(raw: RawConnection, r: redis.Redis) -> None:
    assert raw.call("SETNX", "k", "v") == b":1\r\n"
    assert raw.call("SETNX", "k", "w") == b":0\r\n"
    assert r.get("k") == b"v"
    assert raw.call("SETEX", "k", "100", "sv") == b"+OK\r\n"
    assert r.get("k") == b"sv"
    assert raw.call("PSETEX", "p", "100000", "pv") == b"+OK\r\n"
    assert r.get("p") == b"pv"
    assert raw.call("SETEX", "k", "0", "v") == b"-ERR invalid expire time in 'setex' command\r\n"
    assert raw.call("psetex", "k", "-5", "v") == b"-ERR invalid expire time in 'psetex' command\r\n"
    assert raw.call("SETEX", "k", "x", "v") == b"-ERR value is not an integer or out of range\r\n"
    assert raw.call("SETEX", "k", "10") == b"-ERR wrong number of arguments for 'setex' command\r\n"
    assert raw.call("PSETEX", "short", "30", "v") == b"+OK\r\n"
    wait_until(lambda: r.get("short") is None, timeout=5, what="PSETEX 30 to expire")


# ---------------------------------------------------------------------------
# MGET / MSET / MSETNX
# ---------------------------------------------------------------------------


def test_mget_mset_msetnx(raw: RawConnection, r: redis.Redis) -> None:
    assert raw.call("MSET", "a", "1", "b", "2", "a", "3") == b"+OK\r\n"
    assert r.mget("a", "b", "c") == [b"3", b"2", None]
    assert raw.call("MSET", "a") == b"-ERR wrong number of arguments for 'mset' command\r\n"
    assert raw.call("MSET", "a", "1", "b") == b"-ERR wrong number of arguments for 'mset' command\r\n"
    assert raw.call("MSETNX", "a", "1", "b") == b"-ERR wrong number of arguments for 'msetnx' command\r\n"
    # MSETNX: all or nothing.
    assert raw.call("MSETNX", "c", "x", "a", "y") == b":0\r\n"
    assert r.mget("a", "c") == [b"3", None]
    assert raw.call("MSETNX", "c", "x", "d", "y") == b":1\r\n"
    assert r.mget("c", "d") == [b"x", b"y"]
    # The same new key twice: set, last value wins.
    assert raw.call("MSETNX", "e", "1", "e", "2") == b":1\r\n"
    assert r.get("e") == b"2"
    assert raw.call("MGET", "a", "nope") == b"*2\r\n$1\r\n3\r\n$-1\r\n"


def test_mget_resp3_nulls(raw3: RawConnection) -> None:
    raw3.call("SET", "a", "1")
    assert raw3.call("MGET", "a", "b") == b"*2\r\n$1\r\n1\r\n_\r\n"


# ---------------------------------------------------------------------------
# GETSET / GETDEL / GETEX
# ---------------------------------------------------------------------------


def test_getset_getdel(r: redis.Redis) -> None:
    assert r.getset("k", "a") is None
    assert r.getset("k", "b") == b"a"
    assert r.get("k") == b"b"
    assert r.getdel("k") == b"b"
    assert r.get("k") is None
    assert r.getdel("k") is None


def test_getex(r: redis.Redis, raw: RawConnection) -> None:
    assert r.getex("missing") is None
    # A missing key answers nil before the expire value is even checked.
    assert raw.call("GETEX", "missing", "EX", "-1") == b"$-1\r\n"
    r.set("k", "v")
    assert r.getex("k") == b"v"
    assert r.getex("k", ex=100) == b"v"
    assert r.getex("k", persist=True) == b"v"
    assert raw.call("GETEX", "k", "EX", "-1") == b"-ERR invalid expire time in 'getex' command\r\n"
    assert raw.call("GETEX", "k", "PX", "abc") == b"-ERR value is not an integer or out of range\r\n"
    for options in (["EX"], ["NX"], ["XX"], ["GET"], ["KEEPTTL"], ["PERSIST", "EX", "10"], ["EX", "1", "PX", "1"]):
        assert raw.call("GETEX", "k", *options) == b"-ERR syntax error\r\n", options
    # An absolute time already past deletes the key at once.
    assert r.getex("k", pxat=1) == b"v"
    assert r.get("k") is None
    r.set("k2", "v")
    assert r.getex("k2", px=30) == b"v"
    wait_until(lambda: r.get("k2") is None, timeout=5, what="GETEX PX 30 to expire")


# ---------------------------------------------------------------------------
# APPEND / STRLEN / GETRANGE / SUBSTR / SETRANGE
# ---------------------------------------------------------------------------


def test_append_strlen(r: redis.Redis) -> None:
    assert r.strlen("k") == 0
    assert r.append("k", "hello") == 5
    assert r.append("k", " world") == 11
    assert r.get("k") == b"hello world"
    assert r.strlen("k") == 11
    # Appending nothing to a missing key still creates it (empty).
    assert r.append("empty", "") == 0
    assert r.set("empty", "x", nx=True) is None
    assert r.get("empty") == b""
    assert r.append("num", "1") == 1
    assert r.incr("num") == 2
    assert r.append("num", "0") == 2
    assert r.get("num") == b"20"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, -1, b"hello"),
        (0, 0, b"h"),
        (1, 3, b"ell"),
        (-3, -1, b"llo"),
        (-5, -1, b"hello"),
        (0, -100, b"h"),  # Redis quirk: the end clamps to 0
        (-1, -5, b""),
        (-100, -200, b""),
        (-100, 2, b"hel"),
        (3, 1, b""),
        (10, 20, b""),
        (4, 4, b"o"),
        (2, 100, b"llo"),
        (0, LLONG_MAX, b"hello"),
        (LLONG_MIN, -1, b"hello"),
    ],
)
def test_getrange(r: redis.Redis, start: int, end: int, expected: bytes) -> None:
    r.set("s", "hello")
    assert r.getrange("s", start, end) == expected
    assert r.execute_command("SUBSTR", "s", start, end) == expected


def test_getrange_edges(raw: RawConnection) -> None:
    assert raw.call("GETRANGE", "missing", "0", "-1") == b"$0\r\n\r\n"
    raw.call("SET", "e", "")
    assert raw.call("GETRANGE", "e", "0", "-1") == b"$0\r\n\r\n"
    assert raw.call("GETRANGE", "e", "-1", "0") == b"$0\r\n\r\n"
    assert raw.call("GETRANGE", "missing", "a", "1") == b"-ERR value is not an integer or out of range\r\n"
    assert raw.call("GETRANGE", "e", "0", "9223372036854775808") == b"-ERR value is not an integer or out of range\r\n"


def test_setrange(r: redis.Redis, raw: RawConnection) -> None:
    assert r.setrange("m", 5, "") == 0
    assert r.get("m") is None  # nothing set on a missing key creates nothing
    assert r.setrange("m", 3, "ab") == 5
    assert r.get("m") == b"\x00\x00\x00ab"
    assert r.setrange("m", 1, "XYZW") == 5
    assert r.get("m") == b"\x00XYZW"
    assert r.setrange("m", 8, "!") == 9
    assert r.get("m") == b"\x00XYZW\x00\x00\x00!"
    assert r.setrange("m", 0, "") == 9
    assert raw.call("SETRANGE", "m", "-1", "x") == b"-ERR offset is out of range\r\n"
    assert raw.call("SETRANGE", "m", "x", "x") == b"-ERR value is not an integer or out of range\r\n"
    too_big = b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
    assert raw.call("SETRANGE", "m", str(512 * 1024 * 1024 - 1), "ab") == too_big
    assert raw.call("SETRANGE", "m", str(LLONG_MAX), "ab") == too_big
    assert raw.call("SETRANGE", "new", str(512 * 1024 * 1024 - 1), "ab") == too_big
    assert raw.call("SETRANGE", "new", str(512 * 1024 * 1024), "") == b":0\r\n"
    assert r.get("new") is None


def test_size_limits_follow_proto_max_bulk_len(tmp_path: Path) -> None:
    with NodeProcess(tmp_path, "--proto-max-bulk-len", "1mb") as small:
        c = small.client()
        limit = 1024 * 1024
        assert c.setrange("k", limit - 2, "ab") == limit
        with pytest.raises(redis.ResponseError, match=r"^string exceeds maximum allowed size \(proto-max-bulk-len\)$"):
            c.setrange("k", limit - 1, "ab")
        with pytest.raises(redis.ResponseError, match=r"^string exceeds maximum allowed size \(proto-max-bulk-len\)$"):
            c.append("k", "x")
        assert c.strlen("k") == limit
        # LCS refuses when Redis's (n+1)*(m+1) uint32 table would pass the limit.
        c.set("a", "x" * 600)
        c.set("b", "y" * 600)
        with pytest.raises(
            redis.ResponseError,
            match=r"^Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len$",
        ):
            c.lcs("a", "b")
        c.set("b", "x" * 400)
        assert c.lcs("a", "b", len=True) == 400
        c.close()


# ---------------------------------------------------------------------------
# INCR / DECR / INCRBY / DECRBY
# ---------------------------------------------------------------------------


def test_incr_decr(r: redis.Redis) -> None:
    assert r.incr("n") == 1
    assert r.incrby("n", -5) == -4
    assert r.decr("n") == -5
    assert r.decrby("n", 10) == -15
    assert r.get("n") == b"-15"
    r.set("n", LLONG_MAX - 1)
    assert r.incr("n") == LLONG_MAX
    r.set("n", LLONG_MIN + 1)
    assert r.decr("n") == LLONG_MIN
    assert r.incrby("n", LLONG_MAX) == -1


@pytest.mark.parametrize(
    ("start", "command", "args", "message"),
    [
        (str(LLONG_MAX), "INCR", [], "increment or decrement would overflow"),
        (str(LLONG_MIN), "DECR", [], "increment or decrement would overflow"),
        (str(LLONG_MIN), "INCRBY", ["-1"], "increment or decrement would overflow"),
        ("1", "INCRBY", [str(LLONG_MAX)], "increment or decrement would overflow"),
        ("-2", "DECRBY", [str(LLONG_MAX)], "increment or decrement would overflow"),
        ("0", "DECRBY", [str(LLONG_MIN)], "decrement would overflow"),
        (" 1", "INCR", [], NOT_INTEGER),
        ("01", "INCR", [], NOT_INTEGER),
        ("-0", "INCR", [], NOT_INTEGER),
        ("+1", "INCR", [], NOT_INTEGER),
        ("1.0", "INCR", [], NOT_INTEGER),
        ("", "INCR", [], NOT_INTEGER),
        ("9223372036854775808", "INCR", [], NOT_INTEGER),
        ("1", "INCRBY", ["x"], NOT_INTEGER),
        ("1", "INCRBY", ["1.5"], NOT_INTEGER),
        ("1", "DECRBY", ["99999999999999999999"], NOT_INTEGER),
    ],
)
def test_incr_errors(r: redis.Redis, start: str, command: str, args: list[str], message: str) -> None:
    r.set("n", start)
    with pytest.raises(redis.ResponseError, match=f"^{message}$"):
        r.execute_command(command, "n", *args)
    assert r.get("n") == start.encode()


def test_incr_pipeline_and_concurrency(r: redis.Redis, node: NodeProcess) -> None:
    pipe = r.pipeline(transaction=False)
    for _ in range(500):
        pipe.incr("n")
    assert pipe.execute() == list(range(1, 501))

    async def hammer() -> None:
        clients = [redis.asyncio.Redis(host="127.0.0.1", port=node.port) for _ in range(8)]
        try:
            await asyncio.gather(*(c.incrby("n", 2) for c in clients for _ in range(50)))
        finally:
            for c in clients:
                await c.aclose()

    asyncio.run(hammer())
    assert r.get("n") == b"1300"


# ---------------------------------------------------------------------------
# INCRBYFLOAT
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "increment", "expected"),
    [
        (None, "0.1", b"0.1"),
        ("10.50", "0.1", b"10.6"),  # long double arithmetic: not 10.59999999999999964
        ("10", "1", b"11"),
        (None, "-0.1", b"-0.1"),
        ("-0.1", "0.1", b"0"),
        ("5.0e3", "2.0e2", b"5200"),
        (None, "+1", b"1"),
        (None, ".5", b"0.5"),
        (None, "5.", b"5"),
        (None, "0x10", b"16"),
        (None, "0x1p-3", b"0.125"),
        ("17", "1e-40", b"17"),
        (None, "1.5e-20", b"0"),
        (None, "1e30", b"1000000000000000000024696061952"),
        (None, "-0", b"0"),
        (None, "3.14159265358979323846264338327950288", b"3.14159265358979324"),
        ("9007199254740993", "0.5", b"9007199254740993.5"),
    ],
)
def test_incrbyfloat_values(
    r: redis.Redis, raw: RawConnection, start: str | None, increment: str, expected: bytes
) -> None:
    if start is not None:
        r.set("f", start)
    assert raw.call("INCRBYFLOAT", "f", increment) == b"$%d\r\n%b\r\n" % (len(expected), expected)
    assert r.get("f") == expected


@pytest.mark.parametrize(
    ("start", "increment", "message"),
    [
        (None, "abc", "value is not a valid float"),
        (None, "", "value is not a valid float"),
        (None, " 1", "value is not a valid float"),
        (None, "1 ", "value is not a valid float"),
        (None, "1e", "value is not a valid float"),
        (None, ".", "value is not a valid float"),
        (None, "nan", "value is not a valid float"),
        (None, "1e5000", "value is not a valid float"),  # overflows long double
        (None, "1e-5000", "value is not a valid float"),  # underflows to zero
        (None, "1\x00", "value is not a valid float"),
        ("abc", "1", "value is not a valid float"),
        ("1e5000", "1", "value is not a valid float"),
        (None, "inf", "increment would produce NaN or Infinity"),
        (None, "-Infinity", "increment would produce NaN or Infinity"),
        ("inf", "1", "increment would produce NaN or Infinity"),
        ("1e4932", "1e4932", "increment would produce NaN or Infinity"),
    ],
)
def test_incrbyfloat_errors(r: redis.Redis, start: str | None, increment: str, message: str) -> None:
    if start is not None:
        r.set("f", start)
    with pytest.raises(redis.ResponseError, match=f"^{message}$"):
        r.execute_command("INCRBYFLOAT", "f", increment)
    assert r.get("f") == (None if start is None else start.encode())


def test_incrbyfloat_is_a_bulk_string_in_both_protocols(raw: RawConnection, raw3: RawConnection) -> None:
    assert raw.call("INCRBYFLOAT", "f", "1.5") == b"$3\r\n1.5\r\n"
    assert raw3.call("INCRBYFLOAT", "f", "1.5") == b"$1\r\n3\r\n"


def test_incrbyfloat_redis_py(r: redis.Redis, r3: redis.Redis) -> None:
    assert r.incrbyfloat("f", 2.5) == 2.5
    assert r3.incrbyfloat("f", 0.25) == 2.75


# ---------------------------------------------------------------------------
# LCS
# ---------------------------------------------------------------------------


def test_lcs_resp2(r: redis.Redis) -> None:
    r.mset({"key1": "ohmytext", "key2": "mynewtext"})
    assert r.lcs("key1", "key2") == b"mytext"
    assert r.lcs("key1", "key2", len=True) == 6
    assert r.execute_command("LCS", "key1", "key2", "IDX") == [
        b"matches",
        [[[4, 7], [5, 8]], [[2, 3], [0, 1]]],
        b"len",
        6,
    ]
    assert r.execute_command("LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN") == [
        b"matches",
        [[[4, 7], [5, 8], 4]],
        b"len",
        6,
    ]
    assert r.lcs("key1", "missing") == b""
    assert r.execute_command("LCS", "key1", "missing", "IDX") == [b"matches", [], b"len", 0]


def test_lcs_resp3_is_a_map(r3: redis.Redis, raw3: RawConnection) -> None:
    r3.mset({"key1": "ohmytext", "key2": "mynewtext"})
    assert r3.execute_command("LCS", "key1", "key2", "IDX", "WITHMATCHLEN") == {
        b"matches": [[[4, 7], [5, 8], 4], [[2, 3], [0, 1], 2]],
        b"len": 6,
    }
    assert raw3.call("LCS", "key1", "key2", "IDX", "MINMATCHLEN", "3").startswith(b"%2\r\n$7\r\nmatches\r\n*1\r\n")


def test_lcs_errors(raw: RawConnection) -> None:
    raw.call("MSET", "a", "abc", "b", "bcd")
    both = b"-ERR If you want both the length and indexes, please just use IDX.\r\n"
    assert raw.call("LCS", "a", "b", "IDX", "LEN") == both
    assert raw.call("LCS", "a", "b", "len", "idx") == both
    assert raw.call("LCS", "a", "b", "MINMATCHLEN") == b"-ERR syntax error\r\n"
    assert raw.call("LCS", "a", "b", "FOO") == b"-ERR syntax error\r\n"
    assert raw.call("LCS", "a", "b", "MINMATCHLEN", "x") == b"-ERR value is not an integer or out of range\r\n"
    assert raw.call("LCS", "a") == b"-ERR wrong number of arguments for 'lcs' command\r\n"
    assert raw.call("LCS", "a", "b", "WITHMATCHLEN") == b"$2\r\nbc\r\n"


def test_lcs_large_inputs(r: redis.Redis) -> None:
    rnd = random.Random(7)
    a = bytes(rnd.choice(b"ACGT") for _ in range(3000))
    b = bytes(rnd.choice(b"ACGT") for _ in range(3000))
    r.mset({"a": a, "b": b})
    text = r.lcs("a", "b")
    assert len(text) == r.lcs("a", "b", len=True)
    assert _is_subsequence(text, a) and _is_subsequence(text, b)
    # Every IDX range is a real common substring and they add up to the LCS.
    reply = r.execute_command("LCS", "a", "b", "IDX", "WITHMATCHLEN")
    assert reply[3] == len(text)
    assert sum(m[2] for m in reply[1]) == len(text)
    for (a0, a1), (b0, b1), n in reply[1]:
        assert a[a0 : a1 + 1] == b[b0 : b1 + 1] and n == a1 - a0 + 1


def _is_subsequence(needle: bytes, hay: bytes) -> bool:
    it = iter(hay)
    return all(c in it for c in needle)


# ---------------------------------------------------------------------------
# Arity, as the command table says
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["GET"], "get"),
        (["GET", "a", "b"], "get"),
        (["SET", "k"], "set"),
        (["MGET"], "mget"),
        (["MSET", "k"], "mset"),
        (["INCR"], "incr"),
        (["INCRBY", "k"], "incrby"),
        (["GETRANGE", "k", "0"], "getrange"),
        (["SETRANGE", "k", "0"], "setrange"),
        (["APPEND", "k"], "append"),
        (["GETEX"], "getex"),
        (["INCRBYFLOAT", "k", "1", "2"], "incrbyfloat"),
    ],
)
def test_arity(r: redis.Redis, args: list[str], name: str) -> None:
    with pytest.raises(redis.ResponseError, match=f"^wrong number of arguments for '{name}' command$"):
        r.execute_command(*args)


# ---------------------------------------------------------------------------
# In-process, fake clock: TTLs, wrong types, statistics, dirty counter
# ---------------------------------------------------------------------------


def test_set_expire_arithmetic(mem: InProcessNode) -> None:
    now = mem.now
    assert mem("SET", "k", "v", "EX", 10) is OK
    assert mem.db.expires[b"k"] == now + 10_000
    assert mem("SET", "k", "v", "PX", 1500) is OK
    assert mem.db.expires[b"k"] == now + 1500
    assert mem("SET", "k", "v", "EXAT", 2_000_000_000) is OK
    assert mem.db.expires[b"k"] == 2_000_000_000_000
    assert mem("SET", "k", "v", "PXAT", now + 5) is OK
    assert mem.db.expires[b"k"] == now + 5
    assert mem("SETEX", "k", 3, "v") is OK
    assert mem.db.expires[b"k"] == now + 3000
    assert mem("PSETEX", "k", 7, "v") is OK
    assert mem.db.expires[b"k"] == now + 7
    assert mem("SET", "k", "v2", "KEEPTTL") is OK
    assert mem.db.expires[b"k"] == now + 7
    assert mem("SET", "k", "v3") is OK
    assert b"k" not in mem.db.expires
    # The largest EX that does not overflow once now is added.
    big = (LLONG_MAX - now) // 1000
    assert mem("SET", "k", "v", "EX", big) is OK
    assert mem.db.expires[b"k"] == now + big * 1000
    assert mem("SET", "k", "v", "EX", big + 1) == err("ERR invalid expire time in 'set' command")


def test_writes_keep_or_clear_the_ttl(mem: InProcessNode) -> None:
    when = mem.now + 60_000
    keep = [
        ("APPEND", "k", "x"),
        ("SETRANGE", "k", 0, "y"),
        ("INCR", "n"),
        ("INCRBY", "n", 5),
        ("DECR", "n"),
        ("DECRBY", "n", 2),
        ("INCRBYFLOAT", "n", "1.5"),
        ("SET", "k", "z", "KEEPTTL"),
        ("GETEX", "k"),
    ]
    for command in keep:
        key = command[1]
        mem("SET", key, "1", "PXAT", when)
        assert not isinstance(mem(*command), ErrorReply), command
        assert mem.db.expires.get(key.encode()) == when, command
    clear = [
        ("SET", "k", "v"),
        ("GETSET", "k", "v"),
        ("SET", "k", "v", "GET"),
        ("MSET", "k", "v"),
        ("GETEX", "k", "PERSIST"),
    ]
    for command in clear:
        mem("SET", "k", "1", "PXAT", when)
        assert not isinstance(mem(*command), ErrorReply), command
        assert b"k" not in mem.db.expires, command


def test_expired_keys_are_gone_for_string_commands(mem: InProcessNode) -> None:
    mem("SET", "k", "old", "PX", 100)
    mem("SET", "n", "41", "PX", 100)
    mem.now += 100
    assert mem("GET", "k") is None
    assert mem("SETNX", "n", "x") == 1  # the expired key does not block NX
    assert mem("GET", "n") == b"x"
    mem("SET", "k", "v", "PX", 100)
    mem.now += 200
    # KEEPTTL does not resurrect the dead TTL of an expired key.
    assert mem("SET", "k", "new", "KEEPTTL") is OK
    assert b"k" not in mem.db.expires
    mem("SET", "c", "5", "PX", 1)
    mem.now += 1
    assert mem("INCR", "c") == 1
    assert mem("APPEND", "c", "0") == 2
    assert mem.db.expires == {}


def test_plain_set_over_a_stale_key_counts_an_expiry(mem: InProcessNode) -> None:
    # Redis expires the old key before overwriting it (expired_keys, and the DEL a replica needs).
    expired: list[bytes] = []
    mem.ks.on_expired_hook = lambda db, key: expired.append(key)
    mem("SET", "k", "v", "PX", 1)
    mem("SET", "live", "v", "PX", 1000)
    mem.now += 1
    assert mem("SET", "k", "v2") is OK
    assert mem("SET", "live", "v2") is OK
    assert mem.ks.stat_expired_keys == 1
    assert expired == [b"k"]
    assert mem.db.expires == {}


def test_set_in_the_past_hides_the_key(mem: InProcessNode) -> None:
    assert mem("SET", "k", "v", "PXAT", mem.now - 1) is OK
    assert mem("GET", "k") is None
    assert b"k" not in mem.db.data
    assert mem.ks.stat_expired_keys == 1


def test_getex_expiry(mem: InProcessNode) -> None:
    mem("SET", "k", "v")
    assert mem("GETEX", "k", "EX", 5) == b"v"
    assert mem.db.expires[b"k"] == mem.now + 5000
    assert mem("GETEX", "k", "PXAT", mem.now + 1) == b"v"
    assert mem.db.expires[b"k"] == mem.now + 1
    assert mem("GETEX", "k", "PERSIST") == b"v"
    assert b"k" not in mem.db.expires
    assert mem("GETEX", "k", "EXAT", 1) == b"v"
    assert b"k" not in mem.db.data  # deleted at once
    # A replica never deletes on its own: it keeps the key with the past time.
    mem("SET", "r", "v")
    mem.ks.is_replica = True
    assert mem("GETEX", "r", "PXAT", mem.now - 1) == b"v"
    assert mem.db.data[b"r"] == b"v"
    assert mem.db.expires[b"r"] == mem.now - 1


def test_wrong_type(mem: InProcessNode) -> None:
    mem.db.set(b"l", deque([b"a"]))
    wrong = err(WRONGTYPE)
    not_integer = err("ERR value is not an integer or out of range")
    assert mem("GET", "l") == wrong
    assert mem("MGET", "l", "nope") == [None, None]
    assert mem("GETSET", "l", "x") == wrong
    assert mem("GETDEL", "l") == wrong
    assert mem("GETEX", "l") == wrong
    assert mem("GETEX", "l", "EX", -1) == wrong  # the type is checked before the expire value
    assert mem("GETEX", "l", "FOO") == err("ERR syntax error")  # but after the options
    assert mem("SET", "l", "v", "GET") == wrong
    assert mem("SETNX", "l", "v") == 0
    assert mem("SET", "l", "v", "NX") is None
    assert mem("MSETNX", "l", "v") == 0
    assert mem("STRLEN", "l") == wrong
    assert mem("APPEND", "l", "x") == wrong
    assert mem("GETRANGE", "l", 0, 1) == wrong
    assert mem("GETRANGE", "l", "x", 1) == not_integer
    assert mem("SETRANGE", "l", 0, "x") == wrong
    assert mem("SETRANGE", "l", 0, "") == wrong
    assert mem("SETRANGE", "l", -1, "x") == err("ERR offset is out of range")
    assert mem("INCR", "l") == wrong
    assert mem("INCRBY", "l", "x") == not_integer
    assert mem("DECRBY", "l", LLONG_MIN) == err("ERR decrement would overflow")
    assert mem("INCRBYFLOAT", "l", "x") == wrong
    assert mem("LCS", "l", "nope") == err("ERR The specified keys must contain string values")
    assert mem("LCS", "nope", "l", "FOO") == err("ERR The specified keys must contain string values")
    assert mem.db.data[b"l"] == deque([b"a"])
    # Plain SET and MSET overwrite whatever type was there.
    assert mem("SET", "l", "v") is OK
    assert mem("GET", "l") == b"v"
    mem.db.set(b"l", deque([b"a"]))
    assert mem("MSET", "l", "w") is OK
    assert mem("GET", "l") == b"w"


@pytest.mark.parametrize(
    ("command", "hits", "misses"),
    [
        (("GET", "s"), 1, 0),
        (("GET", "miss"), 0, 1),
        (("GET", "l"), 1, 0),
        (("MGET", "s", "miss", "l"), 2, 1),
        (("STRLEN", "s"), 1, 0),
        (("STRLEN", "miss"), 0, 1),
        (("GETRANGE", "s", 0, 1), 1, 0),
        (("SUBSTR", "miss", 0, 1), 0, 1),
        (("SET", "s", "v", "GET"), 1, 0),
        (("SET", "miss", "v", "GET"), 0, 1),
        (("SET", "s", "v", "XX", "GET"), 1, 0),
        (("GETSET", "s", "v"), 1, 0),
        (("GETDEL", "s"), 1, 0),
        (("GETDEL", "miss"), 0, 1),
        (("GETEX", "s"), 1, 0),
        (("GETEX", "miss"), 0, 1),
        (("GETEX", "s", "PERSIST"), 1, 0),
        (("LCS", "s", "miss"), 1, 1),
        # Write lookups are not counted, as in Redis.
        (("INCR", "n"), 0, 0),
        (("INCRBYFLOAT", "n", 1), 0, 0),
        (("APPEND", "s", "x"), 0, 0),
        (("SETRANGE", "s", 0, "x"), 0, 0),
        (("MSETNX", "s", "1"), 0, 0),
        (("SETNX", "s", "1"), 0, 0),
        (("SET", "s", "v", "NX"), 0, 0),
        (("SET", "s", "v"), 0, 0),
    ],
)
def test_keyspace_hits_and_misses(mem: InProcessNode, command: tuple, hits: int, misses: int) -> None:
    mem("SET", "s", "hello")
    mem("SET", "n", "1")
    mem.db.set(b"l", deque([b"x"]))
    mem.stats.keyspace_hits = mem.stats.keyspace_misses = 0
    mem(*command)
    assert (mem.stats.keyspace_hits, mem.stats.keyspace_misses) == (hits, misses)


@pytest.mark.parametrize(
    ("command", "changes"),
    [
        (("SET", "k", "v"), 1),
        (("SET", "k", "v", "EX", 10), 1),
        (("SET", "s", "v", "NX"), 0),
        (("SET", "k", "v", "XX"), 0),
        (("SET", "s", "v", "XX", "GET"), 1),
        (("SET", "k", "v", "EX", 0), 0),
        (("SETNX", "s", "v"), 0),
        (("SETNX", "k", "v"), 1),
        (("MSET", "a", "1", "b", "2", "c", "3"), 3),
        (("MSETNX", "a", "1", "b", "2"), 2),
        (("MSETNX", "a", "1", "s", "2"), 0),
        (("GETSET", "k", "v"), 1),
        (("GETDEL", "s"), 1),
        (("GETDEL", "k"), 0),
        (("GETEX", "s"), 0),
        (("GETEX", "s", "PERSIST"), 0),  # no TTL to remove
        (("GETEX", "s", "EX", 10), 1),
        (("GETEX", "s", "EXAT", 1), 1),
        (("APPEND", "s", ""), 1),
        (("APPEND", "k", ""), 1),
        (("SETRANGE", "s", 0, ""), 0),
        (("SETRANGE", "s", 0, "x"), 1),
        (("SETRANGE", "k", 3, ""), 0),
        (("INCR", "n"), 1),
        (("INCR", "s"), 0),
        (("INCRBYFLOAT", "n", "0.5"), 1),
        (("GET", "s"), 0),
        (("LCS", "s", "n"), 0),
    ],
)
def test_dirty_counter(mem: InProcessNode, command: tuple, changes: int) -> None:
    mem("SET", "s", "hello")
    mem("SET", "n", "1")
    before = mem.ks.dirty
    mem(*command)
    assert mem.ks.dirty - before == changes


# ---------------------------------------------------------------------------
# Byte-for-byte against a real redis-server
# ---------------------------------------------------------------------------


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
        wait_until(lambda: RawConnection(port).call("PING") == b"+PONG\r\n", timeout=10, what="redis-server")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# Each script starts from an empty database; only string commands (and FLUSHALL).
SCRIPTS: dict[str, list[tuple]] = {
    "set": [
        ("SET", "k", "v", "EX", "10", "EX", "20"),
        ("SET", "k", "v", "NX", "NX"),
        ("SET", "k", "v", "NX", "GET"),
        ("SET", "k", "v2", "XX", "GET"),
        ("SET", "k", "v3", "GET", "GET"),
        ("SET", "k", "v", "GET", "KEEPTTL", "NX"),
        ("SET", "k", "v", "PX", "1000", "PX", "100", "NX", "XX"),
        ("SET", "k", "v", "KEEPTTL", "KEEPTTL"),
        ("SET", "k", "v", "Ex", "10"),
        ("SET", "k", "v", "exat", "10", "PX", "10"),
        ("SET", "k", "v", "EX", "9223372036854"),
        ("SET", "k", "v", "EX", "9223372036854775808"),
        ("SET", "k", "v", "PXAT", "9223372036854775807"),
        ("SET", "k", "v", "EXAT", "9223372036854776"),
        ("SET", "zz", "v", "XX"),
        ("SET", "zz", "v", "NX", "GET"),
        ("SET", "zz", "v2", "NX", "GET"),
        ("SETEX", "k", "0", "v"),
        ("SETEX", "k", "x", "v"),
        ("PSETEX", "k", "-5", "v"),
        ("SETNX", "k", "v"),
        ("SETNX", "new", "v"),
        ("GET", "new"),
    ],
    "get": [
        ("SET", "k", "v"),
        ("GETEX", "missing", "EX", "-1"),
        ("GETEX", "k", "EX", "-1"),
        ("GETEX", "k", "EX"),
        ("GETEX", "k", "PERSIST", "PERSIST"),
        ("GETEX", "k", "EX", "100"),
        ("GETEX", "k", "PXAT", "1"),
        ("GETEX", "k"),
        ("GETSET", "k", "x"),
        ("GETSET", "k", "y"),
        ("GETDEL", "k"),
        ("GETDEL", "k"),
        ("MSET", "a", "1", "b", "2"),
        ("MSETNX", "a", "1", "c", "2"),
        ("MSETNX", "c", "1", "d", "2"),
        ("MGET", "a", "zz", "c", "d"),
    ],
    "ranges": [
        ("SET", "s", "hello"),
        ("GETRANGE", "s", "0", "-100"),
        ("GETRANGE", "s", "-1", "-5"),
        ("GETRANGE", "s", "-100", "2"),
        ("GETRANGE", "s", "0", "9223372036854775808"),
        ("SUBSTR", "s", "1", "3"),
        ("STRLEN", "s"),
        ("APPEND", "nk", ""),
        ("STRLEN", "nk"),
        ("APPEND", "s", " world"),
        ("SETRANGE", "m", "5", ""),
        ("SETRANGE", "m", "3", "ab"),
        ("SETRANGE", "m", "1", "XYZW"),
        ("SETRANGE", "m", "8", "!"),
        ("GET", "m"),
        ("SETRANGE", "s", "536870911", "ab"),
        ("SETRANGE", "s", "-1", "x"),
    ],
    "counters": [
        ("INCR", "n"),
        ("INCRBY", "n", "-5"),
        ("DECRBY", "n", "-9223372036854775808"),
        ("DECRBY", "n", "9223372036854775807"),
        ("SET", "n", "9223372036854775807"),
        ("INCR", "n"),
        ("SET", "n", "-0"),
        ("INCR", "n"),
        ("INCRBY", "n", "99999999999999999999"),
        ("INCRBYFLOAT", "f", "10.5"),
        ("INCRBYFLOAT", "f", "0.1"),
        ("INCRBYFLOAT", "g", "1e300"),
        ("INCRBYFLOAT", "j", "1e4000"),
        ("INCRBYFLOAT", "j", "1e4932"),
        ("INCRBYFLOAT", "h", "1.18973149535723176502e+4932"),
        ("INCRBYFLOAT", "z", "1e-4950"),
        ("INCRBYFLOAT", "z", "3e-4951"),
        ("INCRBYFLOAT", "z", "1e-4951"),
        ("INCRBYFLOAT", "z", "0e999999999999999999999"),
        ("INCRBYFLOAT", "z", "0x1p-16445"),
        ("INCRBYFLOAT", "z", "0x1p-16446"),
        ("INCRBYFLOAT", "z", "0x1.8p-16446"),
        ("INCRBYFLOAT", "y", "0x1p16383"),
        ("INCRBYFLOAT", "y", "0x1p16383"),
        ("INCRBYFLOAT", "y", "NaN(123)"),
        ("INCRBYFLOAT", "y", "0X1P+4"),
        ("INCRBYFLOAT", "x", "0.000000000000000005"),
        ("INCRBYFLOAT", "x", "0.000000000000000015"),
        ("INCRBYFLOAT", "x", "0.000000000000000025"),
        ("INCRBYFLOAT", "x", "123456789012345678901234567890.123"),
        ("SET", "k", "1e400"),
        ("INCRBYFLOAT", "k", "0"),
    ],
    "lcs": [
        ("MSET", "key1", "ohmytext", "key2", "mynewtext"),
        ("LCS", "key1", "key2"),
        ("LCS", "key1", "key2", "LEN"),
        ("LCS", "key1", "key2", "IDX"),
        ("LCS", "key1", "key2", "IDX", "MINMATCHLEN", "-5", "WITHMATCHLEN"),
        ("LCS", "key1", "key2", "LEN", "WITHMATCHLEN", "MINMATCHLEN", "3"),
        ("LCS", "key1", "key1", "IDX", "WITHMATCHLEN"),
        ("LCS", "key1", "nokey", "IDX"),
        ("LCS", "key1", "key2", "MINMATCHLEN"),
        ("LCS", "key1", "key2", "IDX", "LEN"),
    ],
}


@pytest.mark.parametrize("resp", [2, 3])
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_replies_match_redis(node: NodeProcess, redis_server: int, script: str, resp: int) -> None:
    ours, reference = RawConnection(node.port, resp), RawConnection(redis_server, resp)
    try:
        for conn in (ours, reference):
            conn.call("FLUSHALL")
        for command in SCRIPTS[script]:
            assert ours.call(*command) == reference.call(*command), command
    finally:
        ours.close()
        reference.close()


def _random_float_text(rnd: random.Random) -> str:
    kind = rnd.randrange(7)
    if kind == 0:
        return str(rnd.randint(-(10**6), 10**6) / 10 ** rnd.randint(0, 6))
    if kind == 1:
        return repr(rnd.uniform(-1e6, 1e6))
    if kind == 2:
        return f"{rnd.randint(-99, 99)}e{rnd.randint(-30, 30)}"
    if kind == 3:
        return f"0x{rnd.randint(1, 1 << 70):x}p{rnd.randint(-100, 100)}"
    if kind == 4:
        return str(rnd.randint(-(1 << 70), 1 << 70))
    if kind == 5:
        width = rnd.randint(1, 25)
        return f"{rnd.randint(-9999, 9999)}.{rnd.randint(0, 10**20):0{width}d}"
    return f"{rnd.uniform(-1, 1) * 10 ** rnd.randint(-25, 25):.{rnd.randint(1, 25)}g}"


def test_random_incrbyfloat_and_lcs_match_redis(node: NodeProcess, redis_server: int) -> None:
    rnd = random.Random(20240607)
    ours, reference = RawConnection(node.port, 3), RawConnection(redis_server, 3)
    try:
        for conn in (ours, reference):
            conn.call("FLUSHALL")
        for _ in range(400):
            if rnd.random() < 0.2:
                command: tuple = ("SET", "f", _random_float_text(rnd))
            else:
                command = ("INCRBYFLOAT", "f", _random_float_text(rnd))
            assert ours.call(*command) == reference.call(*command), command
        for _ in range(300):
            alphabet = rnd.choice(["ab", "abc", "ACGT", "abcdefgh"])
            a = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
            b = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
            options = rnd.choice(
                [[], ["LEN"], ["IDX"], ["IDX", "WITHMATCHLEN"], ["IDX", "MINMATCHLEN", str(rnd.randint(0, 4))]]
            )
            for conn in (ours, reference):
                conn.call("MSET", "x", a, "y", b)
            command = ("LCS", "x", "y", *options)
            assert ours.call(*command) == reference.call(*command), (a, b, options)
    finally:
        ours.close()
        reference.close()


STRING_COMMANDS = [
    "get",
    "set",
    "setnx",
    "setex",
    "psetex",
    "mget",
    "mset",
    "msetnx",
    "getset",
    "getdel",
    "getex",
    "append",
    "strlen",
    "getrange",
    "substr",
    "setrange",
    "incr",
    "decr",
    "incrby",
    "decrby",
    "incrbyfloat",
    "lcs",
]


def test_command_table_matches_redis(redis_server: int) -> None:
    reference = redis.Redis(host="127.0.0.1", port=redis_server, protocol=2, decode_responses=True)
    try:
        info = reference.execute_command("COMMAND", "INFO", *STRING_COMMANDS)
    finally:
        reference.close()
    assert sorted(info) == sorted(STRING_COMMANDS)
    for name, entry in info.items():
        cmd = REGISTRY[name]
        assert cmd.arity == entry["arity"], name
        assert cmd.flags == frozenset(entry["flags"]), name
        assert (cmd.first_key, cmd.last_key, cmd.key_step) == (
            entry["first_key_pos"],
            entry["last_key_pos"],
            entry["step_count"],
        ), name
        assert cmd.group == "string", name
