"""Server commands: INFO, TIME, COMMAND, SLOWLOG, MONITOR, DEBUG, SHUTDOWN, LATENCY.

Everything here reads state other parts keep (``Node.stats``, the command
table's per-command counters, ``Node.slowlog``, the keyspace); nothing here
sits on the command hot path. The one periodic piece is
:func:`sample_server_metrics`, called by the server cron, which samples the
instantaneous rates INFO reports (ops/sec, kbps) the way Redis does: a sample
every 100 ms, the average of the last 16.

Extension points for other families (replication, durability, eviction):

* :func:`register_info_section` replaces a whole INFO section's fields
  (replication: ``role``, ``slaveN:...`` in Redis's order);
* :func:`register_info_fields` adds or overrides fields of a section
  (persistence: ``rdb_last_save_time``, ``aof_enabled``, ...);
* :func:`debug_subcommand` adds a DEBUG subcommand (``RELOAD``, ``CHANGE-REPL-ID``).

Memory figures are honest about Python: there is no cheap count of live bytes
(tracemalloc would slow every allocation), so ``used_memory`` is the process's
resident set size (RSS, via psutil), like ``used_memory_rss``. Python keeps
freed memory for reuse, so it does not shrink right after keys are deleted.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import platform
import resource
import struct
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from typing import TYPE_CHECKING, Any

from kvcluster.common.resp import OK, CommandError, Raw, Status, Verbatim, string2ll
from kvcluster.node.client import Client
from kvcluster.node.commands.collection_common import compile_glob
from kvcluster.node.commands.connection import REDIS_COMPAT_VERSION
from kvcluster.node.commands.table import Command, command, container
from kvcluster.node.keyspace import Database, ZSet

if TYPE_CHECKING:
    from kvcluster.node.core import Node

log = logging.getLogger("kvcluster.node")

# Handlers that reply later (or never, like SHUTDOWN) return this; the same value as core.NO_REPLY.
_NO_REPLY = Raw(b"")

SYNTAX_ERROR = "ERR syntax error"


def _kvcluster_version() -> str:
    try:
        from importlib.metadata import version

        return version("kvcluster")
    except Exception:  # running from a source tree without metadata
        return "0.0.0"


KVCLUSTER_VERSION = _kvcluster_version()


# ---------------------------------------------------------------------------
# Sampled metrics (instantaneous rates, memory peak)
# ---------------------------------------------------------------------------

_SAMPLE_PERIOD = 0.1  # seconds between samples, as Redis's run_with_period(100)
_SAMPLES = 16  # Redis's STATS_METRIC_SAMPLES


class InstantaneousMetric:
    """Rate of a counter: the average of the last 16 per-second rates sampled."""

    __slots__ = ("index", "last_time", "last_value", "samples")

    def __init__(self) -> None:
        self.samples = [0.0] * _SAMPLES
        self.index = 0
        self.last_time = 0.0
        self.last_value = 0

    def sample(self, now: float, value: int) -> None:
        if self.last_time:
            elapsed = now - self.last_time
            if elapsed > 0:
                self.samples[self.index] = (value - self.last_value) / elapsed
                self.index = (self.index + 1) % _SAMPLES
        self.last_time = now
        self.last_value = value

    def rate(self) -> float:
        return sum(self.samples) / _SAMPLES


class ServerMetrics:
    """Per-node sampled state INFO and /metrics read: rates, RSS and its peak."""

    def __init__(self) -> None:
        self.ops = InstantaneousMetric()
        self.net_input = InstantaneousMetric()
        self.net_output = InstantaneousMetric()
        self.last_sample = 0.0
        self._process: Any = None
        self.rss_peak = 0
        self.rss_startup = self.rss()
        # Replication ids of a node nobody has attached replication to (Redis makes one at startup).
        self.replid = os.urandom(20).hex()

    def rss(self) -> int:
        """Resident set size of this process in bytes."""
        if self._process is None:
            import psutil  # imported on first use: it costs startup time

            self._process = psutil.Process()
        rss = int(self._process.memory_info().rss)
        if rss > self.rss_peak:
            self.rss_peak = rss
        return rss

    def sample(self, node: Node, now: float) -> None:
        if now - self.last_sample < _SAMPLE_PERIOD:
            return
        self.last_sample = now
        stats = node.stats
        self.ops.sample(now, stats.total_commands_processed)
        self.net_input.sample(now, stats.total_net_input_bytes)
        self.net_output.sample(now, stats.total_net_output_bytes)
        self.rss()


_METRICS: weakref.WeakKeyDictionary[Any, ServerMetrics] = weakref.WeakKeyDictionary()


def server_metrics(node: Node) -> ServerMetrics:
    metrics = _METRICS.get(node)
    if metrics is None:
        metrics = _METRICS[node] = ServerMetrics()
    return metrics


def sample_server_metrics(node: Node) -> None:
    """The server cron's hook (``hz`` times a second); samples every 100 ms."""
    server_metrics(node).sample(node, time.monotonic())


# ---------------------------------------------------------------------------
# INFO
# ---------------------------------------------------------------------------

InfoFields = list[tuple[str, Any]]
SectionProvider = Callable[["Node"], InfoFields]

# Canonical order and titles (INFO prints sections in this order whatever order they are asked in).
SECTION_TITLES = {
    "server": "Server",
    "clients": "Clients",
    "memory": "Memory",
    "persistence": "Persistence",
    "stats": "Stats",
    "replication": "Replication",
    "cpu": "CPU",
    "modules": "Modules",
    "commandstats": "Commandstats",
    "errorstats": "Errorstats",
    "latencystats": "Latencystats",
    "cluster": "Cluster",
    "keyspace": "Keyspace",
}
DEFAULT_SECTIONS = frozenset(SECTION_TITLES) - {"commandstats", "latencystats"}
ALL_SECTIONS = frozenset(SECTION_TITLES)

_SECTIONS: dict[str, SectionProvider] = {}
_EXTRA_FIELDS: dict[str, list[SectionProvider]] = {}


def register_info_section(name: str, provider: SectionProvider) -> None:
    """Make ``provider(node)`` the source of all fields of INFO section ``name``."""
    if name not in SECTION_TITLES:
        raise ValueError(f"unknown INFO section {name!r}")
    _SECTIONS[name] = provider


def register_info_fields(section: str, provider: SectionProvider) -> None:
    """Add fields to a section; a field already there keeps its place and takes the new value."""
    if section not in SECTION_TITLES:
        raise ValueError(f"unknown INFO section {section!r}")
    _EXTRA_FIELDS.setdefault(section, []).append(provider)


