"""The three-way patch of `ketch apply`: removed fields go, others' fields stay, defaults are not changes."""

from __future__ import annotations

import copy

from ketch.cli.apply_patch import contained, three_way_merge_patch


def deployment(image="busybox", limits=True, replicas=2):
    container = {"name": "c", "image": image, "resources": {"requests": {"cpu": "10m"}}}
    if limits:
        container["resources"]["limits"] = {"memory": "32Mi"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"a": "1"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}}}


def live_of(obj):
    """What the server stores: the object plus defaults and server fields."""
    live = copy.deepcopy(obj)
    live["metadata"].update({"uid": "u", "resourceVersion": "5"})
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    live["status"] = {"replicas": 2}
    return live


def test_same_manifest_again_is_unchanged_despite_server_defaults():
    m = deployment()
    assert three_way_merge_patch(m, m, live_of(m)) == {}


def test_changed_scalar_is_set():
    old, new = deployment(), deployment(replicas=3)
    assert three_way_merge_patch(old, new, live_of(old)) == {"spec": {"replicas": 3}}


def test_field_dropped_from_manifest_is_deleted():
    old = deployment()
    new = copy.deepcopy(old)
    del new["metadata"]["labels"]
    assert three_way_merge_patch(old, new, live_of(old)) == {"metadata": {"labels": None}}


def test_field_dropped_inside_a_list_item_replaces_the_list():
    old, new = deployment(limits=True), deployment(limits=False)
    patch = three_way_merge_patch(old, new, live_of(old))
    assert patch == {"spec": {"template": {"spec": {"containers": new["spec"]["template"]["spec"]["containers"]}}}}


def test_fields_set_by_others_stay():
    m = deployment()
    live = live_of(m)
    live["metadata"]["labels"]["added-by-someone"] = "x"
    assert three_way_merge_patch(m, m, live) == {}


def test_someone_changed_a_field_the_manifest_owns():
    m = deployment()
    live = live_of(m)
    live["spec"]["replicas"] = 7
    assert three_way_merge_patch(m, m, live) == {"spec": {"replicas": 2}}


def test_without_last_applied_nothing_is_deleted():
    old = deployment()
    new = copy.deepcopy(old)
    del new["metadata"]["labels"]
    assert three_way_merge_patch(None, new, live_of(old)) == {}


def test_contained():
    assert contained({"a": [{"x": 1}]}, {"a": [{"x": 1, "y": 2}], "b": 3})
    assert not contained({"a": [{"x": 1}]}, {"a": [{"x": 1}, {"x": 2}]})
    assert not contained({"a": 1}, {"a": "1"})


def test_last_applied_annotation_is_written_as_kubectl_writes_it():
    from ketch.cli.commands.apply import go_json, with_last_applied

    assert go_json({"b": "<a&b>", "a": "é"}) == '{"a":"é","b":"\\u003ca\\u0026b\\u003e"}'
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    annotated = with_last_applied(obj)
    record = annotated["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert record == ('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"annotations":{},"name":"x"}}\n')
    assert "annotations" not in obj["metadata"]  # the input is left alone
