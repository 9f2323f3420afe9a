"""Set commands: SADD, SINTER, SPOP, SSCAN and friends.

A set is a Python ``set[bytes]``; a key holds one only while it has members
(the last SREM/SPOP/SMOVE deletes the key). Replies that expose the set copy it
(MULTI/EXEC encodes replies after the whole transaction ran). Set replies are
the RESP3 set type (``~``) where Redis uses it: SMEMBERS, SINTER, SUNION,
SDIFF, SPOP with a count.
"""

from __future__ import annotations

import random

from kvcluster.common.resp import CommandError
from kvcluster.node.client import Client
from kvcluster.node.commands.collection_common import (
    OUT_OF_RANGE,
    SYNTAX,
    get_numkeys_keys,
    lookup_read,
    parse_cursor,
    parse_int,
    parse_scan_options,
    random_element,
    scan_collection,
)
from kvcluster.node.commands.hashes import parse_random_count, random_picks
from kvcluster.node.commands.table import command


@command("sadd", -3, "write denyoom fast", keys=(1, 1, 1), group="set", summary="Adds members to a set.")
def sadd(client: Client, args: list[bytes]) -> int:
    key = args[1]
    s = client.db.lookup_typed(key, set)
    if s is None:
        s = set(args[2:])
        client.db.set(key, s)
        added = len(s)
    else:
        before = len(s)
        s.update(args[2:])
        added = len(s) - before
    client.node.keyspace.dirty += added  # one change per new member, as Redis counts them
    return added


@command("srem", -3, "write fast", keys=(1, 1, 1), group="set", summary="Removes members from a set.")
def srem(client: Client, args: list[bytes]) -> int:
    key = args[1]
    s = client.db.lookup_typed(key, set)
    if s is None:
        return 0
    before = len(s)
    s.difference_update(args[2:])
    removed = before - len(s)
    if removed:
        if not s:
            client.db.delete(key)
        client.node.keyspace.dirty += 1
    return removed


@command("smembers", 2, "readonly", keys=(1, 1, 1), group="set", summary="Returns all members of a set.")
def smembers(client: Client, args: list[bytes]) -> set[bytes]:
    s = lookup_read(client, args[1], set)
    return set() if s is None else set(s)


@command("sismember", 3, "readonly fast", keys=(1, 1, 1), group="set", summary="Whether a member is in a set.")
def sismember(client: Client, args: list[bytes]) -> int:
    s = lookup_read(client, args[1], set)
    return 1 if s is not None and args[2] in s else 0


@command("smismember", -3, "readonly fast", keys=(1, 1, 1), group="set", summary="Whether members are in a set.")
def smismember(client: Client, args: list[bytes]) -> list[int]:
    s = lookup_read(client, args[1], set)
    if s is None:
        return [0] * (len(args) - 2)
    return [1 if m in s else 0 for m in args[2:]]


@command("scard", 2, "readonly fast", keys=(1, 1, 1), group="set", summary="Returns the number of members.")
def scard(client: Client, args: list[bytes]) -> int:
    s = lookup_read(client, args[1], set)
    return 0 if s is None else len(s)


@command("spop", -2, "write fast", keys=(1, 1, 1), group="set", summary="Removes and returns random members.")
def spop(client: Client, args: list[bytes]):
    key = args[1]
    if len(args) == 2:
        s = client.db.lookup_typed(key, set)
        if s is None:
            return None
        member = random_element(s)
        s.discard(member)
        if not s:
            client.db.delete(key)
        client.node.keyspace.dirty += 1
        client.node.replicate_as([b"SREM", key, member])  # the random choice is made once, here
        return member
    if len(args) > 3:
        raise CommandError(SYNTAX)
    count = parse_int(args[2], OUT_OF_RANGE)
    if count < 0:
        raise CommandError(OUT_OF_RANGE)
    s = client.db.lookup_typed(key, set)
    if s is None or count == 0:
        return set()
    if count >= len(s):
        client.db.delete(key)
        client.node.keyspace.dirty += 1
        client.node.replicate_as([b"DEL", key])
        return s
    popped = set(random.sample(list(s), count))
    s.difference_update(popped)
    client.node.keyspace.dirty += 1
    client.node.replicate_as([b"SREM", key, *popped])  # the random choice is made once, here
    return popped


@command("srandmember", -2, "readonly", keys=(1, 1, 1), group="set", summary="Returns random members of a set.")
def srandmember(client: Client, args: list[bytes]):
    if len(args) == 2:
        s = lookup_read(client, args[1], set)
        return None if s is None else random_element(s)
    if len(args) > 3:
        raise CommandError(SYNTAX)
    count = parse_random_count(args[2])
    s = lookup_read(client, args[1], set)
    if s is None or count == 0:
        return []
    return random_picks(s, count)


