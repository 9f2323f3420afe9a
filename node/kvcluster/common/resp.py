"""RESP request parsing and reply encoding, sans-I/O.

Theory of operation
-------------------
A connection owns one request parser. The I/O shell calls ``feed(data)`` with
whatever bytes arrived and then ``next_command()`` until it returns ``None``
(more data needed). A command is a ``list[bytes]`` (name first). Malformed
input raises :class:`ProtocolError` whose message is the text Redis sends
after ``-ERR Protocol error: ``; the shell replies and closes the connection.

Two parsers implement this interface:

* :class:`PythonRequestParser` is the reference: multibulk (``*N``) and inline
  (telnet style) requests, every limit enforced exactly as Redis does.
* :class:`HiredisRequestParser` is the fast path. It hands a read to hiredis
  only when it starts at a command boundary with ``*``. hiredis does not know
  our limits or inline commands, so whenever a read does not end at a command
  boundary, or hiredis meets something that is not a plain array of bulk
  strings, the read is handed to the Python parser, which skips the commands
  hiredis already returned and owns the connection until its buffer is empty
  again. Completed commands inside one read are bounded by the read size, so
  limits only matter for the partial tail, which the Python parser sees.

Replies are plain Python values encoded by :func:`encode` (see the table
there); handlers never build RESP by hand except for the pre-encoded
:class:`Raw` constants on the hot path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

try:  # pragma: no cover - exercised when hiredis is installed
    import hiredis as _hiredis
except ImportError:  # pragma: no cover
    _hiredis = None

HAVE_HIREDIS = _hiredis is not None

# Redis's PROTO_INLINE_MAX_SIZE: an inline request or a count line may not be longer.
INLINE_MAX_SIZE = 64 * 1024
# Bulk strings at least this long are read in place instead of copied piecewise.
_BIG_ARG = 32 * 1024


class ProtocolError(Exception):
    """Malformed request; ``str(exc)`` is the text after ``Protocol error: ``."""


class ParserLimits:
    """Request size limits (Redis defaults); shared by all connections, changeable at runtime."""

    __slots__ = ("max_bulk_len", "max_multibulk_len")

    def __init__(self, max_bulk_len: int = 512 * 1024 * 1024, max_multibulk_len: int = 1024 * 1024 * 1024):
        self.max_bulk_len = max_bulk_len
        self.max_multibulk_len = max_multibulk_len


DEFAULT_LIMITS = ParserLimits()


def split_inline(line: bytes) -> list[bytes]:
    """Split an inline request like Redis's ``sdssplitargs``: quotes and escapes."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\n\r\v\f":
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            if in_double:
                if i >= n:
                    raise ProtocolError("unbalanced quotes in request")
                c = line[i]
                if c == 0x5C and i + 3 < n and line[i + 1] == 0x78 and _is_hex(line[i + 2 : i + 4]):  # \xHH
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    current.append(_ESCAPES.get(line[i], line[i]))
                elif c == 0x22:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        raise ProtocolError("unbalanced quotes in request")
                    in_double = False
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if i >= n:
                    raise ProtocolError("unbalanced quotes in request")
                c = line[i]
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    current.append(0x27)
                elif c == 0x27:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        raise ProtocolError("unbalanced quotes in request")
                    in_single = False
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \t\n\r\v\f":
                    break
                if c == 0x22:
                    in_double = True
                elif c == 0x27:
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))


_ESCAPES = {ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09, ord("b"): 0x08, ord("a"): 0x07}


def _is_hex(two: bytes) -> bool:
    return len(two) == 2 and all(c in b"0123456789abcdefABCDEF" for c in two)


