"""The desired state of a KVCluster: every child object, computed by a pure function.

Interface (engineers D, E, F build on this; names follow interface K of the team):

    desired(kvcluster: Mapping, *, password: str | None = None) -> list[dict]

``kvcluster`` is the whole custom resource as the API returns it (``metadata.name``,
``metadata.namespace``, ``metadata.uid`` and ``spec``; the spec is defaulted with
:func:`kvcluster.operator.spec.with_defaults` first, so a spec written before a new field
existed still renders). ``password`` is the auth password when the spec asks for a generated
one (``spec.auth.enabled`` and no ``spec.auth.existingSecret``): the caller generates it once,
or reads it back from the existing Secret, and passes it in; with ``password=None`` the Secret is
left out of the list (so a reconcile that does not know the password never overwrites it).
The function reads no clock, no randomness and no API: the same input gives the same list, in
the same order (the order a create should follow: config and Secret, Services, StatefulSets,
PDBs, NetworkPolicy, ServiceMonitor).

Objects, for a KVCluster ``<name>`` in ``<ns>`` (every one with labels
``app.kubernetes.io/{name=kvcluster,instance=<name>,managed-by=kvcluster-operator}``, a
``component`` label, and an ownerReference to the KVCluster with controller=true and
blockOwnerDeletion=true):

    ConfigMap    <name>-node-config        node.conf: redis.conf syntax, ``kvcluster node --config``
    ConfigMap    <name>-sentinel-config    sentinel.yaml: ``kvcluster sentinel --config`` (YAML, so the
                                           sentinel's state goes to its data dir, not the read-only mount)
    Secret       <name>-auth               key ``password``; only generated auth and ``password`` given
    Service      <name>-node-headless      headless, publishNotReadyAddresses (pod DNS before readiness)
    Service      <name>-sentinel-headless  headless, publishNotReadyAddresses
    Service      <name>                    the sentinels, port 26379 (what clients discover the leader from)
    Service      <name>-leader             port 6379, selects kvcluster.io/role=leader (labels set by D)
    Service      <name>-replicas           port 6379, selects kvcluster.io/role=replica
    StatefulSet  <name>-node               pods <name>-node-N, updateStrategy OnDelete, PVC template ``data``
                                           (or an emptyDir when spec.storage.ephemeral)
    StatefulSet  <name>-sentinel           pods <name>-sentinel-N, RollingUpdate, PVC template ``data``
    PodDisruptionBudget <name>-node, <name>-sentinel   (spec.pdb.enabled)
    NetworkPolicy       <name>                          (spec.networkPolicy.enabled)
    ServiceMonitor      <name>   monitoring.coreos.com/v1 (spec.metrics.enabled and .serviceMonitor)

Ports: node 6379, node admin (HTTP /metrics /healthz /readyz) 9121, sentinel 26379, sentinel
admin 9122. Node pods announce ``$(POD_NAME).<name>-node-headless.<ns>.svc.cluster.local``; every
node's config says ``replicaof <name>-node-0.<...> 6379`` (the bootstrap rule makes pod 0 the
first leader) and lists every sentinel pod as ``leader-discovery-sentinels``. The password
reaches the processes only through environment variables from the Secret, never a ConfigMap.

Rolling upgrades: the node StatefulSet's pod template (and the StatefulSet itself) carries the
annotation ``kvcluster.io/revision``, a hash of everything whose change needs a node restart
(pod spec and node config; not the pod labels/annotations, not the start-up-only sentinel list,
so scaling the sentinels restarts no node). Engineer D's rollout compares each pod's annotation
with the StatefulSet's. ``REVISION_ANNOTATION`` names it. The sentinel StatefulSet rolls by
itself (RollingUpdate, one pod at a time) and carries the same annotation.

The pods, as a kubelet would run them (what a wiring test substitutes):

    node:     kvcluster node --config /etc/kvcluster/node.conf           (CONFIG_DIR, NODE_CONFIG_FILE)
    sentinel: kvcluster sentinel --config /etc/kvcluster/sentinel.yaml   (SENTINEL_CONFIG_FILE)
    volumes:  CONFIG_DIR the ConfigMap (read-only), DATA_DIR=/data the PVC or emptyDir, /tmp an emptyDir
    env:      POD_NAME (downward API); node: KVCLUSTER_REPLICA_ANNOUNCE_IP=$(POD_NAME).<headless>...,
              KVCLUSTER_REQUIREPASS, KVCLUSTER_MASTERAUTH, KVCLUSTER_LEADER_DISCOVERY_PASSWORD;
              sentinel: KVCLUSTER_ANNOUNCE_IP=$(POD_NAME).<headless>..., KVCLUSTER_REQUIREPASS,
              KVCLUSTER_SENTINEL_PASS, KVCLUSTER_AUTH_PASS (all passwords: secretKeyRef to one Secret)
    files:    node.conf binds 0.0.0.0:6379, admin 0.0.0.0:9121, dir /data, replicaof pod 0, durability,
              min-replicas-*, leader-discovery-{sentinels,group,timeout}; sentinel.yaml binds
              0.0.0.0:26379, admin 9122, dir /data, monitor <group> pod-0 6379 <quorum>,
              down-after-milliseconds, failover-timeout, parallel-syncs, sentinel-peers (every
              sentinel pod), resolve-hostnames and announce-hostnames yes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import yaml
from kvcluster.operator.crd import API_VERSION, KIND
from kvcluster.operator.spec import config_setting, effective_quorum, parse_config_value, with_defaults

NODE_PORT = 6379
NODE_ADMIN_PORT = 9121
SENTINEL_PORT = 26379
SENTINEL_ADMIN_PORT = 9122

CONFIG_DIR = "/etc/kvcluster"  # the ConfigMap's mount (read-only)
DATA_DIR = "/data"  # the PVC or emptyDir
TMP_DIR = "/tmp"  # an emptyDir: the root filesystem is read-only
NODE_CONFIG_FILE = "node.conf"
SENTINEL_CONFIG_FILE = "sentinel.yaml"
RUN_AS_USER = 10001  # the image's user (Dockerfile)

REVISION_ANNOTATION = "kvcluster.io/revision"
ROLE_LABEL = "kvcluster.io/role"
METRICS_LABEL = "kvcluster.io/metrics"
OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "kvcluster-operator"}  # the chart's operator pods

# Settings the pods read only at start-up to find their peers: a change (scaling the sentinels)
# must not force a restart, so they stay out of the revision hash; a pod started later reads the
# ConfigMap as it is then.
_DISCOVERY_ONLY = ("leader-discovery-sentinels", "sentinel-peers")
# Group settings a sentinel takes from its config only when it first monitors the group (its saved
# state wins afterwards): restarting for them would change nothing, so they stay out of the hash.
_SENTINEL_GROUP_SETTINGS = ("monitor", "down-after-milliseconds", "failover-timeout", "parallel-syncs")
# How long a starting node asks the sentinels who leads before falling back to its replicaof (the
# bootstrap rule): generous, so a node restarted while the sentinels restart too waits for them.
LEADER_DISCOVERY_TIMEOUT_MS = 30000


class Names:
    """Object names and DNS names of one KVCluster (interface K)."""

    def __init__(self, name: str, namespace: str):
        self.name = name
        self.namespace = namespace
        self.node = f"{name}-node"
        self.sentinel = f"{name}-sentinel"
        self.node_headless = f"{name}-node-headless"
        self.sentinel_headless = f"{name}-sentinel-headless"
        self.leader = f"{name}-leader"
        self.replicas = f"{name}-replicas"
        self.node_config = f"{name}-node-config"
        self.sentinel_config = f"{name}-sentinel-config"
        self.auth = f"{name}-auth"

    def node_host(self, ordinal: int | str) -> str:
        return f"{self.node}-{ordinal}.{self.node_headless}.{self.namespace}.svc.cluster.local"

    def sentinel_host(self, ordinal: int | str) -> str:
        return f"{self.sentinel}-{ordinal}.{self.sentinel_headless}.{self.namespace}.svc.cluster.local"


def labels(name: str, component: str | None = None) -> dict[str, str]:
    """The labels every child carries; with ``component`` also the selector labels of its pods."""
    out = {
        "app.kubernetes.io/name": "kvcluster",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "kvcluster-operator",
    }
    if component:
        out["app.kubernetes.io/component"] = component
    return out


def selector(name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "kvcluster",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": component,
    }


def image_reference(spec: Mapping[str, Any]) -> str:
    """``image:version``, unless the image already names a tag or digest."""
    image = spec["image"]
    last = image.rsplit("/", 1)[-1]
    return image if "@" in image or ":" in last else f"{image}:{spec['version']}"


def auth_secret(kvcluster: Mapping[str, Any]) -> tuple[str, str] | None:
    """(Secret name, key) the password comes from, or None without auth."""
    spec = with_defaults(kvcluster.get("spec"))
    auth = spec["auth"]
    if not auth["enabled"]:
        return None
    return auth.get("existingSecret") or Names(kvcluster["metadata"]["name"], "").auth, auth["secretKey"]


def generates_secret(kvcluster: Mapping[str, Any]) -> bool:
    """Whether the operator owns (generates) the auth Secret."""
    auth = with_defaults(kvcluster.get("spec"))["auth"]
    return bool(auth["enabled"]) and not auth.get("existingSecret")


def desired(kvcluster: Mapping[str, Any], *, password: str | None = None) -> list[dict[str, Any]]:
    """Every child object of ``kvcluster``, in creation order (see the module docstring). Pure."""
    meta = kvcluster["metadata"]
    spec = with_defaults(kvcluster.get("spec"))
    names = Names(meta["name"], meta.get("namespace") or "default")
    owner = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }
    secret = auth_secret(kvcluster)

    node_conf = node_config_text(spec, names)
    sentinel_conf = sentinel_config_text(spec, names)
    objects: list[dict[str, Any]] = [
        _config_map(names.node_config, names, "node", {NODE_CONFIG_FILE: node_conf}),
        _config_map(names.sentinel_config, names, "sentinel", {SENTINEL_CONFIG_FILE: sentinel_conf}),
    ]
    if generates_secret(kvcluster) and password is not None:
        objects.append(_secret(names, spec["auth"]["secretKey"], password))
    objects += _services(spec, names)
    objects.append(_sentinel_statefulset(spec, names, secret))
    objects.append(_node_statefulset(spec, names, secret, node_conf))
    if spec["pdb"]["enabled"]:
        objects += [_pdb(names.node, names, "node"), _pdb(names.sentinel, names, "sentinel")]
    if spec["networkPolicy"]["enabled"]:
        objects.append(_network_policy(spec, names))
    if spec["metrics"]["enabled"] and spec["metrics"]["serviceMonitor"]["enabled"]:
        objects.append(_service_monitor(spec, names))
    for obj in objects:
        obj["metadata"]["ownerReferences"] = [dict(owner)]
    return objects


# -- configuration files -----------------------------------------------------------------------


def node_config_text(spec: Mapping[str, Any], names: Names) -> str:
    """node.conf (redis.conf syntax): the operator's settings, then spec.config."""
    sentinels = " ".join(f"{names.sentinel_host(i)}:{SENTINEL_PORT}" for i in range(spec["sentinels"]))
    owned = [
        ("port", str(NODE_PORT)),
        ("bind", "0.0.0.0"),
        ("admin-port", str(NODE_ADMIN_PORT)),
        ("admin-bind", "0.0.0.0"),
        ("dir", DATA_DIR),
        # The bootstrap rule: every pod names pod 0; pod 0 sees its own address and leads (at epoch 1).
        ("replicaof", f"{names.node_host(0)} {NODE_PORT}"),
        ("durability", spec["durability"]),
        ("min-replicas-to-write", str(spec["minReplicasToWrite"])),
        ("min-replicas-max-lag", str(spec["minReplicasMaxLag"])),
        ("leader-discovery-group", spec["sentinel"]["masterName"]),
        ("leader-discovery-timeout", str(LEADER_DISCOVERY_TIMEOUT_MS)),
        ("leader-discovery-sentinels", sentinels),
    ]
    # Defaults of ours the user may change through spec.config: a data volume means an AOF.
    defaults = {"appendonly": "yes", "appendfsync": "everysec"}
    lines = [
        "# Rendered by kvcluster-operator from the KVCluster "
        f"{names.namespace}/{names.name}: edit the KVCluster, not this file.",
        "# Passwords come from the environment (KVCLUSTER_REQUIREPASS, ...), never from this file.",
    ]
    lines += [f"{key} {value}" for key, value in owned]
    user = _config_lines(spec["config"])
    user_names = {line.split(" ", 1)[0] for line in user}
    lines += [f"{key} {value}" for key, value in defaults.items() if key not in user_names]
    if user:
        lines.append("# spec.config")
        lines += user
    return "\n".join(lines) + "\n"


