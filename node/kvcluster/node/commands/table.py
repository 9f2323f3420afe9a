"""The command table: one declarative record per command.

Every command family module registers its handlers with :func:`command`. The
record carries what Redis's command table carries -- arity (positive: exact,
negative: minimum, the name counted), flags, key positions, the group -- and
everything that reads commands generically uses it: dispatch and arity errors
(:mod:`kvcluster.node.core`), ``COMMAND`` / ``COMMAND GETKEYS``, MULTI queueing,
and later replication and the AOF.

Handler contract: ``handler(client, args) -> reply value`` where ``args[0]`` is
the command name as sent. Handlers raise :class:`~kvcluster.common.resp.CommandError`
for error replies, and increment ``client.node.keyspace.dirty`` once per change
they make to the dataset (that is what decides propagation and WATCH).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Flags, as in Redis's command table (lowercase names as COMMAND prints them):
#   write      may modify the dataset (refused on a read-only replica, propagated)
#   readonly   only reads keys
#   denyoom    may grow memory (refused when over maxmemory)
#   admin      administrative
#   pubsub     pub/sub related
#   noscript   not allowed from scripts
#   blocking   may block the client
#   loading    allowed while loading the dataset
#   stale      allowed on a replica with a broken link (replica-serve-stale-data no)
#   fast       O(1) or O(log N)
#   no_auth    allowed before AUTH
#   no_multi   not allowed inside MULTI (runs immediately even when in MULTI, e.g. EXEC)
#   allow_busy allowed while a script is running
#   no_mandatory_keys  may take no key at all (EVAL with numkeys 0)
KNOWN_FLAGS = frozenset(
    [
        "write",
        "readonly",
        "denyoom",
        "admin",
        "pubsub",
        "noscript",
        "blocking",
        "loading",
        "stale",
        "fast",
        "no_auth",
        "no_multi",
        "allow_busy",
        "may_replicate",
        "skip_monitor",
        "skip_slowlog",
        "no_propagate",
        "no_mandatory_keys",
    ]
)

Handler = Callable[[Any, list[bytes]], Any]


@dataclass(eq=False)
class Command:
    name: str
    handler: Handler | None
    arity: int
    flags: frozenset[str]
    first_key: int = 0
    last_key: int = 0
    key_step: int = 0
    group: str = "generic"
    summary: str = ""
    since: str = "1.0.0"
    complexity: str = ""
    # Subcommands by lowercase name (CONFIG GET, CLIENT LIST, ...).
    subcommands: dict[str, Command] = field(default_factory=dict)
    parent: Command | None = None
    # Custom key extraction for commands whose keys are not a simple range (e.g. EVAL numkeys).
    get_keys: Callable[[list[bytes]], list[int]] | None = None
    # Statistics (INFO commandstats, /metrics). Plain ints: cheaper than metric objects.
    calls: int = 0
    nsec: int = 0  # summed in ns: a sub-microsecond call would add nothing to a usec total
    rejected_calls: int = 0
    failed_calls: int = 0
    # log2 histogram of durations in nanoseconds: index = duration_ns.bit_length().
    latency_buckets: list[int] = field(default_factory=lambda: [0] * 64)

    def __post_init__(self) -> None:
        unknown = self.flags - KNOWN_FLAGS
        if unknown:
            raise ValueError(f"{self.name}: unknown flags {sorted(unknown)}")
        self.is_write = "write" in self.flags
        self.is_readonly = "readonly" in self.flags
        self.no_multi = "no_multi" in self.flags
        self.allow_in_pubsub = False

    @property
    def usec(self) -> int:
        return self.nsec // 1000

    @property
    def full_name(self) -> str:
        return f"{self.parent.name}|{self.name}" if self.parent else self.name

    def key_positions(self, args: list[bytes]) -> list[int]:
        """Indexes of ``args`` that are keys (COMMAND GETKEYS, WATCH-on-write, ACLs)."""
        if self.get_keys is not None:
            return self.get_keys(args)
        if self.first_key <= 0:
            return []
        last = self.last_key if self.last_key >= 0 else len(args) + self.last_key
        return list(range(self.first_key, min(last, len(args) - 1) + 1, self.key_step or 1))

    def reset_stats(self) -> None:
        self.calls = self.nsec = self.rejected_calls = self.failed_calls = 0
        self.latency_buckets = [0] * 64
        for sub in self.subcommands.values():
            sub.reset_stats()


# name -> Command for top-level commands, filled by @command at import time.
REGISTRY: dict[str, Command] = {}


def command(
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    group: str = "generic",
    summary: str = "",
    since: str = "1.0.0",
    complexity: str = "",
    get_keys: Callable[[list[bytes]], list[int]] | None = None,
) -> Callable[[Handler], Handler]:
    """Register a handler. ``name`` may be ``"container|sub"`` for a subcommand."""

    def register(fn: Handler) -> Handler:
        container_name, _, sub_name = name.lower().partition("|")
        cmd = Command(
            name=sub_name or container_name,
            handler=fn,
            arity=arity,
            flags=frozenset(flags.split()),
            first_key=keys[0],
            last_key=keys[1],
            key_step=keys[2],
            group=group,
            summary=summary,
            since=since,
            complexity=complexity,
            get_keys=get_keys,
        )
        if sub_name:
            parent = REGISTRY.get(container_name)
            if parent is None:
                raise ValueError(f"register container {container_name!r} before {name!r}")
            cmd.parent = parent
            parent.subcommands[sub_name] = cmd
        else:
            if container_name in REGISTRY:
                raise ValueError(f"command {container_name!r} registered twice")
            REGISTRY[container_name] = cmd
        return fn

    return register


def container(name: str, arity: int = -2, flags: str = "", group: str = "generic", summary: str = "") -> None:
    """Register a command that only dispatches to subcommands (CONFIG, CLIENT, ...)."""
    cmd = Command(name=name.lower(), handler=None, arity=arity, flags=frozenset(flags.split()), group=group)
    cmd.summary = summary
    if cmd.name in REGISTRY:
        raise ValueError(f"command {name!r} registered twice")
    REGISTRY[cmd.name] = cmd
