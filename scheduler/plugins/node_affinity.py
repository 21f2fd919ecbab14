"""Filter on nodeSelector and required node affinity; score by preferred node affinity."""

from __future__ import annotations

from ketch.api.scheduling import matches_node_selector_and_affinity, preferred_affinity_weight
from scheduler.framework import CycleState, NodeInfo, normalize


class NodeAffinity:
    name = "NodeAffinity"
    weight = 2

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> list[str]:
        if matches_node_selector_and_affinity(pod, node.node):
            return []
        return ["node(s) didn't match Pod's node affinity/selector"]

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> float:
        return float(preferred_affinity_weight(pod, node.node))

    def normalize_scores(self, state: CycleState, pod: dict, scores: dict[str, float]) -> dict[str, float]:
        return normalize(scores)