class PythonRequestParser:
    """Reference request parser (pure Python); see the module docstring."""

    __slots__ = ("_args", "_buf", "_bulk_len", "_limits", "_pos", "_remaining", "inline_seen")

    def __init__(self, limits: ParserLimits = DEFAULT_LIMITS):
        self._limits = limits
        self._buf = bytearray()
        self._pos = 0
        # State of a multibulk request in progress: args so far, args still to read,
        # and the length of the bulk string whose header was consumed (-1: none).
        self._args: list[bytes] | None = None
        self._remaining = 0
        self._bulk_len = -1
        self.inline_seen = False

    def feed(self, data: bytes) -> None:
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data

    def pending(self) -> int:
        """Bytes buffered but not yet turned into a command (the query buffer)."""
        return len(self._buf) - self._pos

    def idle(self) -> bool:
        """True when at a command boundary with nothing buffered."""
        return self._args is None and self._pos >= len(self._buf)

    def next_command(self) -> list[bytes] | None:
        while True:
            if self._args is None:
                if self._pos >= len(self._buf):
                    self._compact()
                    return None
                if self._buf[self._pos] == 0x2A:  # '*'
                    if not self._start_multibulk():
                        return None
                    if self._args is None:  # *0 or negative: nothing to run
                        continue
                else:
                    cmd = self._inline()
                    if cmd is None:
                        return None
                    if not cmd:
                        continue
                    return cmd
            cmd = self._continue_multibulk()
            if cmd is None:
                return None
            return cmd

    def _compact(self) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0

    def _line(self) -> bytes | None:
        """A CRLF-terminated line from the buffer without the CRLF, or None."""
        buf, pos = self._buf, self._pos
        end = buf.find(b"\r\n", pos)
        if end < 0:
            if len(buf) - pos > INLINE_MAX_SIZE:
                raise ProtocolError("too big mbulk count string" if buf[pos] == 0x2A else "too big bulk count string")
            return None
        line = bytes(buf[pos + 1 : end])
        self._pos = end + 2
        return line

    def _start_multibulk(self) -> bool:
        line = self._line()
        if line is None:
            return False
        count = _parse_int(line)
        if count is None or count > self._limits.max_multibulk_len:
            raise ProtocolError("invalid multibulk length")
        if count <= 0:
            self._args = None
            return True
        self._args = []
        self._remaining = count
        self._bulk_len = -1
        return True

    def _continue_multibulk(self) -> list[bytes] | None:
        args = self._args
        assert args is not None
        buf = self._buf
        while self._remaining:
            if self._bulk_len < 0:
                if self._pos >= len(buf):
                    self._compact()
                    return None
                if buf[self._pos] != 0x24:  # '$'
                    got = chr(buf[self._pos])
                    raise ProtocolError(f"expected '$', got '{got}'")
                line = self._line()
                if line is None:
                    return None
                length = _parse_int(line)
                if length is None or length < 0 or length > self._limits.max_bulk_len:
                    raise ProtocolError("invalid bulk length")
                self._bulk_len = length
            end = self._pos + self._bulk_len
            if len(buf) < end + 2:
                self._compact()
                return None
            args.append(bytes(buf[self._pos : end]))
            self._pos = end + 2
            self._bulk_len = -1
            self._remaining -= 1
        self._args = None
        return args

    def _inline(self) -> list[bytes] | None:
        buf, pos = self._buf, self._pos
        end = buf.find(b"\n", pos)
        if end < 0:
            if len(buf) - pos > INLINE_MAX_SIZE:
                raise ProtocolError("too big inline request")
            return None
        if end - pos > INLINE_MAX_SIZE:
            raise ProtocolError("too big inline request")
        line = bytes(buf[pos:end])
        if line.endswith(b"\r"):
            line = line[:-1]
        self._pos = end + 1
        self.inline_seen = True
        return split_inline(line)


def _parse_int(line: bytes) -> int | None:
    # Redis's string2ll: optional '-', digits, no spaces or '+', bounded length.
    if not line or len(line) > 20:
        return None
    body = line[1:] if line[:1] == b"-" else line
    if not body.isdigit():
        return None
    return int(line)


