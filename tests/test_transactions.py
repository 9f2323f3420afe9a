"""MULTI / EXEC / DISCARD / WATCH / UNWATCH against a real node, as Redis 7 answers them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from helpers import NodeProcess, RawClient, wait_until


@pytest.fixture
def r2(node: NodeProcess) -> Iterator[redis.Redis]:
    """RESP2 client on one connection (MULTI state is per connection)."""
    c = node.client(protocol=2, single_connection_client=True)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def other(node: NodeProcess) -> Iterator[redis.Redis]:
    """A second, competing client."""
    c = node.client(protocol=2, single_connection_client=True)
    yield c
    c.close()


@pytest.fixture
def raw(node: NodeProcess, r2: redis.Redis) -> Iterator[RawClient]:
    with RawClient(node.port) as c:
        yield c


def test_pipeline_transaction(r2: redis.Redis) -> None:
    pipe = r2.pipeline(transaction=True)
    pipe.set("a", 1).incr("a").incrby("a", 10).get("a")
    assert pipe.execute() == [True, 2, 12, b"12"]


def test_exec_replies_and_queued_status(raw: RawClient) -> None:
    assert raw.call("MULTI") == b"+OK\r\n"
    assert raw.call("SET", "k", "v") == b"+QUEUED\r\n"
    assert raw.call("GET", "k") == b"+QUEUED\r\n"
    assert raw.call("GET", "missing") == b"+QUEUED\r\n"
    assert raw.call("EXEC") == b"*3\r\n+OK\r\n$1\r\nv\r\n$-1\r\n"
    # An empty transaction is an empty array.
    assert raw.call("MULTI") == b"+OK\r\n"
    assert raw.call("EXEC") == b"*0\r\n"


def test_runtime_errors_are_values_inside_exec(r2: redis.Redis, raw: RawClient) -> None:
    raw.call("MULTI")
    raw.call("SET", "a", "x")
    raw.call("INCR", "a")
    raw.call("SET", "b", "1")
    assert raw.call("EXEC") == b"*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n"
    # The commands after the failing one ran.
    assert r2.get("b") == b"1"
    # redis-py sees the error in place with raise_on_error=False.
    pipe = r2.pipeline(transaction=True)
    pipe.set("a", "x").incr("a").get("a")
    results = pipe.execute(raise_on_error=False)
    assert results[0] is True and results[2] == b"x"
    assert isinstance(results[1], redis.ResponseError)
    assert str(results[1]) == "value is not an integer or out of range"


def test_queueing_errors_abort_the_transaction(r2: redis.Redis, raw: RawClient) -> None:
    raw.call("MULTI")
    assert raw.call("SET", "a", "1") == b"+QUEUED\r\n"
    assert raw.call("NOSUCHCMD", "x") == b"-ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' \r\n"
    assert raw.call("GET") == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert raw.call("EXEC") == b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    assert r2.get("a") is None
    # The transaction is over: the connection is back to normal.
    assert raw.call("EXEC") == b"-ERR EXEC without MULTI\r\n"
    assert raw.call("SET", "a", "2") == b"+OK\r\n"
    # redis-py reports the queueing error (the EXECABORT follows it).
    with pytest.raises(redis.ResponseError, match="unknown command 'NOSUCHCMD'"):
        r2.pipeline(transaction=True).set("x", 1).execute_command("NOSUCHCMD").execute()
    assert r2.get("x") is None


def test_state_errors(raw: RawClient) -> None:
    assert raw.call("EXEC") == b"-ERR EXEC without MULTI\r\n"
    assert raw.call("DISCARD") == b"-ERR DISCARD without MULTI\r\n"
    assert raw.call("MULTI") == b"+OK\r\n"
    assert raw.call("MULTI") == b"-ERR MULTI calls can not be nested\r\n"
    assert raw.call("WATCH", "k") == b"-ERR WATCH inside MULTI is not allowed\r\n"
    # Neither error poisons the transaction (Redis runs it).
    assert raw.call("SET", "k", "v") == b"+QUEUED\r\n"
    assert raw.call("EXEC") == b"*1\r\n+OK\r\n"
    assert raw.call("WATCH") == b"-ERR wrong number of arguments for 'watch' command\r\n"
    assert raw.call("UNWATCH", "x") == b"-ERR wrong number of arguments for 'unwatch' command\r\n"
    assert raw.call("MULTI", "x") == b"-ERR wrong number of arguments for 'multi' command\r\n"


def test_refused_exec_aborts_the_transaction(node: NodeProcess, r2: redis.Redis, raw: RawClient) -> None:
    raw.call("MULTI")
    raw.call("SET", "a", "1")
    assert raw.call("EXEC", "x") == (
        b"-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n"
    )
    assert raw.call("EXEC") == b"-ERR EXEC without MULTI\r\n"
    assert r2.get("a") is None
    # EXEC refused by the RESP2 pub/sub context (a SUBSCRIBE queued and run earlier).
    raw.call("MULTI")
    raw.call("SUBSCRIBE", "ch")
    raw.call("EXEC")
    assert raw.call("EXEC") == (
        b"-EXECABORT Transaction discarded because of: Can't execute 'exec': only (P|S)SUBSCRIBE / "
        b"(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    )


def test_discard(r2: redis.Redis, other: redis.Redis, raw: RawClient) -> None:
    raw.call("WATCH", "w")
    raw.call("MULTI")
    raw.call("SET", "a", "1")
    assert raw.call("DISCARD") == b"+OK\r\n"
    assert r2.get("a") is None
    # DISCARD also forgets the WATCH: a later change does not fail the next transaction.
    other.set("w", "changed")
    raw.call("MULTI")
    raw.call("SET", "a", "2")
    assert raw.call("EXEC") == b"*1\r\n+OK\r\n"


def test_watch_competing_client_fails_exec(r2: redis.Redis, other: redis.Redis, raw: RawClient) -> None:
    r2.set("balance", 10)
    assert raw.call("WATCH", "balance") == b"+OK\r\n"
    other.incr("balance")
    raw.call("MULTI")
    raw.call("SET", "balance", "0")
    assert raw.call("EXEC") == b"*-1\r\n"
    assert r2.get("balance") == b"11"
    # The failed EXEC unwatched everything: the next transaction runs.
    raw.call("MULTI")
    raw.call("SET", "balance", "0")
    assert raw.call("EXEC") == b"*1\r\n+OK\r\n"


def test_watch_null_reply_in_resp3(node: NodeProcess, other: redis.Redis) -> None:
    with RawClient(node.port, resp=3) as raw:
        raw.call("WATCH", "k")
        other.set("k", "1")
        raw.call("MULTI")
        raw.call("GET", "k")
        assert raw.call("EXEC") == b"_\r\n"


def test_transaction_helper_retries_on_conflict(node: NodeProcess, r2: redis.Redis, other: redis.Redis) -> None:
    r2.set("counter", 0)
    attempts = []

    def double_it(pipe: redis.client.Pipeline) -> None:
        value = int(pipe.get("counter"))
        attempts.append(value)
        if len(attempts) == 1:
            other.incr("counter")  # a competing write between WATCH and EXEC
        pipe.multi()
        pipe.set("counter", value * 2)

    client = node.client(protocol=2)
    try:
        assert client.transaction(double_it, "counter") == [True]
    finally:
        client.close()
    assert attempts == [0, 1]
    assert r2.get("counter") == b"2"


def test_watch_error_in_redis_py_pipeline(r2: redis.Redis, other: redis.Redis) -> None:
    with r2.pipeline() as pipe:
        pipe.watch("k")
        other.set("k", "theirs")
        pipe.multi()
        pipe.set("k", "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r2.get("k") == b"theirs"


def test_own_write_after_watch_counts(r2: redis.Redis, raw: RawClient) -> None:
    raw.call("WATCH", "k")
    raw.call("SET", "k", "1")
    raw.call("MULTI")
    raw.call("GET", "k")
    assert raw.call("EXEC") == b"*-1\r\n"


def test_write_that_changes_nothing_does_not_count(r2: redis.Redis, other: redis.Redis, raw: RawClient) -> None:
    r2.set("k", "1")
    raw.call("WATCH", "k")
    assert other.set("k", "2", nx=True) is None  # refused: no change
    raw.call("MULTI")
    raw.call("GET", "k")
    assert raw.call("EXEC") == b"*1\r\n$1\r\n1\r\n"


def test_writes_to_other_keys_or_databases_do_not_count(r2: redis.Redis, other: redis.Redis, raw: RawClient) -> None:
    raw.call("WATCH", "k", "k2")
    other.set("unrelated", "1")
    other.select(1)
    other.set("k", "same name, other db")
    raw.call("MULTI")
    raw.call("PING")
    assert raw.call("EXEC") == b"*1\r\n+PONG\r\n"


def test_watch_in_selected_database(r2: redis.Redis, other: redis.Redis, raw: RawClient) -> None:
    raw.call("SELECT", "3")
    raw.call("WATCH", "k")
    other.select(3)
    other.set("k", "1")
    raw.call("MULTI")
    raw.call("PING")
    assert raw.call("EXEC") == b"*-1\r\n"


def test_unwatch(r2: redis.Redis, other: redis.Redis, raw: RawClient) -> None:
    raw.call("WATCH", "k")
    other.set("k", "1")
    assert raw.call("UNWATCH") == b"+OK\r\n"
    raw.call("MULTI")
    raw.call("PING")
    assert raw.call("EXEC") == b"*1\r\n+PONG\r\n"


def test_unwatch_inside_multi_is_queued(raw: RawClient) -> None:
    raw.call("MULTI")
    assert raw.call("UNWATCH") == b"+QUEUED\r\n"
    assert raw.call("EXEC") == b"*1\r\n+OK\r\n"


def test_write_inside_another_exec_counts(r2: redis.Redis, other: redis.Redis, raw: RawClient) -> None:
    """Queued commands run through the normal call path, which signals watchers."""
    raw.call("WATCH", "k")
    pipe = other.pipeline(transaction=True)
    pipe.set("k", "from a transaction")
    assert pipe.execute() == [True]
    raw.call("MULTI")
    raw.call("GET", "k")
    assert raw.call("EXEC") == b"*-1\r\n"


def test_flushdb_and_flushall_touch_existing_watched_keys(r2: redis.Redis, other: redis.Redis, raw: RawClient) -> None:
    # A watched key that does not exist is not changed by a flush (Redis 7).
    raw.call("WATCH", "missing")
    other.flushall()
    raw.call("MULTI")
    raw.call("PING")
    assert raw.call("EXEC") == b"*1\r\n+PONG\r\n"

    for flush in ("flushdb", "flushall"):
        r2.set("k", "1")
        raw.call("WATCH", "k")
        other.execute_command(flush)
        raw.call("MULTI")
        raw.call("PING")
        assert raw.call("EXEC") == b"*-1\r\n", flush

    # Flushing another database leaves our watched key alone.
    r2.set("k", "1")
    raw.call("WATCH", "k")
    other.select(5)
    other.flushdb()
    raw.call("MULTI")
    raw.call("PING")
    assert raw.call("EXEC") == b"*1\r\n+PONG\r\n"


def test_swapdb_touches_watched_keys(r2: redis.Redis, other: redis.Redis, raw: RawClient) -> None:
    # The key exists in the watched db: swapped away.
    r2.set("k", "1")
    raw.call("WATCH", "k")
    other.swapdb(0, 1)
    raw.call("MULTI")
    raw.call("PING")
    assert raw.call("EXEC") == b"*-1\r\n"
    # The key exists only in the other db: swapped in.
    r2.flushall()
    other.select(1)
    other.set("k", "1")
    raw.call("WATCH", "k")
    other.swapdb(0, 1)
    raw.call("MULTI")
    raw.call("PING")
    assert raw.call("EXEC") == b"*-1\r\n"


@pytest.fixture
def lazy_expiry(r2: redis.Redis) -> Iterator[None]:
    """Active expiry off, so an expired key stays in memory until something touches it."""
    r2.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    yield
    r2.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def _wait_past(deadline_ms: float) -> None:
    # Wait on the clock the node shares with us, for a TTL we set ourselves.
    wait_until(lambda: time.time() * 1000 > deadline_ms + 5, what="the TTL to pass")


def test_key_expiring_after_watch_fails_exec(r2: redis.Redis, raw: RawClient, lazy_expiry: None) -> None:
    r2.set("k", "v", px=200)
    expires_at = time.time() * 1000 + 200
    raw.call("WATCH", "k")
    _wait_past(expires_at)
    # Nothing has deleted the key yet; EXEC must still notice it expired.
    raw.call("MULTI")
    raw.call("PING")
    assert raw.call("EXEC") == b"*-1\r\n"


def test_key_expired_and_deleted_after_watch_fails_exec(r2: redis.Redis, other: redis.Redis, raw: RawClient) -> None:
    r2.set("k", "v", px=200)
    expires_at = time.time() * 1000 + 200
    raw.call("WATCH", "k")
    _wait_past(expires_at)
    assert other.get("k") is None  # deletes it (lazy expiry)
    raw.call("MULTI")
    raw.call("PING")
    assert raw.call("EXEC") == b"*-1\r\n"


def test_key_already_expired_at_watch_time(
    r2: redis.Redis, other: redis.Redis, raw: RawClient, lazy_expiry: None
) -> None:
    # Expired before WATCH: it is simply absent, its expiry is no change...
    r2.set("k", "v", px=50)
    _wait_past(time.time() * 1000 + 50)
    raw.call("WATCH", "k")
    raw.call("MULTI")
    raw.call("GET", "k")
    assert raw.call("EXEC") == b"*1\r\n$-1\r\n"
    # ...but writing it afterwards is.
    r2.set("k", "v", px=50)
    _wait_past(time.time() * 1000 + 50)
    raw.call("WATCH", "k")
    other.set("k", "new")
    raw.call("MULTI")
    raw.call("GET", "k")
    assert raw.call("EXEC") == b"*-1\r\n"


def test_no_multi_commands_run_immediately(node: NodeProcess, r2: redis.Redis) -> None:
    with RawClient(node.port) as raw:
        raw.call("SELECT", "2")
        raw.call("MULTI")
        raw.call("SET", "k", "v")
        # RESET leaves the transaction (nothing runs) and answers at once.
        assert raw.call("RESET") == b"+RESET\r\n"
        assert raw.call("EXEC") == b"-ERR EXEC without MULTI\r\n"
        assert raw.call("GET", "k") == b"$-1\r\n"
    with RawClient(node.port) as raw:
        raw.call("MULTI")
        assert raw.call("QUIT") == b"+OK\r\n"
        with pytest.raises(ConnectionError):
            raw.call("PING")


def test_client_list_shows_the_transaction(node: NodeProcess, r2: redis.Redis, raw: RawClient) -> None:
    my_id = int(raw.call("CLIENT", "ID")[1:-2])
    raw.call("MULTI")
    raw.call("SET", "a", "1")
    raw.call("GET", "a")
    info = r2.client_list(client_id=[my_id])[0]
    assert info["multi"] == "2"
    assert "x" in info["flags"]
    raw.call("DISCARD")
    info = r2.client_list(client_id=[my_id])[0]
    assert info["multi"] == "-1"
    assert info["flags"] == "N"


def test_exec_commands_are_counted_in_commandstats(r2: redis.Redis) -> None:
    r2.config_resetstat()
    pipe = r2.pipeline(transaction=True)
    pipe.set("n", "1").get("n").get("n")
    assert pipe.execute() == [True, b"1", b"1"]
    stats = r2.info("commandstats")
    assert stats["cmdstat_set"]["calls"] == 1
    assert stats["cmdstat_get"]["calls"] == 2
    assert stats["cmdstat_exec"]["calls"] == 1
    assert stats["cmdstat_multi"]["calls"] == 1


def test_resp3_pipeline_transaction(node: NodeProcess) -> None:
    client = node.client(protocol=3)
    try:
        client.flushall()
        pipe = client.pipeline(transaction=True)
        pipe.set("a", "1").get("a").get("nope")
        assert pipe.execute() == [True, b"1", None]
    finally:
        client.close()


async def test_asyncio_transaction_with_watch(node: NodeProcess) -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=node.port, protocol=2)
    rival = redis.asyncio.Redis(host="127.0.0.1", port=node.port, protocol=2)
    try:
        await client.flushall()
        await client.set("k", "1")
        async with client.pipeline(transaction=True) as pipe:
            await pipe.watch("k")
            await rival.set("k", "2")
            pipe.multi()
            pipe.set("k", "3")
            with pytest.raises(redis.WatchError):
                await pipe.execute()
        async with client.pipeline(transaction=True) as pipe:
            pipe.incr("k").incr("k")
            assert await pipe.execute() == [3, 4]
    finally:
        await client.aclose()
        await rival.aclose()
