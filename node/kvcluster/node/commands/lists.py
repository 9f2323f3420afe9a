"""List commands: LPUSH, LRANGE, LPOS, LMOVE, LMPOP and friends.

A list is a ``collections.deque`` of bytes; a key holds one only while it has
elements (the pop, trim or remove that empties it deletes the key). Indexes
follow Redis: negative ones count from the tail, ranges are inclusive and
clamped.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from kvcluster.common.resp import NULL_ARRAY, OK, CommandError
from kvcluster.node.client import Client
from kvcluster.node.commands.collection_common import (
    OUT_OF_RANGE,
    SYNTAX,
    get_numkeys_keys,
    lookup_read,
    parse_int,
)
from kvcluster.node.commands.table import command

_LONG_MAX = (1 << 63) - 1
_LEFT, _RIGHT = True, False


def _write_list(client: Client, key: bytes) -> deque | None:
    return client.db.lookup_typed(key, deque)


def _push(client: Client, args: list[bytes], left: bool, only_existing: bool) -> int:
    key = args[1]
    lst = _write_list(client, key)
    if lst is None:
        if only_existing:
            return 0
        lst = deque()
        client.db.set(key, lst)
    if left:
        lst.extendleft(args[2:])
    else:
        lst.extend(args[2:])
    client.node.keyspace.dirty += 1
    return len(lst)


@command("lpush", -3, "write denyoom fast", keys=(1, 1, 1), group="list", summary="Prepends elements to a list.")
def lpush(client: Client, args: list[bytes]) -> int:
    return _push(client, args, _LEFT, False)


@command("rpush", -3, "write denyoom fast", keys=(1, 1, 1), group="list", summary="Appends elements to a list.")
def rpush(client: Client, args: list[bytes]) -> int:
    return _push(client, args, _RIGHT, False)


@command("lpushx", -3, "write denyoom fast", keys=(1, 1, 1), group="list", summary="Prepends if the list exists.")
def lpushx(client: Client, args: list[bytes]) -> int:
    return _push(client, args, _LEFT, True)


@command("rpushx", -3, "write denyoom fast", keys=(1, 1, 1), group="list", summary="Appends if the list exists.")
def rpushx(client: Client, args: list[bytes]) -> int:
    return _push(client, args, _RIGHT, True)


def _pop(client: Client, args: list[bytes], left: bool):
    if len(args) > 3:
        raise CommandError(f"ERR wrong number of arguments for '{args[0].decode('utf-8', 'replace').lower()}' command")
    count = -1
    if len(args) == 3:
        count = parse_int(args[2], OUT_OF_RANGE)
        if count < 0:
            raise CommandError(OUT_OF_RANGE)
    key = args[1]
    lst = _write_list(client, key)
    if lst is None:
        return None if count < 0 else NULL_ARRAY
    if count < 0:
        value = lst.popleft() if left else lst.pop()
    else:
        if count == 0:
            return []
        value = _pop_many(lst, count, left)
    if not lst:
        client.db.delete(key)
    client.node.keyspace.dirty += 1
    return value


def _pop_many(lst: deque, count: int, left: bool) -> list[bytes]:
    n = min(count, len(lst))
    pop = lst.popleft if left else lst.pop
    return [pop() for _ in range(n)]


@command("lpop", -2, "write fast", keys=(1, 1, 1), group="list", summary="Removes and returns the first elements.")
def lpop(client: Client, args: list[bytes]):
    return _pop(client, args, _LEFT)


@command("rpop", -2, "write fast", keys=(1, 1, 1), group="list", summary="Removes and returns the last elements.")
def rpop(client: Client, args: list[bytes]):
    return _pop(client, args, _RIGHT)


@command("llen", 2, "readonly fast", keys=(1, 1, 1), group="list", summary="Returns the length of a list.")
def llen(client: Client, args: list[bytes]) -> int:
    lst = lookup_read(client, args[1], deque)
    return 0 if lst is None else len(lst)


def clamp_range(start: int, end: int, size: int) -> tuple[int, int] | None:
    """Redis's inclusive [start, end] with negative indexes, clamped; None if empty."""
    if start < 0:
        start = max(size + start, 0)
    if end < 0:
        end += size
    if start > end or start >= size:
        return None
    return start, min(end, size - 1)


def _slice(lst: deque, start: int, end: int) -> list[bytes]:
    """Elements ``start..end`` (valid, inclusive), walking from the nearer end."""
    size = len(lst)
    if start > size - 1 - end:
        tail = list(islice(reversed(lst), size - 1 - end, size - start))
        tail.reverse()
        return tail
    return list(islice(lst, start, end + 1))


