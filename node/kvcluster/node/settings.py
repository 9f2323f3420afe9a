"""The node's settings: names, types and defaults follow redis.conf.

This list is the single source of truth for ``kvcluster node`` flags,
``KVCLUSTER_*`` environment variables, YAML and redis.conf files, CONFIG
GET/SET and the configuration reference in the README.
"""

from __future__ import annotations

from kvcluster.common.config import Config, ConfigError, OnlyValue, Refuse, Setting, format_memory, parse_memory

GB = 1024**3
MB = 1024**2

NODE_SETTINGS: list[Setting] = [
    # -- network -------------------------------------------------------------
    Setting("port", "int", 6379, "TCP port for clients", mutable=False, minimum=0, maximum=65535),
    Setting("bind", "args", ["127.0.0.1"], "Addresses to listen on", mutable=False),
    Setting("tcp-backlog", "int", 511, "listen() backlog", mutable=False, minimum=0),
    Setting("tcp-keepalive", "int", 300, "TCP keepalive interval in seconds (0 = off)", minimum=0),
    Setting("timeout", "int", 0, "Close a client after this many idle seconds (0 = never)", minimum=0),
    Setting("maxclients", "int", 10000, "Maximum number of connected clients", minimum=1),
    Setting("admin-port", "int", 0, "HTTP port for /metrics, /healthz, /readyz (0 = off, -1 = port+10000)"),
    Setting("admin-bind", "str", "127.0.0.1", "Address of the HTTP admin port", mutable=False),
    # -- limits ----------------------------------------------------------------
    Setting("proto-max-bulk-len", "memory", 512 * MB, "Largest bulk string a client may send", minimum=1024 * 1024),
    Setting(
        "proto-max-multibulk-len",
        "int",
        2**31 - 1,  # Redis's fixed limit (INT_MAX)
        "Largest number of arguments in one request (kvcluster addition)",
        minimum=1,
        maximum=2**31 - 1,
    ),
    Setting("client-query-buffer-limit", "memory", GB, "Largest query buffer of one client", minimum=1024 * 1024),
    Setting(
        "client-output-buffer-limit",
        "args",
        # Normalized as CONFIG GET shows it in Redis 7 ("slave" class, bytes).
        ["normal", "0", "0", "0", "slave", "268435456", "67108864", "60", "pubsub", "33554432", "8388608", "60"],
        "Output buffer limits per class: <class> <hard> <soft> <soft-seconds> ...; "
        "each line or CONFIG SET changes only the classes it names",
        validate=lambda words: _obuf_check(words),
        merge=lambda old, new: _obuf_words({**_obuf_classes(old), **_obuf_classes(new)}),
        rewrite_lines=lambda words: _obuf_rewrite_lines(words),
    ),
    Setting("databases", "int", 16, "Number of databases", mutable=False, minimum=1, maximum=1 << 20),
    # -- security ---------------------------------------------------------------
    Setting("requirepass", "str", "", "Password clients must AUTH with (empty = none)"),
    # -- persistence (kvcluster.node.persistence; docs/operations.md "Persistence") ------
    Setting("dir", "str", ".", "Working directory for data files"),
    Setting("dbfilename", "str", "dump.rdb", "Snapshot file name", validate=lambda v: _plain_name(v, "dbfilename")),
    Setting(
        "save",
        "args",
        ["3600", "1", "300", "100", "60", "10000"],
        'Snapshot rules: <seconds> <changes> ... (BGSAVE after <seconds> if <changes> writes); "" for none',
        repeatable=True,
        validate=lambda words: _save_check(words),
        rewrite_lines=lambda words: [words[i : i + 2] for i in range(0, len(words), 2)],
    ),
    Setting(
        "stop-writes-on-bgsave-error",
        "bool",
        True,
        "Refuse writes (-MISCONF) while the last background save failed and save rules are set",
    ),
    Setting("appendonly", "bool", False, "Append-only file persistence (the AOF): every write logged to disk"),
    Setting(
        "appendfsync",
        "enum",
        "everysec",
        "AOF fsync policy: always (before each reply), everysec (once a second), no (the OS decides)",
        choices=("always", "everysec", "no"),
    ),
    Setting(
        "appendfilename",
        "str",
        "appendonly.aof",
        "Base name of the AOF files",
        mutable=False,
        validate=lambda v: _plain_name(v, "appendfilename"),
    ),
    Setting(
        "appenddirname",
        "str",
        "appendonlydir",
        "Directory (in dir) of the AOF files and their manifest",
        mutable=False,
        validate=lambda v: _plain_name(v, "appenddirname"),
    ),
    Setting(
        "auto-aof-rewrite-percentage",
        "int",
        100,
        "Rewrite the AOF when it grew by this percentage since the last rewrite (0 = never)",
        minimum=0,
    ),
    Setting("auto-aof-rewrite-min-size", "memory", 64 * MB, "Never rewrite automatically below this size", minimum=0),
    Setting(
        "aof-load-truncated",
        "bool",
        True,
        "A torn last record of the AOF is truncated with a warning (no: start-up fails)",
    ),
    Setting("aof-use-rdb-preamble", "bool", True, "AOF base files are RDB snapshots (no: commands)"),
    Setting(
        "key-load-delay",
        "int",
        0,
        "Test aid: microseconds of pause per key loaded at start-up (0 = none)",
        minimum=0,
    ),
    # -- replication ------------------------------------------------------------
    Setting(
        "replicaof",
        "args",
        [],
        "Follow this leader: <host> <port> (empty: be a leader); at run time use REPLICAOF",
        mutable=False,
        validate=lambda words: _replicaof_check(words),
    ),
    Setting("masterauth", "str", "", "Password to AUTH with on the leader"),
    Setting("masteruser", "str", "", "User name to AUTH with on the leader (with masterauth)"),
    Setting("repl-backlog-size", "memory", MB, "Replication backlog size", minimum=16 * 1024),
    Setting("repl-backlog-ttl", "int", 3600, "Free the backlog after this many seconds without replicas", minimum=0),
    Setting("repl-timeout", "int", 60, "Seconds without data or pings before a replication link is dropped", minimum=1),
    Setting(
        "repl-fork-sync-min-keys",
        "int",
        50_000,
        "Full syncs of datasets with at least this many keys fork a child to stream the snapshot "
        "(below it: a point-in-time copy in-process) (kvcluster addition)",
        minimum=0,
    ),
    Setting("repl-ping-replica-period", "int", 10, "Seconds between the leader's PINGs to its replicas", minimum=1),
    Setting("replica-priority", "int", 100, "Promotion priority for sentinels (lower first, 0 never)", minimum=0),
    Setting("replica-announce-ip", "str", "", "Address the leader and sentinels should use for this replica"),
    Setting("replica-announce-port", "int", 0, "Port the leader and sentinels should use (0: the real port)"),
    Setting(
        "replica-serve-stale-data",
        "bool",
        True,
        "A replica whose link is down still answers reads (no: -MASTERDOWN)",
    ),
    Setting("min-replicas-to-write", "int", 0, "Refuse writes unless this many replicas are connected", minimum=0),
    Setting(
        "min-replicas-max-lag",
        "int",
        10,
        "A replica counts for min-replicas-to-write while its last ACK is this recent (seconds); "
        "also the leader lease (docs/guarantees.md)",
        minimum=0,
    ),
    Setting(
        "durability",
        "enum",
        "async",
        "async: acknowledge writes at once; semi-sync: only once min-replicas-to-ack replicas have them "
        "(kvcluster addition)",
        choices=("async", "semi-sync"),
    ),
    Setting(
        "min-replicas-to-ack",
        "int",
        1,
        "semi-sync: replicas that must acknowledge a write before its reply (kvcluster addition)",
        minimum=1,
    ),
    Setting(
        "semi-sync-timeout",
        "int",
        5000,
        "semi-sync: ms to wait for acknowledgements before answering -NOREPLICAS (kvcluster addition)",
        minimum=1,
    ),
    # -- start-up leader discovery (kvcluster.node.discovery; docs/operations.md) ------------
    Setting(
        "leader-discovery-sentinels",
        "args",
        [],
        "Sentinels to ask at start-up who leads the group, HOST:PORT each (space or comma separated): "
        "a restarted node follows the leader they name instead of its replicaof (kvcluster addition)",
        mutable=False,
        validate=lambda words: _sentinel_list_check(words),
    ),
    Setting(
        "leader-discovery-group",
        "str",
        "mymaster",
        "Sentinel group (master name) asked about at start-up (kvcluster addition)",
        mutable=False,
    ),
    Setting(
        "leader-discovery-timeout",
        "int",
        5000,
        "ms to keep asking the sentinels at start-up before falling back to replicaof (kvcluster addition)",
        mutable=False,
        minimum=0,
    ),
    Setting(
        "leader-discovery-password",
        "str",
        "",
        "Password to AUTH with on the sentinels asked at start-up (kvcluster addition)",
        mutable=False,
    ),
    # -- server -----------------------------------------------------------------
    Setting("hz", "int", 10, "Background task frequency (active expiry, timeouts)", minimum=1, maximum=500),
    Setting("slowlog-log-slower-than", "int", 10000, "Log commands slower than this many microseconds"),
    Setting("slowlog-max-len", "int", 128, "Entries kept in the slow log", minimum=0),
    Setting(
        "loglevel",
        "enum",
        "notice",
        "Log verbosity",
        choices=("debug", "verbose", "notice", "warning", "nothing"),
    ),
    Setting("logfile", "str", "", "Log file (empty = standard output)", mutable=False),
    Setting("log-format", "enum", "text", "Log line format (kvcluster addition)", choices=("text", "json")),
    Setting(
        "resp-parser",
        "enum",
        "auto",
        "Request parser: auto (hiredis when installed), hiredis, python",
        mutable=False,
        choices=("auto", "hiredis", "python"),
    ),
    Setting("pidfile", "str", "", "Write the process id to this file", mutable=False),
    # Accepted from redis.conf for drop-in compatibility; harmless to ignore.
    Setting("daemonize", "bool", False, "", ignored_reason="kvcluster always runs in the foreground", flag=False),
    Setting("supervised", "str", "no", "", ignored_reason="no supervision protocol is spoken", flag=False),
    Setting("protected-mode", "bool", True, "", ignored_reason="bind addresses control exposure", flag=False),
    Setting("always-show-logo", "bool", False, "", ignored_reason="no logo", flag=False),
    Setting("set-proc-title", "bool", True, "", ignored_reason="process title is not changed", flag=False),
    Setting("proc-title-template", "str", "", "", ignored_reason="process title is not changed", flag=False),
    Setting("syslog-enabled", "bool", False, "", ignored_reason="logs go to stdout or logfile", flag=False),
    Setting("locale-collate", "str", "", "", ignored_reason="byte order is used", flag=False),
    Setting("crash-log-enabled", "bool", True, "", ignored_reason="Python tracebacks are logged", flag=False),
    Setting("crash-memcheck-enabled", "bool", True, "", ignored_reason="not applicable", flag=False),
    Setting("enable-debug-command", "str", "no", "", ignored_reason="DEBUG is always available", flag=False),
    Setting("enable-protected-configs", "str", "no", "", ignored_reason="all configs are settable", flag=False),
    Setting("enable-module-command", "str", "no", "", ignored_reason="no modules", flag=False),
    Setting("lazyfree-lazy-eviction", "bool", False, "", ignored_reason="frees are synchronous", flag=False),
    Setting("lazyfree-lazy-expire", "bool", False, "", ignored_reason="frees are synchronous", flag=False),
    Setting("lazyfree-lazy-server-del", "bool", False, "", ignored_reason="frees are synchronous", flag=False),
    Setting("lazyfree-lazy-user-del", "bool", False, "", ignored_reason="frees are synchronous", flag=False),
    Setting("lazyfree-lazy-user-flush", "bool", False, "", ignored_reason="frees are synchronous", flag=False),
    Setting("io-threads", "int", 1, "", ignored_reason="one event loop", flag=False),
    Setting("io-threads-do-reads", "bool", False, "", ignored_reason="one event loop", flag=False),
    Setting("activerehashing", "bool", True, "", ignored_reason="Python dicts resize themselves", flag=False),
    Setting("jemalloc-bg-thread", "bool", True, "", ignored_reason="no jemalloc", flag=False),
    Setting("dynamic-hz", "bool", True, "", ignored_reason="hz is fixed", flag=False),
    Setting("oom-score-adj", "str", "no", "", ignored_reason="not adjusted", flag=False),
    Setting("oom-score-adj-values", "args", [], "", ignored_reason="not adjusted", flag=False),
    Setting("disable-thp", "bool", True, "", ignored_reason="not applicable", flag=False),
]


