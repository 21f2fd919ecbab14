"""Named bridge networks of one machine: the default `bridge` and user networks.

State lives in files under `<state_dir>` (networks/<name>.json, one
endpoints/<owner>.json per attached sandbox, ipam/), so a daemon restart
restores the bridges and the nftables table exactly as they were. Calls block
(netlink, nft): the daemon runs them in a worker thread. One lock serialises
them, since the table is rendered from the whole state each time.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from node_agent.network import bridge, nft, portmap
from node_agent.network.ipam import SubnetAllocator

DEFAULT_NETWORK = "bridge"
#: network label: comma-separated CIDRs its traffic reaches unmasqueraded (the cluster's pod CIDR)
NO_MASQUERADE_LABEL = "ketch.io/no-masquerade-to"
#: "false": members get no /etc/hosts entries for each other (Docker-style names are a
#: user-network feature; a cluster's pod network has DNS, and rewriting every member's
#: hosts file on every join costs O(members) per pod).
PEER_HOSTS_LABEL = "ketch.io/peer-hosts"
BUILTIN = ("bridge", "host", "none")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")


class NetworkError(Exception):
    """A network request that cannot be done; the message says why and what to do."""


class NetworkNotFound(NetworkError):
    pass


class NetworkExists(NetworkError):
    pass


class NetworkInUse(NetworkError):
    pass


@dataclass
class NetworkRecord:
    name: str
    id: str
    bridge: str
    subnet: str
    gateway: str
    created_at: int
    labels: dict[str, str] = field(default_factory=dict)
    builtin: bool = False


@dataclass
class Interface:
    network: str
    ifname: str
    host_ifname: str
    ip: str
    prefix_length: int
    gateway: str
    mac_address: str


@dataclass
class Endpoint:
    """One sandbox's place on the networks: its interfaces and published ports."""

    owner: str
    name: str
    netns: str
    interfaces: list[Interface] = field(default_factory=list)
    ports: list[portmap.PortMapping] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)

    @property
    def primary_ip(self) -> str:
        return self.interfaces[0].ip if self.interfaces else ""

    @classmethod
    def from_dict(cls, d: dict) -> Endpoint:
        return cls(
            owner=d["owner"], name=d["name"], netns=d["netns"],
            interfaces=[Interface(**i) for i in d.get("interfaces", [])],
            ports=[portmap.PortMapping(**p) for p in d.get("ports", [])],
            aliases=list(d.get("aliases", [])),
        )


