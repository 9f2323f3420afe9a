"""Helpers shared by the durability tests (test_persistence.py, test_aof.py) and the soak script."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import redis
from helpers import NodeProcess, wait_until
from redis.backoff import NoBackoff
from redis.retry import Retry

DEADLINE = 30.0


class Nodes:
    """Starts nodes in a temp dir; every one started is stopped (by PID) at the end."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.started: list[NodeProcess] = []

    def node(self, name: str, *args: str, start: bool = True) -> NodeProcess:
        if "--save" not in args:
            args = (*args, "--save", "")
        proc = NodeProcess(self.tmp / name, *args)
        self.started.append(proc)
        return proc.start() if start else proc

    def close(self) -> None:
        for proc in self.started:
            proc.stop(timeout=20)


def no_retry(node: NodeProcess) -> redis.Redis:
    """A client that does not retry: for SHUTDOWN and kills (redis-py 8 retries for seconds)."""
    return node.client(retry=Retry(NoBackoff(), 0))


def info(c: redis.Redis, section: str) -> dict[str, Any]:
    return c.info(section)


def wait_bgsave_done(c: redis.Redis, saves_before: int) -> None:
    wait_until(
        lambda: (i := info(c, "persistence"))["rdb_bgsave_in_progress"] == 0 and i["rdb_saves"] > saves_before,
        DEADLINE,
        what="the background save to finish",
    )


def wait_rewrite_done(c: redis.Redis, rewrites_before: int) -> None:
    wait_until(
        lambda: (
            (i := info(c, "persistence"))["aof_rewrite_in_progress"] == 0
            and i["aof_rewrite_scheduled"] == 0
            and i["aof_rewrites"] > rewrites_before
        ),
        DEADLINE,
        what="the AOF rewrite to finish",
    )


class Writers:
    """Threads writing unique keys ``<tag>:<thread>:<n>`` = n in order, recording what was acknowledged.

    A thread stops at its first error (the node was killed). ``acked[t]`` is the highest n
    thread t got a reply for; ``ack_times[t][n]`` when.
    """

    def __init__(self, port: int, tag: str, threads: int = 3, pipeline: int = 1):
        self.port = port
        self.tag = tag
        self.pipeline = pipeline
        self.acked = [-1] * threads
        self.ack_times: list[list[float]] = [[] for _ in range(threads)]
        self.errors = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(threads)]

    def start(self) -> Writers:
        for t in self._threads:
            t.start()
        wait_until(lambda: min(self.acked) >= 0, DEADLINE, what="the first acknowledged writes")
        return self

    def _run(self, t: int) -> None:
        # No retries: the first error is the kill (redis-py 8 would retry for seconds).
        c = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10, retry=Retry(NoBackoff(), 0))
        n = 0
        try:
            while not self._stop.is_set():
                if self.pipeline > 1:
                    p = c.pipeline(transaction=False)
                    for i in range(n, n + self.pipeline):
                        p.set(f"{self.tag}:{t}:{i}", i)
                    p.execute()
                    n += self.pipeline
                else:
                    c.set(f"{self.tag}:{t}:{n}", n)
                    n += 1
                now = time.monotonic()
                self.ack_times[t].extend([now] * (n - 1 - self.acked[t]))
                self.acked[t] = n - 1
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError):
            self.errors += 1
        finally:
            c.close()

    def total(self) -> int:
        return sum(a + 1 for a in self.acked)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(DEADLINE)


def present_prefix(c: redis.Redis, tag: str, thread: int, upto: int) -> int:
    """How many of keys <tag>:<thread>:0..upto exist, checking they form a prefix (no holes)."""
    keys = [f"{tag}:{thread}:{i}" for i in range(upto + 1)]
    found = []
    for i in range(0, len(keys), 5000):
        found += c.mget(keys[i : i + 5000])
    n = 0
    while n < len(found) and found[n] is not None:
        assert found[n] == str(n).encode(), f"{keys[n]} holds {found[n]!r}"
        n += 1
    assert all(v is None for v in found[n:]), f"{tag}:{thread}: keys after a missing one exist (not a prefix)"
    return n


def kill_at_random(node: NodeProcess, rnd: random.Random, low: float = 0.2, high: float = 0.8) -> None:
    time.sleep(rnd.uniform(low, high))  # the moment of the crash is the random part, not a wait for a state
    node.kill()


def every_type(c: redis.Redis, tag: str, n: int = 50) -> None:
    """A mixed dataset: every type, TTLs, several databases, a transaction."""
    p = c.pipeline(transaction=False)
    for i in range(n):
        p.set(f"{tag}:s:{i}", i)
        p.rpush(f"{tag}:l:{i % 7}", i)
        p.hset(f"{tag}:h:{i % 7}", f"f{i}", i)
        p.sadd(f"{tag}:set:{i % 7}", i)
        p.zadd(f"{tag}:z:{i % 7}", {f"m{i}": i / 3})
        p.set(f"{tag}:ttl:{i}", i, ex=600 + i)
    p.incrbyfloat(f"{tag}:f", 1.5)
    p.append(f"{tag}:s:1", "+")
    p.lpop(f"{tag}:l:3")
    p.spop(f"{tag}:set:2")
    p.execute()
    t = c.pipeline(transaction=True)
    t.set(f"{tag}:tx:a", "1")
    t.incr(f"{tag}:tx:b")
    t.hset(f"{tag}:tx:h", "f", "v")
    t.execute()
    with redis.Redis(host="127.0.0.1", port=c.connection_pool.connection_kwargs["port"], db=5) as c5:
        c5.set(f"{tag}:db5", "five")
        c5.rpush(f"{tag}:db5:l", "a", "b")


def digest(c: redis.Redis) -> bytes:
    return c.execute_command("DEBUG", "DIGEST")
