"""The sans-I/O RESP layer: request parsing (hiredis fast path and pure-Python parser) and reply encoding.

Every parser test runs against both parser kinds; they must give the same
commands and the same errors as Redis 7 (``processInlineBuffer`` /
``processMultibulkBuffer`` in networking.c) for every input:

* example tests: multibulk, inline requests with ``sdssplitargs`` quoting, empty
  lines, byte-at-a-time feeding, big bulks split across reads, every protocol
  error message Redis sends, the configurable limits and the tighter limits
  for clients that must still authenticate;
* Hypothesis properties: the two parsers agree on random streams (valid requests
  mixed with garbage, random split points, random limits); requests encoded as
  RESP or inline and fed in random chunks come back exactly; and a real
  ``redis-server`` answers random streams byte for byte as the parser plus the
  node's dispatch do;
* reply encoding for each reply type in RESP2 and RESP3.
"""

from __future__ import annotations

import enum
import itertools
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import hiredis
import pytest
from helpers import free_port, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kvcluster.common.resp import (
    HAVE_HIREDIS,
    INLINE_MAX_SIZE,
    NULL_ARRAY,
    NULL_BULK_RESP2,
    OK,
    Attribute,
    ErrorReply,
    ParserLimits,
    ProtocolError,
    Push,
    Raw,
    Status,
    Verbatim,
    encode2,
    encode3,
    encode_command,
    make_request_parser,
    split_inline,
)
from kvcluster.node.core import Node
from kvcluster.node.settings import node_config

KINDS = ["hiredis", "python"]
BIG_LIMITS = (512 * 1024 * 1024, 2**31 - 1)

# Bounded, reproducible property runs (no example database: CI sees the same examples every time).
PROPERTY = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_hiredis_is_installed() -> None:
    assert HAVE_HIREDIS, "hiredis is a dependency: the fast path must be tested"


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def run(
    kind: str,
    *chunks: bytes,
    limits: ParserLimits | None = None,
    auth_required: bool = False,
) -> tuple[list[list[bytes]], str | None]:
    """Feed ``chunks`` one by one, draining commands after each: (commands, protocol error text or None)."""
    parser = make_request_parser(kind, limits or ParserLimits())
    parser.auth_required = auth_required
    commands: list[list[bytes]] = []
    for chunk in chunks:
        parser.feed(chunk)
        while True:
            try:
                cmd = parser.next_command()
            except ProtocolError as e:
                assert e.reply == b"-ERR Protocol error: " + str(e).encode("latin-1") + b"\r\n"
                return commands, str(e)
            if cmd is None:
                break
            commands.append(cmd)
    return commands, None


def commands_of(kind: str, *chunks: bytes, **kw) -> list[list[bytes]]:
    commands, error = run(kind, *chunks, **kw)
    assert error is None, error
    return commands


def error_of(kind: str, *chunks: bytes, **kw) -> str:
    _, error = run(kind, *chunks, **kw)
    assert error is not None, "expected a protocol error"
    return error


# ---------------------------------------------------------------------------
# Multibulk requests
# ---------------------------------------------------------------------------


