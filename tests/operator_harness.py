"""Run the real kopf operator against kmock (a Kubernetes API emulator) inside a test.

kmock keeps objects in memory and serves list/watch/get/create/patch/delete; it runs no controllers,
so a test plays the StatefulSet controller itself where it needs pods (see K8S-TESTING.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import kopf
import redis
from helpers import NodeProcess, free_port, wait_until
from kmock._internal import rendering
from kmock._internal.k8s import KubernetesEmulator, KubernetesError
from kvcluster.operator.handlers import OperatorOptions, build_registry
from test_sentinel import SentinelProcess

NS = "default"
CR = "kvcluster.io/v1alpha1/kvclusters"
VERBS = {"list", "watch", "get", "create", "patch", "delete"}
RESOURCES = {
    CR: ("KVCluster", {"status"}),
    "v1/configmaps": ("ConfigMap", set()),
    "v1/secrets": ("Secret", set()),
    "v1/services": ("Service", set()),
    "v1/pods": ("Pod", set()),
    "v1/persistentvolumeclaims": ("PersistentVolumeClaim", set()),
    "v1/events": ("Event", set()),
    "apps/v1/statefulsets": ("StatefulSet", set()),
    "policy/v1/poddisruptionbudgets": ("PodDisruptionBudget", set()),
    "networking.k8s.io/v1/networkpolicies": ("NetworkPolicy", set()),
    "monitoring.coreos.com/v1/servicemonitors": ("ServiceMonitor", set()),
}
# The children a KVCluster may own (everything but the CR itself, events and pods).
CHILD_RESOURCES = [r for r in RESOURCES if r not in (CR, "v1/events", "v1/pods", "v1/persistentvolumeclaims")]


@attrs.frozen
class StaleVersion(KubernetesError):
    status: int = 422
    reason: str = "Invalid"
    message: str = "the object has been modified (resourceVersion test failed)"


class VersionedEmulator(KubernetesEmulator):
    """kmock with three API server behaviours kopf relies on.

    metadata.resourceVersion moves on every write (kopf waits for the version of its own patch);
    a JSON patch whose ``test`` of the version fails gets a 422, as from the API server (kopf then
    retries on the next cycle; kmock would answer 500 forever); ``generateName`` gives a fresh name
    (kopf's Events use it; kmock would store only the first one).
    """

    _version = 1
    _generated = 0

    async def _handle(self, request: rendering.Request) -> Any:
        data = request.data
        if request.resource is not None and request.method in ("POST", "PATCH") and data is not None:
            if isinstance(data, list):
                self._check_version(request, data)
            VersionedEmulator._version += 1
            version = str(VersionedEmulator._version)
            if isinstance(data, dict):
                meta = data.setdefault("metadata", {})
                meta["resourceVersion"] = version
                if request.method == "POST" and not meta.get("name") and meta.get("generateName"):
                    VersionedEmulator._generated += 1
                    meta["name"] = f"{meta['generateName']}{VersionedEmulator._generated:05d}"
            elif isinstance(data, list):
                data.append({"op": "add", "path": "/metadata/resourceVersion", "value": version})
        return await super()._handle(request)

    def _check_version(self, request: rendering.Request, ops: list[Any]) -> None:
        for op in ops:
            if isinstance(op, dict) and op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion":
                key = (request.resource, request.namespace, request.name)
                if key in self.objects and not self.objects[key].deleted:
                    current = (self.objects[key].raw.get("metadata") or {}).get("resourceVersion")
                    if current != op.get("value"):
                        raise StaleVersion()


def declare(kmock: Any) -> None:
    for path, (kind, subresources) in RESOURCES.items():
        kmock.resources[path] = dict(kind=kind, namespaced=True, verbs=VERBS, subresources=subresources)
    kmock.resources["v1/namespaces"] = dict(kind="Namespace", namespaced=False, verbs=VERBS)  # kopf needs it


@contextlib.asynccontextmanager
async def running_operator(kmock: Any, **options: Any) -> AsyncIterator[None]:
    """kopf with our registry against ``kmock``, stopped (and awaited) on exit."""
    url = str(kmock.url).rstrip("/")
    opts = OperatorOptions(
        connection=kopf.ConnectionInfo(server=url, scheme="Bearer", token="test"), scanning=False, **options
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(registry=build_registry(opts), namespaces=[NS], standalone=True, stop_flag=stop)
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def eventually(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "", interval: float = 0.1) -> Any:
    """Poll ``predicate`` (sync or async) until truthy; fail after ``timeout`` s with the last error."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
        except Exception as e:  # not there yet
            last = e
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}; last error: {last!r}")


