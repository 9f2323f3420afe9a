"""Server commands against real processes: INFO, TIME, COMMAND, SLOWLOG, MONITOR, DEBUG, SHUTDOWN, LATENCY.

Where Redis defines the exact reply (COMMAND INFO, help texts, error wording, the
DEBUG DIGEST algorithm, the MONITOR line format) the test asks a real
redis-server started here the same question and compares.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import NodeProcess, RawClient, free_port, wait_until
from kvcluster.node.commands.server import dataset_digest, latency_percentile_usec, value_digest
from kvcluster.node.core import Node
from kvcluster.node.keyspace import ZSet
from kvcluster.node.settings import node_config
from redis.backoff import NoBackoff
from redis.retry import Retry

# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------


class Conn:
    """One connection returning replies unparsed by redis-py's per-command callbacks."""

    def __init__(self, port: int, protocol: int = 2):
        self.conn = redis.Connection(host="127.0.0.1", port=port, protocol=protocol, socket_timeout=10)
        self.conn.connect()

    def __call__(self, *args: Any) -> Any:
        self.conn.send_command(*args)
        return self.conn.read_response()

    def error(self, *args: Any) -> str:
        """The error message a command gets (fails the test if it succeeds)."""
        with pytest.raises(redis.ResponseError) as info:
            self(*args)
        return str(info.value)

    def outcome(self, *args: Any) -> Any:
        """The reply, or ("error", message): to compare behaviours with redis-server."""
        try:
            return self(*args)
        except redis.ResponseError as e:
            return ("error", str(e))

    def local_addr(self) -> str:
        host, port = self.conn._sock.getsockname()[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        self.conn.disconnect()


class RedisServer:
    """A real redis-server (Debian's) on a free port: the reference for exact replies."""

    def __init__(self, directory: Path):
        path = shutil.which("redis-server")
        if path is None:
            pytest.fail("redis-server is not installed: `make test` installs Debian's redis-server")
        self.port = free_port()
        args = [path, "--port", str(self.port), "--save", "", "--appendonly", "no", "--daemonize", "no"]
        args += ["--enable-debug-command", "yes", "--dir", str(directory)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(lambda: redis.Redis(port=self.port, socket_timeout=1).ping(), what="redis-server")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-ref"))
    yield server
    server.stop()


@pytest.fixture
def ours(node: NodeProcess) -> Iterator[Conn]:
    c = Conn(node.port)
    c("FLUSHALL")
    yield c
    c.close()


@pytest.fixture
def theirs(ref: RedisServer) -> Iterator[Conn]:
    c = Conn(ref.port)
    c("FLUSHALL")
    yield c
    c.close()


def parse_info(text: bytes | str) -> dict[str, str]:
    if isinstance(text, bytes):
        text = text.decode()
    fields = {}
    for line in text.split("\r\n"):
        if line and not line.startswith("#"):
            name, _, value = line.partition(":")
            fields[name] = value
    return fields


def info_headers(text: bytes) -> list[str]:
    return [line for line in text.decode().split("\r\n") if line.startswith("# ")]


def cmdstat(fields: dict[str, str], name: str) -> dict[str, float]:
    raw = fields.get(f"cmdstat_{name}")
    if raw is None:
        return {"calls": 0, "usec": 0, "usec_per_call": 0, "rejected_calls": 0, "failed_calls": 0}
    return {k: float(v) for k, v in (item.split("=") for item in raw.split(","))}


# ---------------------------------------------------------------------------
# INFO
# ---------------------------------------------------------------------------


def test_info_default_sections_match_redis(ours: Conn, theirs: Conn) -> None:
    text = ours("INFO")
    assert info_headers(text) == info_headers(theirs("INFO"))
    assert info_headers(text) == [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Modules",
        "# Errorstats",
        "# Cluster",
        "# Keyspace",
    ]
    for name in ("all", "everything", "default", "commandstats", "server clients"):
        assert info_headers(ours("INFO", *name.split())) == info_headers(theirs("INFO", *name.split())), name
    # Sections come in the canonical order, whatever order they are asked in; names are case-insensitive.
    assert info_headers(ours("INFO", "KEYSPACE", "server")) == ["# Server", "# Keyspace"]
    assert ours("INFO", "nosuchsection") == theirs("INFO", "nosuchsection") == b""
    # Layout: field lines end with CRLF, one blank line between sections, no trailing blank line.
    assert text.endswith(b"\r\n") and not text.endswith(b"\r\n\r\n")
    assert b"\r\n\r\n# Clients\r\n" in text
    assert all(re.fullmatch(r"# \w+|[a-z_0-9|]+:.*", line) for line in text.decode().split("\r\n") if line)


REQUIRED_FIELDS = {
    "server": "redis_version redis_mode os arch_bits process_id run_id tcp_port uptime_in_seconds uptime_in_days hz "
    "executable config_file kvcluster_version",
    "clients": "connected_clients blocked_clients maxclients client_recent_max_input_buffer "
    "client_recent_max_output_buffer",
    "memory": "used_memory used_memory_human used_memory_rss used_memory_rss_human used_memory_peak maxmemory "
    "maxmemory_human maxmemory_policy mem_fragmentation_ratio",
    "persistence": "loading rdb_changes_since_last_save rdb_bgsave_in_progress rdb_last_save_time aof_enabled",
    "stats": "total_connections_received total_commands_processed instantaneous_ops_per_sec total_net_input_bytes "
    "total_net_output_bytes instantaneous_input_kbps instantaneous_output_kbps rejected_connections expired_keys "
    "expired_stale_perc evicted_keys keyspace_hits keyspace_misses pubsub_channels pubsub_patterns "
    "total_error_replies client_query_buffer_limit_disconnections client_output_buffer_limit_disconnections",
    "replication": "role connected_slaves master_replid master_replid2 master_repl_offset second_repl_offset "
    "repl_backlog_active repl_backlog_size repl_backlog_first_byte_offset repl_backlog_histlen",
    "cpu": "used_cpu_sys used_cpu_user used_cpu_sys_children used_cpu_user_children",
    "cluster": "cluster_enabled",
}


def test_info_fields_present_and_well_formed(node: NodeProcess, ours: Conn) -> None:
    for section, names in REQUIRED_FIELDS.items():
        fields = parse_info(ours("INFO", section))
        missing = [n for n in names.split() if n not in fields]
        assert not missing, f"INFO {section} lacks {missing}"
    server = parse_info(ours("INFO", "server"))
    assert server["redis_version"] == "7.2.0"
    assert server["redis_mode"] == "standalone"
    assert server["process_id"] == str(node.proc.pid)
    assert server["tcp_port"] == str(node.port)
    assert re.fullmatch(r"[0-9a-f]{40}", server["run_id"])
    assert parse_info(ours("INFO", "server"))["run_id"] == server["run_id"]
    assert server["arch_bits"] in ("32", "64")
    memory = parse_info(ours("INFO", "memory"))
    assert int(memory["used_memory"]) > 1_000_000  # an RSS: a Python process is megabytes
    assert re.fullmatch(r"\d+\.\d\dM", memory["used_memory_human"])
    assert int(memory["used_memory_peak"]) >= int(memory["used_memory_rss"]) > 0
    repl = parse_info(ours("INFO", "replication"))
    assert repl["role"] == "master"
    assert re.fullmatch(r"[0-9a-f]{40}", repl["master_replid"])
    assert repl["master_replid2"] == "0" * 40
    assert repl["second_repl_offset"] == "-1"
    cpu = parse_info(ours("INFO", "cpu"))
    assert all(re.fullmatch(r"\d+\.\d{6}", v) for v in cpu.values())
    assert parse_info(ours("INFO", "persistence"))["loading"] == "0"


def test_info_counters_change(ours: Conn) -> None:
    before = parse_info(ours("INFO", "stats"))
    dirty_before = int(parse_info(ours("INFO", "persistence"))["rdb_changes_since_last_save"])
    for i in range(5):
        ours("SET", f"k{i}", "v")
    after = parse_info(ours("INFO", "stats"))
    # The five SETs, the INFO persistence and the first INFO itself (counted once it has run).
    assert int(after["total_commands_processed"]) - int(before["total_commands_processed"]) == 7
    assert int(after["total_net_input_bytes"]) > int(before["total_net_input_bytes"])
    assert int(after["total_net_output_bytes"]) > int(before["total_net_output_bytes"])
    dirty_after = int(parse_info(ours("INFO", "persistence"))["rdb_changes_since_last_save"])
    assert dirty_after - dirty_before == 5
    ours("GET", "k1")
    ours("GET", "missing")
    stats = parse_info(ours("INFO", "stats"))
    assert int(stats["keyspace_hits"]) == int(after["keyspace_hits"]) + 1
    assert int(stats["keyspace_misses"]) == int(after["keyspace_misses"]) + 1


def test_info_keyspace_lines(ours: Conn) -> None:
    assert ours("INFO", "keyspace") == b"# Keyspace\r\n"
    ours("SET", "a", "1")
    ours("SET", "b", "1")
    ours("SETEX", "c", "100", "1")
    ours("SELECT", "2")
    ours("SET", "x", "1")
    ours("SELECT", "0")
    fields = parse_info(ours("INFO", "keyspace"))
    assert fields["db2"] == "keys=1,expires=0,avg_ttl=0"
    match = re.fullmatch(r"keys=3,expires=1,avg_ttl=(\d+)", fields["db0"])
    assert match, fields["db0"]
    assert 90_000 < int(match.group(1)) <= 100_000
    assert list(fields) == ["db0", "db2"]


def test_info_commandstats_and_errorstats(ours: Conn, theirs: Conn) -> None:
    before = parse_info(ours("INFO", "commandstats"))
    errors_before = parse_info(ours("INFO", "errorstats"))
    ours("SET", "n", "notanumber")
    ours.error("INCR", "n")  # runs and fails
    ours.error("SET", "onlykey")  # refused by the arity check
    ours.error("NOSUCHCOMMAND")
    ours("SLOWLOG", "LEN")
    after = parse_info(ours("INFO", "commandstats"))
    assert cmdstat(after, "set")["calls"] == cmdstat(before, "set")["calls"] + 1
    assert cmdstat(after, "set")["rejected_calls"] == cmdstat(before, "set")["rejected_calls"] + 1
    assert cmdstat(after, "incr")["failed_calls"] == cmdstat(before, "incr")["failed_calls"] + 1
    assert cmdstat(after, "slowlog|len")["calls"] == cmdstat(before, "slowlog|len")["calls"] + 1
    line = after["cmdstat_set"]
    assert re.fullmatch(r"calls=\d+,usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=\d+,failed_calls=\d+", line)
    errors = parse_info(ours("INFO", "errorstats"))
    count = int(errors["errorstat_ERR"].removeprefix("count="))
    assert count == int(errors_before.get("errorstat_ERR", "count=0").removeprefix("count=")) + 3
    # The same sequence on redis-server names its stats the same way.
    theirs("SET", "n", "notanumber")
    theirs.error("INCR", "n")
    theirs("SLOWLOG", "LEN")
    redis_stats = parse_info(theirs("INFO", "commandstats"))
    assert {"cmdstat_set", "cmdstat_incr", "cmdstat_slowlog|len"} <= set(redis_stats)
    assert "errorstat_ERR" in parse_info(theirs("INFO", "errorstats"))


def test_info_instantaneous_ops_per_sec_is_sampled(node: NodeProcess, ours: Conn) -> None:
    client = node.client(protocol=2)

    def busy() -> bool:
        pipe = client.pipeline(transaction=False)
        for _ in range(300):
            pipe.ping()
        pipe.execute()
        return int(parse_info(ours("INFO", "stats"))["instantaneous_ops_per_sec"]) > 0

    wait_until(busy, timeout=10, what="instantaneous_ops_per_sec > 0")
    client.close()


def test_info_is_verbatim_in_resp3(node: NodeProcess) -> None:
    with RawClient(node.port, resp=3) as c:
        reply = c.call("INFO", "server")
    header, _, body = reply.partition(b"\r\n")
    assert header.startswith(b"=")
    assert body.startswith(b"txt:# Server\r\n")
    assert int(header[1:]) == len(body) - 2
    with RawClient(node.port, resp=2) as c:
        assert c.call("INFO", "server").startswith(b"$")


def test_time(ours: Conn) -> None:
    seconds, micros = ours("TIME")
    assert abs(int(seconds) - time.time()) < 5
    assert 0 <= int(micros) < 1_000_000
    assert ours.error("TIME", "x") == "wrong number of arguments for 'time' command"


# ---------------------------------------------------------------------------
# COMMAND
# ---------------------------------------------------------------------------

COMPARED_COMMANDS = [
    "get",
    "set",
    "echo",
    "select",
    "dbsize",
    "flushall",
    "info",
    "time",
    "monitor",
    "shutdown",
    "debug",
    "slowlog",
    "latency",
    "command",
]


def _shape(entry: list[Any]) -> dict[str, Any]:
    """The parts of a COMMAND INFO entry both servers derive the same way (tips are Redis-only)."""
    return {
        "name": entry[0],
        "arity": entry[1],
        "flags": entry[2],
        "keys": entry[3:6],
        "categories": entry[6],
        "subcommands": sorted((_shape(sub) for sub in entry[9]), key=lambda s: s["name"]),
    }


@pytest.mark.parametrize("name", COMPARED_COMMANDS)
def test_command_info_matches_redis(ours: Conn, theirs: Conn, name: str) -> None:
    [mine] = ours("COMMAND", "INFO", name)
    [real] = theirs("COMMAND", "INFO", name)
    assert _shape(mine) == _shape(real)


def test_command_info_key_specs_match_redis(ours: Conn, theirs: Conn) -> None:
    for name in ("get", "set"):
        [mine] = ours("COMMAND", "INFO", name)
        [real] = theirs("COMMAND", "INFO", name)
        mine_spec, real_spec = (
            dict(zip(*[iter(mine[8][0])] * 2, strict=True)),
            dict(zip(*[iter(real[8][0])] * 2, strict=True)),
        )
        assert mine_spec[b"begin_search"] == real_spec[b"begin_search"]
        assert mine_spec[b"find_keys"] == real_spec[b"find_keys"]
        assert mine_spec[b"flags"][0] == real_spec[b"flags"][0]  # RO / RW


def test_command_info_resp3_and_unknown(node: NodeProcess, ours: Conn) -> None:
    assert ours("COMMAND", "INFO", "nosuch", "get")[0] is None
    [sub] = ours("COMMAND", "INFO", "slowlog|get")
    assert sub[0] == b"slowlog|get" and sub[1] == -2
    with RawClient(node.port, resp=3) as c:
        reply = c.call("COMMAND", "INFO", "get")
    assert reply.startswith(b"*1\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~3\r\n")
    assert b"+@read\r\n+@string\r\n+@fast\r\n" in reply
    assert b"%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n+access\r\n" in reply  # key specs are maps in RESP3


def test_command_whole_table(node: NodeProcess, ours: Conn) -> None:
    count = ours("COMMAND", "COUNT")
    table = ours("COMMAND")
    assert len(table) == count > 50
    names = {entry[0] for entry in table}
    assert {b"get", b"info", b"command", b"slowlog"} <= names
    # Each entry is the same as COMMAND INFO's.
    assert [e for e in table if e[0] == b"info"] == ours("COMMAND", "INFO", "info")
    r3 = Conn(node.port, protocol=3)
    assert len(r3("COMMAND")) == count
    r3.close()


def test_command_list(ours: Conn, theirs: Conn) -> None:
    everything = ours("COMMAND", "LIST")
    assert b"get" in everything and b"slowlog|get" in everything and b"command|getkeys" in everything
    assert len(everything) == len(set(everything))
    for args in (
        ("FILTERBY", "PATTERN", "slowlog*"),
        ("FILTERBY", "pattern", "LATENCY|H*"),
        ("FILTERBY", "MODULE", "x"),
        ("FILTERBY", "ACLCAT", "nosuchcategory"),
        ("FILTERBY", "PATTERN"),
        ("FOO",),
        ("FILTERBY", "PATTERN", "x", "y"),
        ("FILTERBY", "NOSUCH", "x"),
    ):
        mine, real = ours.outcome("COMMAND", "LIST", *args), theirs.outcome("COMMAND", "LIST", *args)
        if isinstance(mine, list):
            assert sorted(mine) == sorted(real), args
        else:
            assert mine == real, args
    admin = ours("COMMAND", "LIST", "FILTERBY", "ACLCAT", "admin")
    assert b"shutdown" in admin and b"slowlog|get" in admin and b"get" not in admin
    fast = ours("COMMAND", "LIST", "FILTERBY", "ACLCAT", "FAST")
    assert b"get" in fast and b"set" not in fast


def test_command_getkeys_matches_redis(ours: Conn, theirs: Conn) -> None:
    cases = [
        ("get", "a"),
        ("set", "a", "b"),
        ("set", "a", "b", "EX", "10"),
        ("mset", "a", "1", "b", "2"),
        ("nosuch", "a"),
        ("get", "a", "b"),
        ("echo", "x"),
        ("slowlog", "get", "1"),
        ("slowlog", "nosuch", "1"),
        ("get",),
        (),
    ]
    for case in cases:
        for sub in ("GETKEYS", "GETKEYSANDFLAGS"):
            mine, real = ours.outcome("COMMAND", sub, *case), theirs.outcome("COMMAND", sub, *case)
            if sub == "GETKEYSANDFLAGS" and isinstance(real, list):
                # Keys agree; our key flags are coarser than Redis's per-argument ones.
                mine, real = [k for k, _ in mine], [k for k, _ in real]
            assert mine == real, (sub, case)


def test_command_docs_help_and_errors(ours: Conn, theirs: Conn) -> None:
    docs = ours("COMMAND", "DOCS", "get", "nosuch", "slowlog")
    entries = dict(zip(docs[::2], docs[1::2], strict=True))
    assert set(entries) == {b"get", b"slowlog"}
    get = dict(zip(entries[b"get"][::2], entries[b"get"][1::2], strict=True))
    assert get[b"group"] == b"string" and get[b"since"] == b"1.0.0" and get[b"summary"]
    slowlog = dict(zip(entries[b"slowlog"][::2], entries[b"slowlog"][1::2], strict=True))
    subs = dict(zip(slowlog[b"subcommands"][::2], slowlog[b"subcommands"][1::2], strict=True))
    assert set(subs) == {b"slowlog|get", b"slowlog|len", b"slowlog|reset", b"slowlog|help"}
    assert ours("COMMAND", "DOCS", "nosuch") == theirs("COMMAND", "DOCS", "nosuch") == []
    assert ours("COMMAND", "HELP") == theirs("COMMAND", "HELP")
    for args in (("FOO",), ("COUNT", "x"), ("GETKEYS",)):
        assert ours.error("COMMAND", *args) == theirs.error("COMMAND", *args)


# ---------------------------------------------------------------------------
# SLOWLOG
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    proc = NodeProcess(tmp_path_factory.mktemp("slow"), "--slowlog-log-slower-than", "0", "--slowlog-max-len", "20")
    proc.start()
    yield proc
    proc.stop()


def _slowlog_sequence(c: Conn) -> list[list[bytes]]:
    c("SLOWLOG", "RESET")
    c("SET", "k", "v")
    c("ECHO", "x" * 200)
    c("MSET", *[f"k{i}" for i in range(20) for _ in range(2)])
    c.error("SET", "k")  # refused before running: not logged
    entries = c("SLOWLOG", "GET", "-1")
    return [e[3] for e in entries]


def test_slowlog_entries_match_redis(slow_node: NodeProcess, ref: RedisServer) -> None:
    mine = Conn(slow_node.port)
    real = Conn(ref.port)
    real("CONFIG", "SET", "slowlog-log-slower-than", "0")
    try:
        assert _slowlog_sequence(mine) == _slowlog_sequence(real)
        entry = mine("SLOWLOG", "GET", "1")[0]
        entry_id, timestamp, micros, args, addr, name = entry
        assert args == [b"SLOWLOG", b"GET", b"-1"]
        assert abs(timestamp - time.time()) < 5 and micros >= 0
        assert addr == mine.local_addr().encode() and name == b""
        assert mine("SLOWLOG", "GET", "1")[0][0] == entry_id + 1
    finally:
        real("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        mine.close()
        real.close()


def test_slowlog_len_reset_max_len_and_errors(slow_node: NodeProcess, theirs: Conn) -> None:
    c = Conn(slow_node.port)
    c("SLOWLOG", "RESET")
    assert c("SLOWLOG", "LEN") == 1  # the RESET itself, logged after it ran (as Redis does)
    for i in range(30):
        c("SET", f"k{i}", "v")
    assert c("SLOWLOG", "LEN") == 20  # --slowlog-max-len
    assert len(c("SLOWLOG", "GET")) == 10
    assert len(c("SLOWLOG", "GET", "3")) == 3
    assert c("SLOWLOG", "GET", "0") == []
    for args in (("GET", "-2"), ("GET", "x"), ("GET", "1", "2"), ("NOSUCH",), ("LEN", "x")):
        assert c.error("SLOWLOG", *args) == theirs.error("SLOWLOG", *args), args
    assert c("SLOWLOG", "HELP") == theirs("SLOWLOG", "HELP")
    c.close()


def test_slowlog_threshold_default_logs_nothing_fast(ours: Conn) -> None:
    ours("SLOWLOG", "RESET")
    ours("DEBUG", "SLEEP", "0.02")  # 20 ms > the default 10 ms threshold
    entries = ours("SLOWLOG", "GET")
    assert [b"DEBUG", b"SLEEP", b"0.02"] in [e[3] for e in entries]
    assert next(e[2] for e in entries if e[3][0] == b"DEBUG") >= 20_000


# ---------------------------------------------------------------------------
# MONITOR
# ---------------------------------------------------------------------------


def test_monitor_with_redis_py(node: NodeProcess) -> None:
    watcher = node.client(protocol=2)
    other = Conn(node.port)
    with watcher.monitor() as m:
        other("SET", "mk", "hello world")
        other("DEBUG", "DIGEST")  # admin commands are not shown
        other("SELECT", "3")
        other("GET", "mk")
        first = m.next_command()
        second = m.next_command()
        third = m.next_command()
    assert first["command"] == "SET mk hello world"
    assert first["db"] == 0
    assert f"{first['client_address']}:{first['client_port']}" == other.local_addr()
    assert abs(first["time"] - time.time()) < 5
    assert second["command"] == "SELECT 3" and second["db"] == 3
    assert third["command"] == "GET mk" and third["db"] == 3
    other.close()
    watcher.close()


def _monitor_lines(port: int, commands: list[tuple[str, ...]]) -> list[str]:
    """MONITOR lines (timestamp and address stripped) seen while another connection runs ``commands``."""
    # Raw connections: no client library handshake (CLIENT SETINFO...) shows up in the feed.
    with RawClient(port) as watcher, RawClient(port) as other:
        assert watcher.call("MONITOR") == b"+OK\r\n"
        for cmd in commands:
            other.call(*cmd)
        other.call("PING", "end")
        lines = []
        while True:
            line = watcher.file.readline().decode()
            match = re.fullmatch(r"\+\d+\.\d{6} \[(\d+) 127\.0\.0\.1:\d+\] (.*)\r\n", line)
            assert match, line
            lines.append(f"{match.group(1)} {match.group(2)}")
            if lines[-1].endswith('"PING" "end"'):
                break
    return lines


def test_monitor_line_format_matches_redis(node: NodeProcess, ref: RedisServer) -> None:
    commands = [
        ("SET", "a b", 'x"y\\z'),
        ("SET", "bin", "\x01\n\r\t\x07\x08\x7f"),
        ("CONFIG", "GET", "maxmemory"),
        ("INFO", "server"),
        ("NOSUCHCOMMAND", "x"),
        ("GET",),
        ("SELECT", "2"),
        ("GET", "a b"),
    ]
    assert _monitor_lines(node.port, commands) == _monitor_lines(ref.port, commands)


# ---------------------------------------------------------------------------
# DEBUG
# ---------------------------------------------------------------------------

# Digests redis-server 7.0 computes for these values (DEBUG DIGEST-VALUE), and for the whole dataset.
GOLDEN_VALUE_DIGESTS = [
    (b"hello", "36b23a1456b2dce2c3ed252c456761301dba8060"),
    (b"12345", "e1cf90774e995ae03de66e8109dc5cb9d9c2dc83"),
    (deque([b"a", b"b", b"1", b"c"]), "c4a8a02111509d350dc1370a4bb1e7816a0d6837"),
    ({b"1", b"2", b"3"}, "2a462a3f51a1db89738ebbeef0c47ce1bbc85246"),
    ({b"a", b"b", b"zz"}, "0a43f872aaa237964860a3b6859e20210c90dd71"),
    ({b"f1": b"v1", b"f2": b"2"}, "fc076e867f7dbf566ea58172a151d82d78b8f845"),
]
GOLDEN_ZSET = {b"a": 1.0, b"b": 1.5, b"c": 0.1, b"d": -3.0, b"e": 1e20, b"f": float("inf"), b"h": 2.5e-7}
GOLDEN_ZSET_DIGEST = "971b4fceab4adae974e33f1f67778671a1a4ebc2"
GOLDEN_DATASET_DIGEST = "f9880085b0276f846d3fb3c4a44b161df4a6bb57"


def _zset(scores: dict[bytes, float]) -> ZSet:
    z = ZSet()
    for member, score in scores.items():
        z.add(member, score)
    return z


def test_digest_algorithm_matches_redis_golden_values() -> None:
    for value, expected in GOLDEN_VALUE_DIGESTS:
        assert f"{value_digest(value, None):040x}" == expected, value
    assert f"{value_digest(_zset(GOLDEN_ZSET), None):040x}" == GOLDEN_ZSET_DIGEST
    # The same dataset redis-server digested: db0 (s, l, st, h, z) and db3 (in3).
    node = Node(node_config())
    assert dataset_digest(node) == "0" * 40
    db0, db3 = node.keyspace.dbs[0], node.keyspace.dbs[3]
    db3.set(b"in3", b"v")
    db0.set(b"z", _zset(GOLDEN_ZSET))
    db0.set(b"h", {b"f2": b"2", b"f1": b"v1"})
    db0.set(b"st", {b"3", b"1", b"2"})
    db0.set(b"l", deque([b"a", b"b", b"1", b"c"]))
    db0.set(b"s", b"hello")
    assert dataset_digest(node) == GOLDEN_DATASET_DIGEST
    # A TTL changes the digest, and its value matters too.
    db0.set_expire(b"s", 1_900_000_000_000)
    with_ttl = dataset_digest(node)
    assert with_ttl != GOLDEN_DATASET_DIGEST
    db0.set_expire(b"s", 1_900_000_000_001)
    assert dataset_digest(node) not in (with_ttl, GOLDEN_DATASET_DIGEST)
    # The same contents in another type differ: a list and a set of the same members.
    assert value_digest(deque([b"a"]), None) != value_digest({b"a"}, None)
    # List order matters; negative zero scores are zero, as Redis stores them.
    assert value_digest(deque([b"a", b"b"]), None) != value_digest(deque([b"b", b"a"]), None)
    assert value_digest(_zset({b"m": -0.0}), None) == value_digest(_zset({b"m": 0.0}), None)


def _load(c: Conn, order: list[int]) -> None:
    for i in order:
        c("SELECT", str(i % 3))
        c("SET", f"str:{i}", f"value-{i}")
        fields = [f"f{j}" for j in range(i % 5 + 1)]
        if i % 2:
            fields.reverse()
        c("HSET", f"hash:{i}", *[x for f in fields for x in (f, f"v-{f}")])
    c("SELECT", "0")


def test_debug_digest_across_nodes(node: NodeProcess, tmp_path: Path, ours: Conn, theirs: Conn) -> None:
    assert ours("DEBUG", "DIGEST") == b"0" * 40
    with NodeProcess(tmp_path) as second:
        other = Conn(second.port)
        _load(ours, list(range(30)))
        _load(other, list(reversed(range(30))))
        _load(theirs, list(range(30)))
        digest = ours("DEBUG", "DIGEST")
        assert re.fullmatch(rb"[0-9a-f]{40}", digest) and digest != b"0" * 40
        assert other("DEBUG", "DIGEST") == digest
        assert theirs("DEBUG", "DIGEST") == digest  # no TTLs: Redis's own algorithm
        assert ours("DEBUG", "DIGEST-VALUE", "str:0", "hash:0", "nosuch") == theirs(
            "DEBUG", "DIGEST-VALUE", "str:0", "hash:0", "nosuch"
        )
        # Same absolute expiry time on both: still equal; a different one: not.
        ours("GETEX", "str:3", "PXAT", "4102444800000")
        other("GETEX", "str:3", "PXAT", "4102444800000")
        with_ttl = ours("DEBUG", "DIGEST")
        assert with_ttl != digest and other("DEBUG", "DIGEST") == with_ttl
        other("GETEX", "str:3", "PXAT", "4102444800001")
        assert other("DEBUG", "DIGEST") != with_ttl
        other("GETEX", "str:3", "PXAT", "4102444800000")
        assert other("DEBUG", "DIGEST") == with_ttl
        # Any change of a value, a key or a type shows.
        other("SET", "str:0", "changed")
        assert other("DEBUG", "DIGEST") != with_ttl
        other("SET", "str:0", "value-0")
        assert other("DEBUG", "DIGEST") == with_ttl
        other("HSET", "hash:3", "f0", "other")
        assert other("DEBUG", "DIGEST") != with_ttl
        other("HSET", "hash:3", "f0", "v-f0")
        assert other("DEBUG", "DIGEST") == with_ttl
        other("GETDEL", "str:0")
        other("SET", "str:0x", "value-0")
        assert other("DEBUG", "DIGEST") != with_ttl
        other.close()


def test_debug_subcommands_and_errors(ours: Conn, theirs: Conn) -> None:
    assert ours("DEBUG", "DIGEST-VALUE") == []
    for args in (("NOSUCH",), ("nosuch", "x"), ("DIGEST", "extra"), ("SLEEP",)):
        assert ours.error("DEBUG", *args) == theirs.error("DEBUG", *args), args
    assert ours.error("DEBUG") == theirs.error("DEBUG")
    assert ours.error("DEBUG", "SLEEP", "abc") == "value is not a valid float"
    assert ours.error("DEBUG", "ERROR", "custom failure") == theirs.error("DEBUG", "ERROR", "custom failure")
    assert ours("DEBUG", "LOG", "hello from the test") == b"OK"
    help_lines = ours("DEBUG", "HELP")
    assert help_lines[0] == theirs("DEBUG", "HELP")[0]
    for line in (b"DIGEST", b"SLEEP <seconds>", b"SET-ACTIVE-EXPIRE <0|1>", b"HELP"):
        assert line in help_lines
    start = time.monotonic()
    assert ours("DEBUG", "SLEEP", "0.2") == b"OK"
    assert time.monotonic() - start >= 0.2


def test_debug_set_active_expire(ours: Conn) -> None:
    try:
        assert ours("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"OK"
        expired_before = int(parse_info(ours("INFO", "stats"))["expired_keys"])
        ours("PSETEX", "short", "1", "v")
        # DBSIZE counts stored keys without touching them, so it sees what active expiry did.
        time.sleep(0.5)  # five cron ticks at hz 10: active expiry would have deleted the key
        assert ours("DBSIZE") == 1
        assert ours("DEBUG", "SET-ACTIVE-EXPIRE", "1") == b"OK"
        wait_until(lambda: ours("DBSIZE") == 0, timeout=5, what="active expiry of the key")
        assert int(parse_info(ours("INFO", "stats"))["expired_keys"]) == expired_before + 1
    finally:
        ours("DEBUG", "SET-ACTIVE-EXPIRE", "1")


# ---------------------------------------------------------------------------
# SHUTDOWN
# ---------------------------------------------------------------------------


def test_shutdown_errors_match_redis(ours: Conn, theirs: Conn) -> None:
    for args in (("ABORT",), ("FOO",), ("SAVE", "NOSAVE"), ("NOSAVE", "SAVE"), ("ABORT", "NOW"), ("NOW", "ABORT")):
        assert ours.error("SHUTDOWN", *args) == theirs.error("SHUTDOWN", *args), args
    for c in (ours, theirs):
        c("MULTI")
    assert ours.error("SHUTDOWN") == theirs.error("SHUTDOWN") == "Command not allowed inside a transaction"
    assert ours.error("EXEC") == theirs.error("EXEC")
    assert ours("PING") == b"PONG"


@pytest.mark.parametrize("args", [("SHUTDOWN",), ("SHUTDOWN", "NOSAVE", "NOW"), ("shutdown", "save", "force")])
def test_shutdown_exits_the_process(tmp_path: Path, args: tuple[str, ...]) -> None:
    proc = NodeProcess(tmp_path).start()
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as s:
            s.sendall(" ".join(args).encode() + b"\r\n")
            assert s.recv(100) == b""  # no reply: the connection just closes
        assert proc.proc is not None
        assert proc.proc.wait(10) == 0
    finally:
        proc.stop()


def test_shutdown_with_redis_py(tmp_path: Path) -> None:
    proc = NodeProcess(tmp_path).start()
    try:
        # No retries: redis-py would otherwise reconnect with backoff to a server that is gone.
        client = proc.client(protocol=2, retry=Retry(NoBackoff(), 0))
        client.shutdown(nosave=True)
        assert proc.proc is not None and proc.proc.wait(10) == 0
        with pytest.raises(redis.ConnectionError):
            proc.client(socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)).ping()
    finally:
        proc.stop()


# ---------------------------------------------------------------------------
# LATENCY
# ---------------------------------------------------------------------------


def test_latency_histogram(ours: Conn, node: NodeProcess) -> None:
    for i in range(10):
        ours("SET", f"k{i}", "v")
    calls = int(cmdstat(parse_info(ours("INFO", "commandstats")), "set")["calls"])
    reply = ours("LATENCY", "HISTOGRAM", "set", "nosuch")
    assert reply[0] == b"set"
    entry = dict(zip(reply[1][::2], reply[1][1::2], strict=True))
    assert entry[b"calls"] == calls
    histogram = entry[b"histogram_usec"]
    bounds, counts = histogram[::2], histogram[1::2]
    assert bounds == sorted(bounds) and counts == sorted(counts) and counts[-1] == calls
    r3 = Conn(node.port, protocol=3)
    assert set(r3("LATENCY", "HISTOGRAM", "set")) == {b"set"}
    everything = r3("LATENCY", "HISTOGRAM")
    assert b"set" in everything and all(v[b"calls"] > 0 for v in everything.values())
    r3.close()


def test_latency_other_subcommands(ours: Conn, theirs: Conn) -> None:
    assert ours("LATENCY", "LATEST") == theirs("LATENCY", "LATEST") == []
    assert ours("LATENCY", "HISTORY", "command") == theirs("LATENCY", "HISTORY", "command") == []
    assert ours("LATENCY", "RESET") == theirs("LATENCY", "RESET") == 0
    assert ours.error("LATENCY", "GRAPH", "command") == theirs.error("LATENCY", "GRAPH", "command")
    assert ours("LATENCY", "HELP") == theirs("LATENCY", "HELP")
    assert b"latency" in ours("LATENCY", "DOCTOR").lower()
    assert ours.error("LATENCY", "NOSUCH") == theirs.error("LATENCY", "NOSUCH")


def test_latencystats_percentiles() -> None:
    buckets = [0] * 64
    buckets[12] = 90  # durations below 4.096 µs
    buckets[20] = 10  # durations below 1.048576 ms
    assert latency_percentile_usec(buckets, 100, 50) == 4.096
    assert latency_percentile_usec(buckets, 100, 90) == 4.096
    assert latency_percentile_usec(buckets, 100, 99) == 1048.576
