"""Sorted set commands: ZADD, ZRANGE (all its forms), ZUNION/ZINTER/ZDIFF, ZPOP and friends.

A sorted set is a :class:`~kvcluster.node.keyspace.ZSet`: ``dict`` member -> score
plus a ``SortedList`` of ``(score, member)`` tuples, which is exactly Redis's
order (score, then member bytes). Positions in it are ranks; score ranges are
found by bisecting with 1-tuples (``(s,)`` sorts before every ``(s, member)``);
lex ranges are meant for members sharing one score (then they bisect too); over
mixed scores they walk the members the way Redis walks a small sorted set.

Scores come back as doubles: the RESP encoder writes a float as a RESP3 double
or, in RESP2, as a bulk string formatted like Redis (``%.17g``). WITHSCORES
replies are flat in RESP2 and nested ``[member, score]`` pairs in RESP3.

A score of -0 is stored as 0 (``+ 0.0``), as Redis's compact (listpack) encoding
stores every integral score as an integer; a score computed and answered directly
(ZINCRBY's new score, ZUNION/ZINTER without STORE) keeps its sign, as in Redis.
(Redis's skiplist encoding, for sets over 128 members, keeps a stored -0: not modelled.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from kvcluster.common.resp import NULL_ARRAY, CommandError
from kvcluster.node.client import Client
from kvcluster.node.commands.collection_common import (
    OUT_OF_RANGE,
    SYNTAX,
    get_numkeys_keys,
    get_store_numkeys_keys,
    lookup_read,
    parse_cursor,
    parse_float,
    parse_int,
    parse_range_float,
    parse_scan_options,
    random_element,
    scan_collection,
)
from kvcluster.node.commands.hashes import parse_random_count, random_picks
from kvcluster.node.commands.lists import clamp_range, parse_mpop
from kvcluster.node.commands.sets import parse_card_limit
from kvcluster.node.commands.table import command
from kvcluster.node.keyspace import WRONGTYPE, ZSet
from sortedcontainers import SortedList

_INF = math.inf
_LONG_MAX = (1 << 63) - 1
NAN_SCORE = "ERR resulting score is not a number (NaN)"
NOT_FLOAT_RANGE = "ERR min or max is not a float"
NOT_LEX_RANGE = "ERR min or max not valid string range item"


def _write_zset(client: Client, key: bytes) -> ZSet | None:
    return client.db.lookup_typed(key, ZSet)


def _build_zset(pairs: list[tuple[float, bytes]]) -> ZSet:
    """A ZSet from ``(score, member)`` pairs with distinct members (-0 stored as 0)."""
    z = ZSet()
    pairs = [(s + 0.0, m) for s, m in pairs]
    z.dict = {m: s for s, m in pairs}
    z.sorted = SortedList(pairs)
    return z


def _with_scores(client: Client, pairs: Iterable[tuple[float, bytes]], withscores: bool) -> list:
    if not withscores:
        return [m for _, m in pairs]
    if client.resp == 3:
        return [[m, s] for s, m in pairs]
    out: list[Any] = []
    for s, m in pairs:
        out.append(m)
        out.append(s)
    return out


def d2string(score: float) -> bytes:
    """A score as Redis's ``d2string`` prints it (ZSCAN): integers without exponent up to 2**62."""
    if score != score:
        return b"nan"
    if math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    if score == 0:
        return b"-0" if math.copysign(1.0, score) < 0 else b"0"
    if -4.611686018427388e18 <= score <= 4.611686018427388e18 and score == int(score):
        return b"%d" % int(score)
    return (b"%.17g" % score).lower()


# -- ranges --------------------------------------------------------------------


def _parse_score_bound(arg: bytes) -> tuple[float, bool]:
    """``1.5``, ``(1.5`` (exclusive), ``-inf``, ``+inf`` -> (value, exclusive)."""
    exclusive = arg[:1] == b"("
    # Redis hands the argument to strtod as a C string: a NUL byte ends it.
    text = (arg[1:] if exclusive else arg).split(b"\0", 1)[0]
    value = parse_range_float(text)
    if value is None:
        raise CommandError(NOT_FLOAT_RANGE)
    return value, exclusive


# A lex bound: (kind, value, exclusive) with kind -1 for "-", 1 for "+", 0 for a value.
LexBound = tuple[int, bytes, bool]


