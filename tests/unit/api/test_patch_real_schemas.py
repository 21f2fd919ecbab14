"""Strategic merge patch driven by Ketch's real schemas (merge keys as in Kubernetes)."""

from __future__ import annotations

from ketch.api import resources
from ketch.api.patch import strategic_merge_patch, three_way_strategic_merge_patch
from ketch.api.schema import schema_for

DEPLOYMENTS = resources.lookup("apps", "v1", "deployments")
SERVICES = resources.lookup("", "v1", "services")


def _deployment(containers):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers},
            },
        },
    }


def test_deployment_containers_env_ports_merge_with_real_schema():
    live = _deployment(
        [
            {
                "name": "web",
                "image": "nginx:1",
                "env": [{"name": "A", "value": "1"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
            }
        ]
    )
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "env": [{"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 443}],
                        },
                        {"name": "sidecar", "image": "busybox"},
                    ]
                }
            }
        }
    }
    result = strategic_merge_patch(live, patch, schema_for(DEPLOYMENTS))
    containers = result["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web", "sidecar"]
    assert containers[0]["image"] == "nginx:1"
    assert [e["name"] for e in containers[0]["env"]] == ["B", "A"]
    assert [p["containerPort"] for p in containers[0]["ports"]] == [443, 80]


def test_service_ports_merge_by_port_with_real_schema():
    live = {
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }
    patch = {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}
    result = strategic_merge_patch(live, patch, schema_for(SERVICES))
    assert result["spec"]["ports"] == [{"port": 80, "targetPort": 9090, "protocol": "TCP"}]


def test_three_way_apply_round_trip_with_real_schema():
    original = _deployment([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}])
    modified = _deployment([{"name": "a", "image": "3"}])
    current = _deployment(
        [
            {"name": "a", "image": "1", "imagePullPolicy": "IfNotPresent"},
            {"name": "b", "image": "2", "imagePullPolicy": "IfNotPresent"},
        ]
    )
    schema = schema_for(DEPLOYMENTS)
    patch = three_way_strategic_merge_patch(original, modified, current, schema)
    result = strategic_merge_patch(current, patch, schema)
    assert result["spec"]["template"]["spec"]["containers"] == [
        {"name": "a", "image": "3", "imagePullPolicy": "IfNotPresent"}
    ]
    assert three_way_strategic_merge_patch(modified, modified, result, schema) == {}
