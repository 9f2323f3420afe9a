"""Redis's conversion rules between RESP replies and Lua values, with no I/O.

Also the pure parts of the libraries Redis bundles for scripts: ``cjson`` (lua-cjson's encoding,
errors and sparse-array rule) and ``bit`` (LuaBitOp's 32-bit operations).

Both directions follow Redis 7.0 (``script_lua.c``):

* A command's reply reaches Lua through its RESP encoding (RESP2 or RESP3, as the script chose
  with ``redis.setresp``), parsed by :func:`parse_reply` into the values
  ``LuaRuntime.table_from(..., recursive=True)`` turns into Lua: integers stay numbers, bulk strings
  strings, a nil (bulk or array) ``false`` in RESP2 and ``nil`` in RESP3, a status ``{ok=...}``, an
  error ``{err=...}``, RESP3 doubles ``{double=n}``, maps ``{map={...}}``, sets ``{set={k=true}}``,
  big numbers ``{big_number=s}``, verbatim strings ``{verbatim_string={format=, string=}}``.
  Going through the encoding keeps the rules exact whatever Python value a handler returns
  (pre-encoded ``Raw`` constants included).
* A script's result becomes a reply value with :func:`lua_to_reply`: numbers are truncated to
  integers, strings are bulk strings, ``true`` is 1 (RESP3: a boolean), ``false`` and ``nil`` are
  nil, tables with ``err`` / ``ok`` / ``double`` / ``big_number`` / ``map`` / ``set`` fields are those
  replies, any other table is an array that ends at its first nil.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from kvcluster.common.resp import ErrorReply, Status
from lupa import lua51

_LLONG_MIN = -(1 << 63)
_LLONG_MAX = (1 << 63) - 1


# How deep a script's result may nest (a table that contains itself would never end).
MAX_REPLY_DEPTH = 300


class ReplyParseError(ValueError):
    pass


class ReplyTooDeep(ValueError):
    """A script's result nests deeper than MAX_REPLY_DEPTH (Redis: "reached lua stack limit")."""


def parse_reply(data: bytes, resp: int) -> Any:
    """One encoded reply → the Python form of its Lua value (see the module docstring)."""
    value, end = _parse(data, 0, resp)
    if end != len(data):
        raise ReplyParseError(f"{len(data) - end} trailing bytes after a reply")
    return value


