"""The keyspace: databases of keys with values and expiry times.

Value types are plain Python objects, chosen so the type of a key is the class
of its value (one dict lookup, no wrapper objects on the hot path):

=========  ==========================  ===========
Redis type  Python value                TYPE reply
=========  ==========================  ===========
string      ``bytes``                   string
hash        ``dict[bytes, bytes]``      hash
list        ``collections.deque``       list
set         ``set[bytes]``              set
zset        :class:`ZSet`               zset
=========  ==========================  ===========

Expiry times are absolute Unix milliseconds in ``Database.expires``. Keys are
expired lazily when touched (``lookup``) and actively by a sampled, time-bounded
cycle (:meth:`Keyspace.active_expire_cycle`), like Redis. On a replica nothing is
deleted locally (the leader sends DEL); logically expired keys are only hidden.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from kvcluster.common.resp import CommandError
from sortedcontainers import SortedList

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


class ZSet:
    """Sorted set: member -> score, plus (score, member) in order."""

    __slots__ = ("dict", "sorted")

    def __init__(self) -> None:
        self.dict: dict[bytes, float] = {}
        self.sorted: SortedList = SortedList()

    def __len__(self) -> int:
        return len(self.dict)

    def add(self, member: bytes, score: float) -> bool:
        """Set ``member``'s score; True if the member is new."""
        old = self.dict.get(member)
        if old is not None:
            if old == score:
                return False
            self.sorted.remove((old, member))
            self.dict[member] = score
            self.sorted.add((score, member))
            return False
        self.dict[member] = score
        self.sorted.add((score, member))
        return True

    def remove(self, member: bytes) -> bool:
        score = self.dict.pop(member, None)
        if score is None:
            return False
        self.sorted.remove((score, member))
        return True


TYPE_NAMES: dict[type, bytes] = {
    bytes: b"string",
    dict: b"hash",
    deque: b"list",
    set: b"set",
    ZSet: b"zset",
}


def now_ms() -> int:
    return int(time.time() * 1000)


