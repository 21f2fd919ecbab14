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

    async def reap_expired(self, slack_seconds: float) -> int:
        """Remove pods whose deletion grace ran out (plus slack) and that have no finalizers."""
        items, _ = self.cache.list(self.prefix(None))
        moment = now()
        removed = 0
        for pod in items:
            meta = pod["metadata"]
            stamp = meta.get("deletionTimestamp")
            if not stamp or meta.get("finalizers"):
                continue
            try:
                expired = (moment - parse_rfc3339(stamp)).total_seconds() > slack_seconds
            except ValueError:
                expired = True
            if not expired:
                continue
            key = self.key(meta.get("namespace"), meta["name"])
            try:
                await self.store.delete(key, expected_revision=int(meta["resourceVersion"]))
                removed += 1
                log.info("pod grace expired, removed namespace=%s pod=%s", meta.get("namespace"), meta["name"])
            except (RevisionConflict, KeyNotFound):
                continue
        return removed

    async def run_reaper(self, slack_seconds: float, interval: float = 1.0) -> None:
        while True:
            try:
                await self.reap_expired(slack_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep reaping; etcd may be back soon
                log.exception("pod grace reaper failed")
            await asyncio.sleep(interval)


class _BindingInfo:
    group = ""
    kind = "Binding"
    plural = "bindings"


_BINDING = _BindingInfo()
