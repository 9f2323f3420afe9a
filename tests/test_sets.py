"""Set commands against a real node: replies, types (RESP2/RESP3) and errors as Redis 7 gives them."""

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


def test_sadd_srem_scard_membership(r2: redis.Redis) -> None:
    assert r2.sadd("s", "a", "b", "c", "a") == 3
    assert r2.sadd("s", "c", "d") == 1
    assert r2.scard("s") == 4
    assert r2.scard("missing") == 0
    assert r2.smembers("s") == {b"a", b"b", b"c", b"d"}
    assert r2.smembers("missing") == set()
    assert r2.sismember("s", "a") == 1
    assert r2.sismember("s", "z") == 0
    assert r2.sismember("missing", "a") == 0
    assert r2.smismember("s", ["a", "z", "d"]) == [True, False, True]
    assert r2.smismember("missing", ["a", "b"]) == [False, False]
    assert r2.srem("s", "a", "z", "a") == 1
    assert r2.srem("missing", "a") == 0
    assert r2.dbsize() == 1
    assert r2.srem("s", "b", "c", "d") == 3
    assert r2.dbsize() == 0  # empty sets do not exist


def test_reply_types(r2: redis.Redis, raw2: RawClient, raw3: RawClient) -> None:
    r2.sadd("s", "a")
    for cmd in (("SMEMBERS", "s"), ("SINTER", "s"), ("SUNION", "s", "nokey"), ("SDIFF", "s", "nokey")):
        assert raw3.call(*cmd) == b"~1\r\n$1\r\na\r\n", cmd
        assert raw2.call(*cmd) == b"*1\r\n$1\r\na\r\n", cmd
    assert raw3.call("SINTER", "s", "nokey") == b"~0\r\n"
    assert raw3.call("SMEMBERS", "nokey") == b"~0\r\n"
    assert raw3.call("SRANDMEMBER", "s", "2") == b"*1\r\n$1\r\na\r\n"
    assert raw3.call("SRANDMEMBER", "s", "-2") == b"*2\r\n$1\r\na\r\n$1\r\na\r\n"
    assert raw3.call("SRANDMEMBER", "nokey") == b"_\r\n"
    assert raw3.call("SRANDMEMBER", "nokey", "2") == b"*0\r\n"
    assert raw3.call("SPOP", "nokey") == b"_\r\n"
    assert raw3.call("SPOP", "nokey", "2") == b"~0\r\n"
    assert raw2.call("SPOP", "nokey", "2") == b"*0\r\n"
    assert raw3.call("SPOP", "s", "0") == b"~0\r\n"
    assert raw3.call("SPOP", "s", "5") == b"~1\r\n$1\r\na\r\n"
    assert raw2.call("SMISMEMBER", "nokey", "a") == b"*1\r\n:0\r\n"


def test_wrongtype(r2: redis.Redis) -> None:
    r2.set("str", "x")
    r2.sadd("s", "a")
    for args in (
        ("SADD", "str", "a"),
        ("SREM", "str", "a"),
        ("SMEMBERS", "str"),
        ("SISMEMBER", "str", "a"),
        ("SMISMEMBER", "str", "a"),
        ("SCARD", "str"),
        ("SPOP", "str"),
        ("SPOP", "str", "1"),
        ("SRANDMEMBER", "str"),
        ("SRANDMEMBER", "str", "1"),
        ("SINTER", "s", "str"),
        ("SINTER", "nokey", "str"),  # every key is type-checked, even after a missing one
        ("SUNION", "s", "str"),
        ("SDIFF", "nokey", "str"),
        ("SINTERCARD", "1", "str"),
        ("SINTERSTORE", "dst", "s", "str"),
        ("SSCAN", "str", "0"),
        ("SMOVE", "str", "s", "a"),
        ("SMOVE", "s", "str", "a"),
    ):
        assert error_of(r2, *args) == WRONGTYPE, args
    # A missing source makes SMOVE a no-op before the destination's type is looked at.
    assert r2.smove("nokey", "str", "a") == 0
    assert r2.get("str") == b"x"
    assert r2.smembers("s") == {b"a"}


def test_spop(r2: redis.Redis) -> None:
    members = {b"a", b"b", b"c", b"d", b"e"}
    r2.sadd("s", *members)
    one = r2.spop("s")
    assert one in members
    two = r2.spop("s", 2)
    assert len(two) == 2 and set(two) <= members - {one}
    assert r2.scard("s") == 2
    rest = r2.spop("s", 10)
    assert {one, *two, *rest} == members
    assert r2.dbsize() == 0
    assert r2.spop("s") is None
    r2.sadd("s", "x")
    assert r2.spop("s") == b"x"
    assert r2.dbsize() == 0


