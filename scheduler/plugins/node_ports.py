"""Filter: the host ports the pod asks for are free on the node."""

from __future__ import annotations

from ketch.api.scheduling import host_ports, ports_conflict
from scheduler.framework import CycleState, NodeInfo


class NodePorts:
    name = "NodePorts"

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> list[str]:
        wanted = host_ports(pod)
        if wanted and ports_conflict(wanted, node.used_ports):
            return ["node(s) didn't have free ports for the requested pod ports"]
        return []
