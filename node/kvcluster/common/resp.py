"""RESP request parsing and reply encoding, sans-I/O.

Theory of operation
-------------------
A connection owns one request parser. The I/O shell calls ``feed(data)`` with
whatever bytes arrived and then ``next_command()`` until it returns ``None``
(more data needed). A command is a ``list[bytes]`` (name first). Malformed
input raises :class:`ProtocolError`; its ``reply`` is the exact error line
Redis sends; the shell writes it and closes the connection.

Both parsers give Redis 7's answer for every input, quirks included (they
follow ``processMultibulkBuffer`` / ``processInlineBuffer`` in networking.c):

* A header line (``*N`` or ``$N``) ends at the first ``\\r``; the byte after it
  is skipped unchecked, and so are the two bytes after a bulk string's data.
* Redis scans the query buffer with ``strchr``, which stops at a NUL byte: a
  NUL before a header's ``\\r`` or an inline request's ``\\n`` means "no line
  yet", until the buffer passes 64 KiB and becomes "too big ...".
* Counts are parsed like ``string2ll``: no sign ``+``, no spaces, no leading
  zeros, no ``-0``, at most 20 characters, within a signed 64-bit integer.
* A client that must still AUTH may not send more than 10 arguments or a bulk
  longer than 16384 bytes (``auth_required``).

Two parsers implement this interface:

* :class:`PythonRequestParser` is the reference.
* :class:`HiredisRequestParser` is the fast path. It hands a read to hiredis
  only when the read starts at a command boundary with ``*``. hiredis parses
  more than requests (status strings, RESP3 types, ``\\r\\n`` line ends) and
  knows none of our limits, so every command it returns is checked against the
  read: the command must start with ``*`` and each argument with ``$`` at the
  offsets a well-formed encoding of that command implies. hiredis accepts only
  canonical counts (its ``string2ll`` is Redis's), so when the checks pass the
  read held exactly that encoding, which Redis parses the same way. At the
  first command that fails a check, an error from hiredis, or a command still
  incomplete at the end of the read, the rest of the read goes to the Python
  parser, which owns the connection until its buffer is empty again. A read no
  longer than the bulk limit (and six times the argument limit) cannot hold a
  complete command over the limits; partial ones are the Python parser's.
  Reads where hiredis could meet an aggregate header of 1000+ elements skip
  hiredis (it would size the list up front; see ``_small_aggregates_only``).

Replies are plain Python values encoded by :func:`encode` (see the table
there); handlers never build RESP by hand except for the pre-encoded
:class:`Raw` constants on the hot path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

try:  # pragma: no cover - exercised when hiredis is installed
    import hiredis as _hiredis
except ImportError:  # pragma: no cover
    _hiredis = None

HAVE_HIREDIS = _hiredis is not None

# Redis's PROTO_INLINE_MAX_SIZE: an unterminated inline request or count line may not grow longer.
INLINE_MAX_SIZE = 64 * 1024
# Redis refuses multibulk counts above INT_MAX whatever the configuration.
INT_MAX = 2**31 - 1
_LLONG_MAX = 2**63 - 1
# What a client that has not authenticated yet may send (Redis's authRequired() limits).
UNAUTH_MAX_MULTIBULK = 10
UNAUTH_MAX_BULK = 16384
# Bulk strings at least this long are copied out through a memoryview (one copy instead of two).
_BIG_ARG = 32 * 1024


class ProtocolError(Exception):
    """Malformed request. ``str(exc)`` is the text after ``Protocol error: ``; ``reply`` is the exact error line."""

    def __init__(self, detail: str | bytes):
        raw = detail.encode() if isinstance(detail, str) else detail
        super().__init__(raw.decode("latin-1"))
        self.reply = b"-ERR Protocol error: " + raw + b"\r\n"


class ParserLimits:
    """Request size limits (Redis defaults); shared by all connections, changeable at runtime."""

    __slots__ = ("max_bulk_len", "max_multibulk_len")

    def __init__(self, max_bulk_len: int = 512 * 1024 * 1024, max_multibulk_len: int = INT_MAX):
        self.max_bulk_len = max_bulk_len
        self.max_multibulk_len = max_multibulk_len


DEFAULT_LIMITS = ParserLimits()

# C's isspace(): skipped between inline arguments and required after a closing quote.
_ISSPACE = b" \t\n\v\f\r"
# What ends an unquoted inline argument in sdssplitargs (not \v or \f, which stay in the argument).
_UNQUOTED_END = b" \n\r\t"
_HEX = b"0123456789abcdefABCDEF"
_ESCAPES = {ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09, ord("b"): 0x08, ord("a"): 0x07}


def split_inline(line: bytes) -> list[bytes]:
    """Split an inline request exactly like Redis's ``sdssplitargs``: quotes, escapes, ``\\xHH``.

    Raises :class:`ProtocolError` ("unbalanced quotes in request") where Redis does.
    """
    nul = line.find(b"\0")
    if nul >= 0:  # a C string ends at NUL
        line = line[:nul]
    if b'"' not in line and b"'" not in line and b"\v" not in line and b"\f" not in line:
        return line.split()  # the common case; bytes.split() splits on the same bytes here
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _ISSPACE:
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
                if c == 0x5C and i + 3 < n and line[i + 1] == 0x78 and line[i + 2] in _HEX and line[i + 3] in _HEX:
                    current.append(int(line[i + 2 : i + 4], 16))  # \xHH
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    current.append(_ESCAPES.get(line[i], line[i]))
                elif c == 0x22:
                    # The closing quote must be followed by a space or nothing at all.
                    if i + 1 < n and line[i + 1] not in _ISSPACE:
                        raise ProtocolError("unbalanced quotes in request")
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
                    if i + 1 < n and line[i + 1] not in _ISSPACE:
                        raise ProtocolError("unbalanced quotes in request")
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in _UNQUOTED_END:
                    i += 1
                    break
                if c == 0x22:
                    in_double = True
                elif c == 0x27:
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))


def string2ll(s: bytes | bytearray) -> int | None:
    """Redis's ``string2ll``: the integer, or None when Redis would not accept the text."""
    n = len(s)
    if n == 0 or n >= 21:
        return None
    if s.isdigit():  # ASCII digits only, for bytes
        if s[0] == 0x30 and n > 1:
            return None
        v = int(s)
        return v if v <= _LLONG_MAX else None
    if s[0] == 0x2D and n > 1 and s[1] != 0x30:
        body = s[1:]
        if body.isdigit():
            v = int(body)
            return -v if v <= _LLONG_MAX + 1 else None
    return None


