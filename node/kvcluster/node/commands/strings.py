"""String commands: GET, SET and friends, as Redis 7's ``t_string.c`` does them.

Replies, error wording and the order in which arguments are checked follow
Redis exactly, because clients and tests compare them byte for byte. Three
details carry most of the subtlety:

* Integers are parsed with :func:`string2ll`, Redis's strict parser: no
  spaces, no ``+``, no leading zeros, signed 64-bit range.
* INCRBYFLOAT computes in x87 80-bit ``long double`` (what Redis uses on
  x86-64) and prints with ``%.17Lf``; plain Python floats would answer
  ``10.59999999999999964`` where Redis answers ``10.6``. :class:`_LongDouble`
  emulates that arithmetic exactly with integers.
* Keyspace hits/misses are counted only by read lookups (GET, MGET, GETRANGE,
  STRLEN, LCS and the GET part of GETSET/GETDEL/GETEX/SET ... GET), never by
  the lookups of writes such as INCR or APPEND -- as Redis counts them.

GET and ``SET key value`` are the hottest paths of the server: keep them short.
"""

from __future__ import annotations

import re
from fractions import Fraction

from kvcluster.common.resp import OK, CommandError
from kvcluster.node.client import Client
from kvcluster.node.commands.table import command
from kvcluster.node.keyspace import WRONGTYPE

LLONG_MAX = (1 << 63) - 1
LLONG_MIN = -(1 << 63)

NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
SYNTAX_ERROR = "ERR syntax error"
OVERFLOW = "ERR increment or decrement would overflow"
TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"


# ---------------------------------------------------------------------------
# Integer parsing
# ---------------------------------------------------------------------------


def string2ll(s: bytes) -> int | None:
    """Redis's ``string2ll``: the integer ``s`` spells exactly, or None.

    Accepts ``0``, ``[1-9][0-9]*`` and ``-[1-9][0-9]*`` within the signed 64-bit
    range and fewer than 21 bytes; rejects spaces, ``+``, leading zeros and ``-0``.
    """
    n = len(s)
    if n < 21:
        if s.isdigit():  # bytes.isdigit: ASCII digits only, False when empty
            if s[0] != 48 or n == 1:
                value = int(s)
                if value <= LLONG_MAX:
                    return value
        elif n > 1 and s[0] == 45 and s[1] != 48 and s[1:].isdigit():
            value = int(s)
            if value >= LLONG_MIN:
                return value
    return None


def parse_int(arg: bytes) -> int:
    """An integer argument, or the error reply Redis gives for a bad one."""
    value = string2ll(arg)
    if value is None:
        raise CommandError(NOT_INTEGER)
    return value


# ---------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------


def _read_string(client: Client, key: bytes) -> bytes | None:
    """A read lookup of a string (counts a hit or a miss); WRONGTYPE for other types."""
    value = client.db.lookup(key)
    stats = client.node.stats
    if value is None:
        stats.keyspace_misses += 1
        return None
    stats.keyspace_hits += 1
    if value.__class__ is not bytes:
        raise CommandError(WRONGTYPE)
    return value


def _write_lookup_string(client: Client, key: bytes) -> bytes | None:
    """A write lookup (no hit/miss stats, like Redis's lookupKeyWrite); WRONGTYPE for other types."""
    value = client.db.lookup(key)
    if value is not None and value.__class__ is not bytes:
        raise CommandError(WRONGTYPE)
    return value


def _check_string_length(client: Client, size: int, append: int) -> None:
    # The leader's stream is obeyed whatever our limit (Redis's mustObeyClient).
    if size + append > client.node.config["proto-max-bulk-len"] and client.kind != "master":
        raise CommandError(TOO_BIG)


# Option bits of SET and GETEX (Redis's OBJ_SET_NX, OBJ_EX, ...).
_NX = 1
_XX = 2
_GET = 4
_KEEPTTL = 8
_PERSIST = 16
_EX = 32
_PX = 64
_EXAT = 128
_PXAT = 256
_ANY_EXPIRE = _EX | _PX | _EXAT | _PXAT
_OPTION_BITS = {
    b"NX": _NX,
    b"XX": _XX,
    b"GET": _GET,
    b"KEEPTTL": _KEEPTTL,
    b"PERSIST": _PERSIST,
    b"EX": _EX,
    b"PX": _PX,
    b"EXAT": _EXAT,
    b"PXAT": _PXAT,
}


