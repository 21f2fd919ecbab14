"""Pods: initial status, graceful deletion, binding to a node, and the grace reaper.

Graceful deletion (as kube-apiserver): deleting a pod bound to a node marks it
(`deletionTimestamp` = now + grace, `deletionGracePeriodSeconds` = grace) and
keeps it until its node agent confirms with a DELETE of gracePeriodSeconds=0,
or until the grace runs out: `reap_expired` then removes it (plus some slack,
so an agent that is merely slow still gets to confirm). An unscheduled or
finished pod is removed at once.
"""

from __future__ import annotations

import asyncio
import logging

from apiserver.registry.generic import ResourceStore
from apiserver.registry.strategy import Strategy
from apiserver.storage.errors import KeyNotFound, RevisionConflict
from ketch.api import errors
from ketch.api.timeutil import now, now_rfc3339, parse_rfc3339
from ketch.api.validation import FieldError

log = logging.getLogger("ketch.apiserver.pods")

DEFAULT_GRACE_SECONDS = 30


def qos_class(pod: dict) -> str:
    """Guaranteed, Burstable or BestEffort from the containers' requests and limits."""
    containers = (pod.get("spec") or {}).get("containers") or []
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        if requests or limits:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in limits or (r in requests and requests[r] != limits[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class PodStrategy(Strategy):
    def initial_status(self, obj: dict) -> None:
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj)}


class PodStore(ResourceStore):
    strategy_class = PodStrategy

    def grace_period(self, obj: dict, options: dict) -> int:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        given = options.get("gracePeriodSeconds")
        if given is not None:
            return max(int(given), 0)
        value = spec.get("terminationGracePeriodSeconds")
        return int(value) if value is not None else DEFAULT_GRACE_SECONDS

    def ready_to_remove(self, obj: dict) -> bool:
        meta = obj["metadata"]
        if not (obj.get("spec") or {}).get("nodeName"):
            return True
        return not meta.get("deletionGracePeriodSeconds")

    async def bind(self, namespace: str, name: str, binding: dict) -> dict:
        """POST pods/{name}/binding: set spec.nodeName once (409 when already bound)."""
        if not isinstance(binding, dict):
            raise errors.bad_request("the body of a Binding must be a JSON object")
        target = binding.get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.invalid(
                _BINDING, name, [FieldError("FieldValueRequired", "target.name", "Required value")]
            )
        bname = (binding.get("metadata") or {}).get("name") or name
        if bname != name:
            raise errors.bad_request(f"the name of the binding ({bname}) does not match the pod ({name})")

        def assign(pod: dict) -> dict:
            meta, spec = pod["metadata"], pod.setdefault("spec", {})
            if meta.get("deletionTimestamp"):
                raise errors.conflict(self.info, name, "pod is being deleted, cannot be assigned to a host")
            if spec.get("nodeName"):
                raise errors.conflict(
                    self.info, name, f"pod {name} is already assigned to node \"{spec['nodeName']}\""
                )
            spec["nodeName"] = node
            status = pod.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": now_rfc3339()})
            status["conditions"] = conditions
            return pod

        await self.guaranteed_update(namespace, name, assign, subresource="binding", validate=False)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _prepare_update(self, new: dict, old: dict, subresource: str, validate: bool) -> dict:
        if subresource == "binding":
            # binding edits spec.nodeName and status: bypass the status reset and immutability rules
            meta = new["metadata"]
            meta["resourceVersion"] = old["metadata"].get("resourceVersion")
            return new
        return super()._prepare_update(new, old, subresource, validate)

    def _track(self, pod: dict, deleted: bool) -> None:
        """Keep `_marked` = pods with a deletionTimestamp and no finalizers (the reaper's work list)."""
        meta = pod["metadata"]
        key = self.key(meta.get("namespace"), meta["name"])
        if deleted or not meta.get("deletionTimestamp") or meta.get("finalizers"):
            self._marked.pop(key, None)
        else:
            self._marked[key] = pod

    async def reap_expired(self, slack_seconds: float) -> int:
        """Remove marked pods whose deletion grace ran out (plus slack)."""
        moment = now()
        removed = 0
        for key, pod in list(self._marked.items()):
            meta = pod["metadata"]
            try:
                expired = (moment - parse_rfc3339(meta["deletionTimestamp"])).total_seconds() > slack_seconds
            except ValueError:
                expired = True
            if not expired:
                continue
            try:
                await self.store.delete(key, expected_revision=int(meta["resourceVersion"]))
                removed += 1
                log.info("pod grace expired, removed namespace=%s pod=%s", meta.get("namespace"), meta["name"])
            except (RevisionConflict, KeyNotFound):
                continue  # changed or gone meanwhile: the watch brings the news
        return removed

    async def _follow(self) -> None:
        """Feed `_marked` from the pods watch cache (current state first, then changes)."""
        async for event in self.cache.watch(self.prefix(None), 0):
            self._track(event.obj, event.type == "DELETED")

    async def run_reaper(self, slack_seconds: float, interval: float = 1.0) -> None:
        """Event-driven: only marked pods are looked at, not every pod every second."""
        self._marked: dict[str, dict] = {}
        follower: asyncio.Task | None = None
        try:
            while True:
                if follower is None or follower.done():
                    if follower is not None and not follower.cancelled() and follower.exception():
                        log.warning("pod reaper watch ended, restarting: %s", follower.exception())
                    self._marked = {}
                    follower = asyncio.create_task(self._follow(), name="pod-reaper-watch")
                try:
                    await self.reap_expired(slack_seconds)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - keep reaping; etcd may be back soon
                    log.exception("pod grace reaper failed")
                await asyncio.sleep(interval)
        finally:
            if follower is not None:
                follower.cancel()
                await asyncio.gather(follower, return_exceptions=True)


class _BindingInfo:
    group = ""
    kind = "Binding"
    plural = "bindings"


_BINDING = _BindingInfo()
