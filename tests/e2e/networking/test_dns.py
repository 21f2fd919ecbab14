"""Cluster DNS inside pods on a 3-node lab: `web` in the pod's namespace, `web.<other>` across
namespaces, and `web.<ns>.svc.cluster.local` answering the ClusterIP, from a pod on every node
(each node's own DNS server)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.networking.conftest import (
    apply,
    endpoint_ips,
    eventually,
    kubectl_json,
    kubectl_ok,
    pod_get,
    service,
    wait_ready,
    web_pod,
)
from tests.fixtures.lab import Lab


@pytest.fixture(scope="module")
def other(net_lab: Lab) -> Iterator[str]:
    """A second namespace, also with a Service named `web` (so a wrong search order shows)."""
    created = net_lab.kubectl("create", "namespace", "dns-other")
    assert created.returncode == 0, created.stderr
    yield "dns-other"
    net_lab.kubectl("delete", "namespace", "dns-other", "--wait=false")


@pytest.fixture(scope="module")
def dns(net_lab: Lab, namespace: str, other: str) -> dict:
    """`web` in this namespace (pod here-web on node 1), `web` in `other` (pod there-web on node 2),
    and one client pod per node; the ClusterIPs of both Services."""
    n1, n2, _ = net_lab.nodes
    clients = [f"client-{i}" for i in range(1, len(net_lab.nodes) + 1)]
    apply(net_lab, web_pod("here-web", namespace, n1), service("web", namespace),
          web_pod("there-web", other, n2), service("web", other),
          *(web_pod(c, namespace, node, app="client") for c, node in zip(clients, net_lab.nodes, strict=True)))
    wait_ready(net_lab, namespace, ["here-web", *clients])
    wait_ready(net_lab, other, ["there-web"])
    for ns in (namespace, other):
        eventually(lambda ns=ns: endpoint_ips(net_lab, ns, "web"), 20, f"web in {ns} has its endpoint")
    return {"clients": clients,
            "here": kubectl_json(net_lab, "get", "service", "web", "-n", namespace)["spec"]["clusterIP"],
            "there": kubectl_json(net_lab, "get", "service", "web", "-n", other)["spec"]["clusterIP"]}


def nslookup(lab: Lab, ns: str, pod: str, name: str) -> tuple[int, str]:
    proc = lab.kubectl("exec", "-n", ns, pod, "--", "nslookup", name, timeout=30)
    return proc.returncode, proc.stdout + proc.stderr


def answered_addresses(output: str) -> list[str]:
    """The addresses nslookup printed for the name (after its `Name:` line, not the server's)."""
    _, _, answer = output.partition("Name:")
    return re.findall(r"Address(?: \d+)?:\s*([0-9.]+)\s*$", answer, re.M)


def test_pods_get_the_cluster_resolv_conf(net_lab: Lab, namespace: str, dns: dict):
    conf = kubectl_ok(net_lab, "exec", "-n", namespace, dns["clients"][0], "--", "cat", "/etc/resolv.conf")
    assert f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local" in conf, conf
    assert "ndots:5" in conf, conf
    nameserver = re.search(r"^nameserver\s+(\S+)", conf, re.M)
    node = kubectl_json(net_lab, "get", "node", net_lab.nodes[0])
    assert nameserver and nameserver.group(1).startswith(node["spec"]["podCIDR"].rsplit(".", 1)[0] + "."), \
        f"the nameserver is the node's pod gateway: {conf}"


def test_short_name_reaches_the_service_of_the_same_namespace(net_lab: Lab, namespace: str, dns: dict):
    for client in dns["clients"]:
        assert pod_get(net_lab, namespace, client, "http://web/") == ["here-web"], client


def test_name_dot_namespace_reaches_the_service_of_another_namespace(net_lab: Lab, namespace: str,
                                                                     other: str, dns: dict):
    for client in dns["clients"]:
        assert pod_get(net_lab, namespace, client, f"http://web.{other}/") == ["there-web"], client


def test_full_service_names_answer_the_cluster_ips_from_every_node(net_lab: Lab, namespace: str, other: str,
                                                                   dns: dict):
    for client in dns["clients"]:
        for ns, ip in ((namespace, dns["here"]), (other, dns["there"])):
            rc, out = nslookup(net_lab, namespace, client, f"web.{ns}.svc.cluster.local")
            assert rc == 0 and answered_addresses(out) == [ip], f"{client}: web.{ns} -> {out}"


def test_an_unknown_service_does_not_resolve(net_lab: Lab, namespace: str, dns: dict):
    rc, out = nslookup(net_lab, namespace, dns["clients"][0], f"nothing.{namespace}.svc.cluster.local")
    assert answered_addresses(out) == [], out
    assert "NXDOMAIN" in out or rc != 0, out
