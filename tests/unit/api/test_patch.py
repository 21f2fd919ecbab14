"""JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch, three-way apply patch."""

from __future__ import annotations

import pytest

from ketch.api.patch import (
    PatchError,
    create_merge_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
    three_way_merge_patch,
    three_way_strategic_merge_patch,
)
from ketch.api.schema import Array, Field, Integer, Map, Object, String

# --- a hand-built schema with the Kubernetes patch metadata -----------------------------

ENV = Object({"name": Field(String(), required=True), "value": Field(String())})
PORT = Object(
    {
        "containerPort": Field(Integer(), required=True),
        "name": Field(String()),
        "protocol": Field(String()),
    }
)
MOUNT = Object({"name": Field(String()), "mountPath": Field(String())})
CONTAINER = Object(
    {
        "name": Field(String(), required=True),
        "image": Field(String()),
        "args": Field(Array(String())),
        "env": Field(Array(ENV, merge_key="name", patch_strategy="merge")),
        "ports": Field(Array(PORT, merge_key="containerPort", patch_strategy="merge")),
        "volumeMounts": Field(Array(MOUNT, merge_key="mountPath", patch_strategy="merge")),
    }
)
VOLUME = Object(
    {
        "name": Field(String()),
        "emptyDir": Field(Object({"medium": Field(String())})),
        "hostPath": Field(Object({"path": Field(String())})),
        "configMap": Field(Object({"name": Field(String())})),
    },
    retain_keys=True,
)
TOLERATION = Object({"key": Field(String()), "effect": Field(String()), "value": Field(String())})
POD_SPEC = Object(
    {
        "containers": Field(Array(CONTAINER, merge_key="name", patch_strategy="merge")),
        "initContainers": Field(Array(CONTAINER, merge_key="name", patch_strategy="merge")),
        "volumes": Field(Array(VOLUME, merge_key="name", patch_strategy="merge")),
        "tolerations": Field(Array(TOLERATION)),
        "nodeSelector": Field(Map(String())),
    }
)
META = Object(
    {
        "name": Field(String()),
        "labels": Field(Map(String())),
        "finalizers": Field(Array(String(), patch_strategy="merge")),
    }
)
STRATEGY = Object(
    {
        "type": Field(String()),
        "rollingUpdate": Field(
            Object({"maxSurge": Field(String()), "maxUnavailable": Field(String())})
        ),
    },
    retain_keys=True,
)
DEPLOYMENT = Object(
    {
        "metadata": Field(META),
        "spec": Field(
            Object(
                {
                    "replicas": Field(Integer()),
                    "strategy": Field(STRATEGY),
                    "template": Field(Object({"metadata": Field(META), "spec": Field(POD_SPEC)})),
                }
            )
        ),
    }
)
SERVICE_PORT = Object(
    {"port": Field(Integer()), "targetPort": Field(Integer()), "name": Field(String())}
)
SERVICE = Object(
    {
        "metadata": Field(META),
        "spec": Field(
            Object(
                {
                    "ports": Field(Array(SERVICE_PORT, merge_key="port", patch_strategy="merge")),
                    "selector": Field(Map(String())),
                }
            )
        ),
    }
)


def deployment(containers, **pod_spec):
    return {
        "metadata": {"name": "patch-demo"},
        "spec": {"replicas": 2, "template": {"spec": {"containers": containers, **pod_spec}}},
    }


def pod_spec_patch(**pod_spec):
    return {"spec": {"template": {"spec": pod_spec}}}


def containers_of(obj):
    return obj["spec"]["template"]["spec"]["containers"]


# --- RFC 7386 ---------------------------------------------------------------------------

RFC7386_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("target, patch, result", RFC7386_CASES)
def test_rfc7386_examples(target, patch, result):
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before, "the target must not be modified"


def test_rfc7386_full_example():
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