def _parse_lex_bound(arg: bytes) -> LexBound:
    first = arg[:1]
    if arg == b"-":
        return -1, b"", False
    if arg == b"+":
        return 1, b"", False
    if first == b"[":
        return 0, arg[1:], False
    if first == b"(":
        return 0, arg[1:], True
    raise CommandError(NOT_LEX_RANGE)


def _first_gt(sl: SortedList, score: float) -> int:
    """Index of the first element with a score > ``score``."""
    if score == _INF:
        return len(sl)
    return sl.bisect_left((math.nextafter(score, _INF),))


def _score_span(z: ZSet, low: tuple[float, bool], high: tuple[float, bool]) -> tuple[int, int]:
    """Index span [start, end) of the elements within a score range."""
    sl = z.sorted
    lo, lo_ex = low
    hi, hi_ex = high
    start = _first_gt(sl, lo) if lo_ex else sl.bisect_left((lo,))
    end = sl.bisect_left((hi,)) if hi_ex else _first_gt(sl, hi)
    return start, max(start, end)


def _lex_gte_min(member: bytes, low: LexBound) -> bool:
    kind, value, exclusive = low
    if kind:
        return kind < 0
    return member > value if exclusive else member >= value


def _lex_lte_max(member: bytes, high: LexBound) -> bool:
    kind, value, exclusive = high
    if kind:
        return kind > 0
    return member < value if exclusive else member <= value


def _lex_bounds_cross(low: LexBound, high: LexBound) -> bool:
    """Redis's test for a lex range that is always empty (min > max, or min == max with an open end)."""
    lo_kind, lo_value, lo_ex = low
    hi_kind, hi_value, hi_ex = high
    if lo_kind and lo_kind == hi_kind:
        return False  # "- -" or "+ +": the same special string compares equal (and is never open)
    if lo_kind < 0 or hi_kind > 0:
        return False
    if lo_kind > 0 or hi_kind < 0:
        return True
    return lo_value > hi_value or (lo_value == hi_value and (lo_ex or hi_ex))


def _lex_span(z: ZSet, low: LexBound, high: LexBound) -> tuple[int, int] | None:
    """Index span [start, end) of the members within a lex range; None if the scores are mixed.

    With one score (what lex ranges are for) the members in range are contiguous and
    found by bisecting. With mixed scores Redis's answer depends on how it walks the
    elements: see :func:`_lex_walk`.
    """
    sl = z.sorted
    size = len(sl)
    if not size or _lex_bounds_cross(low, high):
        return 0, 0
    score = sl[0][0]
    if sl[-1][0] != score:
        return None
    kind, value, exclusive = low
    if kind:
        start = 0 if kind < 0 else size
    else:
        start = sl.bisect_right((score, value)) if exclusive else sl.bisect_left((score, value))
    kind, value, exclusive = high
    if kind:
        end = 0 if kind < 0 else size
    else:
        end = sl.bisect_left((score, value)) if exclusive else sl.bisect_right((score, value))
    return start, max(start, end)


def _lex_walk(
    z: ZSet, low: LexBound, high: LexBound, reverse: bool, offset: int = 0, limit: int = -1
) -> list[tuple[float, bytes]]:
    """A lex range over mixed scores, walked the way Redis walks a small sorted set.

    Nothing unless the last member is >= min and the first <= max. Forward: from the
    first member >= min (nothing if it is > max), skip ``offset`` members without
    looking at them, then take members while they are <= max. Reverse: from the last
    member <= max (nothing if it is < min), skip back ``offset``, take while >= min.
    """
    sl = z.sorted
    size = len(sl)
    if offset < 0 or limit == 0 or not _lex_gte_min(sl[-1][1], low) or not _lex_lte_max(sl[0][1], high):
        return []
    out: list[tuple[float, bytes]] = []
    if reverse:
        i = size - 1
        while i >= 0 and not _lex_lte_max(sl[i][1], high):
            i -= 1
        if i < 0 or not _lex_gte_min(sl[i][1], low):
            return []
        i -= offset
        while i >= 0 and len(out) != limit and _lex_gte_min(sl[i][1], low):
            out.append(sl[i])
            i -= 1
        return out
    i = 0
    while i < size and not _lex_gte_min(sl[i][1], low):
        i += 1
    if i >= size or not _lex_lte_max(sl[i][1], high):
        return []
    i += offset
    while i < size and len(out) != limit and _lex_lte_max(sl[i][1], high):
        out.append(sl[i])
        i += 1
    return out


