"""DaemonSet: one pod on every node that the pod template may run on.

Pods are pinned with required node affinity on ``metadata.name`` (as
Kubernetes does since 1.12) and left to the scheduler to bind, so resources
and host ports are still checked. Daemon pods tolerate the node-condition
taints by default, so they keep running on a NotReady node. A changed template
is rolled out by deleting outdated pods, at most ``maxUnavailable`` at a time.
"""

from __future__ import annotations

import copy

from controllers.controller import Controller, Expectations, InformerSet
from controllers.deployment import resolve_int_or_percent, template_hash
from controllers.ownership import controller_ref, pod_from_template
from controllers.pod_state import deletion_rank, is_active, is_available, is_ready
from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.api.scheduling import matches_node_selector_and_affinity, untolerated_taint

PODS = lookup("", "v1", "pods")
NODES = lookup("", "v1", "nodes")
DAEMONSETS = lookup("apps", "v1", "daemonsets")

HASH_LABEL = "controller-revision-hash"

DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def daemon_pod_template(ds: dict) -> dict:
    """The DaemonSet's template with the default daemon tolerations added."""
    template = copy.deepcopy(ds["spec"]["template"])
    spec = template.setdefault("spec", {})
    tolerations = spec.setdefault("tolerations", [])
    for t in DAEMON_TOLERATIONS:
        if t not in tolerations:
            tolerations.append(dict(t))
    return template


def should_run_on(template: dict, node: dict) -> bool:
    probe = {"spec": template.get("spec") or {}}
    return matches_node_selector_and_affinity(probe, node) and untolerated_taint(
        probe, node, ("NoSchedule", "NoExecute")
    ) is None


def pin_to_node(template: dict, node_name: str) -> dict:
    """Require ``metadata.name == node_name``, replacing any matchFields the template had."""
    t = copy.deepcopy(template)
    affinity = t["spec"].setdefault("affinity", {}).setdefault("nodeAffinity", {})
    required = affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = required.get("nodeSelectorTerms") or [{}]
    field = {"key": "metadata.name", "operator": "In", "values": [node_name]}
    required["nodeSelectorTerms"] = [{**term, "matchFields": [field]} for term in terms]
    return t


