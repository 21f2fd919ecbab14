"""Pod CIDR allocation: give every node its own slice of the cluster CIDR (spec.podCIDR).

The allocation is recorded only on the Node objects themselves, so the
allocator rebuilds its view from them after a restart and never hands out a
range twice.
"""

from __future__ import annotations

import ipaddress

from controllers.controller import Controller, InformerSet
from ketch.api.errors import ApiError
from ketch.api.resources import lookup

NODES = lookup("", "v1", "nodes")


class PodCIDRAllocator(Controller):
    name = "podcidr"
    workers = 1  # one worker: allocations must not race each other

    def __init__(
        self,
        client,  # noqa: ANN001
        informers: InformerSet,
        recorder,  # noqa: ANN001
        *,
        cluster_cidr: str = "10.244.0.0/16",
        node_mask: int = 24,
    ) -> None:
        super().__init__(client, informers, recorder)
        self.cluster = ipaddress.ip_network(cluster_cidr)
        self.node_mask = node_mask
        if node_mask < self.cluster.prefixlen:
            raise ValueError(f"node CIDR mask /{node_mask} is larger than the cluster CIDR {cluster_cidr}")
        self.nodes = informers.get(NODES)
        self.nodes.add_handler(self.enqueue, lambda old, new: self.enqueue(new))

    def used(self) -> set[ipaddress.IPv4Network]:
        out = set()
        for node in self.nodes.store.list():
            for cidr in (node.get("spec") or {}).get("podCIDRs") or [(node.get("spec") or {}).get("podCIDR")]:
                if cidr:
                    out.add(ipaddress.ip_network(cidr))
        return out

    def next_free(self) -> ipaddress.IPv4Network | None:
        used = self.used()
        for subnet in self.cluster.subnets(new_prefix=self.node_mask):
            if not any(subnet.overlaps(u) for u in used):
                return subnet
        return None

    async def reconcile(self, key: str) -> None:
        node = self.nodes.store.get(key)
        if node is None or (node.get("spec") or {}).get("podCIDR"):
            return
        subnet = self.next_free()
        if subnet is None:
            self.recorder.event(node, "Warning", "CIDRNotAvailable", f"No pod CIDR left in {self.cluster}")
            return
        meta = node["metadata"]
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"]},
                 "spec": {"podCIDR": str(subnet), "podCIDRs": [str(subnet)]}}
        try:
            updated = await self.client.patch(NODES, meta["name"], patch)
        except ApiError as err:
            if err.code == 409:
                self.queue.add_after(key, 0.1)
                return
            raise
        self.nodes.store.put(key, updated)  # the next allocation must see this one
        self.recorder.event(node, "Normal", "CIDRAssignmentSucceeded", f"Node {meta['name']} gets pod CIDR {subnet}")
