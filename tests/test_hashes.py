"""Hash commands against a real node: replies, types (RESP2/RESP3) and errors as Redis 7 gives them."""

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


def test_hset_hget_and_counts(r2: redis.Redis) -> None:
    assert r2.hset("h", mapping={"a": "1", "b": "2"}) == 2
    assert r2.execute_command("HSET", "h", "a", "10", "c", "3") == 1
    assert r2.hget("h", "a") == b"10"
    assert r2.hget("h", "zz") is None
    assert r2.hget("missing", "a") is None
    assert r2.hlen("h") == 3
    assert r2.hlen("missing") == 0
    assert r2.hmget("h", "a", "zz", "c") == [b"10", None, b"3"]
    assert r2.hmget("missing", "a", "b") == [None, None]
    assert r2.hexists("h", "b") is True
    assert r2.hexists("h", "zz") is False
    assert r2.hstrlen("h", "a") == 2
    assert r2.hstrlen("h", "zz") == 0
    assert r2.hstrlen("missing", "a") == 0


def test_insertion_order_kept(r2: redis.Redis) -> None:
    r2.hset("h", mapping={"z": "1", "a": "2", "m": "3"})
    r2.hset("h", "a", "20")  # overwriting keeps the position
    assert r2.hkeys("h") == [b"z", b"a", b"m"]
    assert r2.hvals("h") == [b"1", b"20", b"3"]
    assert r2.hgetall("h") == {b"z": b"1", b"a": b"20", b"m": b"3"}
    assert r2.hkeys("missing") == []
    assert r2.hvals("missing") == []
    assert r2.hgetall("missing") == {}


def test_hgetall_is_a_map_in_resp3(r2: redis.Redis, raw2: RawClient, raw3: RawClient) -> None:
    r2.hset("h", mapping={"a": "1", "b": "2"})
    assert raw2.call("HGETALL", "h") == b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    assert raw3.call("HGETALL", "h") == b"%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    assert raw2.call("HGETALL", "nokey") == b"*0\r\n"
    assert raw3.call("HGETALL", "nokey") == b"%0\r\n"
    assert raw3.call("HGET", "h", "zz") == b"_\r\n"
    assert raw2.call("HGET", "h", "zz") == b"$-1\r\n"


def test_hmset_and_hsetnx(r2: redis.Redis) -> None:
    assert r2.execute_command("HMSET", "h", "a", "1", "b", "2") is True
    assert r2.hsetnx("h", "a", "9") == 0
    assert r2.hsetnx("h", "c", "3") == 1
    assert r2.hsetnx("new", "f", "v") == 1
    assert r2.hgetall("h") == {b"a": b"1", b"b": b"2", b"c": b"3"}
    assert r2.hgetall("new") == {b"f": b"v"}


def test_wrong_number_of_arguments(r2: redis.Redis) -> None:
    for args in (("HSET", "h"), ("HSET", "h", "a"), ("HSET", "h", "a", "1", "b")):
        assert error_of(r2, *args) == "wrong number of arguments for 'hset' command"
    assert error_of(r2, "HMSET", "h", "a", "1", "b") == "wrong number of arguments for 'hmset' command"
    assert error_of(r2, "HDEL", "h") == "wrong number of arguments for 'hdel' command"
    assert r2.dbsize() == 0


def test_hdel_deletes_the_key_when_empty(r2: redis.Redis) -> None:
    r2.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
    assert r2.hdel("h", "a", "a", "zz") == 1
    assert r2.hdel("missing", "a") == 0
    assert r2.dbsize() == 1
    assert r2.hdel("h", "b", "c") == 2
    assert r2.dbsize() == 0
    assert r2.hlen("h") == 0


