"""Filter: nodes cordoned with spec.unschedulable take no new pods unless tolerated."""

from __future__ import annotations

from ketch.api.scheduling import tolerates
from scheduler.framework import CycleState, NodeInfo

UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable:
    name = "NodeUnschedulable"

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> list[str]:
        if not (node.node.get("spec") or {}).get("unschedulable"):
            return []
        if tolerates((pod.get("spec") or {}).get("tolerations") or [], UNSCHEDULABLE_TAINT):
            return []
        return ["node(s) were unschedulable"]
