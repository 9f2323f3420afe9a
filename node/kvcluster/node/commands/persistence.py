"""Persistence commands: SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF, DUMP, RESTORE; INFO persistence.

The work is in :mod:`kvcluster.node.persistence` (reached as ``node.persistence``, attached
by the server shell); DUMP and RESTORE use the RDB value serialisation of
:mod:`kvcluster.node.rdb`, byte for byte Redis's, so payloads move between us and Redis.
"""

from __future__ import annotations

from typing import Any

from kvcluster.common.resp import OK, CommandError, Status
from kvcluster.node.client import Client
from kvcluster.node.commands.keys import delete_now
from kvcluster.node.commands.server import register_info_fields, register_info_section
from kvcluster.node.commands.strings import string2ll
from kvcluster.node.commands.table import command
from kvcluster.node.rdb import RDBChecksumError, RDBCorruptError, RDBUnsupportedError, decode_value, encode_value

SYNTAX_ERROR = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"


def _persistence(client: Client) -> Any:
    p = client.node.persistence
    if p is None:
        raise CommandError("ERR persistence is not available in this process")
    return p


@command(
    "save",
    1,
    "admin noscript no_multi",
    group="server",
    summary="Synchronously saves the database(s) to disk.",
    complexity="O(N) where N is the total number of keys in all databases",
)
def save(client: Client, args: list[bytes]) -> Any:
    if client.multi is not None:
        client.multi_error = True
        raise CommandError("ERR Command not allowed inside a transaction")
    p = _persistence(client)
    if p.child is not None and p.child.kind == "rdb":
        raise CommandError("ERR Background save already in progress")
    if not p.save():
        raise CommandError("ERR")
    return OK


@command(
    "bgsave",
    -1,
    "admin noscript",
    group="server",
    summary="Asynchronously saves the database(s) to disk.",
    complexity="O(1)",
)
def bgsave(client: Client, args: list[bytes]) -> Any:
    schedule = False
    if len(args) > 1:
        if len(args) == 2 and args[1].lower() == b"schedule":
            schedule = True
        else:
            raise CommandError(SYNTAX_ERROR)
    try:
        return Status(_persistence(client).bgsave(schedule).encode())
    except ValueError as e:
        raise CommandError(str(e)) from None


@command(
    "bgrewriteaof",
    1,
    "admin noscript",
    group="server",
    summary="Asynchronously rewrites the append-only file to disk.",
    complexity="O(1)",
)
def bgrewriteaof(client: Client, args: list[bytes]) -> Any:
    try:
        return Status(_persistence(client).bgrewriteaof().encode())
    except ValueError as e:
        raise CommandError(str(e)) from None


@command(
    "lastsave",
    1,
    "loading stale fast",
    group="server",
    summary="Returns the Unix timestamp of the last successful save to disk.",
    complexity="O(1)",
)
def lastsave(client: Client, args: list[bytes]) -> Any:
    p = client.node.persistence
    return int(client.node.start_time) if p is None else p.lastsave


@command(
    "dump",
    2,
    "readonly",
    keys=(1, 1, 1),
    group="generic",
    summary="Returns a serialized representation of the value stored at a key.",
    since="2.6.0",
    complexity="O(1) to access the key and additional O(N*M) to serialize it",
)
def dump(client: Client, args: list[bytes]) -> Any:
    value = client.db.lookup(args[1])
    if value is None:
        return None
    return encode_value(value)


@command(
    "restore",
    -4,
    "write denyoom",
    keys=(1, 1, 1),
    group="generic",
    summary="Creates a key from the serialized representation of a value.",
    since="2.6.0",
    complexity="O(1) to create the key and additional O(N*M) to reconstruct the serialized value",
)
def restore(client: Client, args: list[bytes]) -> Any:
    """Redis's restoreCommand, checks in its order."""
    replace = absttl = False
    idle = freq = -1
    j = 4
    while j < len(args):
        option = args[j].lower()
        more = len(args) - j - 1
        if option == b"replace":
            replace = True
        elif option == b"absttl":
            absttl = True
        elif option == b"idletime" and more >= 1 and freq == -1:
            idle = _int(args[j + 1])
            if idle < 0:
                raise CommandError("ERR Invalid IDLETIME value, must be >= 0")
            j += 1
        elif option == b"freq" and more >= 1 and idle == -1:
            freq = _int(args[j + 1])
            if not 0 <= freq <= 255:
                raise CommandError("ERR Invalid FREQ value, must be >= 0 and <= 255")
            j += 1
        else:
            raise CommandError(SYNTAX_ERROR)
        j += 1
    node = client.node
    ks = node.keyspace
    db = client.db
    key = args[1]
    if not replace and db.lookup(key) is not None:
        raise CommandError("BUSYKEY Target key name already exists.")
    ttl = _int(args[2])
    if ttl < 0:
        raise CommandError("ERR Invalid TTL value, must be >= 0")
    try:
        value = decode_value(args[3])
    except (RDBChecksumError, RDBUnsupportedError):
        raise CommandError("ERR DUMP payload version or checksum are wrong") from None
    except RDBCorruptError:
        raise CommandError("ERR Bad data format") from None
    if value.__class__ is not bytes and not value:
        raise CommandError("ERR Bad data format")  # an empty collection, as Redis refuses it
    deleted = False
    if replace and db.peek(key) is not None:
        delete_now(db, key)
        deleted = True
    now = ks.clock_ms()
    if ttl and not absttl:
        ttl += now
    if ttl and ttl <= now and not ks.is_replica and not node.loading:
        # Already expired: nothing is created (what REPLACE deleted stays deleted).
        if deleted:
            node.replicate_as([b"DEL", key])
            ks.dirty += 1
        return OK
    db.set(key, value)
    if ttl:
        db.set_expire(key, ttl)
        if not absttl:
            # Replicas and the AOF get the absolute deadline (as Redis rewrites it).
            node.replicate_as([*args[:2], b"%d" % ttl, *args[3:], b"ABSTTL"])
    if freq >= 0 and ks.lfu:
        db.access[key] = (ks.lfu_new() & ~0xFF) | freq
    elif idle >= 0 and not ks.lfu:
        db.access[key] = db.lru_clock - idle
    ks.dirty += 1
    return OK


def _int(arg: bytes) -> int:
    n = string2ll(arg)
    if n is None:
        raise CommandError(NOT_INTEGER)
    return n


def _persistence_info(node: Any) -> list[tuple[str, Any]]:
    p = node.persistence
    if p is None:
        return [("loading", 1 if node.loading else 0), ("rdb_changes_since_last_save", node.keyspace.dirty)]
    return p.info_fields()


def _fork_stats(node: Any) -> list[tuple[str, Any]]:
    p = node.persistence
    if p is None:
        return []
    return [("latest_fork_usec", p.stat_fork_usec), ("total_forks", p.total_forks)]


register_info_section("persistence", _persistence_info)
register_info_fields("stats", _fork_stats)
