"""Mirror the sentinels' view of a KVCluster into Kubernetes: role labels, status, conditions, Events.

Theory of operation. Leadership belongs to the sentinels alone. Every ~1.5 s the operator asks each
sentinel of a cluster (``SENTINEL GET-MASTER-ADDR-BY-NAME``, ``MASTER``, ``REPLICAS``, ``SENTINELS``)
and reads the leader's ``INFO replication`` (offsets, for the replica lag). :func:`observe` — pure: no
clock, no I/O — turns those answers, the node pods and the previous status into what Kubernetes
should show:

- the leader is the address a *majority* of the cluster's sentinels (``spec.sentinels``) name; without
  a majority (a failover converging, a partition, sentinels down) nothing is relabelled, so the
  ``-leader`` Service never flaps between two pods and never follows a minority;
- the leader pod gets ``kvcluster.io/role=leader``; a pod the agreeing sentinels see as a connected,
  healthy replica gets ``replica``; any other node pod (syncing, down, the old leader after a
  failover) loses the label, so neither Service routes to it;
- status fields and the standard conditions; Events on transitions (FailoverStarted, LeaderChanged,
  ReplicaLagging, QuorumLost), decided by comparing with the previous status, so a repeated
  observation emits nothing new.

It never writes to a node and never picks a leader. :func:`query_sentinels` and :func:`leader_replication`
are the I/O half (redis-py asyncio); the kopf timer in handlers.py glues them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

ROLE_LABEL = "kvcluster.io/role"
REVISION_ANNOTATION = "kvcluster.io/revision"
LAGGING_BYTES = 1 << 20  # a replica this far behind the leader is lagging (the Service still routes to it)
LAGGING_SECONDS = 10  # ... or one whose last ACK is this old

Addr = tuple[str, int]


# -- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentinelAnswer:
    """What one sentinel said (all fields as Redis Sentinel names them), or why it could not be asked."""

    sentinel: str  # "host:port" as the operator reached it
    error: str = ""  # non-empty: unreachable or the group is unknown to it
    leader: Addr | None = None  # GET-MASTER-ADDR-BY-NAME
    master: Mapping[str, str] = field(default_factory=dict)  # SENTINEL MASTER
    replicas: Sequence[Mapping[str, str]] = ()  # SENTINEL REPLICAS
    sentinels: Sequence[Mapping[str, str]] = ()  # SENTINEL SENTINELS (the others)

    @property
    def reachable(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class PodView:
    """The facts about a node pod the operator acts on."""

    name: str
    ordinal: int
    ip: str = ""
    ready: bool = False
    role: str | None = None  # the kvcluster.io/role label now
    revision: str = ""  # the kvcluster.io/revision annotation
    deleting: bool = False
    uid: str = ""


def pod_view(pod: Mapping[str, Any]) -> PodView:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    name = meta.get("name", "")
    match = re.search(r"-(\d+)$", name)
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return PodView(
        name=name,
        ordinal=int(match.group(1)) if match else -1,
        ip=status.get("podIP") or "",
        ready=ready and not meta.get("deletionTimestamp"),
        role=(meta.get("labels") or {}).get(ROLE_LABEL),
        revision=(meta.get("annotations") or {}).get(REVISION_ANNOTATION, ""),
        deleting=bool(meta.get("deletionTimestamp")),
        uid=meta.get("uid", ""),
    )


@dataclass(frozen=True)
class Cluster:
    """Which cluster is observed, and how many sentinels it is meant to have."""

    name: str
    namespace: str
    sentinels: int = 3
    replicas: int = 3  # node pods wanted
    generation: int = 0

    @property
    def majority(self) -> int:
        return self.sentinels // 2 + 1

    @property
    def node_headless(self) -> str:
        return f"{self.name}-node-headless"


def pod_for_host(host: str, pods: Iterable[PodView], cluster: Cluster) -> PodView | None:
    """The pod a sentinel's address names: its stable DNS name (any suffix of it) or its pod IP."""
    for pod in pods:
        if host == pod.name or host.startswith(f"{pod.name}.{cluster.node_headless}"):
            return pod
        if pod.ip and host == pod.ip:
            return pod
    return None


# -- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    type: str  # "Normal" | "Warning"
    reason: str
    message: str


