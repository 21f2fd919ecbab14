"""The node's service proxy: Services + ready Endpoints -> one atomically swapped nftables table.

Level-triggered: every Service or Endpoints event only marks the proxy dirty;
a single loop waits a short debounce (so a rollout's burst of events costs one
swap), renders the whole table from the informers' stores and applies it in
one ``nft -f`` transaction: the first time (and whenever the fixed part
changes) as a whole-table swap, afterwards as the delta from what it applied
last (only the changed Services' chains and map elements), which is cheaper
at scale and keeps the other Services' session-affinity sets. An unchanged
rendering applies nothing; a periodic check swaps the table in again if
someone removed it.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from node_agent.network import service_rules
from node_agent.network.service_rules import ProxySettings, Rendered, Ruleset, UdpFlow

log = logging.getLogger("ketch.node_agent.service_proxy")


class ProxyError(Exception):
    """`nft` refused the rendered table; the message carries its complaint."""


@dataclass
class SwapTiming:
    render_seconds: float
    apply_seconds: float
    service_ports: int
    backends: int
    mode: str = "full"  # or "delta"


def run_nft(script: str, nft_command: Sequence[str] = ("nft",)) -> None:
    """One ``nft -f -`` transaction; all or nothing."""
    proc = subprocess.run([*nft_command, "-f", "-"], input=script.encode(), capture_output=True)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise ProxyError(f"nft -f failed: {err[:2000]}")


def table_exists(table: str, nft_command: Sequence[str] = ("nft",)) -> bool:
    proc = subprocess.run([*nft_command, "list", "chain", "ip", table, "services"], capture_output=True)
    return proc.returncode == 0


class ServiceProxy:
    """Program Services on this node.

    ``services`` / ``endpoints`` are informers (``ketch.informer.Informer``)
    or anything with ``.store.list()``, ``.add_handler`` and ``.run()``;
    ``nft_command`` lets tests run nft inside a namespace
    (``["ip", "netns", "exec", NS, "nft"]``), and ``netns`` (a name or path)
    is where conntrack entries of removed UDP backends are cleared.
    """

    def __init__(self, services, endpoints, settings: ProxySettings | None = None, *,  # noqa: ANN001
                 nft_command: Sequence[str] = ("nft",), debounce: float = 0.1,
                 check_interval: float = 30.0, netns: str = "") -> None:
        self.services = services
        self.endpoints = endpoints
        self.settings = settings or ProxySettings()
        self.nft_command = list(nft_command)
        self.debounce = debounce
        self.check_interval = check_interval
        self.last_ruleset: Ruleset | None = None
        self.last_udp_flows: frozenset[UdpFlow] = frozenset()
        self.netns = netns
        self.last_timing: SwapTiming | None = None
        self._parsed: dict[str, tuple[dict, dict | None, list]] = {}
        self.swaps = 0
        self._dirty = asyncio.Event()
        for informer in (services, endpoints):
            informer.add_handler(on_add=self._mark, on_update=self._mark, on_delete=self._mark)

    def _mark(self, *_: object) -> None:
        self._dirty.set()

    def _in_netns(self, fn, *args):  # noqa: ANN001, ANN202
        """Netlink work (conntrack) where the table is: this namespace, or ``netns`` when given."""
        if not self.netns:
            return fn(*args)
        from node_agent.network import netns as ns

        return ns.run_in(ns.netns_path(self.netns), fn, *args)

    def render(self) -> Rendered:
        """The whole table from the stores.

        A Service whose object and Endpoints object are the very ones of the
        last render (informer stores replace objects on every change) reuses
        its parsed ports, so one change at 1,000 Services parses one Service.
        """
        eps = {f"{(e.get('metadata') or {}).get('namespace', 'default')}/{e['metadata']['name']}": e
               for e in self.endpoints.store.list()}
        cache: dict[str, tuple[dict, dict | None, list]] = {}
        ports = []
        for svc in self.services.store.list():
            meta = svc.get("metadata") or {}
            key = f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"
            ep = eps.get(key)
            hit = self._parsed.get(key)
            if hit is not None and hit[0] is svc and hit[1] is ep:
                parsed = hit[2]
            else:
                parsed = service_rules.ports_of_service(svc, ep)
            cache[key] = (svc, ep, parsed)
            ports += parsed
        self._parsed = cache  # holds the objects, so identity checks stay sound
        return service_rules.render(service_rules.sort_ports(ports), self.settings)

    def sync_once(self, *, force: bool = False) -> SwapTiming | None:
        """Render; apply the change as a delta transaction, or swap the whole table. Blocking.

        None when nothing changed. A delta the kernel refuses falls back to
        the full swap, which is always correct on its own.
        """
        began = time.perf_counter()
        rendered = self.render()
        delta = None
        if self.last_ruleset is not None and not force:
            delta = rendered.ruleset.delta_script(self.last_ruleset)
            if delta == "":
                return None
        rendered_at = time.perf_counter()
        mode = "full"
        if delta is not None:
            try:
                run_nft(delta, self.nft_command)
                mode = "delta"
            except ProxyError as err:
                log.warning("service proxy delta refused, swapping the whole table: %s", err)
        if mode == "full":
            script = rendered.script
            rendered_at = time.perf_counter()
            run_nft(script, self.nft_command)
        done = time.perf_counter()
        gone = self.last_udp_flows - rendered.udp_flows
        self.last_udp_flows = rendered.udp_flows
        if gone:
            try:
                cleared = self._in_netns(flush_udp_conntrack, gone)
                log.info("service proxy cleared udp_conntrack_entries=%d for removed backends", cleared)
            except Exception as exc:  # stale entries then expire on their own (30 s for UDP)
                log.warning("service proxy could not clear UDP conntrack entries: %r", exc)
        self.last_ruleset = rendered.ruleset
        self.swaps += 1
        self.last_timing = SwapTiming(rendered_at - began, done - rendered_at,
                                      rendered.service_ports, rendered.backends, mode)
        log.info("service proxy applied mode=%s table=%s service_ports=%d backends=%d rejecting=%d "
                 "render_ms=%.1f apply_ms=%.1f", mode, self.settings.table, rendered.service_ports,
                 rendered.backends, rendered.rejecting, self.last_timing.render_seconds * 1000,
                 self.last_timing.apply_seconds * 1000)
        return self.last_timing

    async def run(self) -> None:
        """Run both informers and keep the table current until cancelled (the table stays: remove() takes it out)."""
        tasks = [asyncio.create_task(self.services.run()), asyncio.create_task(self.endpoints.run())]
        try:
            await asyncio.gather(self.services.wait_synced(), self.endpoints.wait_synced())
            self._dirty.set()
            await self.loop()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def loop(self) -> None:
        """The debounced sync loop alone (the informers run elsewhere)."""
        next_check = time.monotonic() + self.check_interval
        while True:
            try:
                await asyncio.wait_for(self._dirty.wait(), max(0.0, next_check - time.monotonic()))
            except TimeoutError:
                pass
            force = False
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + self.check_interval
                exists = await asyncio.to_thread(table_exists, self.settings.table, self.nft_command)
                force = not exists and self.last_ruleset is not None
                if force:
                    log.warning("service proxy table=%s is missing: re-applying", self.settings.table)
            if not self._dirty.is_set() and not force:
                continue
            await asyncio.sleep(self.debounce)
            self._dirty.clear()
            try:
                await asyncio.to_thread(self.sync_once, force=force)
            except (ProxyError, service_rules.RenderError) as err:
                log.error("service proxy sync failed: %s", err)
                await asyncio.sleep(1.0)
                self._dirty.set()

    def remove(self) -> None:
        """Delete the table (agent shutdown with cleanup, `ketch down`)."""
        run_nft(service_rules.delete_script(self.settings.table), self.nft_command)
        self.last_ruleset = None


def ensure_service_route(service_cidr: str, bridge: str) -> bool:
    """Route the service CIDR to the pod bridge, from the gateway address; True when it changed.

    Only the node's own processes need it: their connect() picks a route
    *before* the output hook DNATs the packet (then the kernel routes again
    towards the endpoint), so a ClusterIP needs some route. This one keeps the
    packets on the node (no default route is assumed), chooses the bridge
    gateway as source (which every pod can answer, local or across the
    overlay), and a Service without endpoints is rejected by the output hook
    before anything is sent. Pods need nothing: their packets are DNATed on
    arrival, before routing.
    """
    import ipaddress

    from pyroute2 import IPRoute

    net = ipaddress.IPv4Network(service_cidr)
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=bridge)
        if not found:
            return False
        idx = found[0]
        gateway = next((a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=idx, family=2)), None)
        if gateway is None:
            return False
        for r in ipr.get_routes(family=2, table=254):
            if (r.get_attr("RTA_DST") == str(net.network_address) and r["dst_len"] == net.prefixlen
                    and r.get_attr("RTA_OIF") == idx and r.get_attr("RTA_PREFSRC") == gateway):
                return False
        ipr.route("replace", dst=str(net.network_address), dst_len=net.prefixlen, oif=idx,
                  prefsrc=gateway, scope=253, table=254)
        return True


def flush_udp_conntrack(flows: Iterable[UdpFlow]) -> int:
    """Delete the conntrack entries DNATed along these (removed) UDP flows; how many went."""
    import socket

    from pyroute2 import Conntrack
    from pyroute2.conntrack import NFCTAttrTuple
    from pyroute2.netlink.exceptions import NetlinkError

    by_backend: dict[str, list[UdpFlow]] = {}
    for flow in flows:
        by_backend.setdefault(flow.backend_ip, []).append(flow)
    deleted = 0
    ct = Conntrack()
    try:
        entries = list(ct.dump_entries(tuple_orig=NFCTAttrTuple(proto=socket.IPPROTO_UDP)))
        for entry in entries:
            orig, reply = entry.tuple_orig, entry.tuple_reply
            for flow in by_backend.get(reply.saddr, ()):
                if orig.dport == flow.port and (orig.daddr == flow.address or not flow.address) \
                        and orig.daddr != reply.saddr:  # DNATed, not a direct pod-to-pod flow
                    try:
                        ct.delete(entry)
                        deleted += 1
                    except NetlinkError:  # expired meanwhile
                        pass
                    break
    finally:
        ct.close()
    return deleted
