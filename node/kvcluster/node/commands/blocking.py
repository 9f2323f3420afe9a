"""Blocking pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP; CLIENT UNBLOCK.

A blocking command first tries to serve itself at once, exactly like its non-blocking
form. When every key is empty it parks the client in the node's
:class:`~kvcluster.node.blocking.WaitingRoom` and returns no reply; the connection then
reads no further commands. ``Node.call`` signals the keys every write touches, and
``Node.execute`` calls :func:`serve_ready` after the command: each waiter of a ready key,
first blocked first, re-runs its command (as Redis 7.2 re-processes it). The re-run pops
-- replicated and logged as its effect (LPOP, LMOVE, ZPOPMIN...), never as the blocking
form -- or fails (WRONGTYPE once the key changed type), or finds nothing and stays in
its place in the queue. A timeout, CLIENT UNBLOCK, or the node becoming a replica ends
the wait; a client that disconnects (CLIENT KILL) leaves the room.

Never blocking: inside MULTI/EXEC, for a client without a connection (scripts, the
replication link): those get the timeout's nil at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from kvcluster.common.resp import NULL_ARRAY, CommandError, ErrorReply, Raw
from kvcluster.node.blocking import Waiter
from kvcluster.node.client import Client
from kvcluster.node.commands.collection_common import get_numkeys_keys
from kvcluster.node.commands.connection import _strict_int
from kvcluster.node.commands.lists import _move, _parse_side, _pop_many, _write_list, parse_mpop
from kvcluster.node.commands.table import command
from kvcluster.node.commands.zsets import _pop as _zset_pop
from kvcluster.node.commands.zsets import _write_zset

_LLONG_MAX = (1 << 63) - 1
_NO_REPLY = Raw(b"")  # the reply comes later (client.unblock)
# A re-run found nothing to pop: the waiter keeps its place.
_STILL_BLOCKED = Raw(b"")
# An attempt found every key empty.
_NOTHING: Any = object()
UNBLOCKED_BY_CLIENT = "UNBLOCKED client unblocked via CLIENT UNBLOCK"
UNBLOCKED_BY_ROLE = "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"


def parse_timeout(arg: bytes) -> int:
    """Redis's getTimeoutFromObjectOrReply in seconds: a long double, in ms rounded up; 0 = forever."""
    error = CommandError("ERR timeout is not a float or out of range")
    try:
        text = arg.decode("ascii")
    except UnicodeDecodeError:
        raise error from None
    # strtold takes no leading or trailing space; Python's float also takes '_' and spaces.
    if not text or text != text.strip() or "_" in text:
        raise error
    try:
        unsigned = text.lstrip("+-").lower()
        value = float.fromhex(text) if unsigned.startswith("0x") else float(text)
    except ValueError:
        raise error from None
    if math.isnan(value):
        raise error
    millis = value * 1000
    # Redis casts ceill(ms) to a long long: infinities and overflows come out negative (x86).
    if math.isinf(millis) or math.ceil(millis) > _LLONG_MAX or math.ceil(millis) < 0:
        raise CommandError("ERR timeout is negative")
    return math.ceil(millis)


# -- the commands ------------------------------------------------------------------------


def _bpop(client: Client, args: list[bytes], left: bool) -> Any:
    timeout_ms = parse_timeout(args[-1])
    keys = args[1:-1]

    def attempt() -> Any:
        for key in keys:
            lst = _write_list(client, key)
            if lst:
                value = lst.popleft() if left else lst.pop()
                if not lst:
                    client.db.delete(key)
                node = client.node
                node.keyspace.dirty += 1
                node.replicate_as([b"LPOP" if left else b"RPOP", key])
                return [key, value]
        return _NOTHING

    return _serve_or_block(client, args, keys, timeout_ms, attempt, NULL_ARRAY)


@command(
    "blpop",
    -3,
    "write noscript blocking",
    keys=(1, -2, 1),
    group="list",
    summary="Removes and returns the first element of the first non-empty list, or blocks until one is available.",
    since="2.0.0",
)
def blpop(client: Client, args: list[bytes]) -> Any:
    return _bpop(client, args, True)


@command(
    "brpop",
    -3,
    "write noscript blocking",
    keys=(1, -2, 1),
    group="list",
    summary="Removes and returns the last element of the first non-empty list, or blocks until one is available.",
    since="2.0.0",
)
def brpop(client: Client, args: list[bytes]) -> Any:
    return _bpop(client, args, False)