def target_node(pod: dict) -> str | None:
    """Where a daemon pod is, or is meant to be before the scheduler binds it."""
    if (pod.get("spec") or {}).get("nodeName"):
        return pod["spec"]["nodeName"]
    terms = (
        ((((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
         .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    )
    for term in terms:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("values"):
                return f["values"][0]
    return None


class DaemonSetController(Controller):
    name = "daemonset"
    workers = 2

    def __init__(self, client, informers: InformerSet, recorder) -> None:  # noqa: ANN001
        super().__init__(client, informers, recorder)
        self.daemonsets = informers.get(DAEMONSETS)
        self.nodes = informers.get(NODES)
        self.pods = informers.get(PODS)
        self.expectations = Expectations()
        self.daemonsets.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.nodes.add_handler(self._all, lambda old, new: self._all(new), self._all)
        self.pods.add_handler(self._pod_added, lambda old, new: self._pod(new), self._pod_deleted)

    def _all(self, _node: dict) -> None:
        for ds in self.daemonsets.store.list():
            self.enqueue(ds)

    def _key(self, pod: dict) -> str | None:
        ref = controller_ref(pod)
        if ref and ref.get("kind") == "DaemonSet":
            return f"{pod['metadata']['namespace']}/{ref['name']}"
        return None

    def _pod_added(self, pod: dict) -> None:
        if key := self._key(pod):
            self.expectations.observed_add(key)
            self.queue.add(key)

    def _pod(self, pod: dict) -> None:
        if key := self._key(pod):
            self.queue.add(key)

    def _pod_deleted(self, pod: dict) -> None:
        if key := self._key(pod):
            self.expectations.observed_delete(key)
            self.queue.add(key)

    async def reconcile(self, key: str) -> None:
        ds = self.daemonsets.store.get(key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        template = daemon_pod_template(ds)
        revision = template_hash(ds["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = revision
        uid = ds["metadata"]["uid"]
        by_node: dict[str, list[dict]] = {}
        for pod in self.pods.store.list():
            if (controller_ref(pod) or {}).get("uid") == uid and is_active(pod):
                by_node.setdefault(target_node(pod) or "", []).append(pod)
        nodes = {n["metadata"]["name"]: n for n in self.nodes.store.list()}
        eligible = {name for name, node in nodes.items() if should_run_on(template, node)}

        to_create, to_delete = [], []
        for name in eligible:
            pods = sorted(by_node.get(name, []), key=deletion_rank)
            if not pods:
                to_create.append(name)
            elif len(pods) > 1:
                to_delete.extend(pods[:-1])
        for name, pods in by_node.items():
            if name not in eligible:
                to_delete.extend(pods)
        to_delete.extend(self._outdated_to_replace(ds, by_node, eligible, revision))

        if self.expectations.satisfied(key):
            self.expectations.expect(key, adds=len(to_create), deletes=len(to_delete))
            for name in to_create:
                try:
                    await self.client.create(PODS, pod_from_template(ds, pin_to_node(template, name)))
                except ApiError as err:
                    self.expectations.observed_add(key)
                    self.recorder.event(ds, "Warning", "FailedCreate", f"Error creating on {name}: {err}")
                    raise
            for pod in to_delete:
                try:
                    await self.client.delete(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"])
                except ApiError as err:
                    self.expectations.observed_delete(key)
                    if err.code != 404:
                        raise
        await self._update_status(ds, by_node, eligible, revision)

    def _outdated_to_replace(self, ds: dict, by_node: dict, eligible: set[str], revision: str) -> list[dict]:
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return []
        max_unavailable = resolve_int_or_percent(
            (strategy.get("rollingUpdate") or {}).get("maxUnavailable"), len(eligible), round_up=False, default="1"
        ) or 1
        min_ready = ds["spec"].get("minReadySeconds", 0)
        unavailable = sum(
            1 for n in eligible if not any(is_available(p, min_ready) for p in by_node.get(n, []))
        )
        budget = max_unavailable - unavailable
        out = []
        for name in sorted(eligible):
            pods = by_node.get(name, [])
            if len(pods) != 1 or (pods[0]["metadata"].get("labels") or {}).get(HASH_LABEL) == revision:
                continue
            if not is_available(pods[0], min_ready):
                out.append(pods[0])  # replacing an unavailable pod costs nothing
            elif budget > 0:
                out.append(pods[0])
                budget -= 1
        return out

    async def _update_status(self, ds: dict, by_node: dict, eligible: set[str], revision: str) -> None:
        min_ready = ds["spec"].get("minReadySeconds", 0)
        scheduled = {n: [p for p in pods if p["spec"].get("nodeName")] for n, pods in by_node.items()}
        current = [n for n in eligible if scheduled.get(n)]
        status = {
            "desiredNumberScheduled": len(eligible),
            "currentNumberScheduled": len(current),
            "numberMisscheduled": sum(1 for n, pods in scheduled.items() if pods and n not in eligible),
            "numberReady": sum(1 for n in current if any(is_ready(p) for p in scheduled[n])),
            "numberAvailable": sum(1 for n in current if any(is_available(p, min_ready) for p in scheduled[n])),
            "updatedNumberScheduled": sum(
                1 for n in current
                if any((p["metadata"].get("labels") or {}).get(HASH_LABEL) == revision for p in scheduled[n])
            ),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        status["numberUnavailable"] = max(len(eligible) - status["numberAvailable"], 0)
        old = ds.get("status") or {}
        if all(old.get(k, 0) == v for k, v in status.items()):
            return
        try:
            await self.client.update_status(DAEMONSETS, {**ds, "status": {**old, **status}})
        except ApiError as err:
            if err.code not in (404, 409):
                raise
            self.queue.add_after(f"{ds['metadata']['namespace']}/{ds['metadata']['name']}", 0.2)
