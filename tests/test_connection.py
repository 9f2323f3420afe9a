"""Connection commands: AUTH / requirepass, HELLO, CLIENT *, RESET, QUIT, as Redis 7 answers them."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
import redis
from helpers import NodeProcess, RawClient, wait_until
from redis.backoff import NoBackoff
from redis.retry import Retry

PASSWORD = "s3cret pass"


@pytest.fixture
def r2(node: NodeProcess) -> Iterator[redis.Redis]:
    c = node.client(protocol=2, single_connection_client=True)
    c.flushall()
    yield c
    c.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A node started with --requirepass."""
    proc = NodeProcess(tmp_path_factory.mktemp("secured"), "--requirepass", PASSWORD)
    proc.start()
    yield proc
    proc.stop()


def client_id(raw: RawClient) -> int:
    reply = raw.call("CLIENT", "ID")
    assert reply.startswith(b":")
    return int(reply[1:-2])


def send_pipeline(raw: RawClient, *commands: tuple[str, ...]) -> None:
    out = []
    for args in commands:
        out.append(b"*%d\r\n" % len(args))
        for a in args:
            out.append(b"$%d\r\n%b\r\n" % (len(a), a.encode()))
    raw.sock.sendall(b"".join(out))


# -- AUTH and requirepass ---------------------------------------------------------------


def test_auth_without_a_password_configured(node: NodeProcess) -> None:
    with RawClient(node.port) as raw:
        assert raw.call("AUTH", "x") == (
            b"-ERR AUTH <password> called without any password configured for the default user. "
            b"Are you sure your configuration is correct?\r\n"
        )
        # The default user has no password: any password is accepted for it by name...
        assert raw.call("AUTH", "default", "anything") == b"+OK\r\n"
        # ...but there is no other user.
        assert raw.call("AUTH", "bob", "x") == b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        assert raw.call("AUTH", "a", "b", "c") == b"-ERR syntax error\r\n"
        assert raw.call("AUTH") == b"-ERR wrong number of arguments for 'auth' command\r\n"


def test_requirepass_is_enforced(secured: NodeProcess) -> None:
    with RawClient(secured.port) as raw:
        assert raw.call("GET", "k") == b"-NOAUTH Authentication required.\r\n"
        assert raw.call("CLIENT", "ID") == b"-NOAUTH Authentication required.\r\n"
        assert raw.call("PING") == b"-NOAUTH Authentication required.\r\n"
        assert raw.call("RESET") == b"+RESET\r\n"  # one of the few commands allowed before AUTH
        assert raw.call("AUTH", "wrong") == b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        assert raw.call("AUTH", "default", "wrong") == (
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        )
        assert raw.call("GET", "k") == b"-NOAUTH Authentication required.\r\n"
        assert raw.call("AUTH", PASSWORD) == b"+OK\r\n"
        assert raw.call("SET", "k", "v") == b"+OK\r\n"
        # A failed AUTH does not log an authenticated connection out.
        assert raw.call("AUTH", "wrong") == b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        assert raw.call("GET", "k") == b"$1\r\nv\r\n"
        # RESET logs out again when a password is set.
        assert raw.call("RESET") == b"+RESET\r\n"
        assert raw.call("GET", "k") == b"-NOAUTH Authentication required.\r\n"
        assert raw.call("AUTH", "default", PASSWORD) == b"+OK\r\n"
        assert raw.call("GET", "k") == b"$1\r\nv\r\n"


def test_commands_queued_without_auth_abort_the_transaction(secured: NodeProcess) -> None:
    with RawClient(secured.port) as raw:
        # MULTI needs auth too; then nothing can be queued.
        assert raw.call("MULTI") == b"-NOAUTH Authentication required.\r\n"
        assert raw.call("AUTH", PASSWORD) == b"+OK\r\n"
        assert raw.call("MULTI") == b"+OK\r\n"
        assert raw.call("EXEC") == b"*0\r\n"


def test_hello_auth(secured: NodeProcess) -> None:
    with RawClient(secured.port) as raw:
        reply = raw.call("HELLO", "3")
        assert reply.startswith(b"-NOAUTH HELLO must be called with the client already authenticated")
        assert raw.call("HELLO", "3", "AUTH", "default", "nope") == (
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        )
        reply = raw.call("HELLO", "3", "AUTH", "default", PASSWORD, "SETNAME", "hello-client")
        assert reply.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n")
        assert b"$5\r\nproto\r\n:3\r\n" in reply
        assert raw.call("CLIENT", "GETNAME") == b"$12\r\nhello-client\r\n"
        assert raw.call("GET", "missing") == b"_\r\n"  # now speaking RESP3