def _default_section(name: str) -> Callable[[SectionProvider], SectionProvider]:
    # A family imported before this module may already have registered its own provider.
    def register(fn: SectionProvider) -> SectionProvider:
        _SECTIONS.setdefault(name, fn)
        return fn

    return register


def human_bytes(n: int) -> str:
    """Redis's bytesToHuman: ``968.41K``, ``12.14M``."""
    if n < 1024:
        return f"{n}B"
    for unit, size in (("K", 1024), ("M", 1024**2), ("G", 1024**3), ("T", 1024**4), ("P", 1024**5)):
        if n < size * 1024 or unit == "P":
            return f"{n / size:.2f}{unit}"
    return f"{n}B"  # pragma: no cover


@_default_section("server")
def _server_section(node: Node) -> InfoFields:
    now = time.time()
    uptime = int(now - node.start_time)
    uname = platform.uname()
    config = node.config
    binds = config["bind"] or ["*"]
    port = config["port"]
    return [
        ("redis_version", REDIS_COMPAT_VERSION.decode()),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", hashlib.sha1(KVCLUSTER_VERSION.encode()).hexdigest()[:16]),
        ("redis_mode", "standalone"),
        ("os", f"{uname.system} {uname.release} {uname.machine}"),
        ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
        ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "epoll" if sys.platform.startswith("linux") else "kqueue"),
        ("process_id", os.getpid()),
        ("process_supervised", "no"),
        ("run_id", node.run_id),
        ("tcp_port", port),
        ("server_time_usec", time.time_ns() // 1000),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", config["hz"]),
        ("configured_hz", config["hz"]),
        ("lru_clock", int(now) & ((1 << 24) - 1)),
        ("executable", os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else sys.executable),
        ("config_file", config.config_file or ""),
        ("io_threads_active", 0),
        ("listener0", f"name=tcp,{','.join('bind=' + b for b in binds)},port={port}"),
        ("kvcluster_version", KVCLUSTER_VERSION),
        ("python_version", platform.python_version()),
        ("event_loop", getattr(node, "event_loop_name", "asyncio")),
    ]


def _buffer_peaks(node: Node) -> tuple[int, int]:
    """Largest query buffer and output buffer among connected clients now."""
    max_in = max_out = 0
    for client in node.clients.values():
        conn = client.conn
        if conn is None:
            continue
        parser = getattr(conn, "parser", None)
        if parser is not None:
            max_in = max(max_in, parser.pending())
        max_out = max(max_out, conn.output_buffer_size())
    return max_in, max_out


def _blocked_clients(node: Node) -> int:
    # The blocking-commands work keeps its own registry; count it when present.
    blocked = getattr(node, "blocked_clients", None)
    if blocked is None:
        return 0
    return blocked if isinstance(blocked, int) else len(blocked)


@_default_section("clients")
def _clients_section(node: Node) -> InfoFields:
    max_in, max_out = _buffer_peaks(node)
    normal = sum(1 for c in node.clients.values() if c.kind != "replica")
    return [
        ("connected_clients", normal),
        ("cluster_connections", 0),
        ("maxclients", node.config["maxclients"]),
        ("client_recent_max_input_buffer", max_in),
        ("client_recent_max_output_buffer", max_out),
        ("blocked_clients", _blocked_clients(node)),
        ("tracking_clients", 0),
        ("clients_in_timeout_table", sum(1 for w in node.blocking.by_client.values() if w.deadline is not None)),
        ("total_blocking_keys", node.blocking.total_keys()),
        ("total_blocking_keys_on_nokey", 0),
    ]


def _percent(part: float, whole: float) -> str:
    return f"{(part * 100 / whole) if whole else 0:.2f}%"


@_default_section("memory")
def _memory_section(node: Node) -> InfoFields:
    metrics = server_metrics(node)
    rss = metrics.rss()
    peak = metrics.rss_peak
    startup = metrics.rss_startup
    dataset = max(rss - startup, 0)
    maxmemory = int(node.config.get("maxmemory", 0) or 0)
    import psutil

    total_system = int(psutil.virtual_memory().total)
    return [
        # used_memory is RSS: see the module docstring.
        ("used_memory", rss),
        ("used_memory_human", human_bytes(rss)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", human_bytes(rss)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", human_bytes(peak)),
        ("used_memory_peak_perc", _percent(rss, peak)),
        ("used_memory_overhead", startup),
        ("used_memory_startup", startup),
        ("used_memory_dataset", dataset),
        ("used_memory_dataset_perc", _percent(dataset, rss)),
        ("total_system_memory", total_system),
        ("total_system_memory_human", human_bytes(total_system)),
        ("maxmemory", maxmemory),
        ("maxmemory_human", human_bytes(maxmemory)),
        ("maxmemory_policy", node.config.get("maxmemory-policy", "noeviction")),
        ("mem_fragmentation_ratio", "1.00"),
        ("mem_fragmentation_bytes", 0),
        ("mem_not_counted_for_evict", 0),
        ("mem_replication_backlog", 0),
        ("mem_total_replication_buffers", 0),
        ("mem_clients_slaves", 0),
        ("mem_clients_normal", 0),
        ("mem_aof_buffer", 0),
        ("mem_allocator", "pymalloc"),
        ("mem_measure", "rss"),
        ("active_defrag_running", 0),
        ("lazyfree_pending_objects", 0),
        ("lazyfreed_objects", 0),
    ]


@_default_section("persistence")
def _persistence_section(node: Node) -> InfoFields:
    # Without the durability work: nothing is saved or loaded; it fills these in.
    return [
        ("loading", 1 if node.loading else 0),
        ("async_loading", 0),
        ("current_cow_peak", 0),
        ("current_cow_size", 0),
        ("current_cow_size_age", 0),
        ("current_fork_perc", "0.00"),
        ("current_save_keys_processed", 0),
        ("current_save_keys_total", 0),
        ("rdb_changes_since_last_save", node.keyspace.dirty),
        ("rdb_bgsave_in_progress", 0),
        ("rdb_last_save_time", int(node.start_time)),
        ("rdb_last_bgsave_status", "ok"),
        ("rdb_last_bgsave_time_sec", -1),
        ("rdb_current_bgsave_time_sec", -1),
        ("rdb_saves", 0),
        ("rdb_last_cow_size", 0),
        ("rdb_last_load_keys_expired", 0),
        ("rdb_last_load_keys_loaded", 0),
        ("aof_enabled", 0),
        ("aof_rewrite_in_progress", 0),
        ("aof_rewrite_scheduled", 0),
        ("aof_last_rewrite_time_sec", -1),
        ("aof_current_rewrite_time_sec", -1),
        ("aof_last_bgrewrite_status", "ok"),
        ("aof_rewrites", 0),
        ("aof_rewrites_consecutive_failures", 0),
        ("aof_last_write_status", "ok"),
        ("aof_last_cow_size", 0),
        ("module_fork_in_progress", 0),
        ("module_fork_last_cow_size", 0),
    ]


