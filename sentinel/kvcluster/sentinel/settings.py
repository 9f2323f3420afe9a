"""The sentinel's settings (``kvcluster sentinel`` flags, ``KVCLUSTER_*`` variables, YAML, sentinel.conf).

Top-level directives are settings, as in redis.conf. The ``sentinel <subcommand> ...`` lines of a
Redis sentinel.conf (``sentinel monitor``, ``sentinel known-replica``, ``sentinel announce-ip``...)
are not: :mod:`kvcluster.sentinel.state` reads and writes them. The per-group defaults here
(``down-after-milliseconds`` ...) apply to groups created by ``--monitor`` or SENTINEL MONITOR.
"""

from __future__ import annotations

from kvcluster.common.config import Config, ConfigError, Setting

SENTINEL_PORT = 26379


def _monitor_check(words: list[str]) -> None:
    if not words:
        return
    if len(words) != 4:
        raise ConfigError("expected NAME HOST PORT QUORUM")
    if not words[2].isdigit() or not 0 < int(words[2]) < 65536:
        raise ConfigError("invalid port")
    if not words[3].isdigit() or int(words[3]) < 1:
        raise ConfigError("quorum must be 1 or greater")


SENTINEL_SETTINGS: list[Setting] = [
    # -- network -----------------------------------------------------------------
    Setting("port", "int", SENTINEL_PORT, "TCP port for clients and other sentinels", mutable=False, maximum=65535),
    Setting("bind", "args", ["127.0.0.1"], "Addresses to listen on", mutable=False),
    Setting("requirepass", "str", "", "Password clients (and other sentinels) must AUTH with (empty = none)"),
    Setting("admin-port", "int", 0, "HTTP port for /metrics, /healthz, /readyz (0 = off, -1 = port+10000)"),
    Setting("admin-bind", "str", "127.0.0.1", "Address of the HTTP admin port", mutable=False),
    # -- what to monitor ---------------------------------------------------------------
    Setting(
        "monitor",
        "args",
        [],
        "Monitor a group: NAME HOST PORT QUORUM (like 'sentinel monitor'; ignored once the saved state has it)",
        mutable=False,
        validate=_monitor_check,
    ),
    Setting("down-after-milliseconds", "int", 30000, "Default for new groups: silence before SDOWN", minimum=1),
    Setting("failover-timeout", "int", 180000, "Default for new groups: bound of each failover step", minimum=1),
    Setting("parallel-syncs", "int", 1, "Default for new groups: replicas repointed at once", minimum=1),
    Setting("auth-pass", "str", "", "Default for new groups: password for the nodes"),
    Setting("auth-user", "str", "", "Default for new groups: user name for the nodes"),
    Setting(
        "sentinel-peers",
        "args",
        [],
        "Other sentinels to introduce ourselves to, HOST:PORT each (DNS names allowed, e.g. a headless Service)",
        mutable=False,
    ),
    # -- how we announce ourselves and the nodes --------------------------------------
    Setting("announce-ip", "str", "", "Address announced to other sentinels (default: the local address)"),
    Setting("announce-port", "int", 0, "Port announced to other sentinels (0: our port)", minimum=0, maximum=65535),
    Setting("resolve-hostnames", "bool", False, "Accept host names for nodes and sentinels, resolved on connect"),
    Setting(
        "announce-hostnames",
        "bool",
        False,
        "Hand out host names as given (stable DNS names of pods) instead of the IPs they resolve to",
    ),
    Setting("sentinel-user", "str", "", "User name to AUTH with on other sentinels"),
    Setting("sentinel-pass", "str", "", "Password to AUTH with on other sentinels"),
    # -- files -------------------------------------------------------------------------
    Setting("dir", "str", ".", "Working directory (the state file goes here without a sentinel.conf)"),
    Setting(
        "state-file",
        "str",
        "",
        "Where the state is saved when the config file is not sentinel.conf syntax (default: DIR/sentinel-state.conf)",
        mutable=False,
    ),
    Setting("pidfile", "str", "", "Write the process id to this file", mutable=False),
    # -- logging ------------------------------------------------------------------------
    Setting(
        "loglevel",
        "enum",
        "notice",
        "Log verbosity",
        choices=("debug", "verbose", "notice", "warning", "nothing"),
    ),
    Setting("logfile", "str", "", "Log file (empty = standard output)", mutable=False),
    Setting("log-format", "enum", "text", "Log line format (kvcluster addition)", choices=("text", "json")),
    # -- accepted for redis.conf compatibility -------------------------------------------
    # Debian's sentinel.conf says "daemonize yes": accepted, we stay in the foreground (as the node).
    Setting("daemonize", "bool", False, "", ignored_reason="kvcluster always runs in the foreground", flag=False),
    Setting("protected-mode", "bool", False, "", ignored_reason="bind addresses control exposure", flag=False),
    Setting("supervised", "str", "no", "", ignored_reason="no supervision protocol is spoken", flag=False),
    Setting("always-show-logo", "bool", False, "", ignored_reason="no logo", flag=False),
    Setting("syslog-enabled", "bool", False, "", ignored_reason="logs go to stdout or logfile", flag=False),
    Setting("syslog-ident", "str", "redis", "", ignored_reason="logs go to stdout or logfile", flag=False),
    Setting("syslog-facility", "str", "local0", "", ignored_reason="logs go to stdout or logfile", flag=False),
    Setting("acllog-max-len", "int", 128, "", ignored_reason="the sentinel has no ACLs", flag=False),
    Setting("tcp-keepalive", "int", 300, "", ignored_reason="keepalive is the system's default", flag=False),
]


def sentinel_config() -> Config:
    return Config(list(SENTINEL_SETTINGS))
