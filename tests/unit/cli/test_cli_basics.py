"""Global flags, error wording and type lookups of the `ketch` command line."""

from __future__ import annotations

import pytest

from ketch.cli.discovery import Catalog, parse_resource_lists
from ketch.cli.errors import status_text
from ketch.cli.main import UsageError, split_global_flags

DISCOVERY = [
    {"groupVersion": "v1", "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
         "shortNames": ["po"], "categories": ["all"], "verbs": ["get", "list"]},
        {"name": "pods/status", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
        {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
         "shortNames": ["ns"]},
    ]},
    {"groupVersion": "apps/v1", "resources": [
        {"name": "deployments", "singularName": "deployment", "namespaced": True, "kind": "Deployment",
         "shortNames": ["deploy"], "categories": ["all"]},
        {"name": "deployments/scale", "namespaced": True, "kind": "Scale", "group": "autoscaling"},
    ]},
]


def test_global_flags_anywhere_on_the_line():
    flags, rest = split_global_flags(["get", "-n", "kube-system", "pods", "--context=lab",
                                      "--insecure-skip-tls-verify", "-o", "wide"])
    assert flags == {"namespace": "kube-system", "context": "lab", "insecure": True}
    assert rest == ["get", "pods", "-o", "wide"]
    flags, rest = split_global_flags(["get", "pods", "-nfoo", "--", "-n", "x"])
    assert flags == {"namespace": "foo"} and rest == ["get", "pods", "--", "-n", "x"]
    with pytest.raises(UsageError):
        split_global_flags(["get", "--kubeconfig"])


def test_catalog_lookups():
    catalog = Catalog(parse_resource_lists(DISCOVERY))
    deploy = catalog.resolve("deploy")
    assert deploy is catalog.resolve("deployments.apps") is catalog.resolve("Deployment")
    assert deploy is catalog.resolve("deployment.v1.apps")
    assert (deploy.group, deploy.version, deploy.subresources) == ("apps", "v1", ("scale",))
    assert catalog.resolve("po").subresources == ("status",)
    assert not catalog.resolve("ns").namespaced
    assert catalog.by_kind("apps/v1", "Deployment") is deploy
    assert [r.plural for r in catalog.in_category("all")] == ["pods", "deployments"]
    assert catalog.resolve("nope") is None


def test_error_wording_matches_kubectl():
    assert status_text({"kind": "Status", "reason": "NotFound", "message": 'pods "x" not found',
                        "code": 404}) == 'Error from server (NotFound): pods "x" not found'
    invalid = {"kind": "Status", "reason": "Invalid", "code": 422,
               "message": 'Deployment.apps "web" is invalid: ...',
               "details": {"name": "web", "group": "apps", "kind": "Deployment", "causes": [
                   {"type": "FieldValueRequired", "message": "Required value",
                    "field": "spec.template.spec.containers[0].image"}]}}
    assert status_text(invalid) == (
        'The Deployment "web" is invalid: spec.template.spec.containers[0].image: Required value')
    invalid["details"]["causes"].append({"message": "Invalid value: -1", "field": "spec.replicas"})
    assert status_text(invalid) == (
        'The Deployment "web" is invalid: \n'
        "* spec.template.spec.containers[0].image: Required value\n"
        "* spec.replicas: Invalid value: -1")
    assert status_text({"message": "boom"}) == "Error from server: boom"