def _got(byte: int) -> bytes:
    # Redis formats the byte with %c and then maps CR and LF in error text to spaces.
    return b" " if byte in (0x0A, 0x0D) else bytes((byte,))


class PythonRequestParser:
    """Reference request parser (pure Python); see the module docstring."""

    __slots__ = (
        "_args",
        "_args_size",
        "_buf",
        "_bulk_len",
        "_limits",
        "_pos",
        "_remaining",
        "auth_required",
        "inline_seen",
    )

    def __init__(self, limits: ParserLimits = DEFAULT_LIMITS):
        self._limits = limits
        self._buf = bytearray()
        self._pos = 0
        # State of a multibulk request in progress: args so far, args still to read,
        # the length of the bulk string whose header was consumed (-1: none), and the
        # request bytes already turned into args (they still count as query buffer).
        self._args: list[bytes] | None = None
        self._remaining = 0
        self._bulk_len = -1
        self._args_size = 0
        # Set by the shell while the client has not authenticated (tighter limits apply).
        self.auth_required = False
        self.inline_seen = False

    def feed(self, data: bytes) -> None:
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data

    def pending(self) -> int:
        """Bytes received but not yet run as a command (the query buffer)."""
        return len(self._buf) - self._pos + self._args_size

    def idle(self) -> bool:
        """True when at a command boundary with nothing buffered."""
        return self._args is None and self._pos >= len(self._buf)

    def next_command(self) -> list[bytes] | None:
        while True:
            if self._args is None:
                buf, pos = self._buf, self._pos
                if pos >= len(buf):
                    self._compact()
                    return None
                if buf[pos] != 0x2A:  # not '*': an inline request
                    cmd = self._inline()
                    if cmd is None:
                        self._compact()
                        return None
                    if cmd:
                        return cmd
                    continue  # an empty line
                if not self._start_multibulk():
                    self._compact()
                    return None
                if self._args is None:  # *0 or a negative count: nothing to run
                    continue
            return self._continue_multibulk()

    def _compact(self) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0

    def _header_end(self, too_big: str) -> int:
        """Index of the ``\\r`` ending the header line at ``_pos``, or -1 when it is not all here."""
        buf, pos = self._buf, self._pos
        cr = buf.find(b"\r", pos)
        if cr < 0 or buf.find(b"\0", pos, cr) >= 0:
            if len(buf) - pos > INLINE_MAX_SIZE:
                raise ProtocolError(too_big)
            return -1
        if cr + 1 >= len(buf):  # the byte after '\r' is skipped unchecked, but it must have arrived
            return -1
        return cr

    def _start_multibulk(self) -> bool:
        cr = self._header_end("too big mbulk count string")
        if cr < 0:
            return False
        pos = self._pos
        count = string2ll(self._buf[pos + 1 : cr])
        if count is None or count > INT_MAX or count > self._limits.max_multibulk_len:
            raise ProtocolError("invalid multibulk length")
        if count > UNAUTH_MAX_MULTIBULK and self.auth_required:
            raise ProtocolError("unauthenticated multibulk length")
        self._pos = cr + 2
        if count > 0:
            self._args = []
            self._remaining = count
            self._bulk_len = -1
            self._args_size = cr + 2 - pos
        return True

    def _continue_multibulk(self) -> list[bytes] | None:
        args = self._args
        assert args is not None
        buf = self._buf
        while self._remaining:
            if self._bulk_len < 0:
                cr = self._header_end("too big bulk count string")
                if cr < 0:
                    self._compact()
                    return None
                pos = self._pos
                if buf[pos] != 0x24:  # '$'
                    raise ProtocolError(b"expected '$', got '" + _got(buf[pos]) + b"'")
                length = string2ll(buf[pos + 1 : cr])
                if length is None or length < 0 or length > self._limits.max_bulk_len:
                    raise ProtocolError("invalid bulk length")
                if length > UNAUTH_MAX_BULK and self.auth_required:
                    raise ProtocolError("unauthenticated bulk length")
                self._pos = cr + 2
                self._bulk_len = length
                self._args_size += cr + 2 - pos
            start = self._pos
            end = start + self._bulk_len
            if len(buf) < end + 2:  # the data and the two (unchecked) bytes after it
                self._compact()
                return None
            if self._bulk_len < _BIG_ARG:
                args.append(bytes(buf[start:end]))
            else:
                with memoryview(buf) as view:
                    args.append(bytes(view[start:end]))
            self._pos = end + 2
            self._args_size += self._bulk_len + 2
            self._bulk_len = -1
            self._remaining -= 1
        self._args = None
        self._args_size = 0
        return args

    def _inline(self) -> list[bytes] | None:
        buf, pos = self._buf, self._pos
        nl = buf.find(b"\n", pos)
        if nl < 0 or buf.find(b"\0", pos, nl) >= 0:
            if len(buf) - pos > INLINE_MAX_SIZE:
                raise ProtocolError("too big inline request")
            return None
        end = nl - 1 if nl > pos and buf[nl - 1] == 0x0D else nl
        line = bytes(buf[pos:end])
        self._pos = nl + 1
        self.inline_seen = True
        return split_inline(line)


