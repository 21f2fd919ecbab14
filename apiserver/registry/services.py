"""Services: ClusterIP and NodePort allocation, as kube-apiserver's service REST does.

A new Service gets a free address of `--service-cluster-ip-range` (the range's first
host address stays free for the `kubernetes` service) unless it asks for one, is
headless (`clusterIP: None`) or is an ExternalName; NodePort and LoadBalancer ports
get a free node port of 30000-32767 unless they name one. An update that leaves them
out keeps the allocated values. "In use" is what the services watch cache holds plus
what this process handed out in the last minute (a create not yet seen by the cache).
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import random
from contextvars import ContextVar
from typing import Any

from apiserver.registry.generic import ResourceStore
from apiserver.storage.errors import FenceMoved
from apiserver.storage.etcd_store import Fence
from ketch.api import errors
from ketch.api.validation import FieldError

NODE_PORT_RANGE = (30000, 32767)
_FENCE_ATTEMPTS = 16
#: The fence of the create/update this task is running (see the module docstring).
_current_fence: ContextVar[Fence | None] = ContextVar("service_allocation_fence", default=None)


class ServiceStore(ResourceStore):
    service_cidr: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.ip_network("10.96.0.0/12")

    def configure(self, cidr: str) -> None:
        self.service_cidr = ipaddress.ip_network(cidr, strict=False)

    # --- what is in use ----------------------------------------------------------------

    def _used(self, exclude_key: str | None = None) -> tuple[set[str], set[int]]:
        """Addresses and node ports of the services in the cache (complete under the fence)."""
        ips: set[str] = set()
        ports: set[int] = set()
        items, _ = self.cache.list(self.prefix(None))
        for svc in items:
            if exclude_key is not None and self._key_of(svc) == exclude_key:
                continue
            spec = svc.get("spec") or {}
            for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
                if ip and ip != "None":
                    ips.add(ip)
            for port in spec.get("ports") or []:
                if port.get("nodePort"):
                    ports.add(int(port["nodePort"]))
        return ips, ports

    # --- allocation ----------------------------------------------------------------------

    def _pick_ip(self, used: set[str]) -> str:
        net = self.service_cidr
        first, size = int(net.network_address) + 2, net.num_addresses - 3  # skip network, .1, broadcast
        if size <= 0:
            raise errors.internal(f"the service range {net} has no free address")
        start = random.randrange(size)
        for offset in range(size):
            ip = str(ipaddress.ip_address(first + (start + offset) % size))
            if ip not in used:
                return ip
        raise errors.internal(f"the service range {net} is full")

    @staticmethod
    def _pick_port(used: set[int]) -> int:
        low, high = NODE_PORT_RANGE
        span = high - low + 1
        start = random.randrange(span)
        for offset in range(span):
            port = low + (start + offset) % span
            if port not in used:
                return port
        raise errors.internal("no free node port left in 30000-32767")

    def allocate(self, obj: dict, old: dict | None = None) -> None:
        """Fill clusterIP(s) and nodePorts in place; 422 for a taken or out-of-range request."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        name = obj["metadata"].get("name", "")
        key = self._key_of(obj) if old is not None else None
        used_ips, used_ports = self._used(exclude_key=key)
        causes: list[FieldError] = []
        svc_type = spec.get("type") or "ClusterIP"
        old_spec = (old or {}).get("spec") or {}
        if svc_type != "ExternalName" and spec.get("clusterIP") != "None":
            ip = spec.get("clusterIP")
            if not ip:
                ip = self._pick_ip(used_ips)
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]
            elif ip != old_spec.get("clusterIP"):
                try:
                    inside = ipaddress.ip_address(ip) in self.service_cidr
                except ValueError:
                    inside = True  # validation reports the malformed address
                if not inside:
                    causes.append(FieldError("FieldValueInvalid", "spec.clusterIPs[0]",
                                         f'Invalid value: "{ip}": failed to allocate IP {ip}: the provided IP '
                                         f"({ip}) is not in the valid range. The range of valid IPs is "
                                         f"{self.service_cidr}", ip))
                elif ip in used_ips:
                    causes.append(FieldError("FieldValueInvalid", "spec.clusterIPs[0]",
                                         f'Invalid value: "{ip}": failed to allocate IP {ip}: provided IP is '
                                         "already allocated", ip))
                spec.setdefault("clusterIPs", [ip])
        elif spec.get("clusterIP") == "None":
            spec["clusterIPs"] = ["None"]
        if svc_type in ("NodePort", "LoadBalancer"):
            old_ports = {p.get("nodePort") for p in old_spec.get("ports") or [] if p.get("nodePort")}
            for i, port in enumerate(spec.get("ports") or []):
                wanted = port.get("nodePort")
                if not wanted:
                    chosen = self._pick_port(used_ports)
                    port["nodePort"] = chosen
                    used_ports.add(chosen)
                elif wanted not in old_ports:
                    if not NODE_PORT_RANGE[0] <= int(wanted) <= NODE_PORT_RANGE[1]:
                        causes.append(FieldError("FieldValueInvalid", f"spec.ports[{i}].nodePort",
                                             f"Invalid value: {wanted}: provided port is not in the valid "
                                             "range. The range of valid ports is 30000-32767", wanted))
                    elif wanted in used_ports:
                        causes.append(FieldError("FieldValueInvalid", f"spec.ports[{i}].nodePort",
                                             f"Invalid value: {wanted}: provided port is already allocated",
                                             wanted))
                    else:
                        used_ports.add(int(wanted))
        if causes:
            raise errors.invalid(self.info, name, causes)

    # --- fencing ------------------------------------------------------------------------------

    @property
    def fence_key(self) -> str:
        """Next to the resources' keys, in no resource's prefix."""
        return f"{self.registry.prefix.rstrip('/')}/ketch.internal/service-allocations"

    async def _fenced(self, step: Any) -> Any:
        """Run step() (an allocating create or update) under the fence, again while it moved."""
        for _attempt in range(_FENCE_ATTEMPTS):
            revision = await self.store.mod_revision(self.fence_key)
            await self.cache.wait_for_revision(revision, 5.0)
            token = _current_fence.set(Fence(self.fence_key, revision))
            try:
                return await step()
            except FenceMoved:
                await asyncio.sleep(random.random() * 0.01)
                continue
            finally:
                _current_fence.reset(token)
        raise errors.conflict(self.info, "", "too many concurrent service allocations, try again")

    def write_fence(self) -> Fence | None:
        return _current_fence.get()

    async def create(self, namespace: str | None, body: Any, *, dry_run: bool = False) -> dict:
        if dry_run:
            return await super().create(namespace, body, dry_run=True)
        return await self._fenced(lambda: super(ServiceStore, self).create(namespace, copy.deepcopy(body)))

    async def guaranteed_update(self, namespace: str | None, name: str, mutate: Any, **options: Any) -> dict:
        if options.get("dry_run") or options.get("subresource") == "status":
            return await super().guaranteed_update(namespace, name, mutate, **options)
        return await self._fenced(lambda: super(ServiceStore, self).guaranteed_update(namespace, name, mutate,
                                                                                      **options))

    # --- hooks of the generic store ---------------------------------------------------------

    def before_create(self, obj: dict) -> None:
        self.allocate(obj)

    def _prepare_update(self, new: dict, old: dict, subresource: str, validate: bool) -> dict:
        if subresource != "status":
            spec, old_spec = new.get("spec"), old.get("spec") or {}
            if isinstance(spec, dict):
                for f in ("clusterIP", "clusterIPs"):
                    if not spec.get(f) and old_spec.get(f) and (spec.get("type") or "ClusterIP") != "ExternalName":
                        spec[f] = old_spec[f]
                old_node_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                                  for p in old_spec.get("ports") or [] if p.get("nodePort")}
                if (spec.get("type") or "ClusterIP") in ("NodePort", "LoadBalancer"):
                    for port in spec.get("ports") or []:
                        if isinstance(port, dict) and not port.get("nodePort"):
                            kept = old_node_ports.get((port.get("port"), port.get("protocol", "TCP")))
                            if kept:
                                port["nodePort"] = kept
        new = super()._prepare_update(new, old, subresource, validate)
        if subresource != "status":
            self.allocate(new, old)
        return new
