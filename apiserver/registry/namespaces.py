"""Namespaces: the lifecycle Active → Terminating → gone, and the controller that empties them.

Deleting a namespace marks it (deletionTimestamp, status.phase Terminating)
and keeps it while the `kubernetes` finalizer is in spec.finalizers. The
namespace controller (a task inside the apiserver, as in kube-controller-manager)
deletes every namespaced object in it, then drops the finalizer; the namespace
goes when no finalizer is left. `default`, `kube-system` and `kube-public`
cannot be deleted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from apiserver.registry.generic import ResourceStore
from apiserver.registry.strategy import Strategy
from apiserver.storage.errors import KeyNotFound, RevisionConflict
from ketch.api import errors
from ketch.api.timeutil import now_rfc3339

if TYPE_CHECKING:
    from apiserver.registry.registry import Registry

log = logging.getLogger("ketch.apiserver.namespaces")

FINALIZER = "kubernetes"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
PROTECTED = frozenset({"default", "kube-system", "kube-public"})


class NamespaceStrategy(Strategy):
    def prepare_create(self, obj: dict) -> None:
        super().prepare_create(obj)
        spec = obj.setdefault("spec", {})
        finalizers = list(spec.get("finalizers") or [])
        if FINALIZER not in finalizers:
            finalizers.append(FINALIZER)
        spec["finalizers"] = finalizers

    def initial_status(self, obj: dict) -> None:
        obj["status"] = {"phase": "Active"}

    def prepare_update(self, new: dict, old: dict) -> None:
        super().prepare_update(new, old)
        # spec.finalizers is only changed through namespaces/finalize (the controller)
        if "spec" in old:
            new["spec"] = old["spec"]

    def generation_changed(self, new: dict, old: dict) -> bool:
        return False


class NamespaceStore(ResourceStore):
    strategy_class = NamespaceStrategy

    async def delete(
        self, namespace: str | None, name: str, options: dict, *, dry_run: bool = False
    ) -> tuple[dict, bool]:
        if name in PROTECTED:
            raise errors.forbidden("this namespace may not be deleted", self.info, name)

        def mark(ns: dict) -> dict:
            meta = ns["metadata"]
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_rfc3339()
                meta["deletionGracePeriodSeconds"] = 0
            ns.setdefault("status", {})["phase"] = "Terminating"
            return ns

        uid_pre, rv_pre = (options.get("preconditions") or {}).get("uid"), None
        cur = await self.get(None, name)
        if uid_pre and uid_pre != cur["metadata"].get("uid"):
            raise errors.conflict(self.info, name, "Precondition failed: UID mismatch")
        result = await self.guaranteed_update(
            None, name, mark, precondition_rv=rv_pre, subresource="finalize", dry_run=dry_run, validate=False
        )
        self.registry.wake_namespace_controller()
        return result, False

    async def create(self, namespace: str | None, body, *, dry_run: bool = False) -> dict:  # type: ignore[no-untyped-def]
        created = await super().create(namespace, body, dry_run=dry_run)
        if not dry_run:
            self.registry.wake_namespace_controller()
        return created

    def _prepare_update(self, new: dict, old: dict, subresource: str, validate: bool) -> dict:
        if subresource == "finalize":
            new["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion")
            return new
        new = super()._prepare_update(new, old, subresource, validate)
        # the deletion mark survives any update
        for f in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if f in old["metadata"]:
                new["metadata"][f] = old["metadata"][f]
        return new

    def ready_to_remove(self, obj: dict) -> bool:
        return not (obj.get("spec") or {}).get("finalizers")


class NamespaceController:
    """Empties terminating namespaces, then removes them; gives active ones their defaults.

    Every active namespace gets the `default` ServiceAccount (as kube-controller-manager's
    serviceaccount controller does); it comes back if deleted. (The `kube-root-ca.crt`
    ConfigMap of Kubernetes is not published.)
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.wake = asyncio.Event()

    async def run(self, interval: float = 2.0) -> None:
        while True:
            try:
                await self.sync_all()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - next round retries
                log.exception("namespace controller round failed")
            try:
                await asyncio.wait_for(self.wake.wait(), interval)
            except TimeoutError:
                pass
            self.wake.clear()

    async def sync_all(self) -> None:
        ns_store = self.registry.namespaces
        items, _ = ns_store.cache.list(ns_store.prefix(None))
        for ns in items:
            if ns["metadata"].get("deletionTimestamp"):
                await self.sync(ns["metadata"]["name"])
            else:
                await self.ensure_defaults(ns["metadata"]["name"])

    async def ensure_defaults(self, namespace: str) -> None:
        accounts = self.registry._by_plural("", "serviceaccounts")
        if accounts.cache.get(accounts.key(namespace, "default")) is not None:
            return
        try:
            await accounts.create(namespace, {"apiVersion": "v1", "kind": "ServiceAccount",
                                              "metadata": {"name": "default"}})
        except errors.ApiError as exc:
            if exc.code not in (403, 404, 409):  # terminating, gone, or made meanwhile
                log.warning("namespace %s: creating serviceaccount default failed: %s", namespace, exc.message)

    async def sync(self, name: str) -> bool:
        """One step for a terminating namespace; True when it is gone."""
        remaining = 0
        for store in self.registry.namespaced_stores():
            items, _ = store.cache.list(store.prefix(name))
            for obj in items:
                remaining += 1
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await store.delete(name, obj["metadata"]["name"], {})
                except errors.ApiError as exc:
                    if exc.code != 404:
                        log.warning("namespace %s: deleting %s/%s failed: %s", name,
                                    store.info.plural, obj["metadata"]["name"], exc.message)
        if remaining:
            return False
        ns_store = self.registry.namespaces
        await ns_store.consistent_revision()
        for store in self.registry.namespaced_stores():
            if store.cache.list(store.prefix(name))[0]:
                return False
        key = ns_store.key(None, name)
        cur = await ns_store.store.get(key)
        if cur is None:
            return True
        spec = cur.get("spec") or {}
        if FINALIZER in (spec.get("finalizers") or []):
            spec["finalizers"] = [f for f in spec["finalizers"] if f != FINALIZER]
            cur["spec"] = spec
        try:
            if not spec.get("finalizers") and not cur["metadata"].get("finalizers"):
                await ns_store.store.delete(key, expected_revision=int(cur["metadata"]["resourceVersion"]))
                log.info("namespace removed name=%s", name)
                return True
            await ns_store.store.update(key, cur, expected_revision=int(cur["metadata"]["resourceVersion"]))
        except (RevisionConflict, KeyNotFound):
            pass
        return False
