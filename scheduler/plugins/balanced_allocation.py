"""Score: prefer nodes whose cpu and memory use stay balanced after placing the pod."""

from __future__ import annotations

from ketch.api.scheduling import pod_requests
from scheduler.framework import MAX_NODE_SCORE, CycleState, NodeInfo


class BalancedAllocation:
    name = "NodeResourcesBalancedAllocation"
    weight = 1

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> float:
        after = node.non_zero_requested + pod_requests(pod, non_zero=True)
        alloc = node.allocatable
        if alloc.milli_cpu <= 0 or alloc.memory <= 0:
            return 0.0
        cpu = min(after.milli_cpu / alloc.milli_cpu, 1.0)
        mem = min(after.memory / alloc.memory, 1.0)
        # Kubernetes: the standard deviation of the two fractions is |cpu - mem| / 2.
        return MAX_NODE_SCORE * (1 - abs(cpu - mem) / 2)
