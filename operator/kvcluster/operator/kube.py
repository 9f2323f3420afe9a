"""A small asyncio client for the Kubernetes API: get, list, server-side apply, merge-patch, delete.

The operator's handlers run on kopf's event loop, where the synchronous ``kubernetes`` client would
block every other handler. This client speaks plain HTTP with aiohttp and the same credentials kopf
logged in with (:class:`kopf.ConnectionInfo`), for the handful of kinds the operator manages.

Writes are idempotent by construction: :meth:`KubeApi.apply` is a server-side apply with our field
manager (``force=true``: the operator owns the fields it sets), so applying the same object twice
changes nothing. An API server that does not support apply for a missing object (the kmock emulator
answers 404) gets a create instead.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import kopf

FIELD_MANAGER = "kvcluster-operator"


@dataclass(frozen=True)
class Kind:
    api_version: str  # "v1", "apps/v1"
    kind: str
    plural: str

    def path(self, namespace: str, name: str | None = None) -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        path = f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{path}/{name}" if name else path


# Every kind the operator reads or writes (see the RBAC list in the chart).
KINDS: dict[tuple[str, str], Kind] = {
    (k.api_version, k.kind): k
    for k in (
        Kind("v1", "ConfigMap", "configmaps"),
        Kind("v1", "Secret", "secrets"),
        Kind("v1", "Service", "services"),
        Kind("v1", "Pod", "pods"),
        Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        Kind("apps/v1", "StatefulSet", "statefulsets"),
        Kind("apps/v1", "Deployment", "deployments"),
        Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        Kind("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors"),
        Kind("kvcluster.io/v1alpha1", "KVCluster", "kvclusters"),
    )
}


def kind_of(obj: Mapping[str, Any]) -> Kind:
    try:
        return KINDS[(obj["apiVersion"], obj["kind"])]
    except KeyError:
        raise ValueError(f"the operator does not manage {obj.get('apiVersion')}/{obj.get('kind')}") from None


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, body: str):
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]}")
        self.status = status


class NotFound(ApiError):
    pass


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if not info.server.startswith("https"):
        return False
    if info.insecure:
        return False
    ctx = ssl.create_default_context(cafile=info.ca_path) if info.ca_path else ssl.create_default_context()
    if info.ca_data:
        data = info.ca_data.decode() if isinstance(info.ca_data, bytes) else info.ca_data
        if "BEGIN CERTIFICATE" not in data:  # kubeconfig's certificate-authority-data is base64 of the PEM
            data = base64.b64decode(data).decode()
        ctx.load_verify_locations(cadata=data)
    cert, key = info.certificate_path, info.private_key_path
    if info.certificate_data or info.private_key_data:
        # ssl wants files for client certificates: write them to private temporary files.
        def to_file(data: str | bytes | None) -> str | None:
            if data is None:
                return None
            raw = data.encode() if isinstance(data, str) else data
            if b"BEGIN" not in raw:
                raw = base64.b64decode(raw)
            f = tempfile.NamedTemporaryFile(prefix="kvcluster-operator-", delete=False)  # noqa: SIM115
            f.write(raw)
            f.close()
            return f.name

        cert, key = to_file(info.certificate_data) or cert, to_file(info.private_key_data) or key
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


class KubeApi:
    """The Kubernetes API at ``info.server`` with ``info``'s credentials."""

    def __init__(self, info: kopf.ConnectionInfo):
        self.info = info
        headers = {"Accept": "application/json"}
        auth = None
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        elif info.username and info.password:
            auth = aiohttp.BasicAuth(info.username, info.password)
        self._session = aiohttp.ClientSession(
            base_url=info.server.rstrip("/"),
            headers=headers,
            auth=auth,
            connector=aiohttp.TCPConnector(ssl=_ssl_context(info)),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def close(self) -> None:
        await self._session.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        async with self._session.request(method, path, data=data, headers=headers, params=params) as resp:
            text = await resp.text()
            if resp.status == 404:
                raise NotFound(resp.status, method, path, text)
            if resp.status >= 400:
                raise ApiError(resp.status, method, path, text)
            return json.loads(text) if text else None

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._request("GET", kind.path(namespace, name))
        except NotFound:
            return None

    async def list(self, kind: Kind, namespace: str, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Objects of ``kind`` in ``namespace`` carrying all ``labels`` (checked here too: kmock ignores selectors)."""
        params = {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else None
        reply = await self._request("GET", kind.path(namespace), params=params)
        items = reply.get("items") or [] if reply else []
        wanted = dict(labels or {})
        return [
            item
            for item in items
            if all((item.get("metadata", {}).get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        kind = kind_of(obj)
        namespace = obj["metadata"]["namespace"]
        return await self._request("POST", kind.path(namespace), body=obj, params={"fieldManager": FIELD_MANAGER})

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply ``obj`` as the operator's field manager; create it where apply cannot."""
        kind = kind_of(obj)
        meta = obj["metadata"]
        params = {"fieldManager": FIELD_MANAGER, "force": "true"}
        try:
            return await self._request(
                "PATCH",
                kind.path(meta["namespace"], meta["name"]),
                body=obj,
                content_type="application/apply-patch+yaml",  # JSON is YAML
                params=params,
            )
        except NotFound:
            return await self.create(obj)

    async def merge_patch(
        self, kind: Kind, namespace: str, name: str, patch: Mapping[str, Any], subresource: str = ""
    ) -> dict[str, Any]:
        path = kind.path(namespace, name) + (f"/{subresource}" if subresource else "")
        return await self._request(
            "PATCH",
            path,
            body=patch,
            content_type="application/merge-patch+json",
            params={"fieldManager": FIELD_MANAGER},
        )

    async def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """Delete (background propagation); False if it was already gone."""
        try:
            await self._request(
                "DELETE",
                kind.path(namespace, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        except NotFound:
            return False
        return True
