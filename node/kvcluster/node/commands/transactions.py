"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

Queueing lives in the gate (``Node.execute``): while ``client.multi`` is a list,
every command without the ``no_multi`` flag is appended to it and answered
``+QUEUED``; a command the gate rejects (unknown, arity, NOAUTH) sets
``client.multi_error`` so EXEC answers ``EXECABORT``.

WATCH is optimistic locking, as in Redis 7:

* ``Keyspace.watched`` maps ``(db id, key)`` to the watching clients;
  ``Keyspace.signal_modified`` (called by ``Node.call`` for the keys of every
  write that changed the dataset, by key expiry and by FLUSHDB/FLUSHALL/SWAPDB)
  sets ``client.watch_dirty``.
* A watched key that expires after WATCH counts as modified, even when nothing
  has deleted it yet (EXEC checks the TTLs of the watched keys).
* A key that had already expired at WATCH time is deleted by WATCH itself, so it
  is simply an absent key: its expiry is no change, writing it later is. (On a
  replica nothing is deleted locally; such a key makes EXEC fail until the
  leader's DEL arrives, which is safe for optimistic locking: the client retries.)
"""

from __future__ import annotations

from typing import Any

from kvcluster.common.resp import NULL_ARRAY, OK, CommandError
from kvcluster.node.client import Client
from kvcluster.node.commands.table import command


@command(
    "multi",
    1,
    "noscript loading stale fast no_multi allow_busy",
    group="transactions",
    summary="Starts a transaction.",
    since="1.2.0",
)
def multi(client: Client, args: list[bytes]) -> Any:
    if client.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    client.multi = []
    client.multi_error = False
    client.update_slow_path()
    return OK


def discard_transaction(client: Client) -> None:
    """Leave MULTI and drop every WATCH (DISCARD, EXEC, RESET)."""
    client.multi = None
    client.multi_error = False
    client.update_slow_path()
    client.node.unwatch_all(client)


@command(
    "exec",
    1,
    "noscript loading stale skip_slowlog no_multi",
    group="transactions",
    summary="Executes all commands in a transaction.",
    since="1.2.0",
)
def exec_(client: Client, args: list[bytes]) -> Any:
    queued = client.multi
    if queued is None:
        raise CommandError("ERR EXEC without MULTI")
    if client.multi_error:
        discard_transaction(client)
        raise CommandError("EXECABORT Transaction discarded because of previous errors.")
    if client.watch_dirty or _watched_key_expired(client):
        discard_transaction(client)
        return NULL_ARRAY
    # Unwatch before running: our own writes must not mark us, and it is cheaper.
    discard_transaction(client)
    node = client.node
    call = node.call
    # Blocking commands see this and answer at once instead of blocking (like Redis).
    node.in_exec = True
    node.begin_exec()  # the writes replicate as one MULTI ... EXEC
    try:
        return [call(client, cmd, cmd_args) for cmd, cmd_args in queued]
    finally:
        node.in_exec = False
        node.end_exec()


def _watched_key_expired(client: Client) -> bool:
    """True if a watched key has logically expired since WATCH (but is not deleted yet)."""
    if not client.watched:
        return False
    ks = client.node.keyspace
    now = ks.clock_ms()
    dbs = ks.dbs
    for db_id, key in client.watched:
        when = dbs[db_id].expires.get(key)
        if when is not None and when <= now:
            return True
    return False


@command(
    "discard",
    1,
    "noscript loading stale fast no_multi allow_busy",
    group="transactions",
    summary="Discards a transaction.",
    since="2.0.0",
)
def discard(client: Client, args: list[bytes]) -> Any:
    if client.multi is None:
        raise CommandError("ERR DISCARD without MULTI")
    discard_transaction(client)
    return OK


@command(
    "watch",
    -2,
    "noscript loading stale fast no_multi allow_busy",
    keys=(1, -1, 1),
    group="transactions",
    summary="Monitors changes to keys to determine the execution of a transaction.",
    since="2.2.0",
)
def watch(client: Client, args: list[bytes]) -> Any:
    if client.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    db = client.db
    watched = client.node.keyspace.watched
    mine = client.watched
    for key in args[1:]:
        item = (db.id, key)
        if item in mine:
            continue
        # Expire the key now if its time has come: an already expired key is an absent key.
        # peek, not lookup: WATCH is not an access (OBJECT IDLETIME).
        db.peek(key)
        mine.add(item)
        clients = watched.get(item)
        if clients is None:
            watched[item] = {client}
        else:
            clients.add(client)
    return OK


@command(
    "unwatch",
    1,
    "noscript loading stale fast allow_busy",
    group="transactions",
    summary="Forgets about all watched keys.",
    since="2.2.0",
)
def unwatch(client: Client, args: list[bytes]) -> Any:
    client.node.unwatch_all(client)
    return OK
