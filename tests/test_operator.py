"""The operator: the pure observer, and kopf really running against kmock (a Kubernetes API emulator).

kopf tests start the real operator (our registry, kopf.operator) in-process against kmock; the failover
test also runs 3 real ``kvcluster node`` and 3 ``kvcluster sentinel`` processes on loopback addresses
(127.0.0.2-4, as if each pod had its own IP) and kills the leader with SIGKILL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import KVCLUSTER
from kvcluster.operator import observer
from kvcluster.operator.desired import desired
from kvcluster.operator.handlers import OperatorOptions, pvc_names, sentinel_addresses, status_delta
from kvcluster.operator.observer import Cluster, PodView, SentinelAnswer, observe
from operator_harness import (
    CR,
    NS,
    LoopbackCluster,
    VersionedEmulator,
    children,
    create_cr,
    create_pod,
    declare,
    delete_cr,
    events,
    eventually,
    live,
    patch_cr,
    pod_body,
    running_operator,
)

NO_SENTINELS = ["127.0.0.1:1"]  # refused at once (no DNS lookups of pod names that do not exist here)
NOW = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)
CLUSTER = Cluster(name="demo", namespace="default", sentinels=3, replicas=3, generation=2)


def dns(pod: str) -> str:
    return f"{pod}.demo-node-headless.default.svc.cluster.local"


def pods(*, roles: dict[str, str] | None = None, ready: bool = True) -> list[PodView]:
    roles = roles or {}
    return [
        PodView(name=f"demo-node-{i}", ordinal=i, ip=f"10.0.0.{i + 10}", ready=ready, role=roles.get(f"demo-node-{i}"))
        for i in range(3)
    ]


def replica(pod: str, flags: str = "slave", link: str = "ok", offset: int = 100) -> dict[str, str]:
    return {
        "name": f"{dns(pod)}:6379",
        "ip": dns(pod),
        "port": "6379",
        "flags": flags,
        "master-link-status": link,
        "slave-repl-offset": str(offset),
        "slave-priority": "100",
    }


def answer(i: int, leader: str = "demo-node-0", *, epoch: int = 1, flags: str = "master", **kw: Any) -> SentinelAnswer:
    others = [p for p in ("demo-node-0", "demo-node-1", "demo-node-2") if p != leader]
    return SentinelAnswer(
        sentinel=f"s{i}:26379",
        leader=(dns(leader), 6379),
        master={"name": "mymaster", "flags": flags, "config-epoch": str(epoch), "kvcluster-epoch": str(epoch)},
        replicas=kw.get("replicas", [replica(p) for p in others]),
    )


def down(i: int) -> SentinelAnswer:
    return SentinelAnswer(sentinel=f"s{i}:26379", error="ConnectionError: refused")


def leader_info(offset: int = 100, replicas: dict[str, int] | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"role": "master", "master_repl_offset": offset}
    for n, (pod, off) in enumerate((replicas or {}).items()):
        info[f"slave{n}"] = {"ip": dns(pod), "port": 6379, "state": "online", "offset": off, "lag": 0}
    return info


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


# -- the pure observer ----------------------------------------------------------------------------


def test_a_majority_names_the_leader_and_labels_follow() -> None:
    obs = observe(CLUSTER, [answer(0), answer(1), answer(2)], pods(), {}, NOW)
    assert obs.leader_pod == "demo-node-0"
    assert obs.labels == {"demo-node-0": "leader", "demo-node-1": "replica", "demo-node-2": "replica"}
    assert obs.status["leader"] == "demo-node-0" and obs.status["epoch"] == 1
    assert obs.status["readyReplicas"] == 3
    assert cond(obs.status, "Ready")["status"] == "True"
    assert cond(obs.status, "Available")["status"] == "True"
    assert cond(obs.status, "Degraded")["status"] == "False"
    assert cond(obs.status, "FailingOver")["status"] == "False"
    assert obs.events == []
    assert observer.phase(obs.status["conditions"]) == "Running"


def test_labels_already_right_are_not_rewritten() -> None:
    roles = {"demo-node-0": "leader", "demo-node-1": "replica", "demo-node-2": "replica"}
    obs = observe(CLUSTER, [answer(0), answer(1), answer(2)], pods(roles=roles), {}, NOW)
    assert obs.labels == {}


def test_a_minority_never_moves_the_leader() -> None:
    roles = {"demo-node-0": "leader", "demo-node-1": "replica", "demo-node-2": "replica"}
    previous = {"leader": "demo-node-0"}
    answers = [answer(0), answer(1, leader="demo-node-1"), answer(2, leader="demo-node-2")]
    obs = observe(CLUSTER, answers, pods(roles=roles), previous, NOW)
    assert obs.leader_pod is None and obs.labels == {}
    assert obs.status["leader"] == "demo-node-0"  # kept from before
    assert cond(obs.status, "Available")["status"] == "False"
    assert "do not agree" in cond(obs.status, "Degraded")["message"]


def test_failover_observed_moves_labels_and_emits_events() -> None:
    roles = {"demo-node-0": "leader", "demo-node-1": "replica", "demo-node-2": "replica"}
    before = observe(CLUSTER, [answer(0), answer(1), answer(2)], pods(roles=roles), {}, NOW)
    # The sentinels see the leader down and start a failover: FailoverStarted, no relabelling yet.
    odown = [answer(i, flags="master,o_down,failover_in_progress") for i in range(3)]
    during = observe(CLUSTER, odown, pods(roles=roles), before.status, NOW)
    assert [e.reason for e in during.events] == ["FailoverStarted"]
    assert cond(during.status, "FailingOver")["status"] == "True"
    assert observer.phase(during.status["conditions"]) == "FailingOver"
    # demo-node-1 promoted at epoch 2; the old leader is a down replica now.
    reps = [replica("demo-node-0", flags="slave,s_down,disconnected", link="err"), replica("demo-node-2")]
    after_answers = [answer(i, leader="demo-node-1", epoch=2, replicas=reps) for i in range(3)]
    after = observe(CLUSTER, after_answers, pods(roles=roles), during.status, NOW + dt.timedelta(seconds=5))
    assert after.labels == {"demo-node-0": None, "demo-node-1": "leader"}
    assert [e.reason for e in after.events] == ["LeaderChanged"]
    assert "demo-node-1" in after.events[0].message and "demo-node-0" in after.events[0].message
    assert after.status["epoch"] == 2 and after.status["lastFailoverTime"] == "2026-12-01T12:00:05Z"
    assert after.status["readyReplicas"] == 2
    assert cond(after.status, "Ready")["status"] == "False"
    assert cond(after.status, "FailingOver")["status"] == "False"
    # Seen again: nothing new to say.
    again = observe(
        CLUSTER, after_answers, pods(roles={"demo-node-1": "leader", "demo-node-2": "replica"}), after.status, NOW
    )
    assert again.events == [] and again.labels == {}


def test_condition_transition_times_only_move_on_a_flip() -> None:
    first = observe(CLUSTER, [answer(0), answer(1), answer(2)], pods(), {}, NOW)
    later = observe(CLUSTER, [answer(0), answer(1), answer(2)], pods(), first.status, NOW + dt.timedelta(minutes=5))
    assert cond(later.status, "Ready")["lastTransitionTime"] == "2026-12-01T12:00:00Z"
    flipped = observe(
        CLUSTER, [answer(0), answer(1), down(2)], pods(ready=False), later.status, NOW + dt.timedelta(minutes=6)
    )
    assert cond(flipped.status, "Ready")["status"] == "False"
    assert cond(flipped.status, "Ready")["lastTransitionTime"] == "2026-12-01T12:06:00Z"
    assert cond(flipped.status, "Available")["lastTransitionTime"] == "2026-12-01T12:00:00Z"
    assert all(c["observedGeneration"] == 2 for c in flipped.status["conditions"])


def test_quorum_lost_once() -> None:
    answers = [answer(0), down(1), down(2)]
    obs = observe(CLUSTER, answers, pods(), {"leader": "demo-node-0"}, NOW)
    assert [e.reason for e in obs.events] == ["QuorumLost"]
    assert obs.leader_pod is None and obs.labels == {}  # one sentinel is no majority
    assert obs.status["sentinelQuorum"] == "lost" and obs.status["sentinelsReachable"] == 1
    assert "1/3 sentinels reachable" in cond(obs.status, "Degraded")["message"]
    again = observe(CLUSTER, answers, pods(), obs.status, NOW)
    assert again.events == []
    back = observe(CLUSTER, [answer(0), answer(1), down(2)], pods(), again.status, NOW)
    assert back.status["sentinelQuorum"] == "ok" and back.leader_pod == "demo-node-0"


def test_replica_lag_from_the_leaders_offsets() -> None:
    info = leader_info(offset=5_000_000, replicas={"demo-node-1": 5_000_000, "demo-node-2": 1_000})
    obs = observe(CLUSTER, [answer(0), answer(1), answer(2)], pods(), {}, NOW, info, sync_lag_bytes=1024)
    assert obs.status["replicaLag"] == {"demo-node-1": 0, "demo-node-2": 4_999_000}
    assert obs.synced_replicas == {"demo-node-1"}
    assert obs.status["laggingReplicas"] == ["demo-node-2"]
    assert [e.reason for e in obs.events] == ["ReplicaLagging"]
    assert "demo-node-2" in obs.events[0].message
    assert cond(obs.status, "Degraded")["status"] == "True"
    # Still lagging next time: no second Event.
    again = observe(CLUSTER, [answer(0), answer(1), answer(2)], pods(), obs.status, NOW, info, sync_lag_bytes=1024)
    assert again.events == []


def test_syncing_replica_gets_no_replica_label() -> None:
    reps = [replica("demo-node-1"), replica("demo-node-2", link="err")]
    obs = observe(CLUSTER, [answer(i, replicas=reps) for i in range(3)], pods(), {}, NOW)
    assert obs.labels == {"demo-node-0": "leader", "demo-node-1": "replica"}
    assert "demo-node-2" not in obs.synced_replicas


def test_pods_found_by_ip_when_sentinels_report_ips() -> None:
    ip_answers = [
        SentinelAnswer(
            sentinel=f"s{i}:26379",
            leader=("10.0.0.11", 6379),
            master={"flags": "master", "config-epoch": "3"},
            replicas=[{"ip": "10.0.0.10", "port": "6379", "flags": "slave", "master-link-status": "ok"}],
        )
        for i in range(3)
    ]
    obs = observe(CLUSTER, ip_answers, pods(), {}, NOW)
    assert obs.leader_pod == "demo-node-1"
    assert obs.labels == {"demo-node-0": "replica", "demo-node-1": "leader"}


def test_leader_outside_the_cluster_is_reported_not_labelled() -> None:
    strangers = [
        SentinelAnswer(sentinel=f"s{i}:26379", leader=("192.168.9.9", 6379), master={"flags": "master"})
        for i in range(3)
    ]
    obs = observe(CLUSTER, strangers, pods(), {}, NOW)
    assert obs.leader_pod is None and obs.labels == {}
    assert "192.168.9.9:6379 is not a pod of this cluster" in cond(obs.status, "Degraded")["message"]


def test_pod_view_reads_ready_role_revision() -> None:
    pod = {
        "metadata": {
            "name": "demo-node-2",
            "uid": "u",
            "labels": {"kvcluster.io/role": "replica"},
            "annotations": {"kvcluster.io/revision": "abc"},
        },
        "status": {"podIP": "10.1.1.1", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    view = observer.pod_view(pod)
    assert (view.ordinal, view.ready, view.role, view.revision, view.ip) == (2, True, "replica", "abc", "10.1.1.1")
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert observer.pod_view(pod).ready is False and observer.pod_view(pod).deleting


# -- handler helpers (pure) ------------------------------------------------------------------------


def test_status_delta_patches_only_changes_and_removes_stale_map_keys() -> None:
    current = {"leader": "a", "replicaLag": {"a": 1, "b": 2}, "epoch": 3, "other": "kept"}
    wanted = {"leader": "a", "replicaLag": {"a": 5}, "epoch": 4}
    assert status_delta(current, wanted) == {"replicaLag": {"a": 5, "b": None}, "epoch": 4}
    assert status_delta(wanted | {"other": "x"}, wanted) == {}


def test_sentinel_addresses_are_pod_dns_names_unless_overridden() -> None:
    assert sentinel_addresses("demo", "prod", 3, None) == [
        f"demo-sentinel-{i}.demo-sentinel-headless.prod.svc.cluster.local:26379" for i in range(3)
    ]
    assert sentinel_addresses("demo", "prod", 3, ["127.0.0.1:1"]) == ["127.0.0.1:1"]
    options = OperatorOptions.from_env(
        {"KVCLUSTER_OPERATOR_SENTINELS": "a:1, b:2", "KVCLUSTER_OPERATOR_STEP_TIMEOUT": "30"}
    )
    assert options.sentinels == ["a:1", "b:2"] and options.policy.pod_deadline == 30


def test_pvc_names_are_the_statefulsets_claims_only() -> None:
    objects = desired({"metadata": {"name": "demo", "namespace": NS, "uid": "u"}, "spec": {}}, password="p")
    pvcs = [
        {"metadata": {"name": n}}
        for n in ("data-demo-node-0", "data-demo-node-12", "data-demo-sentinel-1", "data-x-demo-node-0", "other")
    ]
    assert pvc_names(objects, pvcs) == ["data-demo-node-0", "data-demo-node-12", "data-demo-sentinel-1"]


# -- kopf against kmock: create, edit, crash/resume, delete --------------------------------------


def spec_of(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": 3, "sentinels": 3, "metrics": {"serviceMonitor": {"enabled": True}}}
    spec.update(overrides)
    return spec


def expected(kmock: Any, name: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    secret = live(kmock, "v1/secrets", f"{name}-auth")
    assert secret is not None
    password = base64.b64decode(secret["data"]["password"]).decode()
    cr = {"metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"}, "spec": spec}
    return desired(cr, password=password)


def matches(live_obj: dict[str, Any], want: dict[str, Any]) -> bool:
    """Every field we asked for is there with our value (the server may add its own)."""
    if isinstance(want, dict):
        return isinstance(live_obj, dict) and all(k in live_obj and matches(live_obj[k], v) for k, v in want.items())
    return live_obj == want


@pytest.mark.kmock(cls=VersionedEmulator)
async def test_create_edit_resume_delete(kmock: Any, tmp_path: Path) -> None:
    declare(kmock)
    spec = spec_of()
    async with running_operator(kmock, interval=30, resync=3, sentinels=NO_SENTINELS):
        await create_cr(kmock, "demo", spec)
        # Exactly the desired objects, each with its ownerReference.
        await eventually(lambda: live(kmock, "v1/secrets", "demo-auth"), what="the auth Secret")

        def all_there() -> bool:
            want = expected(kmock, "demo", spec)
            have = children(kmock)
            return set(have) == {(o["kind"], o["metadata"]["name"]) for o in want} and all(
                matches(have[(o["kind"], o["metadata"]["name"])], o) for o in want
            )

        await eventually(all_there, what="every desired object")
        for obj in children(kmock).values():
            (ref,) = obj["metadata"]["ownerReferences"]
            assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("KVCluster", "demo", "uid-demo", True)
        password = live(kmock, "v1/secrets", "demo-auth")["data"]["password"]
        await eventually(lambda: (live(kmock, CR, "demo") or {}).get("status", {}).get("observedGeneration") == 1)
        await eventually(lambda: events(kmock, "Reconciled"), what="the Reconciled Event")

        # Edit: 4 replicas, no ServiceMonitor, no PDBs -> updated and pruned; the password stays.
        spec = spec_of(replicas=4, metrics={"serviceMonitor": {"enabled": False}}, pdb={"enabled": False})
        await patch_cr(kmock, "demo", {"metadata": {"generation": 2}, "spec": spec})
        await eventually(all_there, what="the edited objects")
        assert live(kmock, "apps/v1/statefulsets", "demo-node")["spec"]["replicas"] == 4
        assert live(kmock, "monitoring.coreos.com/v1/servicemonitors", "demo") is None
        assert live(kmock, "policy/v1/poddisruptionbudgets", "demo-node") is None
        assert live(kmock, "v1/secrets", "demo-auth")["data"]["password"] == password
        await eventually(lambda: live(kmock, CR, "demo")["status"]["observedGeneration"] == 2)
        snapshot = children(kmock)

        # Running again (the periodic resync: the same code as a resume after a restart or a crash)
        # changes nothing: the same objects, the same password. (The emulator moves resourceVersion
        # on every write, so a new version of the ConfigMap shows the objects were applied again.)
        def reapplied() -> bool:
            version = live(kmock, "v1/configmaps", "demo-node-config")["metadata"]["resourceVersion"]
            return version != snapshot[("ConfigMap", "demo-node-config")]["metadata"]["resourceVersion"]

        await eventually(reapplied, 20, what="a second reconcile")
        assert without_versions(children(kmock)) == without_versions(snapshot)

        # A bad spec is refused before anything is created.
        await create_cr(kmock, "bad", {"sentinels": 2, "replicas": 0, "durability": "eventual"})

        def refused() -> dict[str, Any] | None:
            status = (live(kmock, CR, "bad") or {}).get("status") or {}
            return next((c for c in status.get("conditions", []) if c.get("reason") == "InvalidSpec"), None)

        ready = await eventually(refused, what="the InvalidSpec condition")
        assert ready["type"] == "Ready" and ready["status"] == "False"
        assert "spec.sentinels must be odd (got 2)" in ready["message"]
        assert "spec.replicas must be at least 1 (got 0)" in ready["message"]
        assert "spec.durability" in ready["message"]
        assert live(kmock, CR, "bad")["status"]["phase"] == "Failed"
        await eventually(lambda: events(kmock, "InvalidSpec"), what="the InvalidSpec Event")
        assert not [k for k in children(kmock) if k[1].startswith("bad")]

        # Delete: the finalizer removes the children; PVCs are kept by default.
        for i in range(4):
            await _create_pvc(kmock, f"data-demo-node-{i}")
        await _create_pvc(kmock, "data-demo-sentinel-0")
        await _create_pvc(kmock, "data-other-demo-node-0")  # another cluster's claim: never touched
        assert "kvcluster.io/finalizer" in live(kmock, CR, "demo")["metadata"]["finalizers"]
        await delete_cr(kmock, "demo")
        await eventually(lambda: live(kmock, CR, "demo") is None, what="the KVCluster to go")
        assert children(kmock) == {}
        assert live(kmock, "v1/persistentvolumeclaims", "data-demo-node-0") is not None
        await eventually(lambda: events(kmock, "VolumesRetained"), 10, what="the VolumesRetained Event")

        # retainOnDelete: false deletes the cluster's claims, and only those.
        await create_cr(kmock, "demo", spec_of(storage={"retainOnDelete": False}), uid="uid-demo-2")
        await eventually(lambda: live(kmock, "apps/v1/statefulsets", "demo-node"), what="the recreated cluster")
        await delete_cr(kmock, "demo")
        await eventually(lambda: live(kmock, CR, "demo") is None, what="the KVCluster to go again")
        assert live(kmock, "v1/persistentvolumeclaims", "data-demo-node-0") is None
        assert live(kmock, "v1/persistentvolumeclaims", "data-demo-sentinel-0") is None
        assert live(kmock, "v1/persistentvolumeclaims", "data-other-demo-node-0") is not None


def without_versions(objects: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    out = {}
    for key, obj in objects.items():
        meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
        out[key] = {**obj, "metadata": meta}
    return out


@pytest.mark.kmock(cls=VersionedEmulator)
async def test_kvcluster_operator_command_with_a_kubeconfig(kmock: Any, tmp_path: Path) -> None:
    """``kvcluster operator`` as a process: logs in from $KUBECONFIG, reconciles, stops on SIGTERM."""
    declare(kmock)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: kmock, cluster: {{server: '{str(kmock.url).rstrip('/')}'}}}}]\n"
        "users: [{name: test, user: {token: test}}]\n"
        "contexts: [{name: test, context: {cluster: kmock, user: test, namespace: default}}]\n"
        "current-context: test\n"
    )
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), KVCLUSTER_OPERATOR_SENTINELS=",".join(NO_SENTINELS))
    log = tmp_path / "operator.log"
    cmd = [*KVCLUSTER, "operator", "--standalone", "--namespace", "default", "--no-scanning"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        await create_cr(kmock, "demo", {"replicas": 1, "sentinels": 1})
        await eventually(lambda: live(kmock, "apps/v1/statefulsets", "demo-node"), 30, what="the StatefulSet")
        await eventually(lambda: live(kmock, CR, "demo").get("status", {}).get("observedGeneration") == 1, 30)
        # One sentinel, one node: valid, with Warning Events saying why it is unwise.
        await eventually(lambda: events(kmock, "SpecWarning"), 10, what="the SpecWarning Events")
        assert any("spec.sentinels is 1" in e["message"] for e in events(kmock, "SpecWarning"))
    finally:
        proc.terminate()
        code = await asyncio.to_thread(proc.wait, 20)
    assert code == 0, log.read_text()[-3000:]


# -- kopf + kmock + real sentinels: a kill -9 of the leader moves the label and the status -----------


@pytest.mark.kmock(cls=VersionedEmulator)
async def test_failover_seen_by_real_sentinels_moves_label_and_status(
    kmock: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kopf.objects")
    declare(kmock)
    cluster = await asyncio.to_thread(LoopbackCluster(tmp_path).start)
    try:
        spec = {"replicas": 3, "sentinels": 3, "auth": {"enabled": False}}
        async with running_operator(kmock, interval=0.5, sentinels=cluster.sentinel_addresses):
            await create_cr(kmock, "demo", spec)
            # Play the StatefulSet controller: the pods, at the StatefulSet's revision, with the nodes' IPs.
            sts = await eventually(lambda: live(kmock, "apps/v1/statefulsets", "demo-node"), what="the StatefulSet")
            revision = sts["metadata"]["annotations"]["kvcluster.io/revision"]
            for i, node in enumerate(cluster.nodes):
                await create_pod(kmock, pod_body(f"demo-node-{i}", "demo", node.host, revision, uid=f"pod-{i}"))

            def roles() -> dict[str, str | None]:
                return {
                    f"demo-node-{i}": (live(kmock, "v1/pods", f"demo-node-{i}") or {})
                    .get("metadata", {})
                    .get("labels", {})
                    .get("kvcluster.io/role")
                    for i in range(3)
                }

            first = {"demo-node-0": "leader", "demo-node-1": "replica", "demo-node-2": "replica"}
            await eventually(lambda: roles() == first, 30, what="the first role labels")
            status = await eventually(
                lambda: (s := live(kmock, CR, "demo")["status"]).get("phase") == "Running" and s, 30, what="Running"
            )
            assert status["leader"] == "demo-node-0" and status["readyReplicas"] == 3
            assert status["leaderAddress"] == f"127.0.0.2:{cluster.nodes[0].port}"
            assert cond(status, "Ready")["status"] == "True" and cond(status, "Available")["status"] == "True"
            epoch = status["epoch"]

            cluster.nodes[0].kill()
            killed = time.monotonic()

            def moved() -> str | None:
                now = roles()
                leaders = [pod for pod, role in now.items() if role == "leader"]
                return leaders[0] if leaders and leaders != ["demo-node-0"] else None

            new_leader = await eventually(moved, 60, what="the leader label to move")
            print(f"leader label moved to {new_leader} {time.monotonic() - killed:.1f} s after kill -9")
            assert roles()["demo-node-0"] is None  # a dead old leader is in neither Service
            host = cluster.leader()[0]
            assert cluster.nodes[int(new_leader.rsplit("-", 1)[1])].host == host  # the sentinels' choice

            def status_moved() -> dict[str, Any] | None:
                s = live(kmock, CR, "demo")["status"]
                return s if s.get("leader") == new_leader and s.get("lastFailoverTime") else None

            status = await eventually(status_moved, 30, what="the status to follow")
            assert status["epoch"] > epoch
            assert status["phase"] in ("Degraded", "FailingOver")  # one node of three is gone
            await eventually(lambda: events(kmock, "LeaderChanged"), 10, what="the LeaderChanged Event")
            assert any(new_leader in e["message"] for e in events(kmock, "LeaderChanged"))
            await eventually(lambda: events(kmock, "FailoverStarted"), 10, what="the FailoverStarted Event")
            # The sentinel event watcher (PSUBSCRIBE on every sentinel) heard the failover as it happened.
            announced = [r.getMessage() for r in caplog.records if "sentinel announced" in r.getMessage()]
            assert any("+switch-master" in m for m in announced), announced
            other = next(p for p in ("demo-node-1", "demo-node-2") if p != new_leader)
            await eventually(lambda: roles()[other] == "replica", 30, what="the other replica's label")
    except BaseException:
        print(cluster.logs())
        with contextlib.suppress(Exception), cluster.sentinels[0].client() as c:
            print("SENTINEL REPLICAS", c.execute_command("SENTINEL", "REPLICAS", "mymaster"))
            print("STATUS", live(kmock, CR, "demo").get("status"))
        raise
    finally:
        await asyncio.to_thread(cluster.stop)


async def _create_pvc(kmock: Any, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": NS}}
    async with kmock.post(f"/api/v1/namespaces/{NS}/persistentvolumeclaims", json=body) as resp:
        assert resp.status < 300


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
