"""The VXLAN overlay between nodes (flannel's vxlan backend, programmed with pyroute2).

Every node has one VXLAN device (VNI 1, learning off) whose own address is the
network address of its pod CIDR as a /32 (10.244.3.0/32 for 10.244.3.0/24),
and publishes the device's MAC and its underlay address as Node annotations.
For every other node it keeps three things on that device, all derived from
the Node objects:

- route  ``<peer podCIDR> via <peer .0> dev <vxlan> onlink``
- neighbour ``<peer .0> lladdr <peer VTEP MAC>`` (permanent: no ARP over the overlay)
- FDB entry ``<peer VTEP MAC> dst <peer node IP>`` (where to send the UDP packet)

Reconciliation is level-triggered: desired state is computed from plain Node
dicts (``desired_peers``), compared with what the device carries and the
difference fixed. Only routes, neighbours and FDB entries on our own device
are ever read or changed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

log = logging.getLogger("ketch.node_agent.overlay")

VTEP_MAC_ANNOTATION = "ketch.io/vtep-mac"
PUBLIC_IP_ANNOTATION = "ketch.io/public-ip"
DEFAULT_DEVICE = "ketch-vxlan"
DEFAULT_VNI = 1
DEFAULT_PORT = 8472
VXLAN_OVERHEAD = 50
RTNH_F_ONLINK = 4
NUD_PERMANENT = 0x80
AF_BRIDGE = 7


class OverlayError(Exception):
    """A netlink step of the overlay failed; the message names the device and the step."""


@dataclass(frozen=True)
class Peer:
    """Another node as the overlay needs it."""

    name: str
    pod_cidr: str
    vtep_ip: str
    vtep_mac: str
    node_ip: str


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def vtep_address(pod_cidr: str) -> str:
    """The network address of the pod CIDR: the node's own overlay address (as flannel)."""
    return str(ipaddress.IPv4Network(pod_cidr, strict=False).network_address)