def test_multibulk(kind: str) -> None:
    assert commands_of(kind, b"*1\r\n$4\r\nPING\r\n") == [[b"PING"]]
    assert commands_of(kind, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n") == [[b"SET", b"k", b"value"]]


def test_multibulk_binary_arguments(kind: str) -> None:
    # Bulk strings carry any bytes: CR, LF, NUL, RESP markers, nothing is interpreted.
    args = [b"SET", b"a\r\nb", b"\x00\xff\r\n*1\r\n$3\r\n+OK%~|>", b""]
    assert commands_of(kind, encode_command(*args)) == [args]


def test_pipelined_multibulk_in_one_read(kind: str) -> None:
    cmds = [[b"SET", b"k%d" % i, b"v" * i] for i in range(50)]
    data = b"".join(encode_command(*c) for c in cmds)
    assert commands_of(kind, data) == cmds


def test_many_arguments(kind: str) -> None:
    args = [b"RPUSH", b"list", *(b"%d" % i for i in range(5000))]
    assert commands_of(kind, encode_command(*args)) == [args]


def test_empty_and_null_multibulk_are_skipped(kind: str) -> None:
    # Redis runs nothing for *0 and negative counts, and keeps the connection.
    data = b"*0\r\n*-1\r\n*-10\r\n*1\r\n$4\r\nPING\r\n"
    assert commands_of(kind, data) == [[b"PING"]]


def test_byte_after_cr_and_after_bulk_data_is_not_checked(kind: str) -> None:
    # Redis's quirk: a header line ends at '\r' and the next byte is skipped whatever it is,
    # and so are the two bytes after a bulk string's data.
    assert commands_of(kind, b"*1\rX$4\rXPINGYY") == [[b"PING"]]
    assert commands_of(kind, b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n") == [[b"PING"], [b"PING"]]


def test_resp3_markers_at_top_level_are_inline_requests(kind: str) -> None:
    # Only '*' starts a multibulk request: any other first byte makes an inline request.
    data = b"*1\r\n$4\r\nPING\r\n%1\r\n+OK\r\n:1\r\n"
    assert commands_of(kind, data) == [[b"PING"], [b"%1"], [b"+OK"], [b":1"]]


def test_read_ending_inside_a_header(kind: str) -> None:
    # A read may end anywhere, even right after the '*' or '$' of a header.
    for cut in (b"*", b"*1", b"*1\r", b"*1\r\n", b"*1\r\n$", b"*1\r\n$4", b"*1\r\n$4\r\nPI"):
        assert commands_of(kind, b"*1\r\n$4\r\nPING\r\n" + cut) == [[b"PING"]], cut
        rest = b"*1\r\n$4\r\nPING\r\n"[len(cut) :]
        assert commands_of(kind, b"*1\r\n$4\r\nPING\r\n" + cut, rest) == [[b"PING"], [b"PING"]], cut


def test_resp3_map_with_an_aggregate_key_in_a_read(kind: str) -> None:
    # hiredis raises TypeError (unhashable key) building such a map: it is garbage like any other.
    data = b"*1\r\n$4\r\nPING\r\n%1\r\n*1\r\n$1\r\na\r\n$1\r\nb\r\n"
    assert commands_of(kind, data) == [[b"PING"], [b"%1"], [b"a"], [b"$1"], [b"b"]]
    assert error_of(kind, b"*2\r\n%1\r\n*1\r\n$1\r\na\r\n$1\r\nb\r\n") == "expected '$', got '%'"


# ---------------------------------------------------------------------------
# Inline requests
# ---------------------------------------------------------------------------


def test_inline(kind: str) -> None:
    assert commands_of(kind, b"PING\r\n") == [[b"PING"]]
    assert commands_of(kind, b"SET k v\n") == [[b"SET", b"k", b"v"]]
    assert commands_of(kind, b"  GET \t  k   \r\n") == [[b"GET", b"k"]]
    assert commands_of(kind, b"PING\r\nECHO hi\r\n") == [[b"PING"], [b"ECHO", b"hi"]]


def test_inline_mixed_with_multibulk(kind: str) -> None:
    data = b"PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nECHO there\n"
    assert commands_of(kind, data) == [[b"PING"], [b"ECHO", b"hi"], [b"ECHO", b"there"]]


def test_empty_lines_are_skipped(kind: str) -> None:
    assert commands_of(kind, b"\r\n\n\r\n   \r\n\t\nPING\r\n\r\n") == [[b"PING"]]


@pytest.mark.parametrize(
    ("line", "args"),
    [
        (b'SET k "hello world"', [b"SET", b"k", b"hello world"]),
        (b'ECHO "a\\x41\\x7a"', [b"ECHO", b"aAz"]),
        (b'ECHO "\\xff\\x00\\x0D"', [b"ECHO", b"\xff\x00\r"]),
        (b'ECHO "\\x4"', [b"ECHO", b"x4"]),  # not two hex digits: a plain escaped 'x'
        (b'ECHO "\\xZZ"', [b"ECHO", b"xZZ"]),
        (b'ECHO "\\n\\r\\t\\b\\a\\\\\\"\\q"', [b"ECHO", b'\n\r\t\b\a\\"q']),
        (b"ECHO 'it\\'s'", [b"ECHO", b"it's"]),
        (b"ECHO 'a\\nb \"x\"'", [b"ECHO", b'a\\nb "x"']),  # no escapes in single quotes but \'
        (b'ECHO foo"bar baz"', [b"ECHO", b"foobar baz"]),  # a quote inside a word starts quoting
        (b"ECHO a'b c'd", None),  # ...and must end the word when it closes
        (b"ECHO \"\" ''", [b"ECHO", b"", b""]),
        (b'ECHO "a"\tb', [b"ECHO", b"a", b"b"]),
        (b"ECHO a\vb \fc\f", [b"ECHO", b"a\vb", b"c\f"]),  # \v and \f stay in a word but are skipped before one
        (b"\v\fECHO x", [b"ECHO", b"x"]),
        (b"ECHO a\rb", [b"ECHO", b"a", b"b"]),  # a lone CR ends a word
        (b'ECHO "a\rb"', [b"ECHO", b"a\rb"]),
        (b"ECHO \xff\xfe", [b"ECHO", b"\xff\xfe"]),
    ],
)
def test_inline_quoting_like_sdssplitargs(kind: str, line: bytes, args: list[bytes] | None) -> None:
    if args is None:
        assert error_of(kind, line + b"\r\n") == "unbalanced quotes in request"
    else:
        assert commands_of(kind, line + b"\r\n") == [args]
        assert split_inline(line) == args


@pytest.mark.parametrize(
    "line",
    [b'SET k "unterminated', b"SET k 'unterminated", b'ECHO "a"b', b"ECHO 'a'b", b'ECHO "a""b"', b'ECHO "\\'],
)
def test_unbalanced_quotes(kind: str, line: bytes) -> None:
    commands, error = run(kind, b"PING\r\n" + line + b"\r\nPING\r\n")
    assert commands == [[b"PING"]]  # what came before still runs; nothing after the error
    assert error == "unbalanced quotes in request"


def test_inline_crlf_and_lf(kind: str) -> None:
    # The line ends at LF; one CR before it is dropped (and another would end a word).
    assert commands_of(kind, b"ECHO a\r\r\n") == [[b"ECHO", b"a"]]
    assert commands_of(kind, b'ECHO "a\r"\r\n') == [[b"ECHO", b"a\r"]]


# ---------------------------------------------------------------------------
# Feeding: byte at a time, big bulks, pending(), idle()
# ---------------------------------------------------------------------------

MIXED_STREAM = (
    encode_command("SET", "key", "a\r\nvalue")
    + b"PING\r\n\r\n"
    + b'ECHO "quoted \\x41"\n'
    + encode_command("MSET", *[f"k{i}" for i in range(20)])
    + b"*0\r\n"
    + encode_command("ECHO", "x" * 300)
)
MIXED_COMMANDS = [
    [b"SET", b"key", b"a\r\nvalue"],
    [b"PING"],
    [b"ECHO", b"quoted A"],
    [b"MSET", *(b"k%d" % i for i in range(20))],
    [b"ECHO", b"x" * 300],
]


def test_byte_at_a_time(kind: str) -> None:
    assert commands_of(kind, MIXED_STREAM) == MIXED_COMMANDS
    assert commands_of(kind, *(MIXED_STREAM[i : i + 1] for i in range(len(MIXED_STREAM)))) == MIXED_COMMANDS


def test_big_bulk_split_across_feeds(kind: str) -> None:
    value = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes
    data = encode_command("SET", "big", value) + encode_command("GET", "big")
    parser = make_request_parser(kind, ParserLimits())
    got = []
    sizes = [1, 3, 65536, 7, 300_000, 11, len(data)]
    pos = 0
    for size in sizes:
        chunk = data[pos : pos + size]
        pos += size
        parser.feed(chunk)
        while (cmd := parser.next_command()) is not None:
            got.append(cmd)
        if pos < len(data) - 20:
            assert not got
            assert parser.pending() == pos  # the whole incomplete request counts as query buffer
            assert not parser.idle()
    assert got == [[b"SET", b"big", value], [b"GET", b"big"]]
    assert parser.pending() == 0
    assert parser.idle()


def test_pending_counts_parsed_arguments_of_an_incomplete_request(kind: str) -> None:
    parser = make_request_parser(kind, ParserLimits())
    head = b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nabc\r\n$5\r\nhel"
    parser.feed(head)
    assert parser.next_command() is None
    assert parser.pending() == len(head)
    parser.feed(b"lo\r\n")
    assert parser.next_command() == [b"SET", b"k", b"abc", b"hello"]
    assert parser.pending() == 0
    assert parser.idle()


@pytest.mark.parametrize("marker", [b"", b"+"])  # a "plain" read for hiredis, and one it checks byte by byte
def test_fed_again_before_draining(kind: str, marker: bytes) -> None:
    # A blocked client (WAIT) stops draining in the middle of a read, and more reads arrive meanwhile.
    parser = make_request_parser(kind, ParserLimits())
    parser.feed(encode_command("WAIT", "1", "0") + encode_command("SET", "a", b"1" + marker))
    assert parser.next_command() == [b"WAIT", b"1", b"0"]
    last = encode_command("SET", "c", "3")
    parser.feed(encode_command("SET", "b", "2") + last[:7])
    parser.feed(last[7:])
    got = []
    while (cmd := parser.next_command()) is not None:
        got.append(cmd)
    assert got == [[b"SET", b"a", b"1" + marker], [b"SET", b"b", b"2"], [b"SET", b"c", b"3"]]
    assert parser.idle()


def test_pending_of_an_incomplete_inline_request(kind: str) -> None:
    parser = make_request_parser(kind, ParserLimits())
    parser.feed(b"PING\r\nSET k ")
    assert parser.next_command() == [b"PING"]
    assert parser.next_command() is None
    assert parser.pending() == 6
    assert not parser.idle()


# ---------------------------------------------------------------------------
# Protocol errors: Redis's exact messages
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"*abc\r\n", "invalid multibulk length"),
        (b"*\r\n", "invalid multibulk length"),
        (b"*+1\r\n", "invalid multibulk length"),
        (b"*01\r\n", "invalid multibulk length"),
        (b"*-0\r\n", "invalid multibulk length"),
        (b"* 1\r\n", "invalid multibulk length"),
        (b"*1 \r\n", "invalid multibulk length"),
        (b"*2147483648\r\n", "invalid multibulk length"),  # INT_MAX + 1, whatever the configuration
        (b"*99999999999999999999\r\n", "invalid multibulk length"),  # past LLONG_MAX
        (b"*1\r\n$abc\r\n", "invalid bulk length"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$-0\r\n", "invalid bulk length"),
        (b"*1\r\n$01\r\n", "invalid bulk length"),
        (b"*1\r\n$+1\r\n", "invalid bulk length"),
        (b"*1\r\n$\r\n", "invalid bulk length"),
        (b"*1\r\n$536870913\r\n", "invalid bulk length"),  # past the default proto-max-bulk-len
        (b"*1\r\nx\r\n", "expected '$', got 'x'"),
        (b"*1\r\n:1\r\n", "expected '$', got ':'"),
        (b"*1\r\n*1\r\n$1\r\na\r\n", "expected '$', got '*'"),
        (b"*2\r\n$3\r\nGET\r\n+OK\r\n", "expected '$', got '+'"),
        (b"*1\r\n\r\n", "expected '$', got ' '"),  # CR and LF are shown as spaces
        (b"*1\r\n\n\r\n", "expected '$', got ' '"),
        (b"*1\r\n\xff\r\n", "expected '$', got '\xff'"),
    ],
)
def test_protocol_error_messages(kind: str, data: bytes, message: str) -> None:
    assert error_of(kind, data) == message
    # The same in a read after a good command, and fed a byte at a time.
    commands, error = run(kind, b"*1\r\n$4\r\nPING\r\n" + data)
    assert (commands, error) == ([[b"PING"]], message)
    commands, error = run(kind, *(data[i : i + 1] for i in range(len(data))))
    assert (commands, error) == ([], message)


