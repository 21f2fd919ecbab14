"""Filter: the node has room for the pod's cpu and memory requests and one more pod."""

from __future__ import annotations

from ketch.api.scheduling import pod_requests
from scheduler.framework import CycleState, NodeInfo


class NodeResourcesFit:
    name = "NodeResourcesFit"

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> list[str]:
        reasons = []
        if len(node.pods) + 1 > node.allowed_pods:
            reasons.append("Too many pods")
        asked = pod_requests(pod)
        free = node.allocatable - node.requested
        if asked.milli_cpu and asked.milli_cpu > free.milli_cpu:
            reasons.append("Insufficient cpu")
        if asked.memory and asked.memory > free.memory:
            reasons.append("Insufficient memory")
        return reasons
