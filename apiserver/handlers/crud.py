"""The resource verbs over HTTP: get, list, create, update, patch, delete, deletecollection.

`ResourceHandlers.handle` is called for every `/api/v1/...` and
`/apis/{g}/{v}/...` resource path; it picks the verb from the method and the
path shape and hands watches and subresources to their own modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from apiserver.handlers import negotiation, subresources
from apiserver.handlers.paths import ResourcePath
from apiserver.handlers.watch import WatchHandler
from apiserver.registry.generic import ListOptions, ResourceStore
from apiserver.registry.registry import Registry
from ketch.api import errors
from ketch.api.resources import ResourceInfo


@dataclass
class RequestInfo:
    """What the metrics and the authorizer see of a request."""

    verb: str = ""
    resource: str = ""


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"{name} must be an integer, not {value!r}") from None


def parse_list_options(request: Request, info: ResourceInfo) -> ListOptions:
    from ketch.api.selectors import LabelSelector, SelectorError, field_selector_for

    q = request.query_params
    opts = ListOptions(
        limit=_int_param(request, "limit") or 0,
        continue_token=q.get("continue", ""),
        resource_version=q.get("resourceVersion", ""),
    )
    if opts.limit < 0:
        raise errors.bad_request("limit must not be negative")
    label_text, field_text = q.get("labelSelector", ""), q.get("fieldSelector", "")
    try:
        if label_text.strip():
            opts.label_selector = LabelSelector.parse(label_text)
        if field_text.strip():
            opts.field_selector = field_selector_for(info, field_text)
    except SelectorError as exc:
        raise errors.bad_request(str(exc)) from None
    return opts


def is_dry_run(request: Request) -> bool:
    values = request.query_params.getlist("dryRun")
    for v in values:
        if v != "All":
            raise errors.bad_request(f'unsupported dry run value "{v}": only "All" is supported')
    return bool(values)


async def delete_options(request: Request) -> dict:
    """DeleteOptions from the body, with query parameters filling in what it lacks."""
    body = await negotiation.read_optional_body(request)
    opts: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    q = request.query_params
    if "gracePeriodSeconds" in q and "gracePeriodSeconds" not in opts:
        opts["gracePeriodSeconds"] = _int_param(request, "gracePeriodSeconds")
    if "propagationPolicy" in q and "propagationPolicy" not in opts:
        opts["propagationPolicy"] = q["propagationPolicy"]
    if "orphanDependents" in q and "orphanDependents" not in opts:
        opts["orphanDependents"] = q["orphanDependents"] == "true"
    policy = opts.get("propagationPolicy")
    if policy not in (None, "Background", "Foreground", "Orphan"):
        raise errors.bad_request(
            f'unsupported propagationPolicy "{policy}": use Background, Foreground or Orphan'
        )
    if q.getlist("dryRun"):
        opts.setdefault("dryRun", q.getlist("dryRun"))
    return opts


def render(request: Request, info: ResourceInfo, obj_or_list: dict, *, single: bool, status: int = 200) -> Response:
    """Plain JSON, or a Table when the client asked for one."""
    if negotiation.wants_table(request):
        from ketch.api.printers import table

        items = [obj_or_list] if single else obj_or_list["items"]
        tbl = table(info, items, wide=True)
        tbl.setdefault("metadata", {})
        meta = obj_or_list.get("metadata", {})
        if meta.get("resourceVersion"):
            tbl["metadata"]["resourceVersion"] = meta["resourceVersion"]
        if not single and meta.get("continue"):
            tbl["metadata"]["continue"] = meta["continue"]
        if not single and "remainingItemCount" in meta:
            tbl["metadata"]["remainingItemCount"] = meta["remainingItemCount"]
        include = request.query_params.get("includeObject", "Metadata")
        if include == "None":
            for row in tbl.get("rows", []):
                row.pop("object", None)
        elif include == "Object":
            for row, item in zip(tbl.get("rows", []), items, strict=False):
                row["object"] = item
        return negotiation.json_response(tbl, status)
    return negotiation.json_response(obj_or_list, status)


class ResourceHandlers:
    def __init__(self, registry: Registry, watch: WatchHandler) -> None:
        self.registry = registry
        self.watch_handler = watch

    async def handle(self, request: Request, rp: ResourcePath, ri: RequestInfo) -> Response:
        store = self.registry.for_info(rp.info)
        method = request.method
        ri.resource = rp.info.plural + (f"/{rp.subresource}" if rp.subresource else "")
        if rp.subresource:
            return await subresources.handle(request, rp, store, self.registry, ri)
        watching = rp.watch or request.query_params.get("watch") in ("true", "1")
        if rp.name is None:
            if method == "GET":
                if watching:
                    ri.verb = "watch"
                    return await self.watch_handler.serve(request, store, rp.namespace, None)
                ri.verb = "list"
                opts = parse_list_options(request, rp.info)
                return render(request, rp.info, await store.list(rp.namespace, opts), single=False)
            if method == "POST":
                ri.verb = "create"
                if rp.info.namespaced and rp.namespace is None:
                    raise errors.method_not_supported(rp.info, "create")
                body = await negotiation.read_body(request)
                obj = await store.create(rp.namespace, body, dry_run=is_dry_run(request))
                return render(request, rp.info, obj, single=True, status=201)
            if method == "DELETE":
                ri.verb = "deletecollection"
                if "deletecollection" not in rp.info.verbs:
                    raise errors.method_not_supported(rp.info, "deletecollection")
                opts = parse_list_options(request, rp.info)
                dopts = await delete_options(request)
                result = await store.delete_collection(rp.namespace, dopts, opts, dry_run=is_dry_run(request))
                return negotiation.json_response(result)
            raise errors.method_not_allowed(f"{method} is not supported on a collection of {rp.info.plural}")
        name = rp.name
        if method == "GET":
            if watching:
                ri.verb = "watch"
                return await self.watch_handler.serve(request, store, rp.namespace, name)
            ri.verb = "get"
            obj = await store.get(rp.namespace, name, request.query_params.get("resourceVersion", ""))
            return render(request, rp.info, obj, single=True)
        if method == "PUT":
            ri.verb = "update"
            body = await negotiation.read_body(request)
            obj = await store.update(rp.namespace, name, body, dry_run=is_dry_run(request))
            return render(request, rp.info, obj, single=True)
        if method == "PATCH":
            ri.verb = "patch"
            obj = await patch_object(request, store, rp.namespace, name, "")
            return render(request, rp.info, obj, single=True)
        if method == "DELETE":
            ri.verb = "delete"
            opts = await delete_options(request)
            obj, _removed = await store.delete(rp.namespace, name, opts, dry_run=is_dry_run(request))
            return render(request, rp.info, obj, single=True)
        raise errors.method_not_allowed(f"{method} is not supported on {rp.info.plural}/{name}")


def apply_patch(store: ResourceStore, ctype: str, target: dict, patch: Any) -> dict:
    """The patched object; 400/422 with the patch library's message on a bad patch."""
    from ketch.api import patch as patchlib

    try:
        if ctype == negotiation.MERGE_PATCH:
            if not isinstance(patch, dict):
                raise errors.bad_request("a merge patch must be a JSON object")
            return patchlib.merge_patch(target, patch)
        if ctype == negotiation.JSON_PATCH:
            if not isinstance(patch, list):
                raise errors.bad_request("a JSON patch must be a JSON array of operations")
            return patchlib.json_patch(target, patch)
        if not isinstance(patch, dict):
            raise errors.bad_request("a strategic merge patch must be a JSON object")
        from ketch.api.schema import schema_for

        return patchlib.strategic_merge_patch(target, patch, schema_for(store.info))
    except patchlib.PatchError as exc:
        raise errors.ApiError(errors.status(422, "Invalid", f"the patch could not be applied: {exc}")) from None


async def patch_object(request: Request, store: ResourceStore, namespace: str | None, name: str, sub: str) -> dict:
    ctype = negotiation.media_type(request)
    if ctype not in negotiation.PATCH_TYPES:
        if ctype == negotiation.APPLY_PATCH:
            raise errors.unsupported_media_type(
                "server-side apply (application/apply-patch+yaml) is not supported by Ketch yet; "
                "use client-side apply (kubectl apply without --server-side)"
            )
        raise errors.unsupported_media_type(list(negotiation.PATCH_TYPES))
    patch = await negotiation.read_body(request, negotiation.PATCH_TYPES)

    def mutate(current: dict) -> dict:
        return apply_patch(store, ctype, current, patch)

    return await store.guaranteed_update(
        namespace, name, mutate, subresource=sub, dry_run=is_dry_run(request)
    )