class Networks:
    """Bridges, addresses, NAT and published ports for the sandboxes of one daemon."""

    def __init__(
        self,
        state_dir: Path,
        *,
        link_prefix: str = "ketch",
        default_subnet: str = "10.88.0.0/16",
        pool: str = "10.89.0.0/16",
        pool_prefix: int = 24,
        nft_table: str = "ketch_runtime",
        ip_forward: bool = True,
    ) -> None:
        self.state_dir = state_dir
        self.link_prefix = link_prefix
        self.default_subnet = default_subnet
        self.pool = ipaddress.IPv4Network(pool)
        self.pool_prefix = pool_prefix
        self.nft_table = nft_table
        self.ip_forward = ip_forward
        self._lock = threading.RLock()
        for sub in ("networks", "endpoints", "ipam"):
            (state_dir / sub).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------- records --

    def _net_path(self, name: str) -> Path:
        return self.state_dir / "networks" / f"{name}.json"

    def _ep_path(self, owner: str) -> Path:
        return self.state_dir / "endpoints" / f"{owner}.json"

    @staticmethod
    def _write(path: Path, data: dict) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def get(self, name: str) -> NetworkRecord:
        if name in ("", DEFAULT_NETWORK):
            name = DEFAULT_NETWORK
        try:
            return NetworkRecord(**json.loads(self._net_path(name).read_text()))
        except FileNotFoundError:
            raise NetworkNotFound(f"network {name!r} not found: see `ketch runtime network ls`") from None

    def list(self) -> list[NetworkRecord]:
        out = []
        for path in sorted((self.state_dir / "networks").glob("*.json")):
            out.append(NetworkRecord(**json.loads(path.read_text())))
        return out

    def endpoints(self) -> list[Endpoint]:
        out = []
        for path in sorted((self.state_dir / "endpoints").glob("*.json")):
            try:
                out.append(Endpoint.from_dict(json.loads(path.read_text())))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

    def endpoint(self, owner: str) -> Endpoint | None:
        try:
            return Endpoint.from_dict(json.loads(self._ep_path(owner).read_text()))
        except FileNotFoundError:
            return None

    def _save_endpoint(self, ep: Endpoint) -> None:
        self._write(self._ep_path(ep.owner), asdict(ep))

    def ipam(self, record: NetworkRecord) -> SubnetAllocator:
        return SubnetAllocator(self.state_dir / "ipam", record.subnet, gateway=record.gateway)

    def bridge_name(self, name: str) -> str:
        if name == DEFAULT_NETWORK:
            return f"{self.link_prefix}0"
        direct = f"{self.link_prefix}-{name}"
        if len(direct) <= bridge.MAX_IFNAME:
            return direct
        token = uuid.uuid5(uuid.NAMESPACE_DNS, name).hex
        return bridge.veth_name(self.link_prefix, "b", token)

    # ------------------------------------------------------------ lifecycle --

    def restore(self) -> None:
        """At daemon start: the default network exists, every bridge is up, the table is current."""
        with self._lock:
            try:
                self.get(DEFAULT_NETWORK)
            except NetworkNotFound:
                self._create_record(DEFAULT_NETWORK, self.default_subnet, None, {}, builtin=True)
            for record in self.list():
                self._ensure_bridge(record)
            self._apply_table()

    def _ensure_bridge(self, record: NetworkRecord) -> None:
        prefix = ipaddress.IPv4Network(record.subnet).prefixlen
        bridge.ensure_bridge(record.bridge, record.gateway, prefix)
        if self.ip_forward:
            self._enable_forwarding()

    def _enable_forwarding(self) -> None:
        """Egress and published ports need forwarding; remember what it was, once."""
        marker = self.state_dir / "ip_forward.previous"
        previous = bridge.set_sysctl("net/ipv4/ip_forward", "1")
        if previous is not None and not marker.exists():
            marker.write_text(previous)

    def restore_forwarding(self) -> None:
        """Put net.ipv4.ip_forward back as it was before Ketch (used by teardown)."""
        marker = self.state_dir / "ip_forward.previous"
        if marker.exists():
            bridge.set_sysctl("net/ipv4/ip_forward", marker.read_text().strip())
            marker.unlink()

    def _create_record(self, name: str, subnet: str, gateway: str | None,
                       labels: dict[str, str], builtin: bool = False) -> NetworkRecord:
        net = ipaddress.IPv4Network(subnet, strict=False)
        gw = gateway or str(next(net.hosts()))
        record = NetworkRecord(
            name=name, id=uuid.uuid4().hex, bridge=self.bridge_name(name), subnet=str(net),
            gateway=gw, created_at=time.time_ns(), labels=dict(labels), builtin=builtin,
        )
        self.ipam(record)  # validates gateway against subnet
        self._write(self._net_path(name), asdict(record))
        return record

    def create(self, name: str, *, subnet: str = "", gateway: str = "",
               labels: dict[str, str] | None = None) -> NetworkRecord:
        if not _NAME.match(name):
            raise NetworkError(f"invalid network name {name!r}: letters, digits, '_', '.', '-'")
        if name in BUILTIN:
            raise NetworkExists(f"network {name!r} is built in")
        with self._lock:
            if self._net_path(name).exists():
                raise NetworkExists(f"network with name {name} already exists")
            taken = [ipaddress.IPv4Network(r.subnet) for r in self.list()]
            if subnet:
                try:
                    wanted = ipaddress.IPv4Network(subnet, strict=False)
                except ValueError as exc:
                    raise NetworkError(f"invalid subnet {subnet!r}: {exc}") from exc
                for t in taken:
                    if wanted.overlaps(t):
                        raise NetworkError(f"subnet {wanted} overlaps network with subnet {t}")
            else:
                wanted = self._free_subnet(taken)
            if gateway and ipaddress.IPv4Address(gateway) not in wanted:
                raise NetworkError(f"gateway {gateway} is not inside subnet {wanted}")
            bridge_name = self.bridge_name(name)
            if any(r.bridge == bridge_name for r in self.list()):
                raise NetworkExists(f"bridge name {bridge_name} is taken: choose another network name")
            record = self._create_record(name, str(wanted), gateway or None, labels or {})
            try:
                self._ensure_bridge(record)
                self._apply_table()
            except Exception:
                self._net_path(name).unlink(missing_ok=True)
                bridge.delete_link(record.bridge)
                raise
            return record

    def _free_subnet(self, taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
        prefix = max(self.pool_prefix, self.pool.prefixlen)
        for candidate in self.pool.subnets(new_prefix=prefix):
            if not any(candidate.overlaps(t) for t in taken):
                return candidate
        raise NetworkError(f"no free subnet left in the pool {self.pool}: give --subnet")

    def remove(self, name: str) -> None:
        with self._lock:
            record = self.get(name)
            if record.builtin or name in BUILTIN:
                raise NetworkError(f"{name} is a pre-defined network and cannot be removed")
            users = [ep.name or ep.owner for ep in self.endpoints()
                     if any(i.network == name for i in ep.interfaces)]
            if users:
                raise NetworkInUse(f"network {name} has active endpoints ({', '.join(users)}): "
                                   "remove or disconnect those containers first")
            bridge.delete_link(record.bridge)
            self.ipam(record).destroy()
            self._net_path(name).unlink(missing_ok=True)
            self._apply_table()

    def teardown(self) -> None:
        """Remove every bridge and the table (tests, `ketch down`); records stay unless deleted."""
        with self._lock:
            for ep in self.endpoints():
                for iface in ep.interfaces:
                    bridge.detach(iface.host_ifname)
            for record in self.list():
                bridge.delete_link(record.bridge)
            nft.delete_table(self.nft_table)
            self.restore_forwarding()

    # ------------------------------------------------------------ endpoints --

    def connect(self, owner: str, netns_path: str, network: str, *, name: str = "",
                aliases: list[str] | None = None) -> Interface:
        """Attach the sandbox to a network: eth0 for its first, eth1... for more."""
        with self._lock:
            record = self.get(network)
            ep = self.endpoint(owner) or Endpoint(owner=owner, name=name, netns=netns_path,
                                                  aliases=list(aliases or []))
            for iface in ep.interfaces:
                if iface.network == record.name:
                    raise NetworkExists(f"{name or owner} is already connected to network {record.name}")
            ifname = f"eth{len(ep.interfaces)}"
            alloc = self.ipam(record)
            address = alloc.allocate(owner)
            try:
                attached = bridge.attach(
                    record.bridge, netns_path,
                    host_ifname=bridge.veth_name(self.link_prefix),
                    address=str(address), prefix_length=alloc.prefix_length,
                    gateway=record.gateway, ifname=ifname,
                    default_route=not ep.interfaces,
                )
            except Exception:
                alloc.release(owner)
                raise
            iface = Interface(record.name, ifname, attached.host_ifname, str(address),
                              alloc.prefix_length, record.gateway, attached.mac_address)
            ep.interfaces.append(iface)
            self._save_endpoint(ep)
            return iface

    def rename(self, owner: str, name: str, aliases: list[str] | None = None) -> None:
        """The names an endpoint is known by (a warm sandbox taken by a named container)."""
        with self._lock:
            ep = self.endpoint(owner)
            if ep is None:
                return
            ep.name = name
            if aliases is not None:
                ep.aliases = list(aliases)
            self._save_endpoint(ep)

    def publish(self, owner: str, wanted: list[portmap.PortMapping]) -> list[portmap.PortMapping]:
        """Publish host ports to the sandbox's first address; returns them with host ports filled in."""
        if not wanted:
            return []
        with self._lock:
            ep = self.endpoint(owner)
            if ep is None or not ep.interfaces:
                raise NetworkError("ports can only be published for a container on a bridge network "
                                   "(not --network none or host)")
            taken = [p for other in self.endpoints() if other.owner != owner for p in other.ports]
            resolved = portmap.resolve(wanted, taken)
            ep.ports = resolved
            self._save_endpoint(ep)
            try:
                self._apply_table()
            except Exception:
                ep.ports = []
                self._save_endpoint(ep)
                raise
            return resolved

    def release(self, owner: str) -> None:
        """The sandbox is going away: veths, addresses and published ports go with it."""
        with self._lock:
            ep = self.endpoint(owner)
            if ep is None:
                return
            for iface in ep.interfaces:
                bridge.detach(iface.host_ifname)
                try:
                    self.ipam(self.get(iface.network)).release(owner)
                except NetworkNotFound:
                    pass
            self._ep_path(owner).unlink(missing_ok=True)
            if ep.ports:
                self._apply_table()

    def prune(self, live_owners: set[str]) -> list[str]:
        """Release endpoints whose sandboxes no longer exist (after a crash)."""
        gone = [ep.owner for ep in self.endpoints() if ep.owner not in live_owners]
        for owner in gone:
            self.release(owner)
        return gone

    def writes_peer_hosts(self, network: str) -> bool:
        """Whether members of ``network`` find each other by name in /etc/hosts."""
        if network == "bridge":  # like Docker: names resolve on user networks only
            return False
        try:
            return self.get(network).labels.get(PEER_HOSTS_LABEL, "true") != "false"
        except NetworkNotFound:
            return False

    def peers(self, network: str) -> list[tuple[str, list[str]]]:
        """(ip, names) of every endpoint on the network, for /etc/hosts."""
        out = []
        for ep in self.endpoints():
            for iface in ep.interfaces:
                if iface.network == network:
                    names = [n for n in [ep.name, *ep.aliases] if n]
                    out.append((iface.ip, names))
        return out

    def _apply_table(self) -> None:
        records = self.list()
        nets = [nft.NatNetwork(r.bridge, r.subnet, tuple(c.strip() for c in
                                                         r.labels.get(NO_MASQUERADE_LABEL, "").split(",") if c.strip()))
                for r in records]
        rules = []
        for ep in self.endpoints():
            if not ep.interfaces:
                continue
            for p in ep.ports:
                rules.append(nft.PortRule(p.protocol, p.host_port, ep.primary_ip,
                                          p.container_port, p.host_ip))
        nft.apply(nft.render(self.nft_table, nets, rules))
