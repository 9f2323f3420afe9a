"""Limits and bad input against real ``kvcluster node`` processes.

What a client sees when it breaks a limit (Redis's replies and behaviour): protocol
errors and proto-max-bulk-len / proto-max-multibulk-len get ``-ERR Protocol error:
...`` and the connection is closed; client-query-buffer-limit and the output
buffer limits (normal and pub/sub classes) disconnect the client and count it in
INFO stats; maxclients refuses with ``-ERR max number of clients reached``; idle
clients are closed after ``timeout`` (pub/sub ones are not). Throughout, the
server stays up and data written before is intact. Also pipelining (every reply,
in order, written in one batch) and inline commands, over a raw socket and from
redis-cli.
"""

from __future__ import annotations

import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from helpers import NodeProcess, RawClient, wait_until
from kvcluster.common.resp import encode_command
from kvcluster.node.server import Connection, NodeServer
from kvcluster.node.settings import node_config

MB = 1024 * 1024


def _node(tmp_path: Path, *args: str) -> NodeProcess:
    return NodeProcess(tmp_path / "node", *args).start()


@pytest.fixture
def stopper() -> Iterator[list[NodeProcess]]:
    nodes: list[NodeProcess] = []
    yield nodes
    for n in nodes:
        n.stop()


def _connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # before connect, so the window stays small: a slow reader
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def _send(sock: socket.socket, data: bytes) -> bool:
    """Send all of ``data``; False when the server closed the connection meanwhile."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def _read_until_closed(sock: socket.socket, limit: int = 1 << 30) -> bytes:
    """Everything the server sends until it closes the connection (it must, within the socket timeout)."""
    out = bytearray()
    while len(out) < limit:
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _is_closed(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` (EOF or reset); False while it is open and silent."""
    sock.setblocking(False)
    try:
        return sock.recv(1 << 16) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.setblocking(True)


def _stats(node: NodeProcess) -> dict:
    c = node.client()
    try:
        return c.info("stats")
    finally:
        c.close()


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _write_sentinels(c: redis.Redis) -> dict[bytes, bytes]:
    data = {b"sentinel:%d" % i: b"value %d" % i for i in range(7)}  # MSET of 15 arguments
    c.mset(data)
    c.delete(b"sentinel:list")
    c.rpush(b"sentinel:list", b"a", b"b")
    return data


def _check_sentinels(c: redis.Redis, data: dict[bytes, bytes]) -> None:
    assert c.mget(list(data)) == list(data.values())
    assert c.lrange(b"sentinel:list", 0, -1) == [b"a", b"b"]