@command("lrange", 4, "readonly", keys=(1, 1, 1), group="list", summary="Returns a range of elements.")
def lrange(client: Client, args: list[bytes]) -> list[bytes]:
    start, end = parse_int(args[2]), parse_int(args[3])
    lst = lookup_read(client, args[1], deque)
    if lst is None:
        return []
    bounds = clamp_range(start, end, len(lst))
    return [] if bounds is None else _slice(lst, *bounds)


@command("lindex", 3, "readonly", keys=(1, 1, 1), group="list", summary="Returns an element by its index.")
def lindex(client: Client, args: list[bytes]) -> bytes | None:
    lst = lookup_read(client, args[1], deque)
    if lst is None:
        return None  # before the index is parsed, as in Redis
    index = parse_int(args[2])
    if index < 0:
        index += len(lst)
    if not 0 <= index < len(lst):
        return None
    return lst[index]


@command("lset", 4, "write denyoom", keys=(1, 1, 1), group="list", summary="Sets an element by its index.")
def lset(client: Client, args: list[bytes]):
    lst = _write_list(client, args[1])
    if lst is None:
        raise CommandError("ERR no such key")
    index = parse_int(args[2])
    if index < 0:
        index += len(lst)
    if not 0 <= index < len(lst):
        raise CommandError("ERR index out of range")
    lst[index] = args[3]
    client.node.keyspace.dirty += 1
    return OK


@command("linsert", 5, "write denyoom", keys=(1, 1, 1), group="list", summary="Inserts an element by a pivot.")
def linsert(client: Client, args: list[bytes]) -> int:
    where = args[2].lower()
    if where not in (b"before", b"after"):
        raise CommandError(SYNTAX)
    lst = _write_list(client, args[1])
    if lst is None:
        return 0
    try:
        index = lst.index(args[3])
    except ValueError:
        return -1
    lst.insert(index if where == b"before" else index + 1, args[4])
    client.node.keyspace.dirty += 1
    return len(lst)


@command("lrem", 4, "write", keys=(1, 1, 1), group="list", summary="Removes occurrences of an element.")
def lrem(client: Client, args: list[bytes]) -> int:
    count = parse_int(args[2])
    key, element = args[1], args[3]
    lst = _write_list(client, key)
    if lst is None:
        return 0
    if count == 1:
        try:
            lst.remove(element)  # the common case, at C speed
        except ValueError:
            return 0
        removed = 1
    else:
        limit = abs(count) or len(lst)
        items = list(lst) if count >= 0 else list(reversed(lst))
        kept: list[bytes] = []
        removed = 0
        for item in items:
            if removed < limit and item == element:
                removed += 1
            else:
                kept.append(item)
        if not removed:
            return 0
        if count < 0:
            kept.reverse()
        lst.clear()
        lst.extend(kept)
    if not lst:
        client.db.delete(key)
    client.node.keyspace.dirty += 1
    return removed


@command("ltrim", 4, "write", keys=(1, 1, 1), group="list", summary="Trims a list to a range.")
def ltrim(client: Client, args: list[bytes]):
    start, end = parse_int(args[2]), parse_int(args[3])
    key = args[1]
    lst = _write_list(client, key)
    if lst is None:
        return OK
    size = len(lst)
    bounds = clamp_range(start, end, size)
    if bounds is None:
        client.db.delete(key)
        client.node.keyspace.dirty += 1
        return OK
    start, end = bounds
    drop_left, drop_right = start, size - 1 - end
    if not (drop_left or drop_right):
        # Nothing to propagate, but Redis still counts the key as touched for WATCH.
        client.node.keyspace.signal_modified(client.db, key)
        return OK
    if drop_left + drop_right < end - start + 1:
        for _ in range(drop_left):
            lst.popleft()
        for _ in range(drop_right):
            lst.pop()
    else:
        kept = list(islice(lst, start, end + 1))
        lst.clear()
        lst.extend(kept)
    client.node.keyspace.dirty += 1
    return OK


