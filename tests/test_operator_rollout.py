"""Rolling upgrades and scaling: the pure planner, then the operator driving real processes through kmock.

The kopf test plays the StatefulSet controller (kmock runs no controllers): when the operator deletes a
node pod, the test restarts that pod's real ``kvcluster node`` process (as a replica of whoever the
sentinels say leads, as the pod entrypoint's leader discovery would) and recreates the pod at the
StatefulSet's new revision. It checks the order (replicas first, highest ordinal first, a planned
failover, then the old leader), that each step waited for the previous pod to be back and in sync, and
that no two pods were ever down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kvcluster.operator.observer import PodView
from kvcluster.operator.rollout import Inputs, Policy, View, plan
from operator_harness import (
    CR,
    LoopbackCluster,
    LoopbackNode,
    VersionedEmulator,
    create_cr,
    create_pod,
    declare,
    events,
    eventually,
    live,
    patch_cr,
    pod_body,
    running_operator,
)

NEW, OLD = "rev-new", "rev-old"
T0 = 1_000_000.0


def pod(i: int, revision: str = OLD, ready: bool = True, uid: str = "", deleting: bool = False) -> PodView:
    return PodView(
        name=f"demo-node-{i}", ordinal=i, ready=ready, revision=revision, uid=uid or f"u{i}", deleting=deleting
    )


def inputs(
    pods: list[PodView],
    leader: str | None = "demo-node-0",
    synced: set[str] | None = None,
    *,
    desired: int = 3,
    current: int = 3,
    step: dict[str, Any] | None = None,
    now: float = T0,
    failover: bool = False,
) -> Inputs:
    if synced is None:
        synced = {p.name for p in pods if p.name != leader and p.ready}
    return Inputs(
        revision=NEW,
        desired_replicas=desired,
        current_replicas=current,
        pods=pods,
        view=View(leader=leader, synced_replicas=frozenset(synced), failover_in_progress=failover),
        now=now,
        step=step,
        policy=Policy(pod_deadline=60, failover_deadline=30, scale_deadline=40),
        statefulset_name="demo-node",
    )


# -- upgrades ---------------------------------------------------------------------------------------


def test_nothing_to_do_when_every_pod_is_current() -> None:
    action = plan(inputs([pod(0, NEW), pod(1, NEW), pod(2, NEW)]))
    assert action.kind == "idle" and not action.acts


def test_replicas_first_highest_ordinal_first() -> None:
    action = plan(inputs([pod(0), pod(1), pod(2)]))
    assert (action.kind, action.target) == ("delete-pod", "demo-node-2")
    assert action.step is not None and action.step["uid"] == "u2" and action.step["startedAt"] == T0
    action = plan(inputs([pod(0), pod(1), pod(2, NEW)]))
    assert (action.kind, action.target) == ("delete-pod", "demo-node-1")


def test_the_leader_is_never_deleted_first_even_at_the_highest_ordinal() -> None:
    action = plan(inputs([pod(0), pod(1), pod(2)], leader="demo-node-2"))
    assert (action.kind, action.target) == ("delete-pod", "demo-node-1")
    action = plan(inputs([pod(0), pod(1, NEW), pod(2)], leader="demo-node-2"))
    assert (action.kind, action.target) == ("delete-pod", "demo-node-0")


def test_leader_last_after_a_planned_failover() -> None:
    action = plan(inputs([pod(0), pod(1, NEW), pod(2, NEW)]))
    assert (action.kind, action.target) == ("failover", "demo-node-0")
    assert "hands leadership over" in action.reason
    # Failing over: wait. The sentinels named demo-node-2: the old leader, a replica now, goes next.
    step = action.step
    during = plan(inputs([pod(0), pod(1, NEW), pod(2, NEW)], step=step, failover=True, now=T0 + 2))
    assert during.kind == "wait" and "finish the failover" in during.reason
    after = plan(inputs([pod(0), pod(1, NEW), pod(2, NEW)], leader="demo-node-2", step=step, now=T0 + 5))
    assert (after.kind, after.target) == ("delete-pod", "demo-node-0")
    assert after.done == "failover demo-node-0"


def test_single_node_cluster_restarts_its_only_node() -> None:
    action = plan(inputs([pod(0)], desired=1, current=1))
    assert (action.kind, action.target) == ("delete-pod", "demo-node-0")
    assert "short outage" in action.reason


def test_each_step_waits_for_the_pod_to_come_back_ready_and_synced() -> None:
    step = plan(inputs([pod(0), pod(1), pod(2)])).step
    # Still the old pod object (same uid): not recreated yet.
    gone = plan(inputs([pod(0), pod(1), pod(2, deleting=True)], step=step, now=T0 + 1))
    assert gone.kind == "wait" and "demo-node-2 to be recreated" in gone.reason
    same_uid = plan(inputs([pod(0), pod(1), pod(2)], step=step, now=T0 + 1))
    assert same_uid.kind == "wait"
    missing = plan(inputs([pod(0), pod(1)], step=step, now=T0 + 2))
    assert missing.kind == "wait"
    not_ready = plan(inputs([pod(0), pod(1), pod(2, NEW, ready=False, uid="v2")], step=step, now=T0 + 3))
    assert not_ready.kind == "wait" and "become Ready" in not_ready.reason
    syncing = [pod(0), pod(1), pod(2, NEW, uid="v2")]
    not_synced = plan(inputs(syncing, synced={"demo-node-1"}, step=step, now=T0 + 4))
    assert not_synced.kind == "wait" and "sync with the leader" in not_synced.reason
    done = plan(inputs(syncing, step=step, now=T0 + 5))
    assert (done.kind, done.target, done.done) == ("delete-pod", "demo-node-1", "delete-pod demo-node-2")


def test_never_two_pods_down() -> None:
    """Whatever else is going on, no deletion while any other node pod is missing, unready or unsynced."""
    unhealthy = [
        [pod(0), pod(1, ready=False), pod(2)],
        [pod(0), pod(2)],
        [pod(0), pod(1, deleting=True), pod(2)],
    ]
    for pods in unhealthy:
        action = plan(inputs(pods))
        assert action.kind == "wait", (pods, action)
    lagging = plan(inputs([pod(0), pod(1), pod(2)], synced={"demo-node-2"}))
    assert lagging.kind == "wait" and "demo-node-1 is not in sync" in lagging.reason
    assert plan(inputs([pod(0), pod(1), pod(2)], failover=True)).kind == "wait"
    assert plan(inputs([pod(0), pod(1), pod(2)], leader=None)).kind == "wait"
    # The leader being a lost pod: nothing happens either.
    assert plan(inputs([pod(1), pod(2)], leader="demo-node-1")).kind == "wait"


def test_never_two_down_over_random_observations() -> None:
    """Every action the planner takes starts from a cluster with all pods present, Ready and synced."""
    import random

    rng = random.Random(8)
    for _ in range(3000):
        n = rng.randint(1, 5)
        pods = [
            pod(i, rng.choice([OLD, NEW]), ready=rng.random() > 0.2, deleting=rng.random() < 0.1)
            for i in range(n)
            if rng.random() > 0.1
        ]
        leader = rng.choice([p.name for p in pods] + [None]) if pods else None
        synced = {p.name for p in pods if rng.random() > 0.2}
        current = n
        desired = rng.randint(1, n + 1)
        action = plan(inputs(pods, leader, synced, desired=desired, current=current, failover=rng.random() < 0.1))
        if action.acts:
            assert len(pods) == current and leader is not None
            assert all(p.ready and not p.deleting for p in pods), action
            assert all(p.name == leader or p.name in synced for p in pods), action
        if action.kind == "delete-pod" and current > 1:
            assert action.target != leader, action  # the leader hands over first
        if action.kind == "failover":
            assert action.target == leader


def test_deadline_pauses_with_a_reason_and_resumes_when_the_step_completes() -> None:
    step = plan(inputs([pod(0), pod(1), pod(2)])).step
    stuck = [pod(0), pod(1), pod(2, NEW, ready=False, uid="v2")]
    assert plan(inputs(stuck, step=step, now=T0 + 59)).kind == "wait"
    paused = plan(inputs(stuck, step=step, now=T0 + 61))
    assert paused.kind == "pause" and not paused.acts
    assert "not completed within 60 s" in paused.reason and "demo-node-2 to become Ready" in paused.reason
    assert paused.step == step  # the step stays recorded
    resumed = plan(inputs([pod(0), pod(1), pod(2, NEW, uid="v2")], step=step, now=T0 + 300))
    assert (resumed.kind, resumed.target) == ("delete-pod", "demo-node-1")


def test_failover_deadline() -> None:
    step = plan(inputs([pod(0), pod(1, NEW), pod(2, NEW)])).step
    paused = plan(inputs([pod(0), pod(1, NEW), pod(2, NEW)], step=step, now=T0 + 31))
    assert paused.kind == "pause" and "hand leadership over from demo-node-0" in paused.reason


# -- scaling ----------------------------------------------------------------------------------------


def test_scale_down_removes_the_highest_ordinal_one_at_a_time() -> None:
    pods = [pod(i, NEW) for i in range(5)]
    action = plan(inputs(pods, desired=3, current=5))
    assert (action.kind, action.replicas) == ("scale-down", 4)
    waiting = plan(inputs(pods, desired=3, current=4, step=action.step, now=T0 + 1))
    assert waiting.kind == "wait" and "demo-node-4 to be removed" in waiting.reason
    nxt = plan(inputs(pods[:4], desired=3, current=4, step=action.step, now=T0 + 2))
    assert (nxt.kind, nxt.replicas) == ("scale-down", 3)
    assert plan(inputs(pods[:3], desired=3, current=3, step=nxt.step, now=T0 + 3)).kind == "idle"


def test_scale_down_fails_over_first_when_the_leader_goes() -> None:
    pods = [pod(i, NEW) for i in range(3)]
    action = plan(inputs(pods, leader="demo-node-2", desired=2, current=3))
    assert (action.kind, action.target) == ("failover", "demo-node-2")
    after = plan(inputs(pods, leader="demo-node-0", desired=2, current=3, step=action.step, now=T0 + 3))
    assert (after.kind, after.replicas) == ("scale-down", 2)
    # 3 -> 1 with the leader at 1: ordinal 2 goes first (a replica), then the failover, then 1.
    first = plan(inputs(pods, leader="demo-node-1", desired=1, current=3))
    assert (first.kind, first.replicas) == ("scale-down", 2)
    second = plan(inputs(pods[:2], leader="demo-node-1", desired=1, current=2, step=first.step, now=T0 + 1))
    assert (second.kind, second.target) == ("failover", "demo-node-1")


def test_never_below_one() -> None:
    assert plan(inputs([pod(0, NEW)], desired=0, current=1)).kind == "idle"


def test_scale_down_before_upgrading_and_waits_for_health() -> None:
    pods = [pod(0), pod(1), pod(2), pod(3)]
    assert plan(inputs(pods, desired=3, current=4)).kind == "scale-down"
    assert plan(inputs(pods[:3] + [replace(pods[3], ready=False)], desired=3, current=4)).kind == "wait"


# -- kopf + kmock + real processes: a rolling upgrade and a scale-down ------------------------------


class StatefulSetController:
    """Plays the StatefulSet controller and the kubelet for the node pods of ``demo``, on real processes."""

    def __init__(self, kmock: Any, cluster: LoopbackCluster):
        self.kmock = kmock
        self.cluster = cluster
        self.generation = 0
        self.log: list[tuple[float, str, str]] = []  # (time, what, pod)
        self.down_at_once = 0
        self.hold: dict[str, float] = {}  # pod -> seconds to keep it down (to prove the operator waits)
        self.stuck: set[str] = set()  # pods never brought back (to trigger the rollout deadline)
        self.problems: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def pod_name(self, i: int) -> str:
        return f"demo-node-{i}"

    async def create_pods(self) -> None:
        revision = self.revision()
        for i, node in enumerate(self.cluster.nodes):
            await create_pod(self.kmock, pod_body(self.pod_name(i), "demo", node.host, revision, uid=f"pod-{i}-0"))

    def revision(self) -> str:
        sts = live(self.kmock, "apps/v1/statefulsets", "demo-node")
        assert sts is not None
        return sts["metadata"]["annotations"]["kvcluster.io/revision"]

    def replicas(self) -> int:
        sts = live(self.kmock, "apps/v1/statefulsets", "demo-node")
        return int(sts["spec"]["replicas"]) if sts else 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            replicas = self.replicas()
            missing = [i for i in range(len(self.cluster.nodes)) if not live(self.kmock, "v1/pods", self.pod_name(i))]
            self.down_at_once = max(self.down_at_once, len([i for i in missing if i < replicas]))
            for i in missing:
                name = self.pod_name(i)
                gone = ("deleted", "scaled away")
                if not any(what in gone and p == name and t > self._recreated_at(name) for t, what, p in self.log):
                    self.log.append((time.monotonic(), "deleted", name))
                    leader_host = (await asyncio.to_thread(self.cluster.leader))[0]
                    self.log.append((time.monotonic(), f"leader={leader_host}", name))
                    await asyncio.to_thread(self.cluster.nodes[i].stop)
                if i >= replicas:
                    continue  # scaled away: stays gone
                if name in self.stuck:
                    continue
                deleted_at = max(t for t, what, p in self.log if what == "deleted" and p == name)
                if time.monotonic() - deleted_at < self.hold.get(name, 0):
                    continue
                await asyncio.to_thread(self._restart, i)
                self.generation += 1
                body = pod_body(
                    name, "demo", self.cluster.nodes[i].host, self.revision(), uid=f"pod-{i}-{self.generation}"
                )
                await create_pod(self.kmock, body)
                self.log.append((time.monotonic(), "recreated", name))
            # Scaling up is not exercised here; scaled-down pods are removed like the controller does.
            for i in range(replicas, len(self.cluster.nodes)):
                if live(self.kmock, "v1/pods", self.pod_name(i)):
                    async with self.kmock.delete(f"/api/v1/namespaces/default/pods/{self.pod_name(i)}") as resp:
                        assert resp.status < 300
                    self.log.append((time.monotonic(), "scaled away", self.pod_name(i)))
                    await asyncio.to_thread(self.cluster.nodes[i].stop)
            await asyncio.sleep(0.1)

    def _recreated_at(self, name: str) -> float:
        return max([t for t, what, p in self.log if what == "recreated" and p == name] or [0.0])

    def _restart(self, i: int) -> None:
        """The pod's container starts again: leader discovery makes it a replica of the current leader."""
        old = self.cluster.nodes[i]
        leader = self.cluster.leader()
        replicaof = leader if leader[0] != old.host else None
        node = LoopbackNode(old.process.dir, old.host, old.port, replicaof=replicaof)
        node.start()
        self.cluster.nodes[i] = node

    def deletions(self) -> list[str]:
        return [p for _, what, p in self.log if what == "deleted"]

    def leader_when_deleted(self, name: str) -> str:
        entries = [what for _, what, p in self.log if p == name and what.startswith("leader=")]
        return entries[-1].split("=", 1)[1]


