"""Database commands: SELECT, DBSIZE, FLUSHDB, FLUSHALL, MOVE, SWAPDB."""

from __future__ import annotations

from kvcluster.common.resp import OK, CommandError
from kvcluster.node.client import Client
from kvcluster.node.commands.table import command


def _flush_option(args: list[bytes], name: str) -> None:
    if len(args) > 2:
        raise CommandError("ERR syntax error")
    if len(args) == 2 and args[1].upper() not in (b"ASYNC", b"SYNC"):
        raise CommandError("ERR syntax error")


@command("select", 2, "loading stale fast", group="connection", summary="Changes the selected database.")
def select(client: Client, args: list[bytes]):
    try:
        index = int(args[1])
    except ValueError:
        raise CommandError("ERR value is not an integer or out of range") from None
    dbs = client.node.keyspace.dbs
    if not 0 <= index < len(dbs):
        raise CommandError("ERR DB index is out of range")
    client.db = dbs[index]
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
