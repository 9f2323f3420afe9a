"""The shape of a local cluster: which processes, on which ports, in which directories, with which flags.

Pure: :class:`ClusterOptions` (what ``kvcluster up`` was asked for, saved as ``DIR/cluster.json`` so
the next ``up`` and ``kvcluster status`` find the same cluster) and the command lines of its children.

Layout of ``DIR`` (default ``.kvcluster``)::

    cluster.json              the options below (mode 0600: it may hold the password)
    up.lock                   held by the running ``kvcluster up``
    node-7000/                a node's data (appendonlydir/), node.log, node.pid
    sentinel-26379/           a sentinel's saved state (sentinel-state.conf), sentinel.log, sentinel.pid
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Kind = Literal["node", "sentinel"]

HOST = "127.0.0.1"
OPTIONS_FILE = "cluster.json"
LOCK_FILE = "up.lock"
LEASE_SECONDS = 10  # min-replicas-max-lag of the nodes (Redis's default)


@dataclass(frozen=True)
class ClusterOptions:
    replicas: int = 2
    sentinels: int = 3
    port: int = 7000
    sentinel_port: int = 26379
    name: str = "mymaster"
    durability: str = "async"
    password: str = ""
    # Quicker than Redis's defaults (30 s / 180 s) so a newcomer sees a failover within seconds.
    down_after_milliseconds: int = 3000
    failover_timeout: int = 20000

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError("--replicas must be 0 or more")
        if self.sentinels < 1:
            raise ValueError("--sentinels must be 1 or more")
        if self.durability not in ("async", "semi-sync"):
            raise ValueError("--durability must be async or semi-sync")
        if self.durability == "semi-sync" and self.replicas < 1:
            raise ValueError("--durability semi-sync needs at least one replica (--replicas 1)")
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError("--name must be a non-empty word")
        for what, first, count in (
            ("--port", self.port, self.replicas + 1),
            ("--sentinel-port", self.sentinel_port, self.sentinels),
        ):
            # Admin (HTTP) ports are client port + 10000.
            if first < 1 or first + count - 1 + 10000 > 65535:
                raise ValueError(f"{what} {first}: ports {first}..{first + count - 1} and +10000 must be below 65536")
        node_range = set(range(self.port, self.port + self.replicas + 1))
        if node_range & set(range(self.sentinel_port, self.sentinel_port + self.sentinels)):
            raise ValueError("--port and --sentinel-port ranges overlap")

    @property
    def node_ports(self) -> list[int]:
        return list(range(self.port, self.port + self.replicas + 1))

    @property
    def sentinel_ports(self) -> list[int]:
        return list(range(self.sentinel_port, self.sentinel_port + self.sentinels))

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(HOST, p) for p in self.sentinel_ports]

    @property
    def quorum(self) -> int:
        return self.sentinels // 2 + 1

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClusterOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        data: dict[str, Any] = {k: v for k, v in json.loads(text).items() if k in known}
        return cls(**data)

    def merged(self, **overrides: Any) -> ClusterOptions:
        """These options with the given (not None) values replacing them: flags over the saved file."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class ChildSpec:
    """One child process of ``kvcluster up``."""

    kind: Kind
    port: int
    directory: Path

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.port}"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.kind}.log"

    @property
    def pid_path(self) -> Path:
        return self.directory / f"{self.kind}.pid"


def children(options: ClusterOptions, root: Path) -> list[ChildSpec]:
    """Nodes (in port order) then sentinels."""
    nodes = [ChildSpec("node", p, root / f"node-{p}") for p in options.node_ports]
    sentinels = [ChildSpec("sentinel", p, root / f"sentinel-{p}") for p in options.sentinel_ports]
    return nodes + sentinels


def node_args(options: ClusterOptions, spec: ChildSpec, leader_port: int, discovery: bool) -> list[str]:
    """``kvcluster node`` flags: a replica of ``leader_port`` unless it is the leader itself.

    With ``discovery`` (the node has the leader-discovery settings) a node restarted later asks the
    sentinels who leads before serving, so it cannot come back as a second leader even if the
    leader changed after these flags were written.
    """
    args = ["--port", str(spec.port), "--bind", HOST, "--dir", str(spec.directory), "--admin-port", "-1"]
    args += ["--pidfile", str(spec.pid_path)]
    # Data survives a restart and the next `up`: the AOF, fsynced every second (Redis's usual trade-off).
    args += ["--appendonly", "yes", "--appendfsync", "everysec"]
    if options.replicas >= 1:
        # The leader lease: a leader cut off from every replica stops taking writes after
        # min-replicas-max-lag seconds, so an isolated old leader cannot take writes a failover drops.
        args += ["--min-replicas-to-write", "1", "--min-replicas-max-lag", str(LEASE_SECONDS)]
    if options.durability != "async":
        args += ["--durability", options.durability]
    if options.password:
        args += ["--requirepass", options.password, "--masterauth", options.password]
    if spec.port != leader_port:
        args += ["--replicaof", HOST, str(leader_port)]
    if discovery:
        args += ["--leader-discovery-sentinels", *(f"{HOST}:{p}" for p in options.sentinel_ports)]
        args += ["--leader-discovery-group", options.name]
        if options.password:
            args += ["--leader-discovery-password", options.password]
    return args


def sentinel_args(options: ClusterOptions, spec: ChildSpec, leader_port: int) -> list[str]:
    """``kvcluster sentinel`` flags. ``--monitor`` only matters the first time: the saved state wins after."""
    args = ["--port", str(spec.port), "--bind", HOST, "--dir", str(spec.directory), "--admin-port", "-1"]
    args += ["--pidfile", str(spec.pid_path)]
    args += ["--monitor", options.name, HOST, str(leader_port), str(options.quorum)]
    args += ["--down-after-milliseconds", str(options.down_after_milliseconds)]
    args += ["--failover-timeout", str(options.failover_timeout)]
    peers = [f"{HOST}:{p}" for p in options.sentinel_ports if p != spec.port]
    if peers:
        args += ["--sentinel-peers", *peers]
    if options.password:
        # The nodes and the other sentinels are protected by the same password.
        args += ["--requirepass", options.password, "--auth-pass", options.password]
        args += ["--sentinel-pass", options.password]
    return args