def _bmove(client: Client, args: list[bytes], src: bytes, dst: bytes, from_left: bool, to_left: bool, ms: int) -> Any:
    def attempt() -> Any:
        value = _move(client, src, dst, from_left, to_left)
        if value is None:
            return _NOTHING
        if args[0].lower() == b"brpoplpush":
            client.node.replicate_as([b"RPOPLPUSH", src, dst])
        else:
            sides = (b"LEFT" if from_left else b"RIGHT", b"LEFT" if to_left else b"RIGHT")
            client.node.replicate_as([b"LMOVE", src, dst, *sides])
        return value

    # Inside MULTI Redis answers a plain null here (the timeout answers a null array).
    return _serve_or_block(client, args, [src], ms, attempt, None)


@command(
    "blmove",
    6,
    "write denyoom noscript blocking",
    keys=(1, 2, 1),
    group="list",
    summary="Pops an element from a list, pushes it to another list and returns it. Blocks until one is available.",
    since="6.2.0",
)
def blmove(client: Client, args: list[bytes]) -> Any:
    from_left, to_left = _parse_side(args[3]), _parse_side(args[4])
    return _bmove(client, args, args[1], args[2], from_left, to_left, parse_timeout(args[5]))


@command(
    "brpoplpush",
    4,
    "write denyoom noscript blocking",
    keys=(1, 2, 1),
    group="list",
    summary="Pops an element from a list, pushes it to another list and returns it. Blocks until one is available.",
    since="2.2.0",
)
def brpoplpush(client: Client, args: list[bytes]) -> Any:
    return _bmove(client, args, args[1], args[2], False, True, parse_timeout(args[3]))


@command(
    "blmpop",
    -5,
    "write blocking",
    keys=(0, 0, 0),
    group="list",
    summary="Pops the first elements from one of multiple lists. Blocks until an element is available.",
    since="7.0.0",
    get_keys=get_numkeys_keys(2),
)
def blmpop(client: Client, args: list[bytes]) -> Any:
    # numkeys, keys, side and COUNT are checked before the timeout, as in Redis.
    keys, left, count = parse_mpop([args[0], *args[2:]], (b"left", b"right"))
    timeout_ms = parse_timeout(args[1])

    def attempt() -> Any:
        for key in keys:
            lst = _write_list(client, key)
            if lst:
                values = _pop_many(lst, count, left)
                if not lst:
                    client.db.delete(key)
                node = client.node
                node.keyspace.dirty += 1
                node.replicate_as([b"LPOP" if left else b"RPOP", key, b"%d" % len(values)])
                return [key, values]
        return _NOTHING

    return _serve_or_block(client, args, keys, timeout_ms, attempt, NULL_ARRAY)


def _bzpop(client: Client, args: list[bytes], from_max: bool) -> Any:
    timeout_ms = parse_timeout(args[-1])
    keys = args[1:-1]

    def attempt() -> Any:
        for key in keys:
            z = _write_zset(client, key)
            if z is not None and len(z):
                ((score, member),) = _zset_pop(client, key, z, 1, from_max)
                client.node.replicate_as([b"ZPOPMAX" if from_max else b"ZPOPMIN", key])
                return [key, member, score]
        return _NOTHING

    return _serve_or_block(client, args, keys, timeout_ms, attempt, NULL_ARRAY)


@command(
    "bzpopmin",
    -3,
    "write noscript blocking fast",
    keys=(1, -2, 1),
    group="sorted_set",
    summary="Removes and returns the member with the lowest score from one or more sorted sets, or blocks.",
    since="5.0.0",
)
def bzpopmin(client: Client, args: list[bytes]) -> Any:
    return _bzpop(client, args, False)


@command(
    "bzpopmax",
    -3,
    "write noscript blocking fast",
    keys=(1, -2, 1),
    group="sorted_set",
    summary="Removes and returns the member with the highest score from one or more sorted sets, or blocks.",
    since="5.0.0",
)
def bzpopmax(client: Client, args: list[bytes]) -> Any:
    return _bzpop(client, args, True)


@command(
    "bzmpop",
    -5,
    "write blocking",
    keys=(0, 0, 0),
    group="sorted_set",
    summary="Removes and returns members by score from one or more sorted sets. Blocks until a member is available.",
    since="7.0.0",
    get_keys=get_numkeys_keys(2),
)
def bzmpop(client: Client, args: list[bytes]) -> Any:
    keys, from_min, count = parse_mpop([args[0], *args[2:]], (b"min", b"max"))
    timeout_ms = parse_timeout(args[1])

    def attempt() -> Any:
        for key in keys:
            z = _write_zset(client, key)
            if z is not None and len(z):
                pairs = _zset_pop(client, key, z, count, not from_min)
                client.node.replicate_as([b"ZPOPMIN" if from_min else b"ZPOPMAX", key, b"%d" % len(pairs)])
                return [key, [[member, score] for score, member in pairs]]
        return _NOTHING

    return _serve_or_block(client, args, keys, timeout_ms, attempt, NULL_ARRAY)


# -- blocking and serving -------------------------------------------------------------------


