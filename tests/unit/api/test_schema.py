"""The schema trees: every kind has one, and the patch merge keys are Kubernetes'."""

import pytest

from ketch.api.resources import RESOURCES, resolve
from ketch.api.schema import NOTHING, Array, Map, Object, kind_schema, schema_for


def _at(node, *path):
    for step in path:
        if step == "[]":
            assert isinstance(node, Array)
            node = node.items
        elif step == "{}":
            assert isinstance(node, Map)
            node = node.values
        else:
            assert isinstance(node, Object), f"{step} under {node!r}"
            node = node.fields[step].node
    return node


@pytest.mark.parametrize("info", RESOURCES, ids=lambda r: r.kind)
def test_every_resource_has_a_whole_object_schema(info):
    node = schema_for(info)
    assert isinstance(node, Object)
    assert {"apiVersion", "kind", "metadata"} <= set(node.fields)
    assert node.name.endswith("." + info.kind)
    if "status" in info.subresources:
        assert node.fields["status"].read_only


def test_subresource_kinds_have_schemas():
    assert kind_schema("autoscaling/v1", "Scale").fields["spec"].node.fields["replicas"]
    assert kind_schema("v1", "Binding").fields["target"].required
    assert kind_schema("meta.k8s.io/v1", "DeleteOptions") is not None
    assert kind_schema("v2", "Pod") is None


@pytest.mark.parametrize(
    "kind, path, merge_key",
    [
        ("po", ("spec", "containers"), "name"),
        ("po", ("spec", "initContainers"), "name"),
        ("po", ("spec", "volumes"), "name"),
        ("po", ("spec", "imagePullSecrets"), "name"),
        ("po", ("spec", "containers", "[]", "env"), "name"),
        ("po", ("spec", "containers", "[]", "ports"), "containerPort"),
        ("po", ("spec", "containers", "[]", "volumeMounts"), "mountPath"),
        ("po", ("status", "conditions"), "type"),
        ("svc", ("spec", "ports"), "port"),
        ("no", ("status", "conditions"), "type"),
        ("no", ("status", "addresses"), "type"),
        ("deploy", ("spec", "template", "spec", "containers"), "name"),
        ("deploy", ("metadata", "ownerReferences"), "uid"),
    ],
)
def test_merge_keys_match_kubernetes(kind, path, merge_key):
    node = _at(schema_for(resolve(kind)), *path)
    assert isinstance(node, Array)
    assert node.merge_key == merge_key
    assert node.patch_strategy == "merge"


def test_lists_without_merge_key_are_replaced():
    pod = schema_for(resolve("po"))
    for path in (("spec", "tolerations"), ("spec", "containers", "[]", "args")):
        node = _at(pod, *path)
        assert node.merge_key is None and node.patch_strategy is None


def test_deployment_strategy_retains_keys():
    strategy = _at(schema_for(resolve("deploy")), "spec", "strategy")
    assert strategy.retain_keys


def test_templates_share_the_pod_spec_schema():
    pod_spec = _at(schema_for(resolve("po")), "spec")
    for kind in ("deploy", "rs", "ds", "job"):
        assert _at(schema_for(resolve(kind)), "spec", "template", "spec") is pod_spec


def test_field_defaults_are_declared_on_the_schema():
    container = _at(schema_for(resolve("po")), "spec", "containers", "[]")
    assert container.fields["terminationMessagePath"].default == "/dev/termination-log"
    assert container.fields["image"].required and container.fields["name"].required
    assert container.fields["imagePullPolicy"].default is NOTHING  # depends on the tag
    assert not NOTHING


def test_unsupported_fields_carry_a_reason():
    pod_spec = _at(schema_for(resolve("po")), "spec")
    assert "hostPID" in pod_spec.unsupported and "hostPID" not in pod_spec.fields
    service_spec = _at(schema_for(resolve("svc")), "spec")
    assert "LoadBalancer" in service_spec.unsupported["loadBalancerIP"]