def _parse_extended_options(args: list[bytes], first: int, for_set: bool) -> tuple[int, bytes | None]:
    """Parse SET (``for_set``) or GETEX options from ``args[first:]``: (flag bits, expire argument).

    Mirrors Redis's parseExtendedStringArgumentsOrReply: every conflicting or unknown
    option is a syntax error, but repeating one (``EX 1 EX 2``, ``NX NX``) is allowed.
    """
    flags = 0
    expire: bytes | None = None
    n = len(args)
    j = first
    while j < n:
        arg = args[j]
        bit = _OPTION_BITS.get(arg.upper()) if len(arg) <= 7 else None
        if bit is None:
            raise CommandError(SYNTAX_ERROR)
        if bit & _ANY_EXPIRE:
            # Another expire kind, KEEPTTL/PERSIST, or no value after it: syntax error.
            if flags & (_KEEPTTL | _PERSIST | (_ANY_EXPIRE & ~bit)) or j + 1 >= n:
                raise CommandError(SYNTAX_ERROR)
            j += 1
            expire = args[j]
        elif bit == _NX:
            if not for_set or flags & _XX:
                raise CommandError(SYNTAX_ERROR)
        elif bit == _XX:
            if not for_set or flags & _NX:
                raise CommandError(SYNTAX_ERROR)
        elif bit == _GET:
            if not for_set:
                raise CommandError(SYNTAX_ERROR)
        elif bit == _KEEPTTL:
            if not for_set or flags & (_PERSIST | _ANY_EXPIRE):
                raise CommandError(SYNTAX_ERROR)
        elif for_set or flags & (_ANY_EXPIRE | _KEEPTTL):  # PERSIST: GETEX only
            raise CommandError(SYNTAX_ERROR)
        flags |= bit
        j += 1
    return flags, expire


