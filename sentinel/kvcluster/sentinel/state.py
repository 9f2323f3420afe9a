"""Redis sentinel.conf ``sentinel ...`` directives: read into the core, written back from it.

Like redis-sentinel, the sentinel's state (its id, the epochs, its votes, every replica and peer
it knows, where each group's leader is) lives in ``sentinel ...`` lines of the config file, which
is rewritten atomically (temp file, fsync, rename, fsync of the directory) whenever the state
changes. Without a sentinel.conf (flags only, or a YAML file) the same lines go to a state file
of their own (``DIR/sentinel-state.conf``), read back at start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from kvcluster.common.config import (
    Config,
    ConfigError,
    Directive,
    atomic_write,
    parse_bool,
    quote_arg,
    read_redis_conf,
)
from kvcluster.sentinel.core import SentinelCore, SentinelError

STATE_FILE = "sentinel-state.conf"

# ``sentinel <name> ...`` lines that set a setting rather than group state.
_SETTING_DIRECTIVES = {
    "announce-ip": "announce-ip",
    "announce-port": "announce-port",
    "resolve-hostnames": "resolve-hostnames",
    "announce-hostnames": "announce-hostnames",
    "sentinel-user": "sentinel-user",
    "sentinel-pass": "sentinel-pass",
}
# Accepted and ignored, with the reason logged.
_IGNORED = {
    "deny-scripts-reconfig": "kvcluster runs no scripts",
    "notification-script": "kvcluster runs no scripts",
    "client-reconfig-script": "kvcluster runs no scripts",
    "rename-command": "kvcluster sends the nodes their real command names",
}


@dataclass
class SentinelDirectives:
    """Collects ``sentinel ...`` lines while the config loads (a Config directive handler)."""

    config: Config
    lines: list[Directive] = field(default_factory=list)

    def __call__(self, d: Directive) -> None:
        if not d.args:
            raise ConfigError("wrong number of arguments for 'sentinel'")
        sub = d.args[0].lower()
        if sub in _SETTING_DIRECTIVES:
            if len(d.args) != 2:
                raise ConfigError(f"wrong number of arguments for 'sentinel {sub}'")
            self.config.set(_SETTING_DIRECTIVES[sub], d.args[1], source="file")
            return
        self.lines.append(d)


def install(config: Config) -> SentinelDirectives:
    handler = SentinelDirectives(config)
    config.directive_handlers["sentinel"] = handler
    return handler


def read_state_file(path: str) -> list[Directive]:
    """The ``sentinel`` lines of a state file (missing file: none)."""
    if not os.path.exists(path):
        return []
    return [d for d in read_redis_conf(path) if d.name == "sentinel" and d.args]


def apply_directives(core: SentinelCore, directives: list[Directive], warnings: list[str]) -> None:
    """Build the core's groups and state from ``sentinel ...`` lines; errors name file and line."""
    for d in directives:
        try:
            _apply(core, [a for a in d.args], warnings, d.where)
        except (SentinelError, ValueError, IndexError) as e:
            message = e.message if isinstance(e, SentinelError) else f"invalid arguments ({e})"
            raise ConfigError(f"{d.where}: sentinel {d.args[0]}: {message.removeprefix('ERR ')}", "sentinel") from None
    core._reindex()


def _int(text: str) -> int:
    return int(text)


def _apply(core: SentinelCore, args: list[str], warnings: list[str], where: str) -> None:
    sub = args[0].lower()
    rest = args[1:]

    def need(n: int) -> None:
        if len(rest) != n:
            raise ValueError(f"expected {n} arguments, got {len(rest)}")

    if sub in _IGNORED:
        warnings.append(f"{where}: 'sentinel {sub}' is accepted but ignored: {_IGNORED[sub]}")
        return
    if sub == "myid":
        need(1)
        if len(rest[0]) != 40:
            raise ValueError("sentinel myid must be 40 characters")
        core.myid = rest[0]
    elif sub == "current-epoch":
        need(1)
        core.current_epoch = max(core.current_epoch, _int(rest[0]))
    elif sub == "monitor":
        need(4)
        core.monitor(rest[0], rest[1], _int(rest[2]), _int(rest[3]), event=False)
    elif sub in ("known-replica", "known-slave"):
        need(3)
        m = core.get_master(rest[0])
        if (rest[1], _int(rest[2])) != m.addr:
            core.add_replica(m, rest[1], _int(rest[2]), event=False)
    elif sub == "known-sentinel":
        need(4)
        m = core.get_master(rest[0])
        if rest[3] != core.myid:
            core.add_sentinel(m, rest[1], _int(rest[2]), rest[3], event=False)
    elif sub == "config-epoch":
        need(2)
        core.get_master(rest[0]).config_epoch = _int(rest[1])
    elif sub == "leader-epoch":
        need(2)
        core.get_master(rest[0]).leader_epoch = _int(rest[1])
    elif sub in (
        "down-after-milliseconds",
        "failover-timeout",
        "parallel-syncs",
        "auth-pass",
        "auth-user",
        "master-reboot-down-after-period",
        "max-write-pause-milliseconds",
        "quorum",
    ):
        need(2)
        m = core.get_master(rest[0])
        _set_group_option(m, sub, rest[1])
    elif sub == "resolve-hostnames" or sub == "announce-hostnames":
        need(1)
        setattr(core, sub.replace("-", "_"), parse_bool(rest[0]))
    else:
        raise ValueError(f"unknown sentinel directive '{sub}'")


def _set_group_option(m: object, option: str, value: str) -> None:
    attr = {
        "down-after-milliseconds": "down_after",
        "failover-timeout": "failover_timeout",
        "parallel-syncs": "parallel_syncs",
        "auth-pass": "auth_pass",
        "auth-user": "auth_user",
        "master-reboot-down-after-period": "reboot_down_after",
        "max-write-pause-milliseconds": "max_write_pause",
        "quorum": "quorum",
    }[option]
    setattr(m, attr, value if option in ("auth-pass", "auth-user") else _int(value))


def state_path(config: Config) -> str | None:
    """The state file when the config file cannot hold the state (None: the config file does)."""
    path = config.config_file
    if path and not path.lower().endswith((".yaml", ".yml")):
        return None
    explicit = config["state-file"]
    if explicit:
        return os.path.abspath(explicit)
    return os.path.abspath(os.path.join(config["dir"] or ".", STATE_FILE))


def save(core: SentinelCore, config: Config) -> None:
    """Write the state durably: into the sentinel.conf (CONFIG REWRITE style) or the state file."""
    lines = core.state_lines()
    path = state_path(config)
    if path is None:
        config.rewrite(extra={"sentinel": lines})
        return
    text = "# kvcluster sentinel state (sentinel.conf syntax), rewritten on every change\n"
    text += "".join("sentinel " + " ".join(quote_arg(a) for a in args) + "\n" for args in lines)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    atomic_write(path, text)
