"""status, scale and binding subresources, and the node-agent seam."""

from __future__ import annotations

import httpx

from tests.integration.apiserver.conftest import deployment, pod

MERGE = {"Content-Type": "application/merge-patch+json"}


def test_status_update_changes_only_status(api: httpx.Client, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    d = api.post(base, json=deployment("s")).json()
    d["status"] = {"replicas": 2, "observedGeneration": 1}
    d["spec"]["replicas"] = 9
    r = api.put(f"{base}/s/status", json=d)
    assert r.status_code == 200, r.text
    assert r.json()["status"]["replicas"] == 2
    assert r.json()["spec"]["replicas"] == 1
    assert r.json()["metadata"]["generation"] == 1
    r = api.patch(f"{base}/s/status", json={"status": {"readyReplicas": 2}}, headers=MERGE)
    assert r.json()["status"] == {"replicas": 2, "observedGeneration": 1, "readyReplicas": 2}
    assert api.get(f"{base}/s/status").json()["status"]["readyReplicas"] == 2
    # stale resourceVersion on a status update
    d["metadata"]["resourceVersion"] = "1"
    assert api.put(f"{base}/s/status", json=d).status_code == 409


def test_pod_status_patch(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    api.post(base, json=pod("st"))
    r = api.patch(f"{base}/st/status", json={"status": {"phase": "Running", "podIP": "10.0.0.5"}}, headers=MERGE)
    assert r.status_code == 200, r.text
    assert r.json()["status"]["phase"] == "Running"
    listed = api.get(base, params={"fieldSelector": "status.phase=Running"}).json()["items"]
    assert [p["metadata"]["name"] for p in listed] == ["st"]


def test_scale_subresource(api: httpx.Client, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    api.post(base, json=deployment("sc", replicas=2))
    scale = api.get(f"{base}/sc/scale").json()
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == "app=sc"
    r = api.patch(f"{base}/sc/scale", json={"spec": {"replicas": 5}}, headers=MERGE)
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 5
    d = api.get(f"{base}/sc").json()
    assert d["spec"]["replicas"] == 5 and d["metadata"]["generation"] == 2
    scale = r.json()
    scale["spec"]["replicas"] = 3
    assert api.put(f"{base}/sc/scale", json=scale).json()["spec"]["replicas"] == 3
    scale["spec"]["replicas"] = -1
    r = api.put(f"{base}/sc/scale", json=scale)
    assert r.status_code == 422 and "spec.replicas" in r.json()["message"]
    assert api.get(f"/apis/apps/v1/namespaces/{namespace}/replicasets/none/scale").status_code == 404


def test_binding_sets_node_once(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    api.post(base, json=pod("b"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
    r = api.post(f"{base}/b/binding", json=binding)
    assert r.status_code == 201, r.text
    bound = api.get(f"{base}/b").json()
    assert bound["spec"]["nodeName"] == "node-1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in bound["status"]["conditions"])
    r = api.post(f"{base}/b/binding", json={**binding, "target": {"kind": "Node", "name": "node-2"}})
    assert r.status_code == 409
    assert api.post(f"{base}/missing/binding", json={**binding, "metadata": {"name": "missing"}}).status_code == 404
    listed = api.get("/api/v1/pods", params={"fieldSelector": "spec.nodeName=node-1"}).json()["items"]
    assert "b" in [p["metadata"]["name"] for p in listed]


def test_node_agent_subresources_need_a_scheduled_pod(api: httpx.Client, namespace: str) -> None:
    """Logs and exec are proxied to the pod's node agent; a pod on no node has none to ask."""
    base = f"/api/v1/namespaces/{namespace}/pods"
    api.post(base, json=pod("l"))
    r = api.get(f"{base}/l/log")
    assert r.status_code == 400 and r.json()["kind"] == "Status"
    assert "does not have a host assigned" in r.json()["message"]
    assert api.get(f"{base}/nope/log").status_code == 404


def test_node_created_with_status_keeps_it_and_main_updates_ignore_status(api: httpx.Client) -> None:
    node = {"metadata": {"name": "node-status-test"},
            "status": {"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}
    api.delete("/api/v1/nodes/node-status-test")
    r = api.post("/api/v1/nodes", json=node)
    assert r.status_code == 201, r.text
    assert r.json()["status"]["capacity"]["cpu"] == "2"
    got = r.json()
    got["status"]["capacity"]["cpu"] = "64"
    got["metadata"]["labels"] = {"zone": "a"}
    r = api.put("/api/v1/nodes/node-status-test", json=got)
    assert r.json()["status"]["capacity"]["cpu"] == "2" and r.json()["metadata"]["labels"] == {"zone": "a"}
    r = api.patch("/api/v1/nodes/node-status-test/status", json={"status": {"capacity": {"cpu": "8"}}},
                  headers=MERGE)
    assert r.json()["status"]["capacity"]["cpu"] == "8"
    api.delete("/api/v1/nodes/node-status-test")