def test_protocol_error_reply_line(kind: str) -> None:
    parser = make_request_parser(kind, ParserLimits())
    parser.feed(b"*1\r\nx\r\n")
    with pytest.raises(ProtocolError) as info:
        parser.next_command()
    assert info.value.reply == b"-ERR Protocol error: expected '$', got 'x'\r\n"


def test_too_big_inline_request(kind: str) -> None:
    # An unterminated inline request may grow to PROTO_INLINE_MAX_SIZE (64 KiB), not past it.
    assert run(kind, b"A" * INLINE_MAX_SIZE) == ([], None)
    assert error_of(kind, b"A" * (INLINE_MAX_SIZE + 1)) == "too big inline request"
    assert error_of(kind, b"A" * INLINE_MAX_SIZE, b"B") == "too big inline request"
    assert error_of(kind, *[b"x" * 1000] * 70) == "too big inline request"


def test_too_big_count_strings(kind: str) -> None:
    assert run(kind, b"*" + b"1" * (INLINE_MAX_SIZE - 1)) == ([], None)
    assert error_of(kind, b"*" + b"1" * INLINE_MAX_SIZE) == "too big mbulk count string"
    assert error_of(kind, b"*1\r\n$" + b"1" * (INLINE_MAX_SIZE + 10)) == "too big bulk count string"
    assert error_of(kind, b"*1\r\n", b"$", b"1" * (INLINE_MAX_SIZE + 10)) == "too big bulk count string"


