"""Deployment: roll pods from old ReplicaSets to the one matching the current template.

One ReplicaSet per distinct pod template, named ``<deployment>-<pod-template-hash>``.
RollingUpdate moves replicas across within maxSurge (above the desired count)
and maxUnavailable (below it); Recreate scales the old ones to zero and waits
for their pods to be gone before scaling up the new one. Revisions are the
``deployment.kubernetes.io/revision`` annotation kubectl's rollout history and
undo read; old ReplicaSets beyond revisionHistoryLimit are deleted.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math

from controllers.controller import Controller, InformerSet
from controllers.ownership import controller_ref, owner_reference
from controllers.pod_state import is_active
from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.api.timeutil import now, now_rfc3339, parse_rfc3339

PODS = lookup("", "v1", "pods")
REPLICASETS = lookup("apps", "v1", "replicasets")
DEPLOYMENTS = lookup("apps", "v1", "deployments")

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels: hashes never spell words


def template_hash(template: dict, collision_count: int = 0) -> str:
    """A short, stable name suffix for a pod template (like Kubernetes' pod-template-hash)."""
    canonical = json.dumps(_without_hash_label(template), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{canonical}|{collision_count}".encode()).digest()
    number = int.from_bytes(digest[:6], "big")
    out = []
    while number and len(out) < 10:
        number, rem = divmod(number, len(_SAFE_ALPHABET))
        out.append(_SAFE_ALPHABET[rem])
    return "".join(out)


def _without_hash_label(template: dict) -> dict:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return t


def templates_equal(a: dict, b: dict) -> bool:
    return _without_hash_label(a) == _without_hash_label(b)


def resolve_int_or_percent(value: int | str | None, total: int, *, round_up: bool, default: str) -> int:
    value = default if value is None else value
    if isinstance(value, str) and value.endswith("%"):
        fraction = int(value[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(value)


def surge_and_unavailable(d: dict) -> tuple[int, int]:
    replicas = int(d["spec"].get("replicas", 1))
    rolling = ((d["spec"].get("strategy") or {}).get("rollingUpdate")) or {}
    surge = resolve_int_or_percent(rolling.get("maxSurge"), replicas, round_up=True, default="25%")
    unavailable = resolve_int_or_percent(rolling.get("maxUnavailable"), replicas, round_up=False, default="25%")
    if surge == 0 and unavailable == 0:
        unavailable = 1  # as Kubernetes: a rollout must be able to move
    return surge, unavailable


def revision_of(rs: dict) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


class DeploymentController(Controller):
    name = "deployment"
    workers = 2

    def __init__(self, client, informers: InformerSet, recorder) -> None:  # noqa: ANN001
        super().__init__(client, informers, recorder)
        self.deployments = informers.get(DEPLOYMENTS)
        self.replicasets = informers.get(REPLICASETS)
        self.pods = informers.get(PODS)
        self.deployments.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.replicasets.add_handler(self._rs_changed, lambda old, new: self._rs_changed(new), self._rs_changed)
        self.pods.add_handler(on_delete=self._pod_deleted)

    def _rs_changed(self, rs: dict) -> None:
        ref = controller_ref(rs)
        if ref and ref.get("kind") == "Deployment":
            self.queue.add(f"{rs['metadata']['namespace']}/{ref['name']}")

    def _pod_deleted(self, pod: dict) -> None:
        """Recreate waits for old pods to be gone: a pod's deletion may unblock it."""
        ref = controller_ref(pod)
        if not ref or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.store.get(f"{pod['metadata']['namespace']}/{ref['name']}")
        if rs is not None:
            self._rs_changed(rs)

    def owned_replicasets(self, d: dict) -> list[dict]:
        uid = d["metadata"]["uid"]
        return [
            rs
            for rs in self.replicasets.store.list()
            if rs["metadata"]["namespace"] == d["metadata"]["namespace"]
            and (controller_ref(rs) or {}).get("uid") == uid
        ]

    async def reconcile(self, key: str) -> None:
        d = self.deployments.store.get(key)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        rss = self.owned_replicasets(d)
        new_rs = next((rs for rs in rss if templates_equal(rs["spec"]["template"], d["spec"]["template"])), None)
        old_rss = sorted((rs for rs in rss if rs is not new_rs), key=revision_of)
        if new_rs is None and not d["spec"].get("paused"):
            new_rs = await self._create_new_rs(d, old_rss)
        elif new_rs is not None:
            await self._bump_revision_if_needed(d, new_rs, old_rss)

        if d["spec"].get("paused"):
            if new_rs is not None and not any(_spec_replicas(rs) for rs in old_rss):
                await self._scale(new_rs, int(d["spec"].get("replicas", 1)), d)
        elif (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            await self._recreate(d, new_rs, old_rss)
        else:
            await self._rolling(d, new_rs, old_rss)
        await self._cleanup(d, old_rss)
        await self._update_status(d, new_rs, old_rss)

    # -- steps ------------------------------------------------------------------

    async def _create_new_rs(self, d: dict, old_rss: list[dict]) -> dict:
        collision = int((d.get("status") or {}).get("collisionCount") or 0)
        pod_hash = template_hash(d["spec"]["template"], collision)
        template = copy.deepcopy(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        revision = max((revision_of(rs) for rs in old_rss), default=0) + 1
        annotations = {REVISION: str(revision)}
        cause = (d["metadata"].get("annotations") or {}).get(CHANGE_CAUSE)
        if cause:
            annotations[CHANGE_CAUSE] = cause
        starting = 0 if any(_spec_replicas(rs) for rs in old_rss) else int(d["spec"].get("replicas", 1))
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            starting = 0
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{pod_hash}",
                "namespace": d["metadata"]["namespace"],
                "labels": {**(template["metadata"].get("labels") or {})},
                "annotations": annotations,
                "ownerReferences": [owner_reference(d)],
            },
            "spec": {
                "replicas": starting,
                "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
        }
        try:
            created = await self.client.create(REPLICASETS, rs)
        except ApiError as err:
            if err.code == 409:  # a different template already has this name: bump collisionCount
                status = {**(d.get("status") or {}), "collisionCount": collision + 1}
                await self.client.update_status(DEPLOYMENTS, {**d, "status": status})
            raise
        self.recorder.event(
            d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {rs['metadata']['name']} to {starting}"
        )
        await self._set_deployment_revision(d, revision)
        return created

    async def _bump_revision_if_needed(self, d: dict, new_rs: dict, old_rss: list[dict]) -> None:
        """A rollback makes an old ReplicaSet new again: it takes the next revision."""
        top = max((revision_of(rs) for rs in old_rss), default=0)
        if revision_of(new_rs) > top:
            await self._set_deployment_revision(d, revision_of(new_rs))
            return
        revision = top + 1
        meta = new_rs["metadata"]
        await self.client.patch(
            REPLICASETS, meta["name"], {"metadata": {"annotations": {REVISION: str(revision)}}}, meta["namespace"]
        )
        await self._set_deployment_revision(d, revision)

    async def _set_deployment_revision(self, d: dict, revision: int) -> None:
        if (d["metadata"].get("annotations") or {}).get(REVISION) == str(revision):
            return
        meta = d["metadata"]
        await self.client.patch(
            DEPLOYMENTS, meta["name"], {"metadata": {"annotations": {REVISION: str(revision)}}}, meta["namespace"]
        )

    async def _scale(self, rs: dict, replicas: int, d: dict) -> None:
        current = _spec_replicas(rs)
        if current == replicas:
            return
        meta = rs["metadata"]
        await self.client.patch(REPLICASETS, meta["name"], {"spec": {"replicas": replicas}}, meta["namespace"])
        rs["spec"]["replicas"] = replicas  # our view until the informer catches up
        verb = "up" if replicas > current else "down"
        self.recorder.event(d, "Normal", "ScalingReplicaSet", f"Scaled {verb} replica set {meta['name']} to {replicas}")

    async def _recreate(self, d: dict, new_rs: dict | None, old_rss: list[dict]) -> None:
        for rs in old_rss:
            await self._scale(rs, 0, d)
        old_uids = {rs["metadata"]["uid"] for rs in old_rss}
        still_running = any(
            is_active(p) and (controller_ref(p) or {}).get("uid") in old_uids for p in self.pods.store.list()
        )
        if not still_running and new_rs is not None:
            await self._scale(new_rs, int(d["spec"].get("replicas", 1)), d)

    async def _rolling(self, d: dict, new_rs: dict | None, old_rss: list[dict]) -> None:
        if new_rs is None:
            return
        replicas = int(d["spec"].get("replicas", 1))
        surge, max_unavailable = surge_and_unavailable(d)
        all_rss = [new_rs, *old_rss]
        # Scale the new ReplicaSet up, within the surge.
        if _spec_replicas(new_rs) > replicas:
            await self._scale(new_rs, replicas, d)
        elif _spec_replicas(new_rs) < replicas:
            total = sum(_spec_replicas(rs) for rs in all_rss)
            room = replicas + surge - total
            if room > 0:
                await self._scale(new_rs, min(replicas, _spec_replicas(new_rs) + room), d)
        # Scale old ReplicaSets down, keeping replicas - maxUnavailable available.
        if not any(_spec_replicas(rs) for rs in old_rss):
            return
        min_available = replicas - max_unavailable
        total = sum(_spec_replicas(rs) for rs in all_rss)
        new_unavailable = _spec_replicas(new_rs) - _available(new_rs)
        budget = total - min_available - new_unavailable
        if budget <= 0:
            return
        # Unhealthy old replicas go first: removing them costs no availability.
        for rs in old_rss:
            unhealthy = _spec_replicas(rs) - _available(rs)
            if budget <= 0:
                break
            if unhealthy > 0:
                cut = min(unhealthy, budget)
                await self._scale(rs, _spec_replicas(rs) - cut, d)
                budget -= cut
        available = sum(_available(rs) for rs in all_rss)
        budget = min(budget, available - min_available)
        for rs in old_rss:  # oldest revision first
            if budget <= 0:
                break
            cut = min(_spec_replicas(rs), budget)
            if cut > 0:
                await self._scale(rs, _spec_replicas(rs) - cut, d)
                budget -= cut

    async def _cleanup(self, d: dict, old_rss: list[dict]) -> None:
        limit = d["spec"].get("revisionHistoryLimit", 10)
        idle = [rs for rs in old_rss if _spec_replicas(rs) == 0 and not (rs.get("status") or {}).get("replicas")]
        for rs in idle[: max(len(idle) - limit, 0)]:
            meta = rs["metadata"]
            try:
                await self.client.delete(REPLICASETS, meta["name"], meta["namespace"])
            except ApiError as err:
                if err.code != 404:
                    raise

    def _progressing(self, d: dict, new_rs: dict | None, current: dict, status: dict,
                     complete: bool) -> tuple[str, str, str, str, bool]:
        """The Progressing condition: progress refreshes it; no progress for progressDeadlineSeconds fails it."""
        name = new_rs["metadata"]["name"] if new_rs else ""
        if d["spec"].get("paused"):
            return ("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", False)
        if complete:
            return ("Progressing", "True", "NewReplicaSetAvailable",
                    f'ReplicaSet "{name}" has successfully progressed.', False)
        previous = {c.get("type"): c for c in current.get("conditions") or []}.get("Progressing") or {}
        progressed = any(current.get(k, 0) != status[k] for k in PROGRESS_FIELDS) or (
            current.get("observedGeneration") != status["observedGeneration"])
        deadline = d["spec"].get("progressDeadlineSeconds")
        if previous.get("reason") == "ProgressDeadlineExceeded" and not progressed:
            return ("Progressing", "False", "ProgressDeadlineExceeded", previous.get("message", ""), False)
        if not progressed and deadline and previous.get("lastUpdateTime"):
            idle = (now() - parse_rfc3339(previous["lastUpdateTime"])).total_seconds()
            if idle > deadline:
                self.recorder.event(d, "Warning", "ProgressDeadlineExceeded", f'ReplicaSet "{name}" has timed out progressing.')
                return ("Progressing", "False", "ProgressDeadlineExceeded",
                        f'ReplicaSet "{name}" has timed out progressing.', False)
            self.queue.add_after(f"{d['metadata']['namespace']}/{d['metadata']['name']}", deadline - idle + 1)
        return ("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.', progressed)

    async def _update_status(self, d: dict, new_rs: dict | None, old_rss: list[dict]) -> None:
        all_rss = [rs for rs in [new_rs, *old_rss] if rs is not None]
        replicas = int(d["spec"].get("replicas", 1))
        _, max_unavailable = surge_and_unavailable(d)
        total = sum((rs.get("status") or {}).get("replicas", 0) for rs in all_rss)
        updated = (new_rs.get("status") or {}).get("replicas", 0) if new_rs else 0
        ready = sum((rs.get("status") or {}).get("readyReplicas", 0) for rs in all_rss)
        available = sum(_available(rs) for rs in all_rss)
        complete = (
            new_rs is not None
            and updated == replicas
            and available >= replicas
            and total == updated
            and _observed(new_rs)
        )
        status = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "unavailableReplicas": max(replicas - available, 0),
        }
        current = d.get("status") or {}
        enough = available >= replicas - max_unavailable
        status["conditions"] = _conditions(current.get("conditions") or [], [
            ("Available", "True" if enough else "False",
             "MinimumReplicasAvailable" if enough else "MinimumReplicasUnavailable",
             "Deployment has minimum availability." if enough else "Deployment does not have minimum availability.",
             False),
            self._progressing(d, new_rs, current, status, complete),
        ])
        if "collisionCount" in current:
            status["collisionCount"] = current["collisionCount"]
        if {k: current.get(k) for k in status} == status:
            return
        try:
            await self.client.update_status(DEPLOYMENTS, {**d, "status": status})
        except ApiError as err:
            if err.code in (404, 409):
                self.queue.add_after(f"{d['metadata']['namespace']}/{d['metadata']['name']}", 0.2)
                return
            raise


PROGRESS_FIELDS = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")


def _spec_replicas(rs: dict) -> int:
    return int(rs["spec"].get("replicas", 1))


def _available(rs: dict) -> int:
    return int((rs.get("status") or {}).get("availableReplicas", 0))


def _observed(rs: dict) -> bool:
    return (rs.get("status") or {}).get("observedGeneration", 0) >= rs["metadata"].get("generation", 1)


def _conditions(existing: list[dict], wanted: list[tuple[str, str, str, str, bool]]) -> list[dict]:
    """Replace the named conditions, keeping lastTransitionTime when the status did not flip.

    ``touch`` refreshes lastUpdateTime even when nothing else changed: progress was made.
    """
    by_type = {c.get("type"): c for c in existing}
    out = [c for c in existing if c.get("type") not in {w[0] for w in wanted}]
    stamp = now_rfc3339()
    for type_, status, reason, message, touch in wanted:
        old = by_type.get(type_) or {}
        same = (not touch and old.get("status") == status and old.get("reason") == reason
                and old.get("message") == message)
        out.append({
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastUpdateTime": old.get("lastUpdateTime", stamp) if same else stamp,
            "lastTransitionTime": old.get("lastTransitionTime", stamp) if old.get("status") == status else stamp,
        })
    return out
