"""ClusterNetwork: everything node-side of cluster networking, run by the node agent.

One object, three parts sharing three informers (Nodes, Services, Endpoints):

- the VXLAN overlay (``overlay.Overlay``) towards every other node;
- the service proxy (``service_proxy.ServiceProxy``) in Ketch's nftables table;
- hairpin mode on every port of the pod bridge (``hairpin``), checked every
  ``hairpin_interval`` seconds, so a pod reaches itself through its Service;
  with ``service_cidr``, a route for it on the pod bridge (the node's own
  processes reach ClusterIPs without a default route, see
  ``service_proxy.ensure_service_route``);
- optionally the cluster DNS server (``node_agent.dns``) on ``dns_address``.

Usage in the agent, after the pod network exists (or ``from_args`` with the
flags of ``add_flags``; docs/networking.md shows the main.py change)::

    net = ClusterNetwork(client, node_name, node_ip, pod_bridge=bridge, dns_address=gateway,
                         service_cidr="10.96.0.0/12")
    await net.run()          # until cancelled

Constructor arguments:

- ``client``: the agent's ``ketch.client.aio.AsyncClient`` (informers, and the
  patch of this Node's ``ketch.io/vtep-mac`` / ``ketch.io/public-ip``);
- ``node_name``, ``node_ip``: this Node and its underlay address (the VXLAN local IP);
- ``pod_bridge``: the runtime's bridge of the ``pods`` network (``ketch-pods``):
  its MTU follows the overlay's, hairpin traffic leaving it is masqueraded;
- ``cluster_cidr``: all pods' addresses (10.244.0.0/16): pod-to-pod traffic
  keeps its source address, hairpin masquerade applies to it;
- ``vxlan_device``, ``vxlan_port`` (8472), ``vni`` (1), ``mtu`` (0 = underlay − 50);
- ``services_table``: the nftables table (``ketch_services``);
- ``dns_address``: "" for no DNS server, else the address to serve on (port
  ``dns_port``), answering ``cluster_domain`` and forwarding the rest to the
  nameservers of ``upstream_resolv_conf``;
- ``service_cidr``: routed to the pod bridge so the node's own processes reach
  ClusterIPs ("" = no route);
- ``debounce`` (proxy), ``resync`` (overlay pass and proxy table check),
  ``hairpin_interval`` (hairpin and service route check), in seconds;
- ``cleanup``: on exit remove the table and the VXLAN device (``ketch down``);
- ``netns``: program another network namespace (an ``ip netns`` name or a
  path) while talking to the apiserver from this one: netlink calls enter it,
  nft runs under ``ip netns exec``, the DNS sockets are bound there (tests;
  the lab runs the agent inside the node namespace and leaves this empty).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from ketch.api.resources import lookup
from ketch.informer import Informer
from node_agent.dns.server import (
    DnsServer,
    ZoneFromInformers,
    bind_sockets,
    upstreams_from_resolv_conf,
)
from node_agent.network import hairpin, netns
from node_agent.network.overlay import (
    DEFAULT_DEVICE,
    DEFAULT_PORT,
    DEFAULT_VNI,
    Overlay,
    OverlayConfig,
)
from node_agent.network.service_proxy import ServiceProxy, ensure_service_route
from node_agent.network.service_rules import DEFAULT_TABLE, ProxySettings

log = logging.getLogger("ketch.node_agent.cluster_network")

NODES = lookup("", "v1", "nodes")
SERVICES = lookup("", "v1", "services")
ENDPOINTS = lookup("", "v1", "endpoints")


def _netlink_runner(namespace: str):  # noqa: ANN202
    """Blocking netlink work in a worker thread, inside ``namespace`` when one is given."""
    if not namespace:
        return None
    path = netns.netns_path(namespace)

    async def run(fn, *args, **kwargs):  # noqa: ANN001, ANN202
        return await asyncio.to_thread(netns.run_in, path, fn, *args, **kwargs)

    return run


class ClusterNetwork:
    def __init__(
        self,
        client,  # noqa: ANN001
        node_name: str,
        node_ip: str,
        *,
        pod_bridge: str = "ketch-pods",
        cluster_cidr: str = "10.244.0.0/16",
        vxlan_device: str = DEFAULT_DEVICE,
        vxlan_port: int = DEFAULT_PORT,
        vni: int = DEFAULT_VNI,
        mtu: int = 0,
        services_table: str = DEFAULT_TABLE,
        dns_address: str = "",
        dns_port: int = 53,
        cluster_domain: str = "cluster.local",
        upstream_resolv_conf: str = "/etc/resolv.conf",
        debounce: float = 0.1,
        resync: float = 30.0,
        cleanup: bool = False,
        netns: str = "",
        hairpin_interval: float = 1.0,
        service_cidr: str = "",
    ) -> None:
        self.client = client
        self.cleanup = cleanup
        self.netns = netns
        self.pod_bridge = pod_bridge
        self.hairpin_interval = hairpin_interval
        self.service_cidr = service_cidr
        self._run_netlink = _netlink_runner(netns) or (lambda fn, *a, **kw: asyncio.to_thread(fn, *a, **kw))
        self.nodes = Informer(client, NODES)
        self.services = Informer(client, SERVICES)
        self.endpoints = Informer(client, ENDPOINTS)
        self.overlay = Overlay(
            OverlayConfig(node_name=node_name, node_ip=node_ip, device=vxlan_device, vni=vni,
                          port=vxlan_port, pod_bridge=pod_bridge, mtu=mtu),
            self.nodes, client, resync=resync, run_netlink=self._run_netlink)
        self.proxy = ServiceProxy(
            self.services, self.endpoints,
            ProxySettings(table=services_table, pod_bridge=pod_bridge, pod_cidr=cluster_cidr,
                          cluster_cidr=cluster_cidr),
            debounce=debounce, check_interval=resync,
            nft_command=["ip", "netns", "exec", netns, "nft"] if netns else ["nft"], netns=netns)
        self.dns: DnsServer | None = None
        if dns_address:
            zone = ZoneFromInformers(self.services, self.endpoints, cluster_domain)
            upstreams = upstreams_from_resolv_conf(upstream_resolv_conf, exclude={dns_address})
            self.dns = DnsServer(zone.current, host=dns_address, port=dns_port, upstreams=upstreams)

    async def run(self) -> None:
        """Run until cancelled (informers, overlay, proxy, DNS); clean up if asked."""
        informers = [asyncio.create_task(i.run(), name=f"informer-{i.info.plural}")
                     for i in (self.nodes, self.services, self.endpoints)]
        dns_started = asyncio.Event()
        try:
            await asyncio.gather(*(i.wait_synced() for i in (self.nodes, self.services, self.endpoints)))
            self.overlay._mark()
            self.proxy._mark()
            await asyncio.gather(self.overlay.loop(), self.proxy.loop(), self.keep_hairpin(),
                                 self.start_dns(dns_started))
        finally:
            for task in informers:
                task.cancel()
            await asyncio.gather(*informers, return_exceptions=True)
            if self.dns is not None and dns_started.is_set():
                await self.dns.close()
            if self.cleanup:
                await self.remove()

    async def start_dns(self, started: asyncio.Event, retry: float = 2.0) -> None:
        """Bind the DNS server, retrying while its address is not there yet (the bridge comes later)."""
        if self.dns is None:
            return
        while True:
            try:
                sockets = None
                if self.netns:  # bind where the pods can reach it
                    sockets = await asyncio.to_thread(netns.run_in, netns.netns_path(self.netns),
                                                      bind_sockets, self.dns.host, self.dns.port)
                await self.dns.start(sockets)
                started.set()
                return
            except OSError as exc:
                log.warning("cluster DNS cannot listen on %s:%d yet: %s", self.dns.host, self.dns.port, exc)
                await asyncio.sleep(retry)

    async def keep_hairpin(self) -> None:
        """New pods get new bridge ports: put each in hairpin mode soon after it appears.

        The same pass keeps the service CIDR's route on the bridge (when asked),
        since the bridge may come and go with the runtime's pod network.
        """
        if not self.pod_bridge:
            return
        while True:
            try:
                changed = await self._run_netlink(hairpin.ensure_hairpin, self.pod_bridge)
                if changed:
                    log.info("hairpin mode on ports=%s", changed)
                if self.service_cidr and await self._run_netlink(
                        ensure_service_route, self.service_cidr, self.pod_bridge):
                    log.info("route for services %s on %s", self.service_cidr, self.pod_bridge)
            except Exception as exc:  # keep trying: the bridge may not exist yet
                log.warning("pod bridge check failed: %r", exc)
            await asyncio.sleep(self.hairpin_interval)

    async def remove(self) -> None:
        """Take out what this node programmed: the nftables table and the VXLAN device."""
        try:
            await asyncio.to_thread(self.proxy.remove)
        except Exception as exc:  # best effort on the way out
            log.warning("removing table failed: %r", exc)
        try:
            await self.overlay.remove()
        except Exception as exc:
            log.warning("removing overlay device failed: %r", exc)


# ------------------------------------------------------------ agent wiring --

def add_flags(parser: argparse.ArgumentParser) -> None:
    """The node agent's flags for cluster networking (it already has --cluster-dns, --cluster-domain)."""
    g = parser.add_argument_group("cluster network (overlay, service proxy, DNS)")
    g.add_argument("--cluster-network", action=argparse.BooleanOptionalAction, default=True,
                   help="run the VXLAN overlay, the service proxy and cluster DNS on this node")
    g.add_argument("--cluster-cidr", default="10.244.0.0/16",
                   help="all pods' addresses: pod-to-pod traffic keeps its source address")
    g.add_argument("--service-cidr", default="10.96.0.0/12",
                   help="the apiserver's --service-cluster-ip-range: routed to the pod bridge so the "
                        "node's own processes reach ClusterIPs ('' = no route)")
    g.add_argument("--vxlan-device", default=DEFAULT_DEVICE)
    g.add_argument("--vxlan-port", type=int, default=DEFAULT_PORT)
    g.add_argument("--services-table", default=DEFAULT_TABLE, help="the nftables table of the proxy")
    g.add_argument("--serve-dns", action=argparse.BooleanOptionalAction, default=True,
                   help="serve cluster DNS on the pod bridge gateway (pods get it as nameserver "
                        "unless --cluster-dns names others)")
    g.add_argument("--dns-port", type=int, default=53)
    g.add_argument("--upstream-resolv-conf", default="/etc/resolv.conf",
                   help="where the DNS server finds the resolvers for names outside the cluster")
    g.add_argument("--cleanup-network-on-exit", action="store_true",
                   help="remove the VXLAN device and the services table when the agent stops")


def cluster_dns_servers(args: argparse.Namespace, gateway: str) -> list[str]:
    """Pods' nameservers: --cluster-dns if given, else this node's own DNS server on the gateway."""
    explicit = [s for s in (getattr(args, "cluster_dns", "") or "").split(",") if s]
    if explicit:
        return explicit
    return [gateway] if args.cluster_network and args.serve_dns and gateway else []


def from_args(args: argparse.Namespace, client, node_name: str, node_ip: str, *,  # noqa: ANN001
              pod_bridge: str, gateway: str) -> ClusterNetwork | None:
    """The ClusterNetwork the flags describe (None with --no-cluster-network)."""
    if not args.cluster_network:
        return None
    return ClusterNetwork(
        client, node_name, node_ip, pod_bridge=pod_bridge, cluster_cidr=args.cluster_cidr,
        vxlan_device=args.vxlan_device, vxlan_port=args.vxlan_port, services_table=args.services_table,
        dns_address=gateway if args.serve_dns else "", dns_port=args.dns_port,
        cluster_domain=getattr(args, "cluster_domain", "cluster.local"),
        upstream_resolv_conf=args.upstream_resolv_conf, cleanup=args.cleanup_network_on_exit,
        service_cidr=args.service_cidr)