def _config_lines(config: Mapping[str, Any]) -> list[str]:
    """spec.config as redis.conf lines, in the node's canonical spelling, sorted by name."""
    lines = []
    for key in sorted(config):
        setting, error = config_setting(key)
        if setting is None:
            raise ValueError(error)  # validate() reports it; desired() refuses to render it
        lines += setting.config_lines(parse_config_value(setting, config[key]))
    return lines


def sentinel_config_text(spec: Mapping[str, Any], names: Names) -> str:
    """sentinel.yaml: YAML, so the sentinel keeps its state in DATA_DIR, not in the read-only mount."""
    header = (
        f"# Rendered by kvcluster-operator from the KVCluster {names.namespace}/{names.name}.\n"
        "# The group settings apply when a sentinel first monitors the group; its saved state\n"
        f"# ({DATA_DIR}/sentinel-state.conf) wins afterwards. Passwords come from the environment.\n"
    )
    return header + yaml.safe_dump(sentinel_settings(spec, names), sort_keys=False, width=1000)


def sentinel_settings(spec: Mapping[str, Any], names: Names) -> dict[str, Any]:
    """The sentinel's settings, as sentinel.yaml holds them."""
    sentinel = spec["sentinel"]
    return {
        "port": SENTINEL_PORT,
        "bind": ["0.0.0.0"],
        "admin-port": SENTINEL_ADMIN_PORT,
        "admin-bind": "0.0.0.0",
        "dir": DATA_DIR,
        "resolve-hostnames": True,
        "announce-hostnames": True,
        "monitor": [sentinel["masterName"], names.node_host(0), NODE_PORT, effective_quorum(spec)],
        "down-after-milliseconds": sentinel["downAfterMilliseconds"],
        "failover-timeout": sentinel["failoverTimeout"],
        "parallel-syncs": sentinel["parallelSyncs"],
        "sentinel-peers": [f"{names.sentinel_host(i)}:{SENTINEL_PORT}" for i in range(spec["sentinels"])],
    }


