"""The scheduling framework: what a plugin sees and what it answers.

As in the Kubernetes scheduler framework, each concern is a small plugin
behind a narrow interface: a *filter* says whether a pod may go on a node (and
why not, in the words the FailedScheduling event will use); a *score* plugin
ranks the nodes that passed, 0 to 100, and the framework weighs and adds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ketch.api.scheduling import Requests, host_ports, node_allocatable, pod_requests

MAX_NODE_SCORE = 100


def pod_key(pod: dict) -> str:
    meta = pod["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


@dataclass
class NodeInfo:
    """A node and what the pods placed on it (bound or assumed) take of it."""

    node: dict
    pods: dict[str, dict] = field(default_factory=dict)
    requested: Requests = Requests()
    non_zero_requested: Requests = Requests()
    used_ports: set[tuple[str, str, int]] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.node["metadata"]["name"]

    @property
    def allocatable(self) -> Requests:
        return node_allocatable(self.node)[0]

    @property
    def allowed_pods(self) -> int:
        return node_allocatable(self.node)[1]

    def add_pod(self, pod: dict) -> None:
        key = pod_key(pod)
        if key in self.pods:
            self.remove_pod(self.pods[key])
        self.pods[key] = pod
        self.requested = self.requested + pod_requests(pod)
        self.non_zero_requested = self.non_zero_requested + pod_requests(pod, non_zero=True)
        self.used_ports |= host_ports(pod)

    def remove_pod(self, pod: dict) -> None:
        old = self.pods.pop(pod_key(pod), None)
        if old is None:
            return
        self.requested = self.requested - pod_requests(old)
        self.non_zero_requested = self.non_zero_requested - pod_requests(old, non_zero=True)
        self.used_ports = set()
        for other in self.pods.values():
            self.used_ports |= host_ports(other)

    def clone(self) -> NodeInfo:
        return NodeInfo(
            self.node, dict(self.pods), self.requested, self.non_zero_requested, set(self.used_ports)
        )


class CycleState(dict):
    """Scratch space for one scheduling attempt, shared by the plugins of that attempt."""


class FilterPlugin(Protocol):
    name: str

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> list[str]:
        """Reasons the pod cannot go on this node; empty when it can."""


class ScorePlugin(Protocol):
    name: str
    weight: int

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> float:
        """How well the node suits the pod, 0..MAX_NODE_SCORE (after normalize, if any)."""


def normalize(scores: dict[str, float], *, reverse: bool = False) -> dict[str, float]:
    """Scale raw scores so the best node gets MAX_NODE_SCORE (the lowest, with reverse)."""
    if not scores:
        return scores
    top = max(scores.values())
    if top <= 0:
        return {n: (MAX_NODE_SCORE if reverse else 0.0) for n in scores}
    scaled = {n: MAX_NODE_SCORE * s / top for n, s in scores.items()}
    return {n: MAX_NODE_SCORE - s for n, s in scaled.items()} if reverse else scaled


@dataclass
class Profile:
    """The plugins one scheduler runs, in order."""

    filters: list[FilterPlugin]
    scores: list[ScorePlugin]