def _lex_forward_span(z: ZSet, low: LexBound, high: LexBound) -> tuple[int, int]:
    """The span ZLEXCOUNT and ZREMRANGEBYLEX work on (forward walk, no LIMIT)."""
    span = _lex_span(z, low, high)
    if span is not None:
        return span
    pairs = _lex_walk(z, low, high, False)
    if not pairs:
        return 0, 0
    start = z.sorted.bisect_left(pairs[0])
    return start, start + len(pairs)


def _span_slice(z: ZSet, start: int, end: int, reverse: bool, offset: int, limit: int) -> list[tuple[float, bytes]]:
    """Elements of index span [start, end) in order, after LIMIT offset/count (count < 0: all)."""
    if offset < 0 or limit == 0 or start >= end:
        return []
    if reverse:
        stop = end - offset
        first = start if limit < 0 else max(start, stop - limit)
        return list(z.sorted.islice(first, max(first, stop), reverse=True))
    first = start + offset
    stop = end if limit < 0 else min(end, first + limit)
    return list(z.sorted.islice(first, max(first, stop)))


def _rank_slice(z: ZSet, start: int, end: int, reverse: bool) -> list[tuple[float, bytes]]:
    bounds = clamp_range(start, end, len(z))
    if bounds is None:
        return []
    start, end = bounds
    if reverse:
        size = len(z)
        return list(z.sorted.islice(size - 1 - end, size - start, reverse=True))
    return list(z.sorted.islice(start, end + 1))


# -- ZADD / ZINCRBY --------------------------------------------------------------