def test_redis_py_with_password(secured: NodeProcess) -> None:
    for protocol in (2, 3):
        good = secured.client(password=PASSWORD, protocol=protocol)
        try:
            assert good.set("k", protocol) is True
            assert good.get("k") == str(protocol).encode()
        finally:
            good.close()
    # No retries: redis-py retries connection errors, and AuthenticationError is one.
    no_retry = Retry(NoBackoff(), 0)
    anonymous = secured.client(protocol=2, retry=no_retry)
    try:
        with pytest.raises(redis.AuthenticationError):
            anonymous.get("k")
    finally:
        anonymous.close()
    wrong = secured.client(password="wrong", protocol=2, retry=no_retry)
    try:
        with pytest.raises(redis.AuthenticationError):
            wrong.get("k")
    finally:
        wrong.close()


def test_redis_cli_with_password(secured: NodeProcess, redis_cli: str) -> None:
    base = [redis_cli, "-p", str(secured.port)]
    out = subprocess.run([*base, "GET", "k"], capture_output=True, text=True, timeout=10)
    assert "NOAUTH Authentication required." in out.stdout
    out = subprocess.run(
        [*base, "--no-auth-warning", "-a", PASSWORD, "SET", "cli", "1"], capture_output=True, text=True, timeout=10
    )
    assert out.stdout.strip() == "OK"


# -- HELLO ---------------------------------------------------------------------------


def test_hello(node: NodeProcess) -> None:
    with RawClient(node.port) as raw:
        my_id = client_id(raw)
        reply = raw.call("HELLO")
        # Without a version HELLO answers in the current protocol (a flat array in RESP2).
        assert reply.startswith(b"*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n")
        assert b"$2\r\nid\r\n:%d\r\n" % my_id in reply
        assert b"$4\r\nmode\r\n$10\r\nstandalone\r\n" in reply
        assert raw.call("HELLO", "4") == b"-NOPROTO unsupported protocol version\r\n"
        assert raw.call("HELLO", "x") == b"-ERR Protocol version is not an integer or out of range\r\n"
        assert raw.call("HELLO", " 3") == b"-ERR Protocol version is not an integer or out of range\r\n"
        assert raw.call("HELLO", "3", "SETNAME") == b"-ERR Syntax error in HELLO option 'SETNAME'\r\n"
        assert raw.call("HELLO", "3", "SETNAME", "bad name") == (
            b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        )
        assert raw.call("GET", "missing") == b"$-1\r\n"  # failed HELLOs changed nothing
        assert raw.call("HELLO", "3", "SETNAME", "n3").startswith(b"%7\r\n")
        assert raw.call("GET", "missing") == b"_\r\n"
        assert raw.call("HELLO", "2").startswith(b"*14\r\n")
        assert raw.call("GET", "missing") == b"$-1\r\n"
        assert raw.call("CLIENT", "GETNAME") == b"$2\r\nn3\r\n"


# -- CLIENT ----------------------------------------------------------------------------

# Redis 7.2's CLIENT LIST line: every field, in this order.
CLIENT_LINE = re.compile(
    r"id=(?P<id>\d+) addr=(?P<addr>\S+) laddr=(?P<laddr>\S+) fd=-?\d+ name=(?P<name>\S*) age=\d+ idle=\d+ "
    r"flags=(?P<flags>[A-Za-z]+) db=(?P<db>\d+) sub=(?P<sub>\d+) psub=(?P<psub>\d+) ssub=(?P<ssub>\d+) "
    r"multi=(?P<multi>-?\d+) qbuf=\d+ qbuf-free=\d+ argv-mem=\d+ multi-mem=\d+ rbs=\d+ rbp=\d+ obl=\d+ oll=\d+ "
    r"omem=\d+ tot-mem=\d+ events=r?w? cmd=(?P<cmd>\S+) user=default redir=-1 resp=(?P<resp>[23]) "
    r"lib-name=(?P<lib_name>\S*) lib-ver=(?P<lib_ver>\S*)$"
)


def parse_lines(text: bytes) -> list[dict[str, str]]:
    assert text.endswith(b"\n")
    entries = []
    for line in text.decode().splitlines():
        m = CLIENT_LINE.match(line)
        assert m is not None, f"not a Redis CLIENT LIST line: {line!r}"
        entries.append(m.groupdict())
    return entries


