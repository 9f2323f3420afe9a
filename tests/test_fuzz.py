"""Bounded random command streams against a real ``kvcluster node``: nothing a client sends hurts the server.

Several connections at once send seeded random streams built from the command
table (every registered command and subcommand): valid calls, wrong arities,
random argument bytes, inline requests with quoting, garbage and mutated
encodings, split at random points; each connection then half-closes and reads
every reply to the end, or hangs up abruptly, or stops in the middle of a
request. Afterwards the process must be alive and answer PING, keys written
before the fuzz in a database it never touches must be unchanged, every reply
stream must have been well-formed RESP, no reply may be an internal error, and
the log must hold no traceback.

Commands that legitimately destroy data or stop the server (FLUSHALL, SWAPDB,
SHUTDOWN, DEBUG, CONFIG SET, CLIENT KILL...), that can reach another database
(SELECT to the sentinel database, MOVE, COPY ... DB) or that block are left out;
unknown future admin commands too, unless listed as harmless.

Reproduce a failure with the seed it prints: ``KVCLUSTER_FUZZ_SEED=<seed>``.
``KVCLUSTER_FUZZ_EPISODES`` and ``KVCLUSTER_FUZZ_SECONDS`` raise the bounds for
a longer run.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import hiredis
import pytest
from helpers import NodeProcess, RawClient, wait_until
from kvcluster.common.resp import encode_command
from kvcluster.node.commands import load_command_table
from kvcluster.node.commands.table import Command

SEED = int(os.environ.get("KVCLUSTER_FUZZ_SEED", "20240611"))
EPISODES = int(os.environ.get("KVCLUSTER_FUZZ_EPISODES", "4000"))  # per parser kind, over all workers
TIME_BUDGET = float(os.environ.get("KVCLUSTER_FUZZ_SECONDS", "8"))  # per parser kind: stops early on slow machines
WORKERS = 3
EPISODE_TIMEOUT = 20.0  # one connection's replies must all arrive within this

SENTINEL_DB = 15  # of the default 16; the fuzz never selects it
FUZZ_DBS = [b"0", b"1", b"2"]

# Full names (``container|sub`` for subcommands) never sent.
DENIED = frozenset([
    "flushall", "flushdb", "swapdb", "move", "copy", "migrate", "select", "shutdown", "debug", "monitor", "sync",
    "psync", "replconf", "replicaof", "slaveof", "failover", "acl", "module", "save", "bgsave", "bgrewriteaof",
    "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "function", "script", "waitaof",
    "client|kill", "client|pause", "client|unpause", "config|set", "config|rewrite",
])  # fmt: skip
# Admin commands known to be harmless; any other admin command (a future one) is left out.
HARMLESS_ADMIN = frozenset([
    "client|list", "client|no-evict", "config|get", "config|resetstat", "slowlog|get", "slowlog|len",
    "slowlog|reset", "latency|doctor", "latency|graph", "latency|histogram", "latency|history", "latency|latest",
    "latency|reset",
])  # fmt: skip
# Bytes of a command name that would make the server drop the connection without a reply (HTTP).
_HTTP_NAMES = (b"post", b"host:")

KEYS = [b"k%d" % i for i in range(8)] + [b"{tag}k", b"", b"\x00\xff"]
CHANNELS = [b"ch1", b"ch2", b"ch*", b"*"]
NUMBERS = [
    "0", "1", "-1", "2", "3", "5", "10", "100", "-100", "1000", "1.5", "-1.5", "0.1", "1e3", "3.0e-2", "inf", "-inf",
    "+inf", "nan", "(1", "(1.5", "[a", "(a", "-", "+", "9223372036854775807", "-9223372036854775808",
    "9223372036854775808", "-9223372036854775807", "-4611686018427387904", "18446744073709551616", "4294967296",
    "-2147483649", "1e400", "1e-400", "-nan", "0x10", "00", "-0", "+1", "1_0", "0.5e", " 1",
]  # fmt: skip
KEYWORDS = [
    "NX", "XX", "GT", "LT", "CH", "INCR", "EX", "PX", "EXAT", "PXAT", "KEEPTTL", "GET", "PERSIST", "WITHSCORES",
    "WITHSCORE", "LIMIT", "BYSCORE", "BYLEX", "REV", "MATCH", "COUNT", "TYPE", "WEIGHTS", "AGGREGATE", "SUM", "MIN",
    "MAX", "LEFT", "RIGHT", "BEFORE", "AFTER", "RANK", "MAXLEN", "IDX", "LEN", "MINMATCHLEN", "WITHMATCHLEN", "ASYNC",
    "SYNC", "WITHVALUES", "STORE", "ALPHA", "DESC", "ASC", "BY", "ON", "OFF", "SKIP", "YES", "NO", "ID", "NAME",
    "LIB-NAME", "LIB-VER", "ADDR", "LADDR", "USER", "SKIPME", "HELP", "RESET", "AUTH", "SETNAME", "default",
]  # fmt: skip


def _full_name(cmd: Command) -> str:
    return cmd.full_name


def fuzzable_commands() -> list[tuple[list[bytes], Command]]:
    """(name words, command) for every command and subcommand the fuzz may send."""
    out: list[tuple[list[bytes], Command]] = []
    for name, cmd in sorted(load_command_table().items()):
        entries = [([name.encode()], cmd)]
        entries += [([name.encode(), sub.encode()], sc) for sub, sc in sorted(cmd.subcommands.items())]
        for words, c in entries:
            full = _full_name(c)
            if full in DENIED or name in DENIED or "blocking" in c.flags:
                continue
            if "admin" in c.flags and full not in HARMLESS_ADMIN:
                continue
            if c.handler is None and c.subcommands and len(words) == 1:
                continue  # a bare container: its subcommands are listed
            out.append((words, c))
    return out


class StreamFuzzer:
    """Seeded generator of request streams (bytes) from the command table."""

    def __init__(self, seed: int, commands: list[tuple[list[bytes], Command]]):
        self.rnd = random.Random(seed)
        self.commands = commands

    def arg(self) -> bytes:
        r = self.rnd
        x = r.random()
        if x < 0.3:
            return r.choice(KEYS)
        if x < 0.5:
            return r.choice(NUMBERS).encode()
        if x < 0.65:
            return r.choice(KEYWORDS).encode()
        if x < 0.7:
            return r.choice(CHANNELS)
        if x < 0.72:
            return r.randbytes(r.randint(1000, 5000))
        if x < 0.8:
            return r.choice([b"*", b"?", b"[a-z]*", b"\\", b"k*", b"[", b"^", b"\\x"])
        return r.randbytes(r.randint(0, 12))

    def call(self) -> list[bytes]:
        r = self.rnd
        if r.random() < 0.03:  # SELECT, but never the sentinel database
            return [b"SELECT", r.choice([*FUZZ_DBS, b"-1", b"16", b"x", b""])]
        words, cmd = r.choice(self.commands)
        if r.random() < 0.5:
            words = [w.upper() for w in words]
        arity = cmd.arity
        if r.random() < 0.1:  # wrong arity (or by chance a right one)
            n = r.randint(0, abs(arity) + 2)
        elif arity > 0:
            n = arity - len(words)
        else:
            n = -arity - len(words) + r.choice([0, 0, 1, 1, 2, 3, 4, 6])
        args = [self.arg() for _ in range(max(n, 0))]
        for i in cmd.key_positions(words + args):  # mostly real keys where keys go
            if len(words) <= i < len(words) + len(args) and r.random() < 0.8:
                args[i - len(words)] = r.choice(KEYS)
        return words + args

    def inline(self, args: list[bytes]) -> bytes:
        # sdssplitargs syntax: plain words where possible, else "..." with \xHH escapes.
        parts = []
        for a in args:
            if a and all(0x21 <= c <= 0x7E and c not in b"\"'\\" for c in a) and self.rnd.random() < 0.7:
                parts.append(a)
            else:
                parts.append(b'"' + b"".join(b"\\x%02x" % c for c in a) + b'"')
        return b" ".join(parts) + self.rnd.choice([b"\r\n", b"\n"])

    def garbage(self) -> bytes:
        r = self.rnd
        return r.choice(
            [
                lambda: r.randbytes(r.randint(1, 40)),
                lambda: b"*" + r.choice([b"-x", b"abc", b"1 ", b"01", b"+1", b"99999999999999999999"]) + b"\r\n",
                lambda: b"*1\r\n" + r.choice([b"+OK", b":1", b"x", b"$-1", b"$abc", b"*1"]) + b"\r\n",
                lambda: b"*2\r\n$3\r\nGET\r\n$" + str(r.randint(100, 10**6)).encode() + b"\r\n",
                lambda: r.choice([b'GET "unbalanced\r\n', b"GET 'x\r\n", b'SET "a"b c\r\n', b"\x00\r\n"]),
                lambda: b"*2\r\n*1\r\n$1\r\na\r\n$1\r\nb\r\n",
                lambda: b"%1\r\n*1\r\n$1\r\na\r\n$1\r\nb\r\n",
            ]
        )()

    def mutate(self, data: bytes) -> bytes:
        r = self.rnd
        if not data:
            return data
        i = r.randrange(len(data))
        op = r.randrange(4)
        if op == 0:
            return data[:i] + bytes([r.randrange(256)]) + data[i + 1 :]
        if op == 1:
            return data[:i] + data[i + 1 :]
        if op == 2:
            return data[:i] + r.randbytes(r.randint(1, 3)) + data[i:]
        return data[:i]

    def episode(self) -> tuple[list[bytes], bool, str]:
        """(pieces to send, whether they are all well-formed requests, how the connection ends)."""
        r = self.rnd
        pieces: list[bytes] = []
        well_formed = True
        for _ in range(r.randint(1, 40)):
            x = r.random()
            args = self.call()
            if args[0].lower() in _HTTP_NAMES:
                continue
            if x < 0.75:
                pieces.append(encode_command(*args))
            elif x < 0.87:
                line = self.inline(args)  # under 64 KiB, or it would be "too big inline request"
                pieces.append(line if len(line) < 60_000 else encode_command(*args))
            elif x < 0.94:
                pieces.append(self.garbage())
                well_formed = False
            elif args[0].upper() != b"SELECT":
                pieces.append(self.mutate(encode_command(*args)))
                well_formed = False
        if r.random() < 0.3:  # RESP3 replies (and push messages) for the whole stream
            pieces.insert(0, encode_command("HELLO", "3"))
        if r.random() < 0.2:  # a transaction around some of it
            pieces.insert(r.randint(0, len(pieces)), encode_command("MULTI"))
            pieces.append(encode_command("EXEC"))
        end = r.choices(["read", "abort", "half-sent"], [0.75, 0.15, 0.1])[0]
        if end == "half-sent":
            pieces.append(encode_command(*self.call())[: r.randint(1, 20)])
        return pieces, well_formed, end


def _send(sock: socket.socket, data: bytes, rnd: random.Random) -> bool:
    # Random split points, so requests straddle reads on the server.
    pos = 0
    try:
        while pos < len(data):
            step = rnd.choice([1, 7, 64, 1500, len(data)])
            sock.sendall(data[pos : pos + step])
            pos += step
    except (BrokenPipeError, ConnectionResetError):
        return False  # the server closed (a protocol error, QUIT): fine
    return True


def _read_to_end(sock: socket.socket, deadline: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes: (bytes, whether it ended with a reset)."""
    chunks = []
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            data = sock.recv(1 << 20)
        except ConnectionResetError:
            # The server closed with our later requests unread (QUIT, a protocol error): the
            # kernel then resets the connection and drops what it had not sent yet.
            return b"".join(chunks), True
        if not data:
            return b"".join(chunks), False
        chunks.append(data)


