"""``kvcluster cli``: the pure parts (parsing, printing, help, completion), then the real program
compared byte for byte with redis-cli against a real node and a real redis-server, and driven
interactively through a pseudo-terminal (prompt, history, Tab completion).

Following the leader through a kill -9 failover is tested with the bench in test_bench_tool.py
(one real cluster for both).
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import KVCLUSTER, NodeProcess, RedisServerProcess, free_port
from kvcluster.node.commands import load_command_table
from kvcluster.tools.cli_format import (
    CommandLineError,
    complete,
    format_raw,
    format_tty,
    help_for,
    is_sensitive,
    parse_repeat,
    prompt,
    repr_bytes,
    split_command_line,
    usage,
)
from kvcluster.tools.resp import (
    NEED_DATA,
    BigNumber,
    Double,
    Error,
    Map,
    Push,
    ReplyParser,
    Set,
    Status,
    Verbatim,
    parse_address,
)

TABLE = load_command_table()

# -- reading command lines ------------------------------------------------------------------------


def test_split_like_redis_cli() -> None:
    assert split_command_line('SET k "hello world"') == [b"SET", b"k", b"hello world"]
    assert split_command_line(r'SET k "a\nb\x41\"q"') == [b"SET", b"k", b'a\nbA"q']
    assert split_command_line(r"SET k 'it\'s'") == [b"SET", b"k", b"it's"]
    assert split_command_line("  GET   k  ") == [b"GET", b"k"]
    assert split_command_line("SET k héllo") == [b"SET", b"k", "héllo".encode()]
    assert split_command_line("") == []
    for bad in ('SET k "unclosed', "SET k 'unclosed", 'SET k "a"b'):
        with pytest.raises(CommandLineError, match=r"Invalid argument\(s\)"):
            split_command_line(bad)


def test_a_leading_number_repeats_the_command() -> None:
    assert parse_repeat([b"3", b"INCR", b"n"]) == (3, [b"INCR", b"n"])
    assert parse_repeat([b"INCR", b"3"]) == (1, [b"INCR", b"3"])
    assert parse_repeat([b"3"]) == (1, [b"3"])


def test_secrets_stay_out_of_the_history() -> None:
    assert is_sensitive([b"AUTH", b"pw"])
    assert is_sensitive([b"hello", b"3", b"AUTH", b"default", b"pw"])
    assert is_sensitive([b"CONFIG", b"SET", b"requirepass", b"pw"])
    assert is_sensitive([b"acl", b"SETUSER", b"bob", b">pw"])
    assert not is_sensitive([b"GET", b"auth"])
    assert not is_sensitive([b"CONFIG", b"GET", b"requirepass"])
    assert not is_sensitive([])


def test_addresses() -> None:
    assert parse_address("127.0.0.1:26379", 1) == ("127.0.0.1", 26379)
    assert parse_address("sentinel-0.svc", 26379) == ("sentinel-0.svc", 26379)
    assert parse_address("[::1]:7000", 1) == ("::1", 7000)
    for bad in ("host:notaport", ":7000", "h:0", "h:70000"):
        with pytest.raises(ValueError):
            parse_address(bad, 1)


# -- printing replies --------------------------------------------------------------------------------


def test_bulk_strings_are_quoted_like_sdscatrepr() -> None:
    assert repr_bytes(b"bar") == '"bar"'
    assert repr_bytes(b'a"b\\c') == r'"a\"b\\c"'
    assert repr_bytes(b"\n\r\t\a\b") == r'"\n\r\t\a\b"'
    assert repr_bytes("é".encode() + b"\x00\x7f") == r'"\xc3\xa9\x00\x7f"'


def test_tty_format_of_every_reply_type() -> None:
    assert format_tty(Status("OK")) == "OK\n"
    assert format_tty(Error("ERR wrong")) == "(error) ERR wrong\n"
    assert format_tty(1) == "(integer) 1\n"
    assert format_tty(b"bar") == '"bar"\n'
    assert format_tty(None) == "(nil)\n"
    assert format_tty(True) == "(true)\n" and format_tty(False) == "(false)\n"
    assert format_tty(Double("1.5")) == "(double) 1.5\n"
    assert format_tty(BigNumber("12345678901234567890")) == "(big number) 12345678901234567890\n"
    assert format_tty(Verbatim("txt", b"line 1\nline 2")) == "line 1\nline 2\n"
    assert format_tty([]) == "(empty array)\n"
    assert format_tty(Map()) == "(empty hash)\n"
    assert format_tty(Set()) == "(empty set)\n"
    assert format_tty(Map([(b"f", b"v"), (b"n", 1)])) == '1# "f" => "v"\n2# "n" => (integer) 1\n'
    assert format_tty(Set([b"a", b"b"])) == '1~ "a"\n2~ "b"\n'
    assert format_tty(Push([b"message", b"ch", b"hi"])) == '1) "message"\n2) "ch"\n3) "hi"\n'


def test_tty_format_nests_and_aligns_like_redis_cli() -> None:
    reply = [1, [2, [b"a", b"b"]], [], b"x", Status("OK"), Error("ERR bad")]
    assert format_tty(reply) == (
        '1) (integer) 1\n2) 1) (integer) 2\n   2) 1) "a"\n      2) "b"\n3) (empty array)\n4) "x"\n5) OK\n'
        "6) (error) ERR bad\n"
    )
    eleven = [[str(i).encode() for i in range(1, 12)], 5]
    lines = format_tty(eleven).splitlines()
    assert lines[0] == '1)  1) "1"' and lines[9] == '   10) "10"' and lines[-1] == "2) (integer) 5"


def test_raw_format() -> None:
    assert format_raw(b"bar") == b"bar\n"
    assert format_raw(b"\xff\x00") == b"\xff\x00\n"
    assert format_raw(None) == b"\n"
    assert format_raw(7) == b"7\n"
    assert format_raw(Error("ERR bad")) == b"ERR bad\n\n"  # redis-cli prints an error line plus the delimiter
    assert format_raw([1, [2, [b"a", b"b"]], [], b"x", Status("OK"), Error("ERR bad")]) == (
        b"1\n2\na\nb\n\nx\nOK\nERR bad\n\n"
    )
    assert format_raw(Map([(b"f", b"v"), (b"g", b"w")])) == b"f v\ng w\n"
    assert format_raw(True) == b"(true)\n"
    assert format_raw(Double("3.141")) == b"3.141\n"


# -- the reply parser -----------------------------------------------------------------------------------

RESP3_STREAM = (
    b"+OK\r\n-ERR no\r\n:42\r\n$3\r\nbar\r\n$-1\r\n*-1\r\n_\r\n,1.5\r\n#t\r\n#f\r\n(123456789012345678901\r\n"
    b"=15\r\ntxt:Some string\r\n*2\r\n:1\r\n*1\r\n$1\r\nx\r\n~2\r\n:1\r\n:2\r\n%1\r\n$1\r\nk\r\n$1\r\nv\r\n"
    b">2\r\n$7\r\nmessage\r\n$2\r\nhi\r\n|1\r\n+ttl\r\n:3\r\n$1\r\ny\r\n!5\r\nERR x\r\n*0\r\n"
)
RESP3_REPLIES = [
    Status("OK"),
    Error("ERR no"),
    42,
    b"bar",
    None,
    None,
    None,
    Double("1.5"),
    True,
    False,
    BigNumber("123456789012345678901"),
    Verbatim("txt", b"Some string"),
    [1, [b"x"]],
    Set([1, 2]),
    Map([(b"k", b"v")]),
    Push([b"message", b"hi"]),
    b"y",  # the attribute before it is skipped
    Error("ERR x"),
    [],
]


def _parse_all(parser: ReplyParser) -> list[object]:
    out = []
    while (reply := parser.next_reply()) is not NEED_DATA:
        out.append(reply)
    return out


def test_reply_parser_keeps_the_types() -> None:
    parser = ReplyParser()
    parser.feed(RESP3_STREAM)
    replies = _parse_all(parser)
    assert replies == RESP3_REPLIES
    assert [type(r) for r in replies] == [type(r) for r in RESP3_REPLIES]


def test_reply_parser_byte_at_a_time() -> None:
    parser = ReplyParser()
    replies: list[object] = []
    for i in range(len(RESP3_STREAM)):
        parser.feed(RESP3_STREAM[i : i + 1])
        replies += _parse_all(parser)
    assert replies == RESP3_REPLIES


# -- help and completion ------------------------------------------------------------------------------


def test_usage_from_arity_and_key_positions() -> None:
    assert usage(TABLE["get"]) == "GET key"
    assert usage(TABLE["del"]) == "DEL key [key ...]"
    assert usage(TABLE["mset"]) == "MSET key arg [key arg ...]"
    assert usage(TABLE["ping"]) == "PING [arg ...]"
    assert usage(TABLE["config"]) == "CONFIG subcommand [arg ...]"
    assert usage(TABLE["config"].subcommands["get"]).startswith("CONFIG GET arg")


def test_help_from_the_command_table() -> None:
    text = help_for(["get"], TABLE)
    assert text == (
        "\n  GET key\n  summary: Get the value of a key\n  since: 1.0.0\n  group: string\n  complexity: O(1)\n"
        "  flags: fast, readonly\n\n"
    )
    assert "summary: " + TABLE["hset"].summary in help_for(["HSET"], TABLE)
    config = help_for(["config"], TABLE)
    assert "CONFIG GET" in config and "CONFIG SET" in config
    assert help_for(["config", "get"], TABLE).startswith("\n  CONFIG GET")
    group = help_for(["@hash"], TABLE)
    assert "\n  HGETALL key\n" in group and "\n  GET key\n" not in group
    assert "No help for 'frob'" in help_for(["frob"], TABLE)
    assert "@string" in help_for([], TABLE, version="1.0")


def test_completion() -> None:
    assert complete("hgeta", TABLE) == ["hgetall"]
    assert complete("HGET", TABLE) == ["HGET", "HGETALL"]
    assert "SET" in complete("", TABLE) and "HELP" in complete("", TABLE)
    assert complete("config ge", TABLE) == ["get"]
    assert {"GET", "SET", "REWRITE"} <= set(complete("CONFIG ", TABLE))
    assert complete("help hg", TABLE) == ["hget", "hgetall"]
    assert "@hash" in complete("help @h", TABLE)
    assert complete("help config s", TABLE) == ["set"]
    assert complete("get k", TABLE) == []


def test_prompt() -> None:
    assert prompt("127.0.0.1:6379") == "127.0.0.1:6379> "
    assert prompt("127.0.0.1:6379", db=2) == "127.0.0.1:6379[2]> "
    assert prompt(None) == "not connected> "
    assert prompt("127.0.0.1:7001", group="mymaster") == "(mymaster) 127.0.0.1:7001> "


# -- the real program, compared with redis-cli ----------------------------------------------------------

SCRIPT = [
    "SET greeting hello",
    "GET greeting",
    "GET missing",
    r'SET bin "a\x01\x7f\xff\t\r\\b\"q"',
    "GET bin",
    "SET n 1",
    "INCR n",
    "INCR greeting",
    "RPUSH list a b c d e f g h i j k",
    "LRANGE list 0 -1",
    "LRANGE nolist 0 -1",
    "HSET h f v g w",
    "HGETALL h",
    "SADD s x",
    "SMEMBERS s",
    "ZADD z 1.5 m",
    "ZSCORE z m",
    "ZRANGE z 0 -1 WITHSCORES",
    "MGET greeting missing n",
    "EXISTS greeting n missing",
    "FROBNICATE x",
    "GET",
    'SET q "unbalanced',
    "TYPE h",
    "PING",
]


def _cli_output(program: list[str], port: int, *flags: str, stdin: str) -> bytes:
    result = subprocess.run(
        [*program, "-p", str(port), *flags], input=stdin.encode(), capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "flags", [(), ("--no-raw",), ("-3", "--no-raw"), ("-3",)], ids=["raw", "tty", "resp3", "r3raw"]
)
def test_same_output_as_redis_cli(node: NodeProcess, redis_cli: str, flags: tuple[str, ...]) -> None:
    stdin = "FLUSHALL\n" + "\n".join(SCRIPT) + "\n"
    ours = _cli_output([*KVCLUSTER, "cli"], node.port, *flags, stdin=stdin)
    theirs = _cli_output([redis_cli], node.port, *flags, stdin=stdin)
    assert ours == theirs
    if "--no-raw" in flags:
        assert b'\n"hello"\n' in ours and b"(integer) 2\n" in ours and b"(error) ERR unknown command" in ours


def test_resp3_types_compared_with_redis_cli_on_redis_server(tmp_path: Path, redis_cli: str) -> None:
    server = RedisServerProcess(tmp_path, "--enable-debug-command", "yes")
    try:
        kinds = ["map", "set", "double", "true", "false", "null", "verbatim"]
        stdin = "".join(f"DEBUG PROTOCOL {kind}\n" for kind in kinds) + "CONFIG GET port\nLRANGE none 0 -1\n"
        for flags in (("-3", "--no-raw"), ("-3",)):
            ours = _cli_output([*KVCLUSTER, "cli"], server.port, *flags, stdin=stdin)
            theirs = _cli_output([redis_cli], server.port, *flags, stdin=stdin)
            assert ours == theirs, flags
        assert b"(double) 3.141" in _cli_output([*KVCLUSTER, "cli"], server.port, "-3", "--no-raw", stdin=stdin)
    finally:
        server.stop()


def test_one_command_prints_the_raw_value(node: NodeProcess, redis_cli: str) -> None:
    value = "héllo\nworld"
    subprocess.run([redis_cli, "-p", str(node.port), "SET", "k", value], check=True, capture_output=True)
    ours = subprocess.run([*KVCLUSTER, "cli", "-p", str(node.port), "GET", "k"], capture_output=True, timeout=30)
    theirs = subprocess.run([redis_cli, "-p", str(node.port), "GET", "k"], capture_output=True, timeout=30)
    assert (ours.returncode, ours.stdout) == (0, theirs.stdout) == (0, value.encode() + b"\n")
    # Arguments that look like flags after the command belong to the command.
    out = subprocess.run([*KVCLUSTER, "cli", "-p", str(node.port), "SET", "n", "-1"], capture_output=True, timeout=30)
    assert out.stdout == b"OK\n"
    # An error reply is printed like redis-cli and the exit status says so.
    err = subprocess.run([*KVCLUSTER, "cli", "-p", str(node.port), "INCR", "k"], capture_output=True, timeout=30)
    assert (err.returncode, err.stdout) == (1, b"ERR value is not an integer or out of range\n\n")


def test_unreachable_server_is_an_error_not_a_crash() -> None:
    port = free_port()
    out = subprocess.run([*KVCLUSTER, "cli", "-p", str(port), "PING"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert out.stderr == f"Could not connect to Redis at 127.0.0.1:{port}: Connection refused\n"
    out = subprocess.run(
        [*KVCLUSTER, "cli", "--sentinel", f"127.0.0.1:{port}", "GET", "k"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 1
    assert out.stderr == f"no sentinel named the leader of 'mymaster' (127.0.0.1:{port}: Connection refused)\n"
    # Piped commands go on after a failure, like redis-cli.
    out = subprocess.run(
        [*KVCLUSTER, "cli", "-p", str(port)], input="PING\nPING\n", capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and out.stdout.count("Could not connect to Redis") == 2
    out = subprocess.run([*KVCLUSTER, "cli", "--sentinel", "nope:x"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--sentinel: bad port" in out.stderr


def test_password_and_database(tmp_path: Path) -> None:
    with NodeProcess(tmp_path, "--requirepass", "s3cret") as node:
        base = [*KVCLUSTER, "cli", "-p", str(node.port)]
        out = subprocess.run([*base, "PING"], capture_output=True, timeout=30)
        assert out.stdout.startswith(b"NOAUTH")
        out = subprocess.run([*base, "-a", "s3cret", "-n", "3", "SET", "k", "v"], capture_output=True, timeout=30)
        assert out.stdout == b"OK\n"
        with node.client(password="s3cret", db=3) as c:
            assert c.get("k") == b"v"
        env = {**os.environ, "REDISCLI_AUTH": "s3cret"}
        out = subprocess.run([*base, "-n", "3", "GET", "k"], capture_output=True, timeout=30, env=env)
        assert out.stdout == b"v\n"


# -- interactive, through a pseudo-terminal ----------------------------------------------------------------


class Terminal:
    """``kvcluster cli`` on a pseudo-terminal: type lines, read what the user would see."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the cli
            os.execvpe(KVCLUSTER[0], [*KVCLUSTER, "cli", *args], env)
        self.seen = ""

    def read_until(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{text!r} not seen; the terminal shows:\n{self.seen}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.2))
            if ready:
                try:
                    self.seen += os.read(self.fd, 65536).decode("utf-8", "replace")
                except OSError:  # the child closed the terminal
                    raise TimeoutError(f"{text!r} not seen before exit:\n{self.seen}") from None
        before, _, self.seen = self.seen.partition(text)
        return before + text

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def wait(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            with_output = select.select([self.fd], [], [], 0.1)[0]
            if with_output:
                try:
                    os.read(self.fd, 65536)
                except OSError:
                    pass
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise TimeoutError("the cli did not exit")


def test_interactive_prompt_help_completion_history(node: NodeProcess, tmp_path: Path) -> None:
    history = tmp_path / "history"
    env = {**os.environ, "KVCLUSTER_CLI_HISTFILE": str(history), "TERM": "dumb"}
    term = Terminal(["-p", str(node.port)], env)
    try:
        where = f"127.0.0.1:{node.port}> "
        term.read_until(where)
        term.type("SET greeting hello\r")
        assert "\r\nOK\r\n" in term.read_until(where)
        term.type("GET greeting\r")
        assert '\r\n"hello"\r\n' in term.read_until(where)
        term.type("help get\r")
        shown = term.read_until(where)
        assert "GET" in shown and "Get the value of a key" in shown and "group:" in shown
        term.type("INCR greeting\r")
        assert "(error) ERR value is not an integer or out of range" in term.read_until(where)
        term.type('SET q "unbalanced\r')
        assert "Invalid argument(s)" in term.read_until(where)
        term.type("AUTH not-in-history\r")
        term.read_until(where)
        term.type("hgeta\t")  # Tab completes the command name
        term.read_until("hgetall")
        term.type(" nokey\r")
        assert "(empty array)" in term.read_until(where)
        term.type("SELECT 2\r")
        term.read_until(f"127.0.0.1:{node.port}[2]> ")
        term.type("quit\r")
        assert term.wait() == 0
    finally:
        if term.pid:
            try:
                os.kill(term.pid, signal.SIGKILL)
                os.waitpid(term.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    lines = history.read_text().splitlines()
    assert "SET greeting hello" in lines and "hgetall nokey" in lines
    assert not any("not-in-history" in line for line in lines)