# ---------------------------------------------------------------------------
# Protocol errors and request size limits
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["hiredis", "python"])
def limited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A node with small request limits (1 MiB bulks, 16 arguments), for each parser kind."""
    node = NodeProcess(
        tmp_path_factory.mktemp("limited"),
        "--resp-parser",
        request.param,
        "--proto-max-bulk-len",
        "1mb",
        "--proto-max-multibulk-len",
        "16",
    )
    node.start()
    yield node
    node.stop()


@pytest.mark.parametrize(
    ("request_bytes", "reply"),
    [
        # A bulk over proto-max-bulk-len: the header alone is refused, and a complete request too.
        (b"*3\r\n$3\r\nSET\r\n$3\r\nbad\r\n$1048577\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (encode_command("SET", "bad", b"x" * (MB + 1)), b"-ERR Protocol error: invalid bulk length\r\n"),
        # More arguments than proto-max-multibulk-len.
        (encode_command("MSET", *["bad"] * 16), b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*17\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        # Malformed requests.
        (b"*1\r\n+PING\r\n", b"-ERR Protocol error: expected '$', got '+'\r\n"),
        (b"*x\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b'SET bad "unbalanced\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
        (b"x" * (64 * 1024 + 1), b"-ERR Protocol error: too big inline request\r\n"),
        # What came before the error in the same read still runs and is answered.
        (encode_command("SET", "ok", "1") + b"*1\r\n$-5\r\n", b"+OK\r\n-ERR Protocol error: invalid bulk length\r\n"),
    ],
)
def test_protocol_error_replies_and_closes(limited: NodeProcess, request_bytes: bytes, reply: bytes) -> None:
    c = limited.client()
    data = _write_sentinels(c)
    with _connect(limited.port) as sock:
        _send(sock, request_bytes)
        assert _read_until_closed(sock) == reply  # the reply, then the connection is closed
    # The server is up, nothing half-written exists, and the data written before is intact.
    assert c.ping()
    assert c.get("bad") is None
    _check_sentinels(c, data)
    c.close()


def test_requests_within_the_limits_work(limited: NodeProcess) -> None:
    c = limited.client()
    value = bytes(range(256)) * 4096  # exactly 1 MiB: the limit itself is allowed
    assert c.set("big", value)
    assert c.get("big") == value
    assert c.mset({f"k{i}": i for i in range(7)})  # 15 arguments
    assert c.execute_command("DEL", *[f"k{i}" for i in range(15)]) == 7  # 16 arguments
    c.close()


def test_proto_max_bulk_len_changes_at_runtime(limited: NodeProcess) -> None:
    c = limited.client()
    open_conn = RawClient(limited.port)  # connected before the change: it sees the new limit too
    try:
        assert c.config_set("proto-max-bulk-len", "2mb")
        assert open_conn.call("SET", "big", b"x" * (MB + 10)) == b"+OK\r\n"
        assert c.strlen("big") == MB + 10
    finally:
        c.config_set("proto-max-bulk-len", "1mb")
        open_conn.close()
        c.delete("big")
        c.close()


def test_query_buffer_limit(tmp_path: Path, stopper: list[NodeProcess]) -> None:
    node = _node(tmp_path, "--client-query-buffer-limit", "1mb")
    stopper.append(node)
    c = node.client()
    data = _write_sentinels(c)
    # A huge request that never completes: the client is disconnected once it holds more than 1 MiB.
    with _connect(node.port) as sock:
        _send(sock, b"*3\r\n$3\r\nSET\r\n$4\r\nhuge\r\n$4000000\r\n")
        for _ in range(24):  # 1.5 MiB of the 4 MB promised, 64 KiB at a time
            if not _send(sock, b"x" * 65536):
                break
        assert _read_until_closed(sock) == b""  # closed without a reply, as Redis does
    assert _stats(node)["client_query_buffer_limit_disconnections"] == 1
    assert c.get("huge") is None
    _check_sentinels(c, data)
    # Requests below the limit are fine, also from a pipelining client with many arguments.
    assert c.set("fine", b"y" * 900_000)
    assert c.strlen("fine") == 900_000
    assert c.execute_command("RPUSH", "l", *range(50_000)) == 50_000
    assert _stats(node)["client_query_buffer_limit_disconnections"] == 1
    # The limit counts a multibulk's arguments already parsed, not only the bytes still buffered.
    with _connect(node.port) as sock:
        _send(sock, b"*200000\r\n")
        for _ in range(20):
            if not _send(sock, b"$10\r\n0123456789\r\n" * 4000):  # 64 KB of complete arguments
                break
        assert _read_until_closed(sock) == b""
    assert _stats(node)["client_query_buffer_limit_disconnections"] == 2
    # Complete commands queued behind a blocked one (WAIT for a replica that never comes) count too.
    with _connect(node.port) as sock:
        _send(sock, encode_command("WAIT", "1", "0"))
        for _ in range(40):
            if not _send(sock, encode_command("SET", "queued", b"q" * 65536)):
                break
        assert _read_until_closed(sock) == b""
    assert _stats(node)["client_query_buffer_limit_disconnections"] == 3
    assert c.get("queued") is None
    assert c.ping()
    c.close()


# ---------------------------------------------------------------------------
# Output buffer limits
# ---------------------------------------------------------------------------


def test_output_buffer_limit_normal(tmp_path: Path, stopper: list[NodeProcess]) -> None:
    node = _node(tmp_path)
    stopper.append(node)
    assert node.proc is not None
    c = node.client()
    assert c.config_set("client-output-buffer-limit", "normal 8mb 0 0")
    value = b"v" * MB
    c.set("big", value)
    data = _write_sentinels(c)
    rss_before = _status(node.proc.pid)["VmRSS"]
    # 300 GETs of 1 MiB pipelined by a client that reads nothing: 300 MiB if nothing stopped it.
    with _connect(node.port, rcvbuf=64 * 1024) as sock:
        assert _send(sock, encode_command("GET", "big") * 300)
        wait_until(lambda: _stats(node)["client_output_buffer_limit_disconnections"] == 1, what="disconnection")
        received = _read_until_closed(sock)
    assert len(received) < 100 * MB  # what the kernel had buffered, not the 300 MiB
    assert received[:13] in (b"", b"$1048576\r\nvvv")
    peak = _status(node.proc.pid)["VmHWM"]
    assert peak - rss_before < 120 * MB, f"server memory grew by {(peak - rss_before) // MB} MiB"
    # A client that reads its replies is not affected, and neither is the data.
    assert c.get("big") == value
    assert c.execute_command("MGET", *["big"] * 5) == [value] * 5
    _check_sentinels(c, data)
    assert _stats(node)["client_output_buffer_limit_disconnections"] == 1
    c.close()


def test_output_buffer_limit_pubsub_hard(tmp_path: Path, stopper: list[NodeProcess]) -> None:
    node = _node(tmp_path)
    stopper.append(node)
    c = node.client()
    assert c.config_set("client-output-buffer-limit", "pubsub 1mb 0 0")
    with _connect(node.port, rcvbuf=64 * 1024) as sub:
        assert _send(sub, encode_command("SUBSCRIBE", "news"))
        assert sub.recv(100) == b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
        # The subscriber never reads again; the publisher floods 64 KiB messages.
        payload = b"m" * 65536
        sent = 0
        while c.publish("news", payload) == 1:
            sent += 1
            assert sent < 2000, "a subscriber that never reads was never disconnected (128 MiB queued)"
        assert len(_read_until_closed(sub, limit=200 * MB)) < 100 * MB  # what was delivered before, then EOF
    assert _stats(node)["client_output_buffer_limit_disconnections"] == 1
    assert c.pubsub_numsub("news") == [(b"news", 0)]
    assert c.ping()  # the publisher was never affected
    c.close()


def test_output_buffer_limit_pubsub_soft(tmp_path: Path, stopper: list[NodeProcess]) -> None:
    node = _node(tmp_path)
    stopper.append(node)
    c = node.client()
    # Over 256 KiB for more than 2 seconds: disconnected, even when nothing more is published.
    assert c.config_set("client-output-buffer-limit", "pubsub 0 256kb 2")
    with _connect(node.port, rcvbuf=64 * 1024) as sub:
        assert _send(sub, encode_command("SUBSCRIBE", "news"))
        assert sub.recv(100).startswith(b"*3\r\n$9\r\nsubscribe")

        def omem() -> int:
            for line in c.execute_command("CLIENT", "LIST", "TYPE", "pubsub").decode().splitlines():
                return int(line.split(" omem=")[1].split()[0])
            return -1

        payload = b"m" * 16384
        while 0 <= (queued := omem()) <= 256 * 1024:  # fill the kernel's buffers, then ours past the soft limit
            assert c.publish("news", payload) == 1
        assert queued > 256 * 1024, "the subscriber went away before its buffer passed the soft limit"
        # Over the soft limit, but not for 2 seconds yet: still there. Nothing is published from now on.
        assert c.pubsub_numsub("news") == [(b"news", 1)]
        wait_until(lambda: c.pubsub_numsub("news") == [(b"news", 0)], what="soft limit disconnection")
        _read_until_closed(sub, limit=200 * MB)
    assert _stats(node)["client_output_buffer_limit_disconnections"] == 1
    c.close()


# ---------------------------------------------------------------------------
# maxclients and timeout
# ---------------------------------------------------------------------------


def test_maxclients(tmp_path: Path, stopper: list[NodeProcess]) -> None:
    node = _node(tmp_path, "--maxclients", "3")
    stopper.append(node)
    first = RawClient(node.port)

    def clients() -> int:
        return first.call("CLIENT", "LIST").count(b"id=")

    wait_until(lambda: clients() == 1, what="the readiness probe's connection to go")
    others = [RawClient(node.port), RawClient(node.port)]
    for o in others:
        assert o.call("PING") == b"+PONG\r\n"
    with _connect(node.port) as extra:
        assert _read_until_closed(extra) == b"-ERR max number of clients reached\r\n"
    assert b"rejected_connections:1\r" in first.call("INFO", "stats")
    # A freed slot can be taken again.
    others.pop().close()
    wait_until(lambda: clients() == 2, what="the closed connection to go")
    with RawClient(node.port) as again:
        assert again.call("PING") == b"+PONG\r\n"
    for o in [first, *others]:
        o.close()


def test_maxclients_fits_the_open_files_limit(
    tmp_path: Path, stopper: list[NodeProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Started with only 96 file descriptors, the node lowers maxclients (default 10000) to 96 - 32, as
    # Redis does, so client number 65 gets the error instead of a silently dropped connection.
    real_popen = subprocess.Popen

    def popen_with_low_ulimit(*args, **kwargs):  # type: ignore[no-untyped-def]
        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))

        return real_popen(*args, preexec_fn=preexec, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen_with_low_ulimit)
    node = NodeProcess(tmp_path / "node")
    stopper.append(node)
    node.start()
    monkeypatch.undo()
    first = RawClient(node.port)
    assert first.call("CONFIG", "GET", "maxclients") == b"*2\r\n$10\r\nmaxclients\r\n$2\r\n64\r\n"
    wait_until(lambda: first.call("CLIENT", "LIST").count(b"id=") == 1, what="the readiness probe's connection to go")
    clients = [RawClient(node.port) for _ in range(63)]
    for c in clients:
        assert c.call("PING") == b"+PONG\r\n"
    for _ in range(3):
        with _connect(node.port) as extra:
            assert _read_until_closed(extra) == b"-ERR max number of clients reached\r\n"
    for c in [first, *clients]:
        c.close()
    assert "maxclients has been reduced to 64 to compensate for low ulimit" in node.log()
    assert "Traceback" not in node.log()
    with node.client() as c:
        assert c.ping()


def test_timeout_closes_idle_clients_but_not_subscribers(tmp_path: Path, stopper: list[NodeProcess]) -> None:
    node = _node(tmp_path, "--timeout", "2")
    stopper.append(node)
    subscriber = RawClient(node.port)
    assert subscriber.call("SUBSCRIBE", "ch") == b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
    busy = RawClient(node.port)
    blocked = _connect(node.port)  # waits 3.5 s for a replica that never comes: blocked, not idle
    assert _send(blocked, encode_command("WAIT", "1", "3500"))
    started = time.monotonic()
    # Opened after the others: once it has been idle long enough to be closed, so have they.
    idle = _connect(node.port)
    try:

        def idle_closed() -> bool:
            assert busy.call("PING") == b"+PONG\r\n"  # an active client is never closed
            return _is_closed(idle)

        wait_until(idle_closed, timeout=15, interval=0.2, what="the idle client to be closed")
        assert time.monotonic() - started > 2.0
        assert subscriber.call("PING") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
        assert busy.call("PING") == b"+PONG\r\n"
        assert blocked.recv(100) == b":0\r\n"  # its reply, after the 3.5 s
    finally:
        blocked.close()
        idle.close()
        subscriber.close()
        busy.close()


# ---------------------------------------------------------------------------
# Pipelining and inline commands
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(tmp_path_factory.mktemp("plain"))
    node.start()
    yield node
    node.stop()


def test_pipelining_all_replies_in_order(plain: NodeProcess) -> None:
    commands = []
    expected = []
    for i in range(1000):
        commands += [encode_command("SET", f"p{i}", i), encode_command("INCR", f"p{i}"), encode_command("GET", f"p{i}")]
        value = b"%d" % (i + 1)
        expected += [b"+OK\r\n", b":%d\r\n" % (i + 1), b"$%d\r\n%b\r\n" % (len(value), value)]
    commands.append(b"PING\r\n" * 100)  # inline ones in the same send
    expected += [b"+PONG\r\n"] * 100
    with _connect(plain.port) as sock:
        assert _send(sock, b"".join(commands))
        want = b"".join(expected)
        got = bytearray()
        while len(got) < len(want):
            chunk = sock.recv(1 << 20)
            assert chunk, "connection closed"
            got += chunk
    assert bytes(got) == want


def test_pipelining_behind_a_blocked_command(plain: NodeProcess) -> None:
    # WAIT blocks (no replicas); what the client sends meanwhile queues up behind it, in order.
    last = encode_command("SET", "w:c", "3")
    with _connect(plain.port) as sock:
        assert _send(sock, encode_command("WAIT", "1", "300") + encode_command("SET", "w:a", "1"))
        assert _send(sock, encode_command("SET", "w:b", "2") + last[:9])
        assert _send(sock, last[9:] + encode_command("MGET", "w:a", "w:b", "w:c"))
        want = b":0\r\n+OK\r\n+OK\r\n+OK\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
        got = b""
        while len(got) < len(want):
            chunk = sock.recv(1000)
            assert chunk, "connection closed"
            got += chunk
    assert got == want


class _FakeTransport:
    """Records writes; just enough of an asyncio transport for a Connection."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 6379)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


