"""A miniature multi-node lab in network namespaces, for the cluster-network tests and the bench.

    (<rid> is the test run id plus an optional tag, so two labs can coexist)
    lab netns  ketch<rid>L : bridge k<rid>lab 10.213.60.1/24
    node netns ketch<rid>n<i> : eth0 10.213.60.1<i>/24 (veth to the lab bridge),
                                no default route (as `ketch up`'s lab), ip_forward on,
                                pod bridge ketch-pods 10.213.(64+i).1/24,
                                route for the service CIDR 10.213.32.0/20 on it
    pod netns  ketch<rid>p<i><j> : eth0 10.213.(64+i).(10+j)/24 on the node's bridge

Node namespaces also get the runtime's own table (ketch_runtime, egress
masquerade of the pod subnet) so the tests see the same NAT a real node has.
Every address is in 10.213.0.0/16, unused on this machine; nothing is routed
out of the namespaces. ``down()`` kills the processes it started (by PID) and
deletes every namespace, which takes links, routes and tables with it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from node_agent.network import bridge, hairpin, netns, nft, overlay, service_rules
from node_agent.network.service_proxy import ServiceProxy, ensure_service_route, run_nft

from ketch.informer import Store, object_key

LAB_NET = "10.213.60"
CLUSTER_CIDR = "10.213.64.0/18"
POD_BRIDGE = "ketch-pods"
SERVICE_CIDR = "10.213.32.0/20"
TABLE = "ketch_services"

SERVER = r'''
import socket, sys, threading
port, name = int(sys.argv[1]), sys.argv[2]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(128)
print("ready", flush=True)
def serve(conn, peer):
    with conn:
        conn.sendall(f"{name} {peer[0]}\n".encode())
while True:
    conn, peer = srv.accept()
    threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
'''


def sh(*args: str, check: bool = True, timeout: float = 15) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")
    return proc


@dataclass
class Node:
    index: int
    netns: str
    ip: str
    pod_cidr: str
    gateway: str
    mac: str = ""
    pods: list[Pod] = field(default_factory=list)
    name: str = ""

    @property
    def path(self) -> str:
        return netns.netns_path(self.netns)

    def as_object(self) -> dict:
        """The Node object the apiserver would hold, with what the agent publishes."""
        return {"metadata": {"name": self.name, "annotations": {overlay.VTEP_MAC_ANNOTATION: self.mac,
                                                                 overlay.PUBLIC_IP_ANNOTATION: self.ip}},
                "spec": {"podCIDR": self.pod_cidr},
                "status": {"addresses": [{"type": "InternalIP", "address": self.ip}]}}


@dataclass
class Pod:
    name: str
    netns: str
    ip: str
    node: Node

    @property
    def path(self) -> str:
        return netns.netns_path(self.netns)


class StaticSource:
    """The part of an informer the proxy uses (a store, handlers), filled by the test."""

    def __init__(self) -> None:
        self.store = Store()

    def add_handler(self, **_: object) -> None:
        pass

    def set(self, objects: list[dict]) -> None:
        self.store = Store()
        for obj in objects:
            self.store.put(object_key(obj), obj)


class Lab:
    def __init__(self, run_id: str, work: Path, *, nodes: int = 3, pods_per_node: int = 2,
                 tag: str = "", node_prefix: str = "node", pod_mtu: int | None = None) -> None:
        self.rid = run_id + tag
        self.node_prefix = node_prefix
        self.pod_mtu = pod_mtu  # None: the runtime's default (1500), as bridge.attach gives today
        self.work = work
        self.lab_ns = f"ketch{run_id}L"
        self.lab_bridge = f"k{run_id}lab"
        self.node_count = nodes
        self.pods_per_node = pods_per_node
        self.nodes: list[Node] = []
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.proxies: dict[str, ServiceProxy] = {}
        self.server_script = work / "lab_server.py"

    # ---------------------------------------------------------- building --

    def _add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def up(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        return self

    def _build(self) -> None:
        self.server_script.write_text(SERVER)
        self._add_ns(self.lab_ns)
        sh("ip", "-n", self.lab_ns, "link", "add", self.lab_bridge, "type", "bridge")
        sh("ip", "-n", self.lab_ns, "addr", "add", f"{LAB_NET}.1/24", "dev", self.lab_bridge)
        sh("ip", "-n", self.lab_ns, "link", "set", self.lab_bridge, "up")
        for i in range(1, self.node_count + 1):
            node = Node(i, f"ketch{self.rid}n{i}", f"{LAB_NET}.{10 + i}", f"10.213.{64 + i}.0/24",
                        f"10.213.{64 + i}.1", name=f"{self.node_prefix}{i}")
            self._add_ns(node.netns)
            outer = f"k{self.rid}n{i}"
            sh("ip", "link", "add", outer, "netns", self.lab_ns, "type", "veth",
               "peer", "name", "eth0", "netns", node.netns)
            sh("ip", "-n", self.lab_ns, "link", "set", outer, "master", self.lab_bridge, "up")
            sh("ip", "-n", node.netns, "addr", "add", f"{node.ip}/24", "dev", "eth0")
            sh("ip", "-n", node.netns, "link", "set", "eth0", "up")
            netns.run_in(node.path, bridge.set_sysctl, "net/ipv4/ip_forward", "1")
            netns.run_in(node.path, bridge.ensure_bridge, POD_BRIDGE, node.gateway, 24)
            netns.run_in(node.path, ensure_service_route, SERVICE_CIDR, POD_BRIDGE)  # as ClusterNetwork does
            run_nft(nft.render("ketch_runtime", [nft.NatNetwork(POD_BRIDGE, node.pod_cidr)], []),
                    self.nft(node))
            for j in range(self.pods_per_node):
                pod = Pod(f"pod{i}{j}", f"ketch{self.rid}p{i}{j}", f"10.213.{64 + i}.{10 + j}", node)
                self._add_ns(pod.netns)
                netns.run_in(node.path, bridge.attach, POD_BRIDGE, pod.path,
                             host_ifname=bridge.veth_name("ketch", "v"), address=pod.ip,
                             prefix_length=24, gateway=node.gateway, mtu=self.pod_mtu)
                node.pods.append(pod)
            netns.run_in(node.path, hairpin.ensure_hairpin, POD_BRIDGE)  # as ClusterNetwork does
            self.nodes.append(node)

    def down(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.processes.clear()
        for name in reversed(self.namespaces):
            sh("ip", "netns", "delete", name, check=False)
        self.namespaces.clear()

    # ----------------------------------------------------------- overlay --

    def overlay_up(self, node: Node) -> str:
        mtu = netns.run_in(node.path, overlay.underlay_mtu, node.ip) - overlay.VXLAN_OVERHEAD
        node.mac = netns.run_in(node.path, overlay.ensure_device, overlay.DEFAULT_DEVICE, local_ip=node.ip,
                                address=overlay.vtep_address(node.pod_cidr), mtu=mtu)
        netns.run_in(node.path, overlay.set_mtu, POD_BRIDGE, mtu)
        return node.mac

    def reconcile(self, node: Node, node_objects: list[dict]) -> overlay.Changes:
        peers = overlay.desired_peers(node_objects, node.name)
        return netns.run_in(node.path, overlay.reconcile_peers, overlay.DEFAULT_DEVICE, peers)

    def overlay_all(self) -> None:
        for node in self.nodes:
            self.overlay_up(node)
        objects = [n.as_object() for n in self.nodes]
        for node in self.nodes:
            self.reconcile(node, objects)

    # ------------------------------------------------------------- proxy --

    def nft(self, node: Node) -> list[str]:
        return ["ip", "netns", "exec", node.netns, "nft"]

    def settings(self) -> service_rules.ProxySettings:
        return service_rules.ProxySettings(table=TABLE, pod_bridge=POD_BRIDGE, pod_cidr=CLUSTER_CIDR,
                                           cluster_cidr=CLUSTER_CIDR)

    def proxy(self, node: Node) -> ServiceProxy:
        """The node's ServiceProxy, fed from plain objects instead of informers."""
        if node.name not in self.proxies:
            self.proxies[node.name] = ServiceProxy(StaticSource(), StaticSource(), self.settings(),
                                                   nft_command=self.nft(node), netns=node.netns)
        return self.proxies[node.name]

    def program_services(self, services: list[dict], endpoints: dict[str, dict]) -> list:
        """What every node's proxy does on an event: render all Services and apply them (delta or swap)."""
        timings = []
        eps = []
        for key, ep in endpoints.items():
            ns, name = key.split("/")
            eps.append({**ep, "metadata": {"namespace": ns, "name": name}})
        for node in self.nodes:
            proxy = self.proxy(node)
            proxy.services.set(services)
            proxy.endpoints.set(eps)
            timings.append(proxy.sync_once())
        return timings

    def table(self, node: Node) -> str:
        return sh(*self.nft(node), "list", "table", "ip", TABLE).stdout

    # ----------------------------------------------------------- traffic --

    def serve(self, ns: str, port: int, name: str) -> subprocess.Popen:
        """A TCP listener in ns that answers '<name> <peer ip>' to each connection."""
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, str(self.server_script),
                                 str(port), name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.processes.append(proc)
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"listener {name} in {ns} did not start: {proc.stderr.read()[:500]}")
        return proc

    def connect(self, ns: str, ip: str, port: int, timeout: float = 2.0) -> str:
        """Connect from inside ns and return the listener's line."""
        return netns.run_in(netns.netns_path(ns), _exchange, ip, port, timeout)


def _exchange(ip: str, port: int, timeout: float) -> str:
    with socket.create_connection((ip, port), timeout=timeout) as conn:
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
    return data.decode().strip()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
