"""The kopf handlers of the KVCluster operator: thin shells around desired(), observe() and plan().

- **reconcile** (on create, resume, update, and every few minutes to repair drift): validate the spec
  (a bad spec is refused with condition Ready=False reason InvalidSpec, a Warning Event and
  ``kopf.PermanentError``, before anything is created); then server-side apply every object of
  ``desired()`` and delete the objects of ours no longer desired (a ServiceMonitor turned off, a PDB
  no longer wanted). The generated auth password is made once and read back from its Secret ever
  after: it is never rotated. Running it twice, or after a crash, yields the same objects.
- **watch** (a timer, every ~1.5 s): ask the sentinels (observer.py), set the ``kvcluster.io/role``
  labels and the status, post the Events; then let the planner (rollout.py) pick the next rolling
  upgrade or scale-down step and execute it: delete one pod, ask the sentinels for a planned
  ``SENTINEL FAILOVER``, or lower the StatefulSet's replicas by one.
- **delete** (a finalizer): delete the children; the node and sentinel PVCs are kept when
  ``spec.storage.retainOnDelete`` (the default), deleted otherwise.

:func:`build_registry` returns a fresh :class:`kopf.OperatorRegistry` with all of it, so the
``kvcluster operator`` command and each test run their own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
import redis.asyncio as aioredis
from kvcluster.operator import observer, rollout
from kvcluster.operator import spec as specs
from kvcluster.operator.desired import desired
from kvcluster.operator.kube import KINDS, ApiError, KubeApi, NotFound, kind_of

GROUP, VERSION, PLURAL = "kvcluster.io", "v1alpha1", "kvclusters"
FINALIZER = "kvcluster.io/finalizer"
MANAGED_BY = {"app.kubernetes.io/name": "kvcluster", "app.kubernetes.io/managed-by": "kvcluster-operator"}
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
SENTINEL_PORT = 26379
POD = KINDS[("v1", "Pod")]
PVC = KINDS[("v1", "PersistentVolumeClaim")]
STATEFULSET = KINDS[("apps/v1", "StatefulSet")]
SECRET = KINDS[("v1", "Secret")]
KVCLUSTER = KINDS[("kvcluster.io/v1alpha1", "KVCluster")]
# Kinds a reconcile prunes when no longer desired. Never Secrets: a password is not deleted behind
# anyone's back (owner references delete it with the KVCluster).
PRUNED_KINDS = [
    KINDS[k]
    for k in (
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("policy/v1", "PodDisruptionBudget"),
        ("apps/v1", "StatefulSet"),
        ("v1", "Service"),
        ("v1", "ConfigMap"),
    )
]


@dataclass
class OperatorOptions:
    """How the operator runs; ``from_env`` reads the ``KVCLUSTER_OPERATOR_*`` settings."""

    sentinels: list[str] | None = None  # KVCLUSTER_OPERATOR_SENTINELS: reach the sentinels here, not by pod DNS
    interval: float = 1.5  # seconds between observations of a cluster
    policy: rollout.Policy = field(default_factory=rollout.Policy)
    connection: kopf.ConnectionInfo | None = None  # None: in-cluster service account, else kubeconfig
    scanning: bool = True  # kopf's scanning of CRDs and namespaces (off against API emulators)
    resync: float = 300.0  # seconds between drift-repairing re-applies

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OperatorOptions:
        sentinels = [s.strip() for s in environ.get("KVCLUSTER_OPERATOR_SENTINELS", "").split(",") if s.strip()]
        step = float(environ.get("KVCLUSTER_OPERATOR_STEP_TIMEOUT", "600"))
        return cls(
            sentinels=sentinels or None,
            interval=float(environ.get("KVCLUSTER_OPERATOR_INTERVAL", "1.5")),
            policy=rollout.Policy(pod_deadline=step, failover_deadline=min(step, 120.0), scale_deadline=step),
        )


class Runtime:
    """What the handlers share: the options and the API client (made from kopf's login)."""

    def __init__(self, options: OperatorOptions):
        self.options = options
        self.info: kopf.ConnectionInfo | None = None
        self._api: KubeApi | None = None
        self._api_info: kopf.ConnectionInfo | None = None
        self._login_kwargs: dict[str, Any] = {}
        # The status this operator last wrote, per KVCluster uid: fresher than kopf's body between
        # watch events, so two observations in a row never post the same Event twice.
        self.last_status: dict[str, dict[str, Any]] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.busy = 0  # handler calls in flight: kopf leaves a running timer orphaned when it stops

    def login(self, **kwargs: Any) -> kopf.ConnectionInfo | None:
        """kopf's own login (service account, else kubeconfig); kwargs are kopf's (settings, logger)."""
        if kwargs:
            self._login_kwargs = kwargs
        kwargs = kwargs or self._login_kwargs
        if self.options.connection is None and not kwargs:
            return None  # kopf's login activity has not run yet
        info = (
            self.options.connection or kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        )
        self.info = info
        return info

    def api(self) -> KubeApi:
        if self.info is None:
            self.login()
        if self.info is None:
            raise kopf.TemporaryError("no Kubernetes credentials", delay=5)
        if self._api is None or self._api_info is not self.info:
            if self._api is not None:  # new credentials: retire the old session
                asyncio.get_running_loop().create_task(self._api.close())
            self._api = KubeApi(self.info)
            self._api_info = self.info
        return self._api

    async def close(self) -> None:
        deadline = time.monotonic() + 10
        while self.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._api is not None:
            await self._api.close()
            self._api = None

    def lock(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())

    def previous_status(self, body: kopf.Body) -> dict[str, Any]:
        return {**dict(body.status), **self.last_status.get(body.metadata.uid or body.metadata.name, {})}

    def remember_status(self, body: kopf.Body, status: Mapping[str, Any]) -> None:
        key = body.metadata.uid or body.metadata.name
        self.last_status[key] = {**self.last_status.get(key, {}), **status}

    def unauthorized(self) -> None:
        """A 401: the token may have rotated (bound service account tokens do); log in again next time."""
        self.info = None


# -- helpers (pure) -----------------------------------------------------------------------------


def owned_by(obj: Mapping[str, Any], uid: str | None, name: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    for ref in refs:
        if ref.get("kind") == "KVCluster" and (ref.get("uid") == uid if uid else ref.get("name") == name):
            return True
    return False


def sentinel_addresses(name: str, namespace: str, count: int, override: list[str] | None) -> list[str]:
    """Each sentinel pod by its stable DNS name (interface K), or the operator's override."""
    if override:
        return list(override)
    headless = f"{name}-sentinel-headless"
    return [f"{name}-sentinel-{i}.{headless}.{namespace}.svc.cluster.local:{SENTINEL_PORT}" for i in range(count)]


def node_statefulset_name(name: str) -> str:
    return f"{name}-node"


def pvc_names(objects: list[dict[str, Any]], pvcs: list[dict[str, Any]]) -> list[str]:
    """The PVCs the StatefulSets in ``objects`` made: ``<template>-<statefulset>-<ordinal>``."""
    patterns = []
    for obj in objects:
        if obj.get("kind") != "StatefulSet":
            continue
        sts = obj["metadata"]["name"]
        for template in obj.get("spec", {}).get("volumeClaimTemplates") or []:
            patterns.append(re.compile(re.escape(f"{template['metadata']['name']}-{sts}-") + r"\d+$"))
    names = [p["metadata"]["name"] for p in pvcs]
    return sorted(n for n in names if any(p.match(n) for p in patterns))


def status_delta(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch turning ``current`` into ``wanted`` for the keys of ``wanted`` (None removes a key)."""
    delta: dict[str, Any] = {}
    for key, value in wanted.items():
        before = current.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            sub = {k: v for k, v in value.items() if before.get(k) != v}
            sub.update({k: None for k in before if k not in value})
            if sub:
                delta[key] = sub
        elif before != value:
            delta[key] = value
    return delta


# -- the registry -------------------------------------------------------------------------------


def build_registry(options: OperatorOptions | None = None) -> kopf.OperatorRegistry:
    options = options or OperatorOptions.from_env(os.environ)
    registry = kopf.OperatorRegistry()
    rt = Runtime(options)
    resource = dict(group=GROUP, version=VERSION, plural=PLURAL, registry=registry)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        # Handler progress in annotations: the CRD's status schema stays ours alone.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kvcluster.io")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="kvcluster.io", key="last-handled-configuration"
        )
        settings.posting.level = logging.WARNING  # handler logs are not Events; our own Events are posted
        settings.scanning.disabled = not options.scanning
        settings.execution.max_workers = 4

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return rt.login(**kwargs)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await rt.close()

    @kopf.on.resume(**resource, id="reconcile")
    @kopf.on.create(**resource, id="reconcile")
    @kopf.on.update(**resource, id="reconcile")
    async def reconcile(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
        await _call(rt, _reconcile(rt, body, logger))

    @kopf.timer(**resource, interval=options.resync, initial_delay=options.resync, id="resync")
    async def resync(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
        if not body.metadata.get("deletionTimestamp") and not specs.validate(dict(body.spec), body.metadata.name):
            await _call(rt, _reconcile(rt, body, logger, announce=False))

    @kopf.timer(**resource, interval=options.interval, id="watch")
    async def watch(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
        if body.metadata.get("deletionTimestamp") or specs.validate(dict(body.spec), body.metadata.name):
            return
        await _call(rt, _watch(rt, body, logger))

    @kopf.daemon(**resource, id="sentinel-events", cancellation_timeout=5)
    async def sentinel_events(body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any) -> None:
        """Observe at once when a sentinel announces a failover step, instead of at the next tick."""
        await _sentinel_events(rt, body, stopped, logger)

    @kopf.on.delete(**resource, id="delete")
    async def delete(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
        await _call(rt, _delete(rt, body, logger))

    return registry


async def _call(rt: Runtime, coro: Any) -> None:
    rt.busy += 1
    try:
        await coro
    except ApiError as e:
        if e.status == 401:
            rt.unauthorized()
        raise kopf.TemporaryError(str(e), delay=5) from e
    finally:
        rt.busy -= 1


def _as_dict(body: kopf.Body) -> dict[str, Any]:
    return {
        "apiVersion": body.get("apiVersion", f"{GROUP}/{VERSION}"),
        "kind": body.get("kind", "KVCluster"),
        "metadata": dict(body.metadata),
        "spec": dict(body.spec),
        "status": dict(body.status),
    }


# -- reconcile ----------------------------------------------------------------------------------


async def _reconcile(rt: Runtime, body: kopf.Body, logger: kopf.Logger, announce: bool = True) -> None:
    """Validate, then apply every desired object and prune the rest. ``announce``: post Events (not on resync)."""
    api = rt.api()
    name, namespace = body.metadata.name, body.metadata.namespace
    kvc = _as_dict(body)
    errors = specs.validate(kvc["spec"], name)
    generation = body.metadata.get("generation", 0)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    previous = list(body.status.get("conditions") or [])
    if errors:
        message = "; ".join(errors)
        conditions = observer.merge_conditions(
            previous, [observer.condition("Ready", False, "InvalidSpec", message, now, previous, generation)]
        )
        failed = {"phase": "Failed", "conditions": conditions}
        await api.merge_patch(KVCLUSTER, namespace, name, {"status": failed}, subresource="status")
        rt.remember_status(body, failed)
        kopf.event(body, type="Warning", reason="InvalidSpec", message=message[:1000])
        raise kopf.PermanentError(f"invalid KVCluster spec: {message}")
    if announce:
        for warning in specs.warnings(kvc["spec"]):
            kopf.event(body, type="Warning", reason="SpecWarning", message=warning)

    password, generated = await _password(api, kvc)
    if generated and await api.get(STATEFULSET, namespace, node_statefulset_name(name)) is not None:
        kopf.event(
            body,
            type="Warning",
            reason="PasswordGenerated",
            message=f"the Secret {name}-auth was missing: a new password was generated; pods pick it up on restart",
        )
    objects = desired(kvc, password=password)
    for obj in objects:
        obj.setdefault("metadata", {}).setdefault("namespace", namespace)
    await _hold_scale_down(api, objects, name, namespace)

    applied: set[tuple[str, str, str]] = set()
    skipped: list[str] = []
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
        try:
            await api.apply(obj)
        except NotFound:
            if obj["kind"] != "ServiceMonitor":
                raise
            skipped.append(f"ServiceMonitor {obj['metadata']['name']} (no monitoring.coreos.com API)")
            continue
        applied.add(key)
    removed = await _prune(api, body, applied)
    if skipped:
        kopf.event(body, type="Warning", reason="Skipped", message="not created: " + ", ".join(skipped))
    message = f"{len(applied)} objects applied" + (f", removed {', '.join(removed)}" if removed else "")
    logger.info(message)
    if announce or removed:
        kopf.event(body, type="Normal", reason="Reconciled", message=message)
    status: dict[str, Any] = {"observedGeneration": generation}
    if body.status.get("phase") in (None, "Failed"):
        status["phase"] = "Pending"
        status["conditions"] = [c for c in previous if c.get("reason") != "InvalidSpec"]
    await api.merge_patch(KVCLUSTER, namespace, name, {"status": status}, subresource="status")
    rt.remember_status(body, status)


async def _password(api: KubeApi, kvc: Mapping[str, Any]) -> tuple[str | None, bool]:
    """(the generated password, made just now?): read back from its Secret, or made now, once.

    None for the other auth modes (no auth, or the user's own Secret).
    """
    auth = specs.with_defaults(kvc["spec"])["auth"]
    if not auth["enabled"] or auth.get("existingSecret"):
        return None, False
    meta = kvc["metadata"]
    secret = await api.get(SECRET, meta["namespace"], f"{meta['name']}-auth")
    if secret is not None:
        data = (secret.get("data") or {}).get(auth["secretKey"])
        if data:
            return base64.b64decode(data).decode(), False
        text = (secret.get("stringData") or {}).get(auth["secretKey"])
        if text:
            return str(text), False
    return secrets.token_urlsafe(32), True


async def _connect_password(api: KubeApi, kvc: Mapping[str, Any]) -> str | None:
    """The password to AUTH to sentinels and nodes with, whatever the auth mode."""
    auth = specs.with_defaults(kvc["spec"])["auth"]
    if not auth["enabled"]:
        return None
    namespace = kvc["metadata"]["namespace"]
    name = auth.get("existingSecret") or f"{kvc['metadata']['name']}-auth"
    secret = await api.get(SECRET, namespace, name)
    if secret is None:
        return None
    data = (secret.get("data") or {}).get(auth["secretKey"])
    if data:
        return base64.b64decode(data).decode()
    text = (secret.get("stringData") or {}).get(auth["secretKey"])
    return str(text) if text else None


async def _hold_scale_down(api: KubeApi, objects: list[dict[str, Any]], name: str, namespace: str) -> None:
    """Keep the node StatefulSet's replicas while scaling down: the planner lowers it one pod at a time."""
    sts_name = node_statefulset_name(name)
    for obj in objects:
        if obj["kind"] == "StatefulSet" and obj["metadata"]["name"] == sts_name:
            current = await api.get(STATEFULSET, namespace, sts_name)
            if current is not None:
                have = int((current.get("spec") or {}).get("replicas") or 0)
                if have > int(obj["spec"].get("replicas", 1)):
                    obj["spec"]["replicas"] = have


async def _prune(api: KubeApi, body: kopf.Body, applied: set[tuple[str, str, str]]) -> list[str]:
    name, namespace, uid = body.metadata.name, body.metadata.namespace, body.metadata.uid
    removed = []
    for kind in PRUNED_KINDS:
        try:
            existing = await api.list(kind, namespace, {INSTANCE: name, **MANAGED_BY})
        except NotFound:  # e.g. no ServiceMonitor API in this cluster
            continue
        for obj in existing:
            obj_name = obj["metadata"]["name"]
            if (kind.api_version, kind.kind, obj_name) in applied or not owned_by(obj, uid, name):
                continue
            if await api.delete(kind, namespace, obj_name):
                removed.append(f"{kind.kind} {obj_name}")
    return removed


# -- delete -------------------------------------------------------------------------------------


async def _delete(rt: Runtime, body: kopf.Body, logger: kopf.Logger) -> None:
    api = rt.api()
    namespace = body.metadata.namespace
    kvc = _as_dict(body)
    spec = specs.with_defaults(kvc["spec"])
    try:
        objects = desired(kvc, password="-")
    except Exception:  # an invalid spec never created anything: fall back to what is labelled ours
        objects = []
    deleted = []
    for obj in reversed(objects):
        if await api.delete(kind_of(obj), namespace, obj["metadata"]["name"]):
            deleted.append(f"{obj['kind']} {obj['metadata']['name']}")
    deleted += await _prune(api, body, set())
    pvcs = pvc_names(objects, await api.list(PVC, namespace))
    if spec["storage"]["retainOnDelete"]:
        if pvcs:
            kopf.event(
                body,
                type="Normal",
                reason="VolumesRetained",
                message=f"kept {len(pvcs)} PersistentVolumeClaims (spec.storage.retainOnDelete): {', '.join(pvcs)}",
            )
    else:
        for pvc in pvcs:
            if await api.delete(PVC, namespace, pvc):
                deleted.append(f"PersistentVolumeClaim {pvc}")
    rt.last_status.pop(body.metadata.uid or body.metadata.name, None)
    logger.info(
        f"deleted {len(deleted)} objects" + (f", kept PVCs {pvcs}" if spec["storage"]["retainOnDelete"] else "")
    )


# -- watch: observe the sentinels, then take the next rollout step ------------------------------


async def _sentinel_call(address: str, password: str | None, *args: str) -> Any:
    host, _, port = address.rpartition(":")
    for attempt_password in [password, None] if password else [None]:
        client = observer._client(host, int(port), attempt_password, 2.0)
        try:
            return await client.execute_command(*args)
        except Exception as e:
            if attempt_password and "password" in str(e).lower():
                continue  # a sentinel without requirepass refuses AUTH: try without
            raise
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()
    return None


async def _watch(rt: Runtime, body: kopf.Body, logger: kopf.Logger) -> None:
    async with rt.lock(body.metadata.uid or body.metadata.name):
        await _observe_and_act(rt, body, logger)


async def _observe_and_act(rt: Runtime, body: kopf.Body, logger: kopf.Logger) -> None:
    api = rt.api()
    name, namespace = body.metadata.name, body.metadata.namespace
    kvc = _as_dict(body)
    spec = specs.with_defaults(kvc["spec"])
    cluster = observer.Cluster(
        name=name,
        namespace=namespace,
        sentinels=int(spec["sentinels"]),
        replicas=int(spec["replicas"]),
        generation=int(body.metadata.get("generation") or 0),
    )
    group = spec["sentinel"]["masterName"]
    password = await _connect_password(api, kvc)
    sts_name = node_statefulset_name(name)
    pods_raw = await api.list(POD, namespace, {INSTANCE: name, COMPONENT: "node"})
    pods = [
        observer.pod_view(p) for p in pods_raw if re.fullmatch(re.escape(sts_name) + r"-\d+", p["metadata"]["name"])
    ]
    addresses = sentinel_addresses(name, namespace, cluster.sentinels, rt.options.sentinels)
    answers = await observer.query_sentinels(addresses, group, password)
    if password and all("password" in a.error.lower() for a in answers if a.error) and any(a.error for a in answers):
        answers = await observer.query_sentinels(addresses, group, None)
    leader_addr = observer.agreed_leader(answers, cluster.majority)
    leader_info = await observer.leader_replication(leader_addr, password) if leader_addr else None
    previous = rt.previous_status(body)
    obs = observer.observe(
        cluster, answers, pods, previous, dt.datetime.now(dt.UTC), leader_info, sync_lag_bytes=observer.LAGGING_BYTES
    )
    # Demotions before the promotion: the -leader Service must never select two pods, not even
    # between two patches.
    for pod_name, role in sorted(obs.labels.items(), key=lambda item: item[1] == "leader"):
        with contextlib.suppress(NotFound):
            await api.merge_patch(POD, namespace, pod_name, {"metadata": {"labels": {observer.ROLE_LABEL: role}}})
            logger.info(f"{pod_name}: {observer.ROLE_LABEL}={role or '(none)'}")
    for event in obs.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)

    status = dict(obs.status)
    status.update(await _rollout(rt, api, body, previous, spec, pods, obs, answers, password, logger))
    conditions = status.pop("conditions")
    extra = status.pop("_conditions", [])
    status["conditions"] = observer.merge_conditions(conditions, extra)
    status["phase"] = observer.phase(status["conditions"])
    delta = status_delta(previous, status)
    if delta:
        await api.merge_patch(KVCLUSTER, namespace, name, {"status": delta}, subresource="status")
    rt.remember_status(body, status)


# Sentinel announcements after which the view has changed (Redis Sentinel's event names).
WAKE_CHANNELS = frozenset(
    {
        "+sdown",
        "-sdown",
        "+odown",
        "-odown",
        "+try-failover",
        "+elected-leader",
        "+promoted-slave",
        "+switch-master",
        "+failover-end",
        "+failover-end-for-timeout",
        "+slave-reconf-done",
        "+convert-to-slave",
        "+slave",
    }
)


async def _sentinel_events(rt: Runtime, body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger) -> None:
    """Subscribe to every sentinel's announcements; each relevant one triggers an observation now."""
    name, namespace = body.metadata.name, body.metadata.namespace
    wake = asyncio.Event()
    heard: list[str] = []
    listening: tuple[list[str], str | None] | None = None
    listeners: list[asyncio.Task[None]] = []

    async def stop_listening() -> None:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        listeners.clear()

    try:
        while not stopped:
            # The sentinels to listen to follow the spec (spec.sentinels may change) and the password.
            spec = specs.with_defaults(dict(body.spec))
            addresses = sentinel_addresses(name, namespace, int(spec["sentinels"]), rt.options.sentinels)
            password = await _connect_password(rt.api(), _as_dict(body))
            if listening != (addresses, password):
                await stop_listening()
                listeners.extend(asyncio.create_task(_listen(a, password, wake, heard, stopped)) for a in addresses)
                listening = (addresses, password)
            try:
                await asyncio.wait_for(wake.wait(), timeout=5.0)
            except TimeoutError:
                continue
            await asyncio.sleep(0.05)  # one observation for a burst of announcements
            wake.clear()
            what = ", ".join(dict.fromkeys(heard))
            heard.clear()
            if body.metadata.get("deletionTimestamp") or specs.validate(dict(body.spec), name):
                continue
            logger.info(f"sentinel announced {what}: observing now")
            with contextlib.suppress(kopf.TemporaryError):
                await _call(rt, _watch(rt, body, logger))
    finally:
        await stop_listening()


async def _listen(
    address: str, password: str | None, wake: asyncio.Event, heard: list[str], stopped: kopf.DaemonStopped
) -> None:
    """PSUBSCRIBE * on one sentinel, reconnecting every second while it is unreachable."""
    host, _, port = address.rpartition(":")
    passwords = [password, None] if password else [None]
    attempt = 0
    while not stopped:
        client = aioredis.Redis(
            host=host, port=int(port), password=passwords[attempt % len(passwords)], socket_connect_timeout=1.0
        )
        pubsub = client.pubsub()
        try:
            await pubsub.psubscribe("*")
            while not stopped:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                channel = message["channel"]
                channel = channel.decode() if isinstance(channel, bytes) else str(channel)
                if channel in WAKE_CHANNELS:
                    heard.append(channel)
                    wake.set()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # down, restarting, or AUTH refused: try again (with the other password)
            if "password" in str(e).lower():
                attempt += 1
            await asyncio.sleep(1.0)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()


async def _rollout(
    rt: Runtime,
    api: KubeApi,
    body: kopf.Body,
    previous_status: Mapping[str, Any],
    spec: Mapping[str, Any],
    pods: list[observer.PodView],
    obs: observer.Observation,
    answers: list[observer.SentinelAnswer],
    password: str | None,
    logger: kopf.Logger,
) -> dict[str, Any]:
    """Plan and execute the next rolling-upgrade or scale-down step; the status fields it owns."""
    name, namespace = body.metadata.name, body.metadata.namespace
    sts = await api.get(STATEFULSET, namespace, node_statefulset_name(name))
    if sts is None:
        return {}
    revision = (sts["metadata"].get("annotations") or {}).get(observer.REVISION_ANNOTATION) or (
        (sts["spec"].get("template", {}).get("metadata") or {}).get("annotations") or {}
    ).get(observer.REVISION_ANNOTATION, "")
    previous = dict(previous_status.get("rollout") or {})
    inputs = rollout.Inputs(
        revision=revision,
        desired_replicas=int(spec["replicas"]),
        current_replicas=int(sts["spec"].get("replicas") or 0),
        pods=pods,
        view=rollout.View(
            leader=obs.leader_pod,
            synced_replicas=frozenset(obs.synced_replicas),
            failover_in_progress=obs.failover_in_progress,
        ),
        now=time.time(),
        step=previous.get("step"),
        policy=rt.options.policy,
        statefulset_name=node_statefulset_name(name),
    )
    action = rollout.plan(inputs)
    if action.done:
        kopf.event(body, type="Normal", reason="RolloutStepDone", message=f"{action.done} completed")
    if action.kind == "delete-pod":
        logger.info(action.reason)
        kopf.event(
            body, type="Normal", reason="RollingUpgrade", message=f"deleting pod {action.target}: {action.reason}"
        )
        await api.delete(POD, namespace, action.target)
    elif action.kind == "failover":
        target = next((a for a in answers if a.reachable and a.leader == obs.leader_addr), None)
        if target is None:
            action = rollout.Action("wait", reason="no sentinel to ask for the failover")
        else:
            logger.info(action.reason)
            kopf.event(body, type="Normal", reason="PlannedFailover", message=action.reason)
            try:
                await _sentinel_call(target.sentinel, password, "SENTINEL", "FAILOVER", spec["sentinel"]["masterName"])
            except Exception as e:  # e.g. INPROG, NOGOODSLAVE: retried at the next tick
                action = rollout.Action("wait", reason=f"SENTINEL FAILOVER refused: {e}")
    elif action.kind == "scale-down":
        logger.info(action.reason)
        kopf.event(body, type="Normal", reason="ScalingDown", message=action.reason)
        await api.merge_patch(
            STATEFULSET, namespace, node_statefulset_name(name), {"spec": {"replicas": action.replicas}}
        )

    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = list(previous_status.get("conditions") or [])
    generation = int(body.metadata.get("generation") or 0)
    paused = action.reason if action.kind == "pause" else None
    if paused and previous.get("paused") != paused:
        kopf.event(body, type="Warning", reason="RolloutPaused", message=paused)
    busy = action.kind != "idle"
    reason = {"pause": "RolloutPaused", "wait": "Waiting", "idle": "UpToDate"}.get(action.kind, "InProgress")
    upgrading = observer.condition(
        "Upgrading",
        busy,
        reason,
        action.reason if busy else f"all pods at revision {revision}",
        stamp,
        conditions,
        generation,
    )
    step = (
        action.step
        if action.acts
        else (action.step if action.kind in ("wait", "pause") and previous.get("step") else None)
    )
    return {
        "rollout": {
            "revision": revision,
            "step": step,
            "paused": paused,
            "lastAction": action.reason or previous.get("lastAction"),
        },
        "_conditions": [upgrading],
    }