@pytest.mark.parametrize("kind", ["hiredis", "python"])
def test_pipelined_replies_are_written_in_one_batch(kind: str, tmp_path: Path) -> None:
    # The shell in-process with a fake transport: one read of many commands, one write.
    config = node_config()
    config.set("resp-parser", kind, source="file")
    config.set("dir", str(tmp_path))
    server = NodeServer(config)
    conn = Connection(server)
    transport = _FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    reads = b"".join(encode_command("INCR", "n") for _ in range(200)) + b"PING\r\nGET n\r\n"
    conn.data_received(reads)
    assert transport.writes == [b"".join(b":%d\r\n" % i for i in range(1, 201)) + b"+PONG\r\n$3\r\n200\r\n"]
    # A protocol error: the replies before it and the error in that same write, then close.
    conn.data_received(encode_command("INCR", "n") + b"*1\r\n$x\r\n" + encode_command("INCR", "n"))
    assert transport.writes[1:] == [b":201\r\n-ERR Protocol error: invalid bulk length\r\n"]
    assert transport.closed


def test_inline_commands_over_a_raw_socket(plain: NodeProcess) -> None:
    with _connect(plain.port) as sock:
        _send(sock, b'SET greeting "hello world"\r\nGET greeting\r\nECHO \'it\\\'s\'\nAPPEND greeting "\\x21"\r\n')
        want = b"+OK\r\n$11\r\nhello world\r\n$4\r\nit's\r\n:12\r\n"
        got = b""
        while len(got) < len(want):
            got += sock.recv(1000)
        assert got == want
        _send(sock, b"\r\n\r\nGET greeting\r\n")  # empty lines are ignored
        assert sock.recv(1000) == b"$12\r\nhello world!\r\n"


def test_inline_commands_from_redis_cli_pipe(plain: NodeProcess, redis_cli: str) -> None:
    # redis-cli --pipe sends stdin as is: inline commands, the telnet style.
    script = b"SET cli:a 1\r\nINCR cli:a\r\nINCRBY cli:a 40\r\nRPUSH cli:l \"a b\" 'c'\r\n"
    out = subprocess.run(
        [redis_cli, "-p", str(plain.port), "--pipe"], input=script, capture_output=True, timeout=30, check=False
    )
    assert out.returncode == 0, out.stderr
    assert b"errors: 0, replies: 4" in out.stdout
    c = plain.client()
    assert c.get("cli:a") == b"42"
    assert c.lrange("cli:l", 0, -1) == [b"a b", b"c"]
    c.close()
    # And commands piped to plain redis-cli, one per line.
    out = subprocess.run(
        [redis_cli, "-p", str(plain.port)],
        input=b'SET cli:b "x y"\nGET cli:b\nSTRLEN cli:b\n',
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert out.stdout == b"OK\nx y\n3\n"
