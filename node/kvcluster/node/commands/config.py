"""CONFIG GET / SET / RESETSTAT / REWRITE / HELP, on the node's :class:`~kvcluster.common.config.Config`.

Replies and error wording follow Redis 7: CONFIG GET takes several glob patterns
and returns each name once (a map in RESP3, a flat array in RESP2); CONFIG SET
takes several name/value pairs and applies all or none.
"""

from __future__ import annotations

import fnmatch
import logging
from typing import TYPE_CHECKING, Any

from kvcluster.common.config import ConfigError
from kvcluster.common.resp import OK, CommandError, Status
from kvcluster.node.commands.table import command, container

if TYPE_CHECKING:
    from kvcluster.node.client import Client

try:  # the shared Redis-style glob matcher, when present
    from kvcluster.node.glob import glob_match as _glob_match
except ImportError:  # pragma: no cover - names are plain ASCII, fnmatch agrees for them
    _glob_match = None

log = logging.getLogger("kvcluster.node")

_GLOB_CHARS = frozenset(b"*?[")


def _matches(pattern: bytes, name: str) -> bool:
    if _glob_match is not None:
        return bool(_glob_match(pattern, name.encode(), nocase=True))
    return fnmatch.fnmatchcase(name, pattern.decode("utf-8", "replace").lower())


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "surrogateescape")


container("config", -2, group="server", summary="A container for server configuration commands.")


@command(
    "config|get",
    -3,
    "admin noscript loading stale",
    group="server",
    summary="Returns the effective values of configuration parameters.",
    since="2.0.0",
    complexity="O(N) when N is the number of configuration parameters provided",
)
def config_get(client: Client, args: list[bytes]) -> Any:
    config = client.node.config
    reply: dict[bytes, bytes] = {}
    seen: set[str] = set()
    for pattern in args[2:]:
        if _GLOB_CHARS.isdisjoint(pattern):
            # Like Redis: a plain name is looked up directly and echoed as the client spelled it.
            name = _text(pattern)
            s = config.lookup(name)
            if s is not None and not s.hidden and name.lower() not in seen:
                seen.add(name.lower())
                reply[pattern] = s.format(config.values[s.name]).encode("utf-8", "surrogateescape")
            continue
        for name, s in config.names():
            if name not in seen and _matches(pattern, name):
                seen.add(name)
                reply[name.encode()] = s.format(config.values[s.name]).encode("utf-8", "surrogateescape")
    return reply


@command(
    "config|set",
    -4,
    "admin noscript loading stale",
    group="server",
    summary="Sets configuration parameters in-flight.",
    since="2.0.0",
    complexity="O(N) when N is the number of configuration parameters provided",
)
def config_set(client: Client, args: list[bytes]) -> Any:
    if len(args) % 2:
        raise CommandError("ERR syntax error")
    config = client.node.config
    pairs = [(_text(args[i]), _text(args[i + 1])) for i in range(2, len(args), 2)]
    try:
        config.set_many(pairs)
    except ConfigError as e:
        if e.message == "unknown":
            raise CommandError(f"ERR Unknown option or number of arguments for CONFIG SET - '{e.name}'") from None
        raise CommandError(f"ERR CONFIG SET failed (possibly related to argument '{e.name}') - {e.message}") from None
    for name, _ in pairs:
        s = config.setting(name)
        if s.ignored_reason:
            log.warning("CONFIG SET %s: accepted but ignored: %s", s.name, s.ignored_reason)
    return OK


@command(
    "config|resetstat",
    2,
    "admin noscript loading stale",
    group="server",
    summary="Resets the server's statistics.",
    since="2.0.0",
    complexity="O(1)",
)
def config_resetstat(client: Client, args: list[bytes]) -> Any:
    # Like Redis's resetServerStats + resetCommandTableStats + resetErrorTableStats;
    # the slow log is left alone (SLOWLOG RESET clears it).
    node = client.node
    node.stats.reset()
    for cmd in node.table.values():
        cmd.reset_stats()
    keyspace = node.keyspace
    for attr, value in vars(keyspace).items():
        if attr.startswith("stat_") and isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(keyspace, attr, type(value)())
    return OK


@command(
    "config|rewrite",
    2,
    "admin noscript loading stale",
    group="server",
    summary="Persists the effective configuration to file.",
    since="2.8.0",
    complexity="O(1)",
)
def config_rewrite(client: Client, args: list[bytes]) -> Any:
    config = client.node.config
    try:
        config.rewrite()
    except ConfigError as e:
        raise CommandError(f"ERR {e.message}") from None
    except OSError as e:
        log.warning("CONFIG REWRITE failed: %s", e)
        raise CommandError(f"ERR Rewriting config file: {e.strerror or e}") from None
    log.info("CONFIG REWRITE executed with success.")
    return OK


_HELP = [
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
]


@command(
    "config|help",
    2,
    "loading stale",
    group="server",
    summary="Returns helpful text about the different subcommands.",
    since="5.0.0",
)
def config_help(client: Client, args: list[bytes]) -> Any:
    return [Status(line.encode()) for line in _HELP]
