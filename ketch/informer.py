"""Informers: a local, always-catching-up copy of one resource, after client-go.

An informer lists, then watches from the list's resourceVersion, applying every
event to an in-memory store and telling its handlers. When the watch breaks it
resumes from the last resourceVersion it saw; when that version is too old
(410 Gone) it relists and turns the difference into events, so a consumer never
misses that an object changed or went away. Handlers run on the event loop and
must be quick: the controller idiom is to enqueue a key, nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx

from ketch.api.errors import ApiError
from ketch.api.resources import ResourceInfo
from ketch.client.aio import AsyncClient

log = logging.getLogger("ketch.informer")

Handler = Callable[..., None]
IndexFunc = Callable[[dict], Iterable[str]]


def object_key(obj: dict) -> str:
    """``namespace/name`` for namespaced objects, ``name`` otherwise (client-go's MetaNamespaceKey)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else meta["name"]


def split_key(key: str) -> tuple[str | None, str]:
    ns, _, name = key.rpartition("/")
    return (ns or None), name


def _rv(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion", "")


@dataclass
class _Handlers:
    on_add: Handler | None = None
    on_update: Handler | None = None
    on_delete: Handler | None = None


@dataclass
class Store:
    """Objects by key, with optional secondary indexes (e.g. pods by node)."""

    objects: dict[str, dict] = field(default_factory=dict)
    index_funcs: dict[str, IndexFunc] = field(default_factory=dict)
    indexes: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    def get(self, key: str) -> dict | None:
        return self.objects.get(key)

    def list(self) -> list[dict]:
        return list(self.objects.values())

    def keys(self) -> list[str]:
        return list(self.objects)

    def by_index(self, index: str, value: str) -> list[dict]:
        return [self.objects[k] for k in self.indexes.get(index, {}).get(value, ()) if k in self.objects]

    def add_index(self, name: str, func: IndexFunc) -> None:
        self.index_funcs[name] = func
        self.indexes[name] = {}
        for key, obj in self.objects.items():
            self._index(name, key, obj)

    def put(self, key: str, obj: dict) -> dict | None:
        old = self.objects.get(key)
        if old is not None:
            self._unindex(key, old)
        self.objects[key] = obj
        for name in self.index_funcs:
            self._index(name, key, obj)
        return old

    def pop(self, key: str) -> dict | None:
        old = self.objects.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _index(self, name: str, key: str, obj: dict) -> None:
        for value in self.index_funcs[name](obj):
            self.indexes[name].setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: dict) -> None:
        for name, func in self.index_funcs.items():
            for value in func(obj):
                bucket = self.indexes[name].get(value)
                if bucket is not None:
                    bucket.discard(key)
                    if not bucket:
                        del self.indexes[name][value]


class Informer:
    """List+watch one resource (optionally one namespace / selector) into a Store."""

    def __init__(
        self,
        client: AsyncClient,
        info: ResourceInfo,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout: int = 300,
        retry_delay: float = 1.0,
    ) -> None:
        self.client = client
        self.info = info
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.watch_timeout = watch_timeout
        self.retry_delay = retry_delay
        self.store = Store()
        self.resource_version = ""
        self._handlers: list[_Handlers] = []
        self._synced = asyncio.Event()
        self.relists = 0

    def add_handler(
        self,
        on_add: Handler | None = None,
        on_update: Handler | None = None,
        on_delete: Handler | None = None,
    ) -> None:
        """``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)``."""
        self._handlers.append(_Handlers(on_add, on_update, on_delete))

    def add_index(self, name: str, func: IndexFunc) -> None:
        self.store.add_index(name, func)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._synced.wait(), timeout)

    async def run(self) -> None:
        """Keep the store current until cancelled."""
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                await self._watch()
            except asyncio.CancelledError:
                raise
            except ApiError as err:
                if err.code == 410:
                    log.info("informer resource=%s msg=%r relisting", self.info.plural, err.message)
                    need_list = True
                    continue
                log.warning("informer resource=%s error=%r", self.info.plural, err)
                need_list = need_list or err.code >= 500
                await asyncio.sleep(self.retry_delay)
            except (httpx.HTTPError, OSError, ValueError) as err:
                log.warning("informer resource=%s connection error=%r", self.info.plural, err)
                await asyncio.sleep(self.retry_delay)

    async def _relist(self) -> None:
        page = await self.client.list_all(
            self.info,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        self.relists += 1
        fresh: dict[str, dict] = {}
        for obj in page.get("items") or []:
            obj.setdefault("kind", self.info.kind)
            obj.setdefault("apiVersion", self.info.api_version)
            fresh[object_key(obj)] = obj
        for key in [k for k in self.store.keys() if k not in fresh]:
            self._apply("DELETED", self.store.get(key))
        for obj in fresh.values():
            self._apply("MODIFIED", obj)
        self.resource_version = page["metadata"]["resourceVersion"]
        self._synced.set()

    async def _watch(self) -> None:
        async for event in self.client.watch(
            self.info,
            self.namespace,
            resource_version=self.resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=self.watch_timeout,
        ):
            kind, obj = event["type"], event["object"]
            if kind == "BOOKMARK":
                self.resource_version = _rv(obj) or self.resource_version
                continue
            self._apply(kind, obj)
            self.resource_version = _rv(obj) or self.resource_version

    def _apply(self, kind: str, obj: dict | None) -> None:
        if obj is None:
            return
        key = object_key(obj)
        if kind == "DELETED":
            old = self.store.pop(key)
            if old is not None:
                self._fire("on_delete", obj)
            return
        old = self.store.put(key, obj)
        if old is None:
            self._fire("on_add", obj)
        elif _rv(old) != _rv(obj):
            self._fire("on_update", old, obj)

    def _fire(self, which: str, *args: dict) -> None:
        for handlers in self._handlers:
            fn = getattr(handlers, which)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception:  # a handler bug must not stop the informer
                log.exception("informer resource=%s handler=%s failed", self.info.plural, which)
