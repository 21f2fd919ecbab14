"""The lab's wiring in the kernel: a bridge in the host, one network namespace per node.

    host:  bridge ketch-<lab>-br  <gateway>/<len>   (the apiserver listens here)
           veth   ketch-<lab>v<i> (port of the bridge)
    node:  netns  ketch-<lab>-n<i>: lo, eth0 <.10+i>/<len>   (peer of ketch-<lab>v<i>)

Nodes get no default route and the host no forwarding or NAT for the lab:
nothing of the lab is routed out of the machine. Every step is idempotent,
so `ketch up` repairs a half-made lab.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess

from ketch.lab.api import LabError
from ketch.lab.components import LabSettings


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _link_names() -> list[str]:
    out = ip("-j", "link", "show").stdout
    return [link["ifname"] for link in json.loads(out or "[]")]


def _netns_names() -> list[str]:
    out = ip("-j", "netns", "list", check=False).stdout
    return [ns["name"] for ns in json.loads(out or "[]")] if out.strip() else []


def lab_netns(settings: LabSettings) -> list[str]:
    pattern = re.compile(rf"^ketch-{settings.name}-n\d+$")
    return [n for n in _netns_names() if pattern.match(n)]


def lab_links(settings: LabSettings) -> list[str]:
    pattern = re.compile(rf"^(ketch-{settings.name}-br|ketch-{settings.name}v\d+)$")
    return [n for n in _link_names() if pattern.match(n)]


def _has_address(args: list[str], address: str) -> bool:
    out = ip("-j", *args).stdout
    return any(a.get("local") == address for link in json.loads(out or "[]") for a in link.get("addr_info", []))


def subnet_user(subnet: str, *, besides: str = "") -> str | None:
    """The host link (other than `besides`) with an address overlapping `subnet`, if any."""
    wanted = ipaddress.ip_network(subnet, strict=False)
    for link in json.loads(ip("-j", "addr", "show").stdout or "[]"):
        if link.get("ifname") == besides:
            continue
        for a in link.get("addr_info", []):
            if a.get("family") == "inet":
                net = ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False)
                if net.overlaps(wanted):
                    return f"{link['ifname']} ({a['local']}/{a['prefixlen']})"
    return None


def ensure_bridge(settings: LabSettings) -> None:
    br = settings.bridge
    other = subnet_user(settings.subnet, besides=br)
    if other is not None:
        raise LabError(f"the lab subnet {settings.subnet} is already used by {other} on this machine: "
                       "choose another with --subnet (e.g. 10.213.1.0/24)")
    if br not in _link_names():
        ip("link", "add", br, "type", "bridge")
    if not _has_address(["addr", "show", "dev", br], settings.gateway):
        ip("addr", "add", f"{settings.gateway}/{settings.prefixlen}", "dev", br)
    ip("link", "set", br, "up")


def ensure_node(settings: LabSettings, node: str) -> None:
    """The node's namespace, its eth0 on the lab bridge with its address, lo up."""
    ns, veth = settings.netns(node), settings.host_veth(node)
    if ns not in _netns_names():
        ip("netns", "add", ns)
    ip("-n", ns, "link", "set", "lo", "up")
    node_links = json.loads(ip("-n", ns, "-j", "link", "show").stdout or "[]")
    if "eth0" not in [link["ifname"] for link in node_links]:
        if veth in _link_names():  # half of an old pair
            ip("link", "delete", veth, check=False)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    ip("link", "set", veth, "master", settings.bridge, "up")
    address = settings.node_ip(node)
    if not _has_address(["-n", ns, "addr", "show", "dev", "eth0"], address):
        ip("-n", ns, "addr", "add", f"{address}/{settings.prefixlen}", "dev", "eth0")
    ip("-n", ns, "link", "set", "eth0", "up")


def ensure_network(settings: LabSettings) -> None:
    ensure_bridge(settings)
    for node in settings.node_names():
        ensure_node(settings, node)


def remove_network(settings: LabSettings) -> list[str]:
    """Delete every namespace and link of the lab (also of nodes beyond today's count)."""
    removed = []
    for ns in lab_netns(settings):
        ip("netns", "delete", ns, check=False)
        removed.append(f"netns {ns}")
    for link in lab_links(settings):
        ip("link", "delete", link, check=False)
        removed.append(f"link {link}")
    return removed