class Database:
    __slots__ = ("_expire_scan", "_expire_scan_pos", "data", "expires", "id", "keyspace")

    def __init__(self, db_id: int, keyspace: Keyspace):
        self.id = db_id
        self.keyspace = keyspace
        self.data: dict[bytes, Any] = {}
        self.expires: dict[bytes, int] = {}
        # Active expiry walks a snapshot of the keys with a TTL, a slice per cycle,
        # so every such key is looked at within one pass however big the table.
        self._expire_scan: list[bytes] = []
        self._expire_scan_pos = 0

    def expire_sample(self, n: int) -> list[bytes]:
        """The next ``n`` keys with a TTL for the active expiry cycle."""
        if self._expire_scan_pos >= len(self._expire_scan):
            self._expire_scan = list(self.expires)
            self._expire_scan_pos = 0
        pos = self._expire_scan_pos
        self._expire_scan_pos = pos + n
        return self._expire_scan[pos : pos + n]

    def __len__(self) -> int:
        return len(self.data)

    # -- reads ---------------------------------------------------------------

    def lookup(self, key: bytes) -> Any:
        """The live value of ``key`` or None, expiring it first if its time has come."""
        value = self.data.get(key)
        if value is not None and self.expires and key in self.expires and self._expire_if_due(key):
            return None
        return value

    def lookup_typed(self, key: bytes, cls: type) -> Any:
        """Like :meth:`lookup` but raise WRONGTYPE if the value is not a ``cls``."""
        value = self.lookup(key)
        if value is not None and value.__class__ is not cls:
            raise CommandError(WRONGTYPE)
        return value

    def exists(self, key: bytes) -> bool:
        return self.lookup(key) is not None

    def get_expire(self, key: bytes) -> int | None:
        return self.expires.get(key)

    def _expire_if_due(self, key: bytes) -> bool:
        when = self.expires[key]
        ks = self.keyspace
        if when > ks.clock_ms():
            return False
        if ks.is_replica:
            # Replicas wait for the leader's DEL, but never show an expired key.
            return True
        self._delete_expired(key)
        return True

    def _delete_expired(self, key: bytes) -> None:
        del self.data[key]
        del self.expires[key]
        ks = self.keyspace
        ks.stat_expired_keys += 1
        ks.on_expired(self, key)
        ks.signal_modified(self, key)

    # -- writes --------------------------------------------------------------

    def set(self, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        """Store ``value`` (overwriting any type); clears the TTL unless ``keep_ttl``."""
        self.data[key] = value
        if not keep_ttl and self.expires:
            self.expires.pop(key, None)

    def delete(self, key: bytes) -> bool:
        if self.lookup(key) is None:
            return False
        del self.data[key]
        if self.expires:
            self.expires.pop(key, None)
        return True

    def set_expire(self, key: bytes, when_ms: int) -> None:
        self.expires[key] = when_ms

    def persist(self, key: bytes) -> bool:
        return self.expires.pop(key, None) is not None

    def clear(self) -> int:
        n = len(self.data)
        self.data = {}
        self.expires = {}
        return n

    def random_key(self) -> bytes | None:
        # Sampling from a dict needs a list; bounded retries skip expired keys like Redis.
        for _ in range(100):
            if not self.data:
                return None
            key = random.choice(list(self.data)) if len(self.data) < 64 else _sample_key(self.data)
            if self.lookup(key) is not None:
                return key
        return None

    def iter_keys(self) -> Iterator[bytes]:
        for key in list(self.data):
            if self.lookup(key) is not None:
                yield key


def _sample_key(data: dict) -> bytes:
    # Avoid materialising a big key list: walk an iterator a random distance (bounded).
    steps = random.randrange(min(len(data), 4096))
    it = iter(data)
    for _ in range(steps):
        next(it)
    return next(it)


class Keyspace:
    """All databases plus the bookkeeping writes need (dirty counter, WATCH, expiry stats)."""

    def __init__(self, databases: int = 16, clock_ms: Callable[[], int] = now_ms):
        self.dbs: list[Database] = [Database(i, self) for i in range(databases)]
        self.clock_ms = clock_ms
        self.is_replica = False
        self.dirty = 0  # writes since the last save (Redis's server.dirty)
        self.stat_expired_keys = 0
        self.stat_expired_stale_perc = 0.0
        self.stat_expire_cycle_time_used_us = 0
        # WATCH bookkeeping: (db id, key) -> clients watching it. Empty almost always,
        # so signal_modified is a single falsy check on the hot path.
        self.watched: dict[tuple[int, bytes], set[Any]] = {}
        # Hook for the replication/AOF layer: called with (db, key) when a key expires.
        self.on_expired_hook: Callable[[Database, bytes], None] | None = None
        self._expire_db_cursor = 0

    def on_expired(self, db: Database, key: bytes) -> None:
        if self.on_expired_hook is not None:
            self.on_expired_hook(db, key)

    def signal_modified(self, db: Database, key: bytes) -> None:
        if self.watched:
            clients = self.watched.get((db.id, key))
            if clients:
                for c in clients:
                    c.watch_dirty = True

    def signal_db_flushed(self, db: Database) -> None:
        """Every watched key of ``db`` that existed counts as modified."""
        if self.watched:
            for (db_id, key), clients in self.watched.items():
                if db_id == db.id and key in db.data:
                    for c in clients:
                        c.watch_dirty = True

    def active_expire_cycle(self, time_limit_us: int = 1000, keys_per_loop: int = 20) -> int:
        """Sample keys with a TTL and delete the expired ones, like Redis's activeExpireCycle.

        Per database: sample ``keys_per_loop`` keys with a TTL; if more than a quarter
        were expired, repeat. Stops after ``time_limit_us``. Returns keys deleted.
        """
        if self.is_replica:
            return 0
        start = time.perf_counter()
        deadline = start + time_limit_us / 1e6
        deleted = 0
        ndbs = len(self.dbs)
        sampled_total = expired_total = 0
        for _ in range(ndbs):
            db = self.dbs[self._expire_db_cursor % ndbs]
            self._expire_db_cursor += 1
            if not db.expires:
                continue
            while True:
                now = self.clock_ms()
                expires = db.expires
                n = min(keys_per_loop, len(expires))
                if n == 0:
                    break
                sample = db.expire_sample(n)
                expired = 0
                for key in sample:
                    when = expires.get(key)
                    if when is not None and when <= now:
                        db._delete_expired(key)
                        expired += 1
                sampled_total += n
                expired_total += expired
                deleted += expired
                if expired * 4 <= n or time.perf_counter() > deadline:
                    break
            if time.perf_counter() > deadline:
                break
        if sampled_total:
            current = expired_total / sampled_total
            self.stat_expired_stale_perc = self.stat_expired_stale_perc * 0.95 + current * 0.05
        self.stat_expire_cycle_time_used_us += int((time.perf_counter() - start) * 1e6)
        return deleted
