"""Pub/Sub against a real node: redis-py pubsub() (sync, asyncio, RESP2, RESP3) and exact bytes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from helpers import NodeProcess, RawClient, wait_until


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture
def client(node: NodeProcess, protocol: int) -> Iterator[redis.Redis]:
    c = node.client(protocol=protocol)
    yield c
    c.close()


@pytest.fixture
def publisher(node: NodeProcess) -> Iterator[redis.Redis]:
    c = node.client(protocol=2)
    yield c
    c.close()


def next_message(pubsub: Any, timeout: float = 5.0) -> dict:
    """The next message of a sync redis-py PubSub; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=deadline - time.monotonic())
        if message is not None:
            return message
    raise AssertionError("no pub/sub message arrived")


def send_pipeline(raw: RawClient, *commands: tuple[str, ...]) -> None:
    """Write several commands in one packet (they are executed in one read)."""
    out = []
    for args in commands:
        out.append(b"*%d\r\n" % len(args))
        for a in args:
            out.append(b"$%d\r\n%b\r\n" % (len(a), a.encode()))
    raw.sock.sendall(b"".join(out))


def numsub(r: redis.Redis, channel: str) -> int:
    return dict(r.pubsub_numsub(channel))[channel.encode()]


def test_subscribe_publish_unsubscribe(client: redis.Redis, publisher: redis.Redis) -> None:
    p = client.pubsub()
    p.subscribe("news", "sport")
    assert next_message(p) == {"type": "subscribe", "pattern": None, "channel": b"news", "data": 1}
    assert next_message(p) == {"type": "subscribe", "pattern": None, "channel": b"sport", "data": 2}
    assert publisher.publish("news", "hello") == 1
    assert next_message(p) == {"type": "message", "pattern": None, "channel": b"news", "data": b"hello"}
    assert publisher.publish("nobody-listens", "x") == 0
    p.unsubscribe("news")
    assert next_message(p) == {"type": "unsubscribe", "pattern": None, "channel": b"news", "data": 1}
    assert publisher.publish("news", "lost") == 0
    assert publisher.publish("sport", "goal") == 1
    assert next_message(p)["data"] == b"goal"
    p.close()


def test_messages_arrive_in_publish_order(client: redis.Redis, publisher: redis.Redis) -> None:
    p = client.pubsub(ignore_subscribe_messages=True)
    p.subscribe("seq")
    wait_until(lambda: numsub(publisher, "seq") == 1, what="the subscription")
    pipe = publisher.pipeline(transaction=False)
    for i in range(200):
        pipe.publish("seq", str(i))
    assert pipe.execute() == [1] * 200
    received = [next_message(p)["data"] for _ in range(200)]
    assert received == [str(i).encode() for i in range(200)]
    p.close()


def test_pattern_subscriptions(client: redis.Redis, publisher: redis.Redis) -> None:
    p = client.pubsub()
    p.psubscribe("news.*", "h?llo")
    assert next_message(p) == {"type": "psubscribe", "pattern": None, "channel": b"news.*", "data": 1}
    assert next_message(p)["data"] == 2
    p.subscribe("news.tech")
    assert next_message(p)["data"] == 3  # channels and patterns are counted together
    # One channel subscription and one matching pattern: two deliveries, two receivers.
    assert publisher.publish("news.tech", "ai") == 2
    first, second = next_message(p), next_message(p)
    assert first == {"type": "message", "pattern": None, "channel": b"news.tech", "data": b"ai"}
    assert second == {"type": "pmessage", "pattern": b"news.*", "channel": b"news.tech", "data": b"ai"}
    assert publisher.publish("hallo", "x") == 1
    assert next_message(p) == {"type": "pmessage", "pattern": b"h?llo", "channel": b"hallo", "data": b"x"}
    assert publisher.publish("news", "no dot") == 0
    assert publisher.pubsub_numpat() == 2
    p.punsubscribe("news.*")
    assert next_message(p) == {"type": "punsubscribe", "pattern": None, "channel": b"news.*", "data": 2}
    assert publisher.pubsub_numpat() == 1
    p.close()