def test_nul_before_the_line_end_means_no_line_yet(kind: str) -> None:
    # Redis finds line ends with strchr(), which stops at NUL: the request waits, then is too big.
    assert run(kind, b"PING\x00\r\n") == ([], None)
    assert error_of(kind, b"PING\x00\r\n" + b"x" * INLINE_MAX_SIZE) == "too big inline request"
    assert run(kind, b"*1\x00\r\n$4\r\nPING\r\n") == ([], None)
    assert error_of(kind, b"*1\x00\r\n" + b"x" * INLINE_MAX_SIZE) == "too big mbulk count string"


def test_commands_before_an_error_are_delivered(kind: str) -> None:
    commands, error = run(kind, b"PING\r\n*1\r\n$4\r\nECHO\r\n*x\r\nPING\r\n")
    assert commands == [[b"PING"], [b"ECHO"]]
    assert error == "invalid multibulk length"


# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------


def test_proto_max_bulk_len(kind: str) -> None:
    limits = ParserLimits(max_bulk_len=10)
    assert commands_of(kind, encode_command("SET", "k", "x" * 10), limits=limits) == [[b"SET", b"k", b"x" * 10]]
    # Complete in one read (the hiredis fast path must not skip the check) or header only.
    assert error_of(kind, encode_command("SET", "k", "x" * 11), limits=limits) == "invalid bulk length"
    assert error_of(kind, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$11\r\n", limits=limits) == "invalid bulk length"


def test_proto_max_multibulk_len(kind: str) -> None:
    limits = ParserLimits(max_multibulk_len=3)
    assert commands_of(kind, encode_command("SET", "k", "v"), limits=limits) == [[b"SET", b"k", b"v"]]
    assert error_of(kind, encode_command("MSET", "a", "1", "b"), limits=limits) == "invalid multibulk length"
    assert error_of(kind, b"*4\r\n", limits=limits) == "invalid multibulk length"
    # Inline requests are bounded by their 64 KiB line, not by the argument count.
    assert commands_of(kind, b"MSET a 1 b 2\r\n", limits=limits) == [[b"MSET", b"a", b"1", b"b", b"2"]]


def test_limits_change_at_runtime(kind: str) -> None:
    # CONFIG SET changes the shared limits object: connections already open see the new value.
    limits = ParserLimits()
    parser = make_request_parser(kind, limits)
    parser.feed(encode_command("SET", "k", "x" * 100))
    assert parser.next_command() == [b"SET", b"k", b"x" * 100]
    assert parser.next_command() is None
    limits.max_bulk_len = 50
    parser.feed(encode_command("SET", "k", "x" * 100))
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        parser.next_command()


def test_unauthenticated_limits(kind: str) -> None:
    # A client that must still AUTH may send at most 10 arguments of at most 16 KiB.
    ten = encode_command("AUTH", *["x"] * 9)
    assert commands_of(kind, ten, auth_required=True) == [[b"AUTH", *[b"x"] * 9]]
    assert error_of(kind, b"*11\r\n", auth_required=True) == "unauthenticated multibulk length"
    assert error_of(kind, encode_command("AUTH", "x" * 16384, "y" * 16385), auth_required=True) == (
        "unauthenticated bulk length"
    )
    assert commands_of(kind, encode_command("AUTH", "x" * 16384), auth_required=True) == [[b"AUTH", b"x" * 16384]]
    # The general checks come first.
    assert error_of(kind, b"*2147483648\r\n", auth_required=True) == "invalid multibulk length"
    assert error_of(kind, b"*1\r\n$-1\r\n", auth_required=True) == "invalid bulk length"
    # Without the flag the same requests are fine.
    assert commands_of(kind, encode_command("AUTH", *["x"] * 20)) == [[b"AUTH", *[b"x"] * 20]]


def test_authenticating_mid_read_lifts_the_limits(kind: str) -> None:
    parser = make_request_parser(kind, ParserLimits())
    parser.auth_required = True
    parser.feed(encode_command("AUTH", "secret") + encode_command("MSET", *["k"] * 20))
    assert parser.next_command() == [b"AUTH", b"secret"]
    parser.auth_required = False  # what the shell does after a successful AUTH
    assert parser.next_command() == [b"MSET", *[b"k"] * 20]


def test_reset_mid_read_restores_the_limits(kind: str) -> None:
    # RESET makes the client unauthenticated again: the rest of the read gets the tight limits.
    parser = make_request_parser(kind, ParserLimits())
    parser.feed(encode_command("RESET") + encode_command("MSET", *["k"] * 20))
    assert parser.next_command() == [b"RESET"]
    parser.auth_required = True
    with pytest.raises(ProtocolError, match="unauthenticated multibulk length"):
        parser.next_command()


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

_TOKENS = [
    b"*", b"$", b"\r", b"\n", b"\r\n", b"\x00", b"0", b"1", b"9", b"-", b"+", b" ", b"\t", b"\v", b'"', b"'",
    b"\\", b"\\x41", b"\\x4", b"x", b"PING", b"ECHO", b"\xff", b"*1\r\n", b"*2\r\n", b"*3\r\n", b"$1\r\n",
    b"$4\r\nPING\r\n", b"$-1\r\n", b"*-1\r\n", b"*0\r\n", b"*01\r\n", b"$01\r\n", b"$+1\r\n", b"*1000\r\n",
    b"$100\r\n", b":1\r\n", b"+OK\r\n", b"-ERR\r\n", b"#t\r\n", b"_\r\n", b",1.5\r\n", b"(1\r\n", b"!1\r\n",
    b"%1\r\n", b"~1\r\n", b">1\r\n", b"|1\r\n", b"=5\r\ntxt:a\r\n",
]  # fmt: skip
_ARG = st.one_of(st.binary(max_size=12), st.sampled_from([b"PING", b"ECHO", b"x", b"+OK", b"%1", b"*1\r\n"]))
_VALID = st.lists(_ARG, min_size=1, max_size=5).map(lambda args: encode_command(*args))
_INLINE = st.sampled_from(
    [b"PING\r\n", b"ECHO 'a b'\r\n", b'ECHO "a\\x41"\r\n', b"\r\n", b"\n", b'ECHO "a"b\r\n', b"ECHO 'a\r\n"]
)
_STREAM = st.lists(st.one_of(_VALID, _INLINE, st.sampled_from(_TOKENS), st.binary(max_size=6)), max_size=14).map(
    b"".join
)


@st.composite
def _split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=6))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _outcome(kind: str, chunks: list[bytes], limits: tuple[int, int], auth: bool) -> tuple:
    parser = make_request_parser(kind, ParserLimits(*limits))
    parser.auth_required = auth
    commands: list[list[bytes]] = []
    for chunk in chunks:
        parser.feed(chunk)
        while True:
            try:
                cmd = parser.next_command()
            except ProtocolError as e:
                return commands, e.reply
            if cmd is None:
                break
            commands.append(cmd)
    # No error: both must also agree on what is left over (more data needed, or nothing).
    return commands, None, parser.pending(), parser.idle()


