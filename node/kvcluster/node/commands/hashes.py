"""Hash commands: HSET, HGET, HINCRBY, HSCAN and friends.

A hash is a ``dict[bytes, bytes]`` (insertion order, like Redis's listpack
encoding for small hashes). A key holds a hash only while it has fields: the
last HDEL deletes the key. Replies that expose the dict copy it, because
MULTI/EXEC encodes replies after later commands of the transaction have run.
"""

from __future__ import annotations

import random

from kvcluster.common.resp import OK, CommandError
from kvcluster.node.client import Client
from kvcluster.node.commands.collection_common import (
    NOT_FLOAT,
    SYNTAX,
    add_long_doubles,
    long_double_is_finite,
    lookup_read,
    parse_cursor,
    parse_int,
    parse_long_double,
    parse_scan_options,
    random_element,
    scan_collection,
)
from kvcluster.node.commands.table import command

_LONG_MAX = (1 << 63) - 1
# A negative count asks for that many picks with repetition. Redis builds such a
# reply whatever its size (and dies trying on absurd counts); we refuse beyond this.
MAX_RANDOM_PICKS = 10_000_000


def _write_hash(client: Client, key: bytes) -> dict[bytes, bytes] | None:
    return client.db.lookup_typed(key, dict)


@command("hset", -4, "write denyoom fast", keys=(1, 1, 1), group="hash", summary="Sets the values of fields in a hash.")
def hset(client: Client, args: list[bytes]) -> int:
    if len(args) % 2:
        raise CommandError(f"ERR wrong number of arguments for '{args[0].decode('utf-8', 'replace').lower()}' command")
    key = args[1]
    h = _write_hash(client, key)
    if h is None:
        h = {}
        client.db.set(key, h)
    before = len(h)
    for i in range(2, len(args), 2):
        h[args[i]] = args[i + 1]
    client.node.keyspace.dirty += 1
    return len(h) - before


@command("hmset", -4, "write denyoom fast", keys=(1, 1, 1), group="hash", summary="Sets the values of fields.")
def hmset(client: Client, args: list[bytes]):
    hset(client, args)
    return OK