def _serve_or_block(
    client: Client, args: list[bytes], keys: list[bytes], timeout_ms: int, attempt: Callable[[], Any], nil: Any
) -> Any:
    reply = attempt()
    if reply is not _NOTHING:
        return reply
    node = client.node
    room = node.blocking
    serving = room.serving
    if serving is not None and serving.client is client:
        return _STILL_BLOCKED  # a re-run by serve_ready: keep the place in the queue
    conn = client.conn
    if node.in_exec or conn is None or not hasattr(conn, "resume") or client.kind != "normal":
        return nil
    cmd = node.lookup_command(args[0])
    deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms else None
    waiter = Waiter(client, client.db.id, tuple(keys), args, cmd, deadline)
    room.add(waiter)
    client.blocked = True
    if timeout_ms:
        waiter.timer = node.call_later(timeout_ms / 1000, lambda: _on_timer(node, waiter))
    return _NO_REPLY


def _on_timer(node: Any, waiter: Waiter) -> None:
    room = node.blocking
    # The timer may fire a hair early or late: reap everything due, this waiter included.
    due = room.expired(time.monotonic())
    if waiter not in due:
        due.insert(0, waiter)
    for expired in due:
        unblock(node, expired, NULL_ARRAY)


def unblock(node: Any, waiter: Waiter, reply: Any) -> bool:
    """End ``waiter``'s wait with ``reply`` (timeout nil, UNBLOCKED error); False if it was not waiting."""
    if not node.blocking.remove(waiter):
        return False
    if waiter.timer is not None:
        waiter.timer.cancel()
    waiter.client.unblock(reply)
    return True


def serve_ready(node: Any) -> None:
    """Serve the waiters of every key signalled ready, FIFO per key, until no key is left ready.

    Called by ``Node.execute`` after a command: like Redis's handleClientsBlockedOnKeys, before
    the next command of any client, so a pipelined LPUSH + LPOP cannot steal a waiter's element.
    """
    room = node.blocking
    dbs = node.keyspace.dbs
    while room.ready:
        for slot in room.take_ready():
            db_id, key = slot
            db = dbs[db_id]
            for waiter in room.waiters_on(slot):
                if key not in db.data:  # emptied (or never filled): the rest keep waiting
                    break
                if room.by_client.get(waiter.client.id) is not waiter:
                    continue  # served through another of its keys meanwhile
                _serve(node, waiter)


def _serve(node: Any, waiter: Waiter) -> None:
    room = node.blocking
    client = waiter.client
    conn = client.conn
    if conn is None or getattr(conn, "closing", False):  # killed, not gone yet: must not swallow an element
        unblock(node, waiter, NULL_ARRAY)
        return
    cmd = waiter.command
    room.serving = waiter
    monitors, node.monitors = node.monitors, set()  # MONITOR saw the command once, when it blocked
    try:
        reply = node.call(client, cmd, waiter.args)
    finally:
        room.serving = None
        node.monitors = monitors
    cmd.calls -= 1  # counted once, when it blocked
    if reply is _STILL_BLOCKED:
        return
    room.remove(waiter)
    if waiter.timer is not None:
        waiter.timer.cancel()
    repl_io = node.repl_io
    if (
        node.write_waiters_enabled
        and node.role == "master"
        and repl_io is not None
        and reply.__class__ is not ErrorReply
    ):
        repl_io.hold_for_acks(client, reply)  # semi-sync: the pop is acknowledged before it is answered
        return
    client.unblock(reply)


def unblock_all(node: Any, message: str) -> None:
    """Every blocked client gets ``message`` as an error (the node became a replica)."""
    for waiter in list(node.blocking.by_client.values()):
        unblock(node, waiter, ErrorReply(message))


def client_gone(node: Any, client: Client) -> None:
    waiter = node.blocking.waiter_of(client.id)
    if waiter is not None and node.blocking.remove(waiter) and waiter.timer is not None:
        waiter.timer.cancel()


@command(
    "client|unblock",
    -3,
    "admin noscript loading stale",
    group="connection",
    summary="Unblocks a client blocked by a blocking command from a different connection.",
    since="5.0.0",
)
def client_unblock(client: Client, args: list[bytes]) -> Any:
    if len(args) > 4:
        raise CommandError("ERR unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP.")
    client_id = _strict_int(args[2])
    if client_id is None:
        raise CommandError("ERR value is not an integer or out of range")
    reply: Any = NULL_ARRAY
    if len(args) == 4:
        mode = args[3].lower()
        if mode == b"error":
            reply = ErrorReply(UNBLOCKED_BY_CLIENT)
        elif mode != b"timeout":
            raise CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    node = client.node
    waiter = node.blocking.waiter_of(client_id)
    if waiter is None:
        return 0
    return 1 if unblock(node, waiter, reply) else 0
