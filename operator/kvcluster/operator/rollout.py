"""The rolling-upgrade and scaling planner: the next single safe action, from what is observed. Pure.

Rules (the order is the design):

1. A step in progress (a pod deleted, a failover asked for, a scale-down by one) must complete before
   anything else happens: the pod is back (a new pod object), Ready, and in sync with the leader; the
   sentinels name a new leader; the removed pod is gone. Past its deadline the rollout *pauses*: the
   planner reports why (condition Upgrading=False, reason RolloutPaused, and an Event) and takes no
   further action while the step stays incomplete; if the step completes later the rollout resumes.
2. No action while the cluster is not steady: every node pod present and Ready, the sentinels agreed on
   a leader, no failover in progress, every replica connected and caught up. So at most one pod is
   ever down because of us, and never one while another is recovering.
3. Scaling down removes the highest ordinal, one at a time. If that pod is the leader, first a planned
   ``SENTINEL FAILOVER``; the sentinels promote the best replica, and since higher ordinals are gone
   first, every other pod is a survivor.
4. Upgrades (a pod whose ``kvcluster.io/revision`` differs from the StatefulSet's): replicas first, one
   at a time, highest ordinal first; then a planned failover (every replica is upgraded by then, so the
   sentinels can only promote an upgraded one); then the old leader, now a replica, is deleted like any
   other. The leader is never deleted while it leads — except in a one-node cluster, where there is no
   one to hand over to (the restart is unavoidable and the reason says so).

Scaling up needs no plan: the handler raises the StatefulSet's replicas at once, and a new pod joins the
``-replicas`` Service only when the sentinels see it synced (observer.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kvcluster.operator.observer import PodView

ActionKind = Literal["idle", "wait", "pause", "delete-pod", "failover", "scale-down"]


@dataclass(frozen=True)
class Policy:
    pod_deadline: float = 600.0  # seconds for a deleted pod to come back Ready and synced
    failover_deadline: float = 120.0  # seconds for the sentinels to name a new leader
    scale_deadline: float = 300.0  # seconds for a removed pod to go


@dataclass(frozen=True)
class View:
    """What the observer established this round (see observer.Observation)."""

    leader: str | None  # the agreed leader's pod
    synced_replicas: frozenset[str] = frozenset()
    failover_in_progress: bool = False


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    target: str = ""  # the pod (delete-pod, failover: the leader being handed over)
    replicas: int = 0  # scale-down: the StatefulSet's new replicas
    reason: str = ""
    step: dict[str, Any] | None = None  # the step record to persist when this action is executed
    done: str = ""  # a step that just completed (for an Event)

    @property
    def acts(self) -> bool:
        return self.kind in ("delete-pod", "failover", "scale-down")


@dataclass(frozen=True)
class Inputs:
    revision: str  # the node StatefulSet's kvcluster.io/revision
    desired_replicas: int  # spec.replicas
    current_replicas: int  # the node StatefulSet's spec.replicas now
    pods: Sequence[PodView]
    view: View
    now: float  # seconds (wall clock: steps are persisted in the status and survive restarts)
    step: Mapping[str, Any] | None = None  # the step in progress (status.rollout.step), if any
    policy: Policy = field(default_factory=Policy)
    statefulset_name: str = ""


def _pod(pods: Sequence[PodView], name: str) -> PodView | None:
    return next((p for p in pods if p.name == name), None)


def step_state(inputs: Inputs) -> tuple[bool, str, float]:
    """(complete, what it waits for, its deadline) for the step in progress."""
    step = inputs.step or {}
    kind = step.get("kind")
    view = inputs.view
    policy = inputs.policy
    if kind == "delete-pod":
        target = step.get("target", "")
        pod = _pod(inputs.pods, target)
        if pod is None or pod.deleting or (step.get("uid") and pod.uid == step.get("uid")):
            return False, f"{target} to be recreated", policy.pod_deadline
        if not pod.ready:
            return False, f"{target} to become Ready", policy.pod_deadline
        if view.leader != target and target not in view.synced_replicas:
            return False, f"{target} to sync with the leader", policy.pod_deadline
        return True, "", policy.pod_deadline
    if kind == "failover":
        old = step.get("target", "")
        if view.failover_in_progress or view.leader is None:
            return False, "the sentinels to finish the failover", policy.failover_deadline
        if view.leader == old:
            return False, f"the sentinels to hand leadership over from {old}", policy.failover_deadline
        return True, "", policy.failover_deadline
    if kind == "scale-down":
        replicas = int(step.get("replicas", 0))
        left = [p.name for p in inputs.pods if p.ordinal >= replicas]
        if left:
            return False, f"{', '.join(sorted(left))} to be removed", policy.scale_deadline
        return True, "", policy.scale_deadline
    return True, "", 0.0  # unknown step kinds (an older operator's) are treated as done


def steady(inputs: Inputs, replicas: int) -> str:
    """Why the cluster is not steady enough for the next step ("" when it is)."""
    view = inputs.view
    if view.failover_in_progress:
        return "a failover is in progress"
    if view.leader is None:
        return "the sentinels have not agreed on a leader"
    by_ordinal = {p.ordinal: p for p in inputs.pods}
    for ordinal in range(replicas):
        pod = by_ordinal.get(ordinal)
        name = f"{inputs.statefulset_name}-{ordinal}" if inputs.statefulset_name else f"pod {ordinal}"
        if pod is None:
            return f"{name} does not exist"
        if pod.deleting or not pod.ready:
            return f"{pod.name} is not Ready"
        if pod.name != view.leader and pod.name not in view.synced_replicas:
            return f"{pod.name} is not in sync with the leader"
    return ""


def plan(inputs: Inputs) -> Action:
    """The next single action. Never two pods down, never the leader first, one step at a time."""
    done = ""
    if inputs.step:
        complete, waiting_for, deadline = step_state(inputs)
        if not complete:
            started = float(inputs.step.get("startedAt", inputs.now))
            elapsed = inputs.now - started
            if elapsed > deadline:
                return Action(
                    "pause",
                    target=str(inputs.step.get("target", "")),
                    reason=(
                        f"step {inputs.step.get('kind')} {inputs.step.get('target', '')} has not completed within "
                        f"{deadline:.0f} s: waiting for {waiting_for}"
                    ),
                    step=dict(inputs.step),
                )
            return Action("wait", reason=f"waiting for {waiting_for}", step=dict(inputs.step))
        done = f"{inputs.step.get('kind')} {inputs.step.get('target', inputs.step.get('replicas', ''))}".strip()

    current = inputs.current_replicas
    wanted = max(1, inputs.desired_replicas)
    scale_down = current > wanted
    outdated = sorted(
        (p for p in inputs.pods if p.ordinal < current and p.revision != inputs.revision),
        key=lambda p: -p.ordinal,
    )
    if not scale_down and not outdated:
        return Action("idle", done=done)

    not_steady = steady(inputs, current)
    if not_steady:
        return Action("wait", reason=f"waiting: {not_steady}", done=done)
    leader = inputs.view.leader
    assert leader is not None  # steady() checked it

    def step(kind: str, **extra: Any) -> dict[str, Any]:
        # Every step has every key: a merge patch of the status then replaces a step whole.
        record = {"kind": kind, "target": "", "uid": "", "replicas": 0, "startedAt": inputs.now}
        return {**record, "revision": inputs.revision, **extra}

    if scale_down:
        doomed = next((p for p in inputs.pods if p.ordinal == current - 1), None)
        if doomed is not None and doomed.name == leader:
            if current == 1:  # cannot happen (wanted >= 1), but never fail over to no one
                return Action("idle", done=done)
            return Action(
                "failover",
                target=leader,
                reason=f"scaling down to {wanted}: {leader} leads and is removed, so it hands over first",
                step=step("failover", target=leader),
                done=done,
            )
        return Action(
            "scale-down",
            replicas=current - 1,
            reason=f"scaling down to {wanted}: removing {doomed.name if doomed else f'ordinal {current - 1}'}",
            step=step("scale-down", replicas=current - 1),
            done=done,
        )

    replicas = [p for p in outdated if p.name != leader]
    if replicas:
        pod = replicas[0]
        return Action(
            "delete-pod",
            target=pod.name,
            reason=f"upgrading replica {pod.name} to revision {inputs.revision}",
            step=step("delete-pod", target=pod.name, uid=pod.uid),
            done=done,
        )
    # Only the leader is outdated now.
    if current == 1:
        return Action(
            "delete-pod",
            target=leader,
            reason=f"upgrading the only node {leader} (no replica to hand over to: a short outage)",
            step=step("delete-pod", target=leader, uid=_uid(inputs.pods, leader)),
            done=done,
        )
    return Action(
        "failover",
        target=leader,
        reason=f"every replica runs revision {inputs.revision}: {leader} hands leadership over before it restarts",
        step=step("failover", target=leader),
        done=done,
    )


def _uid(pods: Sequence[PodView], name: str) -> str:
    pod = _pod(pods, name)
    return pod.uid if pod is not None else ""