@pytest.mark.parametrize(
    "source, target, patch",
    [
        (
            {"a": 1, "b": {"c": 2, "d": 3}},
            {"a": 1, "b": {"c": 5}, "e": [1]},
            {"b": {"c": 5, "d": None}, "e": [1]},
        ),
        ({"a": [1, 2]}, {"a": [1, 2]}, {}),
        ({"a": [1, 2]}, {"a": [2]}, {"a": [2]}),
        ({"a": True}, {"a": 1}, {"a": 1}),
    ],
)
def test_create_merge_patch(source, target, patch):
    assert create_merge_patch(source, target) == patch
    assert merge_patch(source, patch) == target


# --- RFC 6902 (appendix A) ------------------------------------------------------------


@pytest.mark.parametrize(
    "doc, ops, result",
    [
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux"}],
            {"baz": "qux", "foo": "bar"},
        ),
        (
            {"foo": ["bar", "baz"]},
            [{"op": "add", "path": "/foo/1", "value": "qux"}],
            {"foo": ["bar", "qux", "baz"]},
        ),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
        (
            {"foo": ["bar", "qux", "baz"]},
            [{"op": "remove", "path": "/foo/1"}],
            {"foo": ["bar", "baz"]},
        ),
        (
            {"baz": "qux", "foo": "bar"},
            [{"op": "replace", "path": "/baz", "value": "boo"}],
            {"baz": "boo", "foo": "bar"},
        ),
        (
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        ),
        (
            {"foo": ["all", "grass", "cows", "eat"]},
            [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
            {"foo": ["all", "cows", "eat", "grass"]},
        ),
        (
            {"baz": "qux", "foo": ["a", 2, "c"]},
            [
                {"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2},
            ],
            {"baz": "qux", "foo": ["a", 2, "c"]},
        ),
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
            {"foo": "bar", "child": {"grandchild": {}}},
        ),
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
            {"foo": "bar", "baz": "qux"},
        ),
        (
            {"/": 9, "~1": 10},
            [{"op": "test", "path": "/~01", "value": 10}],
            {"/": 9, "~1": 10},
        ),
        (
            {"foo": ["bar"]},
            [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
            {"foo": ["bar", ["abc", "def"]]},
        ),
        ({"a": 1}, [{"op": "copy", "from": "/a", "path": "/b"}], {"a": 1, "b": 1}),
        ({"a": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
        ({"a/b": 1}, [{"op": "remove", "path": "/a~1b"}], {}),
    ],
)
def test_rfc6902_examples(doc, ops, result):
    before = repr(doc)
    assert json_patch(doc, ops) == result
    assert repr(doc) == before


@pytest.mark.parametrize(
    "doc, ops",
    [
        ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),
        ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}]),
        ({"a": 1}, [{"op": "test", "path": "/a", "value": True}]),
        ({"a": 1}, [{"op": "remove", "path": "/b"}]),
        ({"a": 1}, [{"op": "replace", "path": "/b", "value": 2}]),
        ({"a": [1]}, [{"op": "add", "path": "/a/5", "value": 2}]),
        ({"a": [1]}, [{"op": "add", "path": "/a/01", "value": 2}]),
        ({"a": [1]}, [{"op": "remove", "path": "/a/-"}]),
        ({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}]),
        ({"a": 1}, [{"op": "frobnicate", "path": "/a"}]),
        ({"a": 1}, [{"op": "add", "value": 1}]),
        ({"a": 1}, [{"op": "add", "path": "/b"}]),
        ({"a": 1}, [{"op": "copy", "path": "/b"}]),
        ({"a": 1}, [{"op": "add", "path": "a", "value": 1}]),
        ({"a": 1}, {"op": "add"}),
    ],
)
def test_rfc6902_errors(doc, ops):
    with pytest.raises(PatchError):
        json_patch(doc, ops)


def test_json_patch_is_all_or_nothing():
    doc = {"a": 1}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/zzz"}])
    assert doc == {"a": 1}


# --- strategic merge patch --------------------------------------------------------------