@settings(PROPERTY, max_examples=1000)
@given(
    data=st.data(),
    stream=_STREAM,
    limits=st.sampled_from([BIG_LIMITS, (10, 3), (1, 1), (100, 2)]),
    auth=st.booleans(),
)
def test_property_parsers_agree(data: st.DataObject, stream: bytes, limits: tuple[int, int], auth: bool) -> None:
    chunks = data.draw(_split(stream))
    assert _outcome("hiredis", chunks, limits, auth) == _outcome("python", chunks, limits, auth)


@settings(PROPERTY, max_examples=300)
@given(data=st.data(), requests=st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=8), max_size=10))
def test_property_multibulk_round_trip(data: st.DataObject, requests: list[list[bytes]]) -> None:
    stream = b"".join(encode_command(*r) for r in requests)
    chunks = data.draw(_split(stream))
    for kind in KINDS:
        assert commands_of(kind, *chunks) == requests


def _inline_quote(arg: bytes) -> bytes:
    return b'"' + b"".join(b"\\x%02x" % c for c in arg) + b'"'


@settings(PROPERTY, max_examples=300)
@given(data=st.data(), requests=st.lists(st.lists(st.binary(max_size=20), min_size=1, max_size=6), max_size=8))
def test_property_inline_round_trip(data: st.DataObject, requests: list[list[bytes]]) -> None:
    # Any bytes survive an inline request as "..." with \xHH escapes.
    stream = b"".join(b" ".join(_inline_quote(a) for a in r) + b"\r\n" for r in requests)
    chunks = data.draw(_split(stream))
    for kind in KINDS:
        assert commands_of(kind, *chunks) == requests