def live(kmock: Any, resource: str, name: str, ns: str = NS) -> dict[str, Any] | None:
    """The object's current state in kmock, or None if absent or deleted."""
    key = (resource, ns, name)
    try:
        obj = kmock.objects[key]
    except KeyError:
        return None
    if obj.deleted:
        return None
    return dict(obj.raw)


def children(kmock: Any, ns: str = NS) -> dict[tuple[str, str], dict[str, Any]]:
    """(Kind, name) -> object of every live child-kind object in ``ns``."""
    kinds = {r.rsplit("/", 1)[-1]: RESOURCES[r][0] for r in CHILD_RESOURCES}
    out = {}
    for (resource, namespace, name), obj in list(kmock.objects.items()):
        if namespace != ns or obj.deleted or resource.plural not in kinds:
            continue
        if resource.plural == "kvclusters":
            continue
        out[(kinds[resource.plural], name)] = dict(obj.raw)
    return out


def events(kmock: Any, reason: str | None = None) -> list[dict[str, Any]]:
    """Events the operator posted (kept as objects: VersionedEmulator names them)."""
    found = []
    for (resource, _ns, _name), obj in list(kmock.objects.items()):
        if resource.plural == "events" and not obj.deleted:
            raw = dict(obj.raw)
            if reason is None or raw.get("reason") == reason:
                found.append(raw)
    return found


async def create_cr(kmock: Any, name: str, spec: dict[str, Any], uid: str | None = None) -> None:
    body = {
        "apiVersion": "kvcluster.io/v1alpha1",
        "kind": "KVCluster",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": uid or f"uid-{name}",
            "generation": 1,
            "resourceVersion": "1",  # kopf json-patches with a test on it; kmock keeps it as is
        },
        "spec": spec,
    }
    async with kmock.post(f"/apis/kvcluster.io/v1alpha1/namespaces/{NS}/kvclusters", json=body) as resp:
        assert resp.status < 300, await resp.text()


async def patch_cr(kmock: Any, name: str, patch: dict[str, Any]) -> None:
    async with kmock.patch(f"/apis/kvcluster.io/v1alpha1/namespaces/{NS}/kvclusters/{name}", json=patch) as resp:
        assert resp.status < 300, await resp.text()


async def delete_cr(kmock: Any, name: str) -> None:
    async with kmock.delete(f"/apis/kvcluster.io/v1alpha1/namespaces/{NS}/kvclusters/{name}") as resp:
        assert resp.status < 300, await resp.text()


