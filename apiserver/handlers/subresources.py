"""Subresources: status, scale (autoscaling/v1 Scale), binding, eviction, and the node-agent seam.

log, exec, attach, portforward and proxy need a node agent to talk to; until
one exists (a later issue) they answer 503 ServiceUnavailable with a Status
saying so. `NODE_AGENT_PROXY` is where that proxy plugs in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from apiserver.handlers import negotiation
from ketch.api import errors

if TYPE_CHECKING:
    from apiserver.handlers.crud import RequestInfo
    from apiserver.handlers.paths import ResourcePath
    from apiserver.registry.generic import ResourceStore
    from apiserver.registry.registry import Registry

NODE_AGENT_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy"})

#: Set by the node-agent proxy when it exists: async (request, ResourcePath, registry) -> Response.
NODE_AGENT_PROXY: Any = None


async def handle(
    request: Request, rp: ResourcePath, store: ResourceStore, registry: Registry, ri: RequestInfo
) -> Response:
    from apiserver.handlers.crud import is_dry_run, patch_object, render

    sub, name, method = rp.subresource, rp.name, request.method
    assert sub is not None and name is not None
    if sub in NODE_AGENT_SUBRESOURCES:
        ri.verb = "get" if method == "GET" else "create"
        if NODE_AGENT_PROXY is not None:
            return await NODE_AGENT_PROXY(request, rp, registry)
        await store.get(rp.namespace, name)  # 404 for a missing object first
        raise errors.service_unavailable(
            f"{rp.info.plural}/{sub} needs a node agent to talk to, and Ketch's node agent "
            "does not serve it yet"
        )
    if sub == "status":
        if method == "GET":
            ri.verb = "get"
            return render(request, rp.info, await store.get(rp.namespace, name), single=True)
        if method == "PUT":
            ri.verb = "update"
            body = await negotiation.read_body(request)
            obj = await store.update(rp.namespace, name, body, subresource="status", dry_run=is_dry_run(request))
            return render(request, rp.info, obj, single=True)
        if method == "PATCH":
            ri.verb = "patch"
            obj = await patch_object(request, store, rp.namespace, name, "status")
            return render(request, rp.info, obj, single=True)
    elif sub == "scale":
        return await _scale(request, rp, store, ri)
    elif sub == "binding" and method == "POST":
        ri.verb = "create"
        body = await negotiation.read_body(request)
        result = await registry.pods.bind(rp.namespace or "", name, body)
        return negotiation.json_response(result, 201)
    elif sub == "eviction" and method == "POST":
        ri.verb = "create"
        body = await negotiation.read_body(request)
        opts = (body or {}).get("deleteOptions") or {}
        await store.delete(rp.namespace, name, opts, dry_run=is_dry_run(request))
        return negotiation.json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201
        )
    raise errors.method_not_supported(f"{rp.info.plural}/{sub}", method.lower())


def to_scale(obj: dict) -> dict:
    """The autoscaling/v1 Scale view of a Deployment or ReplicaSet."""
    meta = obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = ""
    sel = spec.get("selector")
    if sel:
        parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
        for expr in sel.get("matchExpressions") or []:
            op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
            if op == "In":
                parts.append(f"{key} in ({','.join(values)})")
            elif op == "NotIn":
                parts.append(f"{key} notin ({','.join(values)})")
            elif op == "Exists":
                parts.append(key)
            elif op == "DoesNotExist":
                parts.append(f"!{key}")
        selector = ",".join(parts)
    scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": int(spec.get("replicas", 1))},
        "status": {"replicas": int(status.get("replicas", 0)), "selector": selector},
    }


def _scale_replicas(scale: Any, name: str) -> int:
    from ketch.api.validation import FieldError

    replicas = (scale.get("spec") or {}).get("replicas") if isinstance(scale, dict) else None
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        info = type("ScaleInfo", (), {"group": "autoscaling", "kind": "Scale", "plural": "scales"})
        raise errors.invalid(info, name, [FieldError(
            "FieldValueInvalid", "spec.replicas",
            f"Invalid value: {replicas!r}: must be greater than or equal to 0", replicas,
        )])
    return replicas


async def _scale(request: Request, rp: ResourcePath, store: ResourceStore, ri: RequestInfo) -> Response:
    from apiserver.handlers.crud import is_dry_run

    name, method = rp.name or "", request.method
    if method == "GET":
        ri.verb = "get"
        return negotiation.json_response(to_scale(await store.get(rp.namespace, name)))
    if method == "PUT":
        ri.verb = "update"
        body = await negotiation.read_body(request)
        replicas = _scale_replicas(body, name)
        want_rv = ((body or {}).get("metadata") or {}).get("resourceVersion") or None

        def set_replicas(obj: dict) -> dict:
            obj.setdefault("spec", {})["replicas"] = replicas
            return obj

        obj = await store.guaranteed_update(rp.namespace, name, set_replicas, precondition_rv=want_rv,
                                            dry_run=is_dry_run(request))
        return negotiation.json_response(to_scale(obj))
    if method == "PATCH":
        ri.verb = "patch"
        ctype = negotiation.media_type(request)
        if ctype not in negotiation.PATCH_TYPES:
            raise errors.unsupported_media_type(list(negotiation.PATCH_TYPES))
        patch = await negotiation.read_body(request, negotiation.PATCH_TYPES)

        def patch_replicas(obj: dict) -> dict:
            from ketch.api import patch as patchlib

            scale = to_scale(obj)
            try:
                if ctype == negotiation.JSON_PATCH:
                    patched = patchlib.json_patch(scale, patch)
                else:
                    patched = patchlib.merge_patch(scale, patch)
            except patchlib.PatchError as exc:
                raise errors.bad_request(f"the patch could not be applied: {exc}") from None
            obj.setdefault("spec", {})["replicas"] = _scale_replicas(patched, name)
            return obj

        obj = await store.guaranteed_update(rp.namespace, name, patch_replicas, dry_run=is_dry_run(request))
        return negotiation.json_response(to_scale(obj))
    raise errors.method_not_supported(f"{rp.info.plural}/scale", method.lower())
