"""Kubernetes object semantics over storage, for one resource.

`ResourceStore` turns create/get/list/update/patch/delete into etcd operations
with the metadata rules of kube-apiserver's generic registry: uid,
creationTimestamp, generation, resourceVersion preconditions, finalizers and
deletionTimestamp. Reads of lists come from the resource's WatchCache;
single-object reads and every write go to etcd (one round trip per create).
Subclasses (pods, namespaces) change deletion.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from apiserver.metrics import ETCD_DURATION
from apiserver.registry.strategy import SERVER_OWNED_METADATA, Strategy
from apiserver.storage.errors import KeyExists, KeyNotFound, RevisionCompacted, RevisionConflict
from ketch.api import errors
from ketch.api.resources import ResourceInfo
from ketch.api.timeutil import format_rfc3339, now
from ketch.api.validation import FieldError

if TYPE_CHECKING:
    from apiserver.registry.registry import Registry
    from apiserver.storage.etcd_store import EtcdStore, Fence
    from apiserver.storage.watch_cache import WatchCache

log = logging.getLogger("ketch.apiserver.registry")

_CONFLICT_RETRIES = 8
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName alphabet


@dataclass
class ListOptions:
    label_selector: Any = None  # ketch.api.selectors.LabelSelector | None
    field_selector: Any = None  # ketch.api.selectors.FieldSelector | None
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""


_etcd_children: dict[tuple[str, str], Any] = {}


def _timed(operation: str, kind: str) -> Callable[[], None]:
    """Start timing one etcd request; call the result when it is done (label child cached)."""
    child = _etcd_children.get((operation, kind))
    if child is None:
        child = _etcd_children[(operation, kind)] = ETCD_DURATION.labels(operation, kind)
    start = time.perf_counter()

    def done() -> None:
        child.observe(time.perf_counter() - start)

    return done


_stamp: tuple[int, str] = (0, "")


def _creation_timestamp() -> str:
    """Now as RFC 3339 seconds (as format_rfc3339), formatted once per second, not per create."""
    global _stamp
    second = int(time.time())
    if second != _stamp[0]:
        _stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _stamp[1]


def encode_continue(revision: int, last_key: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key + "\x00"})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return int(data["rv"]), str(data["start"])
    except Exception as exc:  # noqa: BLE001 - any garbage is the client's fault
        raise errors.bad_request(f"continue key is not valid: {exc}") from None


def preconditions_from(options: dict) -> tuple[str | None, str | None]:
    pre = options.get("preconditions") or {}
    return pre.get("uid"), pre.get("resourceVersion")


class ResourceStore:
    """Create/read/update/delete of one resource with Kubernetes semantics."""

    strategy_class: type[Strategy] = Strategy

    def __init__(
        self,
        info: ResourceInfo,
        store: EtcdStore,
        cache: WatchCache,
        base_key: str,
        registry: Registry,
    ) -> None:
        self.info = info
        self.store = store
        self.cache = cache
        self.base_key = base_key.rstrip("/")  # "/registry/core/pods"
        self.registry = registry
        self.strategy = self.strategy_class(info)
        self._validate: Callable[..., list] | None = None
        self._defaults: Callable[..., None] | None = None

    # --- keys -------------------------------------------------------------------

    def key(self, namespace: str | None, name: str) -> str:
        if self.info.namespaced:
            return f"{self.base_key}/{namespace}/{name}"
        return f"{self.base_key}/{name}"

    def prefix(self, namespace: str | None) -> str:
        if self.info.namespaced and namespace:
            return f"{self.base_key}/{namespace}/"
        return f"{self.base_key}/"

    # --- schema-driven steps ----------------------------------------------------

    def _defaults_and_validation(self, obj: dict, old: dict | None) -> None:
        if self._validate is None:
            from ketch.api.defaults import apply_defaults
            from ketch.api.validation import validate_object

            self._validate, self._defaults = validate_object, apply_defaults
        assert self._defaults is not None
        self._defaults(self.info, obj)
        errs = self._validate(self.info, obj, old=old)
        if errs:
            name = obj.get("metadata", {}).get("name") or obj.get("metadata", {}).get("generateName", "")
            raise errors.invalid(self.info, name, errs)

    def _check_type(self, obj: Any) -> dict:
        if not isinstance(obj, dict):
            raise errors.bad_request(f"the body of a {self.info.kind} must be a JSON object")
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind is None and api_version is None:
            obj["kind"], obj["apiVersion"] = self.info.kind, self.info.api_version
        elif kind != self.info.kind or api_version != self.info.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) and kind ({kind}) do not match "
                f"the resource {self.info.group_resource} ({self.info.api_version}, {self.info.kind})"
            )
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = {}
        elif not isinstance(meta, dict):
            raise errors.bad_request("metadata must be a JSON object")
        return obj

    def _check_namespace(self, obj: dict, namespace: str | None) -> None:
        meta = obj["metadata"]
        if self.info.namespaced:
            given = meta.get("namespace")
            if given and given != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)

    # --- reads ------------------------------------------------------------------

    async def get(self, namespace: str | None, name: str, resource_version: str = "") -> dict:
        if resource_version:
            if resource_version != "0":
                try:
                    wanted = int(resource_version)
                except ValueError:
                    raise errors.bad_request(
                        f"invalid resourceVersion {resource_version!r}: must be an integer"
                    ) from None
                await self.cache.wait_for_revision(wanted, 3.0)
            obj = self.cache.get(self.key(namespace, name))
        else:
            done = _timed("get", self.info.kind)
            obj = await self.store.get(self.key(namespace, name))
            done()
        if obj is None:
            raise errors.not_found(self.info, name)
        return obj

    async def consistent_revision(self) -> int:
        """Wait until the cache has seen everything etcd has now (a consistent read from cache).

        WatchCache.sync: one marker write on the resource's prefix, then wait for it to come
        back through the watch (cheaper than reading etcd's revision, which then needs the
        marker anyway; see docs/internals.md → storage).
        """
        done = _timed("sync", self.info.kind)
        try:
            return await self.cache.sync(10.0)
        finally:
            done()

    async def list(self, namespace: str | None, opts: ListOptions) -> dict:
        """A List object, filtered and paginated.

        First pages come from the watch cache; a `continue` page is read from etcd at the
        first page's revision (as kube-apiserver does), so all pages form one snapshot;
        410 Expired when etcd compacted that revision away.
        """
        if opts.continue_token:
            revision, rel_start = decode_continue(opts.continue_token)
            selected, last_key = await self._continued_page(namespace, opts, revision,
                                                            self.prefix(None) + rel_start)
            remaining = None
        else:
            if opts.resource_version == "":
                await self.consistent_revision()
            elif opts.resource_version != "0":
                try:
                    wanted = int(opts.resource_version)
                except ValueError:
                    raise errors.bad_request(
                        f"invalid resourceVersion {opts.resource_version!r}: must be an integer"
                    ) from None
                await self.cache.wait_for_revision(wanted, 3.0)
            items, revision = self.cache.list(self.prefix(namespace))
            selected, last_key, remaining = self.select(items, opts)
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if last_key is not None:
            meta["continue"] = encode_continue(revision, last_key[len(self.prefix(None)):])
            if remaining is not None:
                meta["remainingItemCount"] = remaining
        return {
            "kind": self.info.list_kind,
            "apiVersion": self.info.api_version,
            "metadata": meta,
            "items": selected,
        }

    async def _continued_page(
        self, namespace: str | None, opts: ListOptions, revision: int, start_key: str
    ) -> tuple[list[dict], str | None]:
        """(page, key of its last item when more remain) read from etcd at `revision`."""
        filtering = opts.label_selector is not None or opts.field_selector is not None
        limit = opts.limit or 0
        out: list[dict] = []
        next_key: str | None = start_key
        while next_key is not None:
            want = (limit - len(out)) if limit else 1 << 30
            done = _timed("list", self.info.kind)
            try:
                items, _, next_key = await self.store.list_page(
                    self.prefix(namespace), limit=want, start_key=next_key, revision=revision
                )
            except RevisionCompacted:
                raise errors.gone(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter."
                ) from None
            finally:
                done()
            for i, obj in enumerate(items):
                if filtering and not self.matches(obj, opts):
                    continue
                out.append(obj)
                if limit and len(out) >= limit:
                    more = next_key is not None or i + 1 < len(items)
                    return out, (self._key_of(obj) if more else None)
        return out, None

    def matches(self, obj: dict, opts: ListOptions) -> bool:
        if opts.label_selector is not None:
            if not opts.label_selector.matches(obj.get("metadata", {}).get("labels") or {}):
                return False
        if opts.field_selector is not None:
            from ketch.api.selectors import object_fields

            if not opts.field_selector.matches(object_fields(self.info, obj)):
                return False
        return True

    def select(self, items: list[dict], opts: ListOptions) -> tuple[list[dict], str | None, int | None]:
        """(page, key of its last item when more remain, remaining count when known)."""
        filtering = opts.label_selector is not None or opts.field_selector is not None
        out: list[dict] = []
        key_of = self._key_of
        for i, obj in enumerate(items):
            if filtering and not self.matches(obj, opts):
                continue
            out.append(obj)
            if opts.limit and len(out) >= opts.limit:
                rest = items[i + 1:]
                if filtering:
                    more = any(self.matches(o, opts) for o in rest)
                    return out, (key_of(obj) if more else None), None
                return out, (key_of(obj) if rest else None), (len(rest) or None)
        return out, None, None

    def _key_of(self, obj: dict) -> str:
        meta = obj["metadata"]
        return self.key(meta.get("namespace"), meta["name"])

    # --- create -----------------------------------------------------------------

    async def create(self, namespace: str | None, body: Any, *, dry_run: bool = False) -> dict:
        obj = self._check_type(body)
        self._check_namespace(obj, namespace)
        meta = obj["metadata"]
        generate = meta.get("generateName")
        name_given = bool(meta.get("name"))
        if not name_given and generate:
            meta["name"] = self._generated_name(generate)
        if not meta.get("name"):
            raise errors.invalid(self.info, "", [FieldError("FieldValueRequired", "metadata.name",
                                                        "Required value: name or generateName is required")])
        for f in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"):
            meta.pop(f, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _creation_timestamp()
        meta["generation"] = 1
        self.strategy.prepare_create(obj)
        self._defaults_and_validation(obj, None)
        if self.info.namespaced:
            await self.registry.check_namespace_accepts(self.info, namespace, meta["name"])
        self.before_create(obj)
        if dry_run:
            return obj
        for _attempt in range(3):
            try:
                done = _timed("create", self.info.kind)
                try:
                    return await self.store.create(self.key(namespace, meta["name"]), obj, fence=self.write_fence())
                finally:
                    done()
            except KeyExists:
                if name_given or not generate:
                    raise errors.already_exists(self.info, meta["name"]) from None
                meta["name"] = self._generated_name(generate)
        raise errors.already_exists(self.info, meta["name"])

    def before_create(self, obj: dict) -> None:
        """Last step before a new object is stored (services allocate addresses here)."""

    def write_fence(self) -> Fence | None:
        """The fence guarding this task's create/update (services: allocations); None: none."""
        return None

    @staticmethod
    def _generated_name(prefix: str) -> str:
        return prefix + "".join(random.choice(_NAME_CHARS) for _ in range(5))

    # --- update -----------------------------------------------------------------

    async def update(
        self,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> dict:
        """PUT: replace the object (or only its status), guarded by resourceVersion when given."""
        new = self._check_type(body)
        given_name = new["metadata"].get("name")
        if given_name and given_name != name:
            raise errors.bad_request(
                f"the name of the object ({given_name}) does not match the name on the URL ({name})"
            )
        new["metadata"]["name"] = name
        self._check_namespace(new, namespace)
        want_rv = new["metadata"].get("resourceVersion") or None

        def mutate(_old: dict) -> dict:
            return copy.deepcopy(new)

        return await self.guaranteed_update(
            namespace, name, mutate, precondition_rv=want_rv, subresource=subresource, dry_run=dry_run
        )

    async def guaranteed_update(
        self,
        namespace: str | None,
        name: str,
        mutate: Callable[[dict], dict],
        *,
        precondition_rv: str | None = None,
        subresource: str = "",
        dry_run: bool = False,
        validate: bool = True,
    ) -> dict:
        """Read, apply `mutate`, write guarded on the read revision; retry conflicts when unconditional."""
        key = self.key(namespace, name)
        for _attempt in range(_CONFLICT_RETRIES):
            done = _timed("get", self.info.kind)
            old = await self.store.get(key)
            done()
            if old is None:
                raise errors.not_found(self.info, name)
            old_meta = old["metadata"]
            if precondition_rv is not None and precondition_rv != old_meta.get("resourceVersion"):
                raise errors.conflict(self.info, name)
            new = mutate(copy.deepcopy(old))
            new = self._check_type(new)
            new_rv = new["metadata"].get("resourceVersion")
            if new_rv and new_rv != old_meta.get("resourceVersion"):
                raise errors.conflict(self.info, name)
            new = self._prepare_update(new, old, subresource, validate)
            if _same(new, old):
                return old
            if dry_run:
                return new
            result = await self._write_update(key, new, old)
            if result is not None:
                return result
            if precondition_rv is not None:
                raise errors.conflict(self.info, name)
        raise errors.conflict(self.info, name, "too many concurrent updates, try again")

    def _prepare_update(self, new: dict, old: dict, subresource: str, validate: bool) -> dict:
        old_meta = old["metadata"]
        if subresource == "status":
            new = self.strategy.prepare_status_update(new, old)
        else:
            self.strategy.prepare_update(new, old)
        meta = new["metadata"]
        for f in SERVER_OWNED_METADATA:
            if f in old_meta:
                meta[f] = old_meta[f]
            else:
                meta.pop(f, None)
        meta["name"] = old_meta["name"]
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        meta.pop("selfLink", None)
        meta.pop("managedFields", None)
        if validate:
            self._defaults_and_validation(new, old)
        if self.strategy.generation_changed(new, old):
            meta["generation"] = int(old_meta.get("generation") or 0) + 1
        return new

    async def _write_update(self, key: str, new: dict, old: dict) -> dict | None:
        """Store `new` over `old`; None on a lost race. Deletes when the last finalizer went."""
        meta = new["metadata"]
        rev = int(old["metadata"]["resourceVersion"])
        try:
            if meta.get("deletionTimestamp") and not meta.get("finalizers") and self.ready_to_remove(new):
                done = _timed("delete", self.info.kind)
                try:
                    await self.store.delete(key, expected_revision=rev)
                finally:
                    done()
                meta.pop("resourceVersion", None)
                return new
            done = _timed("update", self.info.kind)
            try:
                return await self.store.update(key, new, expected_revision=rev, fence=self.write_fence())
            finally:
                done()
        except RevisionConflict:
            return None
        except KeyNotFound:
            raise errors.not_found(self.info, meta["name"]) from None

    def ready_to_remove(self, obj: dict) -> bool:
        """Whether a deleted object with no finalizers left may go now (pods wait for their grace)."""
        return True

    # --- delete -----------------------------------------------------------------

    def grace_period(self, obj: dict, options: dict) -> int:
        """Seconds the object stays marked before removal; 0 removes it at once."""
        return 0

    async def delete(
        self, namespace: str | None, name: str, options: dict, *, dry_run: bool = False
    ) -> tuple[dict, bool]:
        """(object, removed now). With finalizers or a grace period the object stays, marked."""
        key = self.key(namespace, name)
        uid_pre, rv_pre = preconditions_from(options)
        for _attempt in range(_CONFLICT_RETRIES):
            done = _timed("get", self.info.kind)
            cur = await self.store.get(key)
            done()
            if cur is None:
                raise errors.not_found(self.info, name)
            meta = cur["metadata"]
            if uid_pre and uid_pre != meta.get("uid"):
                raise errors.conflict(
                    self.info, name,
                    f"Precondition failed: UID in precondition: {uid_pre}, UID in object meta: {meta.get('uid')}",
                )
            if rv_pre and rv_pre != meta.get("resourceVersion"):
                raise errors.conflict(
                    self.info, name,
                    f"Precondition failed: ResourceVersion in precondition: {rv_pre}, "
                    f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
                )
            marked = self._mark_for_deletion(cur, options)
            if dry_run:
                return (marked if marked is not None else cur), marked is None
            rev = int(meta["resourceVersion"])
            try:
                if marked is None:
                    d = _timed("delete", self.info.kind)
                    try:
                        gone = await self.store.delete(key, expected_revision=rev)
                    finally:
                        d()
                    return (gone or cur), True
                if _same(marked, cur):
                    return cur, False
                d = _timed("update", self.info.kind)
                try:
                    return await self.store.update(key, marked, expected_revision=rev), False
                finally:
                    d()
            except RevisionConflict:
                continue
            except KeyNotFound:
                raise errors.not_found(self.info, name) from None
        raise errors.conflict(self.info, name, "too many concurrent updates, try again")

    def _mark_for_deletion(self, cur: dict, options: dict) -> dict | None:
        """The object marked as being deleted, or None when it is to be removed now."""
        grace = self.grace_period(cur, options)
        meta = cur["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is True:
            policy = "Orphan"
        wanted = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(policy or "")
        if wanted and not meta.get("deletionTimestamp"):
            other = "orphan" if wanted == "foregroundDeletion" else "foregroundDeletion"
            finalizers = [f for f in finalizers if f != other]
            if wanted not in finalizers:
                finalizers.append(wanted)
        if not finalizers and grace <= 0:
            return None
        marked = copy.deepcopy(cur)
        mmeta = marked["metadata"]
        if finalizers:
            mmeta["finalizers"] = finalizers
        current_grace = mmeta.get("deletionGracePeriodSeconds")
        if not mmeta.get("deletionTimestamp"):
            mmeta["deletionTimestamp"] = format_rfc3339(now() + timedelta(seconds=max(grace, 0)))
            mmeta["deletionGracePeriodSeconds"] = max(grace, 0)
        elif current_grace is not None and grace < current_grace:
            # a shorter grace period wins, as in Kubernetes
            mmeta["deletionTimestamp"] = format_rfc3339(now() + timedelta(seconds=max(grace, 0)))
            mmeta["deletionGracePeriodSeconds"] = max(grace, 0)
        if not finalizers and mmeta.get("deletionGracePeriodSeconds") == 0:
            return None
        return marked

    async def delete_collection(
        self, namespace: str | None, options: dict, opts: ListOptions, *, dry_run: bool = False
    ) -> dict:
        listing = await self.list(namespace, ListOptions(opts.label_selector, opts.field_selector))
        deleted = []
        for obj in listing["items"]:
            meta = obj["metadata"]
            try:
                result, _ = await self.delete(meta.get("namespace"), meta["name"], options, dry_run=dry_run)
            except errors.ApiError as exc:
                if exc.code == 404:
                    continue
                raise
            deleted.append(result)
        return {
            "kind": self.info.list_kind,
            "apiVersion": self.info.api_version,
            "metadata": {"resourceVersion": listing["metadata"]["resourceVersion"]},
            "items": deleted,
        }


def _same(a: dict, b: dict) -> bool:
    """Equal apart from resourceVersion (a no-op write is skipped, as kube-apiserver does)."""
    am, bm = a.get("metadata", {}), b.get("metadata", {})
    if {k: v for k, v in am.items() if k != "resourceVersion"} != {
        k: v for k, v in bm.items() if k != "resourceVersion"
    }:
        return False
    return {k: v for k, v in a.items() if k != "metadata"} == {
        k: v for k, v in b.items() if k != "metadata"
    }
