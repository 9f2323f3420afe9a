"""When ``kvcluster up`` restarts a child, and in which order it stops them. Pure: the clock is an argument.

Restarts follow a kubelet's crash-loop back-off: a child that exits is started again after
``initial`` seconds, doubling with every exit that follows a short run, up to ``maximum``; a child
that ran ``reset_after`` seconds before exiting starts over at ``initial``.

One rule is ours: a node that dies while the sentinels still name it the leader is held back until
they have promoted someone else (or ``leader_hold`` seconds passed, for a cluster with no replica to
promote). Coming back before the failover would make it the leader again with whatever its disk had,
so holding it is what lets a killed leader rejoin as a replica, like a pod that is rescheduled
after the sentinels moved on.

Stopping goes replicas, then the leader, then the sentinels: the leader outlives its replicas so it
ends with the most complete data, and once the replicas are gone the sentinels have nobody to promote,
so stopping the leader cannot start a failover; the sentinels go last so they record the final state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kvcluster.local.plan import ChildSpec


@dataclass(frozen=True)
class RestartPolicy:
    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0
    reset_after: float = 60.0
    leader_hold: float = 30.0

    def delay(self, failures: int) -> float:
        """Seconds before restart number ``failures`` of a crash loop (1 = the first exit)."""
        return min(self.maximum, self.initial * self.factor ** max(0, failures - 1))


@dataclass(frozen=True)
class ChildState:
    """What the supervisor knows of one child's life."""

    running: bool = False
    started_at: float | None = None
    exited_at: float | None = None
    exit_code: int | None = None
    starts: int = 0
    failures: int = 0  # consecutive exits after short runs
    restart_at: float | None = None  # not before this time

    @property
    def restarts(self) -> int:
        return max(0, self.starts - 1)


def started(state: ChildState, now: float) -> ChildState:
    return dataclasses.replace(state, running=True, started_at=now, starts=state.starts + 1, restart_at=None)


def exited(state: ChildState, now: float, code: int | None, policy: RestartPolicy) -> ChildState:
    """The child exited (any code: a supervisor keeps its children running). Schedules the restart."""
    ran = now - state.started_at if state.started_at is not None else 0.0
    failures = 1 if ran >= policy.reset_after else state.failures + 1
    return ChildState(
        running=False,
        started_at=state.started_at,
        exited_at=now,
        exit_code=code,
        starts=state.starts,
        failures=failures,
        restart_at=now + policy.delay(failures),
    )


def restart_due(spec: ChildSpec, state: ChildState, now: float, leader_port: int | None, policy: RestartPolicy) -> bool:
    """Whether to start this exited child now. ``leader_port``: the leader the sentinels name (None: unknown)."""
    if state.running or state.restart_at is None or now < state.restart_at:
        return False
    if spec.kind == "node" and leader_port == spec.port and state.exited_at is not None:
        return now >= state.exited_at + policy.leader_hold  # wait for the failover
    return True


def waiting_reason(
    spec: ChildSpec, state: ChildState, now: float, leader_port: int | None, policy: RestartPolicy
) -> str:
    """For the status view: why an exited child is not running yet."""
    if state.running or state.restart_at is None:
        return ""
    if spec.kind == "node" and leader_port == spec.port and state.exited_at is not None:
        left = state.exited_at + policy.leader_hold - now
        if left > 0 and now >= state.restart_at:
            return f"restart after failover (≤{left:.0f}s)"
    left = max(0.0, state.restart_at - now)
    return f"restart in {left:.0f}s"


def stop_phases(specs: Iterable[ChildSpec], leader_port: int | None) -> list[list[ChildSpec]]:
    """The shutdown order: [replicas], [leader], [sentinels]; empty phases left out.

    With the leader unknown every node is stopped in the first phase (nothing better to go by).
    """
    specs = list(specs)
    nodes = [s for s in specs if s.kind == "node"]
    leader = [s for s in nodes if s.port == leader_port]
    replicas = [s for s in nodes if s.port != leader_port]
    sentinels = [s for s in specs if s.kind == "sentinel"]
    return [phase for phase in (replicas, leader, sentinels) if phase]


def saved_leader(state: str, group: str) -> int | None:
    """The leader port a sentinel's saved state names for ``group``: its ``sentinel monitor`` line
    (Redis's sentinel.conf syntax, which the sentinel rewrites with the current leader)."""
    for line in state.splitlines():
        words = line.split()
        if len(words) >= 5 and words[:3] == ["sentinel", "monitor", group] and words[4].isdigit():
            return int(words[4])
    return None


def initial_leader_port(node_ports: list[int], named: Mapping[int, int | None]) -> int:
    """The node to start as leader: the one most sentinels name in their saved state, else the first.

    ``named`` maps each sentinel port to the leader port its state names (None: no state).
    Ties go to the lower port; a name outside ``node_ports`` is ignored.
    """
    counts: dict[int, int] = {}
    for port in named.values():
        if port is not None and port in node_ports:
            counts[port] = counts.get(port, 0) + 1
    if counts:
        return max(counts, key=lambda p: (counts[p], -p))
    return node_ports[0]
