"""desired(): every child object of a KVCluster, for each spec feature.

Each rendered object is checked against the Kubernetes 1.30 schemas (kubernetes-validate,
strict: unknown fields fail), and the rendered node and sentinel configuration files are loaded
by the real node and sentinel configuration code (and once by the real ``kvcluster`` command's
``--check-config``), so a setting that does not exist, or a value the processes would refuse,
fails here rather than in a pod.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kvcluster.node.settings import node_config
from kvcluster.operator import desired as desired_module
from kvcluster.operator.desired import REVISION_ANNOTATION, desired
from kvcluster.operator.spec import OPERATOR_OWNED_SETTINGS
from kvcluster.sentinel.settings import sentinel_config

ROOT = Path(__file__).resolve().parent.parent
NS = "shop"


def kvcluster(spec: dict[str, Any] | None = None, name: str = "demo") -> dict[str, Any]:
    return {
        "apiVersion": "kvcluster.io/v1alpha1",
        "kind": "KVCluster",
        "metadata": {"name": name, "namespace": NS, "uid": "0a1b2c3d-uid", "generation": 1},
        "spec": spec or {},
    }


def render(spec: dict[str, Any] | None = None, password: str | None = "s3cret", name: str = "demo") -> dict:
    """The objects by (kind, name)."""
    return {(o["kind"], o["metadata"]["name"]): o for o in desired(kvcluster(spec, name), password=password)}


def node_sts(objects: dict) -> dict[str, Any]:
    return objects["StatefulSet", "demo-node"]


def sentinel_sts(objects: dict) -> dict[str, Any]:
    return objects["StatefulSet", "demo-sentinel"]


def container(sts: dict[str, Any]) -> dict[str, Any]:
    (c,) = sts["spec"]["template"]["spec"]["containers"]
    return c


def env(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


@functools.cache
def _validate_json(text: str) -> None:
    # kubernetes-validate re-reads its schemas per call: each distinct object is checked once.
    kubernetes_validate.validate(json.loads(text), "1.30.0", strict=True)


def validate_kubernetes(obj: dict[str, Any]) -> None:
    if obj["apiVersion"] == "monitoring.coreos.com/v1":
        _check_service_monitor(obj)  # not a built-in type: kubernetes-validate has no schema
        return
    _validate_json(json.dumps(obj, sort_keys=True))


def _check_service_monitor(obj: dict[str, Any]) -> None:
    assert obj["kind"] == "ServiceMonitor"
    assert set(obj["spec"]) == {"selector", "namespaceSelector", "endpoints"}
    for endpoint in obj["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scheme"}


def load_node_config(text: str, tmp_path: Path, environ: dict[str, str] | None = None):
    path = tmp_path / "node.conf"
    path.write_text(text)
    config = node_config()
    config.load_file(str(path))
    config.load_env(environ or {})
    return config


def load_sentinel_config(text: str, tmp_path: Path, environ: dict[str, str] | None = None):
    path = tmp_path / "sentinel.yaml"
    path.write_text(text)
    config = sentinel_config()
    config.load_file(str(path))
    config.load_env(environ or {})
    return config


SPECS = {
    "defaults": {},
    "production": yaml.safe_load((ROOT / "manifests/examples/production.yaml").read_text())["spec"],
    "dev": yaml.safe_load((ROOT / "manifests/examples/dev-single-node.yaml").read_text())["spec"],
    "no-auth-no-metrics-no-pdb-no-policy": {
        "auth": {"enabled": False},
        "metrics": {"enabled": False},
        "pdb": {"enabled": False},
        "networkPolicy": {"enabled": False},
    },
    "scheduling": {
        "podTemplate": {
            "nodeSelector": {"disk": "ssd"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "kv", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["a"]}]}
                        ]
                    }
                }
            },
            "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}
            ],
            "priorityClassName": "high",
            "labels": {"team": "a"},
            "annotations": {"note": "x"},
        },
        "imagePullSecrets": [{"name": "registry"}],
        "storage": {"storageClassName": "fast", "retainOnDelete": False},
    },
}


# -- every object is a valid Kubernetes object -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_rendered_object_validates_against_kubernetes(name: str) -> None:
    objects = desired(kvcluster(SPECS[name]), password="s3cret")
    assert objects
    for obj in objects:
        validate_kubernetes(obj)


@pytest.mark.parametrize("kubernetes", ["1.26.0", "1.37.0"])
def test_objects_validate_from_kubernetes_126_to_the_newest(kubernetes: str) -> None:
    from kvcluster.operator.crd import crd

    for obj in [crd(), *desired(kvcluster(SPECS["production"]))]:
        if obj["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(obj, kubernetes, strict=True)


def test_objects_and_order_follow_the_naming_interface() -> None:
    objects = desired(kvcluster({"metrics": {"serviceMonitor": {"enabled": True}}}), password="pw")
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ConfigMap", "demo-node-config"),
        ("ConfigMap", "demo-sentinel-config"),
        ("Secret", "demo-auth"),
        ("Service", "demo-node-headless"),
        ("Service", "demo-sentinel-headless"),
        ("Service", "demo"),
        ("Service", "demo-leader"),
        ("Service", "demo-replicas"),
        ("StatefulSet", "demo-sentinel"),
        ("StatefulSet", "demo-node"),
        ("PodDisruptionBudget", "demo-node"),
        ("PodDisruptionBudget", "demo-sentinel"),
        ("NetworkPolicy", "demo"),
        ("ServiceMonitor", "demo"),
    ]
    assert all(o["metadata"]["namespace"] == NS for o in objects)


def test_every_object_is_owned_by_the_kvcluster_and_labelled() -> None:
    for obj in desired(kvcluster(), password="pw"):
        assert obj["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "kvcluster.io/v1alpha1",
                "kind": "KVCluster",
                "name": "demo",
                "uid": "0a1b2c3d-uid",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "kvcluster"
        assert labels["app.kubernetes.io/instance"] == "demo"
        assert labels["app.kubernetes.io/managed-by"] == "kvcluster-operator"


def test_desired_is_pure_and_deterministic() -> None:
    source = kvcluster(SPECS["production"])
    before = copy.deepcopy(source)
    first = json.dumps(desired(source, password="pw"))
    assert json.dumps(desired(source, password="pw")) == first
    assert source == before  # the input is not changed
    assert json.dumps(desired(copy.deepcopy(source), password="pw")) == first


def test_a_spec_missing_new_fields_renders_like_the_defaulted_one() -> None:
    from kvcluster.operator.spec import with_defaults

    assert desired(kvcluster({}), password="p") == desired(kvcluster(with_defaults({})), password="p")


# -- auth ---------------------------------------------------------------------------------------------


def test_generated_secret_holds_the_given_password() -> None:
    secret = render(password="hunter2")["Secret", "demo-auth"]
    assert base64.b64decode(secret["data"]["password"]).decode() == "hunter2"
    assert secret["type"] == "Opaque"


def test_without_the_password_the_secret_is_left_out() -> None:
    assert ("Secret", "demo-auth") not in render(password=None)
    # ... and the pods still read it from the Secret the operator created earlier.
    assert env(container(node_sts(render(password=None))))["KVCLUSTER_REQUIREPASS"] == {
        "secretKeyRef": {"name": "demo-auth", "key": "password"}
    }


def test_existing_secret_is_used_and_never_rendered() -> None:
    objects = render({"auth": {"existingSecret": "mine", "secretKey": "pass"}}, password="ignored")
    assert not [o for o in objects.values() if o["kind"] == "Secret"]
    ref = {"secretKeyRef": {"name": "mine", "key": "pass"}}
    node_env = env(container(node_sts(objects)))
    for var in ("KVCLUSTER_REQUIREPASS", "KVCLUSTER_MASTERAUTH", "KVCLUSTER_LEADER_DISCOVERY_PASSWORD"):
        assert node_env[var] == ref
    sentinel_env = env(container(sentinel_sts(objects)))
    for var in ("KVCLUSTER_REQUIREPASS", "KVCLUSTER_SENTINEL_PASS", "KVCLUSTER_AUTH_PASS"):
        assert sentinel_env[var] == ref


def test_auth_disabled_means_no_password_anywhere() -> None:
    objects = render({"auth": {"enabled": False}})
    assert not [o for o in objects.values() if o["kind"] == "Secret"]
    for sts in (node_sts(objects), sentinel_sts(objects)):
        assert not [v for v in env(container(sts)) if "PASS" in v or v == "KVCLUSTER_MASTERAUTH"]


def test_passwords_never_reach_a_configmap() -> None:
    for obj in render(password="hunter2-unique").values():
        if obj["kind"] != "Secret":
            assert "hunter2-unique" not in json.dumps(obj)


# -- node configuration ---------------------------------------------------------------------------


def test_node_config_loads_in_the_node_with_the_operators_settings(tmp_path: Path) -> None:
    objects = render({"durability": "semi-sync", "minReplicasToWrite": 1, "minReplicasMaxLag": 5})
    text = objects["ConfigMap", "demo-node-config"]["data"]["node.conf"]
    config = load_node_config(text, tmp_path)
    host0 = f"demo-node-0.demo-node-headless.{NS}.svc.cluster.local"
    assert config["replicaof"] == [host0, "6379"]
    assert (config["port"], config["admin-port"], config["dir"]) == (6379, 9121, "/data")
    assert (config["bind"], config["admin-bind"]) == (["0.0.0.0"], "0.0.0.0")
    assert (config["durability"], config["min-replicas-to-write"], config["min-replicas-max-lag"]) == (
        "semi-sync",
        1,
        5,
    )
    assert config["leader-discovery-sentinels"] == [
        f"demo-sentinel-{i}.demo-sentinel-headless.{NS}.svc.cluster.local:26379" for i in range(3)
    ]
    assert config["leader-discovery-group"] == "mymaster"
    assert config["appendonly"] is True


def test_spec_config_reaches_the_node_in_canonical_form(tmp_path: Path) -> None:
    spec = {
        "config": {"appendfsync": "always", "maxclients": 500, "save": "", "slave-priority": 50, "appendonly": False}
    }
    text = render(spec)["ConfigMap", "demo-node-config"]["data"]["node.conf"]
    config = load_node_config(text, tmp_path)
    assert (config["appendfsync"], config["maxclients"], config["save"]) == ("always", 500, [])
    assert config["replica-priority"] == 50
    assert config["appendonly"] is False  # the user's value replaces the operator's default
    assert "replica-priority 50" in text


def test_an_invalid_config_key_is_refused_at_render_time() -> None:
    with pytest.raises(ValueError, match=r"spec\.config\.port is set by the operator"):
        desired(kvcluster({"config": {"port": 1}}))


def test_node_env_announces_the_pod_dns_name(tmp_path: Path) -> None:
    c = container(node_sts(render()))
    variables = env(c)
    assert variables["POD_NAME"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}
    announce = variables["KVCLUSTER_REPLICA_ANNOUNCE_IP"]
    assert announce == f"$(POD_NAME).demo-node-headless.{NS}.svc.cluster.local"
    # As the kubelet expands it for pod 2:
    expanded = announce.replace("$(POD_NAME)", "demo-node-2")
    text = render()["ConfigMap", "demo-node-config"]["data"]["node.conf"]
    config = load_node_config(text, tmp_path, {"KVCLUSTER_REPLICA_ANNOUNCE_IP": expanded, "KVCLUSTER_REQUIREPASS": "p"})
    assert config["replica-announce-ip"] == expanded
    assert c["command"] == ["kvcluster"]
    assert c["args"] == ["node", "--config", "/etc/kvcluster/node.conf"]


def test_every_rendered_setting_exists_in_the_node_and_sentinel() -> None:
    objects = render({"config": {"hz": 20}})
    node = node_config()
    text = objects["ConfigMap", "demo-node-config"]["data"]["node.conf"]
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert node.lookup(line.split()[0]) is not None, line
    node_vars = {s.env_var for s in node.settings}
    for var in env(container(node_sts(objects))):
        assert var == "POD_NAME" or var in node_vars, var
    sentinel = sentinel_config()
    for key in yaml.safe_load(objects["ConfigMap", "demo-sentinel-config"]["data"]["sentinel.yaml"]):
        assert sentinel.lookup(key) is not None, key
    sentinel_vars = {s.env_var for s in sentinel.settings}
    for var in env(container(sentinel_sts(objects))):
        assert var == "POD_NAME" or var in sentinel_vars, var


def test_operator_owned_settings_are_real_node_settings() -> None:
    config = node_config()
    for name in OPERATOR_OWNED_SETTINGS:
        assert config.lookup(name) is not None, name


def test_rendered_files_pass_the_real_commands_check_config(tmp_path: Path) -> None:
    """``kvcluster node|sentinel --config FILE --check-config`` with the pod's environment."""
    objects = render({"durability": "semi-sync", "config": {"appendfsync": "always"}})
    (tmp_path / "node.conf").write_text(objects["ConfigMap", "demo-node-config"]["data"]["node.conf"])
    (tmp_path / "sentinel.yaml").write_text(objects["ConfigMap", "demo-sentinel-config"]["data"]["sentinel.yaml"])
    for component, sts, file in (
        ("node", node_sts(objects), "node.conf"),
        ("sentinel", sentinel_sts(objects), "sentinel.yaml"),
    ):
        c = container(sts)
        pod_env = {k: ("s3cret" if isinstance(v, dict) and "secretKeyRef" in v else v) for k, v in env(c).items()}
        pod_env["POD_NAME"] = f"demo-{component}-1"
        pod_env = {k: v.replace("$(POD_NAME)", pod_env["POD_NAME"]) for k, v in pod_env.items() if isinstance(v, str)}
        base = {k: v for k, v in os.environ.items() if not k.startswith("KVCLUSTER_")}
        args = [a.replace("/etc/kvcluster/", f"{tmp_path}/") for a in c["args"]]
        assert args[-1] == f"{tmp_path}/{file}"
        result = subprocess.run(
            [sys.executable, "-m", "kvcluster.cli", *args, "--check-config"],
            env={**base, **pod_env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "configuration OK" in result.stdout + result.stderr


# -- sentinel configuration -------------------------------------------------------------------------


def test_sentinel_config_loads_with_the_group_and_peers(tmp_path: Path) -> None:
    spec = {
        "sentinels": 5,
        "sentinel": {"masterName": "orders", "downAfterMilliseconds": 3000, "failoverTimeout": 20000},
    }
    objects = render(spec)
    config = load_sentinel_config(objects["ConfigMap", "demo-sentinel-config"]["data"]["sentinel.yaml"], tmp_path)
    host0 = f"demo-node-0.demo-node-headless.{NS}.svc.cluster.local"
    assert config["monitor"] == ["orders", host0, "6379", "3"]  # quorum: a majority of 5
    assert (config["down-after-milliseconds"], config["failover-timeout"], config["parallel-syncs"]) == (3000, 20000, 1)
    assert config["resolve-hostnames"] is True and config["announce-hostnames"] is True
    assert (config["port"], config["admin-port"], config["dir"]) == (26379, 9122, "/data")
    assert config["sentinel-peers"] == [
        f"demo-sentinel-{i}.demo-sentinel-headless.{NS}.svc.cluster.local:26379" for i in range(5)
    ]
    node_text = objects["ConfigMap", "demo-node-config"]["data"]["node.conf"]
    assert "leader-discovery-group orders" in node_text
    assert sentinel_sts(objects)["spec"]["replicas"] == 5


def test_explicit_quorum_is_used(tmp_path: Path) -> None:
    text = render({"sentinel": {"quorum": 3}})["ConfigMap", "demo-sentinel-config"]["data"]["sentinel.yaml"]
    assert load_sentinel_config(text, tmp_path)["monitor"][3] == "3"


def test_sentinels_announce_their_pod_dns_name() -> None:
    c = container(sentinel_sts(render()))
    assert env(c)["KVCLUSTER_ANNOUNCE_IP"] == f"$(POD_NAME).demo-sentinel-headless.{NS}.svc.cluster.local"
    assert c["args"] == ["sentinel", "--config", "/etc/kvcluster/sentinel.yaml"]


# -- StatefulSets, storage, revision ------------------------------------------------------------------


def test_node_statefulset_is_ondelete_parallel_with_stable_dns() -> None:
    sts = node_sts(render({"replicas": 5}))
    spec = sts["spec"]
    assert spec["replicas"] == 5
    assert spec["serviceName"] == "demo-node-headless"
    assert spec["updateStrategy"] == {"type": "OnDelete"}
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "kvcluster",
        "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/component": "node",
    }
    template_labels = spec["template"]["metadata"]["labels"]
    assert template_labels.items() >= spec["selector"]["matchLabels"].items()
    assert "kvcluster.io/role" not in template_labels  # the operator sets it from the sentinels' view


def test_sentinel_statefulset_rolls_by_itself() -> None:
    spec = sentinel_sts(render())["spec"]
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    assert spec["serviceName"] == "demo-sentinel-headless"
    assert spec["replicas"] == 3


def test_persistent_storage_uses_claim_templates() -> None:
    objects = render({"storage": {"size": "20Gi", "sentinelSize": "256Mi", "storageClassName": "fast"}})
    for sts, size in ((node_sts(objects), "20Gi"), (sentinel_sts(objects), "256Mi")):
        (claim,) = sts["spec"]["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == "data"
        assert claim["spec"]["resources"]["requests"]["storage"] == size
        assert claim["spec"]["storageClassName"] == "fast"
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
        volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
        assert "data" not in volumes


def test_retain_on_delete_false_deletes_claims_with_the_statefulset() -> None:
    sts = node_sts(render({"storage": {"retainOnDelete": False}}))
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"


def test_default_storage_class_is_left_to_the_cluster() -> None:
    (claim,) = node_sts(render())["spec"]["volumeClaimTemplates"]
    assert "storageClassName" not in claim["spec"]


def test_ephemeral_storage_uses_emptydir() -> None:
    for sts in (
        node_sts(render({"storage": {"ephemeral": True}})),
        sentinel_sts(render({"storage": {"ephemeral": True}})),
    ):
        assert "volumeClaimTemplates" not in sts["spec"]
        assert "persistentVolumeClaimRetentionPolicy" not in sts["spec"]
        volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
        assert volumes["data"] == {"name": "data", "emptyDir": {}}


def test_config_and_data_are_mounted_where_the_args_point() -> None:
    for sts, config_map in ((node_sts(render()), "demo-node-config"), (sentinel_sts(render()), "demo-sentinel-config")):
        pod = sts["spec"]["template"]["spec"]
        mounts = {m["name"]: m for m in container(sts)["volumeMounts"]}
        assert mounts["config"] == {"name": "config", "mountPath": "/etc/kvcluster", "readOnly": True}
        assert mounts["data"]["mountPath"] == "/data"
        assert mounts["tmp"]["mountPath"] == "/tmp"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["config"]["configMap"]["name"] == config_map


def _revision(spec: dict[str, Any]) -> str:
    sts = node_sts(render(spec))
    assert (
        sts["metadata"]["annotations"][REVISION_ANNOTATION]
        == sts["spec"]["template"]["metadata"]["annotations"][REVISION_ANNOTATION]
    )
    return sts["metadata"]["annotations"][REVISION_ANNOTATION]


def test_revision_changes_with_what_needs_a_restart() -> None:
    base = _revision({})
    for change in (
        {"version": "0.2.0"},
        {"image": "registry.example/kv"},
        {"config": {"appendfsync": "always"}},
        {"durability": "semi-sync"},
        {"resources": {"node": {"requests": {"cpu": "1"}}}},
        {"podTemplate": {"nodeSelector": {"disk": "ssd"}}},
        {"auth": {"existingSecret": "other"}},
    ):
        assert _revision(change) != base, change


def test_revision_ignores_what_needs_no_restart() -> None:
    base = _revision({})
    for change in (
        {"sentinels": 5},  # the node's sentinel list is read at start-up only
        {"podTemplate": {"labels": {"team": "a"}, "annotations": {"x": "y"}}},
        {"metrics": {"serviceMonitor": {"enabled": True}}},
        {"pdb": {"enabled": False}},
        {"replicas": 5},
        {"sentinel": {"downAfterMilliseconds": 1000}},
    ):
        assert _revision(change) == base, change


def _sentinel_revision(spec: dict[str, Any]) -> str:
    sts = sentinel_sts(render(spec))
    return sts["spec"]["template"]["metadata"]["annotations"][REVISION_ANNOTATION]


def test_sentinel_revision_rolls_sentinels_only_when_a_restart_matters() -> None:
    base = _sentinel_revision({})
    assert _sentinel_revision({"version": "0.2.0"}) != base
    assert _sentinel_revision({"resources": {"sentinel": {"limits": {"memory": "1Gi"}}}}) != base
    # Peers are found at start-up; group settings come from the saved state after the first start.
    for change in ({"sentinels": 5}, {"sentinel": {"quorum": 3, "downAfterMilliseconds": 1000}}, {"replicas": 5}):
        assert _sentinel_revision(change) == base, change


# -- Services ------------------------------------------------------------------------------------------


def test_services_route_clients_to_sentinels_leader_and_replicas() -> None:
    objects = render()
    sentinels = objects["Service", "demo"]["spec"]
    assert sentinels["selector"]["app.kubernetes.io/component"] == "sentinel"
    assert [(p["port"], p["targetPort"]) for p in sentinels["ports"]] == [(26379, "sentinel")]
    leader = objects["Service", "demo-leader"]["spec"]
    assert leader["selector"]["kvcluster.io/role"] == "leader"
    assert leader["selector"]["app.kubernetes.io/component"] == "node"
    assert [p["port"] for p in leader["ports"]] == [6379]
    replicas = objects["Service", "demo-replicas"]["spec"]
    assert replicas["selector"]["kvcluster.io/role"] == "replica"


def test_headless_services_publish_pods_before_they_are_ready() -> None:
    objects = render()
    for name, component in (("demo-node-headless", "node"), ("demo-sentinel-headless", "sentinel")):
        spec = objects["Service", name]["spec"]
        assert spec["clusterIP"] == "None"
        assert spec["publishNotReadyAddresses"] is True
        assert spec["selector"]["app.kubernetes.io/component"] == component


# -- pods: security, probes, resources, scheduling ---------------------------------------------------


def test_containers_are_locked_down() -> None:
    objects = render()
    for sts in (node_sts(objects), sentinel_sts(objects)):
        pod = sts["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["enableServiceLinks"] is False
        assert pod["automountServiceAccountToken"] is False
        sc = container(sts)["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_probes_use_the_admin_port() -> None:
    objects = render()
    for sts, port in ((node_sts(objects), 9121), (sentinel_sts(objects), 9122)):
        c = container(sts)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["admin"] == port
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
        assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}


def test_resources_and_image() -> None:
    spec = {
        "image": "registry.example/kv",
        "version": "1.2.3",
        "imagePullPolicy": "Always",
        "resources": {"node": {"limits": {"memory": "2Gi"}}, "sentinel": {"requests": {"cpu": "10m"}}},
    }
    objects = render(spec)
    node, sentinel = container(node_sts(objects)), container(sentinel_sts(objects))
    assert node["resources"] == {"limits": {"memory": "2Gi"}}
    assert sentinel["resources"] == {"requests": {"cpu": "10m"}}
    assert node["image"] == sentinel["image"] == "registry.example/kv:1.2.3"
    assert node["imagePullPolicy"] == "Always"
    assert container(node_sts(render()))["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}}


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("kv", "kv:0.1.0"),
        ("registry:5000/kv", "registry:5000/kv:0.1.0"),
        ("kv:pinned", "kv:pinned"),
        ("kv@sha256:" + "a" * 64, "kv@sha256:" + "a" * 64),
    ],
)
def test_image_reference(image: str, expected: str) -> None:
    assert container(node_sts(render({"image": image})))["image"] == expected


def test_pod_template_overrides_reach_both_components() -> None:
    objects = render(SPECS["scheduling"])
    for sts, component in ((node_sts(objects), "node"), (sentinel_sts(objects), "sentinel")):
        template = sts["spec"]["template"]
        pod = template["spec"]
        assert pod["nodeSelector"] == {"disk": "ssd"}
        assert pod["tolerations"][0]["key"] == "dedicated"
        assert pod["priorityClassName"] == "high"
        assert pod["imagePullSecrets"] == [{"name": "registry"}]
        assert "nodeAffinity" in pod["affinity"]
        (constraint,) = pod["topologySpreadConstraints"]
        assert constraint["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == component
        assert template["metadata"]["labels"]["team"] == "a"
        assert template["metadata"]["annotations"]["note"] == "x"


def test_anti_affinity_modes() -> None:
    def anti(mode: str | None, affinity: dict | None = None) -> Any:
        template: dict[str, Any] = {} if mode is None else {"antiAffinity": mode}
        if affinity is not None:
            template["affinity"] = affinity
        pod = node_sts(render({"podTemplate": template}))["spec"]["template"]["spec"]
        return pod.get("affinity", {}).get("podAntiAffinity")

    preferred = anti(None)["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert preferred["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert preferred["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "node"
    required = anti("required")["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert required["topologyKey"] == "kubernetes.io/hostname"
    assert anti("none") is None
    own = {"preferredDuringSchedulingIgnoredDuringExecution": []}
    assert anti("required", {"podAntiAffinity": own}) == own  # the user's wins


def test_user_labels_cannot_override_the_selector_labels() -> None:
    # validate() refuses them; desired() still keeps its selector intact.
    objects = render({"podTemplate": {"labels": {"app.kubernetes.io/component": "other"}}})
    labels = node_sts(objects)["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "node"


# -- PDB, NetworkPolicy, metrics -------------------------------------------------------------------------


def test_pdbs_allow_one_disruption_per_component() -> None:
    objects = render()
    for name, component in (("demo-node", "node"), ("demo-sentinel", "sentinel")):
        pdb = objects["PodDisruptionBudget", name]["spec"]
        assert pdb["maxUnavailable"] == 1
        assert pdb["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
    assert not [k for k in render({"pdb": {"enabled": False}}) if k[0] == "PodDisruptionBudget"]


def test_network_policy_admits_clients_peers_operator_and_scrapers() -> None:
    policy = render()["NetworkPolicy", "demo"]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "demo"
    assert policy["policyTypes"] == ["Ingress"]
    rules = policy["ingress"]
    ports = [sorted(p["port"] for p in rule["ports"]) for rule in rules]
    assert ports == [[6379, 26379], [6379, 26379], [6379, 9121, 9122, 26379], [9121, 9122]]
    assert rules[0]["from"] == [{"podSelector": {}}]  # default clients: this namespace
    assert rules[1]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "demo"
    assert rules[2]["from"][0]["podSelector"]["matchLabels"] == desired_module.OPERATOR_POD_LABELS


def test_network_policy_clients_and_switches() -> None:
    clients = [{"podSelector": {"matchLabels": {"uses": "demo"}}}]
    policy = render({"networkPolicy": {"clients": clients}})["NetworkPolicy", "demo"]["spec"]
    assert policy["ingress"][0]["from"] == clients
    no_metrics = render({"metrics": {"enabled": False}})["NetworkPolicy", "demo"]["spec"]
    assert len(no_metrics["ingress"]) == 3
    assert ("NetworkPolicy", "demo") not in render({"networkPolicy": {"enabled": False}})


def test_metrics_ports_annotations_and_service_monitor() -> None:
    objects = render({"metrics": {"serviceMonitor": {"enabled": True, "interval": "10s", "labels": {"release": "p"}}}})
    monitor = objects["ServiceMonitor", "demo"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "p"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "10s"}]
    selected = monitor["spec"]["selector"]["matchLabels"]
    services = [
        o for o in objects.values() if o["kind"] == "Service" and selected.items() <= o["metadata"]["labels"].items()
    ]
    assert sorted(s["metadata"]["name"] for s in services) == ["demo-node-headless", "demo-sentinel-headless"]
    for service in services:
        assert "metrics" in [p["name"] for p in service["spec"]["ports"]]
    annotations = node_sts(objects)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "9121"


def test_metrics_off() -> None:
    objects = render({"metrics": {"enabled": False}})
    assert ("ServiceMonitor", "demo") not in objects
    assert ("ServiceMonitor", "demo") not in render()  # off unless asked for
    headless = objects["Service", "demo-node-headless"]
    assert [p["name"] for p in headless["spec"]["ports"]] == ["redis"]
    assert "prometheus.io/scrape" not in node_sts(objects)["spec"]["template"]["metadata"]["annotations"]
