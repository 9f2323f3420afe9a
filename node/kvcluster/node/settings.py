"""The node's settings: names, types and defaults follow redis.conf.

This list is the single source of truth for ``kvcluster node`` flags,
``KVCLUSTER_*`` environment variables, YAML and redis.conf files, CONFIG
GET/SET and the configuration reference in the README.
"""

from __future__ import annotations

from kvcluster.common.config import Config, Setting

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
        1024 * 1024 * 1024,
        "Largest number of arguments in one request (kvcluster addition)",
        minimum=1,
    ),
    Setting("client-query-buffer-limit", "memory", GB, "Largest query buffer of one client", minimum=1024 * 1024),
    Setting(
        "client-output-buffer-limit",
        "args",
        ["normal", "0", "0", "0", "replica", "256mb", "64mb", "60", "pubsub", "32mb", "8mb", "60"],
        "Output buffer limits per class: <class> <hard> <soft> <soft-seconds> ...",
        aliases=(),
    ),
    Setting("databases", "int", 16, "Number of databases", mutable=False, minimum=1, maximum=1 << 20),
    # -- security ---------------------------------------------------------------
    Setting("requirepass", "str", "", "Password clients must AUTH with (empty = none)"),
    # -- persistence (the durability issue fills these in) -----------------------
    Setting("dir", "str", ".", "Working directory for data files"),
    Setting("dbfilename", "str", "dump.rdb", "Snapshot file name"),
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


def node_config() -> Config:
    return Config(list(NODE_SETTINGS))