class HiredisRequestParser:
    """hiredis fast path with exact fallback to :class:`PythonRequestParser`."""

    __slots__ = ("_chunk", "_limits", "_py", "_reader", "_returned", "_use_hiredis")

    def __init__(self, limits: ParserLimits = DEFAULT_LIMITS):
        if _hiredis is None:  # pragma: no cover
            raise RuntimeError("hiredis is not installed")
        self._limits = limits
        self._reader = _hiredis.Reader()
        self._py = PythonRequestParser(limits)
        self._use_hiredis = False
        self._chunk = b""
        self._returned = 0

    @property
    def inline_seen(self) -> bool:
        return self._py.inline_seen

    def feed(self, data: bytes) -> None:
        if self._py.idle() and data[:1] == b"*":
            self._reader.feed(data)
            self._use_hiredis = True
            self._chunk = data
            self._returned = 0
        else:
            self._use_hiredis = False
            self._py.feed(data)

    def pending(self) -> int:
        return len(self._chunk) if self._use_hiredis else self._py.pending()

    def next_command(self) -> list[bytes] | None:
        if not self._use_hiredis:
            return self._py.next_command()
        try:
            cmd = self._reader.gets()
        except _hiredis.ProtocolError:
            return self._fall_back()
        if cmd is False:
            if self._reader.has_data():
                return self._fall_back()
            self._use_hiredis = False
            self._chunk = b""
            return None
        if cmd.__class__ is not list or not cmd:
            return self._fall_back()
        for arg in cmd:
            if arg.__class__ is not bytes:
                return self._fall_back()
        self._returned += 1
        return cmd

    def _fall_back(self) -> list[bytes] | None:
        # Re-parse the read with the reference parser, skipping what hiredis returned.
        self._reader = _hiredis.Reader()
        self._use_hiredis = False
        chunk, self._chunk = self._chunk, b""
        self._py.feed(chunk)
        for _ in range(self._returned):
            self._py.next_command()
        return self._py.next_command()


def make_request_parser(kind: str = "auto", limits: ParserLimits = DEFAULT_LIMITS):
    """``kind`` is ``auto`` (hiredis when installed), ``hiredis`` or ``python``."""
    if kind == "python" or (kind == "auto" and not HAVE_HIREDIS):
        return PythonRequestParser(limits)
    return HiredisRequestParser(limits)


# ---------------------------------------------------------------------------
# Reply values and encoding
# ---------------------------------------------------------------------------


class Raw(bytes):
    """Already-encoded RESP, written as is (hot-path constants)."""

    __slots__ = ()


class Status(bytes):
    """A simple string reply: ``+OK``."""

    __slots__ = ()


class Verbatim(bytes):
    """RESP3 verbatim text (INFO, CLIENT LIST); a bulk string in RESP2."""

    __slots__ = ()


class Push(list):
    """An out-of-band message (pub/sub): RESP3 ``>``, RESP2 array."""

    __slots__ = ()


class Attribute(dict):
    __slots__ = ()


class _NullArray:
    """Null array: ``*-1`` in RESP2 (EXEC after WATCH failure, BLPOP timeout), ``_`` in RESP3."""

    __slots__ = ()


NULL_ARRAY = _NullArray()


class CommandError(Exception):
    """Raised by handlers; the message is the full error line, prefix included (``ERR ...``)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ErrorReply:
    """An error as a value (inside EXEC replies)."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message

    def __repr__(self) -> str:
        return f"ErrorReply({self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ErrorReply) and other.message == self.message

    def __hash__(self) -> int:
        return hash(self.message)


OK = Raw(b"+OK\r\n")
QUEUED = Raw(b"+QUEUED\r\n")
PONG = Raw(b"+PONG\r\n")
NULL_BULK_RESP2 = b"$-1\r\n"
ZERO = Raw(b":0\r\n")
ONE = Raw(b":1\r\n")