@command("lpos", -3, "readonly", keys=(1, 1, 1), group="list", summary="Returns the indexes of matching elements.")
def lpos(client: Client, args: list[bytes]):
    rank, count, maxlen = 1, -1, 0
    i, n = 3, len(args)
    while i < n:
        opt = args[i].lower()
        if i + 1 >= n:
            raise CommandError(SYNTAX)
        if opt == b"rank":
            rank = parse_int(args[i + 1])
            if rank < -_LONG_MAX:
                raise CommandError(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
                )
            if rank == 0:
                raise CommandError(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
                    "or use negative to start from the end of the list"
                )
        elif opt == b"count":
            count = _parse_non_negative(args[i + 1], "ERR COUNT can't be negative")
        elif opt == b"maxlen":
            maxlen = _parse_non_negative(args[i + 1], "ERR MAXLEN can't be negative")
        else:
            raise CommandError(SYNTAX)
        i += 2
    lst = lookup_read(client, args[1], deque)
    if lst is None:
        return None if count < 0 else []
    element = args[2]
    if rank == 1 and count < 0 and not maxlen:
        try:
            return lst.index(element)  # the common case, at C speed
        except ValueError:
            return None
    size = len(lst)
    wanted = count if count > 0 else size
    skip = abs(rank) - 1
    found: list[int] = []
    indexed = enumerate(lst) if rank > 0 else zip(range(size - 1, -1, -1), reversed(lst), strict=True)
    for seen, (index, item) in enumerate(indexed):
        if maxlen and seen >= maxlen:
            break
        if item == element:
            if skip:
                skip -= 1
                continue
            found.append(index)
            if len(found) >= wanted:
                break
    if count < 0:
        return found[0] if found else None
    return found


def _parse_non_negative(arg: bytes, error: str) -> int:
    value = parse_int(arg, error)
    if value < 0:
        raise CommandError(error)
    return value


def _parse_side(arg: bytes) -> bool:
    side = arg.lower()
    if side == b"left":
        return _LEFT
    if side == b"right":
        return _RIGHT
    raise CommandError(SYNTAX)


def _move(client: Client, src_key: bytes, dst_key: bytes, from_left: bool, to_left: bool) -> bytes | None:
    db = client.db
    src = _write_list(client, src_key)
    if src is None:
        return None
    dst = _write_list(client, dst_key)
    # When src is dst (rotation) the element goes back in before the emptiness check.
    value = src.popleft() if from_left else src.pop()
    if dst is None:
        dst = deque()
        db.set(dst_key, dst)
    if to_left:
        dst.appendleft(value)
    else:
        dst.append(value)
    if not src:
        db.delete(src_key)
    client.node.keyspace.dirty += 1
    return value


@command("rpoplpush", 3, "write denyoom", keys=(1, 2, 1), group="list", summary="Moves the last element to another.")
def rpoplpush(client: Client, args: list[bytes]) -> bytes | None:
    return _move(client, args[1], args[2], _RIGHT, _LEFT)


@command("lmove", 5, "write denyoom", keys=(1, 2, 1), group="list", summary="Moves an element between lists.")
def lmove(client: Client, args: list[bytes]) -> bytes | None:
    from_left, to_left = _parse_side(args[3]), _parse_side(args[4])
    return _move(client, args[1], args[2], from_left, to_left)


def parse_mpop(args: list[bytes], sides: tuple[bytes, bytes]) -> tuple[list[bytes], bool, int]:
    """``numkeys key [key ...] LEFT|RIGHT [COUNT count]`` (also ZMPOP's MIN|MAX) -> (keys, first side, count)."""
    try:
        numkeys = parse_int(args[1])
    except CommandError:
        numkeys = 0
    if numkeys <= 0:
        raise CommandError("ERR numkeys should be greater than 0")
    if numkeys > len(args) - 3:
        raise CommandError(SYNTAX)
    keys = args[2 : 2 + numkeys]
    side = args[2 + numkeys].lower()
    if side not in sides:
        raise CommandError(SYNTAX)
    count = -1
    i = 3 + numkeys
    while i < len(args):
        if args[i].lower() == b"count" and i + 1 < len(args) and count < 0:
            try:
                count = parse_int(args[i + 1])
            except CommandError:
                count = 0
            if count <= 0:
                raise CommandError("ERR count should be greater than 0")
            i += 2
        else:
            raise CommandError(SYNTAX)
    return keys, side == sides[0], 1 if count < 0 else count


@command(
    "lmpop",
    -4,
    "write",
    keys=(2, 2, 1),
    group="list",
    summary="Pops elements from the first non-empty list.",
    get_keys=get_numkeys_keys(1),
)
def lmpop(client: Client, args: list[bytes]):
    keys, left, count = parse_mpop(args, (b"left", b"right"))
    for key in keys:
        lst = _write_list(client, key)
        if lst is None:
            continue
        values = _pop_many(lst, count, left)
        if not lst:
            client.db.delete(key)
        client.node.keyspace.dirty += 1
        return [key, values]
    return NULL_ARRAY
