"""The KVCluster CustomResourceDefinition (``kvclusters.kvcluster.io``), built in Python.

``crd()`` returns the CRD as a dict; ``python -m kvcluster.operator.crd`` prints it as YAML (the
chart's ``crds/`` file and ``manifests/crd.yaml`` are generated from it and a test keeps them
equal). The schema is structural (every field typed, unknown fields pruned), carries the same
defaults as :data:`kvcluster.operator.spec.DEFAULTS`, enums and bounds, and CEL rules
(``x-kubernetes-validations``) for what one field alone cannot say: odd sentinels, a quorum not
above the sentinel count, semi-sync needing a replica, storage that cannot change once created.
The status subresource holds what the operator observes (see :data:`STATUS_FIELDS`).
"""

from __future__ import annotations

import sys
from typing import Any

from kvcluster.operator import spec as spec_module
from kvcluster.operator.spec import DEFAULTS, MAX_NAME_LENGTH

GROUP = "kvcluster.io"
VERSION = "v1alpha1"
KIND = "KVCluster"
PLURAL = "kvclusters"
NAME = f"{PLURAL}.{GROUP}"
API_VERSION = f"{GROUP}/{VERSION}"

Schema = dict[str, Any]

# Kubernetes's resource.Quantity, as controller-gen writes it.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _integer(
    description: str, default: int | None = None, minimum: int | None = None, maximum: int | None = None
) -> Schema:
    schema: Schema = {"type": "integer", "description": description}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    if default is not None:
        schema["default"] = default
    return schema


def _string(description: str, default: str | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "string", "description": description, **extra}
    if default is not None:
        schema["default"] = default
    return schema


def _boolean(description: str, default: bool) -> Schema:
    return {"type": "boolean", "description": description, "default": default}


def _object(description: str, properties: dict[str, Schema], default: Any = None, **extra: Any) -> Schema:
    # ``default: {}`` on an object lets the defaults of its fields apply when the object is missing.
    schema: Schema = {"type": "object", "description": description, "properties": properties, **extra}
    schema["default"] = {} if default is None else default
    return schema


def _string_map(description: str) -> Schema:
    return {"type": "object", "description": description, "additionalProperties": {"type": "string"}, "default": {}}


def _free_object(description: str) -> Schema:
    """A Kubernetes type we pass through as is (affinity, a toleration): the API server checks it in the pod."""
    return {"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": True}


def _free_list(description: str) -> Schema:
    return {"type": "array", "description": description, "items": _free_object("one item"), "default": []}


def _quantity(description: str, default: Any = None) -> Schema:
    schema: Schema = {
        "description": description,
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": QUANTITY_PATTERN,
    }
    if default is not None:
        schema["default"] = default
    return schema


def _resources(description: str, default: dict[str, Any]) -> Schema:
    amounts = {"type": "object", "additionalProperties": _quantity("an amount: 500m, 1Gi")}
    return {
        "type": "object",
        "description": description,
        "properties": {
            "requests": {**amounts, "description": "requests"},
            "limits": {**amounts, "description": "limits"},
        },
        "default": default,
    }


def _immutable(schema: Schema, what: str) -> Schema:
    rule = {"rule": "self == oldSelf", "message": f"{what} cannot be changed once the cluster exists"}
    return {**schema, "x-kubernetes-validations": [rule]}