def node_ip(node: dict) -> str:
    """The annotation the agent published, else the Node's InternalIP."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    if annotations.get(PUBLIC_IP_ANNOTATION):
        return annotations[PUBLIC_IP_ANNOTATION]
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == "InternalIP":
            return addr.get("address", "")
    return ""


def _normal_mac(mac: str) -> str:
    parts = mac.strip().lower().split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise ValueError(f"bad MAC {mac!r}")
    return ":".join(parts)


def desired_peers(nodes: Iterable[dict], self_name: str) -> list[Peer]:
    """Peers to program: every other node with a pod CIDR, a VTEP MAC and an address."""
    peers = []
    for node in nodes:
        meta = node.get("metadata") or {}
        name = meta.get("name", "")
        if name == self_name or meta.get("deletionTimestamp"):
            continue
        cidr = (node.get("spec") or {}).get("podCIDR") or ""
        mac = (meta.get("annotations") or {}).get(VTEP_MAC_ANNOTATION) or ""
        ip = node_ip(node)
        if not (cidr and mac and ip):
            continue
        try:
            net = ipaddress.IPv4Network(cidr, strict=False)
            ipaddress.IPv4Address(ip)
            mac = _normal_mac(mac)
        except ValueError as exc:
            log.warning("overlay skips node=%s: %s", name, exc)
            continue
        peers.append(Peer(name, str(net), str(net.network_address), mac, ip))
    return sorted(peers, key=lambda p: p.name)


# ---------------------------------------------------------------- netlink --
# Everything below works in the calling thread's network namespace.

def _iproute():
    from pyroute2 import IPRoute

    return IPRoute()


def _index(ipr, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def underlay_mtu(local_ip: str) -> int:
    """MTU of the link that holds local_ip (1500 when it cannot be found)."""
    with _iproute() as ipr:
        for addr in ipr.get_addr(family=socket.AF_INET):
            if addr.get_attr("IFA_ADDRESS") == local_ip:
                link = ipr.get_links(addr["index"])[0]
                return int(link.get_attr("IFLA_MTU") or 1500)
    return 1500


def ensure_device(name: str, *, local_ip: str, address: str, mtu: int, vni: int = DEFAULT_VNI,
                  port: int = DEFAULT_PORT) -> str:
    """Create (or fix) the VXLAN device, its /32 address and MTU; return its MAC."""
    with _iproute() as ipr:
        idx = _index(ipr, name)
        if idx is not None:
            link = ipr.get_links(idx)[0]
            info = link.get_attr("IFLA_LINKINFO")
            data = info.get_attr("IFLA_INFO_DATA") if info else None
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            same = (kind == "vxlan" and data is not None and data.get_attr("IFLA_VXLAN_ID") == vni
                    and data.get_attr("IFLA_VXLAN_LOCAL") == local_ip
                    and data.get_attr("IFLA_VXLAN_PORT") == port)
            if not same:
                log.info("overlay device=%s has other settings: recreating it", name)
                ipr.link("del", index=idx)
                idx = None
        if idx is None:
            try:
                ipr.link("add", ifname=name, kind="vxlan", vxlan_id=vni, vxlan_local=local_ip,
                         vxlan_port=port, vxlan_learning=0)
            except Exception as exc:
                raise OverlayError(f"creating VXLAN device {name} (vni {vni}, local {local_ip}, "
                                   f"port {port}): {exc}") from exc
            idx = _index(ipr, name)
        present = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=2)}
        for addr, plen in present - {(address, 32)}:
            ipr.addr("del", index=idx, address=addr, prefixlen=plen)
        if (address, 32) not in present:
            ipr.addr("add", index=idx, address=address, prefixlen=32)
        ipr.link("set", index=idx, mtu=mtu, state="up")
        return ipr.get_links(idx)[0].get_attr("IFLA_ADDRESS")


def set_mtu(name: str, mtu: int) -> bool:
    """Set a link's MTU (the pod bridge follows the overlay's); False when the link is absent."""
    with _iproute() as ipr:
        idx = _index(ipr, name)
        if idx is None:
            return False
        ipr.link("set", index=idx, mtu=mtu)
        return True


def delete_device(name: str) -> bool:
    """Remove the device; its routes, neighbours and FDB entries go with it."""
    with _iproute() as ipr:
        idx = _index(ipr, name)
        if idx is None:
            return False
        ipr.link("del", index=idx)
        return True


def _current(ipr, idx: int) -> tuple[dict, dict, dict]:
    routes = {}
    for r in ipr.get_routes(family=socket.AF_INET, table=254):
        if r.get_attr("RTA_OIF") != idx or r["dst_len"] == 32 and r.get_attr("RTA_GATEWAY") is None:
            continue
        dst = r.get_attr("RTA_DST")
        if dst is None:
            continue
        routes[f"{dst}/{r['dst_len']}"] = r.get_attr("RTA_GATEWAY")
    neighbours = {}
    for n in ipr.get_neighbours(family=socket.AF_INET, ifindex=idx):
        if n["ifindex"] == idx and n["state"] & NUD_PERMANENT:
            neighbours[n.get_attr("NDA_DST")] = (n.get_attr("NDA_LLADDR") or "").lower()
    fdb = {}
    for n in ipr.get_neighbours(family=AF_BRIDGE, ifindex=idx):
        mac = (n.get_attr("NDA_LLADDR") or "").lower()
        if n["ifindex"] != idx or not mac or mac == "00:00:00:00:00:00":
            continue
        fdb[mac] = n.get_attr("NDA_DST")
    return routes, neighbours, fdb


def reconcile_peers(device: str, peers: list[Peer]) -> Changes:
    """Make the device's routes, neighbours and FDB entries exactly those of peers."""
    changes = Changes()
    with _iproute() as ipr:
        idx = _index(ipr, device)
        if idx is None:
            raise OverlayError(f"overlay device {device} does not exist: ensure_device first")
        routes, neighbours, fdb = _current(ipr, idx)
        want_routes = {p.pod_cidr: p.vtep_ip for p in peers}
        want_neigh = {p.vtep_ip: p.vtep_mac for p in peers}
        want_fdb = {p.vtep_mac: p.node_ip for p in peers}
        for dst, gw in routes.items():
            if want_routes.get(dst) != gw:
                net = ipaddress.IPv4Network(dst)
                ipr.route("del", dst=str(net.network_address), dst_len=net.prefixlen, oif=idx, table=254)
                changes.removed.append(f"route {dst}")
        for ip, mac in neighbours.items():
            if want_neigh.get(ip) != mac:
                ipr.neigh("del", dst=ip, lladdr=mac, ifindex=idx)
                changes.removed.append(f"neigh {ip}")
        for mac, dst in fdb.items():
            if want_fdb.get(mac) != dst:
                ipr.fdb("del", ifindex=idx, lladdr=mac, dst=dst)
                changes.removed.append(f"fdb {mac}")
        for mac, dst in want_fdb.items():
            if fdb.get(mac) != dst:
                ipr.fdb("append", ifindex=idx, lladdr=mac, dst=dst)
                changes.added.append(f"fdb {mac} dst {dst}")
        for ip, mac in want_neigh.items():
            if neighbours.get(ip) != mac:
                ipr.neigh("replace", dst=ip, lladdr=mac, ifindex=idx, state=NUD_PERMANENT)
                changes.added.append(f"neigh {ip} lladdr {mac}")
        for dst, gw in want_routes.items():
            if routes.get(dst) != gw:
                net = ipaddress.IPv4Network(dst)
                ipr.route("replace", dst=str(net.network_address), dst_len=net.prefixlen, gateway=gw,
                          oif=idx, flags=RTNH_F_ONLINK, table=254)
                changes.added.append(f"route {dst} via {gw}")
    return changes


