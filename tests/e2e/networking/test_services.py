"""Services on a 3-node lab: a ClusterIP backed by pods on nodes 1 and 2 answers from every node and
every pod and spreads over its endpoints; a NodePort answers on every node's lab address; an unready
pod leaves the Service within its probe period; a deleted Service leaves no rule on any node."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.e2e.networking.conftest import (
    apply,
    endpoint_ips,
    eventually,
    host_get,
    kubectl_json,
    kubectl_ok,
    node_get,
    node_nft_table,
    pod_get,
    service,
    wait_ready,
    web_pod,
)
from tests.fixtures.lab import Lab

REQUESTS = 20
BACKENDS = ("web-1", "web-2")
PROBE_PERIOD = 1  # seconds, failureThreshold 1 (see WEB_POD)
UNREADY_MARGIN = 4  # seconds on top of the probe period: status -> Endpoints -> every node's proxy


@pytest.fixture(scope="module")
def web(net_lab: Lab, namespace: str) -> dict:
    """Backends web-1 (node 1) and web-2 (node 2), a client pod on node 3, Services `web` (ClusterIP)
    and `web-np` (NodePort) in front of the backends, both with their two endpoints programmed."""
    n1, n2, n3 = net_lab.nodes
    apply(net_lab, web_pod("web-1", namespace, n1, period=PROBE_PERIOD),
          web_pod("web-2", namespace, n2, period=PROBE_PERIOD),
          web_pod("client", namespace, n3, app="client"),
          service("web", namespace), service("web-np", namespace, type="NodePort"))
    pods = wait_ready(net_lab, namespace, [*BACKENDS, "client"])
    ips = {pods[name]["status"]["podIP"] for name in BACKENDS}
    for svc in ("web", "web-np"):
        eventually(lambda svc=svc: endpoint_ips(net_lab, namespace, svc) == ips, 20, f"{svc} has both endpoints")
    cluster_ip = kubectl_json(net_lab, "get", "service", "web", "-n", namespace)["spec"]["clusterIP"]
    np_spec = kubectl_json(net_lab, "get", "service", "web-np", "-n", namespace)["spec"]
    for node in net_lab.nodes:  # the proxy of every node has both endpoints of both Services
        eventually(lambda node=node: all(ip in node_nft_table(net_lab, node) for ip in ips), 20,
                   f"{node}'s proxy programs the endpoints")
    return {"pods": pods, "cluster_ip": cluster_ip, "node_port": np_spec["ports"][0]["nodePort"]}


def spread(answers: list[str]) -> Counter:
    return Counter(answers)


def test_cluster_ip_answers_from_every_node_spreading_over_both_endpoints(net_lab: Lab, web: dict):
    url = f"http://{web['cluster_ip']}/"
    seen = {node: spread(node_get(net_lab, node, url, count=REQUESTS)) for node in net_lab.nodes}
    for node, answers in seen.items():
        assert set(answers) == set(BACKENDS), f"{node}: {dict(answers)} (all: {seen})"


def test_cluster_ip_answers_from_every_pod_spreading_over_both_endpoints(net_lab: Lab, namespace: str,
                                                                         web: dict):
    """From the client on node 3 (no backend there) and from each backend itself (hairpin: a pod
    reaching its own Service, half the time itself)."""
    url = f"http://{web['cluster_ip']}/"
    seen = {pod: spread(pod_get(net_lab, namespace, pod, url, count=REQUESTS)) for pod in ("client", *BACKENDS)}
    for pod, answers in seen.items():
        assert set(answers) == set(BACKENDS), f"{pod}: {dict(answers)} (all: {seen})"


def test_node_port_answers_on_every_node_lab_address(net_lab: Lab, web: dict):
    """From the host over the lab bridge, and from node 3's namespace to the other nodes."""
    port = web["node_port"]
    assert 30000 <= port <= 32767
    settings = net_lab.settings
    for node in net_lab.nodes:
        url = f"http://{settings.node_ip(node)}:{port}/"
        from_host = spread(host_get(net_lab, url) for _ in range(REQUESTS))
        assert set(from_host) == set(BACKENDS), f"host -> {node} {url}: {dict(from_host)}"
        from_node = spread(node_get(net_lab, net_lab.nodes[2], url, count=4))
        assert set(from_node) <= set(BACKENDS) and "" not in from_node, f"node 3 -> {node}: {dict(from_node)}"
    # the plain ClusterIP Service has no node port: the check can fail
    assert host_get(net_lab, f"http://{settings.node_ip(net_lab.nodes[0])}:8080/", timeout=2) == ""