@dataclass
class Observation:
    labels: dict[str, str | None]  # pod name -> wanted kvcluster.io/role (None: no label); only pods to change
    status: dict[str, Any]  # the status fields this observation owns (merge into .status)
    events: list[Event]
    leader_pod: str | None  # the agreed leader's pod (None: unknown or no majority)
    leader_addr: Addr | None
    failover_in_progress: bool
    replica_offsets: dict[str, int]  # pod -> replication offset the leader saw it ACK
    leader_offset: int | None
    synced_replicas: set[str]  # pods online as replicas of the leader with lag ~0


def condition(
    type_: str, ok: bool | None, reason: str, message: str, now: str, previous: Sequence[Mapping[str, Any]], gen: int
) -> dict[str, Any]:
    """A condition in the standard form; lastTransitionTime only moves when the status flips."""
    status = "Unknown" if ok is None else "True" if ok else "False"
    before = next((c for c in previous if c.get("type") == type_), None)
    since = before.get("lastTransitionTime", now) if before and before.get("status") == status else now
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": gen,
    }


def merge_conditions(previous: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``previous`` with each of ``new`` replacing the condition of its type; stable order."""
    by_type = {c["type"]: dict(c) for c in previous if "type" in c}
    for c in new:
        by_type[c["type"]] = dict(c)
    order = ["Ready", "Available", "Degraded", "FailingOver", "Upgrading"]
    return sorted(by_type.values(), key=lambda c: (order.index(c["type"]) if c["type"] in order else 99, c["type"]))


def _flags(fields: Mapping[str, str]) -> set[str]:
    return set((fields.get("flags") or "").split(","))


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def parse_replication_info(info: Mapping[str, Any]) -> tuple[int, dict[Addr, tuple[str, int, int]]]:
    """The leader's ``INFO replication`` (redis-py's parsed dict): (its offset, addr -> (state, offset, lag))."""
    replicas: dict[Addr, tuple[str, int, int]] = {}
    for key, value in info.items():
        if re.fullmatch(r"slave\d+", str(key)) and isinstance(value, Mapping):
            addr = (str(value.get("ip", "")), _int(value.get("port")))
            replicas[addr] = (str(value.get("state", "")), _int(value.get("offset")), _int(value.get("lag")))
    return _int(info.get("master_repl_offset")), replicas


def agreed_leader(answers: Sequence[SentinelAnswer], majority: int) -> Addr | None:
    """The leader address at least ``majority`` sentinels name, or None."""
    votes: dict[Addr, int] = {}
    for a in answers:
        if a.reachable and a.leader is not None:
            votes[a.leader] = votes.get(a.leader, 0) + 1
    return next((addr for addr, n in votes.items() if n >= majority), None)


def observe(
    cluster: Cluster,
    answers: Sequence[SentinelAnswer],
    pods: Sequence[PodView],
    previous_status: Mapping[str, Any],
    now: dt.datetime,
    leader_info: Mapping[str, Any] | None = None,
    sync_lag_bytes: int = 0,
) -> Observation:
    """Everything Kubernetes should show about ``cluster`` given what its sentinels said. Pure."""
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    gen = cluster.generation
    prev_conditions = list(previous_status.get("conditions") or [])
    events: list[Event] = []
    reachable = [a for a in answers if a.reachable]

    leader_addr = agreed_leader(answers, cluster.majority)
    agreeing = [a for a in reachable if leader_addr is not None and a.leader == leader_addr]
    leader = pod_for_host(leader_addr[0], pods, cluster) if leader_addr else None

    failover = any(
        "failover_in_progress" in _flags(a.master) or "o_down" in _flags(a.master) or a.master.get("failover-state")
        for a in reachable
    )
    epoch = max(
        [_int(a.master.get("config-epoch")) for a in agreeing]
        + [_int(a.master.get("kvcluster-epoch"), -1) for a in agreeing]
        + [0]
    )

    # Replicas the agreeing sentinels see connected to the leader.
    healthy_replicas: set[str] = set()
    sentinel_offsets: dict[str, int] = {}
    for a in agreeing:
        for r in a.replicas:
            pod = pod_for_host(str(r.get("ip", "")), pods, cluster)
            if pod is None or (leader is not None and pod.name == leader.name):
                continue
            down = _flags(r) & {"s_down", "o_down", "disconnected"}
            if not down and r.get("master-link-status") == "ok":
                healthy_replicas.add(pod.name)
                sentinel_offsets[pod.name] = max(sentinel_offsets.get(pod.name, 0), _int(r.get("slave-repl-offset")))

    # Lag as the leader itself sees it (exact), else as the sentinels last saw it.
    leader_offset: int | None = None
    offsets: dict[str, int] = {}
    ack_age: dict[str, int] = {}
    if leader_info:
        leader_offset, lines = parse_replication_info(leader_info)
        for (host, _port), (state, offset, lag) in lines.items():
            pod = pod_for_host(host, pods, cluster)
            if pod is not None and state == "online":
                offsets[pod.name] = offset
                ack_age[pod.name] = lag
    replica_lag: dict[str, int] = {}
    for name in sorted(healthy_replicas):
        if leader_offset is not None and name in offsets:
            replica_lag[name] = max(0, leader_offset - offsets[name])
    synced = {
        name
        for name in healthy_replicas
        if name in replica_lag and replica_lag[name] <= sync_lag_bytes and ack_age.get(name, 0) <= LAGGING_SECONDS
    }
    if leader_info is None:  # no exact offsets: trust the sentinels' view of a connected replica
        synced = set(healthy_replicas)
    lagging = sorted(
        n for n in healthy_replicas if replica_lag.get(n, 0) > LAGGING_BYTES or ack_age.get(n, 0) > LAGGING_SECONDS
    )

    # Labels: only with an agreed leader that maps to a pod; otherwise leave them be.
    labels: dict[str, str | None] = {}
    if leader is not None:
        for pod in pods:
            want = "leader" if pod.name == leader.name else "replica" if pod.name in healthy_replicas else None
            if pod.role != want:
                labels[pod.name] = want

    # Events, on transitions against the previous status.
    prev_leader = previous_status.get("leader")
    status: dict[str, Any] = {}
    if leader is not None and prev_leader and prev_leader != leader.name:
        events.append(
            Event("Normal", "LeaderChanged", f"leader is now {leader.name} (was {prev_leader}), epoch {epoch}")
        )
        status["lastFailoverTime"] = stamp
    prev_failing = any(c.get("type") == "FailingOver" and c.get("status") == "True" for c in prev_conditions)
    if failover and not prev_failing:
        where = f" (leader was {prev_leader})" if prev_leader else ""
        events.append(Event("Warning", "FailoverStarted", f"the sentinels are failing over{where}"))
    prev_lagging = set(previous_status.get("laggingReplicas") or [])
    for name in lagging:
        if name not in prev_lagging:
            behind = replica_lag.get(name, 0)
            events.append(
                Event(
                    "Warning",
                    "ReplicaLagging",
                    f"{name} is {behind} bytes behind the leader ({ack_age.get(name, 0)} s)",
                )
            )
    quorum_ok = len(reachable) >= cluster.majority
    quorum_known_ok = previous_status.get("sentinelQuorum", "ok") == "ok"
    if not quorum_ok and quorum_known_ok:
        events.append(
            Event(
                "Warning",
                "QuorumLost",
                f"only {len(reachable)} of {cluster.sentinels} sentinels answer (a failover needs {cluster.majority})",
            )
        )

    # Status and conditions.
    node_pods = [p for p in pods if p.ordinal >= 0]
    in_topology = {leader.name} | healthy_replicas if leader is not None else set()
    ready_pods = sorted(p.name for p in node_pods if p.ready and p.name in in_topology)
    all_ready = leader is not None and len(ready_pods) >= cluster.replicas and not lagging and quorum_ok
    status.update(
        {
            "leader": leader.name if leader is not None else prev_leader,
            "leaderAddress": f"{leader_addr[0]}:{leader_addr[1]}"
            if leader_addr
            else previous_status.get("leaderAddress"),
            "epoch": epoch if agreeing else previous_status.get("epoch", 0),
            "replicas": cluster.replicas,
            "readyReplicas": len(ready_pods),
            "replicaLag": replica_lag,
            "laggingReplicas": lagging,
            "sentinelsReachable": len(reachable),
            "sentinelQuorum": "ok" if quorum_ok else "lost",
        }
    )
    problems: list[str] = []
    if not quorum_ok:
        problems.append(f"{len(reachable)}/{cluster.sentinels} sentinels reachable")
    elif leader_addr is None:
        problems.append("the sentinels do not agree on a leader")
    elif leader is None:
        problems.append(f"the leader {leader_addr[0]}:{leader_addr[1]} is not a pod of this cluster")
    if len(ready_pods) < cluster.replicas:
        problems.append(f"{len(ready_pods)}/{cluster.replicas} node pods ready and in sync")
    if lagging:
        problems.append("lagging: " + ", ".join(lagging))
    errors = [f"{a.sentinel}: {a.error}" for a in answers if a.error]
    conditions = [
        condition(
            "Ready",
            all_ready,
            "AllReplicasReady" if all_ready else "NotAllReplicasReady",
            "leader and all replicas ready" if all_ready else "; ".join(problems) or "not ready",
            stamp,
            prev_conditions,
            gen,
        ),
        condition(
            "Available",
            leader is not None,
            "LeaderElected" if leader is not None else "NoLeader",
            f"leader {leader.name} at epoch {epoch}" if leader is not None else "; ".join(problems) or "no leader",
            stamp,
            prev_conditions,
            gen,
        ),
        condition(
            "Degraded",
            bool(problems),
            "Degraded" if problems else "Healthy",
            "; ".join(problems + errors[:3]) if problems else "",
            stamp,
            prev_conditions,
            gen,
        ),
        condition(
            "FailingOver",
            failover,
            "FailoverInProgress" if failover else "NoFailover",
            "the sentinels report the leader down or a failover in progress" if failover else "",
            stamp,
            prev_conditions,
            gen,
        ),
    ]
    status["conditions"] = merge_conditions(prev_conditions, conditions)
    return Observation(
        labels=labels,
        status=status,
        events=events,
        leader_pod=leader.name if leader is not None else None,
        leader_addr=leader_addr,
        failover_in_progress=failover,
        replica_offsets=offsets,
        leader_offset=leader_offset,
        synced_replicas=synced,
    )


def phase(conditions: Sequence[Mapping[str, Any]]) -> str:
    """One word for ``kubectl get kvc``: Pending, Running, Degraded, FailingOver, Upgrading."""
    state = {c.get("type"): c.get("status") for c in conditions}
    if state.get("FailingOver") == "True":
        return "FailingOver"
    if state.get("Upgrading") == "True":
        return "Upgrading"
    if state.get("Ready") == "True":
        return "Running"
    if state.get("Available") == "True":
        return "Degraded"
    return "Pending"


# -- the I/O half -------------------------------------------------------------------------------


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {_decode(k): _decode(v) for k, v in value.items()}
    return value


def _pairs(reply: Any) -> dict[str, str]:
    """A sentinel's instance reply (a flat list in RESP2, a map in RESP3) as a dict of strings."""
    reply = _decode(reply)
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}


