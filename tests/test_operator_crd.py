"""The KVCluster CRD: a valid Kubernetes object, a structural schema whose defaults are spec.py's,
CEL rules that refuse bad specs, and examples that pass the schema the API server would apply.

The API server is not here, so two of its steps are done in the test: defaulting (the structural
defaulting algorithm: missing or null fields get the schema's default, top-down) and the CEL
rules (``x-kubernetes-validations``, evaluated with cel-python). jsonschema's Draft 4 validator
checks the rest of the OpenAPI schema (types, enums, bounds, patterns).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from kvcluster.operator import spec as spec_module
from kvcluster.operator.crd import crd
from kvcluster.operator.desired import desired
from test_operator_desired import validate_kubernetes

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))


def open_api_schema() -> dict[str, Any]:
    return crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def apply_schema_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """The API server's structural defaulting: top-down, a missing (or null) field gets its default."""
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, prop in properties.items():
            if "default" in prop and value.get(key) is None:
                value[key] = copy.deepcopy(prop["default"])
        for key, item in value.items():
            if key in properties:
                apply_schema_defaults(item, properties[key])
            elif isinstance(schema.get("additionalProperties"), dict):
                apply_schema_defaults(item, schema["additionalProperties"])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            apply_schema_defaults(item, schema["items"])
    return value


_cel = celpy.Environment()


def cel_errors(value: Any, schema: dict[str, Any], old: Any = None, path: str = "") -> list[str]:
    """Messages of the x-kubernetes-validations rules ``value`` breaks (transition rules need ``old``)."""
    errors = []
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"] and old is None:
            continue  # a transition rule runs on updates only
        activation = {"self": celpy.json_to_cel(value)}
        if old is not None:
            activation["oldSelf"] = celpy.json_to_cel(old)
        result = _cel.program(_cel.compile(rule["rule"])).evaluate(activation)
        if not bool(result):
            errors.append(f"{path or '<root>'}: {rule['message']}")
    if isinstance(value, dict):
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key)
            if sub is not None:
                old_item = old.get(key) if isinstance(old, dict) else None
                errors += cel_errors(item, sub, old_item, f"{path}.{key}")
    return errors


