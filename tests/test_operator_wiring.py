"""The operator's rendered pods, run for real: do desired()'s containers form a working cluster?

A KVCluster is rendered with ``desired()``; the node and sentinel containers are taken from the
StatefulSets as they are (command, args, env with the downward-API ``POD_NAME`` and the Secret
references, the ConfigMap files at their mount paths) and started as real processes on loopback,
one per pod. Only what a kubelet, the cluster DNS and the pod network would provide is
substituted, each in one place below (:class:`Pod`):

* **Pod network.** Each pod gets its own loopback address (127.a.b.N, where a pod would get its
  pod IP). Every pod of a kind listens on the same port, as in Kubernetes, but the rendered
  port numbers (6379, 26379, 9121, 9122) are replaced with free ports of this machine, the same
  for every pod of the kind, since other programs here may hold the well-known ones; ``bind
  0.0.0.0`` / ``admin-bind 0.0.0.0`` become the pod's address (a pod's "every address" is its
  own network namespace; here they would collide).
* **Cluster DNS.** Pod DNS names (``<pod>.<headless>.<ns>.svc.cluster.local``) are replaced
  with the pod's address wherever they appear (config files, env values): loopback has no DNS
  for them. The processes therefore see addresses where Kubernetes gives names.
* **Kubelet.** ``POD_NAME`` (fieldRef metadata.name) is the pod's name; ``$(VAR)`` references in
  env values are expanded as the kubelet does; ``secretKeyRef`` values come from the rendered
  Secret; ``HOSTNAME`` is the pod name; nothing else of the test's environment leaks in. Volume
  mounts (``/etc/kvcluster`` from the ConfigMap, ``/data``, ``/tmp``) are per-pod temp
  directories, and paths in args and config files are rewritten to them. ``command`` ``kvcluster``
  is this virtualenv's ``kvcluster`` script (the image's entry point). A pod "restart" starts the
  same command line, env and directories again, like a container restart in the same pod.

Everything else is the rendered spec, unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.sentinel
from helpers import free_port, wait_until
from kvcluster.operator.desired import desired

NAMESPACE = "apps"
NAME = "kvc"
PASSWORD = "s3cret-from-the-operator"
RENDERED_PORTS = {"node": 6379, "sentinel": 26379, "node-admin": 9121, "sentinel-admin": 9122}
KVCLUSTER_BIN = str(Path(sys.executable).parent / "kvcluster")


def _kvcluster(extra_spec: dict[str, Any]) -> dict[str, Any]:
    spec = {
        "replicas": 3,
        "sentinels": 3,
        # Failure detection in seconds, so the test fails over quickly (spec fields, not substitutions).
        "sentinel": {"downAfterMilliseconds": 1000, "failoverTimeout": 6000},
        **extra_spec,
    }
    return {
        "apiVersion": "kvcluster.io/v1alpha1",
        "kind": "KVCluster",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "0000-test"},
        "spec": spec,
    }


def _by_kind(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, got {[o['metadata']['name'] for o in objects]}"
    return found[0]


class Substitutions:
    """What the kubelet, the cluster DNS and the pod network provide, for one rendered cluster."""

    def __init__(self, objects: list[dict[str, Any]]):
        base = f"127.{random.randint(100, 250)}.{random.randint(1, 250)}"
        self.ports = {kind: free_port() for kind in RENDERED_PORTS}
        self.addresses: dict[str, str] = {}  # pod name -> its loopback address
        self.dns: dict[str, str] = {}  # pod DNS name -> address
        for component, first in (("node", 10), ("sentinel", 20)):
            sts = _by_kind(objects, "StatefulSet", f"{NAME}-{component}")
            headless = sts["spec"]["serviceName"]
            for i in range(sts["spec"]["replicas"]):
                pod = f"{NAME}-{component}-{i}"
                self.addresses[pod] = f"{base}.{first + i}"
                self.dns[f"{pod}.{headless}.{NAMESPACE}.svc.cluster.local"] = self.addresses[pod]
        self.secrets = {
            o["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in o.get("data", {}).items()}
            for o in objects
            if o["kind"] == "Secret"
        }

    def text(self, text: str, pod: str, mounts: dict[str, Path]) -> str:
        """Config file / env value / arg: DNS names, ports, wildcard binds and mount paths replaced."""
        for name, address in sorted(self.dns.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(name, address)
        for kind, rendered in RENDERED_PORTS.items():
            text = re.sub(rf"(?<![\d.]){rendered}(?!\d)", str(self.ports[kind]), text)
        text = text.replace("0.0.0.0", self.addresses[pod])
        # One pass: a replaced path (under the test's /tmp) must not be replaced again.
        paths = "|".join(re.escape(p) for p in sorted(mounts, key=len, reverse=True))
        return re.sub(rf"(?<![\w/.])({paths})(?=/|\s|$|\"|')", lambda m: str(mounts[m.group(1)]), text, flags=re.M)

    def env(self, container: dict[str, Any], pod: str, mounts: dict[str, Path]) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": pod, "HOME": str(mounts["/tmp"])}
        for var in container.get("env", []):
            if "value" in var:
                # The kubelet expands $(VAR) from variables defined earlier in the list.
                value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), var["value"])
            else:
                source = var["valueFrom"]
                if "fieldRef" in source:
                    assert source["fieldRef"]["fieldPath"] == "metadata.name", source
                    value = pod
                elif "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    value = self.secrets[ref["name"]][ref["key"]]
                else:
                    raise AssertionError(f"unsupported env source {source}")
            env[var["name"]] = self.text(value, pod, mounts)
        return env


class Pod:
    """One pod of a StatefulSet, run as a process with its container's command, args, env and files."""

    def __init__(
        self, root: Path, sts: dict[str, Any], ordinal: int, objects: list[dict[str, Any]], subs: Substitutions
    ):
        self.name = f"{sts['metadata']['name']}-{ordinal}"
        self.address = subs.addresses[self.name]
        pod_spec = sts["spec"]["template"]["spec"]
        (container,) = pod_spec["containers"]
        self.container = container
        self.dir = root / self.name
        volumes = {v["name"]: v for v in pod_spec["volumes"]}
        mounts: dict[str, Path] = {}
        for mount in container["volumeMounts"]:
            directory = self.dir / mount["name"]
            directory.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = directory
        self.mounts = mounts
        for mount in container["volumeMounts"]:
            volume = volumes.get(mount["name"])
            if volume is not None and "configMap" in volume:
                config_map = _by_kind(objects, "ConfigMap", volume["configMap"]["name"])
                for filename, content in config_map["data"].items():
                    (mounts[mount["mountPath"]] / filename).write_text(subs.text(content, self.name, mounts))
        assert container["command"] == ["kvcluster"], container["command"]
        self.cmd = [KVCLUSTER_BIN, *(subs.text(a, self.name, mounts) for a in container["args"])]
        self.env = subs.env(container, self.name, mounts)
        kind = "node" if container["name"] == "node" else "sentinel"
        self.port = subs.ports[kind]
        self.admin_port = subs.ports[f"{kind}-admin"]
        self.log_path = self.dir / "container.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Pod:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, cwd=self.mounts["/data"], stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """The readiness probe: GET /readyz on the admin port, as the rendered probe says."""
        probe = self.container["readinessProbe"]["httpGet"]
        assert probe["port"] == "admin"

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            url = f"http://{self.address}:{self.admin_port}{probe['path']}"
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    return r.status == 200
            except urllib.error.HTTPError:
                return False

        try:
            wait_until(ready, timeout, interval=0.1, what=f"{self.name} ready")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n{self.log()}") from None

    def client(self, password: str | None, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("socket_timeout", 5)
        return redis.Redis(host=self.address, port=self.port, password=password, **kwargs)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


class RenderedCluster:
    def __init__(self, root: Path, kvcluster: dict[str, Any], password: str | None):
        self.objects = desired(kvcluster, password=password)
        self.subs = Substitutions(self.objects)
        self.password = password
        self.group = kvcluster["spec"].get("sentinel", {}).get("masterName", "mymaster")
        self.nodes = self._pods(root, "node")
        self.sentinels = self._pods(root, "sentinel")

    def _pods(self, root: Path, component: str) -> list[Pod]:
        sts = _by_kind(self.objects, "StatefulSet", f"{NAME}-{component}")
        return [Pod(root, sts, i, self.objects, self.subs) for i in range(sts["spec"]["replicas"])]

    def start(self) -> None:
        # podManagementPolicy Parallel: every pod of both StatefulSets at once.
        for pod in [*self.nodes, *self.sentinels]:
            pod.start()
        for pod in [*self.sentinels, *self.nodes]:
            pod.wait_ready()

    def stop(self) -> None:
        for pod in [*self.nodes, *self.sentinels]:
            pod.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()[-2500:]}" for p in [*self.nodes, *self.sentinels])

    def sentinel_client(self, pod: Pod) -> redis.Redis:
        return redis.Redis(
            host=pod.address, port=pod.port, password=self.password, socket_timeout=5, decode_responses=True
        )

    def leader_views(self) -> set[tuple[str, int]]:
        views = set()
        for s in self.sentinels:
            with self.sentinel_client(s) as c:
                host, port = c.sentinel_get_master_addr_by_name(self.group)
                views.add((host, int(port)))
        return views

    def node_at(self, addr: tuple[str, int]) -> Pod:
        return next(n for n in self.nodes if (n.address, n.port) == addr)

    def info(self, pod: Pod) -> dict[str, Any]:
        with pod.client(self.password, socket_timeout=2) as c:
            return c.info("replication")

    def agreed_leader(self) -> Pod:
        views = self.leader_views()
        assert len(views) == 1, views
        return self.node_at(views.pop())

    def wait_formed(self, timeout: float = 60) -> Pod:
        def formed() -> Pod | None:
            views = self.leader_views()
            if len(views) != 1:
                return None
            leader = self.node_at(next(iter(views)))
            if self.info(leader).get("connected_slaves") != len(self.nodes) - 1:
                return None
            for s in self.sentinels:
                with self.sentinel_client(s) as c:
                    m = c.sentinel_master(self.group)
                    if m["num-slaves"] != len(self.nodes) - 1 or m["num-other-sentinels"] != len(self.sentinels) - 1:
                        return None
            return leader

        try:
            return wait_until(formed, timeout, interval=0.25, what="the rendered pods formed a cluster")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n{self.logs()}") from None


@pytest.fixture(
    params=[
        pytest.param(({"auth": {"enabled": False}}, None), id="async-no-auth"),
        pytest.param(({"durability": "semi-sync", "auth": {"enabled": True}}, PASSWORD), id="semisync-auth"),
    ]
)
def rendered(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RenderedCluster]:
    extra, password = request.param
    cluster = RenderedCluster(tmp_path, _kvcluster(extra), password)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_rendered_pods_form_a_cluster_fail_over_and_the_restarted_leader_pod_rejoins(
    rendered: RenderedCluster,
) -> None:
    cluster = rendered
    leader = cluster.wait_formed()
    assert leader.name == f"{NAME}-node-0"  # first creation: pod 0 leads (sentinels' --monitor / bootstrap)
    for node in cluster.nodes:
        if node is not leader:
            info = cluster.info(node)
            assert info["role"] == "slave" and info["master_link_status"] == "up"
    if cluster.password:
        with leader.client(None) as c, pytest.raises(redis.AuthenticationError):
            c.set("k", "v")
    # A client as the README tells it to connect: through the sentinels, with the password.
    sentinel = redis.sentinel.Sentinel(
        [(s.address, s.port) for s in cluster.sentinels],
        socket_timeout=2,
        password=cluster.password,
        sentinel_kwargs={"password": cluster.password, "socket_timeout": 2},
    )
    try:
        master = sentinel.master_for(cluster.group, socket_timeout=2)
        master.set("before", "failover")
        assert master.get("before") == b"failover"
        assert master.wait(len(cluster.nodes) - 1, 5000) == len(cluster.nodes) - 1  # async: on the replicas first
        # kill -9 of the leader pod's process: the sentinels fail over to a replica.
        leader.kill()

        def failed_over() -> Pod | None:
            views = cluster.leader_views()
            if len(views) != 1 or views == {(leader.address, leader.port)}:
                return None
            return cluster.node_at(views.pop())

        new_leader = wait_until(failed_over, 60, interval=0.25, what="all sentinels failed over to a replica")
        wait_until(lambda: master.set("after", "failover"), 30, interval=0.2, what="writes on the new leader")
        assert master.get("before") == b"failover"
        # The pod restarts with the same spec: it asks the sentinels and comes back as a replica.
        leader.start()
        leader.wait_ready()
        info = cluster.info(leader)
        assert info["role"] == "slave", leader.log()
        assert (info["master_host"], info["master_port"]) == (new_leader.address, new_leader.port)
        with leader.client(cluster.password) as c, pytest.raises(redis.ReadOnlyError):
            c.set("split-brain", 1)
        wait_until(lambda: cluster.info(leader)["master_link_status"] == "up", 30, what="old leader in sync")
        with leader.client(cluster.password) as c:
            wait_until(lambda: c.get("after") == b"failover", 20, what="the restarted pod has the new writes")
        assert "Leader discovery: starting as replica of" in leader.log()
        assert cluster.agreed_leader() is new_leader
    finally:
        sentinel.close()