# -- client-output-buffer-limit: classes set one at a time, as in Redis --------------

_OBUF_CLASSES = ("normal", "slave", "pubsub")  # Redis's names, in CONFIG GET's order


def _obuf_classes(words: list[str]) -> dict[str, tuple[int, int, int]]:
    """``<class> <hard> <soft> <soft-seconds>`` groups -> class -> limits (Redis's error wording)."""
    if len(words) % 4:
        raise ConfigError("Wrong number of arguments in buffer limit configuration.")
    classes: dict[str, tuple[int, int, int]] = {}
    for i in range(0, len(words), 4):
        name = words[i].lower()
        name = "slave" if name == "replica" else name
        if name not in _OBUF_CLASSES:
            raise ConfigError("Invalid client class specified in buffer limit configuration.")
        try:
            limits = (parse_memory(words[i + 1]), parse_memory(words[i + 2]), int(words[i + 3]))
        except (ConfigError, ValueError):
            limits = (-1, -1, -1)
        if min(limits) < 0:
            raise ConfigError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        classes[name] = limits
    return classes


def _obuf_check(words: list[str]) -> None:
    _obuf_classes(words)


def _obuf_words(classes: dict[str, tuple[int, int, int]]) -> list[str]:
    return [w for name in _OBUF_CLASSES if name in classes for w in (name, *map(str, classes[name]))]


