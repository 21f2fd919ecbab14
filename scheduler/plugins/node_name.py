"""Filter: a pod that names a node (spec.nodeName) fits only there."""

from __future__ import annotations

from scheduler.framework import CycleState, NodeInfo


class NodeName:
    name = "NodeName"

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> list[str]:
        wanted = (pod.get("spec") or {}).get("nodeName")
        if wanted and wanted != node.name:
            return ["node(s) didn't match the requested node name"]
        return []