def test_wrongtype(r2: redis.Redis) -> None:
    r2.set("s", "x")
    for args in (
        ("HGET", "s", "a"),
        ("HSET", "s", "a", "1"),
        ("HSETNX", "s", "a", "1"),
        ("HMGET", "s", "a"),
        ("HGETALL", "s"),
        ("HDEL", "s", "a"),
        ("HLEN", "s"),
        ("HSTRLEN", "s", "a"),
        ("HEXISTS", "s", "a"),
        ("HKEYS", "s"),
        ("HVALS", "s"),
        ("HINCRBY", "s", "a", "1"),
        ("HINCRBYFLOAT", "s", "a", "1"),
        ("HRANDFIELD", "s"),
        ("HRANDFIELD", "s", "1"),
        ("HSCAN", "s", "0"),
    ):
        assert error_of(r2, *args) == WRONGTYPE, args
    # Arguments are checked before the key's type, as in Redis.
    assert error_of(r2, "HINCRBY", "s", "a", "x") == "value is not an integer or out of range"
    assert error_of(r2, "HINCRBYFLOAT", "s", "a", "x") == "value is not a valid float"
    assert error_of(r2, "HRANDFIELD", "s", "x") == "value is not an integer or out of range"
    assert r2.get("s") == b"x"


def test_hincrby(r2: redis.Redis) -> None:
    assert r2.hincrby("h", "n", 5) == 5
    assert r2.hincrby("h", "n", -7) == -2
    assert r2.hget("h", "n") == b"-2"
    r2.hset("h", mapping={"s": "abc", "plus": "+1", "zeros": "007", "sp": " 1", "big": "9223372036854775807"})
    for field in ("s", "plus", "zeros", "sp"):
        assert error_of(r2, "HINCRBY", "h", field, "1") == "hash value is not an integer"
    assert error_of(r2, "HINCRBY", "h", "n", "+1") == "value is not an integer or out of range"
    assert error_of(r2, "HINCRBY", "h", "n", "1.5") == "value is not an integer or out of range"
    assert error_of(r2, "HINCRBY", "h", "big", "1") == "increment or decrement would overflow"
    assert r2.hincrby("h", "small", -9223372036854775808) == -9223372036854775808
    assert error_of(r2, "HINCRBY", "h", "small", "-1") == "increment or decrement would overflow"
    assert r2.hget("h", "big") == b"9223372036854775807"


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def test_hincrbyfloat_formats_like_redis(r2: redis.Redis, raw2: RawClient) -> None:
    # Redis adds in long double and prints "%.17Lf" without trailing zeros.
    assert raw2.call("HINCRBYFLOAT", "h", "f", "0.1") == bulk(b"0.1")
    assert raw2.call("HINCRBYFLOAT", "h", "f", "0.2") == bulk(b"0.3")
    assert raw2.call("HINCRBYFLOAT", "h", "g", "10.5") == bulk(b"10.5")
    assert raw2.call("HINCRBYFLOAT", "h", "g", "0.1") == bulk(b"10.6")
    assert raw2.call("HINCRBYFLOAT", "h", "g", "-10.6") == bulk(b"0")
    assert raw2.call("HINCRBYFLOAT", "h", "e", "1.5e3") == bulk(b"1500")
    assert raw2.call("HINCRBYFLOAT", "h", "e", "0x10") == bulk(b"1516")
    assert raw2.call("HINCRBYFLOAT", "h", "z", "-0.0") == bulk(b"0")
    assert raw2.call("HINCRBYFLOAT", "h", "p", "1.23456789012345678901234") == bulk(b"1.23456789012345679")
    # 1e400 overflows a double but not a long double.
    big = raw2.call("HINCRBYFLOAT", "h", "big", "1e400")
    assert big.startswith(b"$401\r\n1000000000000000000028188")
    assert r2.hget("h", "f") == b"0.3"
    r2.hset("h", "i", "5")
    assert raw2.call("HINCRBYFLOAT", "h", "i", "1") == bulk(b"6")


def test_hincrbyfloat_errors(r2: redis.Redis) -> None:
    r2.hset("h", mapping={"s": "abc", "sp": " 1", "n": "1"})
    assert error_of(r2, "HINCRBYFLOAT", "h", "n", "abc") == "value is not a valid float"
    assert error_of(r2, "HINCRBYFLOAT", "h", "n", " 1") == "value is not a valid float"
    assert error_of(r2, "HINCRBYFLOAT", "h", "n", "1 ") == "value is not a valid float"
    assert error_of(r2, "HINCRBYFLOAT", "h", "n", "1e-5000") == "value is not a valid float"
    assert error_of(r2, "HINCRBYFLOAT", "h", "n", "nan") == "value is not a valid float"
    assert error_of(r2, "HINCRBYFLOAT", "h", "n", "inf") == "value is NaN or Infinity"
    assert error_of(r2, "HINCRBYFLOAT", "h", "s", "1") == "hash value is not a float"
    assert error_of(r2, "HINCRBYFLOAT", "h", "sp", "1") == "hash value is not a float"
    r2.execute_command("HINCRBYFLOAT", "h", "max", "1e4932")
    assert error_of(r2, "HINCRBYFLOAT", "h", "max", "1e4932") == "increment would produce NaN or Infinity"
    assert r2.hget("h", "n") == b"1"
    assert error_of(r2, "HINCRBYFLOAT", "fresh", "n", "x") == "value is not a valid float"
    assert r2.dbsize() == 1