def test_containers_merge_by_name_new_first():
    """Kubernetes docs (kubectl patch): adding patch-demo-ctr-2 keeps patch-demo-ctr."""
    live = deployment([{"name": "patch-demo-ctr", "image": "nginx"}])
    patch = pod_spec_patch(containers=[{"name": "patch-demo-ctr-2", "image": "redis"}])
    result = strategic_merge_patch(live, patch, DEPLOYMENT)
    assert containers_of(result) == [
        {"name": "patch-demo-ctr-2", "image": "redis"},
        {"name": "patch-demo-ctr", "image": "nginx"},
    ]
    # the same patch as a JSON merge patch replaces the list
    assert containers_of(merge_patch(live, patch)) == [
        {"name": "patch-demo-ctr-2", "image": "redis"}
    ]
    assert containers_of(live) == [{"name": "patch-demo-ctr", "image": "nginx"}]


def test_tolerations_and_args_replace():
    live = deployment(
        [{"name": "c", "image": "i", "args": ["a", "b"]}],
        tolerations=[{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}],
    )
    patch = pod_spec_patch(
        tolerations=[{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}],
        containers=[{"name": "c", "args": ["z"]}],
    )
    result = strategic_merge_patch(live, patch, DEPLOYMENT)
    spec = result["spec"]["template"]["spec"]
    assert spec["tolerations"] == [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]
    assert spec["containers"] == [{"name": "c", "image": "i", "args": ["z"]}]


def test_nested_merge_ports_env_mounts():
    live = deployment(
        [
            {
                "name": "web",
                "image": "nginx:1",
                "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }
        ]
    )
    patch = pod_spec_patch(
        containers=[
            {
                "name": "web",
                "image": "nginx:2",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
            }
        ]
    )
    web = containers_of(strategic_merge_patch(live, patch, DEPLOYMENT))[0]
    assert web["image"] == "nginx:2"
    assert web["ports"] == [
        {"containerPort": 80, "name": "http", "protocol": "TCP"},
        {"containerPort": 443},
    ]
    assert web["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "20"},
        {"name": "C", "value": "3"},
    ]
    assert web["volumeMounts"] == [
        {"name": "cache", "mountPath": "/cache"},
        {"name": "data", "mountPath": "/data"},
    ]


def test_service_ports_merge_by_port():
    live = {"spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "a"}}}
    patch = {"spec": {"ports": [{"port": 443, "targetPort": 8443}, {"port": 80, "name": "http"}]}}
    result = strategic_merge_patch(live, patch, SERVICE)
    assert result["spec"]["ports"] == [
        {"port": 443, "targetPort": 8443},
        {"port": 80, "targetPort": 8080, "name": "http"},
    ]
    assert result["spec"]["selector"] == {"app": "a"}


def test_null_deletes_keys_and_map_entries():
    live = deployment([{"name": "c", "image": "i"}], nodeSelector={"disk": "ssd", "zone": "a"})
    live["metadata"]["labels"] = {"app": "x", "tier": "y"}
    patch = {
        "metadata": {"labels": {"tier": None, "new": "z"}},
        "spec": {"replicas": None, "template": {"spec": {"nodeSelector": {"zone": None}}}},
    }
    result = strategic_merge_patch(live, patch, DEPLOYMENT)
    assert result["metadata"]["labels"] == {"app": "x", "new": "z"}
    assert "replicas" not in result["spec"]
    assert result["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}


def test_delete_directive_in_list_element():
    """kubectl encodes a container dropped from the manifest like this."""
    live = deployment(
        [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}, {"name": "c", "image": "3"}]
    )
    patch = pod_spec_patch(
        **{
            "$setElementOrder/containers": [{"name": "a"}, {"name": "c"}],
            "containers": [{"$patch": "delete", "name": "b"}],
        }
    )
    assert [c["name"] for c in containers_of(strategic_merge_patch(live, patch, DEPLOYMENT))] == [
        "a",
        "c",
    ]
    # a deletion of something absent is not an error
    patch = pod_spec_patch(containers=[{"$patch": "delete", "name": "zzz"}])
    assert len(containers_of(strategic_merge_patch(live, patch, DEPLOYMENT))) == 3


def test_replace_directive_in_list():
    live = deployment([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}])
    patch = pod_spec_patch(containers=[{"name": "x", "image": "9"}, {"$patch": "replace"}])
    assert containers_of(strategic_merge_patch(live, patch, DEPLOYMENT)) == [
        {"name": "x", "image": "9"}
    ]


def test_replace_and_delete_directives_on_maps():
    live = deployment([{"name": "a", "image": "1"}], nodeSelector={"a": "1"})
    patch = {
        "spec": {
            "template": {"spec": {"$patch": "replace", "containers": [{"name": "n", "image": "2"}]}}
        }
    }
    result = strategic_merge_patch(live, patch, DEPLOYMENT)
    assert result["spec"]["template"]["spec"] == {"containers": [{"name": "n", "image": "2"}]}
    patch = {"spec": {"template": {"spec": {"nodeSelector": {"$patch": "delete"}}}}}
    result = strategic_merge_patch(live, patch, DEPLOYMENT)
    assert result["spec"]["template"]["spec"]["nodeSelector"] == {}
    patch = {"spec": {"template": {"spec": {"nodeSelector": {"$patch": "merge", "b": "2"}}}}}
    result = strategic_merge_patch(live, patch, DEPLOYMENT)
    assert result["spec"]["template"]["spec"]["nodeSelector"] == {"a": "1", "b": "2"}
    with pytest.raises(PatchError):
        strategic_merge_patch(live, {"spec": {"$patch": "explode"}}, DEPLOYMENT)


def test_set_element_order_reorders_and_keeps_server_only_items():
    live = deployment([{"name": "a"}, {"name": "b"}, {"name": "c"}])
    patch = pod_spec_patch(
        **{"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}
    )
    assert [c["name"] for c in containers_of(strategic_merge_patch(live, patch, DEPLOYMENT))] == [
        "c",
        "a",
        "b",
    ]

    live = deployment([{"name": "a"}, {"name": "b"}, {"name": "sidecar"}])
    patch = pod_spec_patch(
        **{
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "new"}],
            "containers": [{"name": "new", "image": "n"}],
        }
    )
    names = [c["name"] for c in containers_of(strategic_merge_patch(live, patch, DEPLOYMENT))]
    assert names == ["a", "b", "new", "sidecar"]