_PROBE = b"+end-of-stream\r\n"


def check_replies(stream: bytes, truncated_ok: bool = False) -> list:
    """Every reply in ``stream``, parsed; raises unless it is well-formed RESP2/RESP3 (and complete)."""
    reader = hiredis.Reader()
    reader.feed(stream)
    replies = []
    while (reply := reader.gets()) is not False:
        replies.append(reply)
    # A status line after the stream comes back alone only if the stream ended between replies.
    reader.feed(_PROBE)
    try:
        complete = reader.gets() == b"end-of-stream" and reader.gets() is False
    except hiredis.ProtocolError:
        complete = False
    assert complete or truncated_ok, f"reply stream ends inside a reply: {stream[-200:]!r}"
    return replies


def _walk_errors(reply) -> Iterator[str]:
    if isinstance(reply, hiredis.ReplyError):
        yield str(reply)
    elif isinstance(reply, list):
        for item in reply:
            yield from _walk_errors(item)


class Worker(threading.Thread):
    def __init__(self, port: int, seed: int, episodes: int, deadline: float, commands):
        super().__init__(daemon=True)
        self.port = port
        self.seed = seed
        self.episodes = episodes
        self.deadline = deadline
        self.fuzzer = StreamFuzzer(seed, commands)
        self.failure: str | None = None
        self.done = 0

    def run(self) -> None:
        try:
            for n in range(self.episodes):
                if time.monotonic() > self.deadline:
                    break
                self.one(n)
                self.done += 1
        except Exception:  # reported by the test with the seed
            self.failure = traceback.format_exc(limit=3)

    def one(self, n: int) -> None:
        # Each episode has its own generator: one can be replayed alone (see replay_episode).
        self.fuzzer.rnd = random.Random(f"{self.seed}:{n}")
        pieces, well_formed, end = self.fuzzer.episode()
        data = b"".join(pieces)
        where = f"seed {self.seed}, episode {n}"
        with socket.create_connection(("127.0.0.1", self.port), timeout=EPISODE_TIMEOUT) as sock:
            sent = _send(sock, data, self.fuzzer.rnd)
            if end == "abort":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                return  # closed with a RST, replies unread
            if sent:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            stream, reset = _read_to_end(sock, time.monotonic() + EPISODE_TIMEOUT)
        try:
            replies = check_replies(stream, truncated_ok=reset)
        except Exception as e:
            raise AssertionError(f"{where} ({end}, reset={reset}): bad reply stream ({e}) for {data[:300]!r}") from None
        for reply in replies:
            for err in _walk_errors(reply):
                if "internal error" in err:
                    raise AssertionError(f"{where}: {err!r} for one of {_suspects(pieces, err)}")
                if well_formed and end != "half-sent" and "Protocol error" in err:
                    raise AssertionError(f"{where}: {err!r} for well-formed requests {data[:2000]!r}")


