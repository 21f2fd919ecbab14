"""Node lifecycle: notice nodes that stopped heartbeating, taint them, evict their pods.

A node agent renews its Lease in ``kube-node-lease`` every few seconds. When
neither the Lease nor the Ready condition has been renewed for
``grace_period``, the node's conditions become Unknown and it is tainted
``node.kubernetes.io/unreachable`` (NoSchedule and NoExecute); a node that
reports Ready=False gets ``node.kubernetes.io/not-ready``. Pods on a node with
a NoExecute taint they do not tolerate are evicted (deleted) at once; those
that tolerate it for ``tolerationSeconds`` (or the default, when the pod does
not mention the taint) are evicted once that time has passed.
"""

from __future__ import annotations

from datetime import datetime

from controllers.controller import Controller, InformerSet
from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.api.scheduling import toleration_tolerates
from ketch.api.timeutil import format_rfc3339, now, parse_rfc3339

NODES = lookup("", "v1", "nodes")
LEASES = lookup("coordination.k8s.io", "v1", "leases")
PODS = lookup("", "v1", "pods")

NODE_LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def _ready(node: dict) -> dict:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return {}


def wanted_taint_key(node: dict) -> str | None:
    status = _ready(node).get("status")
    if status == "Unknown":
        return UNREACHABLE
    if status == "False":
        return NOT_READY
    return None


class NodeLifecycleController(Controller):
    name = "nodelifecycle"
    workers = 1

    def __init__(
        self,
        client,  # noqa: ANN001
        informers: InformerSet,
        recorder,  # noqa: ANN001
        *,
        grace_period: float = 40.0,
        default_toleration_seconds: int = 300,
        monitor_period: float = 5.0,
    ) -> None:
        super().__init__(client, informers, recorder)
        self.grace_period = grace_period
        self.default_toleration_seconds = default_toleration_seconds
        self.monitor_period = monitor_period
        self.nodes = informers.get(NODES)
        self.leases = informers.get(LEASES)
        self.pods = informers.get(PODS)
        self.pods.add_index("node", lambda p: [p["spec"]["nodeName"]] if (p.get("spec") or {}).get("nodeName") else [])
        self.nodes.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.pods.add_handler(self._pod_changed, lambda old, new: self._pod_changed(new))

    def _pod_changed(self, pod: dict) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            self.queue.add(node)

    def last_heartbeat(self, node: dict) -> datetime | None:
        name = node["metadata"]["name"]
        stamps = []
        lease = self.leases.store.get(f"{NODE_LEASE_NAMESPACE}/{name}")
        if lease and (lease.get("spec") or {}).get("renewTime"):
            stamps.append(parse_rfc3339(lease["spec"]["renewTime"]))
        beat = _ready(node).get("lastHeartbeatTime")
        if beat:
            stamps.append(parse_rfc3339(beat))
        return max(stamps) if stamps else None

    async def reconcile(self, key: str) -> None:
        node = self.nodes.store.get(key)
        if node is None:
            return
        # Check this node again after a monitor period: staleness is a matter of time passing.
        self.queue.add_after(key, self.monitor_period)
        at = now()
        beat = self.last_heartbeat(node)
        if _ready(node).get("status") != "Unknown":
            created = parse_rfc3339(node["metadata"].get("creationTimestamp") or format_rfc3339(at))
            since = beat or created
            if (at - since).total_seconds() > self.grace_period:
                node = await self._mark_unknown(node, at)
        await self._sync_taints(node, at)
        await self._evict(node, at)

    async def _mark_unknown(self, node: dict, at: datetime) -> dict:
        stamp = format_rfc3339(at)
        conditions = []
        seen = set()
        for c in (node.get("status") or {}).get("conditions") or []:
            if c.get("type") in CONDITIONS:
                seen.add(c["type"])
                c = {**c, "status": "Unknown", "reason": "NodeStatusUnknown",
                     "message": "Kubelet stopped posting node status.", "lastTransitionTime": stamp}
            conditions.append(c)
        for t in CONDITIONS:
            if t not in seen:
                conditions.append({"type": t, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                                   "message": "Kubelet never posted node status.", "lastTransitionTime": stamp,
                                   "lastHeartbeatTime": stamp})
        updated = {**node, "status": {**(node.get("status") or {}), "conditions": conditions}}
        self.log.warning("node=%s heartbeat stale: conditions Unknown", node["metadata"]["name"])
        self.recorder.event(node, "Normal", "NodeNotReady", f"Node {node['metadata']['name']} status is now: NodeNotReady")
        return await self.client.update_status(NODES, updated)

    async def _sync_taints(self, node: dict, at: datetime) -> None:
        key = wanted_taint_key(node)
        taints = list((node.get("spec") or {}).get("taints") or [])
        managed = {UNREACHABLE, NOT_READY}
        kept = [t for t in taints if t.get("key") not in managed or t.get("key") == key]
        if key:
            for effect in ("NoSchedule", "NoExecute"):
                if not any(t.get("key") == key and t.get("effect") == effect for t in kept):
                    taint = {"key": key, "effect": effect}
                    if effect == "NoExecute":
                        taint["timeAdded"] = format_rfc3339(at)
                    kept.append(taint)
        if kept == taints:
            return
        meta = node["metadata"]
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "spec": {"taints": kept or None}}
        try:
            await self.client.patch(NODES, meta["name"], patch)
        except ApiError as err:
            if err.code == 409:
                self.queue.add_after(meta["name"], 0.2)
                return
            raise

    async def _evict(self, node: dict, at: datetime) -> None:
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
        if not taints:
            return
        soonest = None
        for pod in self.pods.store.by_index("node", node["metadata"]["name"]):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            delay = self._eviction_delay(pod, taints, at)
            if delay is None:
                continue
            if delay <= 0:
                meta = pod["metadata"]
                self.log.info("evict pod=%s/%s node=%s", meta["namespace"], meta["name"], node["metadata"]["name"])
                self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {meta['namespace']}/{meta['name']}")
                try:
                    await self.client.delete(PODS, meta["name"], meta["namespace"])
                except ApiError as err:
                    if err.code != 404:
                        raise
            else:
                soonest = delay if soonest is None else min(soonest, delay)
        if soonest is not None:
            self.queue.add_after(node["metadata"]["name"], soonest + 0.1)

    def _eviction_delay(self, pod: dict, taints: list[dict], at: datetime) -> float | None:
        """Seconds until the pod must go; None if it tolerates every taint forever."""
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        worst: float | None = None
        for taint in taints:
            matching = [t for t in tolerations if toleration_tolerates(t, taint)]
            if matching:
                limits = [t.get("tolerationSeconds") for t in matching]
                if any(s is None for s in limits):
                    continue  # tolerated forever
                seconds = float(min(limits))
            elif taint.get("key") in (UNREACHABLE, NOT_READY):
                seconds = float(self.default_toleration_seconds)  # DefaultTolerationSeconds admission
            else:
                seconds = 0.0
            added = parse_rfc3339(taint["timeAdded"]) if taint.get("timeAdded") else at
            left = seconds - (at - added).total_seconds()
            worst = left if worst is None else min(worst, left)
        return worst