def test_set_element_order_must_agree_with_patch_list():
    live = deployment([{"name": "a"}, {"name": "b"}])
    patch = pod_spec_patch(
        **{
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b", "image": "x"}, {"name": "a", "image": "y"}],
        }
    )
    with pytest.raises(PatchError):
        strategic_merge_patch(live, patch, DEPLOYMENT)


def test_primitive_list_merge_and_delete_from_primitive_list():
    live = {"metadata": {"name": "x", "finalizers": ["a", "b", "c"]}}
    result = strategic_merge_patch(
        live, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}, DEPLOYMENT
    )
    assert result["metadata"]["finalizers"] == ["a", "c"]
    result = strategic_merge_patch(live, {"metadata": {"finalizers": ["d", "a"]}}, DEPLOYMENT)
    assert result["metadata"]["finalizers"] == ["d", "a", "b", "c"]
    patch = {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"]}}
    assert strategic_merge_patch(live, patch, DEPLOYMENT)["metadata"]["finalizers"] == [
        "c",
        "b",
        "a",
    ]
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["z"]}}
    assert strategic_merge_patch(live, patch, DEPLOYMENT)["metadata"]["finalizers"] == [
        "z",
        "b",
        "c",
    ]


def test_retain_keys_clears_other_union_members():
    """Kubernetes docs: switch a Deployment's strategy from RollingUpdate to Recreate."""
    live = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert strategic_merge_patch(live, patch, DEPLOYMENT)["spec"]["strategy"] == {
        "type": "Recreate"
    }
    # the volume source of a volume switched from emptyDir to hostPath
    live = deployment([{"name": "c"}], volumes=[{"name": "v", "emptyDir": {}}])
    patch = pod_spec_patch(
        volumes=[{"name": "v", "$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/x"}}]
    )
    volumes = strategic_merge_patch(live, patch, DEPLOYMENT)["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "v", "hostPath": {"path": "/x"}}]
    with pytest.raises(PatchError):
        strategic_merge_patch(
            live, {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}, DEPLOYMENT
        )


def test_new_subtrees_lose_directives_and_nulls():
    live = {"metadata": {"name": "x"}}
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "a"}],
                    "containers": [{"name": "a", "image": "i", "args": None}],
                }
            }
        }
    }
    result = strategic_merge_patch(live, patch, DEPLOYMENT)
    assert result["spec"] == {"template": {"spec": {"containers": [{"name": "a", "image": "i"}]}}}


