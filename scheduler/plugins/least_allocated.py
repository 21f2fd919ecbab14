"""Score: prefer the node with the most cpu and memory left after placing the pod."""

from __future__ import annotations

from ketch.api.scheduling import pod_requests
from scheduler.framework import MAX_NODE_SCORE, CycleState, NodeInfo


def free_fraction(requested: int, capacity: int) -> float:
    if capacity <= 0 or requested > capacity:
        return 0.0
    return (capacity - requested) / capacity


class LeastAllocated:
    name = "NodeResourcesLeastAllocated"
    weight = 1

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> float:
        after = node.non_zero_requested + pod_requests(pod, non_zero=True)
        alloc = node.allocatable
        cpu = free_fraction(after.milli_cpu, alloc.milli_cpu)
        mem = free_fraction(after.memory, alloc.memory)
        return MAX_NODE_SCORE * (cpu + mem) / 2