def test_exact_resp2_bytes(node: NodeProcess, publisher: redis.Redis) -> None:
    with RawClient(node.port) as raw:
        assert raw.call("UNSUBSCRIBE") == b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
        assert raw.call("PUNSUBSCRIBE") == b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"
        send_pipeline(raw, ("SUBSCRIBE", "c1", "c2", "c1"))
        assert raw._read() == b"*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n"
        assert raw._read() == b"*3\r\n$9\r\nsubscribe\r\n$2\r\nc2\r\n:2\r\n"
        assert raw._read() == b"*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:2\r\n"  # already subscribed
        assert raw.call("PSUBSCRIBE", "c*") == b"*3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:3\r\n"
        # In RESP2 subscribed mode PING answers as an array and other commands are refused.
        assert raw.call("PING") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
        assert raw.call("PING", "x") == b"*2\r\n$4\r\npong\r\n$1\r\nx\r\n"
        assert raw.call("GET", "k") == (
            b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
            b"are allowed in this context\r\n"
        )
        assert publisher.publish("c1", "hello") == 2
        assert raw._read() == b"*3\r\n$7\r\nmessage\r\n$2\r\nc1\r\n$5\r\nhello\r\n"
        assert raw._read() == b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nc1\r\n$5\r\nhello\r\n"
        assert raw.call("PUNSUBSCRIBE") == b"*3\r\n$12\r\npunsubscribe\r\n$2\r\nc*\r\n:2\r\n"
        send_pipeline(raw, ("UNSUBSCRIBE",))
        replies = sorted([raw._read(), raw._read()])
        assert replies == [
            b"*3\r\n$11\r\nunsubscribe\r\n$2\r\nc1\r\n:0\r\n",
            b"*3\r\n$11\r\nunsubscribe\r\n$2\r\nc2\r\n:1\r\n",
        ] or replies == [
            b"*3\r\n$11\r\nunsubscribe\r\n$2\r\nc1\r\n:1\r\n",
            b"*3\r\n$11\r\nunsubscribe\r\n$2\r\nc2\r\n:0\r\n",
        ]
        # Out of subscribed mode: normal commands work again.
        assert raw.call("GET", "never-set") == b"$-1\r\n"


def test_resp3_pushes_and_normal_commands_while_subscribed(node: NodeProcess, publisher: redis.Redis) -> None:
    with RawClient(node.port, resp=3) as raw:
        send_pipeline(raw, ("SUBSCRIBE", "r3"), ("GET", "never-set"), ("PING",), ("PUBSUB", "NUMSUB", "r3", "r3"))
        assert raw._read() == b">3\r\n$9\r\nsubscribe\r\n$2\r\nr3\r\n:1\r\n"
        assert raw._read() == b"_\r\n"
        assert raw._read() == b"+PONG\r\n"
        # NUMSUB is a flat array in RESP3 too (Redis 7), duplicates kept.
        assert raw._read() == b"*4\r\n$2\r\nr3\r\n:1\r\n$2\r\nr3\r\n:1\r\n"
        assert publisher.publish("r3", "m") == 1
        assert raw._read() == b">3\r\n$7\r\nmessage\r\n$2\r\nr3\r\n$1\r\nm\r\n"
        send_pipeline(raw, ("UNSUBSCRIBE", "r3", "zz"))
        assert raw._read() == b">3\r\n$11\r\nunsubscribe\r\n$2\r\nr3\r\n:0\r\n"
        assert raw._read() == b">3\r\n$11\r\nunsubscribe\r\n$2\r\nzz\r\n:0\r\n"
        assert raw.call("UNSUBSCRIBE") == b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n"


def test_replies_keep_pipeline_order(node: NodeProcess) -> None:
    """Subscribe confirmations and a message to oneself go out after earlier replies of the same read."""
    with RawClient(node.port, resp=3) as raw:
        send_pipeline(
            raw,
            ("SET", "k", "v"),
            ("SUBSCRIBE", "self", "other"),
            ("GET", "k"),
            ("PUBLISH", "self", "to me"),
            ("ECHO", "last"),
        )
        assert raw._read() == b"+OK\r\n"
        assert raw._read() == b">3\r\n$9\r\nsubscribe\r\n$4\r\nself\r\n:1\r\n"
        assert raw._read() == b">3\r\n$9\r\nsubscribe\r\n$5\r\nother\r\n:2\r\n"
        assert raw._read() == b"$1\r\nv\r\n"
        # Redis delivers the message before PUBLISH's own reply.
        assert raw._read() == b">3\r\n$7\r\nmessage\r\n$4\r\nself\r\n$5\r\nto me\r\n"
        assert raw._read() == b":1\r\n"
        assert raw._read() == b"$4\r\nlast\r\n"


