"""Service ClusterIP and NodePort allocation."""

from __future__ import annotations

import ipaddress

import httpx


def svc(name: str, **spec) -> dict:
    return {"metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}], **spec}}


def test_cluster_ip_allocated_from_range_and_unique(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/services"
    ips = []
    for i in range(5):
        r = api.post(base, json=svc(f"s{i}"))
        assert r.status_code == 201, r.text
        spec = r.json()["spec"]
        assert ipaddress.ip_address(spec["clusterIP"]) in ipaddress.ip_network("10.96.0.0/12")
        assert spec["clusterIPs"] == [spec["clusterIP"]]
        ips.append(spec["clusterIP"])
    assert len(set(ips)) == 5
    # asking for a taken address is refused, a free one in range is granted
    r = api.post(base, json=svc("dup", clusterIP=ips[0]))
    assert r.status_code == 422 and "already allocated" in r.text
    r = api.post(base, json=svc("out", clusterIP="192.168.1.1"))
    assert r.status_code == 422 and "not in the valid range" in r.text
    # an update that leaves clusterIP out keeps it
    current = api.get(f"{base}/s0").json()
    del current["spec"]["clusterIP"], current["spec"]["clusterIPs"]
    current["metadata"]["labels"] = {"x": "y"}
    r = api.put(f"{base}/s0", json=current)
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["clusterIP"] == ips[0]


def test_headless_gets_no_address(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/services"
    r = api.post(base, json=svc("headless", clusterIP="None"))
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["clusterIP"] == "None"
    assert r.json()["spec"]["clusterIPs"] == ["None"]


def test_node_ports(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/services"
    r = api.post(base, json=svc("np", type="NodePort"))
    assert r.status_code == 201, r.text
    port = r.json()["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767
    spec = svc("np2", type="NodePort")
    spec["spec"]["ports"][0]["nodePort"] = port
    r = api.post(base, json=spec)
    assert r.status_code == 422 and "already allocated" in r.text
    # kubectl apply-style patch that does not mention nodePort keeps it
    r = api.patch(f"{base}/np", json={"metadata": {"labels": {"a": "b"}}},
                  headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.json()["spec"]["ports"][0]["nodePort"] == port
