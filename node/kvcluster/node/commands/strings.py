"""String commands: GET, SET and friends."""

from __future__ import annotations

from kvcluster.common.resp import OK, CommandError
from kvcluster.node.client import Client
from kvcluster.node.commands.table import command
from kvcluster.node.keyspace import WRONGTYPE


@command("get", 2, "readonly fast", keys=(1, 1, 1), group="string", summary="Returns the string value of a key.")
def get(client: Client, args: list[bytes]):
    value = client.db.lookup(args[1])
    stats = client.node.stats
    if value is None:
        stats.keyspace_misses += 1
        return None
    stats.keyspace_hits += 1
    if value.__class__ is not bytes:
        raise CommandError(WRONGTYPE)
    return value


@command("set", -3, "write denyoom", keys=(1, 1, 1), group="string", summary="Sets the string value of a key.")
def set_(client: Client, args: list[bytes]):
    if len(args) == 3:
        client.db.set(args[1], args[2])
        client.node.keyspace.dirty += 1
        return OK
    raise CommandError("ERR syntax error")
