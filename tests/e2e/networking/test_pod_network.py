"""Pods on different nodes of a 3-node lab reach each other by IP, across the VXLAN overlay."""

from __future__ import annotations

import ipaddress
import itertools
import json
import subprocess

import pytest

from tests.e2e.networking.conftest import apply, kubectl_json, pod_get, wait_ready, web_pod
from tests.fixtures.lab import Lab


@pytest.fixture(scope="module")
def pods(net_lab: Lab, namespace: str) -> dict[str, dict]:
    """One web pod per node: pod-1 on node 1, pod-2 on node 2, pod-3 on node 3."""
    names = [f"pod-{i}" for i in range(1, len(net_lab.nodes) + 1)]
    apply(net_lab, *(web_pod(name, namespace, node) for name, node in zip(names, net_lab.nodes, strict=True)))
    return wait_ready(net_lab, namespace, names)


def test_each_pod_runs_on_its_node_with_an_address_from_its_pod_cidr(net_lab: Lab, pods: dict[str, dict]):
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in kubectl_json(net_lab, "get", "nodes")["items"]}
    assert len(set(cidrs.values())) == len(net_lab.nodes), f"each node has its own pod CIDR: {cidrs}"
    for i, node in enumerate(net_lab.nodes, start=1):
        pod = pods[f"pod-{i}"]
        assert pod["spec"]["nodeName"] == node
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(cidrs[node])


def test_pod_on_first_node_reaches_pod_on_third_node_by_ip(net_lab: Lab, namespace: str, pods: dict[str, dict]):
    ip = pods["pod-3"]["status"]["podIP"]
    assert pod_get(net_lab, namespace, "pod-1", f"http://{ip}:8080/") == ["pod-3"]


def test_every_pod_reaches_every_other_pod_by_ip(net_lab: Lab, namespace: str, pods: dict[str, dict]):
    """All six ordered pairs of the three nodes: the overlay has a route, neighbour and FDB entry
    for each peer, both ways."""
    failed = []
    for client, server in itertools.permutations(sorted(pods), 2):
        ip = pods[server]["status"]["podIP"]
        got = pod_get(net_lab, namespace, client, f"http://{ip}:8080/")
        if got != [server]:
            failed.append(f"{client} -> {server} ({ip}): {got}")
    assert not failed, failed


def test_a_missing_pod_address_does_not_answer(net_lab: Lab, namespace: str, pods: dict[str, dict]):
    """The check above can fail: an unused address in node 3's pod CIDR gets no answer."""
    ip = ipaddress.ip_address(pods["pod-3"]["status"]["podIP"]) + 200
    assert pod_get(net_lab, namespace, "pod-1", f"http://{ip}:8080/", timeout=2) == [""]


def test_the_cluster_network_lives_inside_the_nodes(net_lab: Lab, pods: dict[str, dict]):
    """Each node has its VXLAN device (VNI 1, its lab address as local end, MTU 50 below its link),
    a route to every other node's pod CIDR over it and the proxy's table; the host gets none of it:
    no route through the lab bridge but the bridge's own subnet, no nftables rule naming the lab."""
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in kubectl_json(net_lab, "get", "nodes")["items"]}
    settings = net_lab.settings
    for node in net_lab.nodes:
        ns = net_lab.node_netns(node)
        vxlan = json.loads(run("ip", "-n", ns, "-d", "-j", "link", "show", "ketch-vxlan"))[0]
        eth0 = json.loads(run("ip", "-n", ns, "-j", "link", "show", "eth0"))[0]
        info = vxlan["linkinfo"]["info_data"]
        assert (info["id"], info["local"], vxlan["mtu"]) == (1, settings.node_ip(node), eth0["mtu"] - 50), vxlan
        routes = run("ip", "-n", ns, "route", "show", "dev", "ketch-vxlan")
        for other in set(net_lab.nodes) - {node}:
            assert f"{cidrs[other]} via" in routes, f"{node} has no overlay route to {other}: {routes}"
        assert run("ip", "netns", "exec", ns, "nft", "list", "table", "ip", "ketch_services")
    host_routes = run("ip", "route", "show", "dev", settings.bridge).strip().splitlines()
    assert [r.split()[0] for r in host_routes] == [settings.subnet], host_routes
    for cidr in cidrs.values():
        assert cidr not in run("ip", "route", "show"), f"the host has a route to pod CIDR {cidr}"
    ruleset = run("nft", "list", "ruleset")
    assert settings.bridge not in ruleset and settings.subnet.rsplit(".", 1)[0] + "." not in ruleset


def run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout
