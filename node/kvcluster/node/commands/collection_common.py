"""Helpers shared by the collection families (hashes, lists, sets, sorted sets).

Argument parsing with Redis's exact rules and error wording, read lookups that
keep the keyspace hit/miss statistics, uniform random picks, glob matching for
``MATCH``, and the cursor machinery of HSCAN/SSCAN/ZSCAN.

Not a command family: nothing here registers commands.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import random
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from functools import lru_cache
from itertools import islice
from typing import Any

from kvcluster.common.resp import CommandError
from kvcluster.node.client import Client

NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
SYNTAX = "ERR syntax error"
OUT_OF_RANGE = "ERR value is out of range, must be positive"

_LLONG_MIN = -(1 << 63)
_LLONG_MAX = (1 << 63) - 1


# -- numbers ---------------------------------------------------------------------


def parse_int(arg: bytes, error: str = NOT_INTEGER) -> int:
    """A signed 64-bit integer as Redis's ``string2ll`` accepts it.

    Stricter than ``int()``: no sign ``+``, no spaces, no leading zeros, no ``_``.
    The round trip through ``%d`` checks all of that at C speed.
    """
    try:
        value = int(arg)
    except ValueError:
        raise CommandError(error) from None
    if b"%d" % value != arg or not _LLONG_MIN <= value <= _LLONG_MAX:
        raise CommandError(error)
    return value


_FLOAT_SPELLINGS = frozenset([b"inf", b"infinity", b"+inf", b"+infinity", b"-inf", b"-infinity"])


def _strtod(arg: bytes) -> float | None:
    """``strtod`` over the whole argument, or None when it would stop early.

    Python's float() is close to strtod but also accepts ``_`` separators and
    surrounding whitespace, and lacks hex floats; those differences are fixed here.
    """
    if b"_" in arg:
        return None
    try:
        return float(arg)
    except ValueError:
        pass
    body = arg.lstrip(b"+-")
    if body[:2].lower() == b"0x":
        try:
            value = float.fromhex(arg.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            return None
        return value
    return None


def parse_float(arg: bytes, error: str = NOT_FLOAT) -> float:
    """A double as Redis's ``string2d`` accepts it: the whole string, no NaN, no overflow."""
    if not arg or arg[0] in b" \t\n\r\v\f" or arg[-1] in b" \t\n\r\v\f":
        raise CommandError(error)
    value = _strtod(arg)
    if value is None or value != value:
        raise CommandError(error)
    if math.isinf(value):
        # Overflow (1e999) is an error; only an explicit infinity is accepted.
        if arg.lower() not in _FLOAT_SPELLINGS:
            raise CommandError(error)
    elif value == 0.0 and _has_nonzero_mantissa(arg):
        raise CommandError(error)  # underflow to zero (1e-999): ERANGE in strtod
    return value


def _has_nonzero_mantissa(arg: bytes) -> bool:
    mantissa = arg.lower().split(b"e", 1)[0] if not arg.lower().lstrip(b"+-").startswith(b"0x") else arg[2:]
    return any(48 < c <= 57 for c in mantissa)


def parse_range_float(arg: bytes) -> float | None:
    """A score range bound the way ZRANGEBYSCORE reads it (plain ``strtod``); None if invalid.

    strtod skips leading whitespace and reads an empty string as 0, and Redis
    only checks that it consumed everything and the result is not NaN.
    """
    text = arg.lstrip(b" \t\n\r\v\f")
    if not text:
        return 0.0
    if b"_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = _strtod(text)
        if value is None:
            return None
    if text[-1] in b" \t\n\r\v\f" or value != value:
        return None
    return value


# Redis computes HINCRBYFLOAT (and INCRBYFLOAT) in ``long double`` and prints the
# result with "%.17Lf", trailing zeros removed: 0.1 + 0.2 gives "0.3", not the
# "0.30000000000000004" a double would. libc does the same arithmetic for us.
class _LongDouble(ctypes.c_longdouble):
    """A subclass so ctypes hands results back as objects instead of rounding them to float."""


class _LongDoubleOps:
    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libm = ctypes.CDLL(ctypes.util.find_library("m"))
        self.strtold = libc.strtold
        self.strtold.restype = _LongDouble
        self.strtold.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
        self.fmal = libm.fmal
        self.fmal.restype = _LongDouble
        self.fmal.argtypes = [_LongDouble, _LongDouble, _LongDouble]
        self.ldexpl = libm.ldexpl
        self.ldexpl.restype = _LongDouble
        self.ldexpl.argtypes = [_LongDouble, ctypes.c_int]
        self.snprintf = libc.snprintf
        self.snprintf.restype = ctypes.c_int
        self.one = _LongDouble(1.0)


def _load_long_double_ops() -> _LongDoubleOps | None:
    try:
        return _LongDoubleOps()
    except (OSError, AttributeError, TypeError):
        return None


_LD = _load_long_double_ops()
_MAX_LONG_DOUBLE_CHARS = 5 * 1024
_ERANGE = 34


def parse_long_double(arg: bytes) -> Any:
    """``string2ld``: a long double (a ctypes object; a float without libc) or None if invalid."""
    if not arg or len(arg) >= _MAX_LONG_DOUBLE_CHARS or arg[0] in b" \t\n\r\v\f" or b"\0" in arg:
        return None
    if _LD is None:
        try:
            return parse_float(arg)
        except CommandError:
            return None
    end = ctypes.c_char_p()
    buf = ctypes.create_string_buffer(arg)
    ctypes.set_errno(0)
    value = _LD.strtold(buf, ctypes.byref(end))
    errno = ctypes.get_errno()
    consumed = (ctypes.cast(end, ctypes.c_void_p).value or 0) - ctypes.addressof(buf)
    number = value.value
    if consumed != len(arg) or number != number:
        return None
    # Out of range: overflow to infinity, or underflow to zero (denormals are fine).
    # ldexpl scales a long double denormal up into float range before testing for zero.
    if errno == _ERANGE and (math.isinf(number) or _LD.ldexpl(value, 16382).value == 0.0):
        return None
    return value


def long_double_is_finite(value: Any) -> bool:
    # A long double like 1e400 is finite but has no double value: scale it down first.
    number = float(value) if value.__class__ is float or _LD is None else _LD.ldexpl(value, -16000).value
    return not (math.isinf(number) or number != number)


def add_long_doubles(a: Any, b: Any) -> bytes:
    """``a + b`` printed as Redis prints long doubles for humans; raises if not finite."""
    if _LD is None:
        total = a + b
        if math.isinf(total) or total != total:
            raise CommandError("ERR increment would produce NaN or Infinity")
        text = b"%.17f" % total
    else:
        result = _LD.fmal(a, _LD.one, b)
        if not long_double_is_finite(result):
            raise CommandError("ERR increment would produce NaN or Infinity")
        buf = ctypes.create_string_buffer(_MAX_LONG_DOUBLE_CHARS)
        n = _LD.snprintf(buf, _MAX_LONG_DOUBLE_CHARS, b"%.17Lf", result)
        text = buf.raw[:n]
    if b"." in text:
        text = text.rstrip(b"0").rstrip(b".")
    return b"0" if text == b"-0" else text


# -- lookups ---------------------------------------------------------------------


def lookup_read(client: Client, key: bytes, cls: type) -> Any:
    """``db.lookup_typed`` for read commands, counting keyspace hits and misses like Redis."""
    value = client.db.lookup_typed(key, cls)
    if value is None:
        client.node.stats.keyspace_misses += 1
    else:
        client.node.stats.keyspace_hits += 1
    return value


def get_numkeys_keys(first: int) -> Callable[[list[bytes]], list[int]]:
    """Key positions of ``... numkeys key [key ...]`` with numkeys at ``first``; for COMMAND GETKEYS/WATCH."""

    def positions(args: list[bytes]) -> list[int]:
        try:
            n = int(args[first])
        except (ValueError, IndexError):
            return []
        return list(range(first + 1, min(first + 1 + max(n, 0), len(args))))

    return positions