@command("hsetnx", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", summary="Sets a field if it is new.")
def hsetnx(client: Client, args: list[bytes]) -> int:
    key, field = args[1], args[2]
    h = _write_hash(client, key)
    if h is None:
        client.db.set(key, {field: args[3]})
    elif field in h:
        return 0
    else:
        h[field] = args[3]
    client.node.keyspace.dirty += 1
    return 1


@command("hget", 3, "readonly fast", keys=(1, 1, 1), group="hash", summary="Returns the value of a field.")
def hget(client: Client, args: list[bytes]) -> bytes | None:
    h = lookup_read(client, args[1], dict)
    return None if h is None else h.get(args[2])


@command("hmget", -3, "readonly fast", keys=(1, 1, 1), group="hash", summary="Returns the values of fields.")
def hmget(client: Client, args: list[bytes]) -> list[bytes | None]:
    h = lookup_read(client, args[1], dict)
    if h is None:
        return [None] * (len(args) - 2)
    get = h.get
    return [get(f) for f in args[2:]]


@command("hgetall", 2, "readonly", keys=(1, 1, 1), group="hash", summary="Returns all fields and values.")
def hgetall(client: Client, args: list[bytes]) -> dict[bytes, bytes]:
    h = lookup_read(client, args[1], dict)
    return {} if h is None else dict(h)


@command("hkeys", 2, "readonly", keys=(1, 1, 1), group="hash", summary="Returns all fields in a hash.")
def hkeys(client: Client, args: list[bytes]) -> list[bytes]:
    h = lookup_read(client, args[1], dict)
    return [] if h is None else list(h)


@command("hvals", 2, "readonly", keys=(1, 1, 1), group="hash", summary="Returns all values in a hash.")
def hvals(client: Client, args: list[bytes]) -> list[bytes]:
    h = lookup_read(client, args[1], dict)
    return [] if h is None else list(h.values())


@command("hdel", -3, "write fast", keys=(1, 1, 1), group="hash", summary="Deletes fields from a hash.")
def hdel(client: Client, args: list[bytes]) -> int:
    key = args[1]
    h = _write_hash(client, key)
    if h is None:
        return 0
    deleted = 0
    for field in args[2:]:
        if h.pop(field, None) is not None:
            deleted += 1
    if deleted:
        if not h:
            client.db.delete(key)
        client.node.keyspace.dirty += 1
    return deleted


@command("hlen", 2, "readonly fast", keys=(1, 1, 1), group="hash", summary="Returns the number of fields.")
def hlen(client: Client, args: list[bytes]) -> int:
    h = lookup_read(client, args[1], dict)
    return 0 if h is None else len(h)


@command("hstrlen", 3, "readonly fast", keys=(1, 1, 1), group="hash", summary="Returns the length of a value.")
def hstrlen(client: Client, args: list[bytes]) -> int:
    h = lookup_read(client, args[1], dict)
    if h is None:
        return 0
    value = h.get(args[2])
    return 0 if value is None else len(value)


@command("hexists", 3, "readonly fast", keys=(1, 1, 1), group="hash", summary="Whether a field exists.")
def hexists(client: Client, args: list[bytes]) -> int:
    h = lookup_read(client, args[1], dict)
    return 1 if h is not None and args[2] in h else 0


@command("hincrby", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", summary="Increments an integer field.")
def hincrby(client: Client, args: list[bytes]) -> int:
    incr = parse_int(args[3])
    key, field = args[1], args[2]
    h = _write_hash(client, key)
    current = None if h is None else h.get(field)
    value = 0 if current is None else parse_int(current, "ERR hash value is not an integer")
    result = value + incr
    if not -(1 << 63) <= result <= _LONG_MAX:
        raise CommandError("ERR increment or decrement would overflow")
    if h is None:
        h = {}
        client.db.set(key, h)
    h[field] = b"%d" % result
    client.node.keyspace.dirty += 1
    return result


@command("hincrbyfloat", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", summary="Increments a float field.")
def hincrbyfloat(client: Client, args: list[bytes]) -> bytes:
    incr = parse_long_double(args[3])
    if incr is None:
        raise CommandError(NOT_FLOAT)
    if not long_double_is_finite(incr):
        raise CommandError("ERR value is NaN or Infinity")
    key, field = args[1], args[2]
    h = _write_hash(client, key)
    current = None if h is None else h.get(field)
    value = parse_long_double(b"0" if current is None else current)
    if value is None:
        raise CommandError("ERR hash value is not a float")
    text = add_long_doubles(value, incr)
    if h is None:
        h = {}
        client.db.set(key, h)
    h[field] = text
    client.node.keyspace.dirty += 1
    # Replicated as the value it produced: replicas must not redo the float arithmetic.
    client.node.replicate_as([b"HSET", key, field, text])
    return text


def parse_random_count(arg: bytes) -> int:
    """The count of HRANDFIELD/SRANDMEMBER/ZRANDMEMBER: -LONG_MAX..LONG_MAX."""
    count = parse_int(arg)
    if count < -_LONG_MAX:
        raise CommandError("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    if count < -MAX_RANDOM_PICKS:
        raise CommandError("ERR value is out of range")
    return count


def random_picks(items: dict | set, count: int) -> list:
    """``count`` elements of ``items``: distinct if count > 0, with repetition if negative."""
    if count < 0:
        if len(items) < 64:
            return random.choices(list(items), k=-count)
        return [random_element(items) for _ in range(-count)]
    if count >= len(items):
        return list(items)
    return random.sample(list(items), count)


@command("hrandfield", -2, "readonly", keys=(1, 1, 1), group="hash", summary="Returns random fields of a hash.")
def hrandfield(client: Client, args: list[bytes]):
    if len(args) == 2:
        h = lookup_read(client, args[1], dict)
        return None if h is None else random_element(h)
    count = parse_random_count(args[2])
    withvalues = False
    if len(args) == 4:
        if args[3].lower() != b"withvalues":
            raise CommandError(SYNTAX)
        withvalues = True
        if not -(_LONG_MAX // 2) <= count <= _LONG_MAX // 2:
            raise CommandError("ERR value is out of range")
    elif len(args) > 4:
        raise CommandError(SYNTAX)
    h = lookup_read(client, args[1], dict)
    if h is None or count == 0:
        return []
    fields = random_picks(h, count)
    if not withvalues:
        return fields
    if client.resp == 3:
        return [[f, h[f]] for f in fields]
    out: list[bytes] = []
    for f in fields:
        out.append(f)
        out.append(h[f])
    return out


@command("hscan", -3, "readonly", keys=(1, 1, 1), group="hash", summary="Iterates over fields and values.")
def hscan(client: Client, args: list[bytes]) -> list:
    cursor = parse_cursor(args[2])
    count, matcher, novalues = parse_scan_options(args, 3, allow_novalues=True)
    h = lookup_read(client, args[1], dict)
    if h is None:
        return [b"0", []]
    next_cursor, fields = scan_collection(h, h, cursor, count)
    out: list[bytes] = []
    get = h.get
    for f in fields:
        value = get(f)
        if value is None or (matcher is not None and not matcher(f)):
            continue
        out.append(f)
        if not novalues:
            out.append(value)
    return [b"%d" % next_cursor, out]