def pod_body(name: str, cluster: str, ip: str, revision: str, uid: str, ready: bool = True) -> dict[str, Any]:
    """A node pod as the StatefulSet controller and the kubelet would leave it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": uid,
            "labels": {
                "app.kubernetes.io/name": "kvcluster",
                "app.kubernetes.io/instance": cluster,
                "app.kubernetes.io/component": "node",
            },
            "annotations": {"kvcluster.io/revision": revision},
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


async def create_pod(kmock: Any, body: dict[str, Any]) -> None:
    async with kmock.post(f"/api/v1/namespaces/{NS}/pods", json=body) as resp:
        assert resp.status < 300, await resp.text()


# -- real nodes and sentinels on loopback addresses, as if each pod had its own IP ----------------

GROUP = "mymaster"


class LoopbackNode:
    """A real ``kvcluster node`` bound to its own loopback address (127.0.0.N), announcing it."""

    def __init__(self, directory: Path, host: str, port: int, replicaof: tuple[str, int] | None = None):
        self.host, self.port, self.replicaof = host, port, replicaof
        args = ["--bind", host, "--replica-announce-ip", host, "--save", ""]
        if replicaof:
            args += ["--replicaof", replicaof[0], str(replicaof[1])]
        self.process = NodeProcess(directory, *args, port=port)

    def start(self, wait: bool = True) -> LoopbackNode:
        self.process.start(wait=False)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        def ready() -> bool:
            proc = self.process.proc
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"node exited with {proc.returncode}: {self.process.log()}")
            with redis.Redis(host=self.host, port=self.port, socket_timeout=1) as c:
                return bool(c.ping())

        wait_until(ready, timeout, what=f"node {self.host}:{self.port}")

    def info(self) -> dict[str, Any]:
        with redis.Redis(host=self.host, port=self.port, socket_timeout=2) as c:
            return c.info("replication")

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        proc = self.process.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
        self.process.stop()


class LoopbackCluster:
    """3 nodes on 127.0.0.2-4 (node-0 leads) and 3 sentinels on 127.0.0.1, quick failure detection."""

    def __init__(self, root: Path, nodes: int = 3, down_after: int = 1000, failover_timeout: int = 6000):
        self.root = root
        self.count = nodes
        self.down_after, self.failover_timeout = down_after, failover_timeout
        self.nodes: list[LoopbackNode] = []
        self.sentinels: list[NodeProcess] = []

    def start(self) -> LoopbackCluster:
        port = free_port()
        self.nodes.append(LoopbackNode(self.root / "n0", "127.0.0.2", port).start())
        for i in range(1, self.count):
            node = LoopbackNode(self.root / f"n{i}", f"127.0.0.{i + 2}", free_port(), replicaof=("127.0.0.2", port))
            self.nodes.append(node.start(wait=False))
        for node in self.nodes[1:]:
            node.wait_ready()
        wait_until(lambda: self.nodes[0].info().get("connected_slaves") == self.count - 1, 30, what="replicas online")
        for i in range(3):
            d = self.root / f"s{i}"
            args = [
                "--monitor", GROUP, "127.0.0.2", str(port), "2",
                "--down-after-milliseconds", str(self.down_after),
                "--failover-timeout", str(self.failover_timeout),
            ]  # fmt: skip
            self.sentinels.append(SentinelProcess(d, *args))
        for s in self.sentinels:
            s.start(wait=False)
        for s in self.sentinels:
            s.wait_ready()

        def discovered() -> bool:
            for s in self.sentinels:
                with s.client() as c:
                    m = c.sentinel_master(GROUP)
                if m["num-slaves"] != self.count - 1 or m["num-other-sentinels"] != 2:
                    return False
            return True

        wait_until(discovered, 40, interval=0.2, what="sentinels discovered replicas and each other")
        return self

    @property
    def sentinel_addresses(self) -> list[str]:
        return [f"127.0.0.1:{s.port}" for s in self.sentinels]

    def leader(self) -> tuple[str, int]:
        with self.sentinels[0].client() as c:
            host, port = c.sentinel_get_master_addr_by_name(GROUP)
        return str(host), int(port)

    def node_at(self, host: str) -> LoopbackNode:
        return next(n for n in self.nodes if n.host == host)

    def stop(self) -> None:
        for s in self.sentinels:
            s.stop()
        for n in self.nodes:
            n.stop()

    def logs(self) -> str:
        procs = [*self.sentinels, *(n.process for n in self.nodes)]
        return "\n".join(f"--- {p.log_path.name}\n{p.log()[-2000:]}" for p in procs)
