"""What the scheduler believes each node holds: bound pods plus pods it has assumed.

A placement is *assumed* the moment the scheduler decides it, before the bind
call returns, so the next pod in line already sees the node as fuller. The
informer's view of the bound pod later confirms the assumption; an assumption
never confirmed (the bind failed, or was lost) expires.
"""

from __future__ import annotations

import time

from scheduler.framework import NodeInfo, pod_key

ASSUME_TTL = 30.0


def is_terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class SchedulerCache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._pod_node: dict[str, str] = {}  # pod key -> node it is counted on
        self._assumed: dict[str, float] = {}  # pod key -> deadline
        self._orphans: dict[str, dict] = {}  # pods bound to nodes not (yet) known

    # -- nodes --------------------------------------------------------------

    def set_node(self, node: dict) -> None:
        name = node["metadata"]["name"]
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(node)
            for key, pod in list(self._orphans.items()):
                if pod["spec"].get("nodeName") == name:
                    del self._orphans[key]
                    self._count(pod, name)
        else:
            info.node = node

    def remove_node(self, node: dict) -> None:
        info = self.nodes.pop(node["metadata"]["name"], None)
        if info is None:
            return
        for key, pod in info.pods.items():
            self._pod_node.pop(key, None)
            self._assumed.pop(key, None)
            self._orphans[key] = pod

    # -- pods ---------------------------------------------------------------

    def assume(self, pod: dict, node_name: str) -> None:
        bound = {**pod, "spec": {**pod["spec"], "nodeName": node_name}}
        self._count(bound, node_name)
        self._assumed[pod_key(pod)] = time.monotonic() + ASSUME_TTL

    def forget(self, pod: dict) -> None:
        key = pod_key(pod)
        if self._assumed.pop(key, None) is not None:
            self._uncount(key)

    def is_assumed(self, pod: dict) -> bool:
        return pod_key(pod) in self._assumed

    def observe_pod(self, pod: dict) -> None:
        """An informer add/update of a pod: count it where it is bound, if it still runs."""
        key = pod_key(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or is_terminal(pod):
            self._assumed.pop(key, None)
            self._uncount(key)
            self._orphans.pop(key, None)
            return
        self._assumed.pop(key, None)  # confirmed
        if node in self.nodes:
            self._count(pod, node)
        else:
            self._uncount(key)
            self._orphans[key] = pod

    def remove_pod(self, pod: dict) -> None:
        key = pod_key(pod)
        self._assumed.pop(key, None)
        self._orphans.pop(key, None)
        self._uncount(key)

    def expire_assumed(self) -> list[str]:
        now = time.monotonic()
        expired = [k for k, deadline in self._assumed.items() if deadline < now]
        for key in expired:
            del self._assumed[key]
            self._uncount(key)
        return expired

    def _count(self, pod: dict, node_name: str) -> None:
        key = pod_key(pod)
        previous = self._pod_node.get(key)
        if previous is not None and previous != node_name:
            self._uncount(key)
        self.nodes[node_name].add_pod(pod)
        self._pod_node[key] = node_name

    def _uncount(self, key: str) -> None:
        node = self._pod_node.pop(key, None)
        info = self.nodes.get(node) if node else None
        if info is not None and key in info.pods:
            info.remove_pod(info.pods[key])
