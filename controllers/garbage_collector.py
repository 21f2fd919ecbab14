"""Garbage collection by ownerReferences, with Kubernetes' three propagation policies.

- Background: a dependent all of whose owners are gone is deleted.
- Foreground: an owner being deleted with the ``foregroundDeletion`` finalizer
  waits until its ``blockOwnerDeletion`` dependents are gone (they are deleted
  in the foreground too), then the finalizer is removed and the owner goes.
- Orphan: an owner with the ``orphan`` finalizer has its ownerReferences
  removed from every dependent, then the finalizer; the dependents stay.

An owner's absence seen in a cache is confirmed with a live GET before anything
is deleted: a dependent created a moment after its owner must not be collected
because the owner's informer has not caught up.
"""

from __future__ import annotations

from controllers.controller import Controller, InformerSet
from ketch.api.errors import ApiError
from ketch.api.resources import ResourceInfo, by_kind, lookup

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"

#: The kinds whose objects may own or be owned; all are watched anyway by other controllers.
WATCHED = [
    lookup("", "v1", "pods"),
    lookup("apps", "v1", "replicasets"),
    lookup("apps", "v1", "deployments"),
    lookup("apps", "v1", "daemonsets"),
    lookup("batch", "v1", "jobs"),
    lookup("", "v1", "services"),
    lookup("", "v1", "endpoints"),
    lookup("", "v1", "configmaps"),
    lookup("", "v1", "secrets"),
]


def _key(info: ResourceInfo, obj: dict) -> str:
    meta = obj["metadata"]
    name = f"{meta['namespace']}/{meta['name']}" if info.namespaced else meta["name"]
    return f"{info.group_resource}|{name}"


