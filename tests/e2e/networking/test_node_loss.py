"""Losing a node: node 2's lab link is cut (its host-side veth set down). The node goes NotReady,
its pod leaves the Service's endpoints and every node's proxy, and nodes 1 and 3 keep serving the
ClusterIP and the NodePort. The link is restored at the end and node 2 comes back."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import yaml

from tests.e2e.networking.conftest import (
    apply,
    endpoint_ips,
    eventually,
    host_get,
    kubectl_json,
    node_get,
    node_nft_table,
    pod_get,
    service,
    wait_ready,
    web_pod,
)
from tests.fixtures.lab import Lab

NOTREADY_MARGIN = 10  # seconds beyond grace period + the controller's 5 s monitor period


def tolerating_pod(name: str, ns: str, node: str) -> str:
    """A web pod that stays on an unreachable node for 5 minutes (not evicted while the test runs)."""
    pod = yaml.safe_load(web_pod(name, ns, node))
    pod["spec"]["tolerations"] = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                   "effect": "NoExecute", "tolerationSeconds": 300}]
    return yaml.safe_dump(pod)


def ready_condition(lab: Lab, node: str) -> str:
    for c in kubectl_json(lab, "get", "node", node)["status"].get("conditions") or []:
        if c["type"] == "Ready":
            return c["status"]
    return ""


def set_link(device: str, state: str) -> None:
    subprocess.run(["ip", "link", "set", device, state], check=True, capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def spread_service(net_lab: Lab, namespace: str) -> dict:
    """Service `web` (NodePort) over loss-1, loss-2, loss-3, one per node, all three endpoints programmed."""
    names = [f"loss-{i}" for i in range(1, len(net_lab.nodes) + 1)]
    apply(net_lab, *(tolerating_pod(n, namespace, node) for n, node in zip(names, net_lab.nodes, strict=True)),
          service("web", namespace, type="NodePort"))
    pods = wait_ready(net_lab, namespace, names)
    ips = {name: pods[name]["status"]["podIP"] for name in names}
    eventually(lambda: endpoint_ips(net_lab, namespace, "web") == set(ips.values()), 20, "three endpoints")
    spec = kubectl_json(net_lab, "get", "service", "web", "-n", namespace)["spec"]
    return {"ips": ips, "cluster_ip": spec["clusterIP"], "node_port": spec["ports"][0]["nodePort"]}


@pytest.fixture
def node2_cut(net_lab: Lab, namespace: str, spread_service: dict) -> Iterator[str]:
    """Node 2 cut off the lab bridge for the test; afterwards reconnected, Ready, its endpoint back."""
    lost = net_lab.nodes[1]
    veth = net_lab.settings.host_veth(lost)
    set_link(veth, "down")
    try:
        yield lost
    finally:
        set_link(veth, "up")
    eventually(lambda: ready_condition(net_lab, lost) == "True", 30, f"{lost} Ready again")
    eventually(lambda: spread_service["ips"]["loss-2"] in endpoint_ips(net_lab, namespace, "web"), 30,
               "loss-2 back in the endpoints")


def test_cut_node_goes_not_ready_its_endpoints_leave_and_the_others_keep_serving(
        net_lab: Lab, namespace: str, spread_service: dict, node2_cut: str):
    started = time.monotonic()
    n1, lost, n3 = net_lab.nodes
    lost_ip = spread_service["ips"]["loss-2"]
    bound = net_lab.settings.node_monitor_grace_period + 5 + NOTREADY_MARGIN

    eventually(lambda: ready_condition(net_lab, lost) in ("Unknown", "False"), bound, f"{lost} NotReady")
    went_not_ready = time.monotonic() - started
    status = net_lab.kubectl("get", "node", lost, "--no-headers").stdout.split()
    assert status[1] == "NotReady", status
    for other in (n1, n3):
        assert ready_condition(net_lab, other) == "True", f"{other} stays Ready"

    # its endpoint leaves the Service, and the proxies of the nodes still reachable drop it
    eventually(lambda: endpoint_ips(net_lab, namespace, "web") == set(spread_service["ips"].values()) - {lost_ip},
               10, f"{lost}'s pod leaves the endpoints")
    for node in (n1, n3):
        eventually(lambda node=node: lost_ip not in node_nft_table(net_lab, node), 10,
                   f"{node}'s proxy drops {lost_ip}")
    print(f"{lost} NotReady {went_not_ready:.1f}s after its link was cut")

    # the other nodes keep serving: every request answered, only by the pods left
    url = f"http://{spread_service['cluster_ip']}/"
    serving = {"loss-1", "loss-3"}
    for node in (n1, n3):
        answers = Counter(node_get(net_lab, node, url, count=20))
        assert set(answers) == serving, f"{node}: {dict(answers)}"
    for pod in ("loss-1", "loss-3"):
        answers = Counter(pod_get(net_lab, namespace, pod, url, count=20))
        assert set(answers) == serving, f"{pod}: {dict(answers)}"
    for node in (n1, n3):
        node_url = f"http://{net_lab.settings.node_ip(node)}:{spread_service['node_port']}/"
        answers = Counter(host_get(net_lab, node_url) for _ in range(6))
        assert set(answers) <= serving and "" not in answers, f"NodePort on {node}: {dict(answers)}"
    # the cut is real: node 2's address does not answer from the host
    lost_url = f"http://{net_lab.settings.node_ip(lost)}:{spread_service['node_port']}/"
    assert host_get(net_lab, lost_url, timeout=2) == ""