def test_hrandfield_single_and_counts(r2: redis.Redis) -> None:
    fields = {f"f{i}".encode(): f"v{i}".encode() for i in range(10)}
    r2.hset("h", mapping=fields)
    assert r2.hrandfield("h") in fields
    assert r2.hrandfield("missing") is None
    assert r2.hrandfield("missing", 3) == []
    assert r2.hrandfield("h", 0) == []
    picked = r2.hrandfield("h", 5)
    assert len(picked) == 5 and len(set(picked)) == 5 and set(picked) <= set(fields)
    assert sorted(r2.hrandfield("h", 50)) == sorted(fields)
    repeated = r2.hrandfield("h", -30)
    assert len(repeated) == 30 and set(repeated) <= set(fields)
    # With one field, a negative count repeats it.
    r2.hset("one", "a", "1")
    assert r2.hrandfield("one", -3) == [b"a", b"a", b"a"]


def test_hrandfield_withvalues(r2: redis.Redis, raw2: RawClient, raw3: RawClient) -> None:
    r2.hset("h", "a", "1")
    assert raw2.call("HRANDFIELD", "h", "-2", "WITHVALUES") == b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\na\r\n$1\r\n1\r\n"
    # RESP3 nests each field with its value.
    assert raw3.call("HRANDFIELD", "h", "2", "withvalues") == b"*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    assert raw3.call("HRANDFIELD", "nokey") == b"_\r\n"
    assert raw3.call("HRANDFIELD", "nokey", "1") == b"*0\r\n"
    r2.hset("h", mapping={"b": "2", "c": "3"})
    flat = r2.execute_command("HRANDFIELD", "h", "-20", "WITHVALUES")
    assert len(flat) == 40
    assert all({flat[i]: flat[i + 1]}.items() <= {b"a": b"1", b"b": b"2", b"c": b"3"}.items() for i in range(0, 40, 2))