def as_stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server would store for ``obj``: defaults applied."""
    return apply_schema_defaults(copy.deepcopy(obj), open_api_schema())


def kvcluster(spec: dict[str, Any] | None = None, name: str = "demo") -> dict[str, Any]:
    return {
        "apiVersion": "kvcluster.io/v1alpha1",
        "kind": "KVCluster",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec or {},
    }


def schema_errors(obj: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft4Validator(open_api_schema())
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


# -- the CRD object -------------------------------------------------------------------------------


def test_crd_is_a_valid_kubernetes_object() -> None:
    kubernetes_validate.validate(crd(), "1.30.0", strict=True)


def test_crd_names_scope_and_version() -> None:
    c = crd()
    assert c["metadata"]["name"] == "kvclusters.kvcluster.io"
    assert c["spec"]["group"] == "kvcluster.io"
    assert c["spec"]["scope"] == "Namespaced"
    assert c["spec"]["names"]["kind"] == "KVCluster"
    assert c["spec"]["names"]["shortNames"] == ["kvc"]
    (v,) = c["spec"]["versions"]
    assert (v["name"], v["served"], v["storage"]) == ("v1alpha1", True, True)
    assert v["subresources"] == {"status": {}}


def test_printer_columns_point_at_schema_fields() -> None:
    (v,) = crd()["spec"]["versions"]
    columns = {c["name"]: c for c in v["additionalPrinterColumns"]}
    assert [c["name"] for c in v["additionalPrinterColumns"] if not c.get("priority")] == [
        "Leader",
        "Epoch",
        "Ready",
        "Phase",
        "Age",
    ]
    schema = open_api_schema()
    for column in columns.values():
        if column["jsonPath"] == ".metadata.creationTimestamp":
            continue
        node = schema
        for part in column["jsonPath"].strip(".").split("."):
            node = node["properties"][part]
        expected = {"integer": "integer", "string": "string"}[column["type"]]
        assert node["type"] == expected, column


def _walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for key, sub in schema.get("properties", {}).items():
        found += _walk(sub, f"{path}.{key}")
    if isinstance(schema.get("additionalProperties"), dict):
        found += _walk(schema["additionalProperties"], f"{path}.*")
    if "items" in schema:
        found += _walk(schema["items"], f"{path}[]")
    return found


def test_schema_is_structural() -> None:
    for path, node in _walk(open_api_schema()):
        if path == ".metadata":
            assert node == {"type": "object"}  # only type may be said about metadata
            continue
        free = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
        assert "type" in node or free, f"{path} has no type"
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), f"{path}: anyOf only for int-or-string"


def test_every_default_validates_against_its_own_schema() -> None:
    # The API server refuses a CRD whose defaults do not pass their schema (after pruning).
    for path, node in _walk(open_api_schema()):
        if "default" in node:
            errors = list(jsonschema.Draft4Validator(node).iter_errors(node["default"]))
            assert not errors, f"{path}: {errors[0].message}"


def test_status_has_the_fields_and_standard_conditions() -> None:
    status = open_api_schema()["properties"]["status"]["properties"]
    for field in ("phase", "leader", "epoch", "readyReplicas", "replicaLag", "lastFailoverTime", "observedGeneration"):
        assert field in status
    condition = status["conditions"]["items"]
    assert set(condition["properties"]) >= {"type", "status", "reason", "message", "lastTransitionTime"}
    assert condition["required"] == ["type", "status"]
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_python_m_prints_the_crd_as_yaml() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kvcluster.operator.crd"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert yaml.safe_load(out) == crd()


def test_default_version_is_the_project_version() -> None:
    assert dist_version("kvcluster") == spec_module.DEFAULT_VERSION


# -- defaults: the schema's and spec.py's agree ---------------------------------------------------

PARTIAL_SPECS = [
    {},
    {"replicas": 5, "sentinels": 5},
    {"storage": {"size": "10Gi"}},
    {"storage": {"ephemeral": True, "retainOnDelete": None}},
    {"resources": {"node": {"limits": {"memory": "1Gi"}}}},
    {"metrics": {"serviceMonitor": {"enabled": True}}},
    {"metrics": {"enabled": False}},
    {"auth": {"existingSecret": "mine"}},
    {"sentinel": {"quorum": 2, "masterName": "orders"}},
    {"podTemplate": {"labels": {"team": "a"}, "tolerations": [{"key": "k", "operator": "Exists"}]}},
    {"config": {"appendfsync": "always"}},
    {"networkPolicy": {"clients": [{"podSelector": {"matchLabels": {"role": "app"}}}]}},
]


@pytest.mark.parametrize("partial", PARTIAL_SPECS, ids=lambda s: ",".join(s) or "empty")
def test_schema_defaults_agree_with_with_defaults(partial: dict[str, Any]) -> None:
    stored = as_stored(kvcluster(partial))
    assert stored["spec"] == spec_module.with_defaults(partial)


def test_with_defaults_does_not_change_its_argument() -> None:
    partial = {"storage": {"size": "5Gi"}}
    spec_module.with_defaults(partial)
    assert partial == {"storage": {"size": "5Gi"}}


def test_missing_spec_is_defaulted_whole() -> None:
    obj = kvcluster()
    del obj["spec"]
    assert as_stored(obj)["spec"] == spec_module.with_defaults({})


# -- examples ---------------------------------------------------------------------------------------


def test_the_three_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} == {"minimal.yaml", "production.yaml", "dev-single-node.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_passes_the_crd_schema_after_defaults(path: Path) -> None:
    obj = yaml.safe_load(path.read_text())
    assert obj["apiVersion"] == "kvcluster.io/v1alpha1" and obj["kind"] == "KVCluster"
    stored = as_stored(obj)
    assert schema_errors(stored) == []
    assert cel_errors(stored, open_api_schema()) == []
    assert spec_module.validate(obj["spec"], obj["metadata"]["name"]) == []
    assert desired({**stored, "metadata": {**stored["metadata"], "namespace": "default", "uid": "u"}}, password="pw")


def test_production_example_has_what_it_promises() -> None:
    spec = spec_module.with_defaults(yaml.safe_load((ROOT / "manifests/examples/production.yaml").read_text())["spec"])
    assert spec["durability"] == "semi-sync"
    assert spec["podTemplate"]["antiAffinity"] == "required"
    assert spec["pdb"]["enabled"] and spec["metrics"]["enabled"] and spec["metrics"]["serviceMonitor"]["enabled"]


def test_dev_example_is_single_node_and_ephemeral() -> None:
    spec = spec_module.with_defaults(
        yaml.safe_load((ROOT / "manifests/examples/dev-single-node.yaml").read_text())["spec"]
    )
    assert (spec["replicas"], spec["sentinels"], spec["storage"]["ephemeral"]) == (1, 1, True)


# -- bad specs are refused, with the message --------------------------------------------------------

# (spec, message of the schema or CEL layer or None, message of validate())
BAD_SPECS = [
    ({"sentinels": 2}, "spec.sentinels must be odd", "spec.sentinels must be odd (got 2)"),
    ({"sentinels": 4}, "spec.sentinels must be odd", "spec.sentinels must be odd (got 4)"),
    ({"replicas": 0}, "replicas: 0 is less than the minimum of 1", "spec.replicas must be at least 1 (got 0)"),
    (
        {"durability": "sync"},
        "durability: 'sync' is not one of ['async', 'semi-sync']",
        "spec.durability must be async or semi-sync (got 'sync')",
    ),
    (
        {"sentinel": {"quorum": 4}},
        "spec.sentinel.quorum must be at most spec.sentinels",
        "spec.sentinel.quorum must be at most spec.sentinels = 3 (got 4)",
    ),
    (
        {"durability": "semi-sync", "replicas": 1},
        "spec.durability semi-sync needs at least 2 replicas",
        "spec.durability semi-sync needs at least 2 replicas",
    ),
    (
        {"minReplicasToWrite": 3},
        "spec.minReplicasToWrite must be at most spec.replicas - 1",
        "spec.minReplicasToWrite must be at most spec.replicas - 1 = 2",
    ),
    (
        {"imagePullPolicy": "Sometimes"},
        "imagePullPolicy: 'Sometimes' is not one of",
        "spec.imagePullPolicy must be one of Always, IfNotPresent, Never (got 'Sometimes')",
    ),
    (
        {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
        "spec.metrics.serviceMonitor.enabled needs spec.metrics.enabled",
        "spec.metrics.serviceMonitor.enabled needs spec.metrics.enabled",
    ),
    ({"config": {"no-such-setting": "1"}}, None, "spec.config.no-such-setting is not a node setting"),
    ({"config": {"port": 7000}}, None, "spec.config.port is set by the operator"),
    ({"config": {"slaveof": "a 1"}}, None, "spec.config.slaveof is set by the operator"),
    ({"config": {"requirepass": "x"}}, None, "spec.config.requirepass is set by the operator: use spec.auth"),
    ({"config": {"hz": 0}}, None, "spec.config.hz: argument must be between 1 and 500 inclusive (got 0)"),
    ({"config": {"appendfsync": "sometimes"}}, None, "spec.config.appendfsync: argument(s) must be one of"),
    ({"podTemplate": {"labels": {"app.kubernetes.io/name": "x"}}}, None, "the operator sets the"),
    ({"replica": 3}, None, "spec.replica is not a KVCluster field"),
    ({"podTemplate": {"labels": {"team": "a b"}}}, None, "spec.podTemplate.labels.team must be a label value"),
    ({"podTemplate": {"nodeSelector": {"bad key": "x"}}}, None, "'bad key' is not a valid label key"),
    ({"storage": {"size": "lots"}}, "size: 'lots' does not match", "spec.storage.size must be a quantity such as 1Gi"),
    ({"sentinel": {"masterName": "my master"}}, "masterName: 'my master' does not match", "spec.sentinel.masterName"),
    ({"minReplicasMaxLag": 0}, "0 is less than the minimum of 1", "spec.minReplicasMaxLag must be at least 1 (got 0)"),
    ({"auth": {"existingSecret": "Not_A_Name"}}, "does not match", "spec.auth.existingSecret must be a Secret name"),
]


@pytest.mark.parametrize(("bad", "schema_message", "message"), BAD_SPECS, ids=lambda v: str(v)[:40])
def test_bad_spec_is_refused_with_a_clear_message(bad: dict, schema_message: str | None, message: str) -> None:
    errors = spec_module.validate(bad)
    assert any(message in e for e in errors), errors
    if schema_message is not None:
        stored = as_stored(kvcluster(bad))
        layer = schema_errors(stored) + cel_errors(stored, open_api_schema())
        assert any(schema_message in e for e in layer), layer


def test_a_good_spec_has_no_errors() -> None:
    assert spec_module.validate({}) == []
    assert spec_module.validate({"replicas": 1, "sentinels": 1, "storage": {"ephemeral": True}}, "dev") == []


def test_config_values_may_be_yaml_scalars_and_lists() -> None:
    assert spec_module.validate({"config": {"appendonly": True, "hz": 20, "save": ["900", "1"], "maxmemory": 0}}) == []


def test_one_sentinel_is_valid_with_a_warning() -> None:
    assert spec_module.validate({"sentinels": 1}) == []
    assert any("spec.sentinels is 1" in w for w in spec_module.warnings({"sentinels": 1}))
    assert spec_module.warnings({}) == []


def test_long_names_are_refused() -> None:
    name = "a" * 41
    assert any("metadata.name must be at most 40" in e for e in spec_module.validate({}, name))
    stored = as_stored(kvcluster(name=name))
    assert any("metadata.name must be at most 40" in e for e in cel_errors(stored, open_api_schema()))
    assert any("DNS label" in e for e in spec_module.validate({}, "Demo_1"))


@pytest.mark.parametrize(
    ("field", "before", "after"),
    [
        ("size", "1Gi", "2Gi"),
        ("storageClassName", "fast", "slow"),
        ("ephemeral", False, True),
    ],
)
def test_storage_cannot_change_once_created(field: str, before: Any, after: Any) -> None:
    old = as_stored(kvcluster({"storage": {field: before}}))
    new = as_stored(kvcluster({"storage": {field: after}}))
    assert any(f"spec.storage.{field} cannot be changed" in e for e in cel_errors(new, open_api_schema(), old))
    assert cel_errors(old, open_api_schema(), old) == []


def test_retain_on_delete_may_change() -> None:
    old = as_stored(kvcluster({"storage": {"retainOnDelete": True}}))
    new = as_stored(kvcluster({"storage": {"retainOnDelete": False}}))
    assert cel_errors(new, open_api_schema(), old) == []


def test_nulls_count_as_missing() -> None:
    spec = {"sentinel": {"quorum": None}, "podTemplate": {"affinity": None, "labels": None}, "storage": None}
    assert spec_module.validate(spec) == []
    assert as_stored(kvcluster(spec))["spec"] == {
        **spec_module.with_defaults({}),
        "sentinel": {**spec_module.DEFAULTS["sentinel"], "quorum": None},
        "podTemplate": {**spec_module.DEFAULTS["podTemplate"], "affinity": None},
    }


# -- random partial specs: defaults agree, and what validates renders valid objects -------------------

# Alternative valid values for the leaves of DEFAULTS (the default itself is always a choice).
_ALTERNATIVES: dict[tuple[str, ...], list[Any]] = {
    ("replicas",): [1, 2, 5],
    ("sentinels",): [1, 5],
    ("version",): ["0.2.0"],
    ("imagePullPolicy",): ["Always", "Never"],
    ("imagePullSecrets",): [[{"name": "registry"}]],
    ("resources", "node"): [{"limits": {"memory": "1Gi"}}, {}],
    ("resources", "sentinel"): [{"requests": {"cpu": "10m"}}],
    ("storage", "size"): ["10Gi"],
    ("storage", "ephemeral"): [True],
    ("storage", "retainOnDelete"): [False],
    ("durability",): ["semi-sync"],
    ("minReplicasToWrite",): [1],
    ("minReplicasMaxLag",): [3],
    ("auth", "enabled"): [False],
    ("auth", "secretKey"): ["pass"],
    ("sentinel", "masterName"): ["orders"],
    ("sentinel", "downAfterMilliseconds"): [1000],
    ("config",): [{"appendfsync": "always"}, {"hz": 20, "save": ""}],
    ("podTemplate", "antiAffinity"): ["required", "none"],
    ("podTemplate", "nodeSelector"): [{"disk": "ssd"}],
    ("podTemplate", "tolerations"): [[{"key": "k", "operator": "Exists"}]],
    ("podTemplate", "labels"): [{"team": "a"}],
    ("metrics", "enabled"): [False],
    ("metrics", "serviceMonitor", "enabled"): [True],
    ("pdb", "enabled"): [False],
    ("networkPolicy", "enabled"): [False],
}


def _partial_specs() -> st.SearchStrategy[dict[str, Any]]:
    def node(defaults: dict[str, Any], path: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
        fields = {}
        for key, default in defaults.items():
            here = (*path, key)
            if isinstance(default, dict) and here not in spec_module.OPAQUE_DEFAULTS and default:
                value = node(default, here)
            else:
                value = st.sampled_from([default, *_ALTERNATIVES.get(here, [])])
            fields[key] = value
        return st.fixed_dictionaries({}, optional=fields)

    return node(spec_module.DEFAULTS, ())


def test_random_partial_specs_default_alike() -> None:
    @settings(max_examples=200, deadline=None, database=None)
    @given(_partial_specs())
    def check(partial: dict[str, Any]) -> None:
        assert as_stored(kvcluster(copy.deepcopy(partial)))["spec"] == spec_module.with_defaults(partial)

    check()


def test_random_specs_are_refused_or_render_valid_kubernetes_objects() -> None:
    @settings(max_examples=40, deadline=None, database=None)
    @given(_partial_specs())
    def check(partial: dict[str, Any]) -> None:
        stored = as_stored(kvcluster(copy.deepcopy(partial)))
        refused_by_api = schema_errors(stored) + cel_errors(stored, open_api_schema())
        errors = spec_module.validate(partial, "demo")
        assert bool(refused_by_api) <= bool(errors), (refused_by_api, errors)  # the operator refuses at least as much
        if errors:
            return
        for obj in desired({**stored, "metadata": {**stored["metadata"], "uid": "u"}}, password="pw"):
            validate_kubernetes(obj)

    check()


def test_alternatives_name_real_fields() -> None:
    for path in _ALTERNATIVES:
        node: Any = spec_module.DEFAULTS
        for part in path:
            node = node[part]