def _suspects(pieces: list[bytes], error: str) -> list[bytes]:
    # "ERR internal error executing 'slowlog|get': ValueError": the requests naming that command.
    name = error.split("'")[1].split("|")[0].encode() if "'" in error else b""
    return [p[:300] for p in pieces if name and name in p.lower()][:5] or [b"".join(pieces)[:2000]]


def _sentinel_state(node: NodeProcess) -> dict:
    c = node.client(db=SENTINEL_DB)
    try:
        keys = sorted(c.keys("*"))
        state: dict = {"dbsize": c.dbsize()}
        for k in keys:
            t = c.type(k)
            if t == b"string":
                state[k] = c.get(k)
            elif t == b"hash":
                state[k] = c.hgetall(k)
            elif t == b"list":
                state[k] = c.lrange(k, 0, -1)
            elif t == b"set":
                state[k] = sorted(c.smembers(k))
            elif t == b"zset":
                state[k] = c.zrange(k, 0, -1, withscores=True)
            else:
                state[k] = t
        return state
    finally:
        c.close()


def _write_sentinels(node: NodeProcess) -> None:
    c = node.client(db=SENTINEL_DB)
    try:
        for k in KEYS:  # the very names the fuzz hammers on, in another database
            c.set(b"s:" + k, b"v" + k)
            c.set(k, b"sentinel")
        c.hset(b"h", mapping={b"f1": b"1", b"f2": b"\x00\xff"})
        c.rpush(b"l", b"a", b"b", b"c")
        c.sadd(b"s", b"x", b"y")
        c.zadd(b"z", {b"m1": 1.5, b"m2": -2})
        c.set(b"big", b"x" * 100_000)
    finally:
        c.close()