@command("smove", 4, "write fast", keys=(1, 2, 1), group="set", summary="Moves a member from one set to another.")
def smove(client: Client, args: list[bytes]) -> int:
    src_key, dst_key, member = args[1], args[2], args[3]
    db = client.db
    src = db.lookup_typed(src_key, set)
    if src is None:
        return 0  # even if the destination holds another type, as in Redis
    dst = db.lookup_typed(dst_key, set)
    if src is dst:
        return 1 if member in src else 0
    if member not in src:
        return 0
    src.discard(member)
    if not src:
        db.delete(src_key)
    if dst is None:
        db.set(dst_key, {member})
    else:
        dst.add(member)
    client.node.keyspace.dirty += 1
    return 1


def _sets_of(client: Client, keys: list[bytes]) -> list[set[bytes] | None]:
    """The sets at ``keys`` (None for missing ones); WRONGTYPE if any key holds another type."""
    lookup = client.db.lookup_typed
    return [lookup(k, set) for k in keys]


def _intersection(sets: list[set[bytes] | None]) -> set[bytes]:
    if any(s is None for s in sets):
        return set()
    ordered = sorted(sets, key=len)  # type: ignore[arg-type]
    return ordered[0].intersection(*ordered[1:])  # type: ignore[union-attr]


def _union(sets: list[set[bytes] | None]) -> set[bytes]:
    return set().union(*[s for s in sets if s is not None])


def _difference(sets: list[set[bytes] | None]) -> set[bytes]:
    first = sets[0]
    if first is None:
        return set()
    return first.difference(*[s for s in sets[1:] if s is not None])


def _store(client: Client, dst: bytes, result: set[bytes]) -> int:
    db = client.db
    if result:
        db.set(dst, result)
        client.node.keyspace.dirty += 1
    elif db.delete(dst):
        client.node.keyspace.dirty += 1
    return len(result)


@command("sinter", -2, "readonly", keys=(1, -1, 1), group="set", summary="Intersects sets.")
def sinter(client: Client, args: list[bytes]) -> set[bytes]:
    return _intersection(_sets_of(client, args[1:]))


@command("sunion", -2, "readonly", keys=(1, -1, 1), group="set", summary="Unions sets.")
def sunion(client: Client, args: list[bytes]) -> set[bytes]:
    return _union(_sets_of(client, args[1:]))


@command("sdiff", -2, "readonly", keys=(1, -1, 1), group="set", summary="Subtracts sets from the first.")
def sdiff(client: Client, args: list[bytes]) -> set[bytes]:
    return _difference(_sets_of(client, args[1:]))


@command("sinterstore", -3, "write denyoom", keys=(1, -1, 1), group="set", summary="Stores an intersection.")
def sinterstore(client: Client, args: list[bytes]) -> int:
    return _store(client, args[1], _intersection(_sets_of(client, args[2:])))


@command("sunionstore", -3, "write denyoom", keys=(1, -1, 1), group="set", summary="Stores a union.")
def sunionstore(client: Client, args: list[bytes]) -> int:
    return _store(client, args[1], _union(_sets_of(client, args[2:])))


@command("sdiffstore", -3, "write denyoom", keys=(1, -1, 1), group="set", summary="Stores a difference.")
def sdiffstore(client: Client, args: list[bytes]) -> int:
    return _store(client, args[1], _difference(_sets_of(client, args[2:])))


def parse_numkeys(args: list[bytes], at: int, zero_error: str = "ERR numkeys should be greater than 0") -> int:
    """``numkeys`` of SINTERCARD/ZINTERCARD/LMPOP...: positive and within the arguments."""
    try:
        numkeys = parse_int(args[at])
    except CommandError:
        raise CommandError(zero_error) from None
    if numkeys <= 0:
        raise CommandError(zero_error)
    if numkeys > len(args) - at - 1:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    return numkeys


def parse_card_limit(args: list[bytes], at: int) -> int:
    """``[LIMIT limit]`` of SINTERCARD/ZINTERCARD; 0 means no limit."""
    limit = 0
    i = at
    while i < len(args):
        if args[i].lower() == b"limit" and i + 1 < len(args):
            try:
                limit = parse_int(args[i + 1])
            except CommandError:
                limit = -1
            if limit < 0:
                raise CommandError("ERR LIMIT can't be negative")
            i += 2
        else:
            raise CommandError(SYNTAX)
    return limit


@command(
    "sintercard",
    -3,
    "readonly",
    keys=(1, 1, 1),
    group="set",
    summary="Counts the intersection of sets.",
    get_keys=get_numkeys_keys(1),
)
def sintercard(client: Client, args: list[bytes]) -> int:
    numkeys = parse_numkeys(args, 1)
    limit = parse_card_limit(args, 2 + numkeys)
    n = len(_intersection(_sets_of(client, args[2 : 2 + numkeys])))
    return min(n, limit) if limit else n


@command("sscan", -3, "readonly", keys=(1, 1, 1), group="set", summary="Iterates over members of a set.")
def sscan(client: Client, args: list[bytes]) -> list:
    cursor = parse_cursor(args[2])
    count, matcher, _ = parse_scan_options(args, 3)
    s = lookup_read(client, args[1], set)
    if s is None:
        return [b"0", []]
    next_cursor, members = scan_collection(s, s, cursor, count)
    out = [m for m in members if m in s and (matcher is None or matcher(m))]
    return [b"%d" % next_cursor, out]