@settings(PROPERTY, max_examples=200)
@given(requests=st.lists(st.lists(st.binary(min_size=0, max_size=70_000), min_size=1, max_size=3), max_size=3))
def test_property_big_arguments_round_trip(requests: list[list[bytes]]) -> None:
    stream = b"".join(encode_command(*r) for r in requests)
    for size in (4096, 65536):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        for kind in KINDS:
            assert commands_of(kind, *chunks) == requests


@settings(PROPERTY, max_examples=300)
@given(data=st.data(), stream=_STREAM)
def test_property_draining_late_changes_nothing(data: st.DataObject, stream: bytes) -> None:
    # The shell may stop taking commands mid-read (a blocked client) and feed more reads first:
    # the commands and the error must be the same as when every read is drained at once.
    chunks = data.draw(_split(stream))
    takes = data.draw(st.lists(st.integers(0, 3), min_size=len(chunks), max_size=len(chunks)))
    for kind in KINDS:
        parser = make_request_parser(kind, ParserLimits())
        got: list[list[bytes]] = []
        error = None
        try:
            for chunk, take in zip(chunks, takes, strict=True):
                parser.feed(chunk)
                for _ in range(take):
                    cmd = parser.next_command()
                    if cmd is None:
                        break
                    got.append(cmd)
            while (cmd := parser.next_command()) is not None:
                got.append(cmd)
        except ProtocolError as e:
            error = str(e)
        assert (got, error) == run("python", stream), kind


# ---------------------------------------------------------------------------
# Against a real redis-server: the same bytes out for the same bytes in
# ---------------------------------------------------------------------------


# The only commands both sides know in these comparisons: random streams hit any name (Hypothesis
# draws names from the code's string constants too), and what INFO or TIME answer differs anyway.
ORACLE_COMMANDS = (b"ping", b"echo", b"quit")