@_default_section("stats")
def _stats_section(node: Node) -> InfoFields:
    stats = node.stats
    ks = node.keyspace
    metrics = server_metrics(node)
    return [
        ("total_connections_received", stats.total_connections_received),
        ("total_commands_processed", stats.total_commands_processed),
        ("instantaneous_ops_per_sec", int(metrics.ops.rate())),
        ("total_net_input_bytes", stats.total_net_input_bytes),
        ("total_net_output_bytes", stats.total_net_output_bytes),
        ("total_net_repl_input_bytes", 0),
        ("total_net_repl_output_bytes", 0),
        ("instantaneous_input_kbps", f"{metrics.net_input.rate() / 1024:.2f}"),
        ("instantaneous_output_kbps", f"{metrics.net_output.rate() / 1024:.2f}"),
        ("instantaneous_input_repl_kbps", "0.00"),
        ("instantaneous_output_repl_kbps", "0.00"),
        ("rejected_connections", stats.rejected_connections),
        ("sync_full", stats.sync_full),
        ("sync_partial_ok", stats.sync_partial_ok),
        ("sync_partial_err", stats.sync_partial_err),
        ("expired_keys", ks.stat_expired_keys),
        ("expired_stale_perc", f"{ks.stat_expired_stale_perc * 100:.2f}"),
        ("expired_time_cap_reached_count", 0),
        ("expire_cycle_cpu_milliseconds", ks.stat_expire_cycle_time_used_us // 1000),
        ("evicted_keys", getattr(ks, "stat_evicted_keys", 0)),
        ("evicted_clients", 0),
        ("total_eviction_exceeded_time", 0),
        ("current_eviction_exceeded_time", 0),
        ("keyspace_hits", stats.keyspace_hits),
        ("keyspace_misses", stats.keyspace_misses),
        ("pubsub_channels", len(node.channels)),
        ("pubsub_patterns", len(node.patterns)),
        ("pubsubshard_channels", len(getattr(node, "shard_channels", ()))),
        ("latest_fork_usec", 0),
        ("total_forks", 0),
        ("migrate_cached_sockets", 0),
        ("slave_expires_tracked_keys", 0),
        ("active_defrag_hits", 0),
        ("active_defrag_misses", 0),
        ("active_defrag_key_hits", 0),
        ("active_defrag_key_misses", 0),
        ("total_active_defrag_time", 0),
        ("current_active_defrag_time", 0),
        ("tracking_total_keys", 0),
        ("tracking_total_items", 0),
        ("tracking_total_prefixes", 0),
        ("unexpected_error_replies", stats.unexpected_error_replies),
        ("total_error_replies", stats.total_error_replies),
        ("dump_payload_sanitizations", 0),
        ("io_threaded_reads_processed", 0),
        ("io_threaded_writes_processed", 0),
        ("client_query_buffer_limit_disconnections", stats.client_query_buffer_limit_disconnections),
        ("client_output_buffer_limit_disconnections", stats.client_output_buffer_limit_disconnections),
        ("acl_access_denied_auth", 0),
        ("acl_access_denied_cmd", 0),
        ("acl_access_denied_key", 0),
        ("acl_access_denied_channel", 0),
    ]


@_default_section("replication")
def _replication_section(node: Node) -> InfoFields:
    # A node without replication attached is a leader with no replicas; the replication work replaces this.
    return [
        ("role", "slave" if node.keyspace.is_replica else "master"),
        ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", server_metrics(node).replid),
        ("master_replid2", "0" * 40),
        ("master_repl_offset", 0),
        ("second_repl_offset", -1),
        ("repl_backlog_active", 0),
        ("repl_backlog_size", 1048576),
        ("repl_backlog_first_byte_offset", 0),
        ("repl_backlog_histlen", 0),
    ]


def _cpu_time(seconds: float) -> str:
    return f"{seconds:.6f}"


@_default_section("cpu")
def _cpu_section(node: Node) -> InfoFields:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    fields = [
        ("used_cpu_sys", _cpu_time(me.ru_stime)),
        ("used_cpu_user", _cpu_time(me.ru_utime)),
        ("used_cpu_sys_children", _cpu_time(children.ru_stime)),
        ("used_cpu_user_children", _cpu_time(children.ru_utime)),
    ]
    rusage_thread = getattr(resource, "RUSAGE_THREAD", None)
    if rusage_thread is not None:
        # INFO runs on the event loop thread, which is the thread running every command.
        main = resource.getrusage(rusage_thread)
        fields += [
            ("used_cpu_sys_main_thread", _cpu_time(main.ru_stime)),
            ("used_cpu_user_main_thread", _cpu_time(main.ru_utime)),
        ]
    return fields


@_default_section("modules")
def _modules_section(node: Node) -> InfoFields:
    return []


def iter_commands(table: dict[str, Command]) -> Iterable[Command]:
    """Every command and subcommand of the table, containers first."""
    for cmd in table.values():
        yield cmd
        yield from cmd.subcommands.values()


@_default_section("commandstats")
def _commandstats_section(node: Node) -> InfoFields:
    fields: InfoFields = []
    for cmd in iter_commands(node.table):
        if cmd.calls or cmd.rejected_calls or cmd.failed_calls:
            per_call = cmd.usec / cmd.calls if cmd.calls else 0.0
            fields.append(
                (
                    f"cmdstat_{cmd.full_name}",
                    f"calls={cmd.calls},usec={cmd.usec},usec_per_call={per_call:.2f},"
                    f"rejected_calls={cmd.rejected_calls},failed_calls={cmd.failed_calls}",
                )
            )
    return fields


@_default_section("errorstats")
def _errorstats_section(node: Node) -> InfoFields:
    return [(f"errorstat_{prefix}", f"count={count}") for prefix, count in node.stats.error_counts.items()]


# Percentiles INFO latencystats reports (Redis's latency-tracking-info-percentiles default).
_LATENCY_PERCENTILES = (50.0, 99.0, 99.9)


def bucket_upper_usec(index: int) -> float:
    """Upper bound in microseconds of log2 latency bucket ``index`` (durations < 2**index ns)."""
    return (1 << index) / 1000


def latency_percentile_usec(buckets: list[int], total: int, percentile: float) -> float:
    """The upper bound of the bucket holding the percentile: within a factor of 2 of the truth."""
    rank = math.ceil(total * percentile / 100) or 1
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank:
            return bucket_upper_usec(index)
    return bucket_upper_usec(len(buckets) - 1)


def _format_percentile(p: float) -> str:
    return f"p{p:g}"


@_default_section("latencystats")
def _latencystats_section(node: Node) -> InfoFields:
    fields: InfoFields = []
    for cmd in iter_commands(node.table):
        if cmd.calls:
            values = ",".join(
                f"{_format_percentile(p)}={latency_percentile_usec(cmd.latency_buckets, cmd.calls, p):.3f}"
                for p in _LATENCY_PERCENTILES
            )
            fields.append((f"latency_percentiles_usec_{cmd.full_name}", values))
    return fields


@_default_section("cluster")
def _cluster_section(node: Node) -> InfoFields:
    return [("cluster_enabled", 0)]


# avg_ttl looks at up to this many keys with a TTL per database (Redis estimates it by sampling too).
_AVG_TTL_SAMPLE = 1000


def average_ttl_ms(db: Database, now_ms: int) -> int:
    ttls = [when - now_ms for when in islice(db.expires.values(), _AVG_TTL_SAMPLE) if when > now_ms]
    return sum(ttls) // len(ttls) if ttls else 0


@_default_section("keyspace")
def _keyspace_section(node: Node) -> InfoFields:
    now = node.keyspace.clock_ms()
    return [
        (f"db{db.id}", f"keys={len(db.data)},expires={len(db.expires)},avg_ttl={average_ttl_ms(db, now)}")
        for db in node.keyspace.dbs
        if db.data
    ]


def section_fields(node: Node, name: str) -> InfoFields:
    fields = _SECTIONS[name](node)
    extras = _EXTRA_FIELDS.get(name)
    if extras:
        merged = dict(fields)
        for provider in extras:
            merged.update(provider(node))
        fields = list(merged.items())
    return fields


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def info_text(node: Node, requested: Iterable[str] = ()) -> str:
    """The INFO reply for the requested section names (none: the default sections)."""
    wanted: set[str] = set()
    names = [n.lower() for n in requested] or ["default"]
    for name in names:
        if name == "default":
            wanted |= DEFAULT_SECTIONS
        elif name in ("all", "everything"):
            wanted |= ALL_SECTIONS
        else:
            wanted.add(name)
    parts: list[str] = []
    for name, title in SECTION_TITLES.items():
        if name not in wanted:
            continue
        if parts:
            parts.append("\r\n")
        parts.append(f"# {title}\r\n")
        for field, value in section_fields(node, name):
            parts.append(f"{field}:{_format_value(value)}\r\n")
    return "".join(parts)


def info_dict(node: Node, section: str) -> dict[str, str]:
    """One section as field -> text, for code that reads INFO in-process (admin, tests)."""
    return {field: _format_value(value) for field, value in section_fields(node, section)}


@command(
    "info",
    -1,
    "loading stale",
    group="server",
    summary="Returns information and statistics about the server.",
    complexity="O(1)",
)
def info(client: Client, args: list[bytes]) -> Any:
    names = [a.decode("utf-8", "replace") for a in args[1:]]
    return Verbatim(info_text(client.node, names).encode())


@command(
    "time",
    1,
    "loading stale fast",
    group="server",
    summary="Returns the server time.",
    since="2.6.0",
    complexity="O(1)",
)
def time_(client: Client, args: list[bytes]) -> Any:
    now_us = time.time_ns() // 1000
    return [b"%d" % (now_us // 1_000_000), b"%d" % (now_us % 1_000_000)]


# ---------------------------------------------------------------------------
# COMMAND: generated from the command table
# ---------------------------------------------------------------------------

# Redis's order of flags in COMMAND replies; may_replicate and sentinel are hidden there too.
_FLAG_ORDER = (
    "write",
    "readonly",
    "denyoom",
    "module",
    "admin",
    "pubsub",
    "noscript",
    "blocking",
    "loading",
    "stale",
    "skip_monitor",
    "skip_slowlog",
    "asking",
    "fast",
    "no_auth",
    "no_mandatory_keys",
    "no_async_loading",
    "no_multi",
    "movablekeys",
    "allow_busy",
)
_HIDDEN_FLAGS = frozenset(["may_replicate", "no_propagate", "sentinel", "only_sentinel", "protected"])

# ACL categories in Redis's order (ACLCommandCategories).
ACL_CATEGORIES = (
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
)

# Table group names as COMMAND DOCS prints them (Redis's spelling).
_GROUP_NAMES = {
    "zset": "sorted-set",
    "sorted_set": "sorted-set",
    "sortedset": "sorted-set",
    "keys": "generic",
    "keyspace": "generic",
    "transaction": "transactions",
    "script": "scripting",
    "databases": "server",
}

# The category a command's group implies (Redis's command JSON files agree for almost every command).
_GROUP_CATEGORY = {
    "generic": "keyspace",
    "string": "string",
    "list": "list",
    "set": "set",
    "sorted-set": "sortedset",
    "hash": "hash",
    "bitmap": "bitmap",
    "hyperloglog": "hyperloglog",
    "geo": "geo",
    "stream": "stream",
    "connection": "connection",
    "transactions": "transaction",
    "scripting": "scripting",
}

# Where Redis's explicit categories differ from what group and flags imply: (add, remove).
# Found by comparing the rules above with redis-server 7's COMMAND over its whole table.
_CATEGORY_EXCEPTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dbsize": (("keyspace",), ()),
    "flushall": (("keyspace", "dangerous"), ()),
    "flushdb": (("keyspace", "dangerous"), ()),
    "swapdb": (("keyspace", "dangerous"), ()),
    "restore-asking": (("keyspace", "dangerous"), ()),
    "keys": (("dangerous",), ()),
    "migrate": (("dangerous",), ()),
    "restore": (("dangerous",), ()),
    "info": (("dangerous",), ()),
    "role": (("admin", "dangerous"), ()),
    "lastsave": (("admin", "dangerous"), ()),
    "sort": (("set", "sortedset", "list", "dangerous"), ("keyspace",)),
    "sort_ro": (("set", "sortedset", "list", "dangerous"), ("keyspace",)),
    "wait": (("connection",), ("keyspace",)),
    "waitaof": (("connection",), ("keyspace",)),
    "readonly": (("connection",), ()),
    "readwrite": (("connection",), ()),
    "asking": (("connection",), ()),
    "command": (("connection",), ()),
    "command|*": (("connection",), ()),
}


def group_name(cmd: Command) -> str:
    return _GROUP_NAMES.get(cmd.group, cmd.group)


def command_flags(cmd: Command) -> list[str]:
    flags = set(cmd.flags) - _HIDDEN_FLAGS
    if cmd.get_keys is not None:
        flags.add("movablekeys")
    ordered = [f for f in _FLAG_ORDER if f in flags]
    return ordered + sorted(flags.difference(_FLAG_ORDER))


def acl_categories(cmd: Command) -> list[str]:
    """ACL categories as Redis derives them: the group's, then implied by flags, plus known exceptions."""
    explicit = getattr(cmd, "acl_categories", None)
    if explicit:
        cats = {c.lstrip("@").lower() for c in explicit}
    else:
        cats = set()
        if cmd.handler is not None:  # containers only get @slow
            implied = _GROUP_CATEGORY.get(group_name(cmd))
            if implied:
                cats.add(implied)
        exception = _CATEGORY_EXCEPTIONS.get(cmd.full_name)
        if exception is None and cmd.parent is not None:
            exception = _CATEGORY_EXCEPTIONS.get(f"{cmd.parent.name}|*")
        if exception is not None:
            cats.update(exception[0])
            cats.difference_update(exception[1])
    flags = cmd.flags
    if "write" in flags:
        cats.add("write")
    if "readonly" in flags and "scripting" not in cats:
        cats.add("read")
    if "admin" in flags:
        cats.update(("admin", "dangerous"))
    if "pubsub" in flags:
        cats.add("pubsub")
    if "fast" in flags:
        cats.add("fast")
    if "blocking" in flags:
        cats.add("blocking")
    if "fast" not in cats:
        cats.add("slow")
    return [c for c in ACL_CATEGORIES if c in cats]


def key_spec_flags(cmd: Command) -> list[str]:
    """Coarse key-spec flags: read-only commands read (RO access), others may write (RW update)."""
    if cmd.is_readonly and not cmd.is_write:
        return ["RO", "access"]
    if cmd.is_write:
        return ["RW", "update"]
    return ["RW", "access"]


def key_specs(cmd: Command) -> list[dict[bytes, Any]]:
    if cmd.get_keys is not None and cmd.first_key <= 0:
        unknown: dict[bytes, Any] = {b"type": b"unknown", b"spec": {}}
        return [{b"flags": key_spec_flags(cmd), b"begin_search": unknown, b"find_keys": dict(unknown)}]
    if cmd.first_key <= 0:
        return []
    last = cmd.last_key - cmd.first_key if cmd.last_key >= 0 else cmd.last_key
    return [
        {
            b"flags": key_spec_flags(cmd),
            b"begin_search": {b"type": b"index", b"spec": {b"index": cmd.first_key}},
            b"find_keys": {
                b"type": b"range",
                b"spec": {b"lastkey": last, b"keystep": cmd.key_step or 1, b"limit": 0},
            },
        }
    ]


def _status_set(items: Iterable[str], resp: int) -> Any:
    """An ordered set of simple strings: an array in RESP2, a RESP3 set (``~``) keeping our order."""
    statuses = [Status(s.encode()) for s in items]
    if resp == 2:
        return statuses
    return Raw(b"~%d\r\n" % len(statuses) + b"".join(b"+%b\r\n" % s for s in statuses))


def _key_specs_reply(cmd: Command, resp: int) -> list[Any]:
    specs = key_specs(cmd)
    for spec in specs:
        spec[b"flags"] = _status_set(spec[b"flags"], resp)
    return specs


def command_info(cmd: Command, resp: int) -> list[Any]:
    """One COMMAND / COMMAND INFO entry in Redis 7's ten-field format."""
    return [
        cmd.full_name.encode(),
        cmd.arity,
        _status_set(command_flags(cmd), resp),
        max(cmd.first_key, 0),
        cmd.last_key if cmd.first_key > 0 else 0,
        cmd.key_step if cmd.first_key > 0 else 0,
        _status_set(("@" + c for c in acl_categories(cmd)), resp),
        [],  # tips: none recorded in our table
        _key_specs_reply(cmd, resp),
        [command_info(sub, resp) for sub in cmd.subcommands.values()],
    ]


def command_docs(cmd: Command) -> dict[bytes, Any]:
    docs: dict[bytes, Any] = {
        b"summary": cmd.summary.encode(),
        b"since": cmd.since.encode(),
        b"group": group_name(cmd).encode(),
        b"complexity": (cmd.complexity or ("Depends on subcommand." if cmd.subcommands else "")).encode(),
    }
    if cmd.subcommands:
        docs[b"subcommands"] = {sub.full_name.encode(): command_docs(sub) for sub in cmd.subcommands.values()}
    return docs


def find_command(node: Node, name: bytes) -> Command | None:
    """A command by full name as COMMAND INFO/DOCS take it: ``get`` or ``config|get``."""
    container_name, _, sub_name = name.decode("utf-8", "replace").lower().partition("|")
    cmd = node.table.get(container_name)
    if cmd is None or not sub_name:
        return cmd
    return cmd.subcommands.get(sub_name)


_full_table_cache: dict[tuple[int, int], Raw] = {}


container(
    "command",
    -1,
    "loading stale",
    group="server",
    summary="Returns detailed information about all commands.",
)


def _command_no_args(client: Client, args: list[bytes]) -> Any:
    table = client.node.table
    # The table never changes after startup, so the encoded full reply is cached per protocol.
    key = (client.resp, len(table))
    cached = _full_table_cache.get(key)
    if cached is None:
        encode = client.encode
        entries = [encode(command_info(cmd, client.resp)) for cmd in table.values()]
        cached = _full_table_cache[key] = Raw(b"*%d\r\n" % len(entries) + b"".join(entries))
    return cached


def _install_command_no_args() -> None:
    # COMMAND with no arguments answers the whole table; the gate dispatches a container
    # only with a subcommand, so the container itself gets a handler for the bare form.
    from kvcluster.node.commands.table import REGISTRY

    REGISTRY["command"].handler = _command_no_args


@command(
    "command|count",
    2,
    "loading stale",
    group="server",
    summary="Returns a count of commands.",
    since="2.8.13",
    complexity="O(1)",
)
def command_count(client: Client, args: list[bytes]) -> Any:
    return len(client.node.table)


@command(
    "command|info",
    -2,
    "loading stale",
    group="server",
    summary="Returns information about one, multiple or all commands.",
    since="2.8.13",
    complexity="O(N) where N is the number of commands to look up",
)
def command_info_cmd(client: Client, args: list[bytes]) -> Any:
    node = client.node
    if len(args) == 2:
        return [command_info(cmd, client.resp) for cmd in node.table.values()]
    out: list[Any] = []
    for name in args[2:]:
        cmd = find_command(node, name)
        out.append(None if cmd is None else command_info(cmd, client.resp))
    return out


@command(
    "command|docs",
    -2,
    "loading stale",
    group="server",
    summary="Returns documentary information about one, multiple or all commands.",
    since="7.0.0",
    complexity="O(N) where N is the number of commands to look up",
)
def command_docs_cmd(client: Client, args: list[bytes]) -> Any:
    node = client.node
    if len(args) == 2:
        return {cmd.name.encode(): command_docs(cmd) for cmd in node.table.values()}
    out: dict[bytes, Any] = {}
    for name in args[2:]:
        cmd = find_command(node, name)
        if cmd is not None:
            out[cmd.full_name.encode()] = command_docs(cmd)
    return out


@command(
    "command|list",
    -2,
    "loading stale",
    group="server",
    summary="Returns a list of command names.",
    since="7.0.0",
    complexity="O(N) where N is the total number of Redis commands",
)
def command_list(client: Client, args: list[bytes]) -> Any:
    names = iter_commands(client.node.table)
    if len(args) == 2:
        return [cmd.full_name.encode() for cmd in names]
    if len(args) != 5 or args[2].upper() != b"FILTERBY":
        raise CommandError(SYNTAX_ERROR)
    kind, value = args[3].upper(), args[4]
    if kind == b"MODULE":
        return []  # no modules
    if kind == b"ACLCAT":
        category = value.decode("utf-8", "replace").lower()
        return [cmd.full_name.encode() for cmd in names if category in acl_categories(cmd)]
    if kind == b"PATTERN":
        match = compile_glob(value.lower())
        return [cmd.full_name.encode() for cmd in names if match(cmd.full_name.encode())]
    raise CommandError(SYNTAX_ERROR)


def _target_command(node: Node, args: list[bytes]) -> tuple[Command, list[bytes]]:
    """The command ``args`` (a full command line) would run, checked as COMMAND GETKEYS does."""
    cmd = node.lookup_command(args[0])
    if cmd is not None and cmd.subcommands:
        cmd = cmd.subcommands.get(args[1].decode("utf-8", "replace").lower()) if len(args) > 1 else None
    if cmd is None:
        raise CommandError("ERR Invalid command specified")
    if cmd.first_key <= 0 and cmd.get_keys is None:
        raise CommandError("ERR The command has no key arguments")
    n = len(args)
    if (cmd.arity > 0 and n != cmd.arity) or n < -cmd.arity:
        raise CommandError("ERR Invalid number of arguments specified for command")
    return cmd, args


def _target_keys(node: Node, args: list[bytes]) -> tuple[Command, list[bytes]]:
    cmd, target = _target_command(node, args)
    try:
        positions = cmd.key_positions(target)
    except (IndexError, ValueError, CommandError):
        positions = []
    if not positions and "no_mandatory_keys" not in cmd.flags:
        raise CommandError("ERR Invalid arguments specified for command")
    return cmd, [target[i] for i in positions]


@command(
    "command|getkeys",
    -4,
    "loading stale",
    group="server",
    summary="Extracts the key names from an arbitrary command.",
    since="2.8.13",
    complexity="O(N) where N is the number of arguments to the command",
)
def command_getkeys(client: Client, args: list[bytes]) -> Any:
    return _target_keys(client.node, args[2:])[1]


@command(
    "command|getkeysandflags",
    -4,
    "loading stale",
    group="server",
    summary="Extracts the key names and access flags for an arbitrary command.",
    since="7.0.0",
    complexity="O(N) where N is the number of arguments to the command",
)
def command_getkeysandflags(client: Client, args: list[bytes]) -> Any:
    cmd, keys = _target_keys(client.node, args[2:])
    flags = key_spec_flags(cmd)
    return [[key, _status_set(flags, client.resp)] for key in keys]


_COMMAND_HELP = [
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
]


def _help_reply(lines: list[str]) -> list[Any]:
    return [Status(line.encode()) for line in lines]


@command(
    "command|help",
    2,
    "loading stale",
    group="server",
    summary="Returns helpful text about the different subcommands.",
    since="5.0.0",
    complexity="O(1)",
)
def command_help(client: Client, args: list[bytes]) -> Any:
    return _help_reply(_COMMAND_HELP)


_install_command_no_args()


# ---------------------------------------------------------------------------
# SLOWLOG
# ---------------------------------------------------------------------------

container("slowlog", -2, group="server", summary="A container for slow log commands.")


@command(
    "slowlog|get",
    -2,
    "admin loading stale",
    group="server",
    summary="Returns the slow log's entries.",
    since="2.2.12",
    complexity="O(N) where N is the number of entries returned",
)
def slowlog_get(client: Client, args: list[bytes]) -> Any:
    if len(args) > 3:
        raise CommandError("ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.")
    count = 10
    if len(args) == 3:
        parsed = string2ll(args[2])  # like Redis: no spaces, "+", "_" or values past LLONG_MAX
        if parsed is None or parsed < -1:
            raise CommandError("ERR count should be greater than or equal to -1")
        count = parsed
    entries = client.node.slowlog
    if count == -1:
        count = len(entries)
    return [
        [e.id, e.timestamp, e.duration_us, list(e.args), e.client_addr, e.client_name] for e in islice(entries, count)
    ]


@command(
    "slowlog|len",
    2,
    "admin loading stale",
    group="server",
    summary="Returns the number of entries in the slow log.",
    since="2.2.12",
    complexity="O(1)",
)
def slowlog_len(client: Client, args: list[bytes]) -> Any:
    return len(client.node.slowlog)


@command(
    "slowlog|reset",
    2,
    "admin loading stale",
    group="server",
    summary="Clears all entries from the slow log.",
    since="2.2.12",
    complexity="O(N) where N is the number of entries in the slowlog",
)
def slowlog_reset(client: Client, args: list[bytes]) -> Any:
    client.node.slowlog.clear()
    return OK


_SLOWLOG_HELP = [
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
]


@command(
    "slowlog|help",
    2,
    "loading stale",
    group="server",
    summary="Show helpful text about the different subcommands.",
    since="6.2.0",
    complexity="O(1)",
)
def slowlog_help(client: Client, args: list[bytes]) -> Any:
    return _help_reply(_SLOWLOG_HELP)


# ---------------------------------------------------------------------------
# MONITOR
# ---------------------------------------------------------------------------


@command(
    "monitor",
    1,
    "admin noscript loading stale",
    group="server",
    summary="Listens for all requests received by the server in real-time.",
    complexity="",
)
def monitor(client: Client, args: list[bytes]) -> Any:
    node = client.node
    if getattr(node, "in_exec", False):
        raise CommandError("ERR MONITOR isn't allowed for DENY BLOCKING client")
    # Like Redis, MONITOR from a replica link or a client already monitoring is ignored without a reply.
    if client.kind == "replica" or client in node.monitors:
        return _NO_REPLY
    node.monitors.add(client)
    return OK


# ---------------------------------------------------------------------------
# DEBUG
# ---------------------------------------------------------------------------
#
# DEBUG DIGEST follows Redis's algorithm (debug.c), so a dataset without TTLs has
# the digest redis-server 7.0 gives it (checked in tests against golden values and
# a live server). Over SHA1: mix(d, x) = sha1(d xor sha1(x)), xor(d, x) = d xor
# sha1(x). Per key: d = mix(0, key), mix in the type and the value (ordered parts
# mixed, unordered ones xored, so insertion order does not matter), then
# final = xor(final, d); the dataset digest also mixes in each non-empty database's
# number. Redis only marks that a key has a TTL; we also mix in the
# absolute expiry time (ms), so nodes whose TTLs differ get different digests.
# Keys are digested as stored, logically expired or not, like Redis.

_TYPE_CODES: dict[type, int] = {bytes: 0, deque: 1, set: 2, ZSet: 3, dict: 4}
_EXPIRE_MARK = int.from_bytes(hashlib.sha1(b"!!expire!!").digest(), "big")


def _sha1_int(data: bytes) -> int:
    return int.from_bytes(hashlib.sha1(data).digest(), "big")


def _mix(digest: int, data: bytes) -> int:
    return _sha1_int((digest ^ _sha1_int(data)).to_bytes(20, "big"))


def _sha1_of_digest(digest: int) -> int:
    # Redis's xorDigest(d, other_digest, 20) hashes the other digest before xoring it in.
    return _sha1_int(digest.to_bytes(20, "big"))


def format_digest_score(score: float) -> bytes:
    """Scores as Redis's digest prints them (%.17g; inf spelled out)."""
    if math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    if score == 0:
        return b"0"  # Redis never stores -0 as a score
    return b"%.17g" % score


def value_digest(value: Any, expire_ms: int | None, digest: int = 0) -> int:
    """Redis's xorObjectDigest: mix a value's type, contents and TTL into ``digest`` (160-bit int)."""
    code = _TYPE_CODES.get(value.__class__)
    if code is None:
        raise CommandError(f"ERR DEBUG DIGEST: unsupported value type {type(value).__name__}")
    digest = _mix(digest, struct.pack(">I", code))
    if code == 0:
        digest = _mix(digest, value)
    elif code == 1:
        for element in value:
            digest = _mix(digest, element)
    elif code == 2:
        for member in value:
            digest ^= _sha1_int(member)
    elif code == 3:
        for member, score in value.dict.items():
            digest ^= _sha1_of_digest(_mix(_mix(0, member), format_digest_score(score)))
    else:
        for field, field_value in value.items():
            digest ^= _sha1_of_digest(_mix(_mix(0, field), field_value))
    if expire_ms is not None:
        digest = _mix(digest ^ _EXPIRE_MARK, b"%d" % expire_ms)
    return digest


def dataset_digest(node: Node) -> str:
    """DEBUG DIGEST: 40 hex digits, all zeros for an empty dataset."""
    final = 0
    for db in node.keyspace.dbs:
        if not db.data:
            continue
        final = _mix(final, struct.pack(">I", db.id))
        expires = db.expires
        for key, value in db.data.items():
            final ^= _sha1_of_digest(value_digest(value, expires.get(key), _mix(0, key)))
    return f"{final:040x}"


DebugHandler = Callable[[Client, list[bytes]], Any]
# name (upper case) -> (handler, minimum args counting DEBUG and the subcommand, maximum or -1, help lines)
DEBUG_SUBCOMMANDS: dict[str, tuple[DebugHandler, int, int, list[str]]] = {}


def debug_subcommand(
    name: str, min_args: int, max_args: int = -1, help_lines: tuple[str, ...] = ()
) -> Callable[[DebugHandler], DebugHandler]:
    """Register ``DEBUG <name>``; argument counts include ``DEBUG`` and the subcommand."""

    def register(fn: DebugHandler) -> DebugHandler:
        DEBUG_SUBCOMMANDS[name.upper()] = (fn, min_args, max_args, list(help_lines))
        return fn

    return register


@command(
    "debug",
    -2,
    "admin noscript loading stale",
    group="server",
    summary="A container for debugging commands.",
    complexity="Depends on subcommand.",
)
def debug(client: Client, args: list[bytes]) -> Any:
    name = args[1].decode("utf-8", "replace")
    entry = DEBUG_SUBCOMMANDS.get(name.upper())
    if entry is None or len(args) < entry[1] or (entry[2] >= 0 and len(args) > entry[2]):
        raise CommandError(f"ERR unknown subcommand or wrong number of arguments for '{name[:128]}'. Try DEBUG HELP.")
    return entry[0](client, args)


@debug_subcommand("help", 2, 2, ("HELP", "    Prints this help."))
def _debug_help(client: Client, args: list[bytes]) -> Any:
    lines = ["DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"]
    for name in sorted(DEBUG_SUBCOMMANDS):
        if name != "HELP":
            lines.extend(DEBUG_SUBCOMMANDS[name][3])
    lines.extend(DEBUG_SUBCOMMANDS["HELP"][3])
    return _help_reply(lines)


@debug_subcommand("digest", 2, 2, ("DIGEST", "    Output a hex signature representing the current DB content."))
def _debug_digest(client: Client, args: list[bytes]) -> Any:
    return Status(dataset_digest(client.node).encode())


@debug_subcommand(
    "digest-value",
    2,
    -1,
    ("DIGEST-VALUE <key> [<key> ...]", "    Output a hex signature of the values of all the specified keys."),
)
def _debug_digest_value(client: Client, args: list[bytes]) -> Any:
    db = client.db
    out: list[Any] = []
    for key in args[2:]:
        value = db.data.get(key)  # no lookup(): a debug command sees logically expired keys too
        digest = 0 if value is None else value_digest(value, db.expires.get(key))
        out.append(Status(f"{digest:040x}".encode()))
    return out


@debug_subcommand("sleep", 3, 3, ("SLEEP <seconds>", "    Stop the server for <seconds>. Decimals allowed."))
def _debug_sleep(client: Client, args: list[bytes]) -> Any:
    try:
        seconds = float(args[2])
    except ValueError:
        raise CommandError("ERR value is not a valid float") from None
    if math.isnan(seconds):
        raise CommandError("ERR value is not a valid float")
    if seconds > 0:
        # Blocking the event loop is the point: it is how tests simulate a stalled server.
        time.sleep(seconds)
    return OK


@debug_subcommand(
    "set-active-expire",
    3,
    3,
    (
        "SET-ACTIVE-EXPIRE <0|1>",
        "    Setting it to 0 disables expiring keys in background when they are not",
        "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
        "    default.",
    ),
)
def _debug_set_active_expire(client: Client, args: list[bytes]) -> Any:
    try:
        enabled = int(args[2])
    except ValueError:
        raise CommandError("ERR value is not an integer or out of range") from None
    client.node.keyspace.active_expire_enabled = bool(enabled)
    return OK


@debug_subcommand(
    "error",
    3,
    3,
    (
        "ERROR <string>",
        "    Return a Redis protocol error with <string> as message. Useful for clients",
        "    unit tests to simulate Redis errors.",
    ),
)
def _debug_error(client: Client, args: list[bytes]) -> Any:
    message = args[2].decode("utf-8", "replace")
    raise CommandError(message.removeprefix("-") if message.startswith("-") else f"ERR {message}")


@debug_subcommand("log", 3, 3, ("LOG <message>", "    Write <message> to the server log."))
def _debug_log(client: Client, args: list[bytes]) -> Any:
    log.warning("DEBUG LOG: %s", args[2].decode("utf-8", "replace"))
    return OK


# ---------------------------------------------------------------------------
# SHUTDOWN
# ---------------------------------------------------------------------------


@command(
    "shutdown",
    -1,
    "admin noscript loading stale no_multi allow_busy",
    group="server",
    summary="Synchronously saves the database(s) to disk and shuts down the Redis server.",
    complexity="O(N) when saving, where N is the total number of keys in all databases when saving data, "
    "otherwise O(1)",
)
def shutdown(client: Client, args: list[bytes]) -> Any:
    if client.multi is not None:
        # no_multi commands reach their handler inside MULTI; Redis refuses them there.
        client.multi_error = True
        raise CommandError("ERR Command not allowed inside a transaction")
    save: bool | None = None
    abort = False
    force = False
    for arg in args[1:]:
        option = arg.upper()
        if option == b"NOSAVE" and save is None:
            save = False
        elif option == b"SAVE" and save is None:
            save = True
        elif option == b"ABORT":
            abort = True
        elif option in (b"NOW", b"FORCE"):
            force = force or option == b"FORCE"  # NOW: nothing waits for replicas yet
        else:
            raise CommandError(SYNTAX_ERROR)
    if abort:
        if len(args) != 2:
            raise CommandError(SYNTAX_ERROR)
        raise CommandError("ERR No shutdown in progress.")
    log.warning("User requested shutdown...")
    persistence = client.node.persistence
    if persistence is not None and not persistence.prepare_shutdown(save, force):  # the final save and AOF sync
        raise CommandError("ERR Errors trying to SHUTDOWN. Check logs.")
    # No reply: the connection closes and the process exits, like Redis.
    client.close_after_reply = True
    client.node.request_shutdown(save)
    return _NO_REPLY


# ---------------------------------------------------------------------------
# LATENCY: HISTOGRAM from the per-command log2 histograms; no event monitor
# ---------------------------------------------------------------------------

container("latency", -2, group="server", summary="A container for latency diagnostics commands.")

_LATENCY_DISABLED = (
    "kvcluster does not implement the latency monitor (latency-monitor-threshold): LATENCY LATEST and "
    "HISTORY are always empty. Per-command latency distributions are available from LATENCY HISTOGRAM, "
    "INFO latencystats and the kvcluster_command_duration_seconds histogram on the admin port's /metrics.\n"
)


@command(
    "latency|latest",
    2,
    "admin noscript loading stale",
    group="server",
    summary="Returns the latest latency samples for all events.",
    since="2.8.13",
    complexity="O(1)",
)
def latency_latest(client: Client, args: list[bytes]) -> Any:
    return []


@command(
    "latency|history",
    3,
    "admin noscript loading stale",
    group="server",
    summary="Returns timestamp-latency samples for an event.",
    since="2.8.13",
    complexity="O(1)",
)
def latency_history(client: Client, args: list[bytes]) -> Any:
    return []


@command(
    "latency|reset",
    -2,
    "admin noscript loading stale",
    group="server",
    summary="Resets the latency data for one or more events.",
    since="2.8.13",
    complexity="O(1)",
)
def latency_reset(client: Client, args: list[bytes]) -> Any:
    return 0


@command(
    "latency|doctor",
    2,
    "admin noscript loading stale",
    group="server",
    summary="Returns a human-readable latency analysis report.",
    since="2.8.13",
    complexity="O(1)",
)
def latency_doctor(client: Client, args: list[bytes]) -> Any:
    return Verbatim(_LATENCY_DISABLED.encode())


@command(
    "latency|graph",
    3,
    "admin noscript loading stale",
    group="server",
    summary="Returns a latency graph for an event.",
    since="2.8.13",
    complexity="O(1)",
)
def latency_graph(client: Client, args: list[bytes]) -> Any:
    raise CommandError(f"ERR No samples available for event '{args[2].decode('utf-8', 'replace')}'")


def latency_histogram_usec(buckets: list[int]) -> dict[int, int]:
    """Cumulative counts keyed by bucket upper bound in whole microseconds (Redis's histogram_usec)."""
    out: dict[int, int] = {}
    total = 0
    last = max((i for i, n in enumerate(buckets) if n), default=-1)
    for index in range(last + 1):
        total += buckets[index]
        if total:
            out[max(1, round(bucket_upper_usec(index)))] = total
    return out


@command(
    "latency|histogram",
    -2,
    "admin noscript loading stale",
    group="server",
    summary="Returns the cumulative distribution of latencies of a subset or all commands.",
    since="7.0.0",
    complexity="O(N) where N is the number of commands with latency information being retrieved.",
)
def latency_histogram(client: Client, args: list[bytes]) -> Any:
    node = client.node
    if len(args) == 2:
        commands: list[Command] = list(iter_commands(node.table))
    else:
        commands = []
        for name in args[2:]:
            cmd = find_command(node, name)
            if cmd is not None:
                commands.extend([cmd, *cmd.subcommands.values()])
    return {
        cmd.full_name.encode(): {b"calls": cmd.calls, b"histogram_usec": latency_histogram_usec(cmd.latency_buckets)}
        for cmd in commands
        if cmd.calls
    }


_LATENCY_HELP = [
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
]


@command(
    "latency|help",
    2,
    "loading stale",
    group="server",
    summary="Returns helpful text about the different subcommands.",
    since="2.8.13",
    complexity="O(1)",
)
def latency_help(client: Client, args: list[bytes]) -> Any:
    return _help_reply(_LATENCY_HELP)


__all__ = [
    "ACL_CATEGORIES",
    "DEBUG_SUBCOMMANDS",
    "ServerMetrics",
    "acl_categories",
    "command_flags",
    "command_info",
    "dataset_digest",
    "debug_subcommand",
    "info_dict",
    "info_text",
    "register_info_fields",
    "register_info_section",
    "sample_server_metrics",
    "server_metrics",
    "value_digest",
]
