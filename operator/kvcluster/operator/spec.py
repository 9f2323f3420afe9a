"""The KVCluster spec: its defaults and its validation, as plain functions of a dict.

``with_defaults(spec)`` fills in what the CRD's OpenAPI defaults fill in, the same way the API
server does (a missing field gets its default; objects are defaulted field by field, free-form
objects such as ``resources.node`` are taken whole). It exists so the operator renders the same
objects for a spec stored before a field existed, and so tests and ``desired()`` need no API
server. ``crd.py`` takes its ``default:`` values from :data:`DEFAULTS`; a test checks that
applying the CRD schema's defaults gives what ``with_defaults`` gives.

``validate(spec)`` returns every problem as a message naming the field, the rule and the value
("spec.sentinels must be odd (got 2)"); an empty list means valid. It checks what the CRD's
schema and CEL rules check (so a bad spec is refused even where the API server does not run CEL)
and what only Python can: ``spec.config`` against the node's own settings table.
``warnings(spec)`` lists what is allowed but unwise (one sentinel).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from typing import Any

from kvcluster.common.config import Config, ConfigError, Setting

DEFAULT_IMAGE = "ghcr.io/kvcluster/kvcluster"
DEFAULT_VERSION = "0.1.0"  # the image tag; kept equal to the project's version by a test
GROUP_NAME = "mymaster"

DURABILITY_MODES = ("async", "semi-sync")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
ANTI_AFFINITY_MODES = ("none", "preferred", "required")

# A KVCluster's name becomes part of its children's names: the longest, the sentinel
# StatefulSet's controller-revision-hash label ``<name>-sentinel-<10 chars>``, must stay a
# 63-character label value, and ``<name>-sentinel-headless`` a DNS label.
MAX_NAME_LENGTH = 40

# Node settings the operator sets itself: a value in spec.config would break the pod wiring
# (ports, addresses, files) or bypass the spec field that owns it.
OPERATOR_OWNED_SETTINGS: dict[str, str] = {
    "port": "the node port is fixed at 6379 in the pods",
    "bind": "the pods listen on every address",
    "admin-port": "the admin port is fixed at 9121 (probes and metrics use it)",
    "admin-bind": "the admin port listens on every address",
    "dir": "the data directory is the pod's volume",
    "replicaof": "leadership is the sentinels' (start-up discovery and the bootstrap rule pick the role)",
    "replica-announce-ip": "nodes announce their stable pod DNS names",
    "replica-announce-port": "nodes announce port 6379",
    "requirepass": "use spec.auth",
    "masterauth": "use spec.auth",
    "masteruser": "use spec.auth",
    "durability": "use spec.durability",
    "min-replicas-to-write": "use spec.minReplicasToWrite",
    "min-replicas-max-lag": "use spec.minReplicasMaxLag",
    "leader-discovery-sentinels": "the operator lists the sentinel pods",
    "leader-discovery-group": "use spec.sentinel.masterName",
    "leader-discovery-password": "use spec.auth",
    "leader-discovery-timeout": "set by the operator",
    "logfile": "logs go to standard output (kubectl logs)",
    "pidfile": "the container runs one process",
    "daemonize": "the container's process must stay in the foreground",
}

# The defaults of every field the CRD defaults. Nested dicts are objects defaulted field by
# field, except the paths in OPAQUE_DEFAULTS, whose default is taken whole when the field is
# missing and never merged into a value the user gave.
DEFAULTS: dict[str, Any] = {
    "replicas": 3,
    "sentinels": 3,
    "image": DEFAULT_IMAGE,
    "version": DEFAULT_VERSION,
    "imagePullPolicy": "IfNotPresent",
    "imagePullSecrets": [],
    "resources": {
        "node": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        "sentinel": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    },
    "storage": {
        "size": "1Gi",
        "sentinelSize": "128Mi",
        "ephemeral": False,
        "retainOnDelete": True,
    },
    "durability": "async",
    "minReplicasToWrite": 0,
    "minReplicasMaxLag": 10,
    "auth": {"enabled": True, "secretKey": "password"},
    "sentinel": {
        "masterName": GROUP_NAME,
        "downAfterMilliseconds": 5000,
        "failoverTimeout": 60000,
        "parallelSyncs": 1,
    },
    "config": {},
    "podTemplate": {
        "antiAffinity": "preferred",
        "nodeSelector": {},
        "tolerations": [],
        "topologySpreadConstraints": [],
        "labels": {},
        "annotations": {},
    },
    "metrics": {
        "enabled": True,
        "serviceMonitor": {"enabled": False, "interval": "30s", "labels": {}},
    },
    "pdb": {"enabled": True},
    "networkPolicy": {"enabled": True, "clients": [{"podSelector": {}}]},
}

OPAQUE_DEFAULTS = frozenset({("resources", "node"), ("resources", "sentinel")})


def with_defaults(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """A deep copy of ``spec`` with every missing field defaulted (as the API server would)."""
    result = copy.deepcopy(dict(spec or {}))
    _fill(result, DEFAULTS, ())
    return result


def _fill(value: dict[str, Any], defaults: Mapping[str, Any], path: tuple[str, ...]) -> None:
    for key, default in defaults.items():
        here = (*path, key)
        # The API server treats an explicit null like a missing field when the schema is not nullable.
        if value.get(key) is None:
            value[key] = copy.deepcopy(default)
        if isinstance(default, dict) and here not in OPAQUE_DEFAULTS and isinstance(value[key], dict):
            _fill(value[key], default, here)


def effective_quorum(spec: Mapping[str, Any]) -> int:
    """``spec.sentinel.quorum``, or a majority of the sentinels when it is not set."""
    quorum = (spec.get("sentinel") or {}).get("quorum")
    return int(quorum) if quorum is not None else int(spec["sentinels"]) // 2 + 1


# -- validation -----------------------------------------------------------------------------

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def validate(spec: Mapping[str, Any], name: str | None = None) -> list[str]:
    """Every problem of a spec (defaults are applied first), as messages; [] when it is valid.

    ``name`` (the KVCluster's metadata.name), when given, is checked too.
    """
    s = with_defaults(spec)
    errors: list[str] = []

    def integer(path: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> bool:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path} must be an integer (got {value!r})")
            return False
        if minimum is not None and value < minimum:
            errors.append(f"{path} must be at least {minimum} (got {value})")
            return False
        if maximum is not None and value > maximum:
            errors.append(f"{path} must be at most {maximum} (got {value})")
            return False
        return True

    def boolean(path: str, value: Any) -> None:
        if not isinstance(value, bool):
            errors.append(f"{path} must be true or false (got {value!r})")

    def choice(path: str, value: Any, choices: tuple[str, ...]) -> None:
        if value not in choices:
            errors.append(f"{path} must be {_one_of(choices)} (got {value!r})")

    def mapping(path: str, value: Any) -> bool:
        if not isinstance(value, dict):
            errors.append(f"{path} must be an object (got {value!r})")
            return False
        return True

    def string_map(path: str, value: Any, label_values: bool = False) -> None:
        if mapping(path, value):
            for key, item in value.items():
                if not isinstance(item, str):
                    errors.append(f"{path}.{key} must be a string (got {item!r})")
                elif label_values and not _LABEL_VALUE.match(item):
                    errors.append(
                        f"{path}.{key} must be a label value: at most 63 letters, digits, '-', '_' or '.' "
                        f"(got {item!r})"
                    )
                if label_values and not _is_label_key(str(key)):
                    errors.append(f"{path}: {key!r} is not a valid label key")

    def object_list(path: str, value: Any) -> None:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            errors.append(f"{path} must be a list of objects (got {value!r})")

    if name is not None:
        if len(name) > MAX_NAME_LENGTH:
            errors.append(f"metadata.name must be at most {MAX_NAME_LENGTH} characters (got {len(name)})")
        elif not _DNS_LABEL.match(name):
            errors.append(
                f"metadata.name must be a DNS label: lower case letters, digits and '-', starting with a letter "
                f"(got {name!r})"
            )

    replicas_ok = integer("spec.replicas", s["replicas"], 1, 100)
    if integer("spec.sentinels", s["sentinels"], 1, 15) and s["sentinels"] % 2 == 0:
        errors.append(f"spec.sentinels must be odd (got {s['sentinels']})")

    if not isinstance(s["image"], str) or not s["image"].strip():
        errors.append(f"spec.image must be a non-empty image name (got {s['image']!r})")
    if not isinstance(s["version"], str) or not _VERSION.match(s["version"]):
        errors.append(f"spec.version must be an image tag such as {DEFAULT_VERSION} (got {s['version']!r})")
    choice("spec.imagePullPolicy", s["imagePullPolicy"], PULL_POLICIES)
    if not isinstance(s["imagePullSecrets"], list) or not all(
        isinstance(item, dict) and isinstance(item.get("name"), str) for item in s["imagePullSecrets"]
    ):
        errors.append(f"spec.imagePullSecrets must be a list of {{name: ...}} (got {s['imagePullSecrets']!r})")

    if mapping("spec.resources", s["resources"]):
        for component in ("node", "sentinel"):
            _check_resources(f"spec.resources.{component}", s["resources"].get(component), errors)

    storage = s["storage"]
    if mapping("spec.storage", storage):
        for key in ("size", "sentinelSize"):
            if not isinstance(storage[key], str) or not _QUANTITY.match(storage[key]):
                errors.append(f"spec.storage.{key} must be a quantity such as 1Gi (got {storage[key]!r})")
        if storage.get("storageClassName") is not None and not isinstance(storage["storageClassName"], str):
            errors.append(f"spec.storage.storageClassName must be a string (got {storage['storageClassName']!r})")
        boolean("spec.storage.ephemeral", storage["ephemeral"])
        boolean("spec.storage.retainOnDelete", storage["retainOnDelete"])

    choice("spec.durability", s["durability"], DURABILITY_MODES)
    if replicas_ok and s["durability"] == "semi-sync" and s["replicas"] < 2:
        errors.append(
            f"spec.durability semi-sync needs at least 2 replicas: a write waits for a replica (got {s['replicas']})"
        )
    if (
        integer("spec.minReplicasToWrite", s["minReplicasToWrite"], 0)
        and replicas_ok
        and s["minReplicasToWrite"] > s["replicas"] - 1
    ):
        errors.append(
            f"spec.minReplicasToWrite must be at most spec.replicas - 1 = {s['replicas'] - 1}, "
            f"or the leader could never write (got {s['minReplicasToWrite']})"
        )
    integer("spec.minReplicasMaxLag", s["minReplicasMaxLag"], 1)

    auth = s["auth"]
    if mapping("spec.auth", auth):
        boolean("spec.auth.enabled", auth["enabled"])
        secret = auth.get("existingSecret")
        if secret is not None and (not isinstance(secret, str) or not _is_dns_subdomain(secret)):
            errors.append(f"spec.auth.existingSecret must be a Secret name (got {secret!r})")
        if not isinstance(auth["secretKey"], str) or not re.match(r"^[-._a-zA-Z0-9]+$", auth["secretKey"]):
            errors.append(f"spec.auth.secretKey must be a Secret key (got {auth['secretKey']!r})")

    sentinel = s["sentinel"]
    if mapping("spec.sentinel", sentinel):
        group = sentinel["masterName"]
        if not isinstance(group, str) or not _GROUP_NAME.match(group) or len(group) > 63:
            errors.append(f"spec.sentinel.masterName must be letters, digits, '.', '_' or '-' (got {group!r})")
        if sentinel.get("quorum") is not None and integer("spec.sentinel.quorum", sentinel["quorum"], 1):
            sentinels = s["sentinels"]
            if isinstance(sentinels, int) and sentinel["quorum"] > sentinels:
                errors.append(
                    f"spec.sentinel.quorum must be at most spec.sentinels = {sentinels} (got {sentinel['quorum']})"
                )
        integer("spec.sentinel.downAfterMilliseconds", sentinel["downAfterMilliseconds"], 100)
        integer("spec.sentinel.failoverTimeout", sentinel["failoverTimeout"], 1000)
        integer("spec.sentinel.parallelSyncs", sentinel["parallelSyncs"], 1)

    if mapping("spec.config", s["config"]):
        errors += config_errors(s["config"])

    template = s["podTemplate"]
    if mapping("spec.podTemplate", template):
        choice("spec.podTemplate.antiAffinity", template["antiAffinity"], ANTI_AFFINITY_MODES)
        string_map("spec.podTemplate.nodeSelector", template["nodeSelector"], label_values=True)
        string_map("spec.podTemplate.labels", template["labels"], label_values=True)
        string_map("spec.podTemplate.annotations", template["annotations"])
        object_list("spec.podTemplate.tolerations", template["tolerations"])
        object_list("spec.podTemplate.topologySpreadConstraints", template["topologySpreadConstraints"])
        if template.get("affinity") is not None:
            mapping("spec.podTemplate.affinity", template["affinity"])
        if template.get("priorityClassName") is not None and not isinstance(template["priorityClassName"], str):
            errors.append(
                f"spec.podTemplate.priorityClassName must be a string (got {template['priorityClassName']!r})"
            )
        for key in template["labels"] if isinstance(template["labels"], dict) else ():
            if key.startswith(("app.kubernetes.io/", "kvcluster.io/")):
                errors.append(f"spec.podTemplate.labels.{key}: the operator sets the {key} label itself")

    metrics = s["metrics"]
    if mapping("spec.metrics", metrics):
        boolean("spec.metrics.enabled", metrics["enabled"])
        monitor = metrics["serviceMonitor"]
        if mapping("spec.metrics.serviceMonitor", monitor):
            boolean("spec.metrics.serviceMonitor.enabled", monitor["enabled"])
            if not isinstance(monitor["interval"], str) or not re.match(r"^([0-9]+(ms|s|m|h))+$", monitor["interval"]):
                errors.append(
                    f"spec.metrics.serviceMonitor.interval must be a duration such as 30s (got {monitor['interval']!r})"
                )
            string_map("spec.metrics.serviceMonitor.labels", monitor["labels"], label_values=True)
            if monitor["enabled"] is True and metrics["enabled"] is False:
                errors.append("spec.metrics.serviceMonitor.enabled needs spec.metrics.enabled")

    if mapping("spec.pdb", s["pdb"]):
        boolean("spec.pdb.enabled", s["pdb"]["enabled"])
    policy = s["networkPolicy"]
    if mapping("spec.networkPolicy", policy):
        boolean("spec.networkPolicy.enabled", policy["enabled"])
        object_list("spec.networkPolicy.clients", policy["clients"])

    unknown = sorted(set(s) - set(DEFAULTS))
    for key in unknown:
        errors.append(f"spec.{key} is not a KVCluster field")
    return errors


def warnings(spec: Mapping[str, Any]) -> list[str]:
    """What is valid but unwise, as messages (the operator reports them as Events)."""
    s = with_defaults(spec)
    found = []
    if s["sentinels"] == 1:
        found.append("spec.sentinels is 1: there is no failover while that sentinel is down (3 or more recommended)")
    if s["replicas"] == 1:
        found.append("spec.replicas is 1: there is no replica to fail over to")
    if s["storage"]["ephemeral"]:
        found.append("spec.storage.ephemeral: a pod that is deleted loses its data (its replicas keep a copy)")
    return found


def config_errors(config: Mapping[str, Any]) -> list[str]:
    """``spec.config`` against the node's settings: unknown names, operator-owned ones, bad values."""
    errors = []
    for key, value in config.items():
        setting, error = config_setting(key)
        if error:
            errors.append(error)
            continue
        assert setting is not None
        try:
            parse_config_value(setting, value)
        except ConfigError as e:
            errors.append(f"spec.config.{key}: {e.message} (got {value!r})")
    return errors


def config_setting(key: str) -> tuple[Setting | None, str]:
    """The node setting a spec.config key names, or the message saying why it may not be set."""
    setting = _node_settings().lookup(str(key).replace("_", "-"))
    if setting is None or setting.hidden:
        return None, f"spec.config.{key} is not a node setting (see kvcluster config-reference)"
    if setting.name in OPERATOR_OWNED_SETTINGS:
        return None, f"spec.config.{key} is set by the operator: {OPERATOR_OWNED_SETTINGS[setting.name]}"
    return setting, ""


@functools.cache
def _node_settings() -> Config:
    """The node's settings table (only looked up, never changed: one copy serves every call)."""
    from kvcluster.node.settings import node_config

    return node_config()


def parse_config_value(setting: Setting, value: Any) -> Any:
    """A spec.config value (YAML scalar or list) parsed as the node would parse it."""
    if isinstance(value, dict):
        raise ConfigError("expected a value or a list, not a mapping")
    if isinstance(value, list):
        if setting.kind != "args":
            raise ConfigError("expected a single value, not a list")
        return setting.parse([_scalar_text(item) for item in value])
    text = _scalar_text(value)
    return setting.parse(text.split() if setting.kind == "args" else text)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise ConfigError("expected a plain value")
    return str(value)


def _check_resources(path: str, value: Any, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path} must be an object with requests/limits (got {value!r})")
        return
    for key, amounts in value.items():
        if key not in ("requests", "limits", "claims"):
            errors.append(f"{path}.{key} is not a resources field (requests, limits)")
        elif key != "claims":
            if not isinstance(amounts, dict):
                errors.append(f"{path}.{key} must be an object (got {amounts!r})")
                continue
            for resource, amount in amounts.items():
                if not isinstance(amount, (str, int)) or isinstance(amount, bool) or not _QUANTITY.match(str(amount)):
                    errors.append(f"{path}.{key}.{resource} must be a quantity such as 500m or 1Gi (got {amount!r})")


def _is_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return bool(_LABEL_NAME.match(name)) and (not prefix or _is_dns_subdomain(prefix))


def _is_dns_subdomain(text: str) -> bool:
    return len(text) <= 253 and bool(
        re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", text)
    )


def _one_of(choices: tuple[str, ...]) -> str:
    return " or ".join(choices) if len(choices) == 2 else "one of " + ", ".join(choices)
