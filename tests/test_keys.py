"""The generic keys family (DEL, EXPIRE, TTL, SCAN, RENAME, COPY, OBJECT, ...) as Redis 7.0 answers.

Three layers, as in test_strings:

* redis-py and raw RESP2/RESP3 sockets against a real ``kvcluster node``: replies,
  reply types, expiry really happening (lazily and actively), SCAN under churn,
  LFU, WATCH, redis-cli;
* an in-process :class:`Node` on a fake clock, for what needs exact control: TTL
  arithmetic and rounding, idle time and LFU decay, replicas, the dirty counter;
* byte-for-byte and statistics comparison with a real ``redis-server`` started
  here, over the same command scripts, and the command table against its COMMAND.

Deliberate differences from Redis (documented in keys.py): OBJECT ENCODING names
what we store (no int/listpack/intset encodings), OBJECT REFCOUNT is always 1 (no
shared integers), and switching between LRU and LFU restarts the access counters.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from helpers import NodeProcess, RawClient, free_port, wait_until
from kvcluster.common.resp import OK, ErrorReply, Status
from kvcluster.node.commands.table import REGISTRY
from kvcluster.node.core import Node
from kvcluster.node.keyspace import ZSet
from kvcluster.node.settings import node_config

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)
NOT_LFU = (
    "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when "
    "switching between policies at runtime LRU and LFU data will take some time to adjust."
)
IS_LFU = (
    "An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching "
    "between policies at runtime LRU and LFU data will take some time to adjust."
)


# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------


@pytest.fixture
def r2(node: NodeProcess) -> Iterator[redis.Redis]:
    """An explicit RESP2 client on one connection (redis-py 8 defaults to RESP3), on a flushed node."""
    c = node.client(protocol=2, single_connection_client=True)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def other(node: NodeProcess, r2: redis.Redis) -> Iterator[redis.Redis]:
    """A second client (the one that changes keys under a WATCH)."""
    c = node.client(protocol=2, single_connection_client=True)
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


@pytest.fixture
def lazy_expiry(r2: redis.Redis) -> Iterator[None]:
    """Active expiry off, so an expired key stays in memory until a command touches it."""
    r2.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    yield
    r2.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


@pytest.fixture
def lfu(r2: redis.Redis) -> Iterator[None]:
    """An LFU maxmemory policy with a deterministic counter (lfu-log-factor 0: every access counts)."""
    r2.config_set("lfu-log-factor", 0)
    r2.config_set("maxmemory-policy", "allkeys-lfu")
    yield
    r2.config_set("maxmemory-policy", "noeviction")
    r2.config_set("lfu-log-factor", 10)


def error_of(r: redis.Redis, *args: object) -> str:
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command(*args)
    return str(e.value)


def expired_keys(r: redis.Redis) -> int:
    return int(r.info("stats")["expired_keys"])


def clear_of_a_minute_boundary() -> None:
    """Wait until the next few seconds cross no minute boundary: LFU counters decay per minute."""
    wait_until(lambda: 1 < time.time() % 60 < 50, timeout=15, what="a quiet part of the minute")


def wait_past(deadline_ms: float) -> None:
    """Wait on the clock the node shares with us until ``deadline_ms`` (Unix ms) has passed."""
    wait_until(lambda: time.time() * 1000 > deadline_ms + 2, what="the TTL to pass")


def exec_watched(raw: RawClient) -> bytes:
    """Run an empty-ish transaction on a connection that WATCHes keys: ``*-1`` when a key changed."""
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
        self.stats = self.node.stats

    @property
    def db(self) -> Any:
        return self.client.db

    def __call__(self, *args: Any) -> Any:
        return self.node.execute(self.client, [a if isinstance(a, bytes) else str(a).encode() for a in args])

    def advance(self, ms: int) -> None:
        self.now += ms
        self.ks.update_lru_clock()  # what the cron does hz times a second


@pytest.fixture
def mem() -> InProcessNode:
    return InProcessNode()


def err(message: str) -> ErrorReply:
    return ErrorReply(message)


# ---------------------------------------------------------------------------
# DEL / UNLINK / EXISTS / TYPE / TOUCH
# ---------------------------------------------------------------------------


def test_del_unlink_exists(r2: redis.Redis) -> None:
    r2.mset({"a": 1, "b": 2, "c": 3})
    assert r2.delete("a", "b", "nokey", "a") == 2
    assert r2.delete("nokey") == 0
    assert r2.exists("a", "b") == 0
    assert r2.exists("c", "c", "c", "nokey") == 3  # duplicates count
    r2.rpush("l", "x")
    assert r2.unlink("c", "l", "nokey") == 2
    assert r2.dbsize() == 0


def test_type_of_every_value_type(r2: redis.Redis, raw2: RawClient, raw3: RawClient) -> None:
    r2.set("s", "v")
    r2.rpush("l", "x")
    r2.sadd("set", "x")
    r2.hset("h", "f", "v")
    r2.zadd("z", {"m": 1})
    expected = {"s": b"string", "l": b"list", "set": b"set", "h": b"hash", "z": b"zset", "nokey": b"none"}
    for key, name in expected.items():
        # A status reply in both protocols, not a bulk string.
        assert raw2.call("TYPE", key) == b"+" + name + b"\r\n"
        assert raw3.call("TYPE", key) == b"+" + name + b"\r\n"
        assert r2.type(key) == name


def test_integer_replies_are_integers(raw2: RawClient, raw3: RawClient) -> None:
    raw2.call("SET", "k", "v")
    for raw in (raw2, raw3):
        assert raw.call("EXISTS", "k", "nokey", "k") == b":2\r\n"
        assert raw.call("TOUCH", "k", "nokey") == b":1\r\n"
        assert raw.call("TTL", "k") == b":-1\r\n"
        assert raw.call("PTTL", "nokey") == b":-2\r\n"
        assert raw.call("EXPIRETIME", "k") == b":-1\r\n"
        assert raw.call("PEXPIRETIME", "nokey") == b":-2\r\n"
        assert raw.call("PERSIST", "k") == b":0\r\n"
        assert raw.call("RENAMENX", "k", "k") == b":0\r\n"
        assert raw.call("COPY", "nokey", "x") == b":0\r\n"
        assert raw.call("DEL", "nokey") == b":0\r\n"
    assert raw2.call("EXPIRE", "k", "100") == b":1\r\n"
    assert raw3.call("EXPIRE", "nokey", "100") == b":0\r\n"
    assert raw3.call("DEL", "k") == b":1\r\n"


def test_null_and_aggregate_replies_per_protocol(raw2: RawClient, raw3: RawClient) -> None:
    assert raw2.call("RANDOMKEY") == b"$-1\r\n"
    assert raw3.call("RANDOMKEY") == b"_\r\n"
    assert raw2.call("OBJECT", "ENCODING", "nokey") == b"$-1\r\n"
    assert raw3.call("OBJECT", "IDLETIME", "nokey") == b"_\r\n"
    assert raw3.call("OBJECT", "FREQ", "nokey") == b"_\r\n"  # missing key: nil before the policy check
    assert raw2.call("OBJECT", "REFCOUNT", "nokey") == b"$-1\r\n"
    for raw in (raw2, raw3):
        assert raw.call("KEYS", "*") == b"*0\r\n"
        assert raw.call("SCAN", "0") == b"*2\r\n$1\r\n0\r\n*0\r\n"
    raw2.call("SET", "k", "v")
    for raw in (raw2, raw3):
        assert raw.call("RANDOMKEY") == b"$1\r\nk\r\n"
        assert raw.call("KEYS", "*") == b"*1\r\n$1\r\nk\r\n"
        assert raw.call("SCAN", "0", "COUNT", "100") == b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"
        assert raw.call("OBJECT", "ENCODING", "k") == b"$6\r\nembstr\r\n"
        assert raw.call("OBJECT", "REFCOUNT", "k") == b":1\r\n"
        assert raw.call("RENAME", "k", "k") == b"+OK\r\n"


def test_touch_counts_existing_keys(r2: redis.Redis) -> None:
    r2.set("a", 1)
    assert r2.touch("a", "a", "nokey") == 2
    assert r2.touch("nokey") == 0


# ---------------------------------------------------------------------------
# EXPIRE family, TTL family, PERSIST
# ---------------------------------------------------------------------------


def test_expire_sets_a_ttl_with_ms_precision(r2: redis.Redis) -> None:
    r2.set("k", "v")
    before = time.time() * 1000
    assert r2.pexpire("k", 5000) is True
    after = time.time() * 1000
    # The deadline is the node's clock at the command plus 5000 ms; we share the clock.
    deadline = r2.pexpiretime("k")
    assert int(before) + 5000 <= deadline <= int(after) + 5001
    assert r2.expiretime("k") == (deadline + 500) // 1000  # seconds are rounded, not truncated
    pttl = r2.pttl("k")
    assert 0 < pttl <= 5000
    assert pttl >= deadline - time.time() * 1000 - 1
    assert 0 < r2.ttl("k") <= 5
    # EXPIREAT / PEXPIREAT are absolute.
    assert r2.pexpireat("k", 4_102_444_800_123) is True
    assert r2.pexpiretime("k") == 4_102_444_800_123
    assert r2.expiretime("k") == 4_102_444_800
    assert r2.execute_command("EXPIREAT", "k", 4_102_444_801) == 1
    assert r2.pexpiretime("k") == 4_102_444_801_000
    assert r2.expire("k", 100) is True
    assert r2.ttl("k") in (99, 100)  # rounded to the nearest second


def test_expire_options_nx_xx_gt_lt(r2: redis.Redis) -> None:
    r2.set("k", "v")
    assert r2.expire("k", 100, xx=True) is False  # no TTL yet
    assert r2.expire("k", 100, gt=True) is False  # no TTL is an infinite one
    assert r2.ttl("k") == -1
    assert r2.expire("k", 100, nx=True) is True
    assert r2.expire("k", 200, nx=True) is False
    assert r2.expire("k", 50, lt=True) is True
    assert r2.ttl("k") in (49, 50)  # rounded to the nearest second
    assert r2.expire("k", 60, lt=True) is False
    assert r2.expire("k", 40, gt=True) is False
    assert r2.expire("k", 70, gt=True) is True
    assert r2.expire("k", 80, xx=True) is True
    assert r2.execute_command("EXPIRE", "k", "90", "XX", "GT") == 1
    assert r2.execute_command("EXPIRE", "k", "10", "xx", "lt", "LT") == 1  # case and repeats are fine
    assert r2.ttl("k") in (9, 10)  # rounded to the nearest second
    assert r2.persist("k") is True
    assert r2.expire("k", 10, lt=True) is True  # LT always beats "no TTL"
    assert r2.ttl("k") in (9, 10)  # rounded to the nearest second
    assert r2.expire("nokey", 10) is False
    assert r2.expire("nokey", 10, nx=True) is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("EXPIRE", "k", "10", "NX", "XX"), "NX and XX, GT or LT options at the same time are not compatible"),
        (("EXPIRE", "k", "10", "GT", "NX"), "NX and XX, GT or LT options at the same time are not compatible"),
        (("PEXPIRE", "k", "10", "LT", "NX"), "NX and XX, GT or LT options at the same time are not compatible"),
        (("EXPIREAT", "k", "10", "GT", "LT"), "GT and LT options at the same time are not compatible"),
        (("EXPIRE", "k", "10", "FOO"), "Unsupported option FOO"),
        (("EXPIRE", "k", "10", "NX", "bar"), "Unsupported option bar"),
        # Options are checked before the time, and the time before the key.
        (("EXPIRE", "k", "abc", "FOO"), "Unsupported option FOO"),
        (("EXPIRE", "nokey", "abc"), "value is not an integer or out of range"),
        (("EXPIRE", "k", "1.5"), "value is not an integer or out of range"),
        (("EXPIRE", "k", " 1"), "value is not an integer or out of range"),
        (("EXPIRE", "k", "+1"), "value is not an integer or out of range"),
        (("EXPIRE", "k", "9223372036854775808"), "value is not an integer or out of range"),
        (("EXPIRE", "k", "9223372036854776"), "invalid expire time in 'expire' command"),
        (("EXPIRE", "nokey", "9223372036854775"), "invalid expire time in 'expire' command"),
        (("EXPIRE", "k", "-9223372036854776"), "invalid expire time in 'expire' command"),
        (("PEXPIRE", "k", "9223372036854775807"), "invalid expire time in 'pexpire' command"),
        (("EXPIREAT", "k", "9223372036854776"), "invalid expire time in 'expireat' command"),
        (("EXPIRE",), "wrong number of arguments for 'expire' command"),
        (("PEXPIREAT", "k"), "wrong number of arguments for 'pexpireat' command"),
        (("TTL", "a", "b"), "wrong number of arguments for 'ttl' command"),
        (("PERSIST",), "wrong number of arguments for 'persist' command"),
    ],
)
def test_expire_errors(r2: redis.Redis, args: tuple[str, ...], message: str) -> None:
    r2.set("k", "v")
    assert error_of(r2, *args) == message
    assert r2.ttl("k") == -1


def test_expire_extremes_that_fit(r2: redis.Redis) -> None:
    r2.set("k", "v")
    assert r2.execute_command("PEXPIREAT", "k", LLONG_MAX) == 1
    assert r2.pexpiretime("k") == LLONG_MAX
    assert r2.execute_command("EXPIREAT", "k", LLONG_MAX // 1000) == 1
    assert r2.pexpiretime("k") == LLONG_MAX // 1000 * 1000
    assert r2.execute_command("EXPIRE", "k", "-9223372036854775") == 1  # fits: deletes the key
    assert r2.exists("k") == 0


@pytest.mark.parametrize(
    "command",
    [
        ("EXPIRE", "k", "0"),
        ("EXPIRE", "k", "-10"),
        ("PEXPIRE", "k", "-1"),
        ("EXPIREAT", "k", "1"),
        ("PEXPIREAT", "k", "0"),
    ],
)
def test_expire_in_the_past_deletes_the_key(r2: redis.Redis, command: tuple[str, ...]) -> None:
    r2.set("k", "v", ex=100)
    before = expired_keys(r2)
    assert r2.execute_command(*command) == 1
    assert r2.exists("k") == 0
    assert r2.dbsize() == 0  # deleted at once, not left to expire
    assert expired_keys(r2) == before  # a deletion, as Redis propagates it (DEL), not an expiry


def test_persist(r2: redis.Redis) -> None:
    r2.set("k", "v", ex=100)
    assert r2.persist("k") is True
    assert r2.ttl("k") == -1
    assert r2.persist("k") is False
    assert r2.persist("nokey") is False


def test_key_expires_lazily_when_touched(r2: redis.Redis, lazy_expiry: None) -> None:
    before = expired_keys(r2)
    r2.set("k", "v", px=100)
    deadline = time.time() * 1000 + 100
    wait_past(deadline)
    # Nothing deleted it yet: it is still in memory ...
    assert r2.dbsize() == 1
    assert expired_keys(r2) == before
    # ... but every command sees it as absent, and the first lookup deletes it.
    assert r2.ttl("k") == -2
    assert r2.dbsize() == 0
    assert expired_keys(r2) == before + 1


LAZY_EXPIRY_CASES: list[tuple[tuple[str, ...], Any]] = [
    (("DEL", "e"), 0),
    (("UNLINK", "e"), 0),
    (("EXISTS", "e"), 0),
    (("TYPE", "e"), b"none"),
    (("TOUCH", "e"), 0),
    (("TTL", "e"), -2),
    (("PTTL", "e"), -2),
    (("EXPIRETIME", "e"), -2),
    (("PEXPIRETIME", "e"), -2),
    (("EXPIRE", "e", "100"), 0),
    (("PERSIST", "e"), 0),
    (("COPY", "e", "x"), 0),
    (("MOVE", "e", "1"), 0),
    (("RENAMENX", "e", "x"), "no such key"),
    (("RENAME", "e", "x"), "no such key"),
    (("OBJECT", "ENCODING", "e"), None),
    (("OBJECT", "IDLETIME", "e"), None),
    (("GET", "e"), None),
]


@pytest.mark.parametrize(("command", "reply"), LAZY_EXPIRY_CASES, ids=[" ".join(c) for c, _ in LAZY_EXPIRY_CASES])
def test_expired_key_is_absent_for_every_command(
    r2: redis.Redis, lazy_expiry: None, command: tuple[str, ...], reply: Any
) -> None:
    r2.set("e", "v", px=30)
    deadline = time.time() * 1000 + 30
    wait_past(deadline)
    assert r2.dbsize() == 1
    before = expired_keys(r2)
    if isinstance(reply, str):
        assert error_of(r2, *command) == reply
    else:
        assert r2.execute_command(*command) == reply
    # The lookup expired it (counted once), and nothing re-created it.
    assert expired_keys(r2) == before + 1
    assert r2.dbsize() == 0
    r2.select(1)
    assert r2.dbsize() == 0  # MOVE and COPY did not move a dead key either
    r2.select(0)


def test_keys_scan_randomkey_hide_expired_keys(r2: redis.Redis, lazy_expiry: None) -> None:
    r2.set("live", "v")
    for i in range(20):
        r2.set(f"e{i}", "v", px=30)
    deadline = time.time() * 1000 + 30
    wait_past(deadline)
    before = expired_keys(r2)
    # KEYS hides them without deleting them, as Redis's KEYS does.
    assert r2.keys("*") == [b"live"]
    assert r2.dbsize() == 21
    assert expired_keys(r2) == before
    # RANDOMKEY never answers a dead key (it deletes those it happens to pick).
    for _ in range(20):
        assert r2.randomkey() == b"live"
    # SCAN skips (and deletes) the expired keys it walks over.
    assert set(r2.scan_iter(count=5)) == {b"live"}
    assert r2.dbsize() == 1
    assert expired_keys(r2) == before + 20


def test_keys_expire_actively_without_being_touched(r2: redis.Redis) -> None:
    before = expired_keys(r2)
    with r2.pipeline(transaction=False) as pipe:
        for i in range(300):
            pipe.set(f"volatile:{i}", "v", px=50)
        for i in range(20):
            pipe.set(f"persistent:{i}", "v")
        pipe.execute()
    # No command looks at the volatile keys: the background cycle must delete them.
    wait_until(lambda: r2.dbsize() == 20, timeout=10, what="active expiry to delete the volatile keys")
    assert expired_keys(r2) == before + 300
    assert sorted(r2.keys("*")) == sorted(f"persistent:{i}".encode() for i in range(20))


# ---------------------------------------------------------------------------
# KEYS
# ---------------------------------------------------------------------------


def test_keys_patterns_and_escapes(r2: redis.Redis) -> None:
    names = ["hello", "hallo", "hxllo", "hllo", "heeello", "a*c", "abc", "a?c", "a[c", "a\\c", "", "foo:1", "foo:22"]
    with r2.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.set(name, "1")
        pipe.execute()

    def keys(pattern: str) -> list[str]:
        return sorted(k.decode() for k in r2.keys(pattern))

    assert keys("*") == sorted(names)  # exactly "*" matches every key, the empty name too
    assert keys("**") == sorted(n for n in names if n)  # any other pattern never matches ""
    assert keys("h?llo") == ["hallo", "hello", "hxllo"]
    assert keys("h*llo") == ["hallo", "heeello", "hello", "hllo", "hxllo"]
    assert keys("h[ae]llo") == ["hallo", "hello"]
    assert keys("h[^e]llo") == ["hallo", "hxllo"]
    assert keys("h[a-b]llo") == ["hallo"]
    assert keys("h[b-a]llo") == ["hallo"]  # range ends in either order
    assert keys("a\\*c") == ["a*c"]  # an escaped star is literal
    assert keys("a\\?c") == ["a?c"]
    assert keys("a[*]c") == ["a*c"]
    assert keys("a\\[c") == ["a[c"]
    assert keys("a\\\\c") == ["a\\c"]
    assert keys("a[\\[]c") == ["a[c"]
    assert keys("foo:?") == ["foo:1"]
    assert keys("foo:*") == ["foo:1", "foo:22"]
    assert keys("nomatch*") == []


def test_keys_matches_redis_for_random_patterns(node: NodeProcess, redis_server: int) -> None:
    names = [
        b"",
        b"a",
        b"ab",
        b"abc",
        b"a*c",
        b"a?c",
        b"a[c",
        b"a]c",
        b"a\\c",
        b"h\xffllo",
        b"hello",
        b"A",
        b"\\",
        b"-",
    ]
    ours = node.client(protocol=2)
    reference = redis.Redis(host="127.0.0.1", port=redis_server, protocol=2)
    try:
        for c in (ours, reference):
            c.flushall()
            c.mset(dict.fromkeys(names, b"1"))
        rnd = random.Random(20240611)
        alphabet = [b"a", b"b", b"c", b"h", b"l", b"*", b"?", b"[", b"]", b"^", b"-", b"\\", b"\xff", b"A"]
        for _ in range(300):
            pattern = b"".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 6)))
            assert sorted(ours.keys(pattern)) == sorted(reference.keys(pattern)), pattern
    finally:
        ours.close()
        reference.close()


# ---------------------------------------------------------------------------
# SCAN / RANDOMKEY
# ---------------------------------------------------------------------------


def test_scan_full_iteration_returns_each_key_once(r2: redis.Redis, raw2: RawClient) -> None:
    with r2.pipeline(transaction=False) as pipe:
        for i in range(1000):
            pipe.set(f"key:{i}", "v")
        pipe.execute()
    seen: list[bytes] = []
    cursor, calls = 0, 0
    while True:
        cursor, batch = r2.scan(cursor, count=7)
        assert len(batch) <= 7
        seen += batch
        calls += 1
        if cursor == 0:
            break
    assert calls >= 1000 // 7
    assert sorted(seen) == sorted(f"key:{i}".encode() for i in range(1000))  # no key twice without changes
    # The cursor is a decimal bulk string.
    reply = raw2.call("SCAN", "0", "COUNT", "3")
    assert reply.startswith(b"*2\r\n$")
    assert int(reply.split(b"\r\n")[2]) > 0


def test_scan_returns_every_stable_key_while_keys_come_and_go(r2: redis.Redis, other: redis.Redis) -> None:
    stable = {f"stable:{i}".encode() for i in range(2000)}
    with r2.pipeline(transaction=False) as pipe:
        for key in stable:
            pipe.set(key, "v")
        for i in range(1000):
            pipe.set(f"doomed:{i}", "v")
        pipe.execute()
    seen: set[bytes] = set()
    cursor, step, created = 0, 0, 0
    doomed = [f"doomed:{i}" for i in range(1000)]
    while True:
        cursor, batch = r2.scan(cursor, count=25)
        seen.update(batch)
        step += 1
        # Between calls another client adds many keys and deletes others (new ones and old ones),
        # enough to grow the table several times over and force the SCAN order's compaction. More
        # keys are created per call than COUNT returns, and they live a step: the scan must still end.
        with other.pipeline(transaction=False) as pipe:
            for _ in range(100):
                pipe.set(f"new:{created}", "v")
                created += 1
            if created > 100:
                pipe.delete(*[f"new:{i}" for i in range(max(0, created - 200), created - 100)])
            if doomed:
                pipe.delete(*doomed[:15])
                del doomed[:15]
            # A key deleted and created again mid-scan may come back twice, but must not break the walk.
            pipe.delete(f"stable-ish:{step % 7}")
            pipe.set(f"stable-ish:{step % 7}", "v")
            pipe.execute()
        if cursor == 0:
            break
        assert step < 10_000, "the scan does not terminate"
    assert created > 6000
    missing = stable - seen
    assert not missing, f"{len(missing)} keys present for the whole scan were never returned"


def test_scan_options(r2: redis.Redis) -> None:
    r2.mset({"s1": "v", "s2": "v", "other": "v"})
    r2.rpush("list1", "x")
    r2.sadd("set1", "x")
    r2.hset("hash1", "f", "v")
    r2.zadd("zset1", {"m": 1})

    def full_scan(**kwargs: Any) -> list[bytes]:
        return sorted(r2.scan_iter(count=2, **kwargs))

    assert full_scan(match="s*") == [b"s1", b"s2", b"set1"]
    assert full_scan(_type="string") == [b"other", b"s1", b"s2"]
    assert full_scan(_type="STRING", match="s*") == [b"s1", b"s2"]  # type names compare case-insensitively
    assert full_scan(_type="list") == [b"list1"]
    assert full_scan(_type="set") == [b"set1"]
    assert full_scan(_type="hash") == [b"hash1"]
    assert full_scan(_type="zset") == [b"zset1"]
    assert full_scan(_type="stream") == []
    assert full_scan(_type="nosuchtype") == []  # no error, nothing matches
    assert full_scan(match="*") == sorted([b"s1", b"s2", b"other", b"list1", b"set1", b"hash1", b"zset1"])
    # A big COUNT returns everything at once.
    assert r2.scan(0, count=1000)[0] == 0
    cursor, found = r2.execute_command("SCAN", "0", "count", "1000", "match", "s?", "type", "string")
    assert (cursor, sorted(found)) == (0, [b"s1", b"s2"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("SCAN", "x"), "invalid cursor"),
        (("SCAN", " 1"), "invalid cursor"),
        (("SCAN", "1x"), "invalid cursor"),
        (("SCAN", "18446744073709551616"), "invalid cursor"),
        (("SCAN", "-"), "invalid cursor"),
        (("SCAN", "x", "COUNT", "x"), "invalid cursor"),  # the cursor is checked first
        (("SCAN", "0", "COUNT", "0"), "syntax error"),
        (("SCAN", "0", "COUNT", "-1"), "syntax error"),
        (("SCAN", "0", "COUNT", "x"), "value is not an integer or out of range"),
        (("SCAN", "0", "COUNT"), "syntax error"),
        (("SCAN", "0", "MATCH"), "syntax error"),
        (("SCAN", "0", "TYPE"), "syntax error"),
        (("SCAN", "0", "NOVALUES"), "syntax error"),
        (("SCAN", "0", "FOO", "bar"), "syntax error"),
        (("SCAN",), "wrong number of arguments for 'scan' command"),
    ],
)
def test_scan_errors(r2: redis.Redis, args: tuple[str, ...], message: str) -> None:
    assert error_of(r2, *args) == message


def test_scan_cursor_is_read_like_strtoul(r2: redis.Redis) -> None:
    r2.set("k", "v")
    # An empty cursor and "+0" are 0, as strtoul reads them; a huge cursor is past the end.
    assert r2.execute_command("SCAN", "")[1] == [b"k"]
    assert r2.execute_command("SCAN", "+0")[1] == [b"k"]
    assert r2.execute_command("SCAN", "0" * 30)[1] == [b"k"]  # leading zeros are no overflow
    assert error_of(r2, "SCAN", "1" * 5000) == "invalid cursor"
    assert r2.execute_command("SCAN", "18446744073709551615") == (0, [])


def test_randomkey(r2: redis.Redis) -> None:
    assert r2.randomkey() is None
    r2.set("only", "v")
    assert r2.randomkey() == b"only"
    r2.mset({f"k{i}": "v" for i in range(5)})
    r2.delete("only")
    seen: set[bytes] = set()
    wait_until(lambda: seen.add(r2.randomkey()) or len(seen) == 5, timeout=10, what="every key to come up")
    assert seen == {f"k{i}".encode() for i in range(5)}
    assert error_of(r2, "RANDOMKEY", "x") == "wrong number of arguments for 'randomkey' command"


# ---------------------------------------------------------------------------
# RENAME / RENAMENX / COPY
# ---------------------------------------------------------------------------


def test_rename(r2: redis.Redis) -> None:
    r2.set("a", "1", px=60_000)
    deadline = r2.pexpiretime("a")
    assert r2.rename("a", "b") is True
    assert r2.exists("a") == 0
    assert r2.get("b") == b"1"
    assert r2.pexpiretime("b") == deadline  # the TTL moves with the value, to the ms
    # Overwriting a key of another type; the destination's own TTL goes away.
    r2.rpush("l", "x")
    r2.expire("l", 100)
    r2.set("c", "2")
    assert r2.rename("c", "l") is True
    assert r2.type("l") == b"string"
    assert r2.ttl("l") == -1
    # Same name: nothing happens, but the key must exist.
    assert r2.rename("b", "b") is True
    assert r2.pexpiretime("b") == deadline
    assert error_of(r2, "RENAME", "nokey", "nokey") == "no such key"
    assert error_of(r2, "RENAME", "nokey", "x") == "no such key"
    assert error_of(r2, "RENAME", "a") == "wrong number of arguments for 'rename' command"


def test_renamenx(r2: redis.Redis) -> None:
    r2.mset({"a": "1", "b": "2"})
    assert r2.renamenx("a", "b") is False
    assert r2.mget("a", "b") == [b"1", b"2"]
    assert r2.renamenx("a", "c") is True
    assert r2.mget("a", "c") == [None, b"1"]
    assert r2.renamenx("c", "c") is False
    assert error_of(r2, "RENAMENX", "nokey", "b") == "no such key"


def _populate_all_types(r: redis.Redis) -> None:
    r.set("string", "v")
    r.rpush("list", "a", "b", "c")
    r.sadd("set", "a", "b")
    r.hset("hash", mapping={"f1": "v1", "f2": "v2"})
    r.zadd("zset", {"a": 1, "b": 2.5})


def _snapshot(r: redis.Redis, key: str) -> Any:
    kind = r.type(key)
    if kind == b"string":
        return r.get(key)
    if kind == b"list":
        return r.lrange(key, 0, -1)
    if kind == b"set":
        return r.smembers(key)
    if kind == b"hash":
        return r.hgetall(key)
    if kind == b"zset":
        return r.zrange(key, 0, -1, withscores=True)
    return None


def test_copy_is_a_deep_copy_of_every_type(r2: redis.Redis) -> None:
    _populate_all_types(r2)
    for key in ("string", "list", "set", "hash", "zset"):
        original = _snapshot(r2, key)
        assert r2.copy(key, f"{key}:copy") is True
        assert r2.type(f"{key}:copy") == r2.type(key)
        assert _snapshot(r2, f"{key}:copy") == original
    # Changing the copies leaves the originals alone, and the other way round.
    r2.append("string:copy", "x")
    r2.rpush("list:copy", "d")
    r2.lset("list", 0, "A")
    r2.sadd("set:copy", "c")
    r2.hset("hash:copy", "f1", "changed")
    r2.zadd("zset:copy", {"a": 10, "z": 0})
    r2.zincrby("zset", 1, "b")
    assert r2.get("string") == b"v"
    assert r2.lrange("list", 0, -1) == [b"A", b"b", b"c"]
    assert r2.lrange("list:copy", 0, -1) == [b"a", b"b", b"c", b"d"]
    assert r2.smembers("set") == {b"a", b"b"}
    assert r2.hgetall("hash") == {b"f1": b"v1", b"f2": b"v2"}
    assert r2.zrange("zset", 0, -1, withscores=True) == [(b"a", 1.0), (b"b", 3.5)]
    assert r2.zrange("zset:copy", 0, -1, withscores=True) == [(b"z", 0.0), (b"b", 2.5), (b"a", 10.0)]


def test_copy_options_and_ttl(r2: redis.Redis) -> None:
    r2.set("src", "v", px=60_000)
    deadline = r2.pexpiretime("src")
    r2.set("dst", "old", ex=1000)
    assert r2.copy("src", "dst") is False  # the destination exists
    assert r2.get("dst") == b"old"
    assert r2.copy("src", "dst", replace=True) is True
    assert r2.get("dst") == b"v"
    assert r2.pexpiretime("dst") == deadline  # the source's TTL, exactly
    r2.persist("src")
    assert r2.copy("src", "dst", replace=True) is True
    assert r2.ttl("dst") == -1  # no TTL on the source: none on the replaced destination either
    # To another database.
    r2.expire("src", 100)
    assert r2.copy("src", "src", destination_db=3) is True
    assert r2.copy("src", "src", destination_db=3) is False
    r2.select(3)
    assert r2.get("src") == b"v"
    assert r2.ttl("src") in (99, 100)
    r2.select(0)
    assert r2.copy("nokey", "x") is False
    assert r2.exists("x") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("COPY", "k", "k"), "source and destination objects are the same"),
        (("COPY", "k", "k", "DB", "0"), "source and destination objects are the same"),
        (("COPY", "nokey", "nokey"), "source and destination objects are the same"),
        (("COPY", "k", "k2", "DB", "16"), "DB index is out of range"),
        (("COPY", "k", "k2", "DB", "-1"), "DB index is out of range"),
        (("COPY", "k", "k2", "DB", "x"), "value is not an integer or out of range"),
        (
            ("COPY", "k", "k2", "DB", "99999999999"),
            "value is out of range, value must between -2147483648 and 2147483647",
        ),
        (("COPY", "k", "k2", "DB"), "syntax error"),
        (("COPY", "k", "k2", "REPLACE", "foo"), "syntax error"),
        (("COPY", "k", "k2", "DB", "16", "foo"), "DB index is out of range"),  # options are checked in order
        (("COPY", "k", "k2", "foo", "DB", "16"), "syntax error"),
        (("COPY", "k"), "wrong number of arguments for 'copy' command"),
    ],
)
def test_copy_errors(r2: redis.Redis, args: tuple[str, ...], message: str) -> None:
    r2.set("k", "v")
    assert error_of(r2, *args) == message
    assert r2.exists("k2") == 0


# ---------------------------------------------------------------------------
# OBJECT
# ---------------------------------------------------------------------------


def test_object_encoding_names_what_is_stored(r2: redis.Redis) -> None:
    _populate_all_types(r2)
    r2.set("int", "12345")
    # Our honest names (keys.py): every string is one allocation (embstr), no compact encodings.
    expected = {
        "string": b"embstr",
        "int": b"embstr",
        "list": b"quicklist",
        "set": b"hashtable",
        "hash": b"hashtable",
        "zset": b"skiplist",
    }
    for key, encoding in expected.items():
        assert r2.object("encoding", key) == encoding, key
        assert r2.object("refcount", key) == 1, key
    assert r2.object("encoding", "nokey") is None


def test_object_idletime_and_freq_under_lru(r2: redis.Redis) -> None:
    r2.set("k", "v")
    # 0, or 1 if the coarse access clock (a second, advanced hz times a second) ticked in between.
    assert r2.object("idletime", "k") in (0, 1)
    assert error_of(r2, "OBJECT", "FREQ", "k") == NOT_LFU
    assert r2.object("freq", "nokey") is None


def test_object_under_lfu(r2: redis.Redis, lfu: None) -> None:
    clear_of_a_minute_boundary()
    r2.set("k", "v")
    assert r2.object("freq", "k") == 5  # Redis's LFU_INIT_VAL: a new key is not the coldest
    for _ in range(10):
        r2.get("k")
    assert r2.object("freq", "k") == 15  # lfu-log-factor 0: every access counts
    # Commands that do not touch the key leave the counter alone.
    r2.exists("k")
    r2.type("k")
    r2.ttl("k")
    r2.object("encoding", "k")
    r2.keys("*")
    r2.scan(0, _type="string")
    assert r2.object("freq", "k") == 15
    assert r2.touch("k", "k") == 2
    assert r2.object("freq", "k") == 17
    # RENAME moves the object with its counter; COPY makes a new one.
    r2.rename("k", "k2")
    assert r2.object("freq", "k2") == 18
    r2.copy("k2", "k3")
    assert r2.object("freq", "k3") == 5
    assert error_of(r2, "OBJECT", "IDLETIME", "k2") == IS_LFU
    assert r2.object("idletime", "nokey") is None
    r2.config_set("maxmemory-policy", "volatile-lfu")
    assert r2.object("freq", "k2") == 19  # COPY read the source: one more access
    r2.config_set("maxmemory-policy", "allkeys-lru")
    assert error_of(r2, "OBJECT", "FREQ", "k2") == NOT_LFU
    assert r2.object("idletime", "k2") in (0, 1)  # the switch restarted the access clocks


def test_object_help_and_errors(r2: redis.Redis, raw3: RawClient) -> None:
    help_lines = r2.execute_command("OBJECT", "HELP")
    assert help_lines[0] == b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert help_lines[-2:] == [b"HELP", b"    Prints this help."]
    assert b"FREQ <key>" in help_lines
    assert raw3.call("OBJECT", "HELP").startswith(b"*15\r\n+OBJECT <subcommand>")
    assert error_of(r2, "OBJECT") == "wrong number of arguments for 'object' command"
    assert error_of(r2, "OBJECT", "FOO", "k") == "unknown subcommand 'FOO'. Try OBJECT HELP."
    assert error_of(r2, "OBJECT", "ENCODING") == "wrong number of arguments for 'object|encoding' command"
    assert error_of(r2, "OBJECT", "HELP", "x") == "wrong number of arguments for 'object|help' command"


# ---------------------------------------------------------------------------
# WATCH
# ---------------------------------------------------------------------------

# (setup on db 0, the watching connection's keys, a command from another client, transaction aborted?)
WATCH_CASES: list[tuple[list[tuple[str, ...]], list[str], tuple[str, ...], bool]] = [
    ([("SET", "k", "v")], ["k"], ("DEL", "k"), True),
    ([("SET", "k", "v")], ["k"], ("UNLINK", "k", "nokey"), True),
    ([("SET", "k", "v")], ["k"], ("DEL", "nokey"), False),
    ([("SET", "k", "v")], ["k"], ("EXPIRE", "k", "100"), True),
    ([("SET", "k", "v")], ["k"], ("PEXPIRE", "k", "-1"), True),
    ([("SET", "k", "v", "EX", "100")], ["k"], ("EXPIRE", "k", "100", "NX"), False),
    ([("SET", "k", "v", "EX", "100")], ["k"], ("PERSIST", "k"), True),
    ([("SET", "k", "v")], ["k"], ("PERSIST", "k"), False),
    ([("SET", "k", "v")], ["k"], ("RENAME", "k", "k2"), True),
    ([("SET", "k", "v")], ["k2"], ("RENAME", "k", "k2"), True),
    ([("SET", "k", "v"), ("SET", "k2", "v")], ["k2"], ("RENAMENX", "k", "k2"), False),
    ([("SET", "k", "v")], ["k2"], ("COPY", "k", "k2"), True),
    ([("SET", "k", "v")], ["k"], ("TOUCH", "k"), False),
    ([("SET", "k", "v")], ["k"], ("MOVE", "k", "1"), True),
    ([("SET", "k", "v")], ["k"], ("OBJECT", "ENCODING", "k"), False),
]


@pytest.mark.parametrize(
    ("setup", "watched", "command", "aborted"), WATCH_CASES, ids=[" ".join(c[2]) for c in WATCH_CASES]
)
def test_watch_sees_key_changes(
    r2: redis.Redis,
    other: redis.Redis,
    raw2: RawClient,
    setup: list[tuple[str, ...]],
    watched: list[str],
    command: tuple[str, ...],
    aborted: bool,
) -> None:
    for step in setup:
        r2.execute_command(*step)
    assert raw2.call("WATCH", *watched) == b"+OK\r\n"
    other.execute_command(*command)
    assert exec_watched(raw2) == (b"*-1\r\n" if aborted else b"*1\r\n+PONG\r\n")


def test_watch_in_the_destination_database(r2: redis.Redis, other: redis.Redis, raw2: RawClient) -> None:
    # MOVE and COPY ... DB n change a key in a database the writer has not selected.
    for command in (("MOVE", "k", "1"), ("COPY", "k", "k", "DB", "1")):
        r2.flushall()
        r2.set("k", "v")
        raw2.call("SELECT", "1")
        raw2.call("WATCH", "k")
        other.execute_command(*command)
        assert exec_watched(raw2) == b"*-1\r\n", command
        raw2.call("SELECT", "0")


# ---------------------------------------------------------------------------
# redis-cli
# ---------------------------------------------------------------------------


def test_redis_cli_scan_ttl_bigkeys_hotkeys(node: NodeProcess, r2: redis.Redis, redis_cli: str) -> None:
    cli = [redis_cli, "-p", str(node.port)]
    r2.mset({f"user:{i}": "x" * i for i in range(1, 51)})
    r2.mset({f"other:{i}": "v" for i in range(30)})
    r2.rpush("queue", *range(10))
    out = subprocess.run(
        [*cli, "--scan", "--pattern", "user:*"], capture_output=True, text=True, timeout=30, check=True
    )
    assert sorted(out.stdout.split()) == sorted(f"user:{i}" for i in range(1, 51))
    r2.expire("user:1", 300)
    out = subprocess.run([*cli, "TTL", "user:1"], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "300"
    out = subprocess.run([*cli, "TYPE", "queue"], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "list"
    out = subprocess.run([*cli, "--bigkeys"], capture_output=True, text=True, timeout=60, check=True)
    assert "Sampled 81 keys in the keyspace!" in out.stdout
    assert "Biggest string found '\"user:50\"' has 50 bytes" in out.stdout
    assert "Biggest   list found '\"queue\"' has 10 items" in out.stdout
    # --hotkeys reads OBJECT FREQ, which needs an LFU policy.
    r2.config_set("maxmemory-policy", "allkeys-lfu")
    try:
        for _ in range(3):
            r2.get("user:7")
        out = subprocess.run([*cli, "--hotkeys"], capture_output=True, text=True, timeout=60, check=True)
        assert 'keyname: "user:7"' in out.stdout
    finally:
        r2.config_set("maxmemory-policy", "noeviction")


# ---------------------------------------------------------------------------
# In-process, fake clock: arithmetic, rounding, replicas, statistics
# ---------------------------------------------------------------------------


def test_expire_arithmetic(mem: InProcessNode) -> None:
    now = mem.now
    mem("SET", "k", "v")
    assert mem("EXPIRE", "k", 10) == 1
    assert mem.db.expires[b"k"] == now + 10_000
    assert mem("PEXPIRE", "k", 1234) == 1
    assert mem.db.expires[b"k"] == now + 1234
    assert mem("EXPIREAT", "k", 2_000_000_000) == 1
    assert mem.db.expires[b"k"] == 2_000_000_000_000
    assert mem("PEXPIREAT", "k", now + 1) == 1
    assert mem.db.expires[b"k"] == now + 1
    # The largest relative times that do not overflow once now is added.
    big_s = (LLONG_MAX - now) // 1000
    assert mem("EXPIRE", "k", big_s) == 1
    assert mem.db.expires[b"k"] == now + big_s * 1000
    assert mem("EXPIRE", "k", big_s + 1) == err("ERR invalid expire time in 'expire' command")
    assert mem("PEXPIRE", "k", LLONG_MAX - now) == 1
    assert mem.db.expires[b"k"] == LLONG_MAX
    assert mem("PEXPIRE", "k", LLONG_MAX - now + 1) == err("ERR invalid expire time in 'pexpire' command")
    # Exactly now is already past.
    assert mem("PEXPIRE", "k", 0) == 1
    assert mem("EXISTS", "k") == 0
    mem("SET", "k", "v")
    assert mem("PEXPIREAT", "k", now) == 1
    assert b"k" not in mem.db.data
    mem("SET", "k", "v")
    assert mem("PEXPIREAT", "k", now + 1) == 1
    assert b"k" in mem.db.data


def test_ttl_rounding_and_countdown(mem: InProcessNode) -> None:
    mem("SET", "k", "v")
    for ms, seconds in [(1, 0), (499, 0), (500, 1), (1499, 1), (1500, 2), (10_000, 10)]:
        mem("PEXPIRE", "k", ms)
        assert mem("PTTL", "k") == ms
        assert mem("TTL", "k") == seconds, ms
    mem("PEXPIRE", "k", 2500)
    deadline = mem.now + 2500
    assert mem("PEXPIRETIME", "k") == deadline
    assert mem("EXPIRETIME", "k") == (deadline + 500) // 1000
    mem.advance(1000)
    assert mem("PTTL", "k") == 1500
    assert mem("TTL", "k") == 2
    mem.advance(1499)
    assert mem("PTTL", "k") == 1
    assert mem("PEXPIRETIME", "k") == deadline  # absolute: does not count down
    mem.advance(1)
    assert mem("PTTL", "k") == -2
    assert mem("TTL", "k") == -2


def test_gt_lt_compare_absolute_times(mem: InProcessNode) -> None:
    mem("SET", "k", "v")
    mem("PEXPIRE", "k", 10_000)
    mem.advance(5000)
    # EXPIRE 6 now ends at +11000 from the first command: later than the current deadline.
    assert mem("EXPIRE", "k", 6, "GT") == 1
    assert mem("PTTL", "k") == 6000
    assert mem("PEXPIRE", "k", 6000, "GT") == 0  # equal is not greater
    assert mem("PEXPIRE", "k", 6000, "LT") == 0  # nor less
    assert mem("PEXPIRE", "k", 5999, "LT") == 1


def test_replica_keeps_keys_expired_by_expire(mem: InProcessNode) -> None:
    mem("SET", "k", "v")
    mem.ks.is_replica = True
    # On a replica the leader's DEL is awaited: the key is stored with a past deadline and hidden.
    assert mem("EXPIRE", "k", -1) == 1
    assert b"k" in mem.db.data
    assert mem("EXISTS", "k") == 0
    assert mem("TTL", "k") == -2
    assert mem("KEYS", "*") == []
    assert mem("DBSIZE") == 1


def test_rename_copy_move_on_an_expired_key_see_no_key(mem: InProcessNode) -> None:
    expired: list[bytes] = []
    mem.ks.on_expired_hook = lambda db, key: expired.append(key)
    for command, reply in [
        (("RENAME", "k", "x"), err("ERR no such key")),
        (("RENAMENX", "k", "x"), err("ERR no such key")),
        (("COPY", "k", "x"), 0),
        (("MOVE", "k", 1), 0),
        (("RENAME", "k", "k"), err("ERR no such key")),
    ]:
        mem("SET", "k", "v", "PX", 10)
        mem.advance(10)
        assert mem(*command) == reply, command
        assert expired[-1] == b"k"
        assert mem("DBSIZE") == 0
    assert len(expired) == 5
    # An expired destination is simply absent: RENAMENX and MOVE go ahead.
    mem("SET", "src", "1")
    mem("SET", "dst", "2", "PX", 10)
    mem.advance(10)
    assert mem("RENAMENX", "src", "dst") == 1
    assert expired[-1] == b"dst"
    assert mem("GET", "dst") == b"1"


def test_idletime_follows_accesses(mem: InProcessNode) -> None:
    mem("SET", "k", "v")
    mem.advance(5_000)
    assert mem("OBJECT", "IDLETIME", "k") == 5
    # Reads that do not touch (TYPE, EXISTS, TTL, OBJECT, KEYS, SCAN) leave it alone.
    for command in (("TYPE", "k"), ("EXISTS", "k"), ("TTL", "k"), ("OBJECT", "ENCODING", "k"), ("KEYS", "*")):
        mem(*command)
    mem("SCAN", 0)
    assert mem("OBJECT", "IDLETIME", "k") == 5
    mem.advance(2_000)
    assert mem("TOUCH", "k") == 1
    assert mem("OBJECT", "IDLETIME", "k") == 0
    mem.advance(3_000)
    # RENAME and MOVE move the object with its access time (after their own access).
    mem("RENAME", "k", "k2")
    mem.advance(4_000)
    assert mem("OBJECT", "IDLETIME", "k2") == 4
    assert mem("MOVE", "k2", 2) == 1
    mem("SELECT", 2)
    mem.advance(1_000)
    assert mem("OBJECT", "IDLETIME", "k2") == 1  # MOVE's own lookup was an access


def test_lfu_counter_decays_over_minutes(mem: InProcessNode) -> None:
    assert mem("CONFIG", "SET", "lfu-log-factor", "0") == OK
    assert mem("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu") == OK
    mem("SET", "k", "v")
    for _ in range(10):
        mem("GET", "k")
    assert mem("OBJECT", "FREQ", "k") == 15
    mem.advance(3 * 60_000)
    assert mem("OBJECT", "FREQ", "k") == 12  # lfu-decay-time 1: one less per idle minute
    assert mem("CONFIG", "SET", "lfu-decay-time", "0") == OK
    mem.advance(10 * 60_000)
    assert mem("OBJECT", "FREQ", "k") == 15  # no decay at all
    assert mem("CONFIG", "SET", "maxmemory-policy", "noeviction") == OK
    assert mem("OBJECT", "FREQ", "k") == err("ERR " + NOT_LFU)
    assert mem("OBJECT", "IDLETIME", "k") == 0


def test_type_replies_are_status(mem: InProcessNode) -> None:
    mem("SET", "s", "v")
    assert mem("TYPE", "s") == Status(b"string")
    assert mem("TYPE", "s").__class__ is Status
    assert mem("TYPE", "nokey") == Status(b"none")


def test_copy_values_share_nothing(mem: InProcessNode) -> None:
    z = ZSet()
    z.add(b"m", 1.0)
    values: dict[bytes, Any] = {
        b"string": b"v",
        b"hash": {b"f": b"v"},
        b"list": deque([b"a"]),
        b"set": {b"a"},
        b"zset": z,
    }
    for key, value in values.items():
        mem.db.set(key, value)
        assert mem("COPY", key, key + b":copy") == 1
        copied = mem.db.data[key + b":copy"]
        assert copied.__class__ is value.__class__
        if value.__class__ is ZSet:
            assert copied is not value and copied.dict == value.dict and list(copied.sorted) == list(value.sorted)
            assert copied.dict is not value.dict and copied.sorted is not value.sorted
        elif value.__class__ is not bytes:
            assert copied == value and copied is not value


def test_scan_property_under_random_churn(mem: InProcessNode) -> None:
    """Seeded random schedules: stable keys always come back, and every scan ends."""
    for seed in range(20):
        rnd = random.Random(seed)
        mem("FLUSHALL")
        stable = {b"stable:%d" % i for i in range(rnd.randint(0, 300))}
        for key in stable:
            mem.db.set(key, b"v")
        churn = [b"churn:%d" % i for i in range(rnd.randint(0, 3000))]
        for key in churn:
            mem.db.set(key, b"v")
        seen: set[bytes] = set()
        cursor, calls, created = b"0", 0, 0
        while True:
            reply = mem("SCAN", cursor, "COUNT", rnd.randint(1, 30))
            cursor = reply[0]
            seen.update(reply[1])
            calls += 1
            for _ in range(rnd.randint(0, 80)):  # often more new keys per call than COUNT returns
                op = rnd.random()
                if op < 0.5:
                    mem.db.set(b"new:%d:%d" % (seed, created), b"v")
                    created += 1
                elif op < 0.8 and churn:
                    mem.db.delete(churn.pop(rnd.randrange(len(churn))))
                else:
                    key = b"new:%d:%d" % (seed, rnd.randrange(created + 1))
                    mem.db.delete(key)
            if cursor == b"0":
                break
            assert calls < 20_000, f"seed {seed}: the scan does not end"
        assert stable <= seen, f"seed {seed}: {len(stable - seen)} stable keys missed"


def test_expire_family_replicates_its_effect(mem: InProcessNode) -> None:
    stream: list[list[bytes]] = []
    mem.node.propagating = True
    mem.node.propagate = lambda db_id, args: stream.append(list(args))  # type: ignore[method-assign]
    mem("SET", "k", "v")
    stream.clear()
    assert mem("EXPIRE", "k", 100) == 1
    assert mem("PEXPIRE", "k", 1500, "GT") == 0  # no change: nothing replicated
    assert mem("PEXPIRE", "k", 1500, "LT") == 1
    assert mem("EXPIREAT", "k", 2_000_000_000) == 1
    assert mem("EXPIRE", "nokey", 100) == 0
    # Relative times and options become the absolute deadline the leader decided.
    assert stream == [
        [b"PEXPIREAT", b"k", b"%d" % (mem.now + 100_000)],
        [b"PEXPIREAT", b"k", b"%d" % (mem.now + 1500)],
        [b"PEXPIREAT", b"k", b"2000000000000"],
    ]
    stream.clear()
    assert mem("EXPIRE", "k", -1) == 1  # a time already past: replicated as the DEL it is
    assert mem("PERSIST", "nokey") == 0
    assert stream == [[b"DEL", b"k"]]
    mem("SET", "a", "1", "PX", 10)
    mem("SET", "b", "1")
    stream.clear()
    mem.advance(10)
    assert mem("RENAME", "b", "c") == OK
    assert mem("EXISTS", "a") == 0  # found expired: the keyspace hook replicates a DEL
    assert mem("PERSIST", "c") == 0
    assert stream == [[b"RENAME", b"b", b"c"], [b"DEL", b"a"]]


@pytest.mark.parametrize(
    ("command", "changes"),
    [
        (("DEL", "s", "l", "nokey"), 2),
        (("DEL", "nokey"), 0),
        (("UNLINK", "s"), 1),
        (("EXISTS", "s"), 0),
        (("EXPIRE", "s", 100), 1),
        (("EXPIRE", "nokey", 100), 0),
        (("EXPIRE", "s", 100, "XX"), 0),
        (("EXPIRE", "t", 100, "XX"), 1),
        (("EXPIRE", "s", -1), 1),
        (("PEXPIREAT", "t", 1), 1),
        (("PERSIST", "t"), 1),
        (("PERSIST", "s"), 0),
        (("TTL", "t"), 0),
        (("RENAME", "s", "s2"), 1),
        (("RENAME", "s", "s"), 0),
        (("RENAMENX", "s", "l"), 0),
        (("RENAMENX", "s", "n"), 1),
        (("COPY", "s", "c"), 1),
        (("COPY", "s", "l"), 0),
        (("COPY", "s", "l", "REPLACE"), 1),
        (("COPY", "s", "s", "DB", 1), 1),
        (("TOUCH", "s"), 0),
        (("KEYS", "*"), 0),
        (("SCAN", 0), 0),
        (("RANDOMKEY",), 0),
        (("OBJECT", "ENCODING", "s"), 0),
    ],
)
def test_dirty_counter(mem: InProcessNode, command: tuple, changes: int) -> None:
    mem("SET", "s", "v")
    mem("RPUSH", "l", "x")
    mem("SET", "t", "v", "EX", 100)
    before = mem.ks.dirty
    mem(*command)
    assert mem.ks.dirty - before == changes


# ---------------------------------------------------------------------------
# Byte-for-byte and statistics against a real redis-server
# ---------------------------------------------------------------------------


def _pong(port: int) -> bool:
    with RawClient(port) as c:
        return c.call("PING") == b"+PONG\r\n"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real redis-server on a free port (DEBUG allowed): the reference for exact replies."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: `make deps` installs Debian's redis-server")
    port = free_port()
    directory = tmp_path_factory.mktemp("redis-reference")
    with open(directory / "redis.log", "wb") as log:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--daemonize", "no", "--dir", str(directory), "--enable-debug-command", "yes"],
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


# Each script starts from empty databases with db 0 selected. Only replies that do not depend on
# timing, hash order or randomness (and not the documented OBJECT ENCODING / REFCOUNT choices).
SCRIPTS: dict[str, list[tuple[str, ...]]] = {
    "del-exists-type": [
        ("MSET", "a", "1", "b", "2"),
        ("DEL", "a", "b", "c", "a"),
        ("DEL", "nokey"),
        ("UNLINK", "nokey"),
        ("SET", "a", "1"),
        ("EXISTS", "a", "a", "a", "nokey"),
        ("RPUSH", "l", "x"),
        ("SADD", "s", "x"),
        ("HSET", "h", "f", "v"),
        ("ZADD", "z", "1", "m"),
        ("TYPE", "a"),
        ("TYPE", "l"),
        ("TYPE", "s"),
        ("TYPE", "h"),
        ("TYPE", "z"),
        ("TYPE", "nokey"),
        ("UNLINK", "l", "s", "h", "z", "nokey"),
        ("TOUCH", "a", "a", "nokey"),
        ("DEL",),
        ("EXISTS",),
        ("TYPE", "a", "b"),
        ("TOUCH",),
    ],
    "expire": [
        ("SET", "a", "1"),
        ("EXPIRE", "a", "100", "nx", "xx"),
        ("EXPIRE", "a", "100", "gt", "lt"),
        ("EXPIRE", "a", "100", "gt", "lt", "nx"),
        ("EXPIRE", "a", "100", "foo"),
        ("EXPIRE", "a", "x", "foo"),
        ("EXPIRE", "a", "x"),
        ("EXPIRE", "a", "1.5"),
        ("EXPIRE", "a", "9223372036854775807"),
        ("EXPIRE", "a", "9223372036854775"),
        ("EXPIRE", "a", "-9223372036854776"),
        ("PEXPIRE", "a", "9223372036854775807"),
        ("PEXPIREAT", "a", "9223372036854775807"),
        ("PEXPIRETIME", "a"),
        ("EXPIRETIME", "a"),
        ("EXPIREAT", "a", "9223372036854775"),
        ("EXPIREAT", "a", "9223372036854776"),
        ("EXPIREAT", "a", "9223372036854775", "XX"),
        ("PEXPIRETIME", "a"),
        ("PERSIST", "a"),
        ("PERSIST", "a"),
        ("PERSIST", "nokey"),
        ("EXPIRE", "nokey", "100"),
        ("EXPIRE", "nokey", "x"),
        ("EXPIRE", "a", "100", "xx"),
        ("EXPIRE", "a", "100", "gt"),
        ("EXPIRE", "a", "100", "nx"),
        ("EXPIRE", "a", "200", "nx"),
        ("EXPIRE", "a", "50", "xx", "gt"),
        ("EXPIRE", "a", "500", "Gt"),
        ("EXPIRE", "a", "50", "lT", "XX"),
        ("TTL", "a"),
        ("EXPIREAT", "a", "4102444800"),
        ("EXPIRETIME", "a"),
        ("PEXPIREAT", "a", "4102444800999"),
        ("EXPIRETIME", "a"),
        ("PEXPIRETIME", "a"),
        ("EXPIRE", "a", "0"),
        ("EXISTS", "a"),
        ("SET", "a", "1"),
        ("EXPIRE", "a", "-1", "GT"),
        ("EXPIRE", "a", "-1", "LT"),
        ("EXISTS", "a"),
        ("SET", "a", "1"),
        ("PEXPIREAT", "a", "1"),
        ("EXISTS", "a"),
        ("TTL", "nokey"),
        ("PTTL", "nokey"),
        ("EXPIRETIME", "nokey"),
        ("PEXPIRETIME", "nokey"),
        ("EXPIRE",),
        ("EXPIRE", "a"),
        ("TTL", "a", "b"),
    ],
    "rename-copy": [
        ("RENAME", "nokey", "nokey"),
        ("RENAME", "nokey", "b"),
        ("RENAMENX", "nokey", "b"),
        ("SET", "a", "1"),
        ("RENAME", "a", "a"),
        ("RENAMENX", "a", "a"),
        ("RENAME", "a", "b"),
        ("GET", "b"),
        ("EXISTS", "a"),
        ("RPUSH", "l", "x"),
        ("RENAMENX", "b", "l"),
        ("RENAME", "b", "l"),
        ("TYPE", "l"),
        ("GET", "l"),
        ("EXPIREAT", "l", "4102444800"),
        ("RENAME", "l", "m"),
        ("EXPIRETIME", "m"),
        ("COPY", "m", "m"),
        ("COPY", "m", "m", "DB", "0"),
        ("COPY", "m", "m", "DB", "1"),
        ("COPY", "m", "n", "DB", "16"),
        ("COPY", "m", "n", "DB", "-1"),
        ("COPY", "m", "n", "DB", "x"),
        ("COPY", "m", "n", "DB", "99999999999"),
        ("COPY", "m", "n", "DB"),
        ("COPY", "m", "n", "REPLACE", "foo"),
        ("COPY", "m", "n", "REPLACE", "REPLACE"),
        ("EXPIRETIME", "n"),
        ("COPY", "m", "n"),
        ("COPY", "m", "n", "REPLACE"),
        ("COPY", "nokey", "n"),
        ("COPY", "nokey", "n", "DB", "99"),
        ("COPY", "nokey", "nokey"),
        ("COPY", "m", "n", "DB", "16", "foo"),
        ("COPY", "m", "n", "foo", "DB", "16"),
        ("SELECT", "1"),
        ("GET", "m"),
        ("EXPIRETIME", "m"),
        ("RPUSH", "list", "a", "b"),
        ("COPY", "list", "list2"),
        ("RPUSH", "list2", "c"),
        ("LRANGE", "list", "0", "-1"),
        ("LRANGE", "list2", "0", "-1"),
        ("RENAME", "a"),
        ("COPY", "a"),
    ],
    "object-scan-keys": [
        ("SET", "a", "1"),
        ("OBJECT", "ENCODING", "nokey"),
        ("OBJECT", "FREQ", "nokey"),
        ("OBJECT", "IDLETIME", "nokey"),
        ("OBJECT", "REFCOUNT", "nokey"),
        ("OBJECT", "FREQ", "a"),
        ("OBJECT", "FOO", "a"),
        ("OBJECT",),
        ("OBJECT", "HELP", "extra"),
        ("OBJECT", "help"),
        ("object", "help"),
        ("OBJECT", "ENCODING"),
        ("OBJECT", "ENCODING", "a", "b"),
        ("SCAN", "x"),
        ("SCAN", " 1"),
        ("SCAN", "18446744073709551616"),
        ("SCAN", "-"),
        ("SCAN", "0", "COUNT", "0"),
        ("SCAN", "0", "COUNT", "x"),
        ("SCAN", "0", "COUNT"),
        ("SCAN", "0", "TYPE"),
        ("SCAN", "0", "FOO", "bar"),
        ("SCAN", "0", "TYPE", "foo"),
        ("SCAN", "0", "MATCH", "nomatch*"),
        ("SCAN", "0", "type", "foo", "COUNT", "x"),
        ("SCAN", "0"),
        ("SCAN", "0", "TYPE", "STRING"),
        ("SCAN", "0", "TYPE", "list"),
        ("SCAN", "", "MATCH", "a"),
        ("RANDOMKEY",),
        ("RANDOMKEY", "x"),
        ("DEL", "a"),
        ("RANDOMKEY",),
        ("SCAN", "0"),
        ("KEYS", "*"),
        ("SET", "", "empty"),
        ("KEYS", "*"),
        ("KEYS", "**"),
        ("KEYS", "?"),
        ("SCAN", "0", "MATCH", "*"),
        ("SCAN", "0", "MATCH", "**"),
        ("SET", "k1", "v"),
        ("KEYS", "k[1]"),
        ("KEYS", "k\\1"),
        ("KEYS", "k\\"),
        ("KEYS", "["),
        ("KEYS",),
    ],
    "lfu": [
        ("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"),
        ("CONFIG", "SET", "lfu-log-factor", "0"),
        ("SET", "k", "v"),
        ("OBJECT", "FREQ", "k"),
        ("GET", "k"),
        ("OBJECT", "FREQ", "k"),
        ("EXISTS", "k"),
        ("TYPE", "k"),
        ("TTL", "k"),
        ("OBJECT", "ENCODING", "k"),
        ("OBJECT", "FREQ", "k"),
        ("TOUCH", "k", "k"),
        ("OBJECT", "FREQ", "k"),
        ("SET", "k", "v2"),
        ("OBJECT", "FREQ", "k"),
        ("EXPIRE", "k", "100"),
        ("PERSIST", "k"),
        ("OBJECT", "FREQ", "k"),
        ("RENAME", "k", "k2"),
        ("OBJECT", "FREQ", "k2"),
        ("COPY", "k2", "k3"),
        ("OBJECT", "FREQ", "k3"),
        ("OBJECT", "FREQ", "k2"),
        ("MOVE", "k2", "1"),
        ("SELECT", "1"),
        ("OBJECT", "FREQ", "k2"),
        ("SELECT", "0"),
        ("OBJECT", "IDLETIME", "k3"),
        ("OBJECT", "IDLETIME", "nokey"),
        ("KEYS", "*"),
        ("SCAN", "0", "TYPE", "string"),
        ("OBJECT", "FREQ", "k3"),
        ("CONFIG", "SET", "maxmemory-policy", "volatile-lfu"),
        ("OBJECT", "FREQ", "k3"),
        ("CONFIG", "SET", "maxmemory-policy", "noeviction"),
        ("CONFIG", "SET", "lfu-log-factor", "10"),
        ("OBJECT", "FREQ", "k3"),
    ],
}


@pytest.mark.parametrize("resp", [2, 3])
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_replies_match_redis(node: NodeProcess, redis_server: int, script: str, resp: int) -> None:
    if script == "lfu":
        clear_of_a_minute_boundary()
    ours, reference = RawClient(node.port, resp), RawClient(redis_server, resp)
    try:
        for conn in (ours, reference):
            conn.call("FLUSHALL")
        for command in SCRIPTS[script]:
            assert ours.call(*command) == reference.call(*command), command
    finally:
        for conn in (ours, reference):
            conn.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
            conn.call("CONFIG", "SET", "lfu-log-factor", "10")
        ours.close()
        reference.close()


def _stats(r: redis.Redis) -> tuple[int, int, int, int]:
    info = r.info("all")
    return (
        info["keyspace_hits"],
        info["keyspace_misses"],
        info["rdb_changes_since_last_save"],
        info["expired_keys"],
    )


STATS_SETUP = [
    ("SET", "s", "v"),
    ("RPUSH", "l", "a", "b"),
    ("SADD", "set", "a"),
    ("HSET", "h", "f", "v"),
    ("ZADD", "z", "1", "a"),
    ("SET", "t", "v", "PX", "100000"),
]
STATS_COMMANDS = [
    ("DEL", "s", "l", "nokey"),
    ("DEL", "nokey"),
    ("UNLINK", "s", "set"),
    ("EXISTS", "s", "nokey", "s"),
    ("TYPE", "s"),
    ("TYPE", "nokey"),
    ("TOUCH", "s", "nokey", "l"),
    ("TTL", "t"),
    ("TTL", "nokey"),
    ("PTTL", "s"),
    ("EXPIRETIME", "t"),
    ("PEXPIRETIME", "nokey"),
    ("EXPIRE", "s", "100"),
    ("EXPIRE", "nokey", "100"),
    ("EXPIRE", "s", "100", "XX"),
    ("EXPIRE", "s", "-1"),
    ("PEXPIRE", "t", "-5"),
    ("EXPIREAT", "s", "1"),
    ("PEXPIREAT", "s", "99999999999999"),
    ("PERSIST", "t"),
    ("PERSIST", "s"),
    ("PERSIST", "nokey"),
    ("KEYS", "*"),
    ("SCAN", "0"),
    ("SCAN", "0", "TYPE", "string"),
    ("SCAN", "0", "TYPE", "list", "MATCH", "l*"),
    ("SCAN", "0", "MATCH", "s*"),
    ("RANDOMKEY",),
    ("RENAME", "s", "s2"),
    ("RENAME", "s", "l"),
    ("RENAME", "nokey", "x"),
    ("RENAMENX", "s", "l"),
    ("RENAMENX", "s", "new"),
    ("RENAME", "s", "s"),
    ("COPY", "s", "s2"),
    ("COPY", "s", "l"),
    ("COPY", "s", "l", "REPLACE"),
    ("COPY", "nokey", "x"),
    ("COPY", "s", "s", "DB", "1"),
    ("COPY", "z", "z", "DB", "1"),
    ("MOVE", "s", "1"),
    ("MOVE", "nokey", "1"),
    ("SWAPDB", "0", "1"),
    ("SWAPDB", "0", "0"),
    ("OBJECT", "ENCODING", "s"),
    ("OBJECT", "ENCODING", "nokey"),
    ("OBJECT", "REFCOUNT", "s"),
    ("OBJECT", "IDLETIME", "s"),
    ("OBJECT", "FREQ", "s"),
    ("OBJECT", "HELP"),
]


def test_statistics_match_redis(node: NodeProcess, redis_server: int) -> None:
    """keyspace_hits / keyspace_misses / changes since save / expired_keys move as in Redis, per command."""
    clients = [
        node.client(protocol=2, single_connection_client=True),
        redis.Redis(host="127.0.0.1", port=redis_server, protocol=2, single_connection_client=True),
    ]
    try:
        for command in STATS_COMMANDS:
            deltas = []
            for c in clients:
                c.flushall()
                for step in STATS_SETUP:
                    c.execute_command(*step)
                before = _stats(c)
                try:
                    c.execute_command(*command)
                except redis.ResponseError:
                    pass
                deltas.append(tuple(b - a for a, b in zip(before, _stats(c), strict=True)))
            assert deltas[0] == deltas[1], command
    finally:
        for c in clients:
            c.close()


EXPIRED_COMMANDS = [
    ("DEL", "e", "e2", "live"),
    ("UNLINK", "e"),
    ("EXISTS", "e", "e2", "live"),
    ("TYPE", "e"),
    ("TOUCH", "e", "live"),
    ("TTL", "e"),
    ("PTTL", "e"),
    ("EXPIRETIME", "e"),
    ("EXPIRE", "e", "100"),
    ("PERSIST", "e"),
    ("KEYS", "*"),
    ("RENAME", "e", "x"),
    ("RENAME", "live", "e"),
    ("RENAMENX", "live", "e"),
    ("RENAMENX", "e", "live"),
    ("COPY", "e", "x"),
    ("COPY", "live", "e"),
    ("COPY", "live", "e", "DB", "1"),
    ("MOVE", "e", "1"),
    ("MOVE", "live", "1"),
    ("OBJECT", "ENCODING", "e"),
    ("SCAN", "0", "MATCH", "e*"),
    ("SWAPDB", "0", "1"),
    ("DBSIZE",),
]


def test_expired_keys_match_redis(node: NodeProcess, redis_server: int) -> None:
    """With active expiry off on both: the reply, expiries counted, changes and what is left, per command."""
    clients = [
        node.client(protocol=2, single_connection_client=True),
        redis.Redis(host="127.0.0.1", port=redis_server, protocol=2, single_connection_client=True),
    ]
    try:
        for c in clients:
            c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        for command in EXPIRED_COMMANDS:
            results = []
            for c in clients:
                c.flushall()
                c.set("live", "v")
                c.mset({"e": "v", "e2": "v"})
                c.pexpire("e", 1)
                c.pexpire("e2", 1)
                c.execute_command("SELECT", "1")
                c.set("e", "v", px=1)
                c.execute_command("SELECT", "0")
                deadline = time.time() * 1000 + 1
                wait_past(deadline)
                before = _stats(c)
                try:
                    reply = c.execute_command(*command)
                except redis.ResponseError as e:
                    reply = str(e)
                deltas = tuple(b - a for a, b in zip(before, _stats(c), strict=True))
                sizes = []
                for db in (0, 1):
                    c.execute_command("SELECT", db)
                    sizes.append(c.dbsize())
                c.execute_command("SELECT", "0")
                results.append((reply, deltas, sizes))
            assert results[0] == results[1], command
    finally:
        for c in clients:
            c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
            c.close()


# name -> group in our table (Redis's COMMAND DOCS group).
KEYS_COMMANDS = {
    "del": "generic",
    "unlink": "generic",
    "exists": "generic",
    "type": "generic",
    "touch": "generic",
    "expire": "generic",
    "pexpire": "generic",
    "expireat": "generic",
    "pexpireat": "generic",
    "ttl": "generic",
    "pttl": "generic",
    "expiretime": "generic",
    "pexpiretime": "generic",
    "persist": "generic",
    "keys": "generic",
    "scan": "generic",
    "randomkey": "generic",
    "rename": "generic",
    "renamenx": "generic",
    "copy": "generic",
    "object": "generic",
}


def test_command_table_matches_redis(redis_server: int) -> None:
    reference = redis.Redis(host="127.0.0.1", port=redis_server, protocol=2, decode_responses=True)
    try:
        info = reference.execute_command("COMMAND", "INFO", *KEYS_COMMANDS)
    finally:
        reference.close()
    # COMMAND DOCS without redis-py's reply parsing: a RESP3 map of maps.
    docs_conn = redis.Connection(host="127.0.0.1", port=redis_server, protocol=3)
    try:
        docs_conn.send_command("COMMAND", "DOCS", *KEYS_COMMANDS)
        docs = docs_conn.read_response()
    finally:
        docs_conn.disconnect()
    assert sorted(info) == sorted(KEYS_COMMANDS)
    for name, entry in info.items():
        cmd = REGISTRY[name]
        assert cmd.arity == entry["arity"], name
        assert cmd.flags == frozenset(entry["flags"]), name
        assert (cmd.first_key, cmd.last_key, cmd.key_step) == (
            entry["first_key_pos"],
            entry["last_key_pos"],
            entry["step_count"],
        ), name
        assert cmd.group == KEYS_COMMANDS[name], name
    # OBJECT's subcommands (redis-py leaves them raw: name, arity, flags, first, last, step, ...).
    subs = {sub[0]: sub for sub in info["object"]["subcommands"]}
    assert sorted(subs) == sorted(f"object|{s}" for s in REGISTRY["object"].subcommands)
    for full_name, sub in subs.items():
        cmd = REGISTRY["object"].subcommands[full_name.split("|")[1]]
        assert (cmd.arity, cmd.flags, cmd.first_key, cmd.last_key, cmd.key_step) == (
            sub[1],
            frozenset(sub[2]),
            sub[3],
            sub[4],
            sub[5],
        ), full_name
    # Summaries and versions, as COMMAND DOCS shows them.
    for name in KEYS_COMMANDS:
        entry = docs[name.encode()]
        assert REGISTRY[name].summary == entry[b"summary"].decode(), name
        assert REGISTRY[name].since == entry[b"since"].decode(), name
        for sub_name, sub in (entry.get(b"subcommands") or {}).items():
            cmd = REGISTRY[name].subcommands[sub_name.decode().split("|")[1]]
            assert (cmd.summary, cmd.since) == (sub[b"summary"].decode(), sub[b"since"].decode()), sub_name


def test_command_info_from_our_node(r2: redis.Redis) -> None:
    info = r2.execute_command("COMMAND", "INFO", "copy", "scan", "object")
    assert info["copy"]["arity"] == -3
    assert info["copy"]["first_key_pos"] == 1 and info["copy"]["last_key_pos"] == 2
    assert {f if isinstance(f, str) else f.decode() for f in info["copy"]["flags"]} == {"write", "denyoom"}
    assert info["scan"]["first_key_pos"] == 0
    assert r2.command_getkeys("RENAME", "a", "b") == ["a", "b"]
    assert r2.command_getkeys("OBJECT", "ENCODING", "k") == ["k"]
    assert r2.command_getkeys("DEL", "a", "b", "c") == ["a", "b", "c"]
    assert r2.command_getkeys("COPY", "a", "b", "DB", "1") == ["a", "b"]
