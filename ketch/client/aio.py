"""The asyncio API client the daemons share (scheduler, controllers, node agent).

Speaks the Kubernetes REST API over HTTPS with a bearer token. Objects are
plain dicts; failures raise ``ketch.api.errors.ApiError`` rebuilt from the
server's ``Status`` so callers branch on ``err.code`` as client-go code does
on ``errors.IsNotFound``.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ketch.api.errors import ApiError
from ketch.api.resources import ResourceInfo

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True)
class ClusterAccess:
    """Where the apiserver is and how to prove who we are."""

    server: str
    token: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    ca_data: bytes | None = None
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> ClusterAccess:
        """The cluster and credentials of ``context`` (default: current) in a kubeconfig, as kubectl reads it."""
        from ketch.client import kubeconfig

        conn = kubeconfig.resolve(kubeconfig.load(path), kubeconfig.Overrides(context=context))
        return cls(
            server=conn.server, token=conn.token, insecure=conn.insecure, ca_data=conn.ca_data,
            client_cert_data=conn.client_cert_data, client_key_data=conn.client_key_data,
        )

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        context = ssl.create_default_context(
            cafile=self.ca_file, cadata=self.ca_data.decode() if self.ca_data else None
        )
        if self.client_cert_data and self.client_key_data:
            # ssl loads a certificate chain only from files: a private, short-lived copy.
            import tempfile

            with tempfile.TemporaryDirectory(prefix="ketch-client-") as tmp:
                cert, key = f"{tmp}/client.crt", f"{tmp}/client.key"
                for name, data in ((cert, self.client_cert_data), (key, self.client_key_data)):
                    with open(os.open(name, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                        f.write(data)
                context.load_cert_chain(cert, key)
        return context


def resource_path(
    info: ResourceInfo,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """``/apis/apps/v1/namespaces/ns/deployments/web/scale`` and its shorter forms."""
    parts = ["/api/v1" if not info.group else f"/apis/{info.group}/{info.version}"]
    if info.namespaced and namespace:
        parts.append(f"/namespaces/{quote(namespace, safe='')}")
    parts.append(f"/{info.plural}")
    if name:
        parts.append(f"/{quote(name, safe='')}")
        if subresource:
            parts.append(f"/{subresource}")
    return "".join(parts)


class AsyncClient:
    """One connection pool to one apiserver; safe to share between tasks."""

    def __init__(self, access: ClusterAccess, *, timeout: float = 30.0, user_agent: str = "ketch") -> None:
        verify = access.ssl_context()
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if access.token:
            headers["Authorization"] = f"Bearer {access.token}"
        self.access = access
        self._http = httpx.AsyncClient(
            base_url=access.server,
            verify=verify,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict:
        headers = {}
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = content_type
        response = await self._http.request(
            method, path, params=_clean(params), content=content, headers=headers
        )
        data = _decode(response)
        if response.status_code >= 400:
            raise _api_error(response.status_code, data)
        return data

    async def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> dict:
        return await self.request("GET", resource_path(info, namespace, name))

    async def list(
        self,
        info: ResourceInfo,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict:
        """One page of a list; the ``List`` object with ``metadata.resourceVersion``."""
        params = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "resourceVersion": resource_version,
            "limit": limit,
            "continue": continue_token,
        }
        return await self.request("GET", resource_path(info, namespace), params=params)

    async def list_all(self, info: ResourceInfo, namespace: str | None = None, **kw: Any) -> dict:
        """Every page of a list joined, at the first page's resourceVersion."""
        page = await self.list(info, namespace, limit=500, **kw)
        items = list(page.get("items") or [])
        while (page.get("metadata") or {}).get("continue"):
            page = await self.list(info, namespace, limit=500, continue_token=page["metadata"]["continue"], **kw)
            items.extend(page.get("items") or [])
        page["items"] = items
        return page

    async def watch(
        self,
        info: ResourceInfo,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[dict]:
        """Events ``{"type", "object"}`` as they come; an ERROR event raises ApiError."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": "true" if allow_bookmarks else None,
        }
        timeout = httpx.Timeout(None, connect=5.0)
        async with self._http.stream(
            "GET", resource_path(info, namespace), params=_clean(params), timeout=timeout
        ) as response:
            if response.status_code >= 400:
                raise _api_error(response.status_code, _decode_bytes(await response.aread()))
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    raise _api_error(int(event["object"].get("code") or 500), event["object"])
                yield event

    async def create(self, info: ResourceInfo, obj: dict, namespace: str | None = None) -> dict:
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        return await self.request("POST", resource_path(info, ns), body=obj)

    async def update(self, info: ResourceInfo, obj: dict, *, subresource: str | None = None) -> dict:
        meta = obj["metadata"]
        path = resource_path(info, meta.get("namespace"), meta["name"], subresource)
        return await self.request("PUT", path, body=obj)

    async def update_status(self, info: ResourceInfo, obj: dict) -> dict:
        return await self.update(info, obj, subresource="status")

    async def patch(
        self,
        info: ResourceInfo,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        content_type: str = MERGE_PATCH,
    ) -> dict:
        path = resource_path(info, namespace, name, subresource)
        return await self.request("PATCH", path, body=patch, content_type=content_type)

    async def delete(
        self,
        info: ResourceInfo,
        name: str,
        namespace: str | None = None,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        preconditions: dict | None = None,
    ) -> dict:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = preconditions
        return await self.request("DELETE", resource_path(info, namespace, name), body=options)

    async def bind(self, namespace: str, pod: str, node: str, pod_uid: str | None = None) -> dict:
        """POST pods/binding: the scheduler's only write to a pod."""
        from ketch.api.resources import lookup

        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod, "namespace": namespace, **({"uid": pod_uid} if pod_uid else {})},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        pods = lookup("", "v1", "pods")
        return await self.request("POST", resource_path(pods, namespace, pod, "binding"), body=binding)


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None}


def _decode(response: httpx.Response) -> dict:
    return _decode_bytes(response.content)


def _decode_bytes(raw: bytes) -> dict:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {"message": raw.decode(errors="replace")[:500]}
    return data if isinstance(data, dict) else {"items": data}


def _api_error(code: int, body: dict) -> ApiError:
    if body.get("kind") == "Status":
        return ApiError.from_status(body, code)
    return ApiError.from_status(
        {"kind": "Status", "status": "Failure", "message": body.get("message", ""), "code": code}, code
    )