def test_subscribe_inside_multi(node: NodeProcess) -> None:
    with RawClient(node.port) as raw:
        raw.call("MULTI")
        assert raw.call("SUBSCRIBE", "tx") == b"+QUEUED\r\n"
        # Like Redis: the confirmation is the element of EXEC's array.
        assert raw.call("EXEC") == b"*1\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\ntx\r\n:1\r\n"
        assert raw.call("PING") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"


def test_pubsub_introspection(node: NodeProcess, publisher: redis.Redis) -> None:
    subscribers = [node.client(protocol=2).pubsub() for _ in range(2)]
    try:
        subscribers[0].subscribe("intro.a", "intro.b")
        subscribers[1].subscribe("intro.a")
        subscribers[1].psubscribe("intro.*", "other.*")
        for p, count in ((subscribers[0], 2), (subscribers[1], 3)):
            for _ in range(count):
                next_message(p)
        assert sorted(publisher.pubsub_channels("intro.*")) == [b"intro.a", b"intro.b"]
        assert publisher.pubsub_channels("*.b") == [b"intro.b"]
        assert {b"intro.a", b"intro.b"} <= set(publisher.pubsub_channels())
        assert publisher.pubsub_numsub("intro.a", "intro.b", "nobody") == [
            (b"intro.a", 2),
            (b"intro.b", 1),
            (b"nobody", 0),
        ]
        assert publisher.execute_command("PUBSUB", "NUMSUB") == []
        assert publisher.pubsub_numpat() == 2
    finally:
        for p in subscribers:
            p.close()
    with pytest.raises(redis.ResponseError) as err:
        publisher.execute_command("PUBSUB", "CHANNELS", "a", "b")
    assert str(err.value) == "unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP."
    with pytest.raises(redis.ResponseError) as err:
        publisher.execute_command("PUBSUB", "NUMPAT", "x")
    assert str(err.value) == "wrong number of arguments for 'pubsub|numpat' command"
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'subscribe' command"):
        publisher.execute_command("SUBSCRIBE")
    help_lines = publisher.execute_command("PUBSUB", "HELP")
    assert help_lines[0] == b"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert b"NUMPAT" in help_lines


def test_disconnected_subscriber_is_cleaned_up(node: NodeProcess, publisher: redis.Redis) -> None:
    with RawClient(node.port) as raw:
        raw.call("SUBSCRIBE", "gone")
        raw.call("PSUBSCRIBE", "gone.*")
        raw.call("SSUBSCRIBE", "gone.shard")
        assert numsub(publisher, "gone") == 1
        assert publisher.pubsub_numpat() == 1
    wait_until(lambda: numsub(publisher, "gone") == 0, what="the closed subscriber to be dropped")
    assert publisher.pubsub_numpat() == 0
    assert publisher.publish("gone", "x") == 0
    assert publisher.execute_command("PUBSUB", "SHARDNUMSUB", "gone.shard") == [b"gone.shard", 0]


def test_shard_channels_are_a_separate_namespace(node: NodeProcess, publisher: redis.Redis) -> None:
    with RawClient(node.port) as raw:
        assert raw.call("SSUBSCRIBE", "s1") == b"*3\r\n$10\r\nssubscribe\r\n$2\r\ns1\r\n:1\r\n"
        # Shard subscriptions are counted apart from channels and patterns.
        assert raw.call("SUBSCRIBE", "s1") == b"*3\r\n$9\r\nsubscribe\r\n$2\r\ns1\r\n:1\r\n"
        assert publisher.execute_command("SPUBLISH", "s1", "y") == 1
        assert raw._read() == b"*3\r\n$8\r\nsmessage\r\n$2\r\ns1\r\n$1\r\ny\r\n"
        assert publisher.publish("s1", "z") == 1
        assert raw._read() == b"*3\r\n$7\r\nmessage\r\n$2\r\ns1\r\n$1\r\nz\r\n"
        assert publisher.execute_command("PUBSUB", "SHARDCHANNELS") == [b"s1"]
        assert publisher.execute_command("PUBSUB", "SHARDNUMSUB", "s1") == [b"s1", 1]
        assert raw.call("SUNSUBSCRIBE") == b"*3\r\n$12\r\nsunsubscribe\r\n$2\r\ns1\r\n:0\r\n"
        assert publisher.execute_command("SPUBLISH", "s1", "y") == 0