def test_client_id_setname_getname(node: NodeProcess) -> None:
    with RawClient(node.port) as a, RawClient(node.port) as b:
        id_a, id_b = client_id(a), client_id(b)
        assert id_b > id_a
        assert a.call("CLIENT", "GETNAME") == b"$-1\r\n"
        assert a.call("CLIENT", "SETNAME", "worker-1") == b"+OK\r\n"
        assert a.call("CLIENT", "GETNAME") == b"$8\r\nworker-1\r\n"
        assert a.call("CLIENT", "SETNAME", "a b") == (
            b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        )
        assert a.call("CLIENT", "SETNAME", "") == b"+OK\r\n"  # empty clears
        assert a.call("CLIENT", "GETNAME") == b"$-1\r\n"
        assert a.call("CLIENT", "ID", "x") == b"-ERR wrong number of arguments for 'client|id' command\r\n"
        assert a.call("CLIENT", "NOPE") == b"-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n"


def test_client_list_and_info(node: NodeProcess) -> None:
    with RawClient(node.port) as a, RawClient(node.port, resp=3) as b:
        id_a, id_b = client_id(a), client_id(b)
        a.call("CLIENT", "SETNAME", "alpha")
        a.call("SELECT", "4")
        reply = a.call("CLIENT", "LIST")
        assert reply.startswith(b"$")
        entries = {int(e["id"]): e for e in parse_lines(reply.split(b"\r\n", 1)[1][:-2])}
        mine = entries[id_a]
        assert mine["name"] == "alpha" and mine["db"] == "4" and mine["cmd"] == "client|list"
        assert mine["flags"] == "N" and mine["multi"] == "-1" and mine["resp"] == "2"
        host, _, port = mine["laddr"].rpartition(":")
        assert (host, int(port)) == ("127.0.0.1", node.port)
        assert entries[id_b]["resp"] == "3" and entries[id_b]["cmd"] == "client|id"
        # CLIENT INFO is this connection's line; RESP3 gets a verbatim string.
        info = b.call("CLIENT", "INFO")
        assert info.startswith(b"=") and info[info.index(b"\r\n") + 2 :].startswith(b"txt:id=%d " % id_b)
        text = info.split(b"\r\n", 1)[1][4:-2]
        assert parse_lines(text)[0]["cmd"] == "client|info"
        # Filters.
        only = a.call("CLIENT", "LIST", "ID", str(id_b), "999999")
        assert [e["id"] for e in parse_lines(only.split(b"\r\n", 1)[1][:-2])] == [str(id_b)]
        assert a.call("CLIENT", "LIST", "ID", "999999") == b"$0\r\n\r\n"
        assert a.call("CLIENT", "LIST", "ID", "x") == b"-ERR Invalid client ID\r\n"
        assert a.call("CLIENT", "LIST", "TYPE", "foo") == b"-ERR Unknown client type 'foo'\r\n"
        assert a.call("CLIENT", "LIST", "foo") == b"-ERR syntax error\r\n"
        assert a.call("CLIENT", "LIST", "TYPE", "replica") == b"$0\r\n\r\n"
        normal = a.call("CLIENT", "LIST", "TYPE", "normal")
        assert {id_a, id_b} <= {int(e["id"]) for e in parse_lines(normal.split(b"\r\n", 1)[1][:-2])}


def test_redis_py_client_list_and_setinfo(node: NodeProcess) -> None:
    c = node.client(protocol=2, client_name="py-client", single_connection_client=True)
    try:
        me = c.client_info()
        # redis-py announces itself with CLIENT SETINFO on connect.
        assert me["lib-name"] == "redis-py" and me["lib-ver"] == redis.__version__
        assert me["name"] == "py-client"
        assert any(e["id"] == str(me["id"]) for e in c.client_list())
        assert c.client_setinfo("LIB-NAME", "custom-lib") is True
        assert c.client_info()["lib-name"] == "custom-lib"
        with pytest.raises(redis.ResponseError) as err:
            c.client_setinfo("foo", "x")
        assert str(err.value) == "Unrecognized option 'foo'"
        with pytest.raises(redis.ResponseError) as err:
            c.client_setinfo("lib-ver", "1 2")
        assert str(err.value) == "lib-ver cannot contain spaces, newlines or special characters."
    finally:
        c.close()


