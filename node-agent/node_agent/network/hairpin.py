"""Hairpin mode on every port of the pod bridge, so a pod can reach itself through a Service.

When the br_netfilter module is loaded (Docker loads it; its
``bridge-nf-call-iptables`` is then 1 in every new network namespace), a
pod's packet to a Service IP is DNATed while it is still being bridged. If the
chosen endpoint is the sender itself, the bridge must send the frame back out
of the port it came in on, which a bridge refuses unless that port is in
hairpin mode. Without br_netfilter the packet is routed by the node and needs
no hairpin; setting it is harmless then. The pod veths are created by the
runtime, so the node keeps every port of its pod bridge in hairpin mode.
"""

from __future__ import annotations

import logging
import socket

log = logging.getLogger("ketch.node_agent.hairpin")

BRIDGE_MODE_HAIRPIN = 1


def ensure_hairpin(bridge: str) -> list[str]:
    """Turn hairpin mode on for the bridge's ports that lack it; the names changed (calling thread's netns).

    One AF_BRIDGE dump lists every port with its mode, so the periodic check
    costs one netlink round trip however many pods there are.
    """
    from pyroute2 import IPRoute

    changed = []
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=bridge)
        if not found:
            return changed
        for port in ipr.get_links(family=socket.AF_BRIDGE):
            if port.get_attr("IFLA_MASTER") != found[0]:
                continue
            info = port.get_attr("IFLA_PROTINFO")
            if info is not None and info.get_attr("IFLA_BRPORT_MODE") == BRIDGE_MODE_HAIRPIN:
                continue
            try:
                ipr.brport("set", index=port["index"], mode=BRIDGE_MODE_HAIRPIN)
                changed.append(port.get_attr("IFLA_IFNAME"))
            except Exception as exc:  # the port may vanish with its pod meanwhile
                log.debug("hairpin on %s failed: %r", port.get_attr("IFLA_IFNAME"), exc)
    return changed