@pytest.fixture(params=["hiredis", "python"])
def fuzz_node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path, "--resp-parser", request.param) as node:
        yield node


def test_random_command_streams_do_no_harm(fuzz_node: NodeProcess) -> None:
    node = fuzz_node
    _write_sentinels(node)
    before = _sentinel_state(node)
    commands = fuzzable_commands()
    assert len(commands) > 100
    deadline = time.monotonic() + TIME_BUDGET
    workers = [Worker(node.port, SEED * 100 + i, EPISODES // WORKERS, deadline, commands) for i in range(WORKERS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(TIME_BUDGET + 2 * EPISODE_TIMEOUT)
        assert not w.is_alive(), f"seed {w.seed}: a fuzz connection is stuck"
    failures = [w.failure for w in workers if w.failure]
    assert not failures, f"KVCLUSTER_FUZZ_SEED={SEED}: {failures}"
    assert sum(w.done for w in workers) >= 30, "the machine is too slow for a meaningful fuzz run"

    assert node.proc is not None and node.proc.poll() is None, f"seed {SEED}: node died\n{node.log()}"
    c = node.client()
    try:
        assert c.ping()
        wait_until(lambda: c.info("clients")["connected_clients"] == 1, what="fuzz connections to go away")
    finally:
        c.close()
    assert _sentinel_state(node) == before, f"seed {SEED}: database {SENTINEL_DB} changed"
    log = node.log_path.read_text(errors="replace")
    for bad in ("Traceback", "internal error", "Fatal error", "Exception in callback", "error in periodic task"):
        assert bad not in log, f"seed {SEED}: {bad!r} in the node's log:\n{log[-5000:]}"


def test_commands_the_fuzz_leaves_out_take_bad_bytes_too(tmp_path: Path) -> None:
    """Admin and blocking commands with odd bytes and numbers: errors, never an internal error."""
    with NodeProcess(tmp_path) as node, RawClient(node.port) as raw:
        # Config values keep client bytes as sent, the password included.
        assert raw.call("CONFIG", "SET", "requirepass", b"\xffpass") == b"+OK\r\n"
        assert raw.call("AUTH", b"\xffpas") == b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        assert raw.call("AUTH", b"\xffpass") == b"+OK\r\n"
        assert raw.call("HELLO", "2", "AUTH", "default", b"\xffpass").startswith(b"*")
        assert raw.call("CONFIG", "SET", "requirepass", "") == b"+OK\r\n"
        assert raw.call("CONFIG", "SET", "dbfilename", b"\xfe.rdb") == b"+OK\r\n"
        assert raw.call("CONFIG", "GET", "dbfilename") == b"*2\r\n$10\r\ndbfilename\r\n$5\r\n\xfe.rdb\r\n"
        # Numbers Redis's string2ll refuses (the replies are Redis 7's).
        for timeout in ("1e3", "+1", " 1", "1_0", "18446744073709551616"):
            assert raw.call("WAIT", "1", timeout) == b"-ERR timeout is not an integer or out of range\r\n"
        assert raw.call("WAIT", "99999999999999999999", "1") == b"-ERR value is not an integer or out of range\r\n"
        assert raw.call("WAIT", "1", "-1") == b"-ERR timeout is negative\r\n"
        assert raw.call("WAIT", "1", "10") == b":0\r\n"  # no replica acknowledged within 10 ms
        for count in ("9223372036854775808", "+1", "01", " 1"):
            assert raw.call("SLOWLOG", "GET", count) == b"-ERR count should be greater than or equal to -1\r\n"
        # Every setting, set to bytes that are not UTF-8 or not a number: refused or taken, never a crash.
        flat = check_replies(raw.call("CONFIG", "GET", "*"))[0]
        names = [n for n in flat[::2] if n not in (b"requirepass", b"proto-max-multibulk-len", b"dir", b"maxclients")]
        assert len(names) > 30
        for name in names:
            for value in (b"\xff", b"-1", b"99999999999999999999", b"normal \xff 0 0"):
                reply = raw.call("CONFIG", "SET", name, value)
                assert b"internal error" not in reply, (name, value, reply)
            for probe in (("INFO", "everything"), ("CONFIG", "GET", "*"), ("CLIENT", "LIST"), ("PING",)):
                reply = raw.call(*probe)
                assert b"internal error" not in reply and not reply.startswith(b"-"), (name, probe, reply[:200])
        assert raw.call("PING") == b"+PONG\r\n"
    log = node.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-5000:]
