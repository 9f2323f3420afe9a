"""Database commands: SELECT, DBSIZE, FLUSHDB, FLUSHALL, MOVE, SWAPDB.

Index arguments are parsed like Redis 7.0's getIntFromObjectOrReply (a strict
64-bit integer, then the C ``int`` range, each with its own error), then checked
against ``databases``.
"""

from __future__ import annotations

from kvcluster.common.resp import OK, CommandError
from kvcluster.node.client import Client
from kvcluster.node.commands.keys import SAME_OBJECT, delete_now, parse_c_int, target_db
from kvcluster.node.commands.table import command


def _flush_option(args: list[bytes], name: str) -> None:
    if len(args) > 2:
        raise CommandError("ERR syntax error")
    if len(args) == 2 and args[1].upper() not in (b"ASYNC", b"SYNC"):
        raise CommandError("ERR syntax error")


@command("select", 2, "loading stale fast", group="connection", summary="Changes the selected database.")
def select(client: Client, args: list[bytes]):
    client.db = target_db(client, args[1])
    return OK


@command("dbsize", 1, "readonly fast", group="server", summary="Returns the number of keys in the database.")
def dbsize(client: Client, args: list[bytes]):
    return len(client.db)


@command("flushdb", -1, "write", group="server", summary="Removes all keys from the current database.")
def flushdb(client: Client, args: list[bytes]):
    _flush_option(args, "flushdb")
    ks = client.node.keyspace
    ks.signal_db_flushed(client.db)
    client.db.clear()
    ks.dirty += 1
    return OK


@command("flushall", -1, "write", group="server", summary="Removes all keys from all databases.")
def flushall(client: Client, args: list[bytes]):
    _flush_option(args, "flushall")
    ks = client.node.keyspace
    for db in ks.dbs:
        ks.signal_db_flushed(db)
        db.clear()
    ks.dirty += 1
    return OK


@command(
    "move",
    3,
    "write fast",
    keys=(1, 1, 1),
    group="generic",
    summary="Move a key to another database",
    complexity="O(1)",
)
def move(client: Client, args: list[bytes]) -> int:
    src = client.db
    dst = target_db(client, args[2])
    if dst is src:
        raise CommandError(SAME_OBJECT)
    key = args[1]
    value = src.lookup(key)  # a write lookup: expires a stale key, no hit/miss statistics
    if value is None:
        return 0
    when = src.get_expire(key)
    if dst.lookup(key) is not None:
        return 0
    access = src.access.get(key)
    dst.set(key, value)
    if when is not None:
        dst.set_expire(key, when)
    if access is not None:
        dst.access[key] = access  # the same object moves, with its idle time / frequency
    delete_now(src, key)
    ks = client.node.keyspace
    ks.signal_modified(dst, key)  # Node.call signals the key in the current (source) database only
    ks.dirty += 1
    return 1


@command(
    "swapdb",
    3,
    "write fast",
    group="server",
    summary="Swaps two Redis databases",
    since="4.0.0",
    complexity="O(N) where N is the count of clients watching or blocking on keys from both databases.",
)
def swapdb(client: Client, args: list[bytes]):
    first = parse_c_int(args[1], "ERR invalid first DB index")
    second = parse_c_int(args[2], "ERR invalid second DB index")
    ks = client.node.keyspace
    n = len(ks.dbs)
    if not (0 <= first < n and 0 <= second < n):
        raise CommandError("ERR DB index is out of range")
    if first != second:  # swapping a database with itself changes nothing, and touches no WATCH
        ks.swap_dbs(first, second)  # also marks the watched keys of both databases
    ks.dirty += 1  # even for the same index, as Redis counts it
    return OK
