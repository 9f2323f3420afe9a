"""Parse a node's ``INFO`` reply into the facts a sentinel acts on, sans-I/O.

Field names are Redis's (``role``, ``master_host``, ``slaveN:ip=..,port=..``, ...) plus
kvcluster's ``kvcluster_epoch`` / ``kvcluster_fenced``, so a real redis-server parses too
(its epoch is then unknown: ``epoch`` stays None).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReplicaLine:
    """One ``slaveN:`` line of a leader's INFO."""

    host: str
    port: int
    state: str = ""
    offset: int = 0


@dataclass
class NodeInfo:
    run_id: str = ""
    role: str = ""  # "master" or "slave" ("" if the reply had no role line)
    # Replica side.
    master_host: str = ""
    master_port: int = 0
    master_link_up: bool = False
    master_link_down_since_ms: int = 0
    slave_priority: int = 100
    slave_repl_offset: int = 0
    replica_announced: bool = True
    # Leader side.
    replicas: list[ReplicaLine] = field(default_factory=list)
    master_repl_offset: int = 0
    # kvcluster: the node's fencing epoch and whether a newer epoch has fenced it.
    epoch: int | None = None
    fenced: bool = False


def _int(text: str, default: int = 0) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def parse_info(text: str) -> NodeInfo:
    """Never raises: unknown or malformed lines are skipped, like Redis's sentinel does."""
    info = NodeInfo()
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        if key == "run_id" and len(value) == 40:
            info.run_id = value
        elif key == "role":
            info.role = value
        elif key.startswith("slave") and key[5:].isdigit():
            replica = _replica_line(value)
            if replica is not None:
                info.replicas.append(replica)
        elif key == "master_host":
            info.master_host = value
        elif key == "master_port":
            info.master_port = _int(value)
        elif key == "master_link_status":
            info.master_link_up = value == "up"
        elif key == "master_link_down_since_seconds":
            # Redis 7 prints -1 while the link was never up; treat as "just now".
            info.master_link_down_since_ms = max(0, _int(value)) * 1000
        elif key == "slave_priority" or key == "replica_priority":
            info.slave_priority = _int(value, 100)
        elif key == "slave_repl_offset":
            info.slave_repl_offset = _int(value)
        elif key == "master_repl_offset":
            info.master_repl_offset = _int(value)
        elif key == "replica_announced":
            info.replica_announced = value != "0"
        elif key == "kvcluster_epoch":
            info.epoch = _int(value)
        elif key == "kvcluster_fenced":
            info.fenced = value == "1"
    return info


def _replica_line(value: str) -> ReplicaLine | None:
    if "=" in value:  # ip=...,port=...,state=...,offset=...,lag=...
        fields = dict(part.partition("=")[::2] for part in value.split(","))
        host, port = fields.get("ip", ""), _int(fields.get("port", ""), -1)
        state, offset = fields.get("state", ""), _int(fields.get("offset", "0"))
    else:  # Redis < 2.8: <ip>,<port>,<state>
        parts = value.split(",")
        if len(parts) < 2:
            return None
        host, port = parts[0], _int(parts[1], -1)
        state, offset = (parts[2] if len(parts) > 2 else ""), 0
    if not host or not 0 < port < 65536:
        return None
    return ReplicaLine(host, port, state, offset)