def _zadd(client: Client, args: list[bytes], incr: bool):
    nx = xx = gt = lt = ch = False
    i, n = 2, len(args)
    while i < n:
        opt = args[i].lower()
        if opt == b"nx":
            nx = True
        elif opt == b"xx":
            xx = True
        elif opt == b"ch":
            ch = True
        elif opt == b"incr":
            incr = True
        elif opt == b"gt":
            gt = True
        elif opt == b"lt":
            lt = True
        else:
            break
        i += 1
    elements = n - i
    if elements % 2 or not elements:
        raise CommandError(SYNTAX)
    if nx and xx:
        raise CommandError("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and elements > 2:
        raise CommandError("ERR INCR option supports a single increment-element pair")
    # Every score is parsed before anything changes: ZADD does all or nothing.
    pairs = [(parse_float(args[j]), args[j + 1]) for j in range(i, n, 2)]
    key = args[1]
    z = _write_zset(client, key)
    if z is None and xx:
        return None if incr else 0
    added = updated = processed = 0
    score = 0.0
    for score, member in pairs:
        if z is None:
            z = ZSet()
            client.db.set(key, z)
        current = z.dict.get(member)
        if current is None:
            if xx:
                continue
            z.add(member, score + 0.0)
            added += 1
            processed += 1
            continue
        if nx:
            continue
        if incr:
            score += current
            if score != score:
                raise CommandError(NAN_SCORE)  # INCR takes one pair: nothing changed yet
        if (lt and score >= current) or (gt and score <= current):
            continue
        processed += 1
        if score != current:
            z.add(member, score + 0.0)
            updated += 1
    if added or updated:
        client.node.keyspace.dirty += added + updated
    if incr:
        return score if processed else None
    return added + updated if ch else added


@command("zadd", -4, "write denyoom fast", keys=(1, 1, 1), group="sorted_set", summary="Adds members to a sorted set.")
def zadd(client: Client, args: list[bytes]):
    return _zadd(client, args, False)


@command("zincrby", 4, "write denyoom fast", keys=(1, 1, 1), group="sorted_set", summary="Increments a score.")
def zincrby(client: Client, args: list[bytes]):
    return _zadd(client, args, True)


# -- reads -------------------------------------------------------------------------


@command("zscore", 3, "readonly fast", keys=(1, 1, 1), group="sorted_set", summary="Returns the score of a member.")
def zscore(client: Client, args: list[bytes]) -> float | None:
    z = lookup_read(client, args[1], ZSet)
    return None if z is None else z.dict.get(args[2])


@command("zmscore", -3, "readonly fast", keys=(1, 1, 1), group="sorted_set", summary="Returns scores of members.")
def zmscore(client: Client, args: list[bytes]) -> list[float | None]:
    z = lookup_read(client, args[1], ZSet)
    if z is None:
        return [None] * (len(args) - 2)
    get = z.dict.get
    return [get(m) for m in args[2:]]


@command("zcard", 2, "readonly fast", keys=(1, 1, 1), group="sorted_set", summary="Returns the number of members.")
def zcard(client: Client, args: list[bytes]) -> int:
    z = lookup_read(client, args[1], ZSet)
    return 0 if z is None else len(z)


@command("zcount", 4, "readonly fast", keys=(1, 1, 1), group="sorted_set", summary="Counts members in a score range.")
def zcount(client: Client, args: list[bytes]) -> int:
    low, high = _parse_score_bound(args[2]), _parse_score_bound(args[3])
    z = lookup_read(client, args[1], ZSet)
    if z is None:
        return 0
    start, end = _score_span(z, low, high)
    return end - start


@command("zlexcount", 4, "readonly fast", keys=(1, 1, 1), group="sorted_set", summary="Counts members in a lex range.")
def zlexcount(client: Client, args: list[bytes]) -> int:
    low, high = _parse_lex_bound(args[2]), _parse_lex_bound(args[3])
    z = lookup_read(client, args[1], ZSet)
    if z is None:
        return 0
    start, end = _lex_forward_span(z, low, high)
    return end - start


def _rank(client: Client, args: list[bytes], reverse: bool):
    if len(args) > 4:
        raise CommandError(f"ERR wrong number of arguments for '{args[0].decode('utf-8', 'replace').lower()}' command")
    withscore = False
    if len(args) == 4:
        if args[3].lower() != b"withscore":
            raise CommandError(SYNTAX)
        withscore = True
    z = lookup_read(client, args[1], ZSet)
    score = None if z is None else z.dict.get(args[2])
    if score is None:
        return NULL_ARRAY if withscore else None
    rank = z.sorted.bisect_left((score, args[2]))  # type: ignore[union-attr]
    if reverse:
        rank = len(z) - 1 - rank  # type: ignore[arg-type]
    return [rank, score] if withscore else rank


@command("zrank", -3, "readonly fast", keys=(1, 1, 1), group="sorted_set", summary="Returns the rank of a member.")
def zrank(client: Client, args: list[bytes]):
    return _rank(client, args, False)


@command("zrevrank", -3, "readonly fast", keys=(1, 1, 1), group="sorted_set", summary="Returns the reverse rank.")
def zrevrank(client: Client, args: list[bytes]):
    return _rank(client, args, True)


# -- ZRANGE and its older forms -------------------------------------------------------

_RANK, _SCORE, _LEX = 0, 1, 2


def _zrange_generic(
    client: Client,
    args: list[bytes],
    key_index: int,
    range_type: int | None,
    reverse: bool | None,
    store: bytes | None = None,
):
    """Redis's ``zrangeGenericCommand``: ZRANGE, ZRANGESTORE, ZREVRANGE, Z[REV]RANGEBY{SCORE,LEX}.

    ``range_type``/``reverse`` None mean "from the arguments" (ZRANGE's BYSCORE,
    BYLEX, REV); the older commands fix them, so those words are syntax errors there.
    """
    withscores = False
    offset, limit = 0, -1
    i, n = key_index + 3, len(args)
    while i < n:
        opt = args[i].lower()
        left = n - i - 1
        if opt == b"withscores" and store is None:
            withscores = True
        elif opt == b"limit" and left >= 2:
            offset, limit = parse_int(args[i + 1]), parse_int(args[i + 2])
            i += 2
        elif opt == b"rev" and reverse is None:
            reverse = True
        elif opt == b"bylex" and range_type is None:
            range_type = _LEX
        elif opt == b"byscore" and range_type is None:
            range_type = _SCORE
        else:
            raise CommandError(SYNTAX)
        i += 1
    reverse = bool(reverse)
    if range_type is None:
        range_type = _RANK
    if limit != -1 and range_type == _RANK:
        raise CommandError("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
    if withscores and range_type == _LEX:
        raise CommandError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    min_arg, max_arg = args[key_index + 1], args[key_index + 2]
    if reverse and range_type != _RANK:
        min_arg, max_arg = max_arg, min_arg  # given as max, min
    if range_type == _RANK:
        start, end = parse_int(min_arg), parse_int(max_arg)
    elif range_type == _SCORE:
        low, high = _parse_score_bound(min_arg), _parse_score_bound(max_arg)
    else:
        lex_low, lex_high = _parse_lex_bound(min_arg), _parse_lex_bound(max_arg)
    key = args[key_index]
    z = client.db.lookup_typed(key, ZSet) if store is not None else lookup_read(client, key, ZSet)
    if z is None:
        pairs = []
    elif range_type == _RANK:
        pairs = _rank_slice(z, start, end, reverse)
    elif range_type == _SCORE:
        pairs = _span_slice(z, *_score_span(z, low, high), reverse, offset, limit)
    else:
        span = _lex_span(z, lex_low, lex_high)
        if span is None:
            pairs = _lex_walk(z, lex_low, lex_high, reverse, offset, limit)
        else:
            pairs = _span_slice(z, *span, reverse, offset, limit)
    if store is not None:
        return _store(client, store, pairs)
    return _with_scores(client, pairs, withscores)


@command("zrange", -4, "readonly", keys=(1, 1, 1), group="sorted_set", summary="Returns members in a range.")
def zrange(client: Client, args: list[bytes]) -> list:
    return _zrange_generic(client, args, 1, None, None)


@command("zrangestore", -5, "write denyoom", keys=(1, 2, 1), group="sorted_set", summary="Stores a range.")
def zrangestore(client: Client, args: list[bytes]) -> int:
    return _zrange_generic(client, args, 2, None, None, store=args[1])


@command("zrevrange", -4, "readonly", keys=(1, 1, 1), group="sorted_set", summary="Returns members by rank, reversed.")
def zrevrange(client: Client, args: list[bytes]) -> list:
    return _zrange_generic(client, args, 1, _RANK, True)


@command("zrangebyscore", -4, "readonly", keys=(1, 1, 1), group="sorted_set", summary="Returns members by score.")
def zrangebyscore(client: Client, args: list[bytes]) -> list:
    return _zrange_generic(client, args, 1, _SCORE, False)


@command("zrevrangebyscore", -4, "readonly", keys=(1, 1, 1), group="sorted_set", summary="Members by score, reversed.")
def zrevrangebyscore(client: Client, args: list[bytes]) -> list:
    return _zrange_generic(client, args, 1, _SCORE, True)


@command("zrangebylex", -4, "readonly", keys=(1, 1, 1), group="sorted_set", summary="Returns members by lex range.")
def zrangebylex(client: Client, args: list[bytes]) -> list:
    return _zrange_generic(client, args, 1, _LEX, False)


@command("zrevrangebylex", -4, "readonly", keys=(1, 1, 1), group="sorted_set", summary="Members by lex, reversed.")
def zrevrangebylex(client: Client, args: list[bytes]) -> list:
    return _zrange_generic(client, args, 1, _LEX, True)


# -- removal --------------------------------------------------------------------------


@command("zrem", -3, "write fast", keys=(1, 1, 1), group="sorted_set", summary="Removes members.")
def zrem(client: Client, args: list[bytes]) -> int:
    key = args[1]
    z = _write_zset(client, key)
    if z is None:
        return 0
    removed = 0
    for member in args[2:]:
        if z.remove(member):
            removed += 1
    if removed:
        if not z:
            client.db.delete(key)
        client.node.keyspace.dirty += removed
    return removed


def _remove_span(client: Client, key: bytes, z: ZSet, start: int, end: int) -> int:
    """Remove the elements at indexes [start, end); delete the key if it empties."""
    if start >= end:
        return 0
    sl = z.sorted
    d = z.dict
    for _, member in sl.islice(start, end):
        del d[member]
    del sl[start:end]
    if not d:
        client.db.delete(key)
    client.node.keyspace.dirty += end - start
    return end - start


@command("zremrangebyrank", 4, "write", keys=(1, 1, 1), group="sorted_set", summary="Removes members by rank.")
def zremrangebyrank(client: Client, args: list[bytes]) -> int:
    start, end = parse_int(args[2]), parse_int(args[3])
    z = _write_zset(client, args[1])
    if z is None:
        return 0
    bounds = clamp_range(start, end, len(z))
    if bounds is None:
        return 0
    return _remove_span(client, args[1], z, bounds[0], bounds[1] + 1)


@command("zremrangebyscore", 4, "write", keys=(1, 1, 1), group="sorted_set", summary="Removes members by score.")
def zremrangebyscore(client: Client, args: list[bytes]) -> int:
    low, high = _parse_score_bound(args[2]), _parse_score_bound(args[3])
    z = _write_zset(client, args[1])
    if z is None:
        return 0
    return _remove_span(client, args[1], z, *_score_span(z, low, high))


@command("zremrangebylex", 4, "write", keys=(1, 1, 1), group="sorted_set", summary="Removes members by lex range.")
def zremrangebylex(client: Client, args: list[bytes]) -> int:
    low, high = _parse_lex_bound(args[2]), _parse_lex_bound(args[3])
    z = _write_zset(client, args[1])
    if z is None:
        return 0
    return _remove_span(client, args[1], z, *_lex_forward_span(z, low, high))


def _pop(client: Client, key: bytes, z: ZSet, count: int, from_max: bool) -> list[tuple[float, bytes]]:
    count = min(count, len(z))
    sl = z.sorted
    if from_max:
        pairs = list(sl.islice(len(sl) - count, len(sl), reverse=True))
        del sl[len(sl) - count :]
    else:
        pairs = list(sl.islice(0, count))
        del sl[:count]
    d = z.dict
    for _, member in pairs:
        del d[member]
    if not d:
        client.db.delete(key)
    client.node.keyspace.dirty += len(pairs)  # one change per member, as Redis counts
    return pairs


def _zpop(client: Client, args: list[bytes], from_max: bool) -> list:
    if len(args) > 3:
        raise CommandError(SYNTAX)
    count = 1
    if len(args) == 3:
        count = parse_int(args[2], OUT_OF_RANGE)
        if count < 0:
            raise CommandError(OUT_OF_RANGE)
    key = args[1]
    z = _write_zset(client, key)
    if z is None or count == 0:
        return []
    pairs = _pop(client, key, z, count, from_max)
    if len(args) == 2:
        score, member = pairs[0]
        return [member, score]  # flat even in RESP3
    return _with_scores(client, pairs, True)


@command("zpopmin", -2, "write fast", keys=(1, 1, 1), group="sorted_set", summary="Pops the lowest-scored members.")
def zpopmin(client: Client, args: list[bytes]) -> list:
    return _zpop(client, args, False)


@command("zpopmax", -2, "write fast", keys=(1, 1, 1), group="sorted_set", summary="Pops the highest-scored members.")
def zpopmax(client: Client, args: list[bytes]) -> list:
    return _zpop(client, args, True)


@command(
    "zmpop",
    -4,
    "write",
    keys=(0, 0, 0),
    group="sorted_set",
    summary="Pops members from the first non-empty sorted set.",
    get_keys=get_numkeys_keys(1),
)
def zmpop(client: Client, args: list[bytes]):
    keys, from_min, count = parse_mpop(args, (b"min", b"max"))
    for key in keys:
        z = _write_zset(client, key)
        if z is None:
            continue
        pairs = _pop(client, key, z, count, not from_min)
        return [key, [[m, s] for s, m in pairs]]  # nested pairs in both protocols
    return NULL_ARRAY


@command("zrandmember", -2, "readonly", keys=(1, 1, 1), group="sorted_set", summary="Returns random members.")
def zrandmember(client: Client, args: list[bytes]):
    if len(args) == 2:
        z = lookup_read(client, args[1], ZSet)
        return None if z is None else random_element(z.dict)
    count = parse_random_count(args[2])
    withscores = False
    if len(args) == 4:
        if args[3].lower() != b"withscores":
            raise CommandError(SYNTAX)
        withscores = True
        if not -(_LONG_MAX // 2) <= count <= _LONG_MAX // 2:
            raise CommandError("ERR value is out of range")
    elif len(args) > 4:
        raise CommandError(SYNTAX)
    z = lookup_read(client, args[1], ZSet)
    if z is None or count == 0:
        return []
    if count >= len(z):
        # The whole set, in the order Redis's set-operation iterator walks it: highest first.
        return _with_scores(client, z.sorted.islice(reverse=True), withscores)
    members = random_picks(z.dict, count)
    if not withscores:
        return members
    scores = z.dict
    return _with_scores(client, [(scores[m], m) for m in members], True)


# -- ZUNION / ZINTER / ZDIFF ----------------------------------------------------------

_UNION, _INTER, _DIFF = 0, 1, 2
_SUM, _MIN, _MAX = 0, 1, 2


def _aggregate(target: float, value: float, how: int) -> float:
    if how == _SUM:
        total = target + value
        return 0.0 if total != total else total
    if how == _MIN:
        return value if value < target else target
    return value if value > target else target


def _source_scores(source: Any) -> dict[bytes, float] | set[bytes]:
    return source.dict if source.__class__ is ZSet else source


def _combine(op: int, sources: list[Any], weights: list[float], how: int) -> list[tuple[float, bytes]]:
    """Redis's zunionInterDiffGenericCommand over ZSets and plain sets (score 1); sorted pairs."""
    scored = [(_source_scores(s), w) for s, w in zip(sources, weights, strict=True) if s is not None]
    if op == _DIFF:
        if sources[0] is None:
            return []
        first = scored[0][0]
        others = [s for s, _ in scored[1:]]
        if first.__class__ is dict:
            result = {m: sc for m, sc in first.items() if not any(m in o for o in others)}  # type: ignore[union-attr]
        else:
            result = {m: 1.0 for m in first if not any(m in o for o in others)}
        return sorted((s, m) for m, s in result.items())
    # Like Redis, smallest sources first (this also fixes the order of float additions).
    scored.sort(key=lambda sw: len(sw[0]))
    acc: dict[bytes, float] = {}
    if op == _UNION:
        for src, weight in scored:
            items = src.items() if src.__class__ is dict else ((m, 1.0) for m in src)  # type: ignore[union-attr]
            for member, score in items:
                value = score * weight
                if value != value:
                    value = 0.0
                current = acc.get(member)
                acc[member] = value if current is None else _aggregate(current, value, how)
    else:
        if len(scored) < len(sources) or not scored:
            return []  # a missing key makes the intersection empty
        first, first_weight = scored[0]
        rest = scored[1:]
        items = first.items() if first.__class__ is dict else ((m, 1.0) for m in first)  # type: ignore[union-attr]
        for member, score in items:
            total = score * first_weight
            if total != total:
                total = 0.0
            for src, weight in rest:
                if src.__class__ is dict:
                    other = src.get(member)  # type: ignore[union-attr]
                    if other is None:
                        break
                elif member in src:
                    other = 1.0
                else:
                    break
                total = _aggregate(total, other * weight, how)
            else:
                acc[member] = total
    return sorted((s, m) for m, s in acc.items())


def _parse_combine(
    client: Client, args: list[bytes], numkeys_index: int, op: int, store: bool, card: bool = False
) -> tuple[list[Any], list[float], int, bool, int]:
    """Keys, weights, aggregate, withscores and limit of ZUNION & co (keys are type-checked first)."""
    numkeys = parse_int(args[numkeys_index])
    if numkeys < 1:
        name = args[0].decode("utf-8", "replace").lower()
        raise CommandError(f"ERR at least 1 input key is needed for '{name}' command")
    if numkeys > len(args) - numkeys_index - 1:
        raise CommandError(SYNTAX)
    db = client.db
    sources: list[Any] = []
    for key in args[numkeys_index + 1 : numkeys_index + 1 + numkeys]:
        value = db.lookup(key)
        if value is not None and value.__class__ is not ZSet and value.__class__ is not set:
            raise CommandError(WRONGTYPE)
        sources.append(value)
    weights = [1.0] * numkeys
    how, withscores, limit = _SUM, False, 0
    i, n = numkeys_index + 1 + numkeys, len(args)
    while i < n:
        opt = args[i].lower()
        left = n - i
        if op != _DIFF and not card and left >= numkeys + 1 and opt == b"weights":
            weights = [parse_float(w, "ERR weight value is not a float") for w in args[i + 1 : i + 1 + numkeys]]
            i += 1 + numkeys
        elif op != _DIFF and not card and left >= 2 and opt == b"aggregate":
            word = args[i + 1].lower()
            if word == b"sum":
                how = _SUM
            elif word == b"min":
                how = _MIN
            elif word == b"max":
                how = _MAX
            else:
                raise CommandError(SYNTAX)
            i += 2
        elif not store and not card and opt == b"withscores":
            withscores = True
            i += 1
        elif card and left >= 2 and opt == b"limit":
            limit = parse_card_limit(args[i : i + 2], 0)
            i += 2
        else:
            raise CommandError(SYNTAX)
    return sources, weights, how, withscores, limit


def _combine_command(client: Client, args: list[bytes], op: int) -> list:
    sources, weights, how, withscores, _ = _parse_combine(client, args, 1, op, store=False)
    return _with_scores(client, _combine(op, sources, weights, how), withscores)


def _combine_store(client: Client, args: list[bytes], op: int) -> int:
    sources, weights, how, _, _ = _parse_combine(client, args, 2, op, store=True)
    return _store(client, args[1], _combine(op, sources, weights, how))


def _store(client: Client, dst: bytes, pairs: list[tuple[float, bytes]]) -> int:
    """Store a result (replacing any value and TTL), or delete ``dst`` if it is empty."""
    db = client.db
    if pairs:
        db.set(dst, _build_zset(pairs))
        client.node.keyspace.dirty += 1
    elif db.delete(dst):
        client.node.keyspace.dirty += 1
    return len(pairs)


_numkeys_1 = get_numkeys_keys(1)


@command(
    "zunion", -3, "readonly", keys=(0, 0, 0), group="sorted_set", summary="Unions sorted sets.", get_keys=_numkeys_1
)
def zunion(client: Client, args: list[bytes]) -> list:
    return _combine_command(client, args, _UNION)


@command(
    "zinter", -3, "readonly", keys=(0, 0, 0), group="sorted_set", summary="Intersects sorted sets.", get_keys=_numkeys_1
)
def zinter(client: Client, args: list[bytes]) -> list:
    return _combine_command(client, args, _INTER)


@command(
    "zdiff", -3, "readonly", keys=(0, 0, 0), group="sorted_set", summary="Subtracts sorted sets.", get_keys=_numkeys_1
)
def zdiff(client: Client, args: list[bytes]) -> list:
    return _combine_command(client, args, _DIFF)


@command(
    "zunionstore",
    -4,
    "write denyoom",
    keys=(1, 1, 1),
    group="sorted_set",
    summary="Stores a union of sorted sets.",
    get_keys=get_store_numkeys_keys,
)
def zunionstore(client: Client, args: list[bytes]) -> int:
    return _combine_store(client, args, _UNION)


@command(
    "zinterstore",
    -4,
    "write denyoom",
    keys=(1, 1, 1),
    group="sorted_set",
    summary="Stores an intersection of sorted sets.",
    get_keys=get_store_numkeys_keys,
)
def zinterstore(client: Client, args: list[bytes]) -> int:
    return _combine_store(client, args, _INTER)


@command(
    "zdiffstore",
    -4,
    "write denyoom",
    keys=(1, 1, 1),
    group="sorted_set",
    summary="Stores a difference of sorted sets.",
    get_keys=get_store_numkeys_keys,
)
def zdiffstore(client: Client, args: list[bytes]) -> int:
    return _combine_store(client, args, _DIFF)


@command(
    "zintercard",
    -3,
    "readonly",
    keys=(0, 0, 0),
    group="sorted_set",
    summary="Counts the intersection of sorted sets.",
    get_keys=_numkeys_1,
)
def zintercard(client: Client, args: list[bytes]) -> int:
    sources, _, _, _, limit = _parse_combine(client, args, 1, _INTER, store=False, card=True)
    if any(s is None for s in sources):
        return 0
    members = [_source_scores(s) for s in sources]
    members.sort(key=len)
    count = 0
    for member in members[0]:
        if all(member in other for other in members[1:]):
            count += 1
            if count == limit:
                break
    return count


# -- ZSCAN ------------------------------------------------------------------------------


@command("zscan", -3, "readonly", keys=(1, 1, 1), group="sorted_set", summary="Iterates over members and scores.")
def zscan(client: Client, args: list[bytes]) -> list:
    cursor = parse_cursor(args[2])
    z = lookup_read(client, args[1], ZSet)
    if z is None:
        return [b"0", []]  # like Redis, before the options are even looked at
    count, matcher, _ = parse_scan_options(args, 3)
    scores = z.dict
    # Score order, as Redis returns small (listpack) sorted sets in one go.
    next_cursor, members = scan_collection(z, (m for _, m in z.sorted), cursor, count)
    out: list[bytes] = []
    for member in members:
        score = scores.get(member)
        if score is None or (matcher is not None and not matcher(member)):
            continue
        out.append(member)
        out.append(d2string(score))
    return [b"%d" % next_cursor, out]