def test_client_no_evict(node: NodeProcess) -> None:
    with RawClient(node.port) as raw:
        assert raw.call("CLIENT", "NO-EVICT", "on") == b"+OK\r\n"
        assert b" flags=e " in raw.call("CLIENT", "INFO")
        assert raw.call("CLIENT", "NO-EVICT", "OFF") == b"+OK\r\n"
        assert b" flags=N " in raw.call("CLIENT", "INFO")
        assert raw.call("CLIENT", "NO-EVICT", "maybe") == b"-ERR syntax error\r\n"


def test_client_kill_old_form(node: NodeProcess, r2: redis.Redis) -> None:
    with RawClient(node.port) as victim, RawClient(node.port) as killer:
        victim_id = client_id(victim)
        addr = parse_lines(victim.call("CLIENT", "INFO").split(b"\r\n", 1)[1][:-2])[0]["addr"]
        assert killer.call("CLIENT", "KILL", "1.2.3.4:5") == b"-ERR No such client\r\n"
        assert killer.call("CLIENT", "KILL", addr) == b"+OK\r\n"
        with pytest.raises(ConnectionError):
            victim._read()
        # Gone from the list at once.
        assert r2.client_list(client_id=[victim_id]) == []


def test_client_kill_filters(node: NodeProcess, r2: redis.Redis) -> None:
    with RawClient(node.port) as a, RawClient(node.port) as b, RawClient(node.port) as me:
        id_a, id_b = client_id(a), client_id(b)
        assert me.call("CLIENT", "KILL", "ID", "0") == b"-ERR client-id should be greater than 0\r\n"
        assert me.call("CLIENT", "KILL", "ID", "abc") == b"-ERR client-id should be greater than 0\r\n"
        assert me.call("CLIENT", "KILL", "TYPE", "x", "y") == b"-ERR Unknown client type 'x'\r\n"
        assert me.call("CLIENT", "KILL", "USER", "bob") == b"-ERR No such user 'bob'\r\n"
        assert me.call("CLIENT", "KILL", "SKIPME", "maybe") == b"-ERR syntax error\r\n"
        assert me.call("CLIENT", "KILL", "FOO", "bar") == b"-ERR syntax error\r\n"
        assert me.call("CLIENT", "KILL", "ID", "1", "TYPE") == b"-ERR syntax error\r\n"
        assert me.call("CLIENT", "KILL") == b"-ERR wrong number of arguments for 'client|kill' command\r\n"
        assert me.call("CLIENT", "KILL", "ID", "99999999") == b":0\r\n"
        assert me.call("CLIENT", "KILL", "ID", str(id_a)) == b":1\r\n"
        with pytest.raises(ConnectionError):
            a._read()
        info_b = parse_lines(b.call("CLIENT", "INFO").split(b"\r\n", 1)[1][:-2])[0]
        # ADDR and LADDR together must both match.
        assert me.call("CLIENT", "KILL", "ADDR", info_b["addr"], "LADDR", "10.9.9.9:1") == b":0\r\n"
        assert me.call("CLIENT", "KILL", "ADDR", info_b["addr"], "LADDR", info_b["laddr"]) == b":1\r\n"
        with pytest.raises(ConnectionError):
            b._read()
        assert r2.client_list(client_id=[id_a, id_b]) == []
        # SKIPME yes is the default: killing every normal client spares the caller.
        me.call("CLIENT", "KILL", "USER", "default")
        assert me.call("PING") == b"+PONG\r\n"
        # SKIPME no: the caller gets its reply, then the connection is closed.
        assert me.call("CLIENT", "KILL", "ID", str(client_id(me)), "SKIPME", "no") == b":1\r\n"
        with pytest.raises(ConnectionError):
            me._read()


def test_client_kill_type_pubsub(node: NodeProcess, r2: redis.Redis) -> None:
    with RawClient(node.port) as sub, RawClient(node.port) as bystander:
        sub.call("SUBSCRIBE", "ch")
        bystander_id = client_id(bystander)
        assert r2.execute_command("CLIENT", "KILL", "TYPE", "pubsub") == 1
        with pytest.raises(ConnectionError):
            sub._read()
        assert r2.pubsub_numsub("ch") == [(b"ch", 0)]
        assert bystander.call("CLIENT", "ID") == b":%d\r\n" % bystander_id