def test_deleting_what_does_not_exist_creates_nothing():
    live = {"metadata": {"name": "x"}, "spec": {"template": {"spec": {}}}}
    patch = pod_spec_patch(
        containers=[{"$patch": "delete", "name": "gone"}], nodeSelector={"$patch": "delete"}
    )
    assert strategic_merge_patch(live, patch, DEPLOYMENT) == live


def test_merge_key_missing_in_patch_element_is_an_error():
    live = deployment([{"name": "a"}])
    with pytest.raises(PatchError, match="merge key"):
        strategic_merge_patch(live, pod_spec_patch(containers=[{"image": "x"}]), DEPLOYMENT)


def test_without_schema_lists_replace_maps_merge():
    live = {"a": {"b": 1, "c": [1, 2]}, "keep": True}
    result = strategic_merge_patch(live, {"a": {"c": [3], "d": None, "b": None}}, None)
    assert result == {"a": {"c": [3]}, "keep": True}
    with pytest.raises(PatchError):
        strategic_merge_patch(live, ["not", "a", "map"], None)


def test_type_change_replaces():
    live = {"spec": {"replicas": 1}}
    assert strategic_merge_patch(live, {"spec": "x"}, DEPLOYMENT) == {"spec": "x"}


# --- three-way patch for apply ----------------------------------------------------------


def test_three_way_first_apply_and_unchanged():
    manifest = deployment([{"name": "a", "image": "1"}])
    live = deployment([{"name": "a", "image": "1", "imagePullPolicy": "IfNotPresent"}])
    live["status"] = {"replicas": 2}
    live["metadata"]["uid"] = "u"
    assert three_way_merge_patch(manifest, manifest, live) == {
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}}
    }
    assert (
        three_way_merge_patch(
            None, {"metadata": {"name": "x"}}, {"metadata": {"name": "x", "uid": "u"}}
        )
        == {}
    )


def test_three_way_removes_what_the_manifest_dropped_and_keeps_server_fields():
    original = {
        "metadata": {"name": "x", "labels": {"a": "1", "b": "2"}},
        "spec": {"replicas": 3, "paused": True},
    }
    modified = {"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"replicas": 5}}
    current = {
        "metadata": {"name": "x", "labels": {"a": "1", "b": "2", "server": "s"}, "uid": "u"},
        "spec": {"replicas": 3, "paused": True, "revisionHistoryLimit": 10},
        "status": {"replicas": 3},
    }
    patch = three_way_merge_patch(original, modified, current)
    assert patch == {"metadata": {"labels": {"b": None}}, "spec": {"replicas": 5, "paused": None}}
    result = merge_patch(current, patch)
    assert result["metadata"]["labels"] == {"a": "1", "server": "s"}
    assert result["spec"] == {"replicas": 5, "revisionHistoryLimit": 10}
    assert result["status"] == {"replicas": 3}


def test_three_way_reverts_live_drift_of_managed_fields():
    original = {"spec": {"replicas": 3}}
    modified = {"spec": {"replicas": 3}}
    current = {"spec": {"replicas": 7}}
    assert three_way_merge_patch(original, modified, current) == {"spec": {"replicas": 3}}


# --- three-way strategic patch ----------------------------------------------------------


def _with_defaults(obj):
    """What the server stores: defaults inside list elements, status, server metadata."""
    live = merge_patch(
        obj, {"metadata": {"uid": "u1", "resourceVersion": "7"}, "status": {"replicas": 2}}
    )
    for container in containers_of(live):
        container.setdefault("imagePullPolicy", "IfNotPresent")
    return live


def test_three_way_strategic_unchanged_is_empty():
    manifest = deployment([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}])
    assert (
        three_way_strategic_merge_patch(manifest, manifest, _with_defaults(manifest), DEPLOYMENT)
        == {}
    )


