"""Networks in real namespaces: a test netns plays the host, others play sandboxes.

Everything lives inside namespaces this test creates (named ketch<runid>...),
so the machine's own links, sysctls and firewall are never touched; deleting
the namespaces at teardown removes bridges, veths and the nftables table.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from node_agent.network import netns, nft, portmap
from node_agent.network.networks import NetworkInUse, Networks

BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="busybox-static is not installed")


def sh(*args: str, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=timeout)


@pytest.fixture
def host_ns(run_id: str) -> Iterator[str]:
    name = f"ketch{run_id}h"
    sh("ip", "netns", "add", name)
    sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
    try:
        yield name
    finally:
        sh("ip", "netns", "delete", name, check=False)


@pytest.fixture
def sandboxes(run_id: str) -> Iterator[list[str]]:
    """Three empty namespaces standing for pod sandboxes."""
    names = [f"ketch{run_id}s{i}" for i in range(3)]
    for name in names:
        sh("ip", "netns", "add", name)
    try:
        yield names
    finally:
        for name in names:
            sh("ip", "netns", "delete", name, check=False)


@pytest.fixture
def networks(tmp_path: Path, run_id: str, host_ns: str) -> Networks:
    nets = Networks(tmp_path / "net", link_prefix=f"ketch{run_id}",
                    default_subnet="10.213.41.0/24", pool="10.213.42.0/24", pool_prefix=26,
                    nft_table=f"ketch_runtime_{run_id}")
    netns.run_in(netns.netns_path(host_ns), nets.restore)
    return nets


def http_get(host: str, port: int) -> str:
    """A tiny HTTP/1.0 GET over a socket made in the calling thread's netns."""
    with socket.create_connection((host, port), timeout=2) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0]:
        raise OSError(f"unexpected answer {head[:80]!r}")
    return body.decode()


def in_host(host_ns: str, fn, *args, **kwargs):
    return netns.run_in(netns.netns_path(host_ns), fn, *args, **kwargs)


