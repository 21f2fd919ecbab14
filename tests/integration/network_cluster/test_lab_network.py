"""Cluster networking on a 3-node lab of network namespaces: overlay, Services, NodePorts.

The overlay is reconciled from plain Node objects and the proxy table rendered
from plain Service/Endpoints objects, exactly as the agent's loops do from
their informers; test_cluster_network_apiserver.py runs the loops themselves.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from node_agent.network import hairpin, netns, overlay

from tests.integration.network_cluster.lab import CLUSTER_CIDR, Lab, sh

pytestmark = pytest.mark.skipif(shutil.which("nft") is None, reason="nftables is not installed")


@pytest.fixture(scope="module")
def lab(run_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(run_id, tmp_path_factory.mktemp("lab"), nodes=3, pods_per_node=2).up()
    try:
        lab.overlay_all()
        lab.program_services([], {})
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def port() -> int:
    """Listeners live in namespaces of their own, so any port is free there: pick one per run."""
    return random.randint(20000, 29999)


@pytest.fixture(scope="module")
def servers(lab: Lab, port: int) -> dict[str, str]:
    """A listener in every pod; name -> pod IP."""
    out = {}
    for node in lab.nodes:
        for pod in node.pods:
            lab.serve(pod.netns, port, pod.name)
            out[pod.name] = pod.ip
    return out


def service(name: str, ip: str, port: int, *, node_port: int = 0, affinity: bool = False) -> dict:
    spec: dict = {"clusterIP": ip, "type": "NodePort" if node_port else "ClusterIP",
                  "ports": [{"name": "web", "port": 80, "protocol": "TCP", "targetPort": port,
                             **({"nodePort": node_port} if node_port else {})}]}
    if affinity:
        spec["sessionAffinity"] = "ClientIP"
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 300}}
    return {"metadata": {"namespace": "default", "name": name}, "spec": spec}


def endpoints(ips: list[str], port: int) -> dict:
    return {"subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": [{"name": "web", "port": port}]}]
            if ips else []}


def test_pod_reaches_pod_on_another_node_by_ip_without_nat(lab: Lab, servers: dict[str, str], port: int) -> None:
    a, c = lab.nodes[0].pods[0], lab.nodes[2].pods[1]
    assert lab.connect(a.netns, c.ip, port) == f"{c.name} {a.ip}"
    assert lab.connect(c.netns, a.ip, port) == f"{a.name} {c.ip}"
    # and from a node to a pod elsewhere
    assert lab.connect(lab.nodes[1].netns, a.ip, port).startswith(a.name)


def test_overlay_device_mtu_and_peer_entries(lab: Lab) -> None:
    node = lab.nodes[0]
    link = sh("ip", "-n", node.netns, "-d", "link", "show", overlay.DEFAULT_DEVICE).stdout
    assert "mtu 1450" in link and "vxlan id 1" in link and "nolearning" in link
    assert "mtu 1450" in sh("ip", "-n", node.netns, "link", "show", "ketch-pods").stdout
    routes = sh("ip", "-n", node.netns, "route", "show", "dev", overlay.DEFAULT_DEVICE).stdout
    for peer in lab.nodes[1:]:
        assert f"{peer.pod_cidr} via {overlay.vtep_address(peer.pod_cidr)}" in routes
    fdb = sh("bridge", "-n", node.netns, "fdb", "show", "dev", overlay.DEFAULT_DEVICE).stdout
    assert all(f"{p.mac} dst {p.ip}" in fdb for p in lab.nodes[1:])


def test_a_node_that_goes_away_is_removed_and_comes_back(lab: Lab, servers: dict[str, str], port: int) -> None:
    a, gone = lab.nodes[0], lab.nodes[2]
    without = [n.as_object() for n in lab.nodes if n is not gone]
    try:
        changes = lab.reconcile(a, without)
        assert sorted(c.split()[0] for c in changes.removed) == ["fdb", "neigh", "route"]
        assert gone.pod_cidr not in sh("ip", "-n", a.netns, "route").stdout
        assert gone.mac not in sh("bridge", "-n", a.netns, "fdb", "show", "dev", overlay.DEFAULT_DEVICE).stdout
        with pytest.raises(OSError):
            lab.connect(a.pods[0].netns, gone.pods[0].ip, port, timeout=0.5)
        # a second pass finds nothing to do (level-triggered, idempotent)
        assert not lab.reconcile(a, without)
    finally:
        lab.reconcile(a, [n.as_object() for n in lab.nodes])
    assert lab.connect(a.pods[0].netns, gone.pods[0].ip, port).startswith(gone.pods[0].name)


def test_changed_node_address_replaces_its_entries(lab: Lab) -> None:
    a, moved = lab.nodes[0], lab.nodes[1]
    objects = [n.as_object() for n in lab.nodes]
    objects[1]["metadata"]["annotations"][overlay.PUBLIC_IP_ANNOTATION] = "10.213.60.99"
    try:
        lab.reconcile(a, objects)
        fdb = sh("bridge", "-n", a.netns, "fdb", "show", "dev", overlay.DEFAULT_DEVICE).stdout
        assert f"{moved.mac} dst 10.213.60.99" in fdb and f"{moved.mac} dst {moved.ip}" not in fdb
    finally:
        lab.reconcile(a, [n.as_object() for n in lab.nodes])


def test_cluster_ip_spreads_over_endpoints_on_two_nodes_from_every_node_and_pod(
        lab: Lab, servers: dict[str, str], port: int) -> None:
    backends = [lab.nodes[0].pods[0], lab.nodes[1].pods[0]]
    lab.program_services([service("web", "10.213.32.10", port)],
                         {"default/web": endpoints([p.ip for p in backends], port)})
    sources = [n.netns for n in lab.nodes] + [p.netns for n in lab.nodes for p in n.pods]
    for ns in sources:
        seen = Counter(lab.connect(ns, "10.213.32.10", 80).split()[0] for _ in range(16))
        assert set(seen) == {p.name for p in backends}, (ns, seen)


def test_hairpin_pod_reaches_itself_and_its_neighbour_through_its_service(
        lab: Lab, servers: dict[str, str], port: int) -> None:
    me, neighbour = lab.nodes[0].pods
    lab.program_services([service("self", "10.213.32.11", port), service("pair", "10.213.32.12", port)],
                         {"default/self": endpoints([me.ip], port),
                          "default/pair": endpoints([neighbour.ip], port)})
    assert lab.connect(me.netns, "10.213.32.11", 80).startswith(me.name)
    assert lab.connect(me.netns, "10.213.32.12", 80).startswith(neighbour.name)
    ports = sh("bridge", "-n", me.node.netns, "-d", "link", "show", "master", "ketch-pods").stdout
    assert ports.count("hairpin on") == len(me.node.pods)
    assert not netns.run_in(me.node.path, hairpin.ensure_hairpin, "ketch-pods")  # nothing left to do


def test_nodeport_answers_on_every_node_lab_address(lab: Lab, servers: dict[str, str], port: int) -> None:
    backends = [lab.nodes[0].pods[1], lab.nodes[2].pods[0]]
    node_port = 30000 + random.randint(0, 2767)
    lab.program_services([service("np", "10.213.32.13", port, node_port=node_port)],
                         {"default/np": endpoints([p.ip for p in backends], port)})
    for node in lab.nodes:
        seen = {lab.connect(lab.lab_ns, node.ip, node_port) for _ in range(12)}
        assert {line.split()[0] for line in seen} <= {p.name for p in backends}
        assert seen
    # from a node to itself, locally generated
    assert lab.connect(lab.nodes[1].netns, lab.nodes[1].ip, node_port).split()[0] in {p.name for p in backends}


def test_service_without_ready_endpoint_refuses_at_once(lab: Lab, servers: dict[str, str], port: int) -> None:
    node_port = 30000 + random.randint(0, 2767)
    lab.program_services([service("empty", "10.213.32.14", port, node_port=node_port)],
                         {"default/empty": endpoints([], port)})
    for ns, ip, p in ((lab.nodes[0].pods[0].netns, "10.213.32.14", 80), (lab.nodes[1].netns, "10.213.32.14", 80),
                      (lab.lab_ns, lab.nodes[2].ip, node_port)):
        began = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            lab.connect(ns, ip, p, timeout=5)
        assert time.monotonic() - began < 1.0


def test_session_affinity_sticks_to_one_endpoint(lab: Lab, servers: dict[str, str], port: int) -> None:
    backends = [p for n in lab.nodes for p in n.pods]
    lab.program_services([service("sticky", "10.213.32.15", port, affinity=True)],
                         {"default/sticky": endpoints([p.ip for p in backends], port)})
    for client in (lab.nodes[0].pods[0], lab.nodes[2].pods[1]):
        seen = {lab.connect(client.netns, "10.213.32.15", 80).split()[0] for _ in range(15)}
        assert len(seen) == 1, seen
    assert "flags dynamic,timeout" in lab.table(lab.nodes[0])


def test_deleting_a_service_removes_its_rules_everywhere(lab: Lab, servers: dict[str, str], port: int) -> None:
    keep = service("keep", "10.213.32.16", port)
    gone = service("gone", "10.213.32.17", port)
    eps = {"default/keep": endpoints([lab.nodes[0].pods[0].ip], port),
           "default/gone": endpoints([lab.nodes[1].pods[0].ip], port)}
    lab.program_services([keep, gone], eps)
    assert lab.connect(lab.nodes[2].netns, "10.213.32.17", 80).startswith(lab.nodes[1].pods[0].name)
    lab.program_services([keep], eps)
    for node in lab.nodes:
        table = lab.table(node)
        assert "10.213.32.16" in table and "10.213.32.17" not in table and "default/gone" not in table
    with pytest.raises(OSError):
        lab.connect(lab.nodes[2].pods[0].netns, "10.213.32.17", 80, timeout=0.5)


def test_overlay_carries_full_size_segments(lab: Lab, port: int, tmp_path: Path) -> None:
    """A bulk transfer pod-to-pod across nodes completes (MTU and PMTU right)."""
    src, dst = lab.nodes[0].pods[1], lab.nodes[1].pods[1]
    sink_port = port + 1
    script = tmp_path / "sink.py"
    script.write_text(
        "import socket, sys\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('0.0.0.0', {sink_port})); s.listen(1); print('ready', flush=True)\n"
        "c, _ = s.accept(); n = 0\n"
        "while (b := c.recv(1 << 16)): n += len(b)\n"
        "c.sendall(str(n).encode()); c.close()\n")
    proc = subprocess.Popen(["ip", "netns", "exec", dst.netns, sys.executable, str(script)],
                            stdout=subprocess.PIPE, text=True)
    lab.processes.append(proc)
    assert proc.stdout.readline().strip() == "ready"

    def send() -> str:
        with socket.create_connection((dst.ip, sink_port), timeout=5) as conn:
            conn.sendall(b"x" * (8 << 20))
            conn.shutdown(socket.SHUT_WR)
            return conn.recv(64).decode()

    assert netns.run_in(src.path, send) == str(8 << 20)
    assert CLUSTER_CIDR  # the lab's pods are all inside the cluster CIDR


UDP_ECHO = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', int(sys.argv[1])))\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    data, peer = s.recvfrom(512); s.sendto(sys.argv[2].encode(), peer)\n"
)


def _udp_ask(ip: str, port: int) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.connect((ip, port))
        s.send(b"?")
        return s.recv(512).decode()


def test_udp_services_forward_and_reject(lab: Lab, port: int, tmp_path: Path) -> None:
    script = tmp_path / "udp_echo.py"
    script.write_text(UDP_ECHO)
    backend = lab.nodes[1].pods[0]
    proc = subprocess.Popen(["ip", "netns", "exec", backend.netns, sys.executable, str(script), str(port + 2),
                             backend.name], stdout=subprocess.PIPE, text=True)
    lab.processes.append(proc)
    assert proc.stdout.readline().strip() == "ready"
    dns_like = {"metadata": {"namespace": "default", "name": "udp"},
                "spec": {"clusterIP": "10.213.32.53", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}
    empty = {"metadata": {"namespace": "default", "name": "udp-empty"},
             "spec": {"clusterIP": "10.213.32.54", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}
    lab.program_services([dns_like, empty], {
        "default/udp": {"subsets": [{"addresses": [{"ip": backend.ip}],
                                     "ports": [{"name": "dns", "port": port + 2, "protocol": "UDP"}]}]},
        "default/udp-empty": {"subsets": []}})
    client = lab.nodes[0].pods[0]
    assert netns.run_in(client.path, _udp_ask, "10.213.32.53", 53) == backend.name
    with pytest.raises(ConnectionRefusedError):  # ICMP port unreachable from the reject
        netns.run_in(client.path, _udp_ask, "10.213.32.54", 53)


def _udp_ask_from(src_port: int, ip: str, port: int) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.bind(("0.0.0.0", src_port))
        s.connect((ip, port))
        s.send(b"?")
        return s.recv(512).decode()


def test_udp_flows_to_a_removed_backend_move_to_the_new_one(lab: Lab, port: int, tmp_path: Path) -> None:
    """Same client socket, backend replaced: its conntrack entry is cleared, not left pointing at the old pod."""
    script = tmp_path / "udp_echo.py"
    script.write_text(UDP_ECHO)
    old, new = lab.nodes[1].pods[1], lab.nodes[2].pods[1]
    for pod in (old, new):
        proc = subprocess.Popen(["ip", "netns", "exec", pod.netns, sys.executable, str(script), str(port + 3),
                                 pod.name], stdout=subprocess.PIPE, text=True)
        lab.processes.append(proc)
        assert proc.stdout.readline().strip() == "ready"
    svc = {"metadata": {"namespace": "default", "name": "udp-move"},
           "spec": {"clusterIP": "10.213.32.55", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}

    def backend(pod) -> dict:  # noqa: ANN001
        return {"subsets": [{"addresses": [{"ip": pod.ip}], "ports": [{"name": "dns", "port": port + 3,
                                                                       "protocol": "UDP"}]}]}

    client, src_port = lab.nodes[0].pods[1], port + 4
    lab.program_services([svc], {"default/udp-move": backend(old)})
    assert netns.run_in(client.path, _udp_ask_from, src_port, "10.213.32.55", 53) == old.name
    lab.program_services([svc], {"default/udp-move": backend(new)})
    assert netns.run_in(client.path, _udp_ask_from, src_port, "10.213.32.55", 53) == new.name