def test_three_way_strategic_removes_a_container_like_kubectl():
    original = deployment([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}])
    modified = deployment([{"name": "a", "image": "1"}])
    current = _with_defaults(original)
    patch = three_way_strategic_merge_patch(original, modified, current, DEPLOYMENT)
    assert patch == pod_spec_patch(
        **{
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"$patch": "delete", "name": "b"}],
        }
    )
    result = strategic_merge_patch(current, patch, DEPLOYMENT)
    assert containers_of(result) == [{"name": "a", "image": "1", "imagePullPolicy": "IfNotPresent"}]
    assert result["status"] == {"replicas": 2}


def test_three_way_strategic_changes_and_deletions_inside_one_element():
    original = deployment(
        [
            {
                "name": "a",
                "image": "1",
                "env": [{"name": "X", "value": "x"}, {"name": "Y", "value": "y"}],
            }
        ]
    )
    modified = deployment([{"name": "a", "image": "2", "env": [{"name": "Y", "value": "y"}]}])
    current = _with_defaults(original)
    patch = three_way_strategic_merge_patch(original, modified, current, DEPLOYMENT)
    elements = patch["spec"]["template"]["spec"]["containers"]
    assert len(elements) == 1 and elements[0]["name"] == "a" and elements[0]["image"] == "2"
    assert {"$patch": "delete", "name": "X"} in elements[0]["env"]
    result = strategic_merge_patch(current, patch, DEPLOYMENT)
    assert containers_of(result) == [
        {
            "name": "a",
            "image": "2",
            "env": [{"name": "Y", "value": "y"}],
            "imagePullPolicy": "IfNotPresent",
        }
    ]


def test_three_way_strategic_add_reorder_and_finalizers():
    original = deployment([{"name": "a", "image": "1"}])
    original["metadata"]["finalizers"] = ["f1", "f2"]
    modified = deployment([{"name": "new", "image": "n"}, {"name": "a", "image": "1"}])
    modified["metadata"]["finalizers"] = ["f1"]
    current = _with_defaults(original)
    current["metadata"]["finalizers"] = ["f1", "f2", "server"]
    patch = three_way_strategic_merge_patch(original, modified, current, DEPLOYMENT)
    assert patch["metadata"]["$deleteFromPrimitiveList/finalizers"] == ["f2"]
    result = strategic_merge_patch(current, patch, DEPLOYMENT)
    assert [c["name"] for c in containers_of(result)] == ["new", "a"]
    assert result["metadata"]["finalizers"] == ["f1", "server"]


def test_three_way_strategic_retain_keys_on_strategy_switch():
    original = {"spec": {"strategy": {"type": "RollingUpdate"}}}
    modified = {"spec": {"strategy": {"type": "Recreate"}}}
    current = {
        "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}}
    }
    patch = three_way_strategic_merge_patch(original, modified, current, DEPLOYMENT)
    assert patch == {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert strategic_merge_patch(current, patch, DEPLOYMENT)["spec"]["strategy"] == {
        "type": "Recreate"
    }


def test_three_way_strategic_replace_lists_and_dropped_fields():
    original = deployment(
        [{"name": "a", "image": "1"}], tolerations=[{"key": "k1"}], nodeSelector={"a": "1"}
    )
    modified = deployment([{"name": "a", "image": "1"}], tolerations=[{"key": "k2"}])
    current = _with_defaults(original)
    patch = three_way_strategic_merge_patch(original, modified, current, DEPLOYMENT)
    assert patch == pod_spec_patch(tolerations=[{"key": "k2"}], nodeSelector=None)
    result = strategic_merge_patch(current, patch, DEPLOYMENT)
    assert "nodeSelector" not in result["spec"]["template"]["spec"]