def _line(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(b"\r\n", pos)
    if end < 0:
        raise ReplyParseError("truncated reply")
    return data[pos:end], end + 2


def _parse(data: bytes, pos: int, resp: int) -> tuple[Any, int]:
    kind = data[pos : pos + 1]
    line, pos = _line(data, pos + 1)
    if kind == b"$" or kind == b"=":
        n = int(line)
        if n < 0:
            return (False if resp == 2 else None), pos
        body = data[pos : pos + n]
        pos += n + 2
        if kind == b"=":
            return {b"verbatim_string": {b"format": body[:3], b"string": body[4:]}}, pos
        return body, pos
    if kind == b":":
        return int(line), pos
    if kind == b"+":
        return {b"ok": line}, pos
    if kind == b"-":
        return {b"err": line}, pos
    if kind == b"*" or kind == b"~" or kind == b">":
        n = int(line)
        if n < 0:
            return (False if resp == 2 else None), pos
        items = []
        for _ in range(n):
            item, pos = _parse(data, pos, resp)
            items.append(item)
        if kind == b"~":
            return {b"set": {_hashable(item): True for item in items}}, pos
        return items, pos
    if kind == b"%":
        mapping: dict[Any, Any] = {}
        for _ in range(int(line)):
            key, pos = _parse(data, pos, resp)
            value, pos = _parse(data, pos, resp)
            mapping[_hashable(key)] = value
        return {b"map": mapping}, pos
    if kind == b"_":
        return None, pos
    if kind == b"#":
        return line == b"t", pos
    if kind == b",":
        return {b"double": _parse_double(line)}, pos
    if kind == b"(":
        return {b"big_number": line}, pos
    if kind == b"|":  # attributes are dropped, the reply that follows them is the value
        for _ in range(int(line)):
            _, pos = _parse(data, pos, resp)
            _, pos = _parse(data, pos, resp)
        return _parse(data, pos, resp)
    raise ReplyParseError(f"unexpected reply type {kind!r}")


def _parse_double(line: bytes) -> float:
    if line in (b"inf", b"+inf"):
        return math.inf
    if line == b"-inf":
        return -math.inf
    return float(line)


def _hashable(value: Any) -> Any:
    # A map key or set member that is itself an aggregate cannot be a Python dict key; Redis
    # would use the Lua table. Such replies do not occur in our command set: keep its text.
    if isinstance(value, (list, dict)):
        return repr(value).encode()
    return value


def lua_number_to_int(value: float | int) -> int:
    """A Lua number as Redis casts it to ``long long`` (truncated toward zero)."""
    if isinstance(value, int):
        return max(_LLONG_MIN, min(_LLONG_MAX, value))
    if math.isnan(value) or math.isinf(value):
        return _LLONG_MIN  # what the C cast gives on x86-64
    truncated = int(value)
    if truncated > _LLONG_MAX or truncated < _LLONG_MIN:
        return _LLONG_MIN
    return truncated


def lua_to_reply(value: Any, script_resp: int, rawget: Callable[[Any, Any], Any], depth: int = 0) -> Any:
    """A script's Lua result (as lupa hands it over) → a reply value for the encoder.

    ``rawget`` is Lua's: fields are read without metamethods, as Redis does (a protected table
    such as ``_G`` must not raise while it is converted)."""
    if depth > MAX_REPLY_DEPTH:
        raise ReplyTooDeep
    if value is None:
        return None
    if value is True or value is False:
        if script_resp == 2:
            return 1 if value else None
        return value
    if isinstance(value, (int, float)):
        return lua_number_to_int(value)
    if isinstance(value, bytes):
        return value
    if isinstance(value, Exception):  # a library error caught by pcall(redis.call, ...): Redis gives its text
        return str(value).encode("utf-8", "surrogateescape")
    if lua51.lua_type(value) != "table":
        return None  # functions, userdata, threads: Redis replies nil
    err = rawget(value, b"err")
    if isinstance(err, bytes):
        return ErrorReply(err.decode("utf-8", "surrogateescape"))
    ok = rawget(value, b"ok")
    if isinstance(ok, bytes):
        return Status(ok)
    double = rawget(value, b"double")
    if isinstance(double, (int, float)):
        return float(double)
    big = rawget(value, b"big_number")
    if isinstance(big, bytes):
        return Status(big)  # RESP3 big number: shown as its digits
    mapping = rawget(value, b"map")
    if mapping is not None and lua51.lua_type(mapping) == "table":
        return {
            _reply_key(lua_to_reply(k, script_resp, rawget, depth + 1)): lua_to_reply(v, script_resp, rawget, depth + 1)
            for k, v in mapping.items()
        }
    members = rawget(value, b"set")
    if members is not None and lua51.lua_type(members) == "table":
        return {_reply_key(lua_to_reply(k, script_resp, rawget, depth + 1)) for k in members}
    items = []
    index = 1
    while True:
        item = rawget(value, index)
        if item is None:
            break
        items.append(lua_to_reply(item, script_resp, rawget, depth + 1))
        index += 1
    return items


def _reply_key(value: Any) -> Any:
    if isinstance(value, (list, dict, set)):
        return repr(value).encode()
    if isinstance(value, ErrorReply):
        return value.message.encode()
    return value


def format_lua_number(value: int | float) -> bytes:
    """A Lua number as an argument to redis.call: Lua 5.1's ``%.14g`` (``lua_tolstring``)."""
    if isinstance(value, int) and abs(value) < 10**14:
        return b"%d" % value
    return b"%.14g" % value


# -- cjson (Redis's bundled lua-cjson): the same output and errors for what scripts use -----------

CJSON_MAX_DEPTH = 1000


class CJSONError(ValueError):
    """A cjson.encode / cjson.decode failure; the message is lua-cjson's."""


_JSON_ESCAPES = {0x22: b'\\"', 0x5C: b"\\\\", 0x2F: b"\\/", 0x08: b"\\b", 0x0C: b"\\f", 0x0A: b"\\n"}
_JSON_ESCAPES.update({0x0D: b"\\r", 0x09: b"\\t"})


def _json_string(data: bytes) -> bytes:
    out = bytearray(b'"')
    for byte in data:
        escaped = _JSON_ESCAPES.get(byte)
        if escaped is not None:
            out += escaped
        elif byte < 0x20 or byte == 0x7F:
            out += b"\\u%04x" % byte
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


def _json_number(value: int | float) -> bytes:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise CJSONError("Cannot serialise number: must not be NaN or Inf")
    return format_lua_number(value)


def cjson_encode(value: Any, null: Any, depth: int = 0) -> bytes:
    """lua-cjson's encoding of a Lua value (``null`` is the ``cjson.null`` sentinel)."""
    if value is None or value is null:
        return b"null"
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if isinstance(value, (int, float)):
        return _json_number(value)
    if isinstance(value, bytes):
        return _json_string(value)
    kind = lua51.lua_type(value)
    if kind != "table":
        raise CJSONError(f"Cannot serialise {kind or 'userdata'}: type not supported")
    if depth >= CJSON_MAX_DEPTH:
        raise CJSONError(f"Cannot serialise, excessive nesting ({depth + 1})")
    items = list(value.items())
    # An array: every key a positive integer, not too sparse (lua-cjson's ratio 2, safe 10).
    max_index = 0
    array = True
    for key, _ in items:
        if isinstance(key, (int, float)) and not isinstance(key, bool) and key == int(key) and key >= 1:
            max_index = max(max_index, int(key))
        else:
            array = False
            break
    if array and items:
        if max_index > len(items) * 2 and max_index > 10:
            raise CJSONError("Cannot serialise table: excessively sparse array")
        by_index = {int(k): v for k, v in items}
        parts = [cjson_encode(by_index.get(i), null, depth + 1) for i in range(1, max_index + 1)]
        return b"[" + b",".join(parts) + b"]"
    fields = []
    for key, item in items:
        if isinstance(key, bytes):
            name = key
        elif isinstance(key, (int, float)) and not isinstance(key, bool):
            name = format_lua_number(key)
        else:
            kind = "boolean" if isinstance(key, bool) else (lua51.lua_type(key) or "userdata")
            raise CJSONError(f"Cannot serialise {kind}: table key must be a number or string")
        fields.append(_json_string(name) + b":" + cjson_encode(item, null, depth + 1))
    return b"{" + b",".join(fields) + b"}"


def cjson_decode(text: bytes) -> Any:
    """JSON text → Python values for Lua: strings as bytes, numbers, dicts, lists; JSON null is None."""
    import json

    try:
        decoded = json.loads(text.decode("utf-8", "surrogateescape"))
    except RecursionError:
        raise CJSONError(f"Found too many nested data structures ({CJSON_MAX_DEPTH + 1})") from None
    except json.JSONDecodeError as e:
        raise CJSONError(f"Expected value but found invalid token at character {e.pos + 1}") from None
    return _json_bytes(decoded, 0)


def _json_bytes(value: Any, depth: int) -> Any:
    if depth > CJSON_MAX_DEPTH:
        raise CJSONError(f"Found too many nested data structures ({depth})")
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return float(value)  # a Lua 5.1 number is a double
    if isinstance(value, list):
        return [_json_bytes(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k.encode("utf-8", "surrogateescape"): _json_bytes(v, depth + 1) for k, v in value.items()}
    return value


# -- bit (LuaBitOp, bundled with Redis): 32-bit operations with signed 32-bit results -------------


def tobit(value: int | float) -> int:
    """LuaBitOp's number → int32: round to nearest (ties to even), wrap modulo 2^32, signed."""
    n = round(value) if isinstance(value, float) else value
    n &= 0xFFFFFFFF
    return n - (1 << 32) if n & 0x80000000 else n


def _rotate_left(x: int, n: int) -> int:
    u = x & 0xFFFFFFFF
    n &= 31
    return tobit(((u << n) | (u >> (32 - n))) & 0xFFFFFFFF)


BIT_FUNCTIONS: dict[str, Any] = {
    "tobit": lambda x: tobit(x),
    "bnot": lambda x: tobit(~tobit(x)),
    "band": lambda x, *rest: _fold(lambda a, b: a & b, x, rest),
    "bor": lambda x, *rest: _fold(lambda a, b: a | b, x, rest),
    "bxor": lambda x, *rest: _fold(lambda a, b: a ^ b, x, rest),
    "lshift": lambda x, n: tobit((tobit(x) & 0xFFFFFFFF) << (tobit(n) & 31)),
    "rshift": lambda x, n: tobit((tobit(x) & 0xFFFFFFFF) >> (tobit(n) & 31)),
    "arshift": lambda x, n: tobit(tobit(x) >> (tobit(n) & 31)),
    "rol": lambda x, n: _rotate_left(tobit(x), tobit(n)),
    "ror": lambda x, n: _rotate_left(tobit(x), 32 - (tobit(n) & 31)),
    "bswap": lambda x: tobit(int.from_bytes((tobit(x) & 0xFFFFFFFF).to_bytes(4, "little"), "big")),
}


def _fold(op: Callable[[int, int], int], first: int | float, rest: tuple[Any, ...]) -> int:
    result = tobit(first)
    for value in rest:
        result = op(result, tobit(value))
    return tobit(result)


def bit_tohex(x: int | float, n: int | float = 8) -> bytes:
    digits = tobit(n)
    upper = digits < 0
    digits = min(abs(digits), 8)
    text = b"%0*x" % (digits, (tobit(x) & 0xFFFFFFFF) & ((1 << (4 * digits)) - 1)) if digits else b""
    return text.upper() if upper else text
