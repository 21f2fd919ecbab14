"""Filter out nodes with untolerated NoSchedule/NoExecute taints; prefer fewer PreferNoSchedule ones."""

from __future__ import annotations

from ketch.api.scheduling import format_taint, tolerates, untolerated_taint
from scheduler.framework import CycleState, NodeInfo, normalize


class TaintToleration:
    name = "TaintToleration"
    weight = 3

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> list[str]:
        taint = untolerated_taint(pod, node.node, ("NoSchedule", "NoExecute"))
        if taint is None:
            return []
        return [f"node(s) had untolerated taint {format_taint(taint)}"]

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> float:
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        return float(
            sum(
                1
                for taint in (node.node.get("spec") or {}).get("taints") or []
                if taint.get("effect") == "PreferNoSchedule" and not tolerates(tolerations, taint)
            )
        )

    def normalize_scores(self, state: CycleState, pod: dict, scores: dict[str, float]) -> dict[str, float]:
        return normalize(scores, reverse=True)