def _obuf_rewrite_lines(words: list[str]) -> list[list[str]]:
    # Like Redis: one line per class, only the classes that differ from the default.
    defaults = _obuf_classes(_OBUF_DEFAULT)
    return [
        [name, format_memory(hard), format_memory(soft), str(seconds)]
        for name, (hard, soft, seconds) in _obuf_classes(words).items()
        if defaults.get(name) != (hard, soft, seconds)
    ]


_OBUF_DEFAULT = ["normal", "0", "0", "0", "slave", "268435456", "67108864", "60", "pubsub", "33554432", "8388608", "60"]


# -- redis.conf compatibility ------------------------------------------------------------
#
# Directives of Redis 7's redis.conf (Debian's /etc/redis/redis.conf among them) that
# kvcluster does not implement. Each is either harmless to ignore (a tuning knob or an
# encoding detail: any value is accepted, with a warning) or would change semantics we do
# not provide: then only the value matching what kvcluster actually does is accepted
# (``appendonly no``, ``maxmemory 0``, ``save ""``), and anything else fails start-up and
# CONFIG SET with the reason, rather than promising durability or limits we lack.
# A real setting of the same name in NODE_SETTINGS replaces the entry here.


# ``user default on nopass ~* &* +@all``: what CONFIG REWRITE of a real Redis writes.
_UNRESTRICTED_DEFAULT_USER = frozenset(["on", "nopass", "~*", "&*", "+@all", "allkeys", "allchannels", "allcommands"])