@dataclass
class OverlayConfig:
    node_name: str
    node_ip: str
    device: str = DEFAULT_DEVICE
    vni: int = DEFAULT_VNI
    port: int = DEFAULT_PORT
    pod_bridge: str = "ketch-pods"
    mtu: int = 0  # 0: underlay MTU - 50


class Overlay:
    """The overlay of one node, driven by a Node informer.

    ``run_netlink(fn, *args)`` runs a blocking netlink function (default: in a
    worker thread of this process's namespace; tests pass one that enters a
    node namespace). ``client`` publishes the annotations (None: do not).
    """

    def __init__(self, config: OverlayConfig, nodes, client=None, *,  # noqa: ANN001
                 run_netlink: Callable | None = None, resync: float = 30.0) -> None:
        self.config = config
        self.nodes = nodes
        self.client = client
        self.resync = resync
        self.run_netlink = run_netlink or (lambda fn, *a, **kw: asyncio.to_thread(fn, *a, **kw))
        self.mac = ""
        self.pod_cidr = ""
        self.mtu = 0
        self._dirty = asyncio.Event()
        nodes.add_handler(on_add=self._mark, on_update=self._mark, on_delete=self._mark)

    def _mark(self, *_: object) -> None:
        self._dirty.set()

    def _own_node(self) -> dict | None:
        for node in self.nodes.store.list():
            if (node.get("metadata") or {}).get("name") == self.config.node_name:
                return node
        return None

    async def setup(self, pod_cidr: str) -> str:
        """Create the device for this pod CIDR, set the bridge MTU, publish the annotations."""
        cfg = self.config
        mtu = cfg.mtu or (await self.run_netlink(underlay_mtu, cfg.node_ip)) - VXLAN_OVERHEAD
        self.mac = await self.run_netlink(ensure_device, cfg.device, local_ip=cfg.node_ip,
                                          address=vtep_address(pod_cidr), mtu=mtu, vni=cfg.vni,
                                          port=cfg.port)
        self.pod_cidr, self.mtu = pod_cidr, mtu
        if cfg.pod_bridge and not await self.run_netlink(set_mtu, cfg.pod_bridge, mtu):
            log.info("overlay: pod bridge %s not there yet; its MTU is set on the next pass", cfg.pod_bridge)
        log.info("overlay device=%s mac=%s address=%s/32 mtu=%d", cfg.device, self.mac,
                 vtep_address(pod_cidr), mtu)
        await self.publish()
        return self.mac

    async def publish(self) -> None:
        if self.client is None:
            return
        from ketch.api.resources import lookup

        node = self._own_node() or {}
        annotations = (node.get("metadata") or {}).get("annotations") or {}
        want = {VTEP_MAC_ANNOTATION: self.mac, PUBLIC_IP_ANNOTATION: self.config.node_ip}
        if all(annotations.get(k) == v for k, v in want.items()):
            return
        await self.client.patch(lookup("", "v1", "nodes"), self.config.node_name,
                                {"metadata": {"annotations": want}})

    async def reconcile(self) -> Changes:
        """One level-triggered pass from the informer's store."""
        own = self._own_node()
        cidr = ((own or {}).get("spec") or {}).get("podCIDR") or ""
        if not cidr:
            return Changes()
        if cidr != self.pod_cidr or not self.mac:
            await self.setup(cidr)
        else:
            await self.publish()
            if self.config.pod_bridge:
                await self.run_netlink(set_mtu, self.config.pod_bridge, self.mtu)
        peers = desired_peers(self.nodes.store.list(), self.config.node_name)
        changes = await self.run_netlink(reconcile_peers, self.config.device, peers)
        if changes:
            log.info("overlay reconciled added=%s removed=%s", changes.added, changes.removed)
        return changes

    async def loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._dirty.wait(), self.resync)
            except TimeoutError:
                pass
            self._dirty.clear()
            try:
                await self.reconcile()
            except Exception as exc:  # keep reconciling: the next event or resync retries
                log.error("overlay reconcile failed: %r", exc)
                self.mac = ""  # set the device up again on the next pass (it may have been removed)
                await asyncio.sleep(1.0)
                self._dirty.set()

    async def run(self) -> None:
        task = asyncio.create_task(self.nodes.run())
        try:
            await self.nodes.wait_synced()
            self._dirty.set()
            await self.loop()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def remove(self) -> None:
        await self.run_netlink(delete_device, self.config.device)