def test_sandboxes_on_the_default_bridge_reach_each_other_and_the_gateway(
        networks: Networks, host_ns: str, sandboxes: list[str]) -> None:
    a = in_host(host_ns, networks.connect, "a", netns.netns_path(sandboxes[0]), "bridge", name="a")
    b = in_host(host_ns, networks.connect, "b", netns.netns_path(sandboxes[1]), "bridge", name="b")
    assert a.ip != b.ip and a.ifname == "eth0"
    out = sh("ip", "netns", "exec", sandboxes[0], "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert f"{a.ip}/24" in out
    route = sh("ip", "netns", "exec", sandboxes[0], "ip", "route").stdout
    assert "default via 10.213.41.1 dev eth0" in route
    sh("ip", "netns", "exec", sandboxes[0], BUSYBOX, "ping", "-c1", "-W2", b.ip)
    sh("ip", "netns", "exec", sandboxes[1], BUSYBOX, "ping", "-c1", "-W2", "10.213.41.1")
    # released: the veth is gone and the address free again
    in_host(host_ns, networks.release, "b")
    assert networks.endpoint("b") is None
    assert b.ip not in networks.ipam(networks.get("bridge")).allocations()
    assert sh("ip", "netns", "exec", sandboxes[1], "ip", "link", "show", "eth0", check=False).returncode != 0


def test_published_port_answers_on_host_loopback(networks: Networks, host_ns: str,
                                                 sandboxes: list[str], tmp_path: Path) -> None:
    web = tmp_path / "www"
    web.mkdir()
    (web / "index.html").write_text("hello from the sandbox\n")
    in_host(host_ns, networks.connect, "web", netns.netns_path(sandboxes[0]), "bridge", name="web")
    host_port = in_host(host_ns, portmap.free_port)
    published = in_host(host_ns, networks.publish, "web", [portmap.PortMapping("tcp", 80, host_port)])
    assert published[0].host_port == host_port
    table = in_host(host_ns, nft.list_table, networks.nft_table)
    assert f"tcp dport {host_port}" in table
    server = subprocess.Popen(["ip", "netns", "exec", sandboxes[0], BUSYBOX, "httpd", "-f",
                               "-p", "80", "-h", str(web)])
    try:
        body = ""
        for _ in range(50):
            try:
                body = in_host(host_ns, http_get, "127.0.0.1", host_port)
                break
            except OSError:
                time.sleep(0.1)
        assert body == "hello from the sandbox\n"
        # a second container cannot take the same host port
        in_host(host_ns, networks.connect, "other", netns.netns_path(sandboxes[1]), "bridge")
        with pytest.raises(portmap.PortSpecError):
            in_host(host_ns, networks.publish, "other", [portmap.PortMapping("tcp", 80, host_port)])
        # restore() (a daemon restart) re-renders the same rules
        in_host(host_ns, networks.restore)
        assert f"tcp dport {host_port}" in in_host(host_ns, nft.list_table, networks.nft_table)
        in_host(host_ns, networks.release, "web")
        assert f"tcp dport {host_port}" not in in_host(host_ns, nft.list_table, networks.nft_table)
    finally:
        server.kill()
        server.wait()


def test_user_networks_are_isolated_from_each_other(networks: Networks, host_ns: str,
                                                    sandboxes: list[str]) -> None:
    blue = in_host(host_ns, networks.create, "blue")
    assert blue.subnet == "10.213.42.0/26"
    assert blue.bridge.startswith(networks.link_prefix)
    a = in_host(host_ns, networks.connect, "a", netns.netns_path(sandboxes[0]), "blue", name="a")
    b = in_host(host_ns, networks.connect, "b", netns.netns_path(sandboxes[1]), "blue", name="b")
    c = in_host(host_ns, networks.connect, "c", netns.netns_path(sandboxes[2]), "bridge", name="c")
    sh("ip", "netns", "exec", sandboxes[0], BUSYBOX, "ping", "-c1", "-W2", b.ip)
    blocked = sh("ip", "netns", "exec", sandboxes[0], BUSYBOX, "ping", "-c1", "-W1", c.ip, check=False)
    assert blocked.returncode != 0, "a user network must not reach the default bridge"
    assert sorted(ip for ip, _ in networks.peers("blue")) == sorted([a.ip, b.ip])
    with pytest.raises(NetworkInUse):
        in_host(host_ns, networks.remove, "blue")
    in_host(host_ns, networks.release, "a")
    in_host(host_ns, networks.release, "b")
    in_host(host_ns, networks.remove, "blue")
    assert sh("ip", "netns", "exec", host_ns, "ip", "link", "show", blue.bridge,
              check=False).returncode != 0


def test_attach_takes_the_bridges_mtu_and_puts_the_port_in_hairpin_mode(
        host_ns: str, sandboxes: list[str], run_id: str) -> None:
    from node_agent.network import bridge

    pod_bridge = f"ketch{run_id}pb"
    in_host(host_ns, bridge.ensure_bridge, pod_bridge, "10.213.43.1", 24, mtu=1450)
    host_if = bridge.veth_name(f"ketch{run_id}", "p")
    in_host(host_ns, bridge.attach, pod_bridge, netns.netns_path(sandboxes[0]), host_ifname=host_if,
            address="10.213.43.2", prefix_length=24, gateway="10.213.43.1")
    inside = sh("ip", "netns", "exec", sandboxes[0], "ip", "-o", "link", "show", "eth0").stdout
    outside = sh("ip", "netns", "exec", host_ns, "ip", "-o", "link", "show", host_if).stdout
    assert " mtu 1450 " in inside and " mtu 1450 " in outside
    port = sh("ip", "netns", "exec", host_ns, "ip", "-d", "-o", "link", "show", host_if).stdout
    assert "hairpin on" in port
    # an explicit MTU still wins, and hairpin can be left off
    other = bridge.veth_name(f"ketch{run_id}", "q")
    in_host(host_ns, bridge.attach, pod_bridge, netns.netns_path(sandboxes[1]), host_ifname=other,
            address="10.213.43.3", prefix_length=24, gateway="10.213.43.1", mtu=1400, hairpin=False)
    detail = sh("ip", "netns", "exec", host_ns, "ip", "-d", "-o", "link", "show", other).stdout
    assert " mtu 1400 " in detail and "hairpin off" in detail