def format_double(value: float) -> bytes:
    """Format a double the way Redis prints scores (``%.17g`` with inf spelled out)."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if value == int(value) and abs(value) < 1e17:
        return b"%d" % int(value)
    return (b"%.17g" % value).lower()


def _bulk(v: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(v), v)


def _error_line(message: str) -> bytes:
    # An error line may not contain CR/LF; Redis replaces them with spaces.
    return b"-" + message.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace") + b"\r\n"


def encode2(v: Any) -> bytes:
    """Encode a reply value for a RESP2 client."""
    t = v.__class__
    if t is bytes:
        return b"$%d\r\n%b\r\n" % (len(v), v)
    if t is Raw:
        return v
    if v is None:
        return b"$-1\r\n"
    if t is int or t is bool:
        return b":%d\r\n" % v
    enc = _ENC2.get(t)
    if enc is not None:
        return enc(v)
    return _encode_fallback(v, encode2)


def encode3(v: Any) -> bytes:
    """Encode a reply value for a RESP3 client (after ``HELLO 3``)."""
    t = v.__class__
    if t is bytes:
        return b"$%d\r\n%b\r\n" % (len(v), v)
    if t is Raw:
        return _RAW3.get(v, v)
    if v is None:
        return b"_\r\n"
    if t is int:
        return b":%d\r\n" % v
    enc = _ENC3.get(t)
    if enc is not None:
        return enc(v)
    return _encode_fallback(v, encode3)


def _encode_fallback(v: Any, enc: Callable[[Any], bytes]) -> bytes:
    # Subclasses and rarer types.
    if isinstance(v, bytes):
        return _bulk(bytes(v))
    if isinstance(v, str):
        return _bulk(v.encode())
    if isinstance(v, ErrorReply):
        return _error_line(v.message)
    if isinstance(v, (list, tuple)):
        return enc(list(v))
    if isinstance(v, dict):
        return enc(dict(v))
    if isinstance(v, (set, frozenset)):
        return enc(set(v))
    raise TypeError(f"cannot encode reply of type {type(v).__name__}")


def _array(items: list, enc: Callable[[Any], bytes]) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join([enc(i) for i in items])


def _map2(d: dict) -> bytes:
    parts = [b"*%d\r\n" % (2 * len(d))]
    for k, val in d.items():
        parts.append(encode2(k))
        parts.append(encode2(val))
    return b"".join(parts)


def _map3(d: dict) -> bytes:
    parts = [b"%%%d\r\n" % len(d)]
    for k, val in d.items():
        parts.append(encode3(k))
        parts.append(encode3(val))
    return b"".join(parts)


_ENC2: dict[type, Callable[[Any], bytes]] = {
    list: lambda v: _array(v, encode2),
    tuple: lambda v: _array(list(v), encode2),
    Status: lambda v: b"+%b\r\n" % v,
    Verbatim: _bulk,
    float: lambda v: _bulk(format_double(v)),
    ErrorReply: lambda v: _error_line(v.message),
    dict: _map2,
    Attribute: lambda v: b"",
    set: lambda v: _array(list(v), encode2),
    frozenset: lambda v: _array(list(v), encode2),
    Push: lambda v: _array(v, encode2),
    _NullArray: lambda v: b"*-1\r\n",
    str: lambda v: _bulk(v.encode()),
}


def _double3(v: float) -> bytes:
    if math.isnan(v):
        return b",nan\r\n"
    return b",%b\r\n" % format_double(v)


_ENC3: dict[type, Callable[[Any], bytes]] = {
    list: lambda v: _array(v, encode3),
    tuple: lambda v: _array(list(v), encode3),
    Status: lambda v: b"+%b\r\n" % v,
    Verbatim: lambda v: b"=%d\r\ntxt:%b\r\n" % (len(v) + 4, v),
    float: _double3,
    bool: lambda v: b"#t\r\n" if v else b"#f\r\n",
    ErrorReply: lambda v: _error_line(v.message),
    dict: _map3,
    Attribute: lambda v: b"",
    set: lambda v: b"~%d\r\n" % len(v) + b"".join([encode3(i) for i in v]),
    frozenset: lambda v: b"~%d\r\n" % len(v) + b"".join([encode3(i) for i in v]),
    Push: lambda v: b">%d\r\n" % len(v) + b"".join([encode3(i) for i in v]),
    _NullArray: lambda v: b"_\r\n",
    str: lambda v: _bulk(v.encode()),
}

# Pre-encoded RESP2 constants that differ in RESP3.
_RAW3: dict[bytes, bytes] = {
    b"$-1\r\n": b"_\r\n",
    b"*-1\r\n": b"_\r\n",
}

ENCODERS = {2: encode2, 3: encode3}


def error_bytes(message: str) -> bytes:
    return _error_line(message)


def encode_command(*args: bytes | str | int | float) -> bytes:
    """Encode a command as a RESP multibulk (for clients, replication streams and tests)."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = b"%d" % a
        elif isinstance(a, float):
            a = repr(a).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(a), a))
    return b"".join(parts)