class HiredisRequestParser:
    """hiredis fast path, checked against the read, with exact fallback to :class:`PythonRequestParser`.

    Two ways to check what hiredis returns (see the module docstring):

    * A read without any of the bytes ``+ = ( ~ | > %`` (nearly every read: keys
      and values rarely hold them) is *plain*: hiredis can only have built
      top-level lists from ``*`` and bytes from ``$`` there, so a command is
      right when it is a non-empty list of bytes -- one C-level ``b"".join`` tells
      (it raises for ints, None, floats and nested aggregates). The offset of
      the next command is only worked out when the Python parser takes over.
    * Any other read is checked byte by byte: ``*`` and ``$`` at the offsets a
      canonical encoding of each command implies.
    """

    __slots__ = ("_chunk", "_delivered", "_limits", "_plain", "_pos", "_py", "_reader", "_use_hiredis")

    def __init__(self, limits: ParserLimits = DEFAULT_LIMITS):
        if _hiredis is None:  # pragma: no cover
            raise RuntimeError("hiredis is not installed")
        self._limits = limits
        self._reader = _hiredis.Reader()
        self._py = PythonRequestParser(limits)
        self._use_hiredis = False
        # The read hiredis is parsing and the offset where its next command starts
        # (plain reads: the commands delivered so far instead, see _next_offset).
        self._chunk = b""
        self._pos = 0
        self._plain = False
        self._delivered: list[list[bytes]] = []

    @property
    def inline_seen(self) -> bool:
        return self._py.inline_seen

    @property
    def auth_required(self) -> bool:
        return self._py.auth_required

    @auth_required.setter
    def auth_required(self, value: bool) -> None:
        self._py.auth_required = value
        if value and self._use_hiredis:  # RESET mid-read: the rest of the read gets the tighter limits
            self._hand_over()

    def feed(self, data: bytes) -> None:
        if self._use_hiredis:  # fed again before the last read was drained (a blocked client): keep the order
            self._hand_over()
        py = self._py
        limits = self._limits
        if (
            data[:1] == b"*"
            and not py.auth_required
            and py.idle()
            and len(data) <= limits.max_bulk_len
            and len(data) <= 6 * limits.max_multibulk_len
            and not _has_big_array_header(data)
        ):
            plain = _is_plain(data)
            if plain or _small_aggregates_only(data):
                self._reader.feed(data)
                self._use_hiredis = True
                self._chunk = data
                self._pos = 0
                self._plain = plain
                if plain:
                    self._delivered = []
                return
        py.feed(data)

    def pending(self) -> int:
        if not self._use_hiredis:
            return self._py.pending()
        return len(self._chunk) - self._next_offset()

    def idle(self) -> bool:
        return not self._use_hiredis and self._py.idle()

    def next_command(self) -> list[bytes] | None:
        if not self._use_hiredis:
            return self._py.next_command()
        reader = self._reader
        # MemoryError: a huge count makes hiredis size a list; TypeError: a RESP3 map or set
        # with an aggregate as a key (unhashable). Neither is a request: the Python parser says why.
        try:
            cmd = reader.gets()
        except (_hiredis.ProtocolError, MemoryError, TypeError):
            return self._fall_back()
        if self._plain:
            if cmd is False:
                return self._end_of_plain_read()
            if cmd.__class__ is list and cmd:
                try:
                    b"".join(cmd)  # TypeError unless every argument is bytes (the read is at most 512 MiB)
                except TypeError:
                    return self._fall_back()
                self._delivered.append(cmd)
                return cmd
            return self._fall_back()
        chunk, pos = self._chunk, self._pos
        if cmd is False:
            if pos == len(chunk):  # the read ended at a command boundary
                self._use_hiredis = False
                self._chunk = b""
                self._pos = 0
                return None
            return self._fall_back()
        # Check the command against the read: '*' here, '$' before every argument.
        if cmd.__class__ is not list or chunk[pos] != 0x2A:
            return self._fall_back()
        n = len(cmd)
        if not n:
            return self._fall_back()
        pos += 4 if n < 10 else 3 + len(str(n))
        for arg in cmd:
            if arg.__class__ is not bytes or chunk[pos] != 0x24:
                return self._fall_back()
            size = len(arg)
            pos += size + (6 if size < 10 else 7 if size < 100 else 5 + len(str(size)))
        self._pos = pos
        return cmd

    def _end_of_plain_read(self) -> None:
        reader = self._reader
        if not reader.has_data():
            # hiredis has consumed every byte, but may sit inside a command whose header
            # it has read. A probe command tells: it comes back alone only at a boundary.
            reader.feed(b"*1\r\n$0\r\n\r\n")
            try:
                probe = reader.gets()
            except _hiredis.ProtocolError:  # hiredis had read a type byte ("*", "$", ":"...) the probe cannot follow
                probe = None
            if probe == [b""] and not reader.has_data():
                self._use_hiredis = False
                self._chunk = b""
                self._delivered = []
                return None
        return self._fall_back()

    def _next_offset(self) -> int:
        """Where the first command hiredis has not delivered starts in the read."""
        if not self._plain:
            return self._pos
        pos = 0
        for cmd in self._delivered:
            n = len(cmd)
            pos += 3 + len(str(n))
            for arg in cmd:
                size = len(arg)
                pos += size + 5 + len(str(size))
        return pos

    def _fall_back(self) -> list[bytes] | None:
        self._hand_over()
        return self._py.next_command()

    def _hand_over(self) -> None:
        # The Python parser takes the read from the first command hiredis did not deliver.
        self._reader = _hiredis.Reader()
        self._use_hiredis = False
        chunk, pos = self._chunk, self._next_offset()
        self._chunk = b""
        self._pos = 0
        self._delivered = []
        self._plain = False
        self._py.feed(chunk[pos:] if pos else chunk)