def _client(host: str, port: int, password: str | None, timeout: float) -> aioredis.Redis:
    """One attempt per call, no retries: the next observation is the retry."""
    return aioredis.Redis(
        host=host,
        port=port,
        password=password or None,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


async def ask_sentinel(address: str, group: str, password: str | None, timeout: float = 1.0) -> SentinelAnswer:
    host, _, port = address.rpartition(":")
    client = _client(host, int(port), password, timeout)
    try:
        # execute_command with raw replies: redis-py's sentinel parsers drop fields we need.
        addr = _decode(await client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", group))
        master = _pairs(await client.execute_command("SENTINEL", "MASTER", group))
        replicas = [_pairs(r) for r in await client.execute_command("SENTINEL", "REPLICAS", group)]
        sentinels = [_pairs(s) for s in await client.execute_command("SENTINEL", "SENTINELS", group)]
    except Exception as e:  # unreachable, timed out, NOAUTH, "No such master with that name"
        return SentinelAnswer(sentinel=address, error=f"{type(e).__name__}: {e}"[:200])
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
    leader = (str(addr[0]), int(addr[1])) if addr else None
    return SentinelAnswer(address, leader=leader, master=master, replicas=replicas, sentinels=sentinels)


async def query_sentinels(
    addresses: Sequence[str], group: str, password: str | None, timeout: float = 1.0
) -> list[SentinelAnswer]:
    return list(await asyncio.gather(*(ask_sentinel(a, group, password, timeout) for a in addresses)))


async def leader_replication(addr: Addr, password: str | None, timeout: float = 1.0) -> dict[str, Any] | None:
    """The leader's ``INFO replication`` (a read; the operator never writes to a node), None if unreachable."""
    client = _client(addr[0], addr[1], password, timeout)
    try:
        info = await client.info("replication")
        return dict(info) if info.get("role") == "master" else None
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
