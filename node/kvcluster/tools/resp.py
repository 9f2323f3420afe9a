"""A RESP client that keeps every reply's type, for printing replies the way redis-cli does.

redis-py turns a status reply and a bulk string into the same ``bytes`` and a RESP3 double into a
``float``; redis-cli prints them differently (``OK`` vs ``"OK"``, ``(double) 1.5``), so the cli
needs the types. :class:`ReplyParser` is sans-I/O (``feed(bytes)`` then ``next_reply()`` until
:data:`NEED_DATA`); :class:`Connection` is the thin blocking socket around it.

Reply values:

======================  =========================================
RESP                    Python
======================  =========================================
``+`` simple string     :class:`Status` (a ``str``)
``-`` error             :class:`Error` (a ``str``, prefix included)
``:`` integer           ``int``
``$`` bulk string       ``bytes``
``$-1``, ``*-1``, ``_`` ``None``
``,`` double            :class:`Double` (the text as sent)
``#`` boolean           ``bool``
``(`` big number        :class:`BigNumber` (the digits as sent)
``=`` verbatim string   :class:`Verbatim` (``format`` and ``text``)
``*`` array             ``list``
``~`` set               :class:`Set` (a ``list``)
``>`` push              :class:`Push` (a ``list``)
``%`` map               :class:`Map` (a ``list`` of ``(key, value)``)
``|`` attribute         skipped; the reply it annotates is returned
======================  =========================================
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any, Final


class Status(str):
    __slots__ = ()


class Error(str):
    __slots__ = ()

    @property
    def code(self) -> str:
        """The error's prefix: ``ERR``, ``READONLY``, ``NOAUTH``..."""
        return self.split(" ", 1)[0]


class Double(str):
    __slots__ = ()


class BigNumber(str):
    __slots__ = ()


@dataclass(frozen=True)
class Verbatim:
    format: str
    text: bytes


class Set(list):
    __slots__ = ()


class Push(list):
    __slots__ = ()


class Map(list):
    """A RESP3 map as ``(key, value)`` pairs, in the order the server sent them."""

    __slots__ = ()


class ProtocolError(Exception):
    """The server sent something that is not RESP."""


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


class _Incomplete(Exception):
    pass


class ReplyParser:
    """RESP2/RESP3 replies from a byte stream: ``feed(data)``, then ``next_reply()`` until NEED_DATA."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_reply(self) -> Any:
        try:
            value, pos = self._parse(self._pos)
        except _Incomplete:
            return NEED_DATA
        self._pos = pos
        return value

    def _line(self, pos: int) -> tuple[bytes, int]:
        end = self._buf.find(b"\r\n", pos)
        if end < 0:
            raise _Incomplete
        return bytes(self._buf[pos:end]), end + 2

    def _bulk(self, pos: int, length: int) -> tuple[bytes, int]:
        end = pos + length
        if len(self._buf) < end + 2:
            raise _Incomplete
        return bytes(self._buf[pos:end]), end + 2

    def _parse(self, pos: int) -> tuple[Any, int]:
        if pos >= len(self._buf):
            raise _Incomplete
        kind = self._buf[pos : pos + 1]
        line, pos = self._line(pos + 1)
        text = line.decode("utf-8", "surrogateescape")
        if kind == b"+":
            return Status(text), pos
        if kind == b"-":
            return Error(text), pos
        if kind == b":":
            return self._int(line), pos
        if kind in b"$=!":
            length = self._int(line)
            if length < 0:
                return None, pos
            data, pos = self._bulk(pos, length)
            if kind == b"$":
                return data, pos
            if kind == b"!":
                return Error(data.decode("utf-8", "surrogateescape")), pos
            fmt, _, body = data.partition(b":")
            return Verbatim(fmt.decode("ascii", "replace"), body), pos
        if kind == b"_":
            return None, pos
        if kind == b",":
            return Double(text), pos
        if kind == b"#":
            if line not in (b"t", b"f"):
                raise ProtocolError(f"bad boolean {line!r}")
            return line == b"t", pos
        if kind == b"(":
            return BigNumber(text), pos
        if kind in b"*~>%|":
            count = self._int(line)
            if count < 0:
                return None, pos
            if kind in b"%|":
                pairs = []
                for _ in range(count):
                    key, pos = self._parse(pos)
                    value, pos = self._parse(pos)
                    pairs.append((key, value))
                if kind == b"|":  # attributes annotate the reply that follows: keep the reply
                    return self._parse(pos)
                return Map(pairs), pos
            items = []
            for _ in range(count):
                item, pos = self._parse(pos)
                items.append(item)
            if kind == b"~":
                return Set(items), pos
            if kind == b">":
                return Push(items), pos
            return items, pos
        raise ProtocolError(f"unexpected reply type byte {bytes(kind)!r}")

    @staticmethod
    def _int(line: bytes) -> int:
        try:
            return int(line)
        except ValueError:
            raise ProtocolError(f"bad number {line!r}") from None


def encode_command(args: list[bytes]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(out)


def as_bytes(value: str | bytes | int) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


class Connection:
    """One blocking connection to a server; replies come back typed (see the module docstring)."""

    def __init__(self, host: str, port: int, timeout: float | None = 10.0, connect_timeout: float = 5.0):
        self.host = host
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.settimeout(timeout)
        self._timeout = timeout
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = ReplyParser()

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    def send(self, args: list[bytes]) -> None:
        self.sock.sendall(encode_command(args))

    def read_reply(self) -> Any:
        while True:
            reply = self.parser.next_reply()
            if reply is not NEED_DATA:
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"connection to {self.address} closed by the server")
            self.parser.feed(data)

    def call(self, *args: str | bytes | int) -> Any:
        self.send([as_bytes(a) for a in args])
        return self.read_reply()

    def peer_closed(self) -> bool:
        """Whether the server has already closed this idle connection (a killed leader's socket reads EOF).

        Checked before sending, so a dead connection is replaced before a command goes out on it
        and the command is never left half-way (sent, reply lost).
        """
        try:
            self.sock.setblocking(False)
            try:
                data = self.sock.recv(65536)
            finally:
                self.sock.setblocking(True)
                self.sock.settimeout(self._timeout)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        if not data:
            return True
        self.parser.feed(data)  # an unsolicited push message: keep it for the next read
        return False

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout
        self.sock.settimeout(timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """``host:port``, ``host``, ``[v6]:port`` -> (host, port). Raises ValueError."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"no host in {text!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port_text)