def test_spop_errors(r2: redis.Redis) -> None:
    r2.sadd("s", "a")
    assert error_of(r2, "SPOP", "s", "-1") == "value is out of range, must be positive"
    assert error_of(r2, "SPOP", "s", "x") == "value is out of range, must be positive"
    assert error_of(r2, "SPOP", "s", "1", "2") == "syntax error"
    assert error_of(r2, "SRANDMEMBER", "s", "1", "2") == "syntax error"
    assert error_of(r2, "SRANDMEMBER", "s", "x") == "value is not an integer or out of range"
    assert (
        error_of(r2, "SRANDMEMBER", "s", "-9223372036854775808")
        == "value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    )
    assert r2.smembers("s") == {b"a"}


def test_srandmember(r2: redis.Redis) -> None:
    members = {f"m{i}".encode() for i in range(20)}
    r2.sadd("s", *members)
    assert r2.srandmember("s") in members
    picked = r2.srandmember("s", 7)
    assert len(picked) == 7 and len(set(picked)) == 7 and set(picked) <= members
    assert sorted(r2.srandmember("s", 100)) == sorted(members)
    repeated = r2.srandmember("s", -100)
    assert len(repeated) == 100 and set(repeated) <= members
    assert r2.srandmember("s", 0) == []
    assert r2.scard("s") == 20  # read-only


def test_smove(r2: redis.Redis) -> None:
    r2.sadd("src", "a", "b")
    assert r2.smove("src", "dst", "a") == 1
    assert r2.smove("src", "dst", "zz") == 0
    assert r2.smembers("dst") == {b"a"}
    assert r2.smove("src", "src", "b") == 1  # same set: just a membership test
    assert r2.smove("src", "src", "zz") == 0
    assert r2.smembers("src") == {b"b"}
    assert r2.smove("src", "dst", "b") == 1
    assert r2.smembers("dst") == {b"a", b"b"}
    assert r2.dbsize() == 1  # the emptied source is gone


def test_algebra(r2: redis.Redis) -> None:
    r2.sadd("a", "1", "2", "3", "4")
    r2.sadd("b", "3", "4", "5")
    r2.sadd("c", "4", "6")
    assert r2.sinter("a", "b") == {b"3", b"4"}
    assert r2.sinter("a", "b", "c") == {b"4"}
    assert r2.sinter("a", "nokey") == set()
    assert r2.sunion("a", "b", "nokey") == {b"1", b"2", b"3", b"4", b"5"}
    assert r2.sdiff("a", "b") == {b"1", b"2"}
    assert r2.sdiff("a", "b", "c") == {b"1", b"2"}
    assert r2.sdiff("nokey", "a") == set()
    assert r2.sdiff("a") == {b"1", b"2", b"3", b"4"}
    assert r2.sintercard(2, ["a", "b"]) == 2
    assert r2.sintercard(2, ["a", "b"], limit=1) == 1
    assert r2.sintercard(2, ["a", "b"], limit=0) == 2
    assert r2.sintercard(2, ["a", "nokey"]) == 0


def test_store_variants(r2: redis.Redis) -> None:
    r2.sadd("a", "1", "2", "3", "4")
    r2.sadd("b", "3", "4", "5")
    r2.set("str", "x")
    assert r2.sinterstore("dst", ["a", "b"]) == 2
    assert r2.smembers("dst") == {b"3", b"4"}
    assert r2.sunionstore("str", ["a", "b"]) == 5  # overwrites any type
    assert r2.smembers("str") == {b"1", b"2", b"3", b"4", b"5"}
    assert r2.sdiffstore("dst", ["a", "b"]) == 2
    assert r2.smembers("dst") == {b"1", b"2"}
    # The destination may be a source.
    assert r2.sinterstore("a", ["a", "b"]) == 2
    assert r2.smembers("a") == {b"3", b"4"}
    # An empty result deletes the destination.
    assert r2.sdiffstore("dst", ["b", "b"]) == 0
    assert r2.sinterstore("a", ["a", "nokey"]) == 0
    assert r2.dbsize() == 2
    assert r2.scard("b") == 3 and r2.scard("str") == 5


def test_store_overwrite_clears_ttl(r2: redis.Redis) -> None:
    r2.sadd("a", "1")
    r2.sadd("dst", "old")
    assert r2.execute_command("PEXPIRE", "dst", "100000") == 1
    assert r2.sunionstore("dst", ["a"]) == 1
    assert r2.pttl("dst") == -1


def test_sintercard_errors(r2: redis.Redis) -> None:
    r2.sadd("s", "a")
    assert error_of(r2, "SINTERCARD", "0", "s") == "numkeys should be greater than 0"
    assert error_of(r2, "SINTERCARD", "x", "s") == "numkeys should be greater than 0"
    assert error_of(r2, "SINTERCARD", "2", "s") == "Number of keys can't be greater than number of args"
    assert error_of(r2, "SINTERCARD", "1", "s", "LIMIT", "-1") == "LIMIT can't be negative"
    assert error_of(r2, "SINTERCARD", "1", "s", "LIMIT", "x") == "LIMIT can't be negative"
    assert error_of(r2, "SINTERCARD", "1", "s", "LIMIT") == "syntax error"
    assert error_of(r2, "SINTERCARD", "1", "s", "foo") == "syntax error"


def test_arity(r2: redis.Redis) -> None:
    assert error_of(r2, "SADD", "s") == "wrong number of arguments for 'sadd' command"
    assert error_of(r2, "SREM", "s") == "wrong number of arguments for 'srem' command"
    assert error_of(r2, "SINTERSTORE", "d") == "wrong number of arguments for 'sinterstore' command"
    assert error_of(r2, "SMOVE", "a", "b") == "wrong number of arguments for 'smove' command"


def test_sscan(r2: redis.Redis) -> None:
    r2.sadd("s", "apple", "avocado", "banana")
    cursor, members = r2.sscan("s", 0)
    assert cursor == 0 and sorted(members) == [b"apple", b"avocado", b"banana"]
    assert sorted(r2.sscan("s", 0, match="a*")[1]) == [b"apple", b"avocado"]
    assert r2.sscan("s", 0, match="?anana") == (0, [b"banana"])
    assert r2.sscan("missing", 0) == (0, [])
    assert error_of(r2, "SSCAN", "s", "x") == "invalid cursor"
    assert error_of(r2, "SSCAN", "s", "0", "COUNT", "0") == "syntax error"
    # NOVALUES is for HSCAN only.
    assert error_of(r2, "SSCAN", "s", "0", "NOVALUES") == "syntax error"


def test_sscan_large_set_survives_deletes(r2: redis.Redis) -> None:
    members = [f"m{i}" for i in range(600)]
    r2.sadd("s", *members)
    stable = {m.encode() for i, m in enumerate(members) if i % 2}
    doomed = [m for i, m in enumerate(members) if i % 2 == 0]
    seen: set[bytes] = set()
    cursor, calls = 0, 0
    while True:
        cursor, batch = r2.sscan("s", cursor, count=25)
        seen.update(batch)
        calls += 1
        if doomed:
            r2.srem("s", *doomed[:15])
            del doomed[:15]
        if cursor == 0:
            break
    assert calls >= 20
    assert stable <= seen


def test_replies_are_snapshots_inside_multi(r2: redis.Redis) -> None:
    r2.sadd("s", "a")
    pipe = r2.pipeline(transaction=True)
    pipe.smembers("s").sadd("s", "b").smembers("s").spop("s", 5).sadd("s", "c")
    first, added, second, popped, _ = pipe.execute()
    assert (first, added, second, sorted(popped)) == ({b"a"}, 1, {b"a", b"b"}, [b"a", b"b"])


def test_watch_sees_set_writes(node: NodeProcess, r2: redis.Redis) -> None:
    r2.sadd("s", "a", "b")
    r2.sadd("t", "x")
    other = node.client(protocol=2)
    try:
        for watched, write in (
            ("s", lambda: other.sadd("s", "c")),
            ("s", lambda: other.spop("s")),
            ("t", lambda: other.smove("s", "t", "a") or other.sadd("t", "y")),
            ("dst", lambda: other.sunionstore("dst", ["s"])),
        ):
            with r2.pipeline() as pipe:
                pipe.watch(watched)
                write()
                pipe.multi()
                pipe.scard(watched)
                with pytest.raises(redis.WatchError):
                    pipe.execute()
        # SADD of an existing member changes nothing and leaves WATCH alone.
        with r2.pipeline() as pipe:
            pipe.watch("t")
            other.sadd("t", "x")
            pipe.multi()
            pipe.sismember("t", "x")
            assert pipe.execute() == [True]
    finally:
        other.close()
