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

SCAN order. Redis's reverse-binary cursor over its hash table cannot be had from
a Python dict, so each database keeps its own order: ``scan_keys``, an append-only
list of keys in insertion order (appended by :meth:`Database.set` only when the
key is new; deleting costs nothing), where every entry has a sequence number that
never changes. The cursor is a sequence number: SCAN bisects to it, walks forward
returning the keys still present and answers the next entry's number (0 at the
end). Entries of deleted keys, and older entries of keys deleted and created
again, are compacted away once the list is over twice the live key count (plus
slack); sequence numbers survive compaction, so outstanding cursors stay valid.
A key present for the whole scan keeps its newest entry, which predates the
scan, so it is returned at least once however the table grows or shrinks.
Compaction is O(n) but amortized over at least as many inserts, and it also
serves RANDOMKEY (a uniform pick from a list at least half live).
Termination: new keys go to the end of the list, so a scan chasing them while
keys keep being created would never end. Each scan therefore remembers its
horizon, the sequence number the next new key had when the scan began (kept per
outstanding cursor in a small bounded table), and ends once it passes it: keys
created during a scan may or may not be returned, as in Redis. A cursor the
table no longer knows gets a fresh horizon, which only delays the end.

Access clock. ``Database.access`` maps each key to the coarse LRU clock at its
last access (``lookup``/``set``; ``peek`` does not count): Unix seconds, advanced
by the cron (``update_lru_clock``, ``hz`` times a second), so OBJECT IDLETIME has
Redis's one-second resolution while an access costs one dict store and no clock
read. With an LFU maxmemory policy (:meth:`Keyspace.set_lfu`) the values are
Redis's LFU words instead (minutes << 8 | logarithmic counter) and OBJECT FREQ
reads them.
"""

from __future__ import annotations

import logging
import random
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from kvcluster.common.resp import CommandError
from sortedcontainers import SortedList

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"

log = logging.getLogger("kvcluster.node")

_LFU_INIT_VAL = 5  # Redis's LFU_INIT_VAL: a new key's counter, so it is not evicted at once


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
    """One numbered database: keys, their expiry times, SCAN order and access clock."""

    __slots__ = (
        "_expire_scan",
        "_expire_scan_pos",
        "_scan_compact_at",
        "_scan_horizons",
        "access",
        "data",
        "expires",
        "id",
        "keyspace",
        "lru_clock",
        "scan_base",
        "scan_keys",
        "scan_seqs",
    )

    def __init__(self, db_id: int, keyspace: Keyspace):
        self.id = db_id
        self.keyspace = keyspace
        self.data: dict[bytes, Any] = {}
        self.expires: dict[bytes, int] = {}
        # Last access per key: the coarse LRU clock (LFU: packed counter), see the module docstring.
        self.access: dict[bytes, int] = {}
        self.lru_clock = keyspace.clock_ms() // 1000
        # Active expiry walks a snapshot of the keys with a TTL, a slice per cycle,
        # so every such key is looked at within one pass however big the table.
        self._expire_scan: list[bytes] = []
        self._expire_scan_pos = 0
        # SCAN order (module docstring): keys in insertion order; entry i has sequence
        # number scan_seqs[i] for i < len(scan_seqs), else scan_base + i - len(scan_seqs).
        self.scan_keys: list[bytes] = []
        self.scan_seqs: list[int] = []
        self.scan_base = 1  # cursor 0 means "start"
        self._scan_compact_at = _SCAN_COMPACT_SLACK
        # Outstanding SCAN cursor -> that scan's horizon (module docstring, "Termination").
        self._scan_horizons: dict[int, int] = {}

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
        """The live value of ``key`` or None, expiring it first if its time has come.

        Counts as an access (OBJECT IDLETIME/FREQ); use :meth:`peek` for commands
        that must not touch the key (TYPE, TTL, EXISTS, OBJECT).
        """
        value = self.data.get(key)
        if value is not None:
            if self.expires and key in self.expires and self._expire_if_due(key):
                return None
            self.access[key] = self.lru_clock
        return value

    def peek(self, key: bytes) -> Any:
        """Like :meth:`lookup` but not an access (Redis's LOOKUP_NOTOUCH)."""
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
        return self.peek(key) is not None

    def get_expire(self, key: bytes) -> int | None:
        return self.expires.get(key)

    def _expire_if_due(self, key: bytes) -> bool:
        when = self.expires[key]
        ks = self.keyspace
        if when > ks.clock_ms():
            return False
        if ks.is_replica:
            # Replicas wait for the leader's DEL and never show an expired key, except to the
            # leader's own commands (as in Redis): the leader ran them while the key was alive.
            return not ks.applying_leader_stream
        self._delete_expired(key)
        return True

    def _delete_expired(self, key: bytes) -> None:
        del self.data[key]
        del self.expires[key]
        self.access.pop(key, None)
        ks = self.keyspace
        ks.stat_expired_keys += 1
        ks.on_expired(self, key)
        ks.signal_modified(self, key)

    def idle_seconds(self, key: bytes) -> int:
        """Seconds since the last access of ``key`` (LRU mode), at the LRU clock's resolution."""
        # The same coarse clock accesses are stamped with (as Redis's LRU_CLOCK): against a fresh
        # reading, a key touched just now could look a second idle until the cron's next tick.
        return max(0, self.lru_clock - self.access.get(key, self.lru_clock))

    # -- writes --------------------------------------------------------------

    def set(self, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        """Store ``value`` (overwriting any type); clears the TTL unless ``keep_ttl``."""
        data = self.data
        if key in data:
            data[key] = value
            if not keep_ttl and self.expires:
                self.expires.pop(key, None)
        else:
            # A new key (it cannot have a TTL): give it a place in the SCAN order.
            data[key] = value
            keys = self.scan_keys
            keys.append(key)
            if len(keys) > self._scan_compact_at:
                self._maybe_compact_scan()
        self.access[key] = self.lru_clock

    def delete(self, key: bytes) -> bool:
        if self.peek(key) is None:
            return False
        del self.data[key]
        if self.expires:
            self.expires.pop(key, None)
        self.access.pop(key, None)
        return True

    def set_expire(self, key: bytes, when_ms: int) -> None:
        self.expires[key] = when_ms

    def persist(self, key: bytes) -> bool:
        return self.expires.pop(key, None) is not None

    def clear(self) -> int:
        n = len(self.data)
        self.data = {}
        self.expires = {}
        self.access = {}
        self._expire_scan = []
        self._expire_scan_pos = 0
        # Sequence numbers keep growing, so a cursor from before the flush stays meaningful.
        self.scan_base = self._scan_seq_at(len(self.scan_keys))
        self.scan_keys = []
        self.scan_seqs = []
        self._scan_compact_at = _SCAN_COMPACT_SLACK
        return n

    def swap_contents(self, other: Database) -> None:
        """Exchange every key (and all per-key bookkeeping) with ``other`` (SWAPDB)."""
        for name in _SWAPPED_SLOTS:
            mine = getattr(self, name)
            setattr(self, name, getattr(other, name))
            setattr(other, name, mine)

    # -- iteration -------------------------------------------------------------

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """One SCAN step: up to ``count`` live keys from ``cursor`` on, and the next cursor (0: done).

        A key present from the first call to the last is returned at least once:
        its newest SCAN-order entry predates the scan and is never compacted away
        while the key lives, and cursors only move forward in sequence numbers.
        Keys may be returned twice (an old entry of a re-created key); expired keys
        are expired here, as Redis's SCAN does.
        """
        if len(self.scan_keys) < len(self.data):
            self._compact_scan()  # cannot happen unless a key bypassed set(); repairs it
        else:
            self._maybe_compact_scan()
        keys = self.scan_keys
        n = len(keys)
        horizon = self._scan_horizons.pop(cursor, None) if cursor else None
        if horizon is None:
            horizon = self._scan_seq_at(n)  # every entry from here on is newer than this scan
        i = self._scan_index(cursor)
        data = self.data
        expires = self.expires
        out: list[bytes] = []
        # Like Redis's 10 * COUNT bound on empty buckets: stale entries cost at most that.
        stop = min(n, i + count * 10)
        while i < stop:
            key = keys[i]
            i += 1
            if key in data and not (expires and key in expires and self._expire_if_due(key)):
                out.append(key)
                if len(out) >= count:
                    break
        next_cursor = self._scan_seq_at(i) if i < n else 0
        if next_cursor >= horizon:
            return 0, out  # everything older than the scan has been walked
        if next_cursor:
            horizons = self._scan_horizons
            if len(horizons) >= _SCAN_HORIZONS_MAX:
                del horizons[next(iter(horizons))]  # the oldest outstanding cursor
            # Two scans at the same cursor: the later horizon is right for both (it only adds new keys).
            horizons[next_cursor] = max(horizon, horizons.get(next_cursor, 0))
        return next_cursor, out

    def random_key(self) -> bytes | None:
        data = self.data
        if not data:
            return None
        if len(self.scan_keys) > 2 * len(data) or len(self.scan_keys) < len(data):
            self._compact_scan()  # now at least half the entries are live: a pick hits quickly
        keys = self.scan_keys
        key = keys[0]
        for _ in range(100):  # bounded like Redis: every key may be expired (on a replica)
            key = keys[random.randrange(len(keys))]
            if key in data and self.peek(key) is not None:
                return key
            if not data:
                return None
        # A replica with only expired keys: Redis answers one of them rather than loop.
        return key if key in data else None

    def iter_keys(self) -> Iterator[bytes]:
        for key in list(self.data):
            if self.peek(key) is not None:
                yield key

    # -- SCAN order bookkeeping ---------------------------------------------

    def _scan_seq_at(self, i: int) -> int:
        explicit = len(self.scan_seqs)
        return self.scan_seqs[i] if i < explicit else self.scan_base + i - explicit

    def _scan_index(self, cursor: int) -> int:
        """Index of the first SCAN-order entry whose sequence number is >= ``cursor``."""
        explicit = len(self.scan_seqs)
        if cursor >= self.scan_base:
            return min(explicit + cursor - self.scan_base, len(self.scan_keys))
        return bisect_left(self.scan_seqs, cursor)

    def _maybe_compact_scan(self) -> None:
        live = len(self.data)
        if len(self.scan_keys) > 2 * live + _SCAN_COMPACT_SLACK:
            self._compact_scan()
        else:
            self._scan_compact_at = 2 * live + _SCAN_COMPACT_SLACK

    def _compact_scan(self) -> None:
        """Drop entries of deleted keys and older entries of re-created keys, keeping sequence numbers."""
        keys = self.scan_keys
        n = len(keys)
        explicit = len(self.scan_seqs)
        seqs = self.scan_seqs + list(range(self.scan_base, self.scan_base + n - explicit))
        data = self.data
        # Last occurrence wins in both: unique keys ordered by last occurrence (newest first),
        # and each key's newest sequence number.
        live_keys = [key for key in dict.fromkeys(reversed(keys)) if key in data]
        live_keys.reverse()
        last_seq = dict(zip(keys, seqs, strict=True))
        live_seqs = [last_seq[key] for key in live_keys]
        next_seq = self.scan_base + n - explicit
        if len(live_keys) != len(data):
            # A key got into ``data`` without ``set`` (a bug elsewhere): give it a place
            # rather than hide it from SCAN forever.
            missing = data.keys() - last_seq.keys()
            log.warning("db %d: %d keys were inserted without Database.set", self.id, len(missing))
            live_keys.extend(missing)
            live_seqs.extend(range(next_seq, next_seq + len(missing)))
            next_seq += len(missing)
        self.scan_base = next_seq
        self.scan_keys = live_keys
        self.scan_seqs = live_seqs
        self._scan_compact_at = 2 * len(data) + _SCAN_COMPACT_SLACK


# Stale SCAN-order entries tolerated beyond one per live key before compacting.
_SCAN_COMPACT_SLACK = 1024
# Outstanding SCAN cursors whose horizon a database remembers.
_SCAN_HORIZONS_MAX = 1024

# Everything SWAPDB exchanges: all per-key state, not the identity (id, keyspace) or the clock.
_SWAPPED_SLOTS = (
    "data",
    "expires",
    "access",
    "_expire_scan",
    "_expire_scan_pos",
    "scan_keys",
    "scan_seqs",
    "scan_base",
    "_scan_compact_at",
    "_scan_horizons",
)


class _LFUDatabase(Database):
    """A database whose ``access`` values are Redis's LFU words (maxmemory-policy ``*-lfu``).

    Only the access bookkeeping differs; :meth:`Keyspace.set_lfu` switches every
    database's class, so the default (LRU) path pays nothing for LFU support.
    """

    __slots__ = ()

    def lookup(self, key: bytes) -> Any:
        value = self.data.get(key)
        if value is not None:
            if self.expires and key in self.expires and self._expire_if_due(key):
                return None
            self.access[key] = self.keyspace.lfu_touch(self.access.get(key))
        return value

    def set(self, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        # An overwrite keeps (and bumps) the frequency; a new key starts at LFU_INIT_VAL.
        old = self.access.get(key) if key in self.data else None
        super().set(key, value, keep_ttl)
        ks = self.keyspace
        self.access[key] = ks.lfu_new() if old is None else ks.lfu_touch(old)


class Keyspace:
    """All databases plus the bookkeeping writes need (dirty counter, WATCH, expiry stats)."""

    def __init__(self, databases: int = 16, clock_ms: Callable[[], int] = now_ms):
        self.clock_ms = clock_ms  # before the databases: they read the clock
        self.dbs: list[Database] = [Database(i, self) for i in range(databases)]
        self.is_replica = False
        # True while a replica applies its leader's stream (see Database._expire_if_due).
        self.applying_leader_stream = False
        # Access bookkeeping mode (module docstring): LRU clock stamps, or LFU counters.
        self.lfu = False
        self.lfu_log_factor = 10  # lfu-log-factor
        self.lfu_decay_time = 1  # lfu-decay-time, minutes
        # DEBUG SET-ACTIVE-EXPIRE 0 turns the background expiry cycle off (tests of lazy expiry).
        self.active_expire_enabled = True
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

    def swap_dbs(self, first: int, second: int) -> None:
        """SWAPDB: exchange two databases' contents; clients keep their selected index.

        Like Redis's touchAllWatchedKeysInDb: a watched key of either database that
        exists before or after the swap counts as modified.
        """
        a, b = self.dbs[first], self.dbs[second]
        if self.watched:
            for (db_id, key), clients in self.watched.items():
                if (db_id == a.id or db_id == b.id) and (key in a.data or key in b.data):
                    for c in clients:
                        c.watch_dirty = True
        a.swap_contents(b)

    # -- access clock (OBJECT IDLETIME / FREQ) --------------------------------

    def update_lru_clock(self) -> None:
        """Advance the coarse access clock (seconds) every database stamps keys with (cron)."""
        clock = self.clock_ms() // 1000
        for db in self.dbs:
            db.lru_clock = clock

    def set_lfu(self, enabled: bool) -> None:
        """Switch access bookkeeping between LRU stamps and LFU counters (maxmemory-policy).

        Existing keys restart from scratch (now / LFU_INIT_VAL): Redis instead leaves
        the old bits to be reinterpreted, which "takes some time to adjust".
        """
        if enabled == self.lfu:
            return
        self.lfu = enabled
        self.update_lru_clock()
        for db in self.dbs:
            db.__class__ = _LFUDatabase if enabled else Database
            stamp = self.lfu_new() if enabled else db.lru_clock
            db.access = dict.fromkeys(db.data, stamp)

    def _lfu_minutes(self) -> int:
        return (self.clock_ms() // 60_000) & 0xFFFF

    def lfu_new(self) -> int:
        """The LFU word of a new key: now, counter LFU_INIT_VAL."""
        return (self._lfu_minutes() << 8) | _LFU_INIT_VAL

    def lfu_counter(self, word: int | None) -> int:
        """The decayed access counter of an LFU word (OBJECT FREQ), as Redis's LFUDecrAndReturn."""
        if word is None:
            return _LFU_INIT_VAL
        counter = word & 0xFF
        if self.lfu_decay_time:
            elapsed = (self._lfu_minutes() - (word >> 8)) & 0xFFFF
            counter = max(0, counter - elapsed // self.lfu_decay_time)
        return counter

    def lfu_touch(self, word: int | None) -> int:
        """The LFU word after one access: decay, then a logarithmic increment (LFULogIncr)."""
        counter = self.lfu_counter(word)
        if counter < 255:
            base = max(0, counter - _LFU_INIT_VAL)
            if random.random() < 1.0 / (base * self.lfu_log_factor + 1):
                counter += 1
        return (self._lfu_minutes() << 8) | counter

    def active_expire_cycle(self, time_limit_us: int = 1000, keys_per_loop: int = 20) -> int:
        """Sample keys with a TTL and delete the expired ones, like Redis's activeExpireCycle.

        Per database: sample ``keys_per_loop`` keys with a TTL; if more than a quarter
        were expired, repeat. Stops after ``time_limit_us``. Returns keys deleted.
        """
        self.update_lru_clock()  # the cron's cheap tick, like Redis's server.lruclock
        if self.is_replica or not self.active_expire_enabled:
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
