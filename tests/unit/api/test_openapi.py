"""The OpenAPI v3 documents kubectl reads to decide that the server validates fields."""

import json

import pytest

from ketch.api import openapi
from ketch.api.resources import RESOURCES, groups

GROUP_VERSIONS = [(g, v) for g, versions in groups().items() for v in versions]


def _supports_field_validation(doc, gvk):
    """kubectl's check (cli-runtime query_param_verifier_v3): the first PATCH operation
    for the kind decides. Paths come from a Go map, so in practice every such operation
    must declare the parameter inline; this checks all of them."""
    found = False
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is None or op.get("x-kubernetes-group-version-kind") != gvk:
            continue
        found = True
        if "fieldValidation" not in [p.get("name") for p in op.get("parameters", [])]:
            return False
    return found


def test_index_has_every_group_version_with_a_stable_hash():
    index = openapi.index()
    assert set(index["paths"]) == {
        "api/v1",
        "apis/apps/v1",
        "apis/batch/v1",
        "apis/coordination.k8s.io/v1",
    }
    for group, version in GROUP_VERSIONS:
        entry = index["paths"][openapi.gv_path(group, version)]
        url = entry["serverRelativeURL"]
        prefix = f"/openapi/v3/{openapi.gv_path(group, version)}?hash="
        assert url.startswith(prefix)
        digest = url[len(prefix) :]
        assert digest == openapi.document_hash(group, version)
        assert len(digest) == 128 and digest == digest.upper()
    assert openapi.index() == index


def test_hash_is_the_hash_of_the_served_bytes():
    import hashlib

    body = openapi.document_json("apps", "v1")
    assert hashlib.sha512(body).hexdigest().upper() == openapi.document_hash("apps", "v1")
    assert json.loads(body) == openapi.document("apps", "v1")


@pytest.mark.parametrize("info", RESOURCES, ids=lambda r: r.kind)
def test_every_kind_has_patch_with_field_validation(info):
    doc = openapi.document(info.group, info.version)
    gvk = {"group": info.group, "version": info.version, "kind": info.kind}
    assert _supports_field_validation(doc, gvk)


@pytest.mark.parametrize("group, version", GROUP_VERSIONS)
def test_patch_bodies_offer_json_and_merge_patch_only(group, version):
    doc = openapi.document(group, version)
    patches = [item["patch"] for item in doc["paths"].values() if "patch" in item]
    assert patches
    for op in patches:
        content = op["requestBody"]["content"]
        assert set(content) == {"application/json-patch+json", "application/merge-patch+json"}
    for item in doc["paths"].values():
        for method in ("post", "put"):
            if method in item and item[method]["x-kubernetes-action"] in ("post", "put"):
                names = [p["name"] for p in item[method]["parameters"]]
                assert "fieldValidation" in names


def test_scale_subresource_speaks_autoscaling_v1():
    doc = openapi.document("apps", "v1")
    item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert item["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
    }
    assert set(item) == {"parameters", "get", "put", "patch"}
    scale = doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"]
    assert scale["x-kubernetes-group-version-kind"] == [
        {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    ]


def test_paths_for_namespaced_and_cluster_scoped_resources():
    core = openapi.document("", "v1")["paths"]
    assert {"get", "post", "delete"} <= set(core["/api/v1/namespaces/{namespace}/pods"])
    assert {"get", "put", "patch", "delete"} <= set(
        core["/api/v1/namespaces/{namespace}/pods/{name}"]
    )
    assert core["/api/v1/pods"]["get"]["x-kubernetes-action"] == "list"
    assert "post" in core["/api/v1/namespaces/{namespace}/pods/{name}/binding"]
    assert "get" in core["/api/v1/namespaces/{namespace}/pods/{name}/log"]
    assert "patch" in core["/api/v1/nodes/{name}/status"]
    assert "/api/v1/namespaces/{namespace}/nodes" not in core
    assert "/api/v1/namespaces/{name}" in core


@pytest.mark.parametrize("group, version", GROUP_VERSIONS)
def test_every_kind_component_carries_its_gvk_and_all_refs_resolve(group, version):
    doc = openapi.document(group, version)
    schemas = doc["components"]["schemas"]
    for info in RESOURCES:
        if (info.group, info.version) != (group, version):
            continue
        gvks = [
            s["x-kubernetes-group-version-kind"]
            for s in schemas.values()
            if "x-kubernetes-group-version-kind" in s
        ]
        assert [{"group": group, "version": version, "kind": info.kind}] in gvks
        assert [{"group": group, "version": version, "kind": info.list_kind}] in gvks
    text = json.dumps(doc)
    for chunk in text.split('"$ref": "')[1:]:
        ref = chunk.split('"', 1)[0]
        assert ref.startswith("#/components/schemas/")
        assert ref[len("#/components/schemas/") :] in schemas, ref


def test_schemas_carry_merge_keys_defaults_and_enums():
    schemas = openapi.document("", "v1")["components"]["schemas"]
    pod_spec = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]
    containers = pod_spec["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert "containers" in schemas["io.k8s.api.core.v1.PodSpec"]["required"]
    assert pod_spec["terminationGracePeriodSeconds"]["default"] == 30
    assert pod_spec["restartPolicy"]["enum"] == ["Always", "OnFailure", "Never"]
    ports = schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert ports["x-kubernetes-patch-merge-key"] == "port"
    container = schemas["io.k8s.api.core.v1.Container"]
    assert set(container["required"]) == {"name", "image"}


def test_unknown_group_version():
    with pytest.raises(KeyError):
        openapi.document("extensions", "v1beta1")
    assert openapi.parse_gv_path("api/v1") == ("", "v1")
    assert openapi.parse_gv_path("apis/apps/v1") == ("apps", "v1")
    assert openapi.parse_gv_path("apis/apps/v2") is None
    assert openapi.parse_gv_path("apis/autoscaling/v1") is None


def test_document_returns_a_copy():
    doc = openapi.document("batch", "v1")
    doc["paths"].clear()
    assert openapi.document("batch", "v1")["paths"]


def _named_objects(node, seen):
    from ketch.api.schema import Object

    tag = node.tag
    if tag == "object":
        if id(node) in seen:
            return
        seen[id(node)] = node
        for field in node.fields.values():
            _named_objects(field.node, seen)
    elif tag == "array":
        _named_objects(node.items, seen)
    elif tag == "map":
        _named_objects(node.values, seen)
    return [n for n in seen.values() if isinstance(n, Object) and n.name]


@pytest.mark.parametrize("group, version", GROUP_VERSIONS)
def test_components_are_the_validation_schemas(group, version):
    """Every named object the validator walks is a component with exactly its fields."""
    from ketch.api.schema import schema_for

    schemas = openapi.document(group, version)["components"]["schemas"]
    seen: dict = {}
    for info in RESOURCES:
        if (info.group, info.version) == (group, version):
            objects = _named_objects(schema_for(info), seen)
    assert objects
    for node in objects:
        component = schemas[node.name]
        assert set(component["properties"]) == set(node.fields), node.name
        assert set(component.get("required", [])) == set(node.required_names), node.name