# A read is "plain" (see HiredisRequestParser) without any of these bytes: they start a RESP
# reply type hiredis turns into bytes or a list but a request may not contain (status,
# verbatim, big number, set, attribute, push) or into a dict (map).
_NON_PLAIN_BYTES = b"+=(~|>%"

# hiredis sizes a list as soon as it reads an aggregate header, before the elements arrive,
# and freeing a list of a billion empty slots takes seconds: a read where hiredis could
# meet a header of 1000+ elements (at any depth) goes to the Python parser instead.
_BIG_ARRAY_HEADER = re.compile(rb"\*[0-9]{4}")
_BIG_SET_HEADER = re.compile(rb"~[0-9]{4}")
_BIG_PUSH_HEADER = re.compile(rb">[0-9]{4}")
_BIG_ATTRIBUTE_HEADER = re.compile(rb"\|[0-9]{4}")


def _is_plain(data: bytes) -> bool:
    """No byte of ``_NON_PLAIN_BYTES`` in ``data`` (see HiredisRequestParser)."""
    if len(data) < 2048:
        # One C pass: cheaper than seven `in` tests, each with its own call overhead.
        return len(data.translate(None, _NON_PLAIN_BYTES)) == len(data)
    # Big reads: memchr per byte value beats translate's byte-by-byte copy by far.
    return not (
        b"+" in data or b"=" in data or b"(" in data or b"~" in data or b"|" in data or b">" in data
        or b"%" in data
    )  # fmt: skip