class _CheckUser:
    accepts = "only an unrestricted default user"

    def __call__(self, words: list[str]) -> None:
        if words and (words[0] != "default" or not set(words[1:]) <= _UNRESTRICTED_DEFAULT_USER):
            raise ConfigError("ACL users are not supported: use requirepass (only an unrestricted default user is)")


_NO_MAXMEMORY = "no memory limit is enforced (maxmemory must be 0), so eviction settings never apply"
_REPL_TUNING = "replication transfer tuning kvcluster's replication does not use"
_ENCODING = "memory encoding threshold: values are stored as Python objects, replies are unaffected"

REDIS_CONF_COMPAT: list[Setting] = [
    # -- persistence: knobs whose effect is fixed in kvcluster ------------------------------
    Setting(
        "no-appendfsync-on-rewrite",
        "bool",
        False,
        "",
        ignored_reason="fsync goes on during rewrites (the rewrite child writes its own file)",
        flag=False,
    ),
    Setting(
        "aof-timestamp-enabled",
        "bool",
        False,
        "",
        ignored_reason="timestamp annotations are not written",
        validate=OnlyValue(False, "AOF timestamp annotations are not written by kvcluster: refusing 'yes'"),
        flag=False,
    ),
    Setting(
        "aof-rewrite-incremental-fsync", "bool", True, "", ignored_reason="rewrites fsync once, at the end", flag=False
    ),
    Setting(
        "rdbcompression",
        "bool",
        True,
        "",
        ignored_reason="snapshots use plain, uncompressed encodings (compressed files from Redis load)",
        flag=False,
    ),
    Setting("rdbchecksum", "bool", True, "", ignored_reason="checksums are always written and verified", flag=False),
    Setting(
        "rdb-del-sync-files", "bool", False, "", ignored_reason="full syncs never write snapshot files", flag=False
    ),
    Setting(
        "rdb-save-incremental-fsync", "bool", True, "", ignored_reason="snapshots fsync once, at the end", flag=False
    ),
    # -- replication -------------------------------------------------------------------------
    Setting(
        "replica-read-only",
        "bool",
        True,
        "Replicas refuse writes",
        ignored_reason="replicas are always read-only",
        validate=OnlyValue(True, "writable replicas are not supported (they diverge from their leader)"),
        flag=False,
    ),
    Setting("replica-lazy-flush", "bool", False, "", ignored_reason="frees are synchronous", flag=False),
    Setting("repl-diskless-sync", "bool", True, "", ignored_reason=_REPL_TUNING, flag=False),
    Setting("repl-diskless-sync-delay", "int", 5, "", ignored_reason=_REPL_TUNING, minimum=0, flag=False),
    Setting("repl-diskless-sync-max-replicas", "int", 0, "", ignored_reason=_REPL_TUNING, minimum=0, flag=False),
    Setting(
        "repl-diskless-load",
        "enum",
        "disabled",
        "",
        choices=("disabled", "on-empty-db", "swapdb"),
        ignored_reason=_REPL_TUNING,
        flag=False,
    ),
    Setting("repl-disable-tcp-nodelay", "bool", False, "", ignored_reason=_REPL_TUNING, flag=False),
    # -- memory: refuse a limit we would not enforce -------------------------------------------
    Setting(
        "maxmemory",
        "memory",
        0,
        "Memory limit",
        ignored_reason="maxmemory is not enforced in this build",
        validate=OnlyValue(0, "maxmemory is not enforced in this build: refusing a limit that would not be honoured"),
        flag=False,
    ),
    Setting(
        "maxmemory-policy",
        "enum",
        "noeviction",
        "Eviction policy: nothing is evicted (maxmemory must be 0); *-lfu/*-lru pick OBJECT FREQ/IDLETIME",
        choices=(
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ),
        flag=False,
    ),
    Setting("maxmemory-samples", "int", 5, "", ignored_reason=_NO_MAXMEMORY, minimum=1, flag=False),
    Setting("maxmemory-eviction-tenacity", "int", 10, "", ignored_reason=_NO_MAXMEMORY, minimum=0, flag=False),
    Setting("replica-ignore-maxmemory", "bool", True, "", ignored_reason=_NO_MAXMEMORY, flag=False),
    Setting("lfu-log-factor", "int", 10, "LFU counter growth (OBJECT FREQ)", minimum=0, flag=False),
    Setting("lfu-decay-time", "int", 1, "LFU counter decay, minutes (OBJECT FREQ)", minimum=0, flag=False),
    Setting(
        "maxmemory-clients",
        "memory",
        0,
        "",
        ignored_reason="client eviction is not implemented",
        validate=OnlyValue(
            0, "client eviction is not implemented in this build: refusing a limit that would be ignored"
        ),
        flag=False,
    ),
    # -- features we do not have: refuse turning them on ----------------------------------------
    Setting(
        "notify-keyspace-events",
        "str",
        "",
        "Keyspace notification classes",
        ignored_reason="keyspace notifications are not implemented in this build",
        validate=OnlyValue("", 'keyspace notifications are not implemented in this build: only "" is accepted'),
        flag=False,
    ),
    Setting(
        "unixsocket",
        "str",
        "",
        "",
        ignored_reason="Unix sockets are not supported",
        validate=OnlyValue("", "Unix sockets are not supported: clients could not connect to it"),
        flag=False,
    ),
    Setting("unixsocketperm", "str", "0", "", ignored_reason="Unix sockets are not supported", flag=False),
    Setting(
        "tls-port",
        "int",
        0,
        "",
        ignored_reason="TLS is not supported",
        validate=OnlyValue(0, "TLS is not supported in this build"),
        flag=False,
    ),
    Setting(
        "cluster-enabled",
        "bool",
        False,
        "",
        ignored_reason="Redis Cluster is not supported",
        validate=OnlyValue(False, "Redis Cluster mode is not supported: kvcluster replicates a leader to replicas"),
        flag=False,
    ),
    Setting(
        "aclfile",
        "str",
        "",
        "",
        ignored_reason="ACL files are not supported",
        validate=OnlyValue("", "ACL files are not supported: use requirepass"),
        flag=False,
    ),
    Setting(
        "user",
        "args",
        [],
        "",
        ignored_reason="the unrestricted default user is what requirepass gives",
        validate=_CheckUser(),
        repeatable=True,
        hidden=True,
        flag=False,
    ),
    Setting(
        "rename-command",
        "args",
        [],
        "",
        ignored_reason="commands cannot be renamed",
        validate=Refuse("renaming or disabling commands is not supported (refusing rather than leaving it enabled)"),
        hidden=True,
        flag=False,
    ),
    # -- harmless: observability and tuning knobs -----------------------------------------------
    Setting("acllog-max-len", "int", 128, "", ignored_reason="ACL LOG is not implemented", minimum=0, flag=False),
    Setting("latency-monitor-threshold", "int", 0, "", ignored_reason="LATENCY is not implemented", flag=False),
    Setting("latency-tracking", "bool", True, "", ignored_reason="INFO latencystats is not reported", flag=False),
    Setting(
        "latency-tracking-info-percentiles",
        "args",
        ["50", "99", "99.9"],
        "",
        ignored_reason="INFO latencystats is not reported",
        flag=False,
    ),
    Setting(
        "tracking-table-max-keys", "int", 10**6, "", ignored_reason="CLIENT TRACKING is not implemented", flag=False
    ),
    Setting("active-expire-effort", "int", 1, "", ignored_reason="the expiry cycle's effort is fixed", flag=False),
    Setting("activedefrag", "bool", False, "", ignored_reason="no jemalloc, no defragmentation", flag=False),
    Setting("syslog-ident", "str", "redis", "", ignored_reason="logs go to stdout or logfile", flag=False),
    Setting("syslog-facility", "str", "local0", "", ignored_reason="logs go to stdout or logfile", flag=False),
    Setting("hash-max-listpack-entries", "int", 512, "", ignored_reason=_ENCODING, flag=False),
    Setting("hash-max-listpack-value", "int", 64, "", ignored_reason=_ENCODING, flag=False),
    Setting("list-max-listpack-size", "int", -2, "", ignored_reason=_ENCODING, flag=False),
    Setting("list-compress-depth", "int", 0, "", ignored_reason=_ENCODING, flag=False),
    Setting("set-max-intset-entries", "int", 512, "", ignored_reason=_ENCODING, flag=False),
    Setting("zset-max-listpack-entries", "int", 128, "", ignored_reason=_ENCODING, flag=False),
    Setting("zset-max-listpack-value", "int", 64, "", ignored_reason=_ENCODING, flag=False),
    Setting("hll-sparse-max-bytes", "memory", 3000, "", ignored_reason=_ENCODING, flag=False),
    Setting("stream-node-max-bytes", "memory", 4096, "", ignored_reason=_ENCODING, flag=False),
    Setting("stream-node-max-entries", "int", 100, "", ignored_reason=_ENCODING, flag=False),
]


