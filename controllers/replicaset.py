"""ReplicaSet: keep ``spec.replicas`` pods matching the template running, and report them."""

from __future__ import annotations

import asyncio

from controllers.controller import Controller, Expectations, InformerSet
from controllers.ownership import controller_ref, owner_reference, pod_from_template, selector_of
from controllers.pod_state import deletion_rank, is_active, is_available, is_ready
from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.api.timeutil import now

PODS = lookup("", "v1", "pods")
REPLICASETS = lookup("apps", "v1", "replicasets")

#: At most this many creates or deletes in flight per reconcile (Kubernetes: 500, with slow start).
BURST = 100


class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 4

    def __init__(self, client, informers: InformerSet, recorder) -> None:  # noqa: ANN001
        super().__init__(client, informers, recorder)
        self.replicasets = informers.get(REPLICASETS)
        self.pods = informers.get(PODS)
        self.pods.add_index("controller", _controller_uid_index)
        self.expectations = Expectations()
        self.replicasets.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self._rs_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # -- events -------------------------------------------------------------

    def _owner_key(self, pod: dict) -> str | None:
        ref = controller_ref(pod)
        if not ref or ref.get("kind") != "ReplicaSet":
            return None
        return f"{pod['metadata']['namespace']}/{ref['name']}"

    def _pod_added(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key:
            self.expectations.observed_add(key)
            self.queue.add(key)
        else:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: dict, pod: dict) -> None:
        key = self._owner_key(pod)
        if key:
            self.queue.add(key)
            # Ready for minReadySeconds later: look again then so availableReplicas moves.
            rs = self.replicasets.store.get(key)
            min_ready = ((rs or {}).get("spec") or {}).get("minReadySeconds") or 0
            if min_ready and not is_ready(old) and is_ready(pod):
                self.queue.add_after(key, min_ready + 1)
        old_key = self._owner_key(old)
        if old_key and old_key != key:
            self.queue.add(old_key)
        if not key:
            self._enqueue_matching(pod)

    def _pod_deleted(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key:
            self.expectations.observed_delete(key)
            self.queue.add(key)

    def _rs_deleted(self, rs: dict) -> None:
        self.expectations.forget(f"{rs['metadata']['namespace']}/{rs['metadata']['name']}")

    def _enqueue_matching(self, pod: dict) -> None:
        """An orphan pod: the ReplicaSets whose selector matches may adopt it."""
        labels = pod["metadata"].get("labels") or {}
        for rs in self.replicasets.store.list():
            if rs["metadata"]["namespace"] == pod["metadata"]["namespace"] and selector_of(rs).matches(labels):
                self.enqueue(rs)

    # -- reconcile ------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        rs = self.replicasets.store.get(key)
        if rs is None or not self.replicasets.synced:
            return
        pods = await self._claim_pods(rs)
        active = [p for p in pods if is_active(p)]
        if self.expectations.satisfied(key) and not rs["metadata"].get("deletionTimestamp"):
            await self._manage_replicas(key, rs, active)
        await self._update_status(rs, active)

    async def _claim_pods(self, rs: dict) -> list[dict]:
        """Owned pods, after adopting matching orphans and releasing pods that no longer match."""
        namespace, uid = rs["metadata"]["namespace"], rs["metadata"]["uid"]
        selector = selector_of(rs)
        owned = []
        for pod in self.pods.store.by_index("controller", uid):
            if selector.matches(pod["metadata"].get("labels") or {}):
                owned.append(pod)
            else:
                await self._set_owner_refs(pod, [r for r in pod["metadata"].get("ownerReferences") or []
                                                 if r.get("uid") != uid])
        if rs["metadata"].get("deletionTimestamp"):
            return owned
        for pod in self.pods.store.list():
            meta = pod["metadata"]
            if meta.get("namespace") != namespace or controller_ref(pod) or meta.get("deletionTimestamp"):
                continue
            if selector.matches(meta.get("labels") or {}) and is_active(pod):
                refs = [*(meta.get("ownerReferences") or []), owner_reference(rs)]
                if await self._set_owner_refs(pod, refs):
                    owned.append(pod)
        return owned

    async def _set_owner_refs(self, pod: dict, refs: list[dict]) -> bool:
        meta = pod["metadata"]
        patch = {"metadata": {"ownerReferences": refs, "uid": meta["uid"]}}
        try:
            await self.client.patch(PODS, meta["name"], patch, meta["namespace"])
            return True
        except ApiError as err:
            if err.code in (404, 409, 422):
                return False
            raise

    async def _manage_replicas(self, key: str, rs: dict, active: list[dict]) -> None:
        wanted = int(rs["spec"].get("replicas", 1))
        diff = wanted - len(active)
        if diff > 0:
            count = min(diff, BURST)
            self.expectations.expect(key, adds=count)
            template = rs["spec"]["template"]
            results = await asyncio.gather(
                *(self.client.create(PODS, pod_from_template(rs, template)) for _ in range(count)),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            for _ in failures:
                self.expectations.observed_add(key)  # will never arrive
            if failures:
                self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {failures[0]}")
                raise failures[0]
            names = ", ".join(r["metadata"]["name"] for r in results)
            self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {names}")
        elif diff < 0:
            victims = sorted(active, key=deletion_rank)[: min(-diff, BURST)]
            self.expectations.expect(key, deletes=len(victims))
            results = await asyncio.gather(
                *(self.client.delete(PODS, p["metadata"]["name"], p["metadata"]["namespace"]) for p in victims),
                return_exceptions=True,
            )
            for r in results:
                if isinstance(r, ApiError) and r.code == 404:
                    continue
                if isinstance(r, BaseException):
                    self.expectations.observed_delete(key)
                    raise r
            names = ", ".join(p["metadata"]["name"] for p in victims)
            self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {names}")

    async def _update_status(self, rs: dict, active: list[dict]) -> None:
        min_ready = rs["spec"].get("minReadySeconds") or 0
        labels = (rs["spec"]["template"].get("metadata") or {}).get("labels") or {}
        at = now()
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(
                1 for p in active if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
            ),
            "readyReplicas": sum(1 for p in active if is_ready(p)),
            "availableReplicas": sum(1 for p in active if is_available(p, min_ready, at)),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        current = rs.get("status") or {}
        if all(current.get(k, 0) == v for k, v in status.items()):
            return
        new = {**rs, "status": {**current, **status}}
        try:
            await self.client.update_status(REPLICASETS, new)
        except ApiError as err:
            if err.code in (404, 409):
                self.queue.add_after(f"{rs['metadata']['namespace']}/{rs['metadata']['name']}", 0.2)
                return
            raise


def _controller_uid_index(pod: dict) -> list[str]:
    ref = controller_ref(pod)
    return [ref["uid"]] if ref and ref.get("uid") else []