def test_hrandfield_errors(r2: redis.Redis) -> None:
    r2.hset("h", "a", "1")
    assert error_of(r2, "HRANDFIELD", "h", "1", "withvalue") == "syntax error"
    assert error_of(r2, "HRANDFIELD", "h", "1", "2") == "syntax error"
    assert error_of(r2, "HRANDFIELD", "h", "1", "WITHVALUES", "x") == "syntax error"
    assert (
        error_of(r2, "HRANDFIELD", "h", "-9223372036854775808")
        == "value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    )
    assert error_of(r2, "HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES") == "value is out of range"
    assert error_of(r2, "HRANDFIELD", "h", "4611686018427387904", "WITHVALUES") == "value is out of range"
    # Positive counts are capped by the hash's size, so huge ones are fine.
    assert r2.execute_command("HRANDFIELD", "h", "4611686018427387903", "WITHVALUES") == [b"a", b"1"]
    # Redis would try to build a reply of 2**62 elements and die; we refuse.
    assert error_of(r2, "HRANDFIELD", "h", "-4611686018427387903") == "value is out of range"


def test_hscan_small_hash_in_one_call(r2: redis.Redis, raw2: RawClient) -> None:
    r2.hset("h", mapping={"a": "1", "b": "2", "ab": "3"})
    assert raw2.call("HSCAN", "h", "0") == (
        b"*2\r\n$1\r\n0\r\n*6\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$2\r\nab\r\n$1\r\n3\r\n"
    )
    assert r2.hscan("h", 0, match="a*") == (0, {b"a": b"1", b"ab": b"3"})
    assert r2.hscan("h", 0, match="[b-z]") == (0, {b"b": b"2"})
    assert r2.hscan("h", 0, match="*[^a]", count=1) == (0, {b"b": b"2", b"ab": b"3"})
    assert r2.hscan("h", 0, match="\\a?") == (0, {b"ab": b"3"})
    assert raw2.call("HSCAN", "h", "0", "NOVALUES") == b"*2\r\n$1\r\n0\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\nab\r\n"
    assert r2.hscan("missing", 0) == (0, {})


def test_hscan_errors(r2: redis.Redis) -> None:
    r2.hset("h", "a", "1")
    assert error_of(r2, "HSCAN", "h", "abc") == "invalid cursor"
    assert error_of(r2, "HSCAN", "h", "0", "COUNT", "0") == "syntax error"
    assert error_of(r2, "HSCAN", "h", "0", "COUNT", "-1") == "syntax error"
    assert error_of(r2, "HSCAN", "h", "0", "COUNT", "x") == "value is not an integer or out of range"
    assert error_of(r2, "HSCAN", "h", "0", "MATCH") == "syntax error"
    assert error_of(r2, "HSCAN", "h", "0", "BOGUS", "1") == "syntax error"


def test_hscan_large_hash_returns_every_stable_field_despite_changes(r2: redis.Redis) -> None:
    fields = {f"field:{i}": str(i) for i in range(1000)}
    r2.hset("h", mapping=fields)
    stable = {f for i, f in enumerate(fields) if i % 3}  # never touched during the scan
    doomed = [f for i, f in enumerate(fields) if i % 3 == 0]
    seen: dict[bytes, bytes] = {}
    cursor, calls = 0, 0
    while True:
        cursor, batch = r2.hscan("h", cursor, count=20)
        seen.update(batch)
        calls += 1
        assert len(batch) <= 20
        # Deleting and adding fields mid-scan must not make the scan skip stable ones.
        if doomed:
            r2.hdel("h", *doomed[:10])
            del doomed[:10]
        r2.hset("h", f"new:{calls}", "x")
        if cursor == 0:
            break
    assert calls > 10
    assert {f.encode() for f in stable} <= set(seen)
    assert all(seen[f.encode()] == fields[f].encode() for f in stable)


def test_hscan_with_unknown_cursor_still_terminates(r2: redis.Redis) -> None:
    r2.hset("h", mapping={f"f{i}": "v" for i in range(300)})
    # A cursor from another node (or evicted) continues best effort instead of failing.
    cursor, batch = r2.hscan("h", (12345 << 32) | 100, count=50)
    assert len(batch) == 50
    seen = set(batch)
    while cursor:
        cursor, batch = r2.hscan("h", cursor, count=50)
        seen |= set(batch)
    assert len(seen) == 200
    assert r2.hscan("h", 18446744073709551615, count=50) == (0, {})
    assert r2.hscan("h", (1 << 63) + 7, count=50)[0] >= 0


def test_replies_are_snapshots_inside_multi(r2: redis.Redis) -> None:
    r2.hset("h", "a", "1")
    pipe = r2.pipeline(transaction=True)
    pipe.hgetall("h").hkeys("h").hvals("h").hset("h", "b", "2").hgetall("h")
    assert pipe.execute() == [{b"a": b"1"}, [b"a"], [b"1"], 1, {b"a": b"1", b"b": b"2"}]


def test_watch_sees_hash_writes(node: NodeProcess, r2: redis.Redis) -> None:
    r2.hset("h", "a", "1")
    other = node.client(protocol=2)
    try:
        for write in (
            lambda: other.hset("h", "a", "2"),
            lambda: other.hincrby("h", "n", 1),
            lambda: other.hdel("h", "a"),
        ):
            with r2.pipeline() as pipe:
                pipe.watch("h")
                write()
                pipe.multi()
                pipe.hget("h", "a")
                with pytest.raises(redis.WatchError):
                    pipe.execute()
        # A no-op write (HDEL of a missing field) does not abort the transaction.
        with r2.pipeline() as pipe:
            pipe.watch("h")
            other.hdel("h", "nope")
            pipe.multi()
            pipe.hlen("h")
            assert pipe.execute() == [1]
    finally:
        other.close()