def get_store_numkeys_keys(args: list[bytes]) -> list[int]:
    """``dest numkeys key [key ...]``: the destination and the sources."""
    return [1, *get_numkeys_keys(2)(args)]


# -- random picks ----------------------------------------------------------------


def random_element(items: Collection) -> Any:
    """One uniformly random element of a dict or set (skipping at C speed)."""
    n = len(items)
    if n == 1:
        return next(iter(items))
    return next(islice(items, random.randrange(n), None))


# -- glob patterns (MATCH) -------------------------------------------------------


@lru_cache(maxsize=256)
def compile_glob(pattern: bytes) -> Callable[[bytes], Any]:
    """A matcher for Redis's glob syntax (``stringmatchlen``): ``* ? [abc] [^a-z] \\x``."""
    out: list[bytes] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 0x2A:  # '*'
            while i + 1 < n and pattern[i + 1] == 0x2A:
                i += 1
            out.append(b".*")
        elif c == 0x3F:  # '?'
            out.append(b".")
        elif c == 0x5B:  # '['
            i += 1
            negate = i < n and pattern[i] == 0x5E
            if negate:
                i += 1
            members: set[int] = set()
            while i < n and pattern[i] != 0x5D:
                if pattern[i] == 0x5C and i + 1 < n:
                    i += 1
                    members.add(pattern[i])
                elif i + 2 < n and pattern[i + 1] == 0x2D:
                    lo, hi = sorted((pattern[i], pattern[i + 2]))
                    members.update(range(lo, hi + 1))
                    i += 2
                else:
                    members.add(pattern[i])
                i += 1
            if i >= n:
                i = n - 1  # unterminated class: what was read is the class (as Redis does)
            if not members:
                out.append(b"." if negate else b"(?!)")
            else:
                chars = b"".join(re.escape(bytes([m])) for m in sorted(members))
                out.append(b"[" + (b"^" if negate else b"") + chars + b"]")
        elif c == 0x5C and i + 1 < n:  # '\x': literal x
            i += 1
            out.append(re.escape(pattern[i : i + 1]))
        else:
            out.append(re.escape(bytes([c])))
        i += 1
    return re.compile(b"".join(out), re.DOTALL).fullmatch


# -- SCAN cursors for collections ------------------------------------------------
#
# Guarantees (the same as Redis's SCAN): a full iteration returns every element
# that was in the collection from its start to its end; an element added or
# removed meanwhile may or may not be returned; an element may come back twice
# only after the fallback below. COUNT is the number of elements looked at per
# call, not a promise of how many come back.
#
# How: a collection of at most max(COUNT, SCAN_ONE_SHOT) elements is returned
# whole at cursor 0 (as Redis does for its compact encodings). A larger one is
# walked over a snapshot of its element list taken at cursor 0, so deletions and
# insertions during the scan cannot shift positions; each call checks the
# snapshot's elements still exist. The cursor packs the snapshot id and the
# position. Snapshots are kept in a bounded LRU table and dropped when a scan
# ends; if a client comes back with a cursor whose snapshot is gone (evicted,
# server restarted, another node after a failover), the scan goes on from the
# same position of a fresh snapshot, best effort (may skip or repeat elements).

SCAN_ONE_SHOT = 128
_CURSOR_SHIFT = 32
_POS_MASK = (1 << _CURSOR_SHIFT) - 1
_MAX_SNAPSHOTS = 64
_MAX_SNAPSHOT_ELEMENTS = 8_000_000
_SNAPSHOT_IDLE_SECONDS = 600.0


class _Snapshot:
    __slots__ = ("elements", "source", "used")

    def __init__(self, source: Any, elements: list[Any]) -> None:
        self.source = source
        self.elements = elements
        self.used = time.monotonic()


