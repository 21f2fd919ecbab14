"""OpenAPI v3 documents generated from the same schemas that validate objects.

`index()` is what `GET /openapi/v3` answers; `document(group, version)` what
`GET /openapi/v3/apis/<group>/<version>` (or `/openapi/v3/api/v1`) answers.

kubectl reads these to decide whether the server validates fields itself: it
takes the first PATCH operation whose `x-kubernetes-group-version-kind` is the
object's kind and looks for a `fieldValidation` parameter declared on that
operation (not on the path, not through a `$ref`). So every PATCH operation
here declares it inline. The PATCH request bodies list JSON patch and merge
patch only: listing strategic merge patch would make kubectl compute strategic
patches from this schema (see docs/api.md and KUBECTL.md section 2).

Documents are static: built once per group-version and cached, with their hash.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from typing import Any

from ketch.api import meta_v1
from ketch.api.resources import RESOURCES, ResourceInfo, groups, subresource
from ketch.api.schema import NOTHING, Field, Node, Object, kind_schema, schema_for

REF_PREFIX = "#/components/schemas/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
PATCH = META + "Patch"
INFO_VERSION = "v1.32.0"

_OPENAPI_FORMATS = {"date-time": "date-time", "base64": "byte"}


def gv_path(group: str, version: str) -> str:
    """The index key (and URL suffix) of a group-version: "api/v1", "apis/apps/v1"."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


# --- schemas ---------------------------------------------------------------------------------