def _save_check(words: list[str]) -> None:
    if len(words) % 2 or not all(w.isdigit() for w in words):
        raise ConfigError("Invalid save parameters")


def _plain_name(value: str, name: str) -> None:
    if not value or "/" in value or value in (".", ".."):
        raise ConfigError(f"{name} can't be a path, just a filename")


def _replicaof_check(words: list[str]) -> None:
    if not words or [w.lower() for w in words] == ["no", "one"]:
        return
    if len(words) != 2:
        raise ConfigError("replicaof takes <host> <port> (or no one)")
    try:
        port = int(words[1])
    except ValueError:
        raise ConfigError(f"invalid replicaof port {words[1]!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"invalid replicaof port {port}")


def parse_sentinel_list(words: list[str]) -> list[tuple[str, int]]:
    """``leader-discovery-sentinels`` words (``HOST:PORT``, comma or space separated) -> addresses."""
    addrs: list[tuple[str, int]] = []
    for word in words:
        for item in word.replace(",", " ").split():
            host, sep, port = item.rpartition(":")
            host = host.strip("[]")  # [::1]:26379
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"expected HOST:PORT, got {item!r}")
            addrs.append((host, int(port)))
    return addrs


def _sentinel_list_check(words: list[str]) -> None:
    parse_sentinel_list(words)


def node_config() -> Config:
    # The compatibility entries only fill gaps: a real setting of the same name wins.
    taken = {name for s in NODE_SETTINGS for name in (s.name, *s.aliases)}
    return Config(list(NODE_SETTINGS) + [s for s in REDIS_CONF_COMPAT if s.name not in taken])