class _SnapshotTable:
    def __init__(self) -> None:
        self.snapshots: OrderedDict[int, _Snapshot] = OrderedDict()
        self.total = 0
        self.next_id = 1

    def get(self, snap_id: int, source: Any) -> _Snapshot | None:
        snap = self.snapshots.get(snap_id)
        if snap is None or snap.source is not source:
            return None
        self.snapshots.move_to_end(snap_id)
        snap.used = time.monotonic()
        return snap

    def new(self, source: Any, elements: list[Any]) -> int:
        now = time.monotonic()
        while self.snapshots and (
            len(self.snapshots) >= _MAX_SNAPSHOTS
            or self.total + len(elements) > _MAX_SNAPSHOT_ELEMENTS
            or now - next(iter(self.snapshots.values())).used > _SNAPSHOT_IDLE_SECONDS
        ):
            _, old = self.snapshots.popitem(last=False)
            self.total -= len(old.elements)
        snap_id = self.next_id
        # Ids stay below 2**31 so cursors fit in a signed 64-bit integer for every client.
        self.next_id = snap_id % ((1 << 31) - 1) + 1
        self.snapshots[snap_id] = _Snapshot(source, elements)
        self.total += len(elements)
        return snap_id

    def drop(self, snap_id: int) -> None:
        snap = self.snapshots.pop(snap_id, None)
        if snap is not None:
            self.total -= len(snap.elements)


_SNAPSHOTS = _SnapshotTable()


def parse_cursor(arg: bytes) -> int:
    # Redis reads the cursor with strtoul: an unsigned 64-bit decimal with an optional sign
    # ("-1" wraps around to 2**64 - 1), "" reads as 0, a NUL byte ends the C string; no
    # leading space, nothing after the digits, no overflow.
    if arg[:1].isspace():
        raise CommandError("ERR invalid cursor")
    text = arg.split(b"\0", 1)[0]
    digits = text[1:] if text[:1] in (b"+", b"-") else text
    if not digits.isdigit():
        if text:
            raise CommandError("ERR invalid cursor")
        return 0
    digits = digits.lstrip(b"0") or b"0"
    if len(digits) > 20 or int(digits) >= 1 << 64:
        raise CommandError("ERR invalid cursor")
    value = int(digits)
    return (-value) % (1 << 64) if text[:1] == b"-" else value


def parse_scan_options(args: list[bytes], start: int, allow_novalues: bool = False) -> tuple[int, Any, bool]:
    """``[MATCH pattern] [COUNT count] [NOVALUES]`` -> (count, matcher or None, novalues)."""
    count = 10
    matcher = None
    novalues = False
    i, n = start, len(args)
    while i < n:
        opt = args[i].lower()
        if opt == b"count" and i + 1 < n:
            count = parse_int(args[i + 1])
            if count < 1:
                raise CommandError(SYNTAX)
            i += 2
        elif opt == b"match" and i + 1 < n:
            pattern = args[i + 1]
            matcher = None if pattern == b"*" else compile_glob(pattern)
            i += 2
        elif opt == b"novalues" and allow_novalues:
            novalues = True
            i += 1
        else:
            raise CommandError(SYNTAX)
    return count, matcher, novalues


def scan_collection(source: Any, keys: Iterable[Any], cursor: int, count: int) -> tuple[int, list[Any]]:
    """One step of a collection scan: (next cursor, elements to look at).

    ``source`` is the collection (its identity ties the snapshot to it), ``keys``
    what to iterate (the dict/set itself). Returned elements were in the
    snapshot; the caller must skip those no longer present.
    """
    size = len(source)
    small = size <= max(count, SCAN_ONE_SHOT)
    if cursor == 0 and small:
        return 0, list(keys)
    snap_id, pos = cursor >> _CURSOR_SHIFT, cursor & _POS_MASK
    snap = _SNAPSHOTS.get(snap_id, source) if cursor else None
    if snap is None:
        if small:
            # An unknown cursor on a small collection: all of it, as Redis answers any
            # cursor for its compact encodings.
            return 0, list(keys)
        elements = list(keys)
        snap_id = _SNAPSHOTS.new(source, elements)
    else:
        elements = snap.elements
    end = pos + count
    batch = elements[pos:end]
    if end >= len(elements):
        _SNAPSHOTS.drop(snap_id)
        return 0, batch
    return (snap_id << _CURSOR_SHIFT) | end, batch