def spec_schema() -> Schema:
    d = DEFAULTS
    storage = d["storage"]
    sentinel = d["sentinel"]
    template = d["podTemplate"]
    metrics = d["metrics"]
    monitor = metrics["serviceMonitor"]
    properties: dict[str, Schema] = {
        "replicas": _integer("Data pods in total: one leader and replicas-1 replicas.", d["replicas"], 1, 100),
        "sentinels": _integer("Sentinel pods; odd, 3 or more for automatic failover.", d["sentinels"], 1, 15),
        "image": _string("Container image (node, sentinel and operator share one).", d["image"], minLength=1),
        "version": _string(
            "Image tag; changing it starts a rolling upgrade.",
            d["version"],
            pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        ),
        "imagePullPolicy": _string(
            "Pull policy of the pods.", d["imagePullPolicy"], enum=list(spec_module.PULL_POLICIES)
        ),
        "imagePullSecrets": {
            "type": "array",
            "description": "Secrets for pulling the image.",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            "default": [],
        },
        "resources": _object(
            "Container resources.",
            {
                "node": _resources("Resources of each data node container.", d["resources"]["node"]),
                "sentinel": _resources("Resources of each sentinel container.", d["resources"]["sentinel"]),
            },
        ),
        "storage": _object(
            "Where the nodes keep their data (AOF and snapshots) and the sentinels their state.",
            {
                "size": _immutable(
                    _string("Size of each node's volume.", storage["size"], pattern=QUANTITY_PATTERN),
                    "spec.storage.size",
                ),
                "sentinelSize": _immutable(
                    _string("Size of each sentinel's volume.", storage["sentinelSize"], pattern=QUANTITY_PATTERN),
                    "spec.storage.sentinelSize",
                ),
                "storageClassName": _immutable(
                    _string("StorageClass of the volumes (default: the cluster's default class)."),
                    "spec.storage.storageClassName",
                ),
                "ephemeral": _immutable(
                    _boolean(
                        "emptyDir volumes instead of PersistentVolumeClaims (data lives as long as the pod).", False
                    ),
                    "spec.storage.ephemeral",
                ),
                "retainOnDelete": _boolean(
                    "Keep the PersistentVolumeClaims when the KVCluster is deleted.", storage["retainOnDelete"]
                ),
            },
        ),
        "durability": _string(
            "async: a write is acknowledged at once; semi-sync: once a replica has it.",
            d["durability"],
            enum=list(spec_module.DURABILITY_MODES),
        ),
        "minReplicasToWrite": _integer(
            "The leader refuses writes unless this many replicas are connected (min-replicas-to-write).",
            d["minReplicasToWrite"],
            0,
        ),
        "minReplicasMaxLag": _integer(
            "Seconds a replica's last acknowledgement may be old to count (min-replicas-max-lag; the leader lease).",
            d["minReplicasMaxLag"],
            1,
        ),
        "auth": _object(
            "Password authentication for clients, replicas and sentinels.",
            {
                "enabled": _boolean("Require a password.", d["auth"]["enabled"]),
                "existingSecret": _string(
                    "A Secret of yours holding the password; without it the operator generates <name>-auth once.",
                    maxLength=253,
                    pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                ),
                "secretKey": _string("Key of the password in the Secret.", d["auth"]["secretKey"], minLength=1),
            },
        ),
        "sentinel": _object(
            "Sentinel settings of the group (applied when the group is first monitored).",
            {
                "masterName": _immutable(
                    _string(
                        "Group name clients ask the sentinels for.",
                        sentinel["masterName"],
                        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                        maxLength=63,
                    ),
                    "spec.sentinel.masterName",
                ),
                "quorum": _integer("Sentinels that must agree the leader is down (default: a majority).", None, 1, 15),
                "downAfterMilliseconds": _integer(
                    "Silence before a sentinel thinks the leader is down.", sentinel["downAfterMilliseconds"], 100
                ),
                "failoverTimeout": _integer("Bound of each failover step, ms.", sentinel["failoverTimeout"], 1000),
                "parallelSyncs": _integer("Replicas repointed at once after a failover.", sentinel["parallelSyncs"], 1),
            },
        ),
        "config": {
            "type": "object",
            "description": "Node settings (redis.conf names: appendfsync, maxclients, ...), checked against the "
            "node's settings; the operator owns port, bind, dir, replicaof, requirepass and the like.",
            "additionalProperties": {"x-kubernetes-preserve-unknown-fields": True},
            "default": {},
        },
        "podTemplate": _object(
            "Scheduling and metadata of the node and sentinel pods.",
            {
                "antiAffinity": _string(
                    "Spread pods of a component over nodes: preferred (soft), required (hard) or none; "
                    "ignored when affinity.podAntiAffinity is given.",
                    template["antiAffinity"],
                    enum=list(spec_module.ANTI_AFFINITY_MODES),
                ),
                "nodeSelector": _string_map("Node labels the pods must run on."),
                "tolerations": _free_list("Tolerations of the pods."),
                "affinity": _free_object("Affinity of the pods (nodeAffinity, podAffinity, podAntiAffinity)."),
                "topologySpreadConstraints": _free_list(
                    "Topology spread constraints; without a labelSelector each applies to its component's pods."
                ),
                "priorityClassName": _string("PriorityClass of the pods."),
                "labels": _string_map("Extra labels of the pods."),
                "annotations": _string_map("Extra annotations of the pods."),
            },
        ),
        "metrics": _object(
            "Prometheus metrics on the admin ports (node 9121, sentinel 9122).",
            {
                "enabled": _boolean("Expose and annotate the metrics ports.", metrics["enabled"]),
                "serviceMonitor": _object(
                    "A prometheus-operator ServiceMonitor.",
                    {
                        "enabled": _boolean("Create the ServiceMonitor.", monitor["enabled"]),
                        "interval": _string("Scrape interval.", monitor["interval"], pattern=r"^([0-9]+(ms|s|m|h))+$"),
                        "labels": _string_map("Labels your Prometheus selects ServiceMonitors by."),
                    },
                ),
            },
            **{
                "x-kubernetes-validations": [
                    {
                        "rule": "!self.serviceMonitor.enabled || self.enabled",
                        "message": "spec.metrics.serviceMonitor.enabled needs spec.metrics.enabled",
                    }
                ]
            },
        ),
        "pdb": _object(
            "PodDisruptionBudgets: at most one node and one sentinel evicted at a time.",
            {"enabled": _boolean("Create the PodDisruptionBudgets.", d["pdb"]["enabled"])},
        ),
        "networkPolicy": _object(
            "A NetworkPolicy letting only clients, the cluster's own pods, the operator and metrics scrapers in.",
            {
                "enabled": _boolean("Create the NetworkPolicy.", d["networkPolicy"]["enabled"]),
                "clients": {
                    **_free_list("NetworkPolicy peers allowed to ports 6379 and 26379 (default: this namespace)."),
                    "default": d["networkPolicy"]["clients"],
                },
            },
        ),
    }
    rules = [
        {"rule": "self.sentinels % 2 == 1", "message": "spec.sentinels must be odd"},
        {
            "rule": "!has(self.sentinel.quorum) || self.sentinel.quorum <= self.sentinels",
            "message": "spec.sentinel.quorum must be at most spec.sentinels",
        },
        {
            "rule": "self.durability != 'semi-sync' || self.replicas >= 2",
            "message": "spec.durability semi-sync needs at least 2 replicas",
        },
        {
            "rule": "self.minReplicasToWrite < self.replicas",
            "message": "spec.minReplicasToWrite must be at most spec.replicas - 1",
        },
    ]
    return {
        "type": "object",
        "description": "The desired KVCluster: nodes, sentinels and how they run.",
        "properties": properties,
        "default": {},
        "x-kubernetes-validations": rules,
    }