def test_unready_pod_stops_receiving_traffic_within_its_probe_period(net_lab: Lab, namespace: str, web: dict):
    url = f"http://{web['cluster_ip']}/"
    web2_ip = web["pods"]["web-2"]["status"]["podIP"]
    started = time.monotonic()
    kubectl_ok(net_lab, "exec", "-n", namespace, "web-2", "--", "rm", "/w/ready")
    try:
        bound = PROBE_PERIOD + UNREADY_MARGIN
        eventually(lambda: web2_ip not in endpoint_ips(net_lab, namespace, "web"), bound,
                   "web-2 leaves the Endpoints", interval=0.1)
        took = time.monotonic() - started
        assert took <= bound, f"web-2 left the Endpoints only {took:.1f}s after it went unready"
        time.sleep(max(0.0, started + bound - time.monotonic()))
        from_nodes = {node: spread(node_get(net_lab, node, url, count=10)) for node in net_lab.nodes}
        from_client = spread(pod_get(net_lab, namespace, "client", url, count=10))
        for where, answers in [*from_nodes.items(), ("client", from_client)]:
            assert answers == {"web-1": 10}, f"{where}, {bound}s after web-2 went unready: {dict(answers)}"
        pod = kubectl_json(net_lab, "get", "pod", "web-2", "-n", namespace)
        assert pod["status"]["phase"] == "Running" and not any(
            c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"]), \
            "web-2 is running but unready"
        print(f"web-2 left the Endpoints {took:.1f}s after its ready file was removed")
    finally:
        kubectl_ok(net_lab, "exec", "-n", namespace, "web-2", "--", "sh", "-c", "echo ok > /w/ready")
    # ready again: it gets traffic again
    eventually(lambda: web2_ip in endpoint_ips(net_lab, namespace, "web"), 10, "web-2 back in the Endpoints")
    eventually(lambda: "web-2" in node_get(net_lab, net_lab.nodes[2], url, count=10), 10,
               "web-2 answers again")


def test_deleting_a_service_removes_its_rules_on_every_node(net_lab: Lab, namespace: str, web: dict):
    apply(net_lab, service("gone", namespace, type="NodePort"))
    spec = kubectl_json(net_lab, "get", "service", "gone", "-n", namespace)["spec"]
    ip, port = spec["clusterIP"], spec["ports"][0]["nodePort"]
    marks = (f"{ip} . tcp . 80", f"tcp . {port} ", f"{namespace}/gone/")
    for node in net_lab.nodes:
        eventually(lambda node=node: all(m in node_nft_table(net_lab, node) for m in marks), 20,
                   f"{node} programs Service gone")
    assert set(node_get(net_lab, net_lab.nodes[0], f"http://{ip}/", count=6)) <= set(BACKENDS)

    kubectl_ok(net_lab, "delete", "service", "gone", "-n", namespace)
    for node in net_lab.nodes:
        eventually(lambda node=node: not any(m in node_nft_table(net_lab, node) for m in marks), 10,
                   f"{node} drops every rule of Service gone")
    assert host_get(net_lab, f"http://{net_lab.settings.node_ip(net_lab.nodes[0])}:{port}/", timeout=2) == ""
    # the other Services are still there and still served
    table = node_nft_table(net_lab, net_lab.nodes[0])
    assert f"{web['cluster_ip']} . tcp . 80" in table
    assert set(node_get(net_lab, net_lab.nodes[0], f"http://{web['cluster_ip']}/", count=4)) <= set(BACKENDS)
