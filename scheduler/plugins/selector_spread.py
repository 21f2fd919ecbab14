"""Score: spread pods of the same owner (ReplicaSet, Job, ...) across nodes."""

from __future__ import annotations

from scheduler.framework import CycleState, NodeInfo, normalize


def controller_uid(pod: dict) -> str | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


class SelectorSpread:
    name = "SelectorSpread"
    weight = 2

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> float:
        owner = controller_uid(pod)
        if owner is None:
            return 0.0
        namespace = pod["metadata"].get("namespace")
        return float(
            sum(
                1
                for other in node.pods.values()
                if other["metadata"].get("namespace") == namespace and controller_uid(other) == owner
            )
        )

    def normalize_scores(self, state: CycleState, pod: dict, scores: dict[str, float]) -> dict[str, float]:
        return normalize(scores, reverse=True)
