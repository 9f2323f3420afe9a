"""List commands against a real node: replies, types (RESP2/RESP3) and errors as Redis 7 gives them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from helpers import NodeProcess, RawClient

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


@pytest.fixture
def r2(node: NodeProcess) -> Iterator[redis.Redis]:
    """An explicit RESP2 client (redis-py 8 defaults to RESP3) on a flushed node."""
    c = node.client(protocol=2)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def raw2(node: NodeProcess, r2: redis.Redis) -> Iterator[RawClient]:
    with RawClient(node.port, resp=2) as c:
        yield c


@pytest.fixture
def raw3(node: NodeProcess, r2: redis.Redis) -> Iterator[RawClient]:
    with RawClient(node.port, resp=3) as c:
        yield c


def error_of(r: redis.Redis, *args: object) -> str:
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command(*args)
    return str(e.value)


def test_push_and_range(r2: redis.Redis) -> None:
    assert r2.rpush("l", "a", "b", "c") == 3
    assert r2.lpush("l", "y", "z") == 5  # pushed one by one: z ends up first
    assert r2.lrange("l", 0, -1) == [b"z", b"y", b"a", b"b", b"c"]
    assert r2.lpushx("missing", "a") == 0
    assert r2.rpushx("missing", "a") == 0
    assert r2.dbsize() == 1
    assert r2.lpushx("l", "0") == 6
    assert r2.rpushx("l", "d", "e") == 8
    assert r2.llen("l") == 8
    assert r2.llen("missing") == 0
    assert r2.lrange("l", -100, 100) == [b"0", b"z", b"y", b"a", b"b", b"c", b"d", b"e"]
    assert r2.lrange("l", -3, -1) == [b"c", b"d", b"e"]
    assert r2.lrange("l", 5, 2) == []
    assert r2.lrange("l", 8, 10) == []
    assert r2.lrange("missing", 0, -1) == []


def test_lrange_from_both_ends_of_a_long_list(r2: redis.Redis) -> None:
    r2.rpush("l", *range(1000))
    assert r2.lrange("l", 990, 995) == [str(i).encode() for i in range(990, 996)]
    assert r2.lrange("l", -3, -1) == [b"997", b"998", b"999"]
    assert r2.lrange("l", 3, 5) == [b"3", b"4", b"5"]
    assert r2.lrange("l", 499, 500) == [b"499", b"500"]
    assert r2.lindex("l", 998) == b"998"
    assert r2.lindex("l", -1000) == b"0"
    assert r2.lindex("l", -1001) is None


def test_lindex_lset(r2: redis.Redis, raw3: RawClient) -> None:
    r2.rpush("l", "a", "b", "c")
    assert r2.lindex("l", 0) == b"a"
    assert r2.lindex("l", -1) == b"c"
    assert r2.lindex("l", 3) is None
    assert raw3.call("LINDEX", "l", "3") == b"_\r\n"
    assert r2.lindex("missing", 0) is None
    assert r2.lset("l", 0, "A") is True
    assert r2.lset("l", -1, "C") is True
    assert r2.lrange("l", 0, -1) == [b"A", b"b", b"C"]
    assert error_of(r2, "LSET", "l", "3", "x") == "index out of range"
    assert error_of(r2, "LSET", "l", "-4", "x") == "index out of range"
    assert error_of(r2, "LSET", "missing", "0", "x") == "no such key"
    assert error_of(r2, "LSET", "missing", "x", "x") == "no such key"
    assert error_of(r2, "LSET", "l", "x", "x") == "value is not an integer or out of range"
    assert error_of(r2, "LINDEX", "l", "x") == "value is not an integer or out of range"
    assert r2.execute_command("LINDEX", "missing", "x") is None  # the key is looked up first


def test_pop(r2: redis.Redis, raw2: RawClient, raw3: RawClient) -> None:
    r2.rpush("l", "a", "b", "c", "d", "e")
    assert r2.lpop("l") == b"a"
    assert r2.rpop("l") == b"e"
    assert r2.lpop("l", 2) == [b"b", b"c"]
    assert r2.rpop("l", 0) == []
    assert r2.rpop("l", 5) == [b"d"]
    assert r2.dbsize() == 0
    assert r2.lpop("l") is None
    # A count on a missing key is a null array (not an empty one).
    assert raw2.call("LPOP", "missing", "2") == b"*-1\r\n"
    assert raw3.call("RPOP", "missing", "0") == b"_\r\n"
    assert raw2.call("LPOP", "missing") == b"$-1\r\n"
    r2.rpush("l", "a", "b", "c")
    assert raw2.call("RPOP", "l", "2") == b"*2\r\n$1\r\nc\r\n$1\r\nb\r\n"


def test_pop_errors(r2: redis.Redis) -> None:
    r2.rpush("l", "a")
    assert error_of(r2, "LPOP", "l", "-1") == "value is out of range, must be positive"
    assert error_of(r2, "RPOP", "l", "x") == "value is out of range, must be positive"
    assert error_of(r2, "LPOP", "l", "1", "2") == "wrong number of arguments for 'lpop' command"
    assert error_of(r2, "RPOP", "l", "1", "2") == "wrong number of arguments for 'rpop' command"
    assert r2.lrange("l", 0, -1) == [b"a"]


def test_wrongtype(r2: redis.Redis) -> None:
    r2.set("str", "x")
    r2.rpush("l", "a")
    for args in (
        ("LPUSH", "str", "a"),
        ("RPUSH", "str", "a"),
        ("LPUSHX", "str", "a"),
        ("RPUSHX", "str", "a"),
        ("LPOP", "str"),
        ("RPOP", "str", "1"),
        ("LLEN", "str"),
        ("LRANGE", "str", "0", "-1"),
        ("LINDEX", "str", "x"),  # type first, then the index
        ("LSET", "str", "x", "v"),
        ("LINSERT", "str", "BEFORE", "a", "b"),
        ("LREM", "str", "0", "a"),
        ("LTRIM", "str", "0", "1"),
        ("LPOS", "str", "a"),
        ("RPOPLPUSH", "str", "l"),
        ("RPOPLPUSH", "l", "str"),
        ("LMOVE", "l", "str", "LEFT", "LEFT"),
        ("LMPOP", "1", "str", "LEFT"),
        ("LMPOP", "2", "missing", "str", "LEFT"),
    ):
        assert error_of(r2, *args) == WRONGTYPE, args
    # Arguments are checked before the type where Redis does so.
    assert error_of(r2, "LRANGE", "str", "x", "1") == "value is not an integer or out of range"
    assert error_of(r2, "LPOP", "str", "x") == "value is out of range, must be positive"
    assert error_of(r2, "LINSERT", "str", "MIDDLE", "a", "b") == "syntax error"
    assert error_of(r2, "LPOS", "str", "a", "RANK", "0").startswith("RANK can't be zero")
    # A missing source makes the move a no-op before the destination's type is looked at.
    assert r2.lmove("missing", "str") is None
    assert r2.lrange("l", 0, -1) == [b"a"]


def test_linsert(r2: redis.Redis) -> None:
    r2.rpush("l", "a", "b", "c")
    assert r2.linsert("l", "BEFORE", "b", "X") == 4
    assert r2.linsert("l", "after", "c", "Y") == 5
    assert r2.linsert("l", "AFTER", "zz", "Y") == -1
    assert r2.linsert("missing", "AFTER", "a", "Y") == 0
    assert r2.lrange("l", 0, -1) == [b"a", b"X", b"b", b"c", b"Y"]
    assert error_of(r2, "LINSERT", "l", "MIDDLE", "a", "b") == "syntax error"
    assert error_of(r2, "LINSERT", "missing", "MIDDLE", "a", "b") == "syntax error"
    assert r2.dbsize() == 1


def test_lrem(r2: redis.Redis) -> None:
    r2.rpush("l", "a", "b", "a", "c", "a", "d", "a")
    assert r2.lrem("l", 2, "a") == 2
    assert r2.lrange("l", 0, -1) == [b"b", b"c", b"a", b"d", b"a"]
    assert r2.lrem("l", -1, "a") == 1
    assert r2.lrange("l", 0, -1) == [b"b", b"c", b"a", b"d"]
    assert r2.lrem("l", 1, "d") == 1
    assert r2.lrem("l", 1, "zz") == 0
    assert r2.lrem("l", 0, "a") == 1
    assert r2.lrem("l", 0, "zz") == 0
    assert r2.lrem("missing", 0, "a") == 0
    assert r2.lrange("l", 0, -1) == [b"b", b"c"]
    assert error_of(r2, "LREM", "l", "x", "a") == "value is not an integer or out of range"
    r2.rpush("m", "x", "x")
    assert r2.lrem("m", -5, "x") == 2
    assert r2.dbsize() == 1


def test_ltrim(r2: redis.Redis) -> None:
    r2.rpush("l", *range(20))
    assert r2.ltrim("l", 2, -3) is True
    assert r2.lrange("l", 0, -1) == [str(i).encode() for i in range(2, 18)]
    assert r2.ltrim("l", 0, 100) is True
    assert r2.llen("l") == 16
    assert r2.ltrim("l", -3, -1) is True
    assert r2.lrange("l", 0, -1) == [b"15", b"16", b"17"]
    assert r2.ltrim("l", 1, 1) is True
    assert r2.lrange("l", 0, -1) == [b"16"]
    assert r2.ltrim("l", 5, 1) is True
    assert r2.dbsize() == 0
    assert r2.ltrim("missing", 0, 1) is True
    assert error_of(r2, "LTRIM", "l", "x", "1") == "value is not an integer or out of range"


def test_lpos(r2: redis.Redis, raw3: RawClient) -> None:
    r2.rpush("l", "a", "b", "c", "1", "2", "3", "c", "c")
    assert r2.lpos("l", "c") == 2
    assert r2.lpos("l", "c", rank=2) == 6
    assert r2.lpos("l", "c", rank=-1) == 7
    assert r2.lpos("l", "c", count=0) == [2, 6, 7]
    assert r2.lpos("l", "c", count=2) == [2, 6]
    assert r2.lpos("l", "c", count=2, rank=-1) == [7, 6]
    assert r2.lpos("l", "c", maxlen=3) == 2
    assert r2.lpos("l", "c", maxlen=3, count=0) == [2]
    assert r2.lpos("l", "c", rank=-2, maxlen=2) == 6
    assert r2.lpos("l", "c", rank=-3, maxlen=2) is None
    assert r2.lpos("l", "zz") is None
    assert r2.lpos("l", "zz", count=0) == []
    assert r2.lpos("missing", "a") is None
    assert r2.lpos("missing", "a", count=0) == []
    assert r2.execute_command("LPOS", "l", "c", "RANK", "1", "RANK", "2") == 6  # the last option wins
    assert raw3.call("LPOS", "l", "zz") == b"_\r\n"


def test_lpos_errors(r2: redis.Redis) -> None:
    r2.rpush("l", "a")
    assert error_of(r2, "LPOS", "l", "a", "RANK", "0") == (
        "RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
        "or use negative to start from the end of the list"
    )
    assert error_of(r2, "LPOS", "l", "a", "COUNT", "-1") == "COUNT can't be negative"
    assert error_of(r2, "LPOS", "l", "a", "COUNT", "x") == "COUNT can't be negative"
    assert error_of(r2, "LPOS", "l", "a", "MAXLEN", "-1") == "MAXLEN can't be negative"
    assert error_of(r2, "LPOS", "l", "a", "RANK", "x") == "value is not an integer or out of range"
    assert error_of(r2, "LPOS", "l", "a", "RANK") == "syntax error"
    assert error_of(r2, "LPOS", "l", "a", "FOO", "1") == "syntax error"
    # Redis 7.2 closed the LONG_MIN overflow of RANK with this error.
    assert error_of(r2, "LPOS", "l", "a", "RANK", "-9223372036854775808") == (
        "value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    )


def test_rpoplpush_and_lmove(r2: redis.Redis, raw3: RawClient) -> None:
    r2.rpush("src", "a", "b", "c")
    assert r2.rpoplpush("src", "dst") == b"c"
    assert r2.lmove("src", "dst", "LEFT", "RIGHT") == b"a"
    assert r2.lrange("dst", 0, -1) == [b"c", b"a"]
    assert r2.lmove("dst", "dst", "LEFT", "RIGHT") == b"c"  # rotation
    assert r2.lrange("dst", 0, -1) == [b"a", b"c"]
    assert r2.lmove("src", "dst", "RIGHT", "LEFT") == b"b"
    assert r2.dbsize() == 1  # the emptied source is gone
    assert r2.lrange("dst", 0, -1) == [b"b", b"a", b"c"]
    assert r2.rpoplpush("missing", "dst") is None
    assert raw3.call("RPOPLPUSH", "missing", "dst") == b"_\r\n"
    # Rotating a one-element list keeps it.
    r2.rpush("one", "x")
    assert r2.rpoplpush("one", "one") == b"x"
    assert r2.lrange("one", 0, -1) == [b"x"]
    assert error_of(r2, "LMOVE", "dst", "x", "MIDDLE", "LEFT") == "syntax error"
    assert error_of(r2, "LMOVE", "dst", "x", "LEFT", "UP") == "syntax error"


def test_lmpop(r2: redis.Redis, raw2: RawClient, raw3: RawClient) -> None:
    r2.rpush("l", "a", "b", "c")
    assert r2.lmpop(2, "missing", "l", direction="LEFT") == [b"l", [b"a"]]
    assert r2.lmpop(2, "missing", "l", direction="RIGHT", count=5) == [b"l", [b"c", b"b"]]
    assert r2.dbsize() == 0
    assert r2.lmpop(1, "l", direction="LEFT") is None
    assert raw2.call("LMPOP", "1", "missing", "LEFT") == b"*-1\r\n"
    assert raw3.call("LMPOP", "1", "missing", "LEFT") == b"_\r\n"
    r2.rpush("l", "a")
    assert raw3.call("LMPOP", "1", "l", "left", "COUNT", "3") == b"*2\r\n$1\r\nl\r\n*1\r\n$1\r\na\r\n"


def test_lmpop_errors(r2: redis.Redis) -> None:
    r2.rpush("l", "a")
    assert error_of(r2, "LMPOP", "0", "l", "LEFT") == "numkeys should be greater than 0"
    assert error_of(r2, "LMPOP", "x", "l", "LEFT") == "numkeys should be greater than 0"
    assert error_of(r2, "LMPOP", "3", "l", "LEFT") == "syntax error"
    assert error_of(r2, "LMPOP", "1", "l", "MIDDLE") == "syntax error"
    assert error_of(r2, "LMPOP", "1", "l", "LEFT", "COUNT", "0") == "count should be greater than 0"
    assert error_of(r2, "LMPOP", "1", "l", "LEFT", "COUNT", "x") == "count should be greater than 0"
    assert error_of(r2, "LMPOP", "1", "l", "LEFT", "COUNT", "1", "COUNT", "2") == "syntax error"
    assert error_of(r2, "LMPOP", "1", "l", "LEFT", "FOO") == "syntax error"
    assert r2.llen("l") == 1


def test_replies_are_snapshots_inside_multi(r2: redis.Redis) -> None:
    r2.rpush("l", "a", "b")
    pipe = r2.pipeline(transaction=True)
    pipe.lrange("l", 0, -1).rpush("l", "c").lrange("l", 0, -1).lpop("l", 2)
    assert pipe.execute() == [[b"a", b"b"], 3, [b"a", b"b", b"c"], [b"a", b"b"]]


def test_watch_sees_list_writes(node: NodeProcess, r2: redis.Redis) -> None:
    r2.rpush("l", "a", "b", "c")
    other = node.client(protocol=2)
    try:
        for watched, write in (
            ("l", lambda: other.rpush("l", "d")),
            ("l", lambda: other.lset("l", 0, "A")),
            ("l", lambda: other.ltrim("l", 0, 100)),  # removes nothing, still touches the key (as Redis)
            ("dst", lambda: other.lmove("l", "dst")),
            ("l", lambda: other.lmpop(1, "l", direction="LEFT")),
        ):
            with r2.pipeline() as pipe:
                pipe.watch(watched)
                write()
                pipe.multi()
                pipe.llen(watched)
                with pytest.raises(redis.WatchError):
                    pipe.execute()
        with r2.pipeline() as pipe:
            pipe.watch("l")
            other.lrem("l", 0, "nope")
            pipe.multi()
            pipe.llen("l")
            assert pipe.execute() == [r2.llen("l")]
    finally:
        other.close()
