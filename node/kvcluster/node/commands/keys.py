r"""Generic key commands: DEL, EXISTS, EXPIRE, TTL, SCAN, RENAME, COPY, OBJECT and friends.

As Redis 7.0's ``db.c``, ``expire.c`` and ``object.c`` do them: replies, reply
types, error wording and the order in which arguments are checked.

Lookups. Redis distinguishes read lookups (counted in ``keyspace_hits`` /
``keyspace_misses``) from write lookups (not counted), and lookups that touch the
key's access clock from those that do not (LOOKUP_NOTOUCH). Here:

==================================  ===================  ==========================
command                             lookup               counts hits/misses
==================================  ===================  ==========================
EXISTS TYPE TTL PTTL \*EXPIRETIME   ``peek`` (no touch)  yes
OBJECT \*                           ``peek`` (no touch)  yes
TOUCH, COPY's source                ``lookup``           yes
EXPIRE\* PERSIST RENAME\* MOVE       ``lookup``           no (write lookups)
DEL UNLINK                          ``delete``           no
KEYS SCAN RANDOMKEY                 none per key         no
==================================  ===================  ==========================

Every lookup expires a key whose time has come first, so expired keys are absent
everywhere (KEYS only hides them, as Redis does; on a replica nothing is deleted
locally, keys are only hidden).

Replication. Commands propagate as they were sent, except the EXPIRE family,
which propagates its effect like Redis: ``PEXPIREAT key <absolute ms>``, or ``DEL
key`` when the time was already past. Keys found expired are propagated as DEL by
the keyspace's ``on_expired`` hook.

WATCH. ``Node.call`` signals the keys at the command's key positions in the
client's database after any write that changed the dataset. Handlers here only
signal what that misses: the destination of COPY ... DB n (and of MOVE, in
:mod:`.databases`). The positional rule over-signals in two harmless ways where
Redis does not: a multi-key DEL that deleted only some of its keys, and COPY's
source; a WATCH false positive only makes the client retry.

DUMP and RESTORE are not here: they need the RDB value serialisation, which lives
with the snapshot code.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from kvcluster.common.resp import OK, CommandError, Status
from kvcluster.node.client import Client
from kvcluster.node.commands.strings import string2ll
from kvcluster.node.commands.table import REGISTRY, command, container
from kvcluster.node.glob import compile_glob
from kvcluster.node.keyspace import TYPE_NAMES, Database, ZSet

LLONG_MAX = (1 << 63) - 1
LLONG_MIN = -(1 << 63)
INT_MAX = (1 << 31) - 1
INT_MIN = -(1 << 31)
ULONG_MAX = (1 << 64) - 1

NOT_INTEGER = "ERR value is not an integer or out of range"
SYNTAX_ERROR = "ERR syntax error"
SAME_OBJECT = "ERR source and destination objects are the same"
NO_SUCH_KEY = "ERR no such key"
DB_OUT_OF_RANGE = "ERR DB index is out of range"
# Redis 7.0's getRangeLongFromObjectOrReply wording (later versions say "value is out of range, must be ...").
INT_OUT_OF_RANGE = f"ERR value is out of range, value must between {INT_MIN} and {INT_MAX}"
NOT_LFU = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when "
    "switching between policies at runtime LRU and LFU data will take some time to adjust."
)
IS_LFU = (
    "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching "
    "between policies at runtime LRU and LFU data will take some time to adjust."
)

_NONE = Status(b"none")
_TYPE_STATUS: dict[type, Status] = {cls: Status(name) for cls, name in TYPE_NAMES.items()}


# ---------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------


def _read_peek(client: Client, key: bytes) -> Any:
    """A read lookup that does not touch the key (LOOKUP_NOTOUCH), counting a hit or a miss."""
    value = client.db.peek(key)
    if value is None:
        client.node.stats.keyspace_misses += 1
    else:
        client.node.stats.keyspace_hits += 1
    return value


def parse_c_int(arg: bytes, error: str | None = None) -> int:
    """Redis's getIntFromObjectOrReply: a 64-bit integer, then the C ``int`` range.

    ``error`` replaces both messages when given (SWAPDB's "invalid first DB index").
    """
    value = string2ll(arg)
    if value is None:
        raise CommandError(error or NOT_INTEGER)
    if not INT_MIN <= value <= INT_MAX:
        raise CommandError(error or INT_OUT_OF_RANGE)
    return value


def target_db(client: Client, arg: bytes) -> Database:
    """The database a SELECT / MOVE / COPY ... DB argument names (parse errors, then the range)."""
    index = parse_c_int(arg)
    dbs = client.node.keyspace.dbs
    if not 0 <= index < len(dbs):
        raise CommandError(DB_OUT_OF_RANGE)
    return dbs[index]


def delete_now(db: Database, key: bytes) -> None:
    """Delete a key known to be live, without re-checking its TTL.

    The clock moves between the lookup and the delete; dropping the TTL first
    keeps a key that expires in between from being counted (and propagated) as expired.
    """
    db.persist(key)
    db.delete(key)


def duplicate(value: Any) -> Any:
    """A deep copy of a stored value (COPY): no container is shared with the source."""
    cls = value.__class__
    if cls is bytes:
        return value  # immutable
    if cls is dict:
        return dict(value)
    if cls is set:
        return set(value)
    if cls is deque:
        return deque(value)
    if cls is ZSet:
        z = ZSet()
        z.dict = dict(value.dict)
        z.sorted = value.sorted.copy()
        return z
    raise CommandError("ERR unknown type object")


# ---------------------------------------------------------------------------
# DEL / UNLINK / EXISTS / TYPE / TOUCH
# ---------------------------------------------------------------------------


def _delete_keys(client: Client, args: list[bytes]) -> int:
    db = client.db
    deleted = 0
    for key in args[1:]:
        if db.delete(key):  # an expired key is expired first, and not counted
            deleted += 1
    client.node.keyspace.dirty += deleted
    return deleted


@command(
    "del",
    -2,
    "write",
    keys=(1, -1, 1),
    group="generic",
    summary="Delete a key",
    complexity="O(N) where N is the number of keys that will be removed.",
)
def del_(client: Client, args: list[bytes]) -> int:
    return _delete_keys(client, args)


@command(
    "unlink",
    -2,
    "write fast",
    keys=(1, -1, 1),
    group="generic",
    summary="Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
    since="4.0.0",
    complexity="O(1) for each key removed regardless of its size.",
)
def unlink(client: Client, args: list[bytes]) -> int:
    # Values are freed by Python's reference counting either way; there is no background thread to hand them to.
    return _delete_keys(client, args)


@command(
    "exists",
    -2,
    "readonly fast",
    keys=(1, -1, 1),
    group="generic",
    summary="Determine if a key exists",
    complexity="O(N) where N is the number of keys to check.",
)
def exists(client: Client, args: list[bytes]) -> int:
    # A key named twice counts twice, as in Redis.
    return sum(1 for key in args[1:] if _read_peek(client, key) is not None)


@command(
    "type",
    2,
    "readonly fast",
    keys=(1, 1, 1),
    group="generic",
    summary="Determine the type stored at key",
    complexity="O(1)",
)
def type_(client: Client, args: list[bytes]) -> Status:
    value = _read_peek(client, args[1])
    if value is None:
        return _NONE
    return _TYPE_STATUS.get(value.__class__, Status(b"unknown"))


@command(
    "touch",
    -2,
    "readonly fast",
    keys=(1, -1, 1),
    group="generic",
    summary="Alters the last access time of a key(s). Returns the number of existing keys specified.",
    since="3.2.1",
    complexity="O(N) where N is the number of keys that will be touched.",
)
def touch(client: Client, args: list[bytes]) -> int:
    db = client.db
    stats = client.node.stats
    touched = 0
    for key in args[1:]:
        if db.lookup(key) is None:
            stats.keyspace_misses += 1
        else:
            stats.keyspace_hits += 1
            touched += 1
    return touched


# ---------------------------------------------------------------------------
# EXPIRE family, TTL family, PERSIST
# ---------------------------------------------------------------------------

_EXPIRE_NX = 1
_EXPIRE_XX = 2
_EXPIRE_GT = 4
_EXPIRE_LT = 8
_EXPIRE_OPTIONS = {b"NX": _EXPIRE_NX, b"XX": _EXPIRE_XX, b"GT": _EXPIRE_GT, b"LT": _EXPIRE_LT}


def _parse_expire_options(args: list[bytes]) -> int:
    """NX / XX / GT / LT after the time (parseExtendedExpireArgumentsOrReply); repeats are fine."""
    flags = 0
    for opt in args[3:]:
        bit = _EXPIRE_OPTIONS.get(opt.upper()) if len(opt) == 2 else None
        if bit is None:
            text = opt.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")  # Redis prints it with %s
            raise CommandError(f"ERR Unsupported option {text}")
        flags |= bit
    if flags & _EXPIRE_NX and flags & (_EXPIRE_XX | _EXPIRE_GT | _EXPIRE_LT):
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if flags & _EXPIRE_GT and flags & _EXPIRE_LT:
        raise CommandError("ERR GT and LT options at the same time are not compatible")
    return flags


def _expire_generic(client: Client, args: list[bytes], name: str, relative: bool, in_seconds: bool) -> int:
    """EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT (expireGenericCommand), checks in Redis's order."""
    flags = _parse_expire_options(args) if len(args) > 3 else 0
    when = string2ll(args[2])
    if when is None:
        raise CommandError(NOT_INTEGER)
    ks = client.node.keyspace
    now = ks.clock_ms()  # one reading: "EXPIRE k 0" is exactly now, hence already past
    # Negative times are allowed (they delete the key); only overflow is an error.
    # -(-LLONG_MIN // 1000) is C's LLONG_MIN / 1000, which truncates toward zero.
    if in_seconds:
        if when > LLONG_MAX // 1000 or when < -(-LLONG_MIN // 1000):
            raise CommandError(f"ERR invalid expire time in '{name}' command")
        when *= 1000
    base = now if relative else 0
    if when > LLONG_MAX - base:
        raise CommandError(f"ERR invalid expire time in '{name}' command")
    when += base
    db = client.db
    key = args[1]
    if db.lookup(key) is None:
        return 0
    if flags:
        current = db.get_expire(key)
        if flags & _EXPIRE_NX and current is not None:
            return 0
        if flags & _EXPIRE_XX and current is None:
            return 0
        # No TTL counts as an infinite one: GT never beats it, LT always does.
        if flags & _EXPIRE_GT and (current is None or when <= current):
            return 0
        if flags & _EXPIRE_LT and current is not None and when >= current:
            return 0
    # A time already past deletes the key, except on a replica or while loading, where
    # the leader's (or the log's) DEL is waited for: the key is stored expired instead.
    node = client.node
    if when <= now and not ks.is_replica and not node.loading:
        delete_now(db, key)
        node.replicate_as([b"DEL", key])  # as Redis propagates it: replicas would keep a dead key
    else:
        db.set_expire(key, when)
        # Replicas and the log get the absolute deadline, already decided: no clock skew, no options.
        node.replicate_as([b"PEXPIREAT", key, b"%d" % when])
    ks.dirty += 1
    return 1


@command(
    "expire",
    -3,
    "write fast",
    keys=(1, 1, 1),
    group="generic",
    summary="Set a key's time to live in seconds",
    complexity="O(1)",
)
def expire(client: Client, args: list[bytes]) -> int:
    return _expire_generic(client, args, "expire", relative=True, in_seconds=True)


@command(
    "pexpire",
    -3,
    "write fast",
    keys=(1, 1, 1),
    group="generic",
    summary="Set a key's time to live in milliseconds",
    since="2.6.0",
    complexity="O(1)",
)
def pexpire(client: Client, args: list[bytes]) -> int:
    return _expire_generic(client, args, "pexpire", relative=True, in_seconds=False)


@command(
    "expireat",
    -3,
    "write fast",
    keys=(1, 1, 1),
    group="generic",
    summary="Set the expiration for a key as a UNIX timestamp",
    since="1.2.0",
    complexity="O(1)",
)
def expireat(client: Client, args: list[bytes]) -> int:
    return _expire_generic(client, args, "expireat", relative=False, in_seconds=True)


@command(
    "pexpireat",
    -3,
    "write fast",
    keys=(1, 1, 1),
    group="generic",
    summary="Set the expiration for a key as a UNIX timestamp specified in milliseconds",
    since="2.6.0",
    complexity="O(1)",
)
def pexpireat(client: Client, args: list[bytes]) -> int:
    return _expire_generic(client, args, "pexpireat", relative=False, in_seconds=False)


def _ttl_generic(client: Client, key: bytes, in_ms: bool, absolute: bool) -> int:
    """TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 for a missing key, -1 for one without a TTL."""
    if _read_peek(client, key) is None:
        return -2
    when = client.db.get_expire(key)
    if when is None:
        return -1
    ttl = when if absolute else max(0, when - client.node.keyspace.clock_ms())
    return ttl if in_ms else (ttl + 500) // 1000  # seconds are rounded, as Redis does


@command(
    "ttl",
    2,
    "readonly fast",
    keys=(1, 1, 1),
    group="generic",
    summary="Get the time to live for a key in seconds",
    complexity="O(1)",
)
def ttl(client: Client, args: list[bytes]) -> int:
    return _ttl_generic(client, args[1], in_ms=False, absolute=False)


@command(
    "pttl",
    2,
    "readonly fast",
    keys=(1, 1, 1),
    group="generic",
    summary="Get the time to live for a key in milliseconds",
    since="2.6.0",
    complexity="O(1)",
)
def pttl(client: Client, args: list[bytes]) -> int:
    return _ttl_generic(client, args[1], in_ms=True, absolute=False)


@command(
    "expiretime",
    2,
    "readonly fast",
    keys=(1, 1, 1),
    group="generic",
    summary="Get the expiration Unix timestamp for a key",
    since="7.0.0",
    complexity="O(1)",
)
def expiretime(client: Client, args: list[bytes]) -> int:
    return _ttl_generic(client, args[1], in_ms=False, absolute=True)


@command(
    "pexpiretime",
    2,
    "readonly fast",
    keys=(1, 1, 1),
    group="generic",
    summary="Get the expiration Unix timestamp for a key in milliseconds",
    since="7.0.0",
    complexity="O(1)",
)
def pexpiretime(client: Client, args: list[bytes]) -> int:
    return _ttl_generic(client, args[1], in_ms=True, absolute=True)


@command(
    "persist",
    2,
    "write fast",
    keys=(1, 1, 1),
    group="generic",
    summary="Remove the expiration from a key",
    since="2.2.0",
    complexity="O(1)",
)
def persist(client: Client, args: list[bytes]) -> int:
    db = client.db
    key = args[1]
    if db.lookup(key) is None or not db.persist(key):
        return 0
    client.node.keyspace.dirty += 1
    return 1


# ---------------------------------------------------------------------------
# KEYS / SCAN / RANDOMKEY
# ---------------------------------------------------------------------------


@command(
    "keys",
    2,
    "readonly",
    group="generic",
    summary="Find all keys matching the given pattern",
    complexity="O(N) with N being the number of keys in the database, under the assumption that the key names "
    "in the database and the given pattern have limited length.",
)
def keys(client: Client, args: list[bytes]) -> list[bytes]:
    db = client.db
    pattern = args[1]
    if pattern == b"*":
        found = list(db.data)  # exactly "*" means every key, the empty name included
    else:
        match = compile_glob(pattern)
        found = [key for key in db.data if match(key)]
    expires = db.expires
    if expires:
        # Like Redis's KEYS: logically expired keys are left out, but not deleted here.
        now = client.node.keyspace.clock_ms()
        found = [key for key in found if (when := expires.get(key)) is None or when > now]
    return found


def parse_scan_cursor(arg: bytes) -> int:
    """The cursor as Redis reads it (strtoul, base 10, the whole argument): else "invalid cursor".

    Like strtoul: an optional sign (a negative cursor wraps around modulo 2**64), an
    empty argument is 0, leading whitespace and overflow are refused.
    """
    body = arg
    negative = False
    if body[:1] in (b"+", b"-"):
        negative = body[:1] == b"-"
        body = body[1:]
        if not body:
            raise CommandError("ERR invalid cursor")
    if body and not body.isdigit():
        raise CommandError("ERR invalid cursor")
    body = body.lstrip(b"0")  # strtoul skips leading zeros; what is left must fit 20 digits
    if len(body) > 20:
        raise CommandError("ERR invalid cursor")
    value = int(body) if body else 0
    if value > ULONG_MAX:
        raise CommandError("ERR invalid cursor")
    return (-value) & ULONG_MAX if negative else value


@command(
    "scan",
    -2,
    "readonly",
    group="generic",
    summary="Incrementally iterate the keys space",
    since="2.8.0",
    complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for the "
    "cursor to return back to 0. N is the number of elements inside the collection.",
)
def scan(client: Client, args: list[bytes]) -> list[Any]:
    cursor = parse_scan_cursor(args[1])
    count = 10
    match = None
    type_name: bytes | None = None
    i, n = 2, len(args)
    while i < n:
        opt = args[i].lower()
        if opt == b"count" and i + 1 < n:
            parsed = string2ll(args[i + 1])
            if parsed is None:
                raise CommandError(NOT_INTEGER)
            if parsed < 1:
                raise CommandError(SYNTAX_ERROR)
            count = parsed
        elif opt == b"match" and i + 1 < n:
            pattern = args[i + 1]
            match = None if pattern == b"*" else compile_glob(pattern)
        elif opt == b"type" and i + 1 < n:
            type_name = args[i + 1].lower()  # Redis compares type names case-insensitively
        else:
            raise CommandError(SYNTAX_ERROR)
        i += 2
    db = client.db
    next_cursor, found = db.scan(cursor, count)
    if match is not None:
        found = [key for key in found if match(key)]
    if type_name is not None:
        # Redis checks the type with a read lookup (a keyspace hit per key); an unknown name matches nothing.
        client.node.stats.keyspace_hits += len(found)
        data = db.data
        found = [key for key in found if TYPE_NAMES.get(data[key].__class__) == type_name]
    return [b"%d" % next_cursor, found]


@command(
    "randomkey",
    1,
    "readonly",
    group="generic",
    summary="Return a random key from the keyspace",
    complexity="O(1)",
)
def randomkey(client: Client, args: list[bytes]) -> bytes | None:
    return client.db.random_key()


# ---------------------------------------------------------------------------
# RENAME / RENAMENX / COPY (MOVE and SWAPDB are in databases.py)
# ---------------------------------------------------------------------------


def _rename_generic(client: Client, args: list[bytes], nx: bool) -> Any:
    src, dst = args[1], args[2]
    db = client.db
    value = db.lookup(src)
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else OK
    when = db.get_expire(src)
    access = db.access.get(src)
    if db.lookup(dst) is not None and nx:
        return 0
    # Overwriting clears the destination's TTL; the source's TTL (if any) moves with the value.
    db.set(dst, value)
    if when is not None:
        db.set_expire(dst, when)
    if access is not None:
        db.access[dst] = access  # the same object in Redis: it keeps its idle time / frequency
    delete_now(db, src)
    client.node.keyspace.dirty += 1
    return 1 if nx else OK


@command(
    "rename",
    3,
    "write",
    keys=(1, 2, 1),
    group="generic",
    summary="Rename a key",
    complexity="O(1)",
)
def rename(client: Client, args: list[bytes]) -> Any:
    return _rename_generic(client, args, nx=False)


@command(
    "renamenx",
    3,
    "write fast",
    keys=(1, 2, 1),
    group="generic",
    summary="Rename a key, only if the new key does not exist",
    complexity="O(1)",
)
def renamenx(client: Client, args: list[bytes]) -> Any:
    return _rename_generic(client, args, nx=True)


@command(
    "copy",
    -3,
    "write denyoom",
    keys=(1, 2, 1),
    group="generic",
    summary="Copy a key",
    since="6.2.0",
    complexity="O(N) worst case for collections, where N is the number of nested items. O(1) for string values.",
)
def copy(client: Client, args: list[bytes]) -> int:
    src_db = dst_db = client.db
    replace = False
    j, n = 3, len(args)
    while j < n:
        opt = args[j].lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and j + 1 < n:
            dst_db = target_db(client, args[j + 1])
            j += 1
        else:
            raise CommandError(SYNTAX_ERROR)
        j += 1
    key, new_key = args[1], args[2]
    if src_db is dst_db and key == new_key:
        raise CommandError(SAME_OBJECT)
    # Redis 7.0 reads the source with a read lookup: a keyspace hit or miss, and an access.
    value = src_db.lookup(key)
    stats = client.node.stats
    if value is None:
        stats.keyspace_misses += 1
        return 0
    stats.keyspace_hits += 1
    when = src_db.get_expire(key)
    if dst_db.lookup(new_key) is not None:
        if not replace:
            return 0
        delete_now(dst_db, new_key)  # replaced by a new object: no old TTL, access history or frequency
    dst_db.set(new_key, duplicate(value))
    if when is not None:
        dst_db.set_expire(new_key, when)
    ks = client.node.keyspace
    if dst_db is not src_db:
        ks.signal_modified(dst_db, new_key)  # Node.call signals the key names in the current db only
    ks.dirty += 1
    return 1


# ---------------------------------------------------------------------------
# OBJECT
# ---------------------------------------------------------------------------

# OBJECT ENCODING names what this server really stores, in Redis's vocabulary, rather
# than the encoding Redis would have chosen for the same value (we have no compact
# encodings: no int, listpack or intset):
#   string  bytes: header and data in one allocation, like Redis's embedded string  -> embstr
#   hash    dict (a hash table)                                                      -> hashtable
#   set     set (a hash table)                                                       -> hashtable
#   list    collections.deque (a doubly linked list of fixed-size blocks)            -> quicklist
#   zset    dict + sorted list, like Redis's dict + skiplist pair                    -> skiplist
_ENCODINGS: dict[type, bytes] = {
    bytes: b"embstr",
    dict: b"hashtable",
    set: b"hashtable",
    deque: b"quicklist",
    ZSet: b"skiplist",
}

_OBJECT_HELP = [
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
]

container("object", -2, group="generic", summary="A container for object introspection commands")
REGISTRY["object"].since = "2.2.3"
REGISTRY["object"].complexity = "Depends on subcommand."


@command(
    "object|encoding",
    3,
    "readonly",
    keys=(2, 2, 1),
    group="generic",
    summary="Inspect the internal encoding of a Redis object",
    since="2.2.3",
    complexity="O(1)",
)
def object_encoding(client: Client, args: list[bytes]) -> bytes | None:
    value = _read_peek(client, args[2])
    if value is None:
        return None
    return _ENCODINGS.get(value.__class__, b"unknown")


@command(
    "object|refcount",
    3,
    "readonly",
    keys=(2, 2, 1),
    group="generic",
    summary="Get the number of references to the value of the key",
    since="2.2.3",
    complexity="O(1)",
)
def object_refcount(client: Client, args: list[bytes]) -> int | None:
    # Values are never shared between keys here (Redis shares small integers and
    # answers INT_MAX for them), so the keyspace holds the only reference.
    return None if _read_peek(client, args[2]) is None else 1


@command(
    "object|idletime",
    3,
    "readonly",
    keys=(2, 2, 1),
    group="generic",
    summary="Get the time since a Redis object was last accessed",
    since="2.2.3",
    complexity="O(1)",
)
def object_idletime(client: Client, args: list[bytes]) -> int | None:
    key = args[2]
    if _read_peek(client, key) is None:
        return None
    ks = client.node.keyspace
    if ks.lfu:
        raise CommandError(IS_LFU)
    return client.db.idle_seconds(key)


@command(
    "object|freq",
    3,
    "readonly",
    keys=(2, 2, 1),
    group="generic",
    summary="Get the logarithmic access frequency counter of a Redis object",
    since="4.0.0",
    complexity="O(1)",
)
def object_freq(client: Client, args: list[bytes]) -> int | None:
    key = args[2]
    if _read_peek(client, key) is None:
        return None
    ks = client.node.keyspace
    if not ks.lfu:
        raise CommandError(NOT_LFU)
    return ks.lfu_counter(client.db.access.get(key))


@command(
    "object|help",
    2,
    "loading stale",
    group="generic",
    summary="Show helpful text about the different subcommands",
    since="6.2.0",
    complexity="O(1)",
)
def object_help(client: Client, args: list[bytes]) -> list[Status]:
    name = args[0].decode("utf-8", "surrogateescape").upper()
    lines = [f"{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", *_OBJECT_HELP]
    lines += ["HELP", "    Prints this help."]
    return [Status(line.encode("utf-8", "surrogateescape")) for line in lines]