def _without_lines(text: str, keys: tuple[str, ...]) -> str:
    """redis.conf text without comments and the lines of ``keys`` (one line per directive)."""
    kept = [line for line in text.splitlines() if line.split(" ", 1)[0] not in keys and not line.startswith("#")]
    return "\n".join(kept)


def _hash(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- objects ------------------------------------------------------------------------------------


def _metadata(name: str, names: Names, component: str | None) -> dict[str, Any]:
    return {"name": name, "namespace": names.namespace, "labels": labels(names.name, component)}


def _config_map(name: str, names: Names, component: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(name, names, component), "data": data}


def _secret(names: Names, key: str, password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(names.auth, names, None),
        "type": "Opaque",
        "data": {key: base64.b64encode(password.encode()).decode()},
    }


def _service(
    name: str,
    names: Names,
    component: str,
    ports: list[dict[str, Any]],
    *,
    headless: bool = False,
    extra_selector: dict[str, str] | None = None,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    metadata = _metadata(name, names, component)
    metadata["labels"].update(extra_labels or {})
    spec: dict[str, Any] = {
        "selector": {**selector(names.name, component), **(extra_selector or {})},
        "ports": ports,
    }
    if headless:
        # Pod DNS names must resolve before the pods are ready: a replica syncs from the leader,
        # and a sentinel reaches its peers, before either passes its readiness probe.
        spec.update({"clusterIP": "None", "publishNotReadyAddresses": True})
    else:
        spec["type"] = "ClusterIP"
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def _port(name: str, port: int, target: str) -> dict[str, Any]:
    return {"name": name, "port": port, "targetPort": target, "protocol": "TCP"}


def _services(spec: Mapping[str, Any], names: Names) -> list[dict[str, Any]]:
    metrics = spec["metrics"]["enabled"]
    marker = {METRICS_LABEL: "true"} if metrics else {}
    node_ports = [_port("redis", NODE_PORT, "redis")]
    sentinel_ports = [_port("sentinel", SENTINEL_PORT, "sentinel")]
    if metrics:
        node_ports.append(_port("metrics", NODE_ADMIN_PORT, "admin"))
        sentinel_ports.append(_port("metrics", SENTINEL_ADMIN_PORT, "admin"))
    return [
        _service(names.node_headless, names, "node", node_ports, headless=True, extra_labels=marker),
        _service(names.sentinel_headless, names, "sentinel", sentinel_ports, headless=True, extra_labels=marker),
        _service(names.name, names, "sentinel", [_port("sentinel", SENTINEL_PORT, "sentinel")]),
        _service(
            names.leader, names, "node", [_port("redis", NODE_PORT, "redis")], extra_selector={ROLE_LABEL: "leader"}
        ),
        _service(
            names.replicas, names, "node", [_port("redis", NODE_PORT, "redis")], extra_selector={ROLE_LABEL: "replica"}
        ),
    ]


def _password_env(secret: tuple[str, str] | None, variables: tuple[str, ...]) -> list[dict[str, Any]]:
    if secret is None:
        return []
    ref = {"secretKeyRef": {"name": secret[0], "key": secret[1]}}
    return [{"name": var, "valueFrom": copy.deepcopy(ref)} for var in variables]


def _security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _probes(port: str, startup_seconds: int) -> dict[str, Any]:
    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": port},
            "periodSeconds": period,
            "timeoutSeconds": 3,
            "failureThreshold": failures,
        }

    return {
        # Loading a large dataset (or waiting for the sentinels at start-up) may take minutes:
        # liveness only starts once /healthz has answered.
        "startupProbe": probe("/healthz", 5, max(1, startup_seconds // 5)),
        "livenessProbe": probe("/healthz", 10, 6),
        "readinessProbe": probe("/readyz", 5, 2),
    }


def _affinity(spec: Mapping[str, Any], names: Names, component: str) -> dict[str, Any] | None:
    template = spec["podTemplate"]
    affinity = copy.deepcopy(template.get("affinity") or {})
    mode = template["antiAffinity"]
    if "podAntiAffinity" not in affinity and mode != "none":
        term = {
            "labelSelector": {"matchLabels": selector(names.name, component)},
            "topologyKey": "kubernetes.io/hostname",
        }
        if mode == "required":
            affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
        else:
            affinity["podAntiAffinity"] = {
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]
            }
    return affinity or None


def _pod_spec(
    spec: Mapping[str, Any], names: Names, component: str, container: dict[str, Any], volumes: list[dict[str, Any]]
) -> dict[str, Any]:
    template = spec["podTemplate"]
    pod: dict[str, Any] = {
        # A Service named "kvcluster" would put KVCLUSTER_PORT=tcp://... into every pod: our settings' names.
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,  # the pods never talk to the Kubernetes API
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": volumes,
    }
    if spec["imagePullSecrets"]:
        pod["imagePullSecrets"] = copy.deepcopy(spec["imagePullSecrets"])
    if template["nodeSelector"]:
        pod["nodeSelector"] = dict(template["nodeSelector"])
    if template["tolerations"]:
        pod["tolerations"] = copy.deepcopy(template["tolerations"])
    affinity = _affinity(spec, names, component)
    if affinity:
        pod["affinity"] = affinity
    if template["topologySpreadConstraints"]:
        constraints = copy.deepcopy(template["topologySpreadConstraints"])
        for constraint in constraints:
            constraint.setdefault("labelSelector", {"matchLabels": selector(names.name, component)})
        pod["topologySpreadConstraints"] = constraints
    if template.get("priorityClassName"):
        pod["priorityClassName"] = template["priorityClassName"]
    return pod


def _pod_metadata(spec: Mapping[str, Any], names: Names, component: str, admin_port: int) -> dict[str, Any]:
    template = spec["podTemplate"]
    annotations = dict(template["annotations"])
    if spec["metrics"]["enabled"]:
        annotations.update(
            {"prometheus.io/scrape": "true", "prometheus.io/port": str(admin_port), "prometheus.io/path": "/metrics"}
        )
    # The user's labels first: ours (the selector) win.
    return {"labels": {**template["labels"], **labels(names.name, component)}, "annotations": annotations}


def _volumes(
    spec: Mapping[str, Any], config_map: str, size_key: str, component: str, names: Names
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pod volumes, volumeClaimTemplates) for a component."""
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": config_map}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    storage = spec["storage"]
    if storage["ephemeral"]:
        volumes.append({"name": "data", "emptyDir": {}})
        return volumes, []
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage[size_key]}},
    }
    if storage.get("storageClassName"):
        claim_spec["storageClassName"] = storage["storageClassName"]
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "labels": labels(names.name, component)},
        "spec": claim_spec,
    }
    return volumes, [claim]


def _mounts() -> list[dict[str, Any]]:
    return [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "data", "mountPath": DATA_DIR},
        {"name": "tmp", "mountPath": TMP_DIR},
    ]


def _pod_name_env() -> dict[str, Any]:
    return {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}


def _statefulset(
    spec: Mapping[str, Any],
    names: Names,
    component: str,
    name: str,
    headless: str,
    replicas: int,
    pod_metadata: dict[str, Any],
    pod_spec: dict[str, Any],
    claims: list[dict[str, Any]],
    update_strategy: dict[str, Any],
) -> dict[str, Any]:
    retain = "Retain" if spec["storage"]["retainOnDelete"] else "Delete"
    body: dict[str, Any] = {
        "serviceName": headless,
        "replicas": replicas,
        # Parallel: every pod starts at once, which the bootstrap rule and start-up discovery make
        # safe; OrderedReady would keep pod N+1 from being recreated while pod N is not ready (a
        # replica re-syncing after a failover) and gains nothing: updates are OnDelete (nodes) or
        # one at a time anyway, and scale-down order is the operator's (highest ordinals first).
        "podManagementPolicy": "Parallel",
        "updateStrategy": update_strategy,
        "selector": {"matchLabels": selector(names.name, component)},
        "template": {"metadata": pod_metadata, "spec": pod_spec},
        "revisionHistoryLimit": 5,
    }
    if claims:
        body["volumeClaimTemplates"] = claims
        # Data outlives a scale-down (scaling up again re-syncs from it); deletion follows spec.
        body["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": retain, "whenScaled": "Retain"}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _metadata(name, names, component), "spec": body}


def _node_statefulset(
    spec: Mapping[str, Any], names: Names, secret: tuple[str, str] | None, node_conf: str
) -> dict[str, Any]:
    volumes, claims = _volumes(spec, names.node_config, "size", "node", names)
    env = [
        _pod_name_env(),
        # Announce the stable pod DNS name, never the pod IP: sentinels and replicas reach it after restarts.
        {
            "name": "KVCLUSTER_REPLICA_ANNOUNCE_IP",
            "value": f"$(POD_NAME).{names.node_headless}.{names.namespace}.svc.cluster.local",
        },
    ]
    env += _password_env(
        secret, ("KVCLUSTER_REQUIREPASS", "KVCLUSTER_MASTERAUTH", "KVCLUSTER_LEADER_DISCOVERY_PASSWORD")
    )
    container = {
        "name": "node",
        "image": image_reference(spec),
        "imagePullPolicy": spec["imagePullPolicy"],
        "command": ["kvcluster"],
        "args": ["node", "--config", f"{CONFIG_DIR}/{NODE_CONFIG_FILE}"],
        "env": env,
        "ports": [
            {"name": "redis", "containerPort": NODE_PORT, "protocol": "TCP"},
            {"name": "admin", "containerPort": NODE_ADMIN_PORT, "protocol": "TCP"},
        ],
        **_probes("admin", startup_seconds=600),
        "resources": copy.deepcopy(spec["resources"]["node"]),
        "securityContext": _security_context(),
        "volumeMounts": _mounts(),
    }
    pod_spec = _pod_spec(spec, names, "node", container, volumes)
    pod_metadata = _pod_metadata(spec, names, "node", NODE_ADMIN_PORT)
    # Everything whose change needs a node restart: the pod spec and the node config, minus the
    # start-up-only sentinel list. Pod labels and annotations are not in it (no restart needed).
    revision = _hash(pod_spec, _without_lines(node_conf, _DISCOVERY_ONLY))
    pod_metadata["annotations"][REVISION_ANNOTATION] = revision
    sts = _statefulset(
        spec,
        names,
        "node",
        names.node,
        names.node_headless,
        spec["replicas"],
        pod_metadata,
        pod_spec,
        claims,
        # The operator restarts node pods itself, replicas first and the leader last after a
        # planned failover; the StatefulSet controller would restart the leader whenever.
        {"type": "OnDelete"},
    )
    sts["metadata"]["annotations"] = {REVISION_ANNOTATION: revision}
    return sts


def _sentinel_statefulset(spec: Mapping[str, Any], names: Names, secret: tuple[str, str] | None) -> dict[str, Any]:
    volumes, claims = _volumes(spec, names.sentinel_config, "sentinelSize", "sentinel", names)
    env = [
        _pod_name_env(),
        {
            "name": "KVCLUSTER_ANNOUNCE_IP",
            "value": f"$(POD_NAME).{names.sentinel_headless}.{names.namespace}.svc.cluster.local",
        },
    ]
    # One password for everything: clients and peers AUTH to the sentinels with it, the sentinels to the nodes.
    env += _password_env(secret, ("KVCLUSTER_REQUIREPASS", "KVCLUSTER_SENTINEL_PASS", "KVCLUSTER_AUTH_PASS"))
    container = {
        "name": "sentinel",
        "image": image_reference(spec),
        "imagePullPolicy": spec["imagePullPolicy"],
        "command": ["kvcluster"],
        "args": ["sentinel", "--config", f"{CONFIG_DIR}/{SENTINEL_CONFIG_FILE}"],
        "env": env,
        "ports": [
            {"name": "sentinel", "containerPort": SENTINEL_PORT, "protocol": "TCP"},
            {"name": "admin", "containerPort": SENTINEL_ADMIN_PORT, "protocol": "TCP"},
        ],
        **_probes("admin", startup_seconds=120),
        "resources": copy.deepcopy(spec["resources"]["sentinel"]),
        "securityContext": _security_context(),
        "volumeMounts": _mounts(),
    }
    pod_spec = _pod_spec(spec, names, "sentinel", container, volumes)
    pod_metadata = _pod_metadata(spec, names, "sentinel", SENTINEL_ADMIN_PORT)
    # The sentinels roll one at a time by themselves (a majority stays up); the hash makes a
    # config change that matters roll them too.
    restart_settings = {
        key: value
        for key, value in sentinel_settings(spec, names).items()
        if key not in _DISCOVERY_ONLY + _SENTINEL_GROUP_SETTINGS
    }
    revision = _hash(pod_spec, restart_settings)
    pod_metadata["annotations"][REVISION_ANNOTATION] = revision
    sts = _statefulset(
        spec,
        names,
        "sentinel",
        names.sentinel,
        names.sentinel_headless,
        spec["sentinels"],
        pod_metadata,
        pod_spec,
        claims,
        {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
    )
    sts["spec"]["minReadySeconds"] = 5
    sts["metadata"]["annotations"] = {REVISION_ANNOTATION: revision}
    return sts


def _pdb(name: str, names: Names, component: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(name, names, component),
        "spec": {
            # One node and one sentinel at a time: a drain never takes the leader and its only
            # synced replica, or a sentinel majority, at once.
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector(names.name, component)},
            # A pod that is not ready protects nothing: let drains evict it.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def _network_policy(spec: Mapping[str, Any], names: Names) -> dict[str, Any]:
    def ports(*numbers: int) -> list[dict[str, Any]]:
        return [{"protocol": "TCP", "port": n} for n in numbers]

    own_pods = {
        "podSelector": {
            "matchLabels": {"app.kubernetes.io/instance": names.name, "app.kubernetes.io/name": "kvcluster"}
        }
    }
    operator = {"namespaceSelector": {}, "podSelector": {"matchLabels": dict(OPERATOR_POD_LABELS)}}
    ingress = [
        {"from": copy.deepcopy(spec["networkPolicy"]["clients"]), "ports": ports(NODE_PORT, SENTINEL_PORT)},
        # Replication, sentinel health checks and the sentinels' gossip.
        {"from": [own_pods], "ports": ports(NODE_PORT, SENTINEL_PORT)},
        # The operator observes the sentinels (and the leader's replication offsets).
        {"from": [operator], "ports": ports(NODE_PORT, SENTINEL_PORT, NODE_ADMIN_PORT, SENTINEL_ADMIN_PORT)},
    ]
    if spec["metrics"]["enabled"]:
        ingress.append({"from": [{"namespaceSelector": {}}], "ports": ports(NODE_ADMIN_PORT, SENTINEL_ADMIN_PORT)})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(names.name, names, None),
        "spec": {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/instance": names.name, "app.kubernetes.io/name": "kvcluster"}
            },
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def _service_monitor(spec: Mapping[str, Any], names: Names) -> dict[str, Any]:
    monitor = spec["metrics"]["serviceMonitor"]
    metadata = _metadata(names.name, names, None)
    metadata["labels"].update(monitor["labels"])
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata,
        "spec": {
            # The two headless Services: every node and sentinel pod, ready or not.
            "selector": {"matchLabels": {"app.kubernetes.io/instance": names.name, METRICS_LABEL: "true"}},
            "namespaceSelector": {"matchNames": [names.namespace]},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": monitor["interval"]}],
        },
    }