def test_redis_py_sharded_pubsub(client: redis.Redis, publisher: redis.Redis) -> None:
    p = client.pubsub()
    p.ssubscribe("shard")
    assert next_message(p) == {"type": "ssubscribe", "pattern": None, "channel": b"shard", "data": 1}
    assert publisher.spublish("shard", "hi") == 1
    assert next_message(p) == {"type": "smessage", "pattern": None, "channel": b"shard", "data": b"hi"}
    p.close()


def test_binary_channels_and_payloads(client: redis.Redis, publisher: redis.Redis) -> None:
    channel = b"bin\x00\xff\r\nchan"
    payload = bytes(range(256)) * 4
    p = client.pubsub(ignore_subscribe_messages=True)
    p.subscribe(channel)
    wait_until(lambda: publisher.pubsub_numsub(channel) == [(channel, 1)], what="the subscription")
    assert publisher.publish(channel, payload) == 1
    message = next_message(p)
    assert message["channel"] == channel and message["data"] == payload
    p.close()


def test_client_kind_follows_subscriptions(node: NodeProcess, publisher: redis.Redis, protocol: int) -> None:
    with RawClient(node.port, resp=protocol) as raw:
        my_id = int(raw.call("CLIENT", "ID")[1:-2])

        def listed(kind: str) -> bool:
            return any(int(c["id"]) == my_id for c in publisher.client_list(_type=kind))

        assert listed("normal") and not listed("pubsub")
        raw.call("SUBSCRIBE", "kind")
        assert listed("pubsub") and not listed("normal")
        info = publisher.client_list(client_id=[my_id])[0]
        assert info["sub"] == "1" and "P" in info["flags"]
        raw.call("UNSUBSCRIBE")
        assert listed("normal") and not listed("pubsub")


def test_reset_leaves_subscribed_mode(node: NodeProcess, publisher: redis.Redis) -> None:
    with RawClient(node.port) as raw:
        raw.call("SUBSCRIBE", "a")
        raw.call("PSUBSCRIBE", "b*")
        assert raw.call("RESET") == b"+RESET\r\n"
        assert raw.call("GET", "never-set") == b"$-1\r\n"
        assert publisher.publish("a", "x") == 0
        assert publisher.pubsub_numpat() == 0


async def test_asyncio_pubsub(node: NodeProcess, protocol: int) -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=node.port, protocol=protocol)
    publisher = redis.asyncio.Redis(host="127.0.0.1", port=node.port, protocol=2)
    p = client.pubsub()
    try:
        await p.subscribe("async.chan")
        await p.psubscribe("async.*")
        confirmations = [await p.get_message(timeout=5) for _ in range(2)]
        assert [m["type"] for m in confirmations] == ["subscribe", "psubscribe"]
        assert await publisher.publish("async.chan", "payload") == 2
        got = [await p.get_message(timeout=5) for _ in range(2)]
        assert got == [
            {"type": "message", "pattern": None, "channel": b"async.chan", "data": b"payload"},
            {"type": "pmessage", "pattern": b"async.*", "channel": b"async.chan", "data": b"payload"},
        ]
        await p.unsubscribe("async.chan")
        assert (await p.get_message(timeout=5))["type"] == "unsubscribe"
        assert await publisher.pubsub_numsub("async.chan") == [(b"async.chan", 0)]
    finally:
        await p.aclose()
        await client.aclose()
        await publisher.aclose()


def test_pubsub_run_in_thread(client: redis.Redis, publisher: redis.Redis) -> None:
    received: list[bytes] = []
    p = client.pubsub()
    p.subscribe(**{"threaded": lambda message: received.append(message["data"])})
    worker = p.run_in_thread(sleep_time=0.01, daemon=True)
    try:
        wait_until(lambda: numsub(publisher, "threaded") == 1, what="the subscription")
        for i in range(20):
            publisher.publish("threaded", i)
        wait_until(lambda: len(received) == 20, what="20 messages")
        assert received == [str(i).encode() for i in range(20)]
    finally:
        worker.stop()
        worker.join(5)
        p.close()