def test_client_reply(node: NodeProcess) -> None:
    with RawClient(node.port) as raw:
        # OFF: nothing is sent (not even errors) until ON.
        send_pipeline(
            raw,
            ("CLIENT", "REPLY", "OFF"),
            ("SET", "k", "1"),
            ("NOSUCHCMD",),
            ("GET", "k"),
            ("CLIENT", "REPLY", "ON"),
            ("GET", "k"),
        )
        assert raw._read() == b"+OK\r\n"
        assert raw._read() == b"$1\r\n1\r\n"
        # SKIP: only the next command's reply is dropped.
        send_pipeline(raw, ("CLIENT", "REPLY", "SKIP"), ("INCR", "k"), ("INCR", "k"), ("INCR", "k"))
        assert raw._read() == b":3\r\n"
        assert raw._read() == b":4\r\n"
        assert raw.call("CLIENT", "REPLY", "bogus") == b"-ERR syntax error\r\n"


def test_client_help(r2: redis.Redis) -> None:
    lines = r2.execute_command("CLIENT", "HELP")
    assert lines[0] == b"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    for expected in (b"GETNAME", b"ID", b"INFO", b"KILL <ip:port>", b"LIST [options ...]", b"NO-EVICT (ON|OFF)"):
        assert expected in lines
    assert lines[-2:] == [b"HELP", b"    Prints this help."]


def test_redis_cli_client_commands(node: NodeProcess, redis_cli: str) -> None:
    out = subprocess.run(
        [redis_cli, "-p", str(node.port), "CLIENT", "LIST"], capture_output=True, text=True, timeout=10
    )
    lines = out.stdout.strip().splitlines()
    assert lines and all(CLIENT_LINE.match(line) for line in lines), out.stdout
    assert any("cmd=client|list" in line for line in lines)


# -- RESET, QUIT, PING, ECHO ----------------------------------------------------------------


def test_reset(node: NodeProcess, r2: redis.Redis) -> None:
    with RawClient(node.port, resp=3) as raw:
        my_id = client_id(raw)
        raw.call("CLIENT", "SETNAME", "before-reset")
        raw.call("CLIENT", "NO-EVICT", "on")
        raw.call("SELECT", "7")
        raw.call("WATCH", "w")
        raw.call("SUBSCRIBE", "ch")
        raw.call("MULTI")
        raw.call("SET", "k", "v")
        assert raw.call("RESET") == b"+RESET\r\n"
        # RESP2 again, db 0, no name, nothing watched, queued or subscribed; same connection id.
        assert raw.call("GET", "k") == b"$-1\r\n"
        assert client_id(raw) == my_id
        info = parse_lines(raw.call("CLIENT", "INFO").split(b"\r\n", 1)[1][:-2])[0]
        assert info["db"] == "0" and info["name"] == "" and info["flags"] == "N"
        assert info["sub"] == "0" and info["multi"] == "-1" and info["resp"] == "2"
        r2.set("w", "changed")
        raw.call("MULTI")
        raw.call("PING")
        assert raw.call("EXEC") == b"*1\r\n+PONG\r\n"
        assert r2.pubsub_numsub("ch") == [(b"ch", 0)]
        assert raw.call("RESET", "x") == b"-ERR wrong number of arguments for 'reset' command\r\n"


def test_reset_stops_monitor(node: NodeProcess, r2: redis.Redis) -> None:
    with RawClient(node.port) as raw:
        assert raw.call("MONITOR") == b"+OK\r\n"
        assert raw.call("RESET") == b"+RESET\r\n"
        r2.set("after-reset", "1")
        # Had the monitor stayed on, the SET above would arrive before this reply.
        assert raw.call("PING") == b"+PONG\r\n"


def test_quit_and_ping_and_echo(node: NodeProcess) -> None:
    with RawClient(node.port) as raw:
        assert raw.call("PING") == b"+PONG\r\n"
        assert raw.call("PING", "hi") == b"$2\r\nhi\r\n"
        assert raw.call("PING", "a", "b") == b"-ERR wrong number of arguments for 'ping' command\r\n"
        assert raw.call("ECHO", "x y") == b"$3\r\nx y\r\n"
        send_pipeline(raw, ("QUIT",), ("PING",))
        assert raw._read() == b"+OK\r\n"
        with pytest.raises(ConnectionError):
            raw._read()


def test_closed_client_leaves_the_list(node: NodeProcess, r2: redis.Redis) -> None:
    with RawClient(node.port) as raw:
        new_id = client_id(raw)
        assert len(r2.client_list(client_id=[new_id])) == 1
    wait_until(lambda: r2.client_list(client_id=[new_id]) == [], what="the closed client to go")