@pytest.mark.kmock(cls=VersionedEmulator)
async def test_rolling_upgrade_and_scale_down_in_order(kmock: Any, tmp_path: Path) -> None:
    declare(kmock)
    cluster = await asyncio.to_thread(LoopbackCluster(tmp_path).start)
    controller = StatefulSetController(kmock, cluster)
    policy = Policy(pod_deadline=12, failover_deadline=30, scale_deadline=30)
    try:
        async with running_operator(kmock, interval=0.5, sentinels=cluster.sentinel_addresses, policy=policy):
            await create_cr(kmock, "demo", {"replicas": 3, "sentinels": 3, "auth": {"enabled": False}})
            await eventually(lambda: live(kmock, "apps/v1/statefulsets", "demo-node"), what="the StatefulSet")
            await controller.create_pods()
            controller.start()
            status = await eventually(
                lambda: (s := live(kmock, CR, "demo")["status"]).get("phase") == "Running" and s, 30, what="Running"
            )
            first_revision = controller.revision()
            assert status["rollout"]["revision"] == first_revision

            # The upgrade: a new version changes the pod template, hence the revision.
            controller.hold["demo-node-2"] = 3.0  # the first pod takes a while: nothing else may move
            await patch_cr(kmock, "demo", {"metadata": {"generation": 2}, "spec": {"version": "0.2.0"}})
            await eventually(lambda: controller.revision() != first_revision, 20, what="the new revision")
            revision = controller.revision()

            def upgraded() -> bool:
                pods = [live(kmock, "v1/pods", f"demo-node-{i}") for i in range(3)]
                current = all(p and p["metadata"]["annotations"]["kvcluster.io/revision"] == revision for p in pods)
                s = live(kmock, CR, "demo")["status"]
                return current and s.get("phase") == "Running"

            await eventually(upgraded, 90, what="every pod upgraded and the cluster Running", interval=0.25)
            assert controller.deletions() == ["demo-node-2", "demo-node-1", "demo-node-0"]
            assert controller.down_at_once == 1
            # The old leader went last, and only after the planned failover had moved leadership.
            assert controller.leader_when_deleted("demo-node-2") == "127.0.0.2"
            assert controller.leader_when_deleted("demo-node-1") == "127.0.0.2"
            assert controller.leader_when_deleted("demo-node-0") != "127.0.0.2"
            assert events(kmock, "PlannedFailover")
            reasons = [e["message"] for e in events(kmock, "RollingUpgrade")]
            assert [m.split(":")[0] for m in reasons] == [
                "deleting pod demo-node-2",
                "deleting pod demo-node-1",
                "deleting pod demo-node-0",
            ]
            # demo-node-1 was deleted only after demo-node-2 was back (held down 3 s).
            times = {(what, p): t for t, what, p in controller.log}
            assert times[("deleted", "demo-node-1")] > times[("recreated", "demo-node-2")]
            assert times[("deleted", "demo-node-0")] > times[("recreated", "demo-node-1")]
            status = live(kmock, CR, "demo")["status"]
            assert status["rollout"].get("step") is None
            assert next(c for c in status["conditions"] if c["type"] == "Upgrading")["status"] == "False"

            # Scale down to 2: ordinal 2 goes; if it leads, the sentinels hand over first.
            await patch_cr(kmock, "demo", {"metadata": {"generation": 3}, "spec": {"replicas": 2}})
            await eventually(lambda: controller.replicas() == 2, 60, what="the StatefulSet scaled to 2")
            leader_host = (await asyncio.to_thread(cluster.leader))[0]
            assert leader_host != "127.0.0.4"  # demo-node-2's address
            await eventually(lambda: live(kmock, "v1/pods", "demo-node-2") is None, 10, what="demo-node-2 removed")

            # A step that never completes pauses the rollout with a reason (deadline 12 s here): the
            # replica (deleted first) never comes back.
            leader_host = (await asyncio.to_thread(cluster.leader))[0]
            replica = next(f"demo-node-{i}" for i in range(2) if cluster.nodes[i].host != leader_host)
            controller.stuck.add(replica)
            before = len(controller.deletions())
            await patch_cr(kmock, "demo", {"metadata": {"generation": 4}, "spec": {"version": "0.3.0"}})

            def paused() -> dict[str, Any] | None:
                conditions = live(kmock, CR, "demo")["status"].get("conditions", [])
                up = next((c for c in conditions if c["type"] == "Upgrading"), {})
                return up if up.get("reason") == "RolloutPaused" else None

            condition = await eventually(paused, 60, what="the rollout to pause")
            assert condition["status"] == "True" and replica in condition["message"]
            assert "within 12 s" in condition["message"]
            await eventually(lambda: events(kmock, "RolloutPaused"), 10, what="the RolloutPaused Event")
            assert controller.deletions()[before:] == [replica]  # and nothing after it: paused
    except BaseException:
        print("controller log:", controller.log)
        print(cluster.logs())
        raise
    finally:
        await controller.stop()
        await asyncio.to_thread(cluster.stop)