def _expire_at_ms(client: Client, flags: int, expire: bytes, command_name: str) -> int:
    """The absolute unix-ms expiry an EX/PX/EXAT/PXAT argument asks for (getExpireMillisecondsOrReply)."""
    ms = parse_int(expire)
    in_seconds = flags & (_EX | _EXAT)
    # Redis refuses what would overflow a signed 64-bit millisecond time.
    if ms <= 0 or (in_seconds and ms > LLONG_MAX // 1000):
        raise CommandError(f"ERR invalid expire time in '{command_name}' command")
    if in_seconds:
        ms *= 1000
    if flags & (_EX | _PX):
        ms += client.node.keyspace.clock_ms()
        if ms > LLONG_MAX:
            raise CommandError(f"ERR invalid expire time in '{command_name}' command")
    return ms


def _set_generic(
    client: Client,
    flags: int,
    key: bytes,
    value: bytes,
    expire: bytes | None,
    command_name: str,
    ok_reply: object = OK,
    abort_reply: object = None,
) -> object:
    """SET with options (and SETNX/SETEX/PSETEX), in Redis's order of checks."""
    when = _expire_at_ms(client, flags, expire, command_name) if expire is not None else 0
    old = _read_string(client, key) if flags & _GET else None
    db = client.db
    # Always look up: it expires a stale key first, so KEEPTTL never keeps a dead TTL.
    found = db.lookup(key) is not None
    if (flags & _NX and found) or (flags & _XX and not found):
        return old if flags & _GET else abort_reply
    db.set(key, value, keep_ttl=bool(flags & _KEEPTTL))
    if expire is not None:
        # A time already past is stored as is: the key is expired on its next access, as in Redis 7.0.
        db.set_expire(key, when)
        # Replicas get the absolute time (as Redis 7 propagates it), not a TTL they would restart.
        client.node.replicate_as([b"SET", key, value, b"PXAT", b"%d" % when])
    client.node.keyspace.dirty += 1
    return old if flags & _GET else ok_reply


# ---------------------------------------------------------------------------
# GET / SET family
# ---------------------------------------------------------------------------


@command("get", 2, "readonly fast", keys=(1, 1, 1), group="string", summary="Get the value of a key", complexity="O(1)")
def get(client: Client, args: list[bytes]) -> bytes | None:
    value = client.db.lookup(args[1])
    stats = client.node.stats
    if value is None:
        stats.keyspace_misses += 1
        return None
    stats.keyspace_hits += 1
    if value.__class__ is not bytes:
        raise CommandError(WRONGTYPE)
    return value


@command(
    "set",
    -3,
    "write denyoom",
    keys=(1, 1, 1),
    group="string",
    summary="Set the string value of a key",
    complexity="O(1)",
)
def set_(client: Client, args: list[bytes]) -> object:
    if len(args) == 3:
        db = client.db
        key = args[1]
        if db.expires and key in db.expires:
            db.lookup(key)  # expire a stale key first, so it is counted and propagated as expired
        db.set(key, args[2])
        client.node.keyspace.dirty += 1
        return OK
    flags, expire = _parse_extended_options(args, 3, for_set=True)
    return _set_generic(client, flags, args[1], args[2], expire, "set")


@command(
    "setnx",
    3,
    "write denyoom fast",
    keys=(1, 1, 1),
    group="string",
    summary="Set the value of a key, only if the key does not exist",
    complexity="O(1)",
)
def setnx(client: Client, args: list[bytes]) -> object:
    return _set_generic(client, _NX, args[1], args[2], None, "setnx", 1, 0)


@command(
    "setex",
    4,
    "write denyoom",
    keys=(1, 1, 1),
    group="string",
    summary="Set the value and expiration of a key",
    since="2.0.0",
    complexity="O(1)",
)
def setex(client: Client, args: list[bytes]) -> object:
    return _set_generic(client, _EX, args[1], args[3], args[2], "setex")


@command(
    "psetex",
    4,
    "write denyoom",
    keys=(1, 1, 1),
    group="string",
    summary="Set the value and expiration in milliseconds of a key",
    since="2.6.0",
    complexity="O(1)",
)
def psetex(client: Client, args: list[bytes]) -> object:
    return _set_generic(client, _PX, args[1], args[3], args[2], "psetex")


@command(
    "getset",
    3,
    "write denyoom fast",
    keys=(1, 1, 1),
    group="string",
    summary="Set the string value of a key and return its old value",
    complexity="O(1)",
)
def getset(client: Client, args: list[bytes]) -> bytes | None:
    old = _read_string(client, args[1])
    client.db.set(args[1], args[2])
    client.node.keyspace.dirty += 1
    return old


@command(
    "getdel",
    2,
    "write fast",
    keys=(1, 1, 1),
    group="string",
    summary="Get the value of a key and delete the key",
    since="6.2.0",
    complexity="O(1)",
)
def getdel(client: Client, args: list[bytes]) -> bytes | None:
    old = _read_string(client, args[1])
    if old is not None:
        client.db.delete(args[1])
        client.node.keyspace.dirty += 1
    return old


@command(
    "getex",
    -2,
    "write fast",
    keys=(1, 1, 1),
    group="string",
    summary="Get the value of a key and optionally set its expiration",
    since="6.2.0",
    complexity="O(1)",
)
def getex(client: Client, args: list[bytes]) -> bytes | None:
    # Redis's order: options, then the key (a missing key ignores the expire value), then the expire value.
    flags, expire = _parse_extended_options(args, 2, for_set=False)
    key = args[1]
    value = _read_string(client, key)
    if value is None:
        return None
    db = client.db
    ks = client.node.keyspace
    if expire is not None:
        when = _expire_at_ms(client, flags, expire, "getex")
        if flags & (_EXAT | _PXAT) and when <= ks.clock_ms() and not ks.is_replica:
            # An absolute time already past deletes the key now (checkAlreadyExpired).
            db.delete(key)
            client.node.replicate_as([b"DEL", key])
        else:
            db.set_expire(key, when)
            client.node.replicate_as([b"PEXPIREAT", key, b"%d" % when])
        ks.dirty += 1
    elif flags & _PERSIST and db.persist(key):
        client.node.replicate_as([b"PERSIST", key])
        ks.dirty += 1
    return value


@command(
    "mget",
    -2,
    "readonly fast",
    keys=(1, -1, 1),
    group="string",
    summary="Get the values of all the given keys",
    complexity="O(N) where N is the number of keys to retrieve.",
)
def mget(client: Client, args: list[bytes]) -> list[bytes | None]:
    lookup = client.db.lookup
    values: list[bytes | None] = []
    misses = 0
    for key in args[1:]:
        value = lookup(key)
        if value is None:
            misses += 1
        elif value.__class__ is not bytes:
            value = None  # MGET answers nil for keys of other types, it does not fail
        values.append(value)
    stats = client.node.stats
    stats.keyspace_misses += misses
    stats.keyspace_hits += len(values) - misses
    return values


def _check_pairs(args: list[bytes], command_name: str) -> None:
    if len(args) % 2 == 0:
        raise CommandError(f"ERR wrong number of arguments for '{command_name}' command")


def _mset_all(client: Client, args: list[bytes]) -> None:
    db = client.db
    for i in range(1, len(args), 2):
        db.set(args[i], args[i + 1])
    client.node.keyspace.dirty += (len(args) - 1) // 2


@command(
    "mset",
    -3,
    "write denyoom",
    keys=(1, -1, 2),
    group="string",
    summary="Set multiple keys to multiple values",
    since="1.0.1",
    complexity="O(N) where N is the number of keys to set.",
)
def mset(client: Client, args: list[bytes]) -> object:
    _check_pairs(args, "mset")
    _mset_all(client, args)
    return OK


@command(
    "msetnx",
    -3,
    "write denyoom",
    keys=(1, -1, 2),
    group="string",
    summary="Set multiple keys to multiple values, only if none of the keys exist",
    since="1.0.1",
    complexity="O(N) where N is the number of keys to set.",
)
def msetnx(client: Client, args: list[bytes]) -> int:
    _check_pairs(args, "msetnx")
    lookup = client.db.lookup
    for i in range(1, len(args), 2):
        if lookup(args[i]) is not None:
            return 0
    _mset_all(client, args)
    return 1


# ---------------------------------------------------------------------------
# Byte-range commands
# ---------------------------------------------------------------------------


@command(
    "append",
    3,
    "write denyoom fast",
    keys=(1, 1, 1),
    group="string",
    summary="Append a value to a key",
    since="2.0.0",
    complexity="O(1). The amortized time complexity is O(1) assuming the appended value is small and the already "
    "present value is of any size, since the dynamic string library used by Redis will double the free space "
    "available on every reallocation.",
)
def append(client: Client, args: list[bytes]) -> int:
    key, suffix = args[1], args[2]
    old = _write_lookup_string(client, key)
    db = client.db
    if old is None:
        db.set(key, suffix)  # even an empty suffix creates the key, as in Redis
        total = len(suffix)
    else:
        _check_string_length(client, len(old), len(suffix))
        db.set(key, old + suffix, keep_ttl=True)
        total = len(old) + len(suffix)
    client.node.keyspace.dirty += 1
    return total


@command(
    "strlen",
    2,
    "readonly fast",
    keys=(1, 1, 1),
    group="string",
    summary="Get the length of the value stored in a key",
    since="2.2.0",
    complexity="O(1)",
)
def strlen(client: Client, args: list[bytes]) -> int:
    value = _read_string(client, args[1])
    return 0 if value is None else len(value)


_RANGE_COMPLEXITY = (
    "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned "
    "length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for "
    "small strings."
)


def _getrange(client: Client, args: list[bytes]) -> bytes:
    start = parse_int(args[2])
    end = parse_int(args[3])
    value = _read_string(client, args[1])
    if value is None:
        return b""
    # Redis's index arithmetic, quirks included (GETRANGE k 0 -100 on "hello" is "h").
    if start < 0 and end < 0 and start > end:
        return b""
    n = len(value)
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = max(n + end, 0)
    if end >= n:
        end = n - 1
    if start > end or n == 0:
        return b""
    return value[start : end + 1]


@command(
    "getrange",
    4,
    "readonly",
    keys=(1, 1, 1),
    group="string",
    summary="Get a substring of the string stored at a key",
    since="2.4.0",
    complexity=_RANGE_COMPLEXITY,
)
def getrange(client: Client, args: list[bytes]) -> bytes:
    return _getrange(client, args)


@command(
    "substr",
    4,
    "readonly",
    keys=(1, 1, 1),
    group="string",
    summary="Get a substring of the string stored at a key",
    complexity=_RANGE_COMPLEXITY,
)
def substr(client: Client, args: list[bytes]) -> bytes:
    return _getrange(client, args)


@command(
    "setrange",
    4,
    "write denyoom",
    keys=(1, 1, 1),
    group="string",
    summary="Overwrite part of a string at key starting at the specified offset",
    since="2.2.0",
    complexity="O(1), not counting the time taken to copy the new string in place. Usually, this string is very "
    "small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value "
    "argument.",
)
def setrange(client: Client, args: list[bytes]) -> int:
    key, patch = args[1], args[3]
    offset = parse_int(args[2])
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    old = _write_lookup_string(client, key)
    if old is None:
        if not patch:
            return 0  # setting nothing on a missing key creates nothing
        _check_string_length(client, offset, len(patch))
        new = bytes(offset) + patch
    else:
        if not patch:
            return len(old)
        _check_string_length(client, offset, len(patch))
        if offset > len(old):
            new = old + bytes(offset - len(old)) + patch
        else:
            new = old[:offset] + patch + old[offset + len(patch) :]
    client.db.set(key, new, keep_ttl=True)
    client.node.keyspace.dirty += 1
    return len(new)


# ---------------------------------------------------------------------------
# Counters
# ---------------------------------------------------------------------------


def _incr_by(client: Client, key: bytes, increment: int) -> int:
    db = client.db
    old = db.lookup(key)
    if old is None:
        value = increment
    else:
        if old.__class__ is not bytes:
            raise CommandError(WRONGTYPE)
        current = string2ll(old)
        if current is None:
            raise CommandError(NOT_INTEGER)
        value = current + increment
        if value > LLONG_MAX or value < LLONG_MIN:
            raise CommandError(OVERFLOW)
    db.set(key, b"%d" % value, keep_ttl=True)
    client.node.keyspace.dirty += 1
    return value


@command(
    "incr",
    2,
    "write denyoom fast",
    summary="Increment the integer value of a key by one",
    keys=(1, 1, 1),
    group="string",
    complexity="O(1)",
)
def incr(client: Client, args: list[bytes]) -> int:
    return _incr_by(client, args[1], 1)


@command(
    "decr",
    2,
    "write denyoom fast",
    summary="Decrement the integer value of a key by one",
    keys=(1, 1, 1),
    group="string",
    complexity="O(1)",
)
def decr(client: Client, args: list[bytes]) -> int:
    return _incr_by(client, args[1], -1)


@command(
    "incrby",
    3,
    "write denyoom fast",
    summary="Increment the integer value of a key by the given amount",
    keys=(1, 1, 1),
    group="string",
    complexity="O(1)",
)
def incrby(client: Client, args: list[bytes]) -> int:
    return _incr_by(client, args[1], parse_int(args[2]))


@command(
    "decrby",
    3,
    "write denyoom fast",
    summary="Decrement the integer value of a key by the given number",
    keys=(1, 1, 1),
    group="string",
    complexity="O(1)",
)
def decrby(client: Client, args: list[bytes]) -> int:
    decrement = parse_int(args[2])
    if decrement == LLONG_MIN:  # its negation does not fit in 64 bits
        raise CommandError("ERR decrement would overflow")
    return _incr_by(client, args[1], -decrement)


# -- INCRBYFLOAT: x87 80-bit long double arithmetic, emulated exactly -----------

# Significand bits, exponent of the smallest subnormal's unit, and the largest finite value.
_LD_BITS = 64
_LD_MIN_UNIT_EXP = -16445
_LD_MAX = ((1 << 64) - 1) << (16384 - 64)
# Redis's MAX_LONG_DOUBLE_CHARS: longer inputs are refused.
_LD_MAX_CHARS = 5 * 1024
_DECIMAL = re.compile(rb"([+-]?)(?:([0-9]+)(?:\.([0-9]*))?|\.([0-9]+))(?:[eE]([+-]?[0-9]+))?")
_HEX = re.compile(rb"([+-]?)0[xX](?:([0-9a-fA-F]+)(?:\.([0-9a-fA-F]*))?|\.([0-9a-fA-F]+))(?:[pP]([+-]?[0-9]+))?")
_INFINITY = re.compile(rb"[+-]?(?:inf|infinity)", re.IGNORECASE)


class _Overflow(Exception):
    """The value is beyond the long double range (strtold's HUGE_VALL, or an infinite sum)."""


def _round_long_double(value: Fraction) -> Fraction:
    """``value`` rounded to the nearest long double (ties to even); _Overflow if past the largest."""
    if not value:
        return value
    num, den = abs(value.numerator), value.denominator
    # floor(log2(num/den)), then the exponent of the unit in the last place of a 64-bit significand.
    log2 = num.bit_length() - den.bit_length()
    if (num << max(0, -log2)) < (den << max(0, log2)):
        log2 -= 1
    unit_exp = max(log2 - (_LD_BITS - 1), _LD_MIN_UNIT_EXP)
    if unit_exp >= 0:
        significand, rest = divmod(num, den << unit_exp)
        twice_rest, divisor = rest * 2, den << unit_exp
    else:
        significand, rest = divmod(num << -unit_exp, den)
        twice_rest, divisor = rest * 2, den
    if twice_rest > divisor or (twice_rest == divisor and significand & 1):
        significand += 1
    if unit_exp >= 0:
        if significand << unit_exp > _LD_MAX:
            raise _Overflow
        magnitude = Fraction(significand << unit_exp)
    else:
        magnitude = Fraction(significand, 1 << -unit_exp)
    return -magnitude if value < 0 else magnitude


def _digits_to_int(digits: bytes) -> int:
    # int() refuses more than 4300 decimal digits; Redis accepts up to 5119 characters.
    value = 0
    for i in range(0, len(digits), 4000):
        chunk = digits[i : i + 4000]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _int_to_digits(value: int) -> str:
    # str() refuses more than 4300 digits; a long double can have 4933 integer digits.
    if value < 10**4000:
        return str(value)
    high, low = divmod(value, 10**4000)
    return _int_to_digits(high) + str(low).zfill(4000)


def _exponent(text: bytes | None) -> int:
    if not text:
        return 0
    if len(text.lstrip(b"+-").lstrip(b"0")) > 9:
        # Absurd exponents over- or underflow anyway; clamp them before any 10**exp.
        return -(10**9) if text[:1] == b"-" else 10**9
    return int(text)


def parse_long_double(text: bytes) -> Fraction | float | None:
    """Redis's ``string2ld`` (strtold on the whole string): an exact value, ±inf, or None if invalid.

    Finite values come back as the exact Fraction of the nearest long double.
    """
    if not text or len(text) >= _LD_MAX_CHARS:
        return None
    match = _DECIMAL.fullmatch(text)
    if match is not None:
        sign, whole, fraction, only_fraction, exp_text = match.groups()
        digits = (whole or b"") + (fraction or only_fraction or b"")
        exp = _exponent(exp_text) - len(fraction or only_fraction or b"")
        digits = digits.lstrip(b"0")
        if not digits:
            return Fraction(0)
        magnitude10 = exp + len(digits)  # 10**(magnitude10-1) <= value < 10**magnitude10
        if magnitude10 > 4934:
            return None  # overflow: strtold says ERANGE with HUGE_VALL
        if magnitude10 < -4952:
            return None  # underflow to zero: ERANGE with 0
        mantissa = _digits_to_int(digits)
        exact = Fraction(mantissa * 10**exp) if exp >= 0 else Fraction(mantissa, 10**-exp)
        binary_exp = 0
    else:
        match = _HEX.fullmatch(text)
        if match is None:
            if _INFINITY.fullmatch(text):
                return float("-inf") if text[:1] == b"-" else float("inf")
            return None  # includes NaN, which Redis refuses too
        sign, whole, fraction, only_fraction, exp_text = match.groups()
        hex_fraction = fraction or only_fraction or b""
        mantissa = int((whole or b"") + hex_fraction, 16)
        if not mantissa:
            return Fraction(0)
        binary_exp = _exponent(exp_text) - 4 * len(hex_fraction)
        magnitude2 = mantissa.bit_length() + binary_exp
        if magnitude2 > 16400:
            return None
        if magnitude2 < _LD_MIN_UNIT_EXP - 2:
            return None
        exact = Fraction(mantissa << binary_exp) if binary_exp >= 0 else Fraction(mantissa, 1 << -binary_exp)
    if sign == b"-":
        exact = -exact
    try:
        value = _round_long_double(exact)
    except _Overflow:
        return None
    if not value:
        return None  # a nonzero input that underflows to zero: ERANGE
    return value


def format_long_double(value: Fraction) -> bytes:
    """``%.17Lf`` without trailing zeros, ``-0`` as ``0``: Redis's LD_STR_HUMAN."""
    scaled = round(abs(value) * 10**17)  # round() on a Fraction is half-to-even, like glibc's printf
    whole, fraction = divmod(scaled, 10**17)
    text = _int_to_digits(whole)
    if fraction:
        text += "." + str(fraction).zfill(17).rstrip("0")
    if value < 0 and text != "0":
        text = "-" + text
    return text.encode()


@command(
    "incrbyfloat",
    3,
    "write denyoom fast",
    summary="Increment the float value of a key by the given amount",
    since="2.6.0",
    keys=(1, 1, 1),
    group="string",
    complexity="O(1)",
)
def incrbyfloat(client: Client, args: list[bytes]) -> bytes:
    key = args[1]
    old = _write_lookup_string(client, key)
    current = Fraction(0) if old is None else parse_long_double(old)
    if current is None:
        raise CommandError(NOT_FLOAT)
    increment = parse_long_double(args[2])
    if increment is None:
        raise CommandError(NOT_FLOAT)
    if isinstance(current, float) or isinstance(increment, float):
        raise CommandError("ERR increment would produce NaN or Infinity")
    try:
        total = _round_long_double(current + increment)
    except _Overflow:
        raise CommandError("ERR increment would produce NaN or Infinity") from None
    text = format_long_double(total)
    client.db.set(key, text, keep_ttl=True)
    client.node.keyspace.dirty += 1
    # Replicated as the value it produced: replicas must not redo the float arithmetic.
    client.node.replicate_as([b"SET", key, text, b"KEEPTTL"])
    return text  # a bulk string in RESP3 too, as in Redis


# ---------------------------------------------------------------------------
# LCS
# ---------------------------------------------------------------------------


def _match_masks(a: bytes, b: bytes) -> dict[int, int]:
    """For each byte of ``a``: an int whose bit p is set where b[p] is that byte."""
    reversed_b = b[::-1]  # bit 0 is b[0]: the last digit of the binary string
    masks: dict[int, int] = {}
    for c in set(a):
        table = bytearray(b"0" * 256)
        table[c] = 0x31  # "1"
        masks[c] = int(reversed_b.translate(table), 2)
    return masks


def _lcs_rows(a: bytes, b: bytes, masks: dict[int, int], keep_rows: bool) -> list[int]:
    """Bit-parallel LCS table (Allison-Dix / Hyyro): one int per prefix of ``a``.

    Bit p of row i is 0 exactly when LCS(a[:i], b[:p+1]) = LCS(a[:i], b[:p]) + 1, so
    LCS(a[:i], b[:j]) = j - popcount(row_i & (2**j - 1)). That is the whole DP table
    in len(a) * len(b) / 8 bytes, computed with big-int operations instead of a
    Python loop per cell. Returns every row if ``keep_rows``, else only the last.
    """
    full = (1 << len(b)) - 1
    row = full
    rows = [row]
    for c in a:
        matched = row & masks[c]
        row = ((row + matched) | (row - matched)) & full
        if keep_rows:
            rows.append(row)
    return rows if keep_rows else [row]


def lcs(
    a: bytes, b: bytes, want_string: bool, want_ranges: bool, min_match_len: int, with_match_len: bool
) -> tuple[int, bytes | None, list[list]]:
    """(lcs length, lcs string or None, ranges) exactly as Redis's lcsCommand walks its table back."""
    if not a or not b:
        return 0, b"", []
    if not want_string and not want_ranges:
        short, long_ = (a, b) if len(a) <= len(b) else (b, a)  # the length is symmetric
        return len(long_) - _lcs_rows(short, long_, _match_masks(short, long_), False)[0].bit_count(), None, []
    alen, blen = len(a), len(b)
    matches = _match_masks(a, b)
    rows = _lcs_rows(a, b, matches, True)
    length = blen - rows[alen].bit_count()
    full = (1 << blen) - 1
    out = bytearray(length)
    idx = length
    ranges: list[list] = []
    # The current range of contiguous matches; arange_start == alen means "none".
    arange_start, arange_end, brange_start, brange_end = alen, 0, 0, 0
    i, j = alen, blen
    while i > 0 and j > 0:
        emit = False
        ca = a[i - 1]
        if ca == b[j - 1]:
            out[idx - 1] = ca
            if arange_start == alen:
                arange_start = arange_end = i - 1
                brange_start = brange_end = j - 1
            elif arange_start == i and brange_start == j:
                arange_start -= 1
                brange_start -= 1
            else:
                emit = True
            if arange_start == 0 or brange_start == 0:
                emit = True
            idx -= 1
            i -= 1
            j -= 1
        else:
            row = rows[i]
            if not (row >> (j - 1)) & 1:
                # LCS(i, j-1) < LCS(i, j), so LCS(i-1, j) is the larger: Redis moves up.
                i -= 1
            else:
                # Redis moves left until a match or a column where moving up wins; jump there at once.
                stops = (matches[ca] | (~row & full)) & ((1 << (j - 1)) - 1)
                j = stops.bit_length()
            if arange_start != alen:
                emit = True
        if emit:
            match_len = arange_end - arange_start + 1
            if want_ranges and (min_match_len == 0 or match_len >= min_match_len):
                item: list = [[arange_start, arange_end], [brange_start, brange_end]]
                if with_match_len:
                    item.append(match_len)
                ranges.append(item)
            arange_start = alen
    return length, bytes(out), ranges


@command(
    "lcs",
    -3,
    "readonly",
    keys=(1, 2, 1),
    group="string",
    summary="Find longest common substring",
    since="7.0.0",
    complexity="O(N*M) where N and M are the lengths of s1 and s2, respectively",
)
def lcs_command(client: Client, args: list[bytes]) -> object:
    db = client.db
    stats = client.node.stats
    values = []
    for key in (args[1], args[2]):
        value = db.lookup(key)
        if value is None:
            stats.keyspace_misses += 1
            value = b""
        else:
            stats.keyspace_hits += 1
        values.append(value)
    a, b = values
    if a.__class__ is not bytes or b.__class__ is not bytes:
        raise CommandError("ERR The specified keys must contain string values")
    get_len = get_idx = with_match_len = False
    min_match_len = 0
    j = 3
    while j < len(args):
        opt = args[j].upper()
        if opt == b"IDX":
            get_idx = True
        elif opt == b"LEN":
            get_len = True
        elif opt == b"WITHMATCHLEN":
            with_match_len = True
        elif opt == b"MINMATCHLEN" and j + 1 < len(args):
            min_match_len = max(parse_int(args[j + 1]), 0)
            j += 1
        else:
            raise CommandError(SYNTAX_ERROR)
        j += 1
    if get_idx and get_len:
        raise CommandError("ERR If you want both the length and indexes, please just use IDX.")
    if len(a) >= 0xFFFFFFFE or len(b) >= 0xFFFFFFFE:
        raise CommandError("ERR String too long for LCS")
    # Redis refuses when its (len(a)+1) x (len(b)+1) table of uint32 would exceed proto-max-bulk-len.
    if (len(a) + 1) * (len(b) + 1) * 4 > client.node.config["proto-max-bulk-len"]:
        raise CommandError("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
    length, text, ranges = lcs(a, b, not get_len, get_idx, min_match_len, with_match_len)
    if get_idx:
        return {b"matches": ranges, b"len": length}
    if get_len:
        return length
    return text