def _condition() -> Schema:
    return {
        "type": "object",
        "description": "A condition in the standard form.",
        "required": ["type", "status"],
        "properties": {
            "type": _string("Ready, Available, Degraded, Upgrading or FailingOver."),
            "status": _string("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "reason": _string("A CamelCase reason."),
            "message": _string("What a human should know."),
            "lastTransitionTime": _string("When the status last changed.", format="date-time"),
            "observedGeneration": _integer("The generation the condition was computed for.", None, 0),
        },
    }


def status_schema() -> Schema:
    return {
        "type": "object",
        "description": "What the operator observes (written by the operator only).",
        "properties": {
            "phase": _string("Pending, Running, Degraded, FailingOver or Upgrading."),
            "leader": _string("Pod the sentinels name as the leader."),
            "leaderAddress": _string("host:port the sentinels hand out for the leader."),
            "epoch": _integer("Configuration epoch of the current leader.", None, 0),
            "replicas": _integer("Data pods wanted.", None, 0),
            "readyReplicas": _integer("Data pods ready and in the replication topology.", None, 0),
            "replicaLag": {
                "type": "object",
                "description": "Bytes each replica is behind the leader, by pod.",
                "additionalProperties": {"type": "integer"},
            },
            "laggingReplicas": {
                "type": "array",
                "description": "Replicas lagging behind.",
                "items": {"type": "string"},
            },
            "sentinelsReachable": _integer("Sentinels that answered the last observation.", None, 0),
            "sentinelQuorum": _string("ok or lost."),
            "lastFailoverTime": _string("When the leader last changed.", format="date-time"),
            "observedGeneration": _integer("The spec generation last reconciled.", None, 0),
            "revision": _string("Node revision (pod template and config hash) being rolled out."),
            "message": _string("Why the last reconcile or rollout step failed, if it did."),
            "conditions": {
                "type": "array",
                "description": "Ready, Available, Degraded, Upgrading, FailingOver.",
                "items": _condition(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "rollout": _free_object("Progress of a rolling upgrade or scaling (the operator's bookkeeping)."),
            "kopf": _free_object("kopf's handler progress."),
        },
    }


PRINTER_COLUMNS = [
    {"name": "Leader", "type": "string", "jsonPath": ".status.leader", "description": "Leader pod"},
    {"name": "Epoch", "type": "integer", "jsonPath": ".status.epoch", "description": "Configuration epoch"},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas", "description": "Data pods ready"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1},
    {"name": "Sentinels", "type": "integer", "jsonPath": ".spec.sentinels", "priority": 1},
    {"name": "Version", "type": "string", "jsonPath": ".spec.version", "priority": 1},
    {"name": "Durability", "type": "string", "jsonPath": ".spec.durability", "priority": 1},
]


def open_api_schema() -> Schema:
    return {
        "type": "object",
        "description": "A highly available, Redis-compatible key-value store: a leader, replicas and sentinels.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
        "x-kubernetes-validations": [
            {
                "rule": f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
                "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters "
                "(it prefixes the names of the pods and Services)",
            }
        ],
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": NAME,
            "labels": {"app.kubernetes.io/name": "kvcluster", "app.kubernetes.io/part-of": "kvcluster-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": "kvcluster",
                "shortNames": ["kvc"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": open_api_schema()},
                }
            ],
        },
    }


def to_yaml() -> str:
    import yaml

    header = "# Generated by `python -m kvcluster.operator.crd`: do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=120)


def main() -> int:
    sys.stdout.write(to_yaml())
    return 0


if __name__ == "__main__":
    sys.exit(main())