def _has_big_array_header(data: bytes) -> bool:
    """``*`` followed by four digits anywhere in ``data`` (see _BIG_ARRAY_HEADER)."""
    if len(data) < 2048:
        return _BIG_ARRAY_HEADER.search(data) is not None
    # A regex walks big reads byte by byte in Python's engine; finding each '*' is memchr,
    # and a read of big values holds few of them (one per command, plus any in the values).
    find = data.find
    i = find(b"*")
    while i >= 0:
        if data[i + 1 : i + 5].isdigit():
            return True
        i = find(b"*", i + 1)
    return False


def _small_aggregates_only(data: bytes) -> bool:
    # For the RESP3 markers a memchr test first: those bytes are rare in requests.
    return not (
        _BIG_ARRAY_HEADER.search(data)
        or (b"~" in data and _BIG_SET_HEADER.search(data))
        or (b">" in data and _BIG_PUSH_HEADER.search(data))
        or (b"|" in data and _BIG_ATTRIBUTE_HEADER.search(data))
    )


def make_request_parser(
    kind: str = "auto", limits: ParserLimits = DEFAULT_LIMITS
) -> PythonRequestParser | HiredisRequestParser:
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
    if math.isnan(value):
        return b"nan"
    if value == int(value) and abs(value) < 1e17 and (value or math.copysign(1.0, value) > 0):
        return b"%d" % int(value)
    return (b"%.17g" % value).lower()


def _bulk(v: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(v), v)


def _error_line(message: str) -> bytes:
    # An error line may not contain CR/LF; Redis replaces them with spaces. Text decoded from
    # client bytes with "surrogateescape" goes back out as those bytes, like Redis echoes them.
    line = message.replace("\r", " ").replace("\n", " ")
    try:
        encoded = line.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        encoded = line.encode("utf-8", "replace")
    return b"-" + encoded + b"\r\n"


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
    if isinstance(v, (bytes, bytearray, memoryview)):
        return _bulk(bytes(v))
    if isinstance(v, str):
        return _bulk(v.encode())
    if isinstance(v, int):  # IntEnum and friends
        return enc(int(v))
    if isinstance(v, float):
        return enc(float(v))
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