class GarbageCollector(Controller):
    name = "garbagecollector"
    workers = 4

    def __init__(self, client, informers: InformerSet, recorder) -> None:  # noqa: ANN001
        super().__init__(client, informers, recorder)
        self.by_resource: dict[str, tuple[ResourceInfo, object]] = {}
        for info in WATCHED:
            informer = informers.get(info)
            informer.add_index("owner", lambda o: [r["uid"] for r in o["metadata"].get("ownerReferences") or []])
            self.by_resource[info.group_resource] = (info, informer)
            informer.add_handler(
                lambda o, info=info: self._changed(info, o),
                lambda old, new, info=info: self._changed(info, new),
                lambda o, info=info: self._deleted(info, o),
            )

    def _changed(self, info: ResourceInfo, obj: dict) -> None:
        meta = obj["metadata"]
        if meta.get("ownerReferences") or (meta.get("deletionTimestamp") and meta.get("finalizers")):
            self.queue.add(_key(info, obj))

    def _deleted(self, info: ResourceInfo, obj: dict) -> None:
        """An owner went away: its dependents need a look; so does an owner waiting on this one."""
        uid = obj["metadata"].get("uid")
        for dep_info, informer in self.by_resource.values():
            for dep in informer.store.by_index("owner", uid):
                self.queue.add(_key(dep_info, dep))
        for ref in obj["metadata"].get("ownerReferences") or []:
            owner_info = by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
            if owner_info and owner_info.group_resource in self.by_resource:
                ns = obj["metadata"].get("namespace")
                name = f"{ns}/{ref['name']}" if owner_info.namespaced else ref["name"]
                self.queue.add(f"{owner_info.group_resource}|{name}")

    def _dependents(self, uid: str) -> list[tuple[ResourceInfo, dict]]:
        out = []
        for info, informer in self.by_resource.values():
            out.extend((info, d) for d in informer.store.by_index("owner", uid))
        return out

    async def reconcile(self, key: str) -> None:
        resource, _, name = key.partition("|")
        info, informer = self.by_resource[resource]
        obj = informer.store.get(name)
        if obj is None:
            return
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") and ORPHAN in finalizers:
            await self._orphan_dependents(info, obj)
            return
        if meta.get("deletionTimestamp") and FOREGROUND in finalizers:
            await self._delete_in_foreground(info, obj)
            return
        if meta.get("ownerReferences"):
            await self._collect_if_orphaned(info, obj)

    async def _owner_exists(self, ref: dict, namespace: str | None) -> bool:
        info = by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if info is None:
            return False
        try:
            owner = await self.client.get(info, ref["name"], namespace if info.namespaced else None)
        except ApiError as err:
            if err.code == 404:
                return False
            raise
        return owner["metadata"].get("uid") == ref.get("uid")

    async def _collect_if_orphaned(self, info: ResourceInfo, obj: dict) -> None:
        meta = obj["metadata"]
        refs = meta.get("ownerReferences") or []
        present, waiting_foreground = [], False
        for ref in refs:
            if await self._owner_exists(ref, meta.get("namespace")):
                present.append(ref)
                waiting_foreground |= await self._owner_deleting_in_foreground(ref, meta.get("namespace"))
        if waiting_foreground and not meta.get("deletionTimestamp"):
            await self._delete(info, obj, "Foreground")
            return
        if present and len(present) < len(refs):
            await self._patch_refs(info, obj, present)
        elif not present:
            self.log.info("collect kind=%s name=%s owners gone", info.kind, meta["name"])
            await self._delete(info, obj, "Background")

    async def _owner_deleting_in_foreground(self, ref: dict, namespace: str | None) -> bool:
        info = by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        entry = self.by_resource.get(info.group_resource) if info else None
        if entry is None:
            return False
        key = f"{namespace}/{ref['name']}" if info.namespaced else ref["name"]
        owner = entry[1].store.get(key)
        meta = (owner or {}).get("metadata") or {}
        return bool(meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or [])
                    and ref.get("blockOwnerDeletion"))

    async def _delete_in_foreground(self, info: ResourceInfo, owner: dict) -> None:
        uid = owner["metadata"]["uid"]
        blocking = 0
        for dep_info, dep in self._dependents(uid):
            ref = next(r for r in dep["metadata"]["ownerReferences"] if r.get("uid") == uid)
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if not dep["metadata"].get("deletionTimestamp"):
                await self._delete(dep_info, dep, "Foreground")
        if blocking == 0:
            await self._remove_finalizer(info, owner, FOREGROUND)

    async def _orphan_dependents(self, info: ResourceInfo, owner: dict) -> None:
        uid = owner["metadata"]["uid"]
        for dep_info, dep in self._dependents(uid):
            refs = [r for r in dep["metadata"]["ownerReferences"] if r.get("uid") != uid]
            await self._patch_refs(dep_info, dep, refs)
        await self._remove_finalizer(info, owner, ORPHAN)

    async def _patch_refs(self, info: ResourceInfo, obj: dict, refs: list[dict]) -> None:
        meta = obj["metadata"]
        patch = {"metadata": {"ownerReferences": refs or None, "uid": meta["uid"]}}
        try:
            await self.client.patch(info, meta["name"], patch, meta.get("namespace"))
        except ApiError as err:
            if err.code not in (404, 409):
                raise

    async def _remove_finalizer(self, info: ResourceInfo, obj: dict, finalizer: str) -> None:
        meta = obj["metadata"]
        remaining = [f for f in meta.get("finalizers") or [] if f != finalizer]
        patch = {"metadata": {"finalizers": remaining or None, "resourceVersion": meta["resourceVersion"]}}
        try:
            await self.client.patch(info, meta["name"], patch, meta.get("namespace"))
        except ApiError as err:
            if err.code == 409:
                self.queue.add_after(_key(info, obj), 0.2)
            elif err.code != 404:
                raise

    async def _delete(self, info: ResourceInfo, obj: dict, policy: str) -> None:
        meta = obj["metadata"]
        try:
            await self.client.delete(
                info, meta["name"], meta.get("namespace"), propagation_policy=policy,
                preconditions={"uid": meta["uid"]},
            )
        except ApiError as err:
            if err.code not in (404, 409):
                raise

