"""All resource stores of one apiserver, their watch caches and background loops."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from apiserver.registry.generic import ResourceStore
from apiserver.registry.namespaces import DEFAULT_NAMESPACES, NamespaceController, NamespaceStore
from apiserver.registry.nodes import NodeStore
from apiserver.registry.pods import PodStore
from apiserver.registry.services import ServiceStore
from apiserver.storage.errors import KeyExists
from ketch.api import errors
from ketch.api.resources import RESOURCES, ResourceInfo

if TYPE_CHECKING:
    from apiserver.storage.etcd_store import EtcdStore

log = logging.getLogger("ketch.apiserver.registry")

_STORE_CLASSES: dict[tuple[str, str], type[ResourceStore]] = {
    ("", "pods"): PodStore,
    ("", "namespaces"): NamespaceStore,
    ("", "services"): ServiceStore,
    ("", "nodes"): NodeStore,
}


def base_key(prefix: str, info: ResourceInfo) -> str:
    """`/registry/core/pods`, `/registry/apps/deployments` (docs/internals.md → storage keys)."""
    return f"{prefix.rstrip('/')}/{info.group or 'core'}/{info.plural}"


class Registry:
    def __init__(self, store: EtcdStore, prefix: str = "/registry", *, history: int = 10_000,
                 pod_grace_slack_seconds: float = 5.0, service_cidr: str = "10.96.0.0/12",
                 leader: bool = True) -> None:
        from apiserver.storage.watch_cache import WatchCache

        self.store = store
        self.prefix = prefix
        self.stores: dict[ResourceInfo, ResourceStore] = {}
        for info in RESOURCES:
            key = base_key(prefix, info)
            cache = WatchCache(store, key + "/", history=history)
            cls = _STORE_CLASSES.get((info.group, info.plural), ResourceStore)
            self.stores[info] = cls(info, store, cache, key, self)
        self.namespaces: NamespaceStore = self._by_plural("", "namespaces")  # type: ignore[assignment]
        self.pods: PodStore = self._by_plural("", "pods")  # type: ignore[assignment]
        self.services: ServiceStore = self._by_plural("", "services")  # type: ignore[assignment]
        self.services.configure(service_cidr)
        self.namespace_controller = NamespaceController(self)
        self.pod_grace_slack_seconds = pod_grace_slack_seconds
        #: Whether this process runs the once-per-cluster work (see start); with --workers,
        #: only worker 0 does.
        self.leader = leader
        self._tasks: list[asyncio.Task] = []
        self.synced = False

    def _by_plural(self, group: str, plural: str) -> ResourceStore:
        for info, store in self.stores.items():
            if info.group == group and info.plural == plural:
                return store
        raise KeyError(plural)

    def for_info(self, info: ResourceInfo) -> ResourceStore:
        return self.stores[info]

    def namespaced_stores(self) -> list[ResourceStore]:
        return [s for i, s in self.stores.items() if i.namespaced]

    async def start(self) -> None:
        """Fill every watch cache; the leader also creates the default namespaces and starts the
        background loops, other workers wait until the default namespaces exist."""
        await asyncio.gather(*(s.cache.start() for s in self.stores.values()))
        if not self.leader:
            await self._wait_for_default_namespaces()
            self.synced = True
            return
        for name in DEFAULT_NAMESPACES:
            try:
                await self.namespaces.create(None, {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": name}})
            except errors.ApiError as exc:
                if exc.code != 409:
                    raise
            except KeyExists:
                pass
        self._tasks = [
            asyncio.create_task(self.pods.run_reaper(self.pod_grace_slack_seconds), name="pod-reaper"),
            asyncio.create_task(self.namespace_controller.run(), name="namespace-controller"),
            asyncio.create_task(self._wake_on_namespace_changes(), name="namespace-events"),
        ]
        self.synced = True

    async def _wait_for_default_namespaces(self, timeout: float = 120.0) -> None:
        """A worker is ready once the leader has made the default namespaces."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            missing = [n for n in DEFAULT_NAMESPACES if self.namespaces.cache.get(self.namespaces.key(None, n)) is None]
            if not missing:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"default namespaces {missing} not created within {timeout}s (worker 0 down?)")
            await asyncio.sleep(0.1)

    async def _wake_on_namespace_changes(self) -> None:
        """Wake the namespace controller on every namespace change, whichever process wrote it."""
        while True:
            try:
                async for _event in self.namespaces.cache.watch(self.namespaces.prefix(None), 0):
                    self.wake_namespace_controller()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the controller's interval still runs it
                log.warning("namespace event follower ended, restarting: %s", exc)
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(s.cache.stop() for s in self.stores.values()), return_exceptions=True)

    def wake_namespace_controller(self) -> None:
        self.namespace_controller.wake.set()

    async def check_namespace_accepts(self, info: ResourceInfo, namespace: str | None, name: str) -> None:
        """404 when the namespace is missing, 403 when it is being terminated."""
        if not namespace:
            raise errors.bad_request("a namespace is required for a namespaced resource")
        key = self.namespaces.key(None, namespace)
        ns = self.namespaces.cache.get(key)
        if ns is None:
            ns = await self.store.get(key)
        if ns is None:
            raise errors.not_found(self.namespaces.info, namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                f"unable to create new content in namespace {namespace} because it is being terminated",
                info,
                name,
            )