def _start_redis(exe: str, port: int, directory: Path, *extra: str) -> subprocess.Popen:
    cmd = [exe, *extra, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return subprocess.Popen(cmd, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_redis(port: int) -> None:
    wait_until(
        lambda: _redis_exchange(port, b"*1\r\n$4\r\nPING\r\n").startswith((b"+PONG", b"-NOAUTH")),
        timeout=10,
        what=f"redis-server on {port}",
    )


@pytest.fixture(scope="module")
def redis_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    """Two real redis-servers knowing only ORACLE_COMMANDS: one open, one with requirepass."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: `make deps` installs Debian's redis-server")
    directory = tmp_path_factory.mktemp("redis-reference")
    procs: list[subprocess.Popen] = []
    ports: dict[str, int] = {}
    try:
        # Ask a first one for its command names, then disable all others with rename-command.
        port = free_port()
        procs.append(_start_redis(exe, port, directory))
        _wait_redis(port)
        reader = hiredis.Reader()
        reader.feed(_redis_exchange(port, encode_command("COMMAND", "LIST")))
        names = reader.gets()
        assert isinstance(names, list) and len(names) > 100, names
        procs.pop().kill()
        conf = directory / "oracle.conf"
        keep = {*ORACLE_COMMANDS, b"post", b"host:"}  # the last two: HTTP, filtered from the streams
        top = [n.decode() for n in names if b"|" not in n and n.lower() not in keep]  # not subcommands
        conf.write_text("".join(f'rename-command {name} ""\n' for name in top))
        for name, extra in (("open", []), ("auth", ["--requirepass", "secret"])):
            ports[name] = free_port()
            procs.append(_start_redis(exe, ports[name], directory, str(conf), *extra))
        for port in ports.values():
            _wait_redis(port)
        yield ports
    finally:
        for proc in procs:
            proc.kill()  # nothing to save
            proc.wait(10)


def _redis_exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close, and return everything the server replies until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out.append(chunk)
        return b"".join(out)


_NODES: dict[bool, Node] = {}


def _our_replies(kind: str, data: bytes, requirepass: bool) -> bytes:
    """What the node sends for ``data``: our parser plus the node's dispatch, without sockets."""
    node = _NODES.get(requirepass)
    if node is None:
        config = node_config()
        if requirepass:
            config.set("requirepass", "secret")
        node = _NODES[requirepass] = Node(config)
        node.commands = {name: cmd for name, cmd in node.commands.items() if name.lower() in ORACLE_COMMANDS}
    client = node.new_client("127.0.0.1:1", "127.0.0.1:2")
    parser = make_request_parser(kind, ParserLimits())
    parser.auth_required = not client.authenticated
    out = []
    parser.feed(data)
    try:
        while (cmd := parser.next_command()) is not None:
            out.append(client.encode(node.execute(client, cmd)))
            if client.close_after_reply:  # QUIT: nothing after it runs
                break
    except ProtocolError as e:
        out.append(e.reply)
    finally:
        node.remove_client(client)
    return b"".join(out)


ORACLE_CASES = [
    b"*1\r\n$4\r\nPING\r\n",
    b"PING\r\nECHO 'a b' \"c\\x41\"\r\n\r\n\n",
    b"*1\rX$4\rXPINGYY*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
    b"*0\r\n*-1\r\n*-5\r\nPING\r\n",
    b"*abc\r\n",
    b"*2147483648\r\n",
    b"*-0\r\n",
    b"*1\r\n$-1\r\n",
    b"*1\r\n$01\r\n",
    b"*1\r\n$536870913\r\n",
    b"*1\r\nx\r\n",
    b"*1\r\n\r\n\r\n",
    b"*2\r\n$4\r\nECHO\r\n+OK\r\n",
    b"*1\r\n\xff\r\n",
    b'ECHO "unbalanced\r\n',
    b"ECHO 'a'b\r\n",
    b"PING\x00\r\nPING\r\n",
    b"A" * (INLINE_MAX_SIZE + 1),
    b"*" + b"1" * (INLINE_MAX_SIZE + 1),
    b"*1\r\n$" + b"1" * (INLINE_MAX_SIZE + 1),
    b"ECHO a\vb \fc\r\n",
    b"%1\r\n+OK\r\n:1\r\n",
    b"*1\r\n$4\r\nPING\r\n*",
]
AUTH_ORACLE_CASES = [
    b"*11\r\n",
    b"*10\r\n" + b"$1\r\nx\r\n" * 10,
    b"*1\r\n$16385\r\n",
    b"*2\r\n$4\r\nECHO\r\n$16384\r\n" + b"x" * 16384 + b"\r\n",
    b"*2147483648\r\n",
    b"PING " + b"x" * 20000 + b"\r\n",
]


@pytest.mark.parametrize("case", range(len(ORACLE_CASES)))
def test_same_replies_as_redis(redis_servers: dict[str, int], kind: str, case: int) -> None:
    data = ORACLE_CASES[case]
    expected = _redis_exchange(redis_servers["open"], data)
    assert _our_replies(kind, data, requirepass=False) == expected


@pytest.mark.parametrize("case", range(len(AUTH_ORACLE_CASES)))
def test_same_replies_as_redis_before_auth(redis_servers: dict[str, int], kind: str, case: int) -> None:
    data = AUTH_ORACLE_CASES[case]
    expected = _redis_exchange(redis_servers["auth"], data)
    assert _our_replies(kind, data, requirepass=True) == expected


@settings(PROPERTY, max_examples=400)
@given(stream=_STREAM.filter(lambda s: b"post" not in s.lower() and b"host:" not in s.lower()), auth=st.booleans())
def test_property_same_replies_as_redis(redis_servers: dict[str, int], stream: bytes, auth: bool) -> None:
    expected = _redis_exchange(redis_servers["auth" if auth else "open"], stream)
    for kind in KINDS:
        assert _our_replies(kind, stream, requirepass=auth) == expected, kind


# ---------------------------------------------------------------------------
# Reply encoding
# ---------------------------------------------------------------------------


class _Color(enum.IntEnum):
    RED = 7


ENCODINGS = [
    # (value, RESP2, RESP3)
    (b"hello", b"$5\r\nhello\r\n", b"$5\r\nhello\r\n"),
    (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
    (b"a\r\nb", b"$4\r\na\r\nb\r\n", b"$4\r\na\r\nb\r\n"),
    ("café", b"$5\r\ncaf\xc3\xa9\r\n", b"$5\r\ncaf\xc3\xa9\r\n"),
    (bytearray(b"ab"), b"$2\r\nab\r\n", b"$2\r\nab\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    (Raw(NULL_BULK_RESP2), b"$-1\r\n", b"_\r\n"),
    (OK, b"+OK\r\n", b"+OK\r\n"),
    (Status(b"QUEUED"), b"+QUEUED\r\n", b"+QUEUED\r\n"),
    (0, b":0\r\n", b":0\r\n"),
    (-42, b":-42\r\n", b":-42\r\n"),
    (2**63 - 1, b":9223372036854775807\r\n", b":9223372036854775807\r\n"),
    (_Color.RED, b":7\r\n", b":7\r\n"),
    (True, b":1\r\n", b"#t\r\n"),
    (False, b":0\r\n", b"#f\r\n"),
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (3.0, b"$1\r\n3\r\n", b",3\r\n"),
    (0.1, b"$19\r\n0.10000000000000001\r\n", b",0.10000000000000001\r\n"),
    (-0.0, b"$2\r\n-0\r\n", b",-0\r\n"),
    (1e17, b"$5\r\n1e+17\r\n", b",1e+17\r\n"),
    (float("inf"), b"$3\r\ninf\r\n", b",inf\r\n"),
    (float("-inf"), b"$4\r\n-inf\r\n", b",-inf\r\n"),
    (float("nan"), b"$3\r\nnan\r\n", b",nan\r\n"),
    (ErrorReply("ERR bad\r\nthing"), b"-ERR bad  thing\r\n", b"-ERR bad  thing\r\n"),
    (ErrorReply("WRONGTYPE Operation"), b"-WRONGTYPE Operation\r\n", b"-WRONGTYPE Operation\r\n"),
    (Verbatim(b"# Server\r\n"), b"$10\r\n# Server\r\n\r\n", b"=14\r\ntxt:# Server\r\n\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
    ([b"a", 1, None], b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", b"*3\r\n$1\r\na\r\n:1\r\n_\r\n"),
    ((b"a", [b"b", []]), b"*2\r\n$1\r\na\r\n*2\r\n$1\r\nb\r\n*0\r\n", b"*2\r\n$1\r\na\r\n*2\r\n$1\r\nb\r\n*0\r\n"),
    ({b"k": b"v", b"n": 1}, b"*4\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:1\r\n",
     b"%2\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:1\r\n"),
    ({}, b"*0\r\n", b"%0\r\n"),
    ({b"x"}, b"*1\r\n$1\r\nx\r\n", b"~1\r\n$1\r\nx\r\n"),
    (frozenset([b"x"]), b"*1\r\n$1\r\nx\r\n", b"~1\r\n$1\r\nx\r\n"),
    (set(), b"*0\r\n", b"~0\r\n"),
    (Push([b"message", b"ch", b"hi"]), b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
     b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"),
    ([ErrorReply("ERR x"), OK, 2.5], b"*3\r\n-ERR x\r\n+OK\r\n$3\r\n2.5\r\n", b"*3\r\n-ERR x\r\n+OK\r\n,2.5\r\n"),
    ({b"m": {b"n": [True]}}, b"*2\r\n$1\r\nm\r\n*2\r\n$1\r\nn\r\n*1\r\n:1\r\n",
     b"%1\r\n$1\r\nm\r\n%1\r\n$1\r\nn\r\n*1\r\n#t\r\n"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "resp2", "resp3"), ENCODINGS, ids=[repr(e[0])[:40] for e in ENCODINGS])
def test_encoding(value: object, resp2: bytes, resp3: bytes) -> None:
    assert encode2(value) == resp2
    assert encode3(value) == resp3


def test_attribute_is_not_sent() -> None:
    assert encode2(Attribute({b"a": 1})) == b""
    assert encode3(Attribute({b"a": 1})) == b""


def test_error_with_client_bytes_is_echoed_as_sent() -> None:
    # Client bytes decoded with surrogateescape go back out unchanged (as Redis echoes them).
    message = "ERR unknown command '" + b"\xff\xfe".decode("utf-8", "surrogateescape") + "'"
    assert encode2(ErrorReply(message)) == b"-ERR unknown command '\xff\xfe'\r\n"


def test_unknown_reply_type_is_refused() -> None:
    with pytest.raises(TypeError):
        encode2(object())
    with pytest.raises(TypeError):
        encode3(object())


def test_encode_command() -> None:
    assert encode_command("SET", b"k", 12, 1.5) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$3\r\n1.5\r\n"
    assert encode_command() == b"*0\r\n"


@pytest.mark.parametrize("value", [b"x", [b"a", [1, None]], {b"k": [b"v"]}, 1.25, True, Verbatim(b"txt"), None])
def test_encoded_replies_parse_as_one_reply(value: object) -> None:
    # What client libraries' reply readers (hiredis here) take as exactly one reply.
    for enc in (encode2, encode3):
        reader = hiredis.Reader()
        reader.feed(enc(value))
        assert reader.gets() is not False, value
        assert not reader.has_data()
