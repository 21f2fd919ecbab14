"""The resource registry: what kubectl and the CLI look resources up by."""

import pytest

from ketch.api import resources
from ketch.api.resources import by_kind, in_category, lookup, resolve, subresource


@pytest.mark.parametrize(
    "name, group_resource",
    [
        ("deploy", "deployments.apps"),
        ("deployments.apps", "deployments.apps"),
        ("deployment.v1.apps", "deployments.apps"),
        ("Deployment", "deployments.apps"),
        ("po", "pods"),
        ("pod", "pods"),
        ("Pod", "pods"),
        ("pods", "pods"),
        ("svc", "services"),
        ("cm", "configmaps"),
        ("ns", "namespaces"),
        ("no", "nodes"),
        ("rs", "replicasets.apps"),
        ("ds", "daemonsets.apps"),
        ("ep", "endpoints"),
        ("endpoints", "endpoints"),
        ("ev", "events"),
        ("sa", "serviceaccounts"),
        ("jobs", "jobs.batch"),
        ("job.batch", "jobs.batch"),
        ("leases.coordination.k8s.io", "leases.coordination.k8s.io"),
        ("secrets", "secrets"),
    ],
)
def test_resolve_names_users_type(name, group_resource):
    info = resolve(name)
    assert info is not None, name
    assert info.group_resource == group_resource


def test_resolve_unknown_is_none():
    assert resolve("widgets") is None
    assert resolve("deployments.batch") is None


def test_lookup_and_by_kind_agree():
    for info in resources.RESOURCES:
        assert lookup(info.group, info.version, info.plural) is info
        assert by_kind(info.api_version, info.kind) is info
    assert lookup("apps", "v1", "pods") is None
    assert by_kind("v1", "Deployment") is None


def test_api_version_list_kind_and_scope():
    deploy = resolve("deploy")
    assert deploy.api_version == "apps/v1"
    assert deploy.list_kind == "DeploymentList"
    assert resolve("po").api_version == "v1"
    cluster_scoped = {r.kind for r in resources.RESOURCES if not r.namespaced}
    assert cluster_scoped == {"Namespace", "Node"}


def test_category_all_is_the_workloads_kubectl_expects():
    kinds = {r.kind for r in in_category("all")}
    assert kinds == {"Pod", "Service", "Deployment", "ReplicaSet", "DaemonSet", "Job"}


def test_subresources_answer_with_the_right_kind():
    deploy, pod, node = resolve("deploy"), resolve("po"), resolve("no")
    scale = subresource(deploy, "scale")
    assert (scale.group, scale.version, scale.kind) == ("autoscaling", "v1", "Scale")
    assert set(scale.verbs) == {"get", "patch", "update"}
    status = subresource(deploy, "status")
    assert (status.api_version, status.kind) == ("apps/v1", "Deployment")
    binding = subresource(pod, "binding")
    assert (binding.api_version, binding.kind, binding.verbs) == ("v1", "Binding", ("create",))
    for name in ("log", "exec", "attach", "portforward", "status", "binding"):
        assert subresource(pod, name) is not None, name
    assert subresource(node, "proxy").kind == "NodeProxyOptions"
    assert subresource(resolve("cm"), "status") is None
    assert subresource(resolve("ds"), "scale") is None


def test_groups_lists_core_first():
    served = resources.groups()
    assert list(served)[0] == ""
    assert set(served) == {"", "apps", "batch", "coordination.k8s.io"}
    assert all(versions == ("v1",) for versions in served.values())