class _SchemaBuilder:
    """Turns schema nodes into OpenAPI schemas; named Objects become shared components."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": REF_PREFIX + name}

    def node(self, node: Node) -> dict[str, Any]:
        tag = node.tag
        out: dict[str, Any]
        if tag == "object":
            assert isinstance(node, Object)
            if node.name:
                if node.name not in self.components:
                    self.components[node.name] = {}  # placeholder: recursion-safe
                    self.components[node.name] = self.object_body(node)
                return self.ref(node.name)
            return self.object_body(node)
        if tag == "string":
            out = {"type": "string"}
            if node.enum is not None:  # type: ignore[attr-defined]
                out["enum"] = list(node.enum)  # type: ignore[attr-defined]
            fmt = _OPENAPI_FORMATS.get(node.format or "")  # type: ignore[attr-defined]
            if fmt:
                out["format"] = fmt
            if node.max_length is not None:  # type: ignore[attr-defined]
                out["maxLength"] = node.max_length  # type: ignore[attr-defined]
        elif tag == "integer":
            out = {"type": "integer", "format": node.format}  # type: ignore[attr-defined]
            if node.minimum is not None:  # type: ignore[attr-defined]
                out["minimum"] = node.minimum  # type: ignore[attr-defined]
            if node.maximum is not None:  # type: ignore[attr-defined]
                out["maximum"] = node.maximum  # type: ignore[attr-defined]
        elif tag == "number":
            out = {"type": "number", "format": "double"}
        elif tag == "boolean":
            out = {"type": "boolean"}
        elif tag == "quantity":
            if QUANTITY not in self.components:
                self.components[QUANTITY] = {
                    "description": 'A fixed-point number: "100m", "0.5", "128Mi", "1G", or a number.',
                    "oneOf": [{"type": "string"}, {"type": "number"}],
                }
            return self.ref(QUANTITY)
        elif tag == "int-or-string":
            out = {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            }
        elif tag == "array":
            out = {"type": "array", "items": self.node(node.items)}  # type: ignore[attr-defined]
            if node.merge_key:  # type: ignore[attr-defined]
                out["x-kubernetes-patch-merge-key"] = node.merge_key  # type: ignore[attr-defined]
            if node.patch_strategy:  # type: ignore[attr-defined]
                out["x-kubernetes-patch-strategy"] = node.patch_strategy  # type: ignore[attr-defined]
        elif tag == "map":
            out = {"type": "object", "additionalProperties": self.node(node.values)}  # type: ignore[attr-defined]
        else:  # free-form
            out = {"x-kubernetes-preserve-unknown-fields": True}
        if node.description:
            out["description"] = node.description
        return out

    def field(self, field: Field) -> dict[str, Any]:
        schema = self.node(field.node)
        if "$ref" in schema:
            # OpenAPI 3.0 ignores siblings of $ref: wrap it, as kube-apiserver does.
            wrapped: dict[str, Any] = {"allOf": [schema]}
            node = field.node
            if node.description:
                wrapped["description"] = node.description
            if isinstance(node, Object) and node.retain_keys:
                wrapped["x-kubernetes-patch-strategy"] = "retainKeys"
            schema = wrapped
        else:
            schema = dict(schema)
        if field.default is not NOTHING:
            schema["default"] = copy.deepcopy(field.default)
        if field.read_only:
            schema["readOnly"] = True
        return schema

    def object_body(self, node: Object) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object"}
        if node.description:
            out["description"] = node.description
        out["properties"] = {name: self.field(f) for name, f in node.fields.items()}
        if node.required_names:
            out["required"] = list(node.required_names)
        return out


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


# --- operations -----------------------------------------------------------------------------


def _query(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": type_, "uniqueItems": True},
    }


_PRETTY = _query("pretty", "If 'true', the output is pretty printed.")
_DRY_RUN = _query("dryRun", "When present, the changes are not persisted (value: All).")
_FIELD_MANAGER = _query("fieldManager", "A name for the actor making the change.")
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "How the server treats unknown or duplicate fields: Ignore, Warn or Strict. Ketch always "
    "rejects fields it does not know (as Strict does), whatever the value.",
)
_FORCE = _query(
    "force", "Only meaningful for apply requests; Ketch does not do server-side apply.", "boolean"
)
_LIST_PARAMS = [
    _query("allowWatchBookmarks", "Ask for BOOKMARK events on a watch.", "boolean"),
    _query("continue", "The continue token of the previous page."),
    _query(
        "fieldSelector",
        "Select by fields: metadata.name, metadata.namespace, spec.nodeName, status.phase, ...",
    ),
    _query("labelSelector", "Select by labels (equality- and set-based)."),
    _query("limit", "Maximum number of items in one page.", "integer"),
    _query("resourceVersion", "Serve from at least this revision; watches start after it."),
    _query("resourceVersionMatch", "How resourceVersion applies to a list: NotOlderThan or Exact."),
    _query("sendInitialEvents", "Start a watch with the current state as ADDED events.", "boolean"),
    _query("timeoutSeconds", "Close the list or watch call after this long.", "integer"),
    _query("watch", "Stream ADDED, MODIFIED, DELETED (and BOOKMARK) events.", "boolean"),
]
_DELETE_PARAMS = [
    _DRY_RUN,
    _query("gracePeriodSeconds", "Seconds before the object is deleted; 0 means now.", "integer"),
    _query("propagationPolicy", "Orphan, Background or Foreground garbage collection."),
]


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "uniqueItems": True},
    }


_NAME = _path_param("name", "name of the object")
_NAMESPACE = _path_param("namespace", "object name and auth scope, such as for teams and projects")


def _json_response(ref: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": ref},
            "application/yaml": {"schema": ref},
        },
    }


def _op_id_part(group: str, version: str) -> str:
    base = group.split(".")[0] if group else "core"
    return base[:1].upper() + base[1:] + version[:1].upper() + version[1:]


def _operation(
    *,
    action: str,
    op_id: str,
    description: str,
    tag: str,
    gvk: dict[str, str],
    params: list[dict[str, Any]],
    responses: dict[str, Any],
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": [tag],
        "description": description,
        "operationId": op_id,
        "parameters": params,
    }
    if body is not None:
        op["requestBody"] = body
    op["responses"] = {**responses, "401": {"description": "Unauthorized"}}
    op["x-kubernetes-action"] = action
    op["x-kubernetes-group-version-kind"] = gvk
    return op


def _json_body(ref: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"*/*": {"schema": ref}}, "required": True}


def _patch_body() -> dict[str, Any]:
    ref = {"$ref": REF_PREFIX + PATCH}
    return {
        "content": {
            "application/json-patch+json": {"schema": ref},
            "application/merge-patch+json": {"schema": ref},
        },
        "required": True,
    }


def _item_ops(
    *,
    kind_ref: dict[str, Any],
    gvk: dict[str, str],
    tag: str,
    op_suffix: str,
    what: str,
    verbs: tuple[str, ...],
) -> dict[str, Any]:
    """get / put / patch / delete of one object (or of one of its subresources)."""
    ops: dict[str, Any] = {}
    if "get" in verbs:
        ops["get"] = _operation(
            action="get",
            op_id="read" + op_suffix,
            description=f"read the specified {what}",
            tag=tag,
            gvk=gvk,
            params=[_PRETTY],
            responses={"200": _json_response(kind_ref)},
        )
    if "update" in verbs:
        ops["put"] = _operation(
            action="put",
            op_id="replace" + op_suffix,
            description=f"replace the specified {what}",
            tag=tag,
            gvk=gvk,
            params=[_PRETTY, _DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION],
            body=_json_body(kind_ref),
            responses={"200": _json_response(kind_ref), "201": _json_response(kind_ref, "Created")},
        )
    if "patch" in verbs:
        ops["patch"] = _operation(
            action="patch",
            op_id="patch" + op_suffix,
            description=f"partially update the specified {what}",
            tag=tag,
            gvk=gvk,
            params=[_PRETTY, _DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE],
            body=_patch_body(),
            responses={"200": _json_response(kind_ref), "201": _json_response(kind_ref, "Created")},
        )
    if "delete" in verbs:
        status_ref = {"$ref": REF_PREFIX + META + "Status"}
        ops["delete"] = _operation(
            action="delete",
            op_id="delete" + op_suffix,
            description=f"delete a {what}",
            tag=tag,
            gvk=gvk,
            params=[_PRETTY, *_DELETE_PARAMS],
            body={"content": {"*/*": {"schema": {"$ref": REF_PREFIX + META + "DeleteOptions"}}}},
            responses={
                "200": _json_response(kind_ref),
                "202": _json_response(status_ref, "Accepted"),
            },
        )
    return ops


def _resource_paths(info: ResourceInfo, builder: _SchemaBuilder) -> dict[str, Any]:
    prefix = "/" + gv_path(info.group, info.version)
    gvk = _gvk(info.group, info.version, info.kind)
    kind_ref = builder.node(schema_for(info))
    list_ref = {"$ref": REF_PREFIX + _list_component(info, builder)}
    tag = _op_id_part(info.group, info.version)
    scope = "Namespaced" if info.namespaced else ""
    base = f"{tag}{scope}{info.kind}"
    path_params = [_NAMESPACE] if info.namespaced else []
    collection = (
        f"{prefix}/namespaces/{{namespace}}/{info.plural}"
        if info.namespaced
        else f"{prefix}/{info.plural}"
    )
    paths: dict[str, Any] = {}

    coll: dict[str, Any] = {"parameters": path_params} if path_params else {}
    if "list" in info.verbs:
        coll["get"] = _operation(
            action="list",
            op_id="list" + base,
            description=f"list or watch objects of kind {info.kind}",
            tag=tag,
            gvk=gvk,
            params=[_PRETTY, *_LIST_PARAMS],
            responses={"200": _json_response(list_ref)},
        )
    if "create" in info.verbs:
        coll["post"] = _operation(
            action="post",
            op_id="create" + base,
            description=f"create a {info.kind}",
            tag=tag,
            gvk=gvk,
            params=[_PRETTY, _DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION],
            body=_json_body(kind_ref),
            responses={
                "200": _json_response(kind_ref),
                "201": _json_response(kind_ref, "Created"),
                "202": _json_response(kind_ref, "Accepted"),
            },
        )
    if "deletecollection" in info.verbs:
        coll["delete"] = _operation(
            action="deletecollection",
            op_id="deletecollection" + base,
            description=f"delete collection of {info.kind}",
            tag=tag,
            gvk=gvk,
            params=[_PRETTY, *_DELETE_PARAMS, *_LIST_PARAMS],
            body={"content": {"*/*": {"schema": {"$ref": REF_PREFIX + META + "DeleteOptions"}}}},
            responses={"200": _json_response({"$ref": REF_PREFIX + META + "Status"})},
        )
    paths[collection] = coll

    if info.namespaced and "list" in info.verbs:
        paths[f"{prefix}/{info.plural}"] = {
            "get": _operation(
                action="list",
                op_id=f"list{tag}{info.kind}ForAllNamespaces",
                description=f"list or watch objects of kind {info.kind} in every namespace",
                tag=tag,
                gvk=gvk,
                params=[_PRETTY, *_LIST_PARAMS],
                responses={"200": _json_response(list_ref)},
            )
        }

    item_path = f"{collection}/{{name}}"
    paths[item_path] = {
        "parameters": [_NAME, *path_params],
        **_item_ops(
            kind_ref=kind_ref, gvk=gvk, tag=tag, op_suffix=base, what=info.kind, verbs=info.verbs
        ),
    }

    for sub_name in info.subresources:
        sub = subresource(info, sub_name)
        if sub is None:
            continue
        sub_path = f"{item_path}/{sub_name}"
        sub_gvk = _gvk(sub.group, sub.version, sub.kind)
        suffix = base + sub_name[:1].upper() + sub_name[1:]
        if sub_name in ("status", "scale"):
            sub_schema = kind_schema(sub.api_version, sub.kind)
            assert sub_schema is not None
            sub_ref = builder.node(sub_schema)
            paths[sub_path] = {
                "parameters": [_NAME, *path_params],
                **_item_ops(
                    kind_ref=sub_ref,
                    gvk=sub_gvk,
                    tag=tag,
                    op_suffix=suffix,
                    what=f"{sub_name} of the {info.kind}",
                    verbs=sub.verbs,
                ),
            }
        elif sub_name == "binding":
            binding = kind_schema("v1", "Binding")
            assert binding is not None
            ref = builder.node(binding)
            paths[sub_path] = {
                "parameters": [_NAME, *path_params],
                "post": _operation(
                    action="post",
                    op_id="create" + suffix,
                    description="bind a Pod to a Node",
                    tag=tag,
                    gvk=sub_gvk,
                    params=[_PRETTY, _DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION],
                    body=_json_body(ref),
                    responses={"200": _json_response(ref), "201": _json_response(ref, "Created")},
                ),
            }
        elif sub_name == "log":
            paths[sub_path] = {
                "parameters": [_NAME, *path_params],
                "get": _operation(
                    action="get",
                    op_id="read" + suffix,
                    description="read the log of a container of the Pod",
                    tag=tag,
                    gvk=_gvk("", "v1", "Pod"),
                    params=[
                        _query("container", "The container; optional when the pod has one."),
                        _query("follow", "Stream the log.", "boolean"),
                        _query(
                            "previous", "The log of the previous, terminated, instance.", "boolean"
                        ),
                        _query("sinceSeconds", "Only lines newer than this.", "integer"),
                        _query("tailLines", "Only the last lines.", "integer"),
                        _query("timestamps", "Prefix each line with its RFC 3339 time.", "boolean"),
                        _query("limitBytes", "Stop after this many bytes.", "integer"),
                    ],
                    responses={
                        "200": {
                            "description": "OK",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                ),
            }
    return paths


def _list_component(info: ResourceInfo, builder: _SchemaBuilder) -> str:
    kind_name = schema_for(info).name or info.kind
    name = kind_name + "List"
    if name not in builder.components:
        builder.components[name] = {
            "type": "object",
            "description": f"A list of {info.kind} objects.",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"allOf": [builder.node(meta_v1.LIST_META)]},
                "items": {"type": "array", "items": builder.node(schema_for(info))},
            },
            "x-kubernetes-group-version-kind": [_gvk(info.group, info.version, info.list_kind)],
        }
    return name


def _build(group: str, version: str) -> dict[str, Any]:
    builder = _SchemaBuilder()
    paths: dict[str, Any] = {}
    gvks: dict[str, dict[str, str]] = {}
    for info in RESOURCES:
        if info.group != group or info.version != version:
            continue
        paths.update(_resource_paths(info, builder))
        gvks[schema_for(info).name or info.kind] = _gvk(group, version, info.kind)
        for sub_name in info.subresources:
            sub = subresource(info, sub_name)
            if sub is not None and sub_name in ("scale", "binding"):
                node = kind_schema(sub.api_version, sub.kind)
                if node is not None and node.name:
                    gvks[node.name] = _gvk(sub.group, sub.version, sub.kind)
    if not paths:
        raise KeyError(f"no resources in {gv_path(group, version)}")
    for name in (META + "DeleteOptions", META + "Status"):
        node = meta_v1.KINDS[name.rsplit(".", 1)[1]]
        builder.node(node)
        gvks[name] = _gvk(group, version, name.rsplit(".", 1)[1])
    builder.components[PATCH] = {
        "type": "object",
        "description": "A JSON patch (RFC 6902, a list of operations) or a JSON merge patch (RFC 7386).",
    }
    components = builder.components
    for name, gvk in gvks.items():
        components[name] = {**components[name], "x-kubernetes-group-version-kind": [gvk]}
    title = "Kubernetes"
    return {
        "openapi": "3.0.0",
        "info": {"title": title, "version": INFO_VERSION},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(components.items()))},
    }


@functools.cache
def _cached(group: str, version: str) -> tuple[dict[str, Any], bytes, str]:
    doc = _build(group, version)
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha512(body).hexdigest().upper()
    return doc, body, digest


def document(group: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one group-version (a fresh copy: callers may change it)."""
    return copy.deepcopy(_cached(group, version)[0])


def document_json(group: str, version: str) -> bytes:
    """The same document, serialized once: what the apiserver should send."""
    return _cached(group, version)[1]


def document_hash(group: str, version: str) -> str:
    """Stable hash of the document (changes only when the schemas do)."""
    return _cached(group, version)[2]


def index() -> dict[str, Any]:
    """`GET /openapi/v3`: every served group-version and where its document is."""
    paths: dict[str, Any] = {}
    for group, versions in groups().items():
        for version in versions:
            key = gv_path(group, version)
            paths[key] = {
                "serverRelativeURL": f"/openapi/v3/{key}?hash={document_hash(group, version)}"
            }
    return {"paths": paths}


def parse_gv_path(path: str) -> tuple[str, str] | None:
    """ "api/v1" -> ("", "v1"); "apis/apps/v1" -> ("apps", "v1"); None when not served."""
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "api":
        gv = ("", parts[1])
    elif len(parts) == 3 and parts[0] == "apis":
        gv = (parts[1], parts[2])
    else:
        return None
    return gv if gv[1] in groups().get(gv[0], ()) else None
