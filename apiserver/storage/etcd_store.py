"""EtcdStore: Kubernetes-style objects in etcd, every write guarded by a revision.

Values are compact JSON without `metadata.resourceVersion`; the resource version
of an object is the etcd `mod_revision` of its key and is set on every object
this module returns. Each write is one etcd transaction (one round trip): the
comparison carries the precondition and the failure branch reads the key, so a
refused write knows why without a second request.

The store talks to one etcd endpoint at a time through an `aetcd.Client` (its
gRPC stubs are used directly where aetcd hides the response header). When the
endpoint fails (UNAVAILABLE, deadline exceeded) the store moves to the next one;
reads and revision-guarded writes are retried there, an unguarded delete is not
(its retry could answer 404 for a delete that happened).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import aetcd
from aetcd import rpc
from aetcd.utils import prefix_range_end
from grpc import StatusCode
from grpc.aio import AioRpcError

from apiserver.codec import dumps as _dumps
from apiserver.codec import loads as _loads

from .errors import (
    FenceMoved,
    KeyExists,
    KeyNotFound,
    RevisionCompacted,
    RevisionConflict,
    StorageError,
    StorageUnavailable,
)

log = logging.getLogger("ketch.apiserver.storage")

T = TypeVar("T")

#: gRPC codes after which another endpoint (or the same one, later) may answer.
_RETRYABLE = frozenset({StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED, StatusCode.CANCELLED})

_EQUAL = rpc.Compare.EQUAL
_GREATER = rpc.Compare.GREATER
_MOD = rpc.Compare.MOD
_CREATE = rpc.Compare.CREATE
_PUT_EVENT = rpc.Event.PUT

_CHANNEL_OPTIONS = {
    "grpc.max_receive_message_length": 256 * 1024 * 1024,
    "grpc.max_send_message_length": 16 * 1024 * 1024,
    # Notice a dead member under a long-lived watch; etcd allows pings every 5 s.
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 5_000,
    # No pings without a call in flight: etcd's default policy answers those with GOAWAY.
    "grpc.keepalive_permit_without_calls": 0,
    "grpc.http2.max_pings_without_data": 0,
}


@dataclass(slots=True)
class WatchEvent:
    """One change of one key. `revision` is the etcd revision of the change; for
    DELETED, `obj` is the last stored object with resourceVersion = that revision."""

    type: Literal["ADDED", "MODIFIED", "DELETED"]
    key: str
    obj: dict
    revision: int


@dataclass(slots=True)
class WatchBatch:
    """What one etcd watch response delivered. `revision`: every change on the
    watched prefix up to and including it has been delivered (events or none)."""

    events: list[WatchEvent]
    revision: int


def encode(obj: dict) -> bytes:
    """The stored form: compact JSON without metadata.resourceVersion."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "resourceVersion" in meta:
        meta = {k: v for k, v in meta.items() if k != "resourceVersion"}
        obj = {**obj, "metadata": meta}
    return _dumps(obj)


def decode(value: bytes, revision: int) -> dict:
    """A stored value as an object carrying resourceVersion = revision."""
    obj = _loads(value)
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    meta["resourceVersion"] = str(revision)
    return obj


def with_resource_version(obj: dict, revision: int) -> dict:
    """A shallow copy of obj (and its metadata) with resourceVersion set; obj is untouched."""
    meta = dict(obj.get("metadata") or {})
    meta["resourceVersion"] = str(revision)
    return {**obj, "metadata": meta}


@dataclass(frozen=True, slots=True)
class Fence:
    """A guard on a decision spanning many objects: the write happens only if `key` is still
    at `revision` (its mod revision read before deciding; 0 = absent) and moves it on."""

    key: str
    revision: int


def _add_fence(fence: Fence, compare: list, success: list) -> None:
    k = fence.key.encode()
    compare.append(rpc.Compare(result=_EQUAL, target=_MOD, key=k, mod_revision=fence.revision))
    success.append(rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=b"fence")))


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """`http://host:port` or `host:port` → (host, port); TLS to etcd is not supported yet."""
    url = endpoint if "://" in endpoint else f"http://{endpoint}"
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"etcd endpoint {endpoint!r}: only http:// endpoints are supported")
    if not parts.hostname:
        raise ValueError(f"etcd endpoint {endpoint!r} has no host")
    return parts.hostname, parts.port or 2379


def _compacted(error: AioRpcError) -> bool:
    return error.code() == StatusCode.OUT_OF_RANGE and "compacted" in (error.details() or "")


class EtcdStore:
    """Typed CRUD over etcd for the apiserver; one instance per process, shared by all tasks."""

    def __init__(
        self,
        endpoints: list[str],
        *,
        request_timeout: float = 10.0,
        retry_for: float = 20.0,
        list_chunk: int = 5000,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self.endpoints = list(endpoints)
        self._addresses = [parse_endpoint(e) for e in self.endpoints]
        self._request_timeout = request_timeout
        self._retry_for = retry_for
        self._list_chunk = list_chunk
        self._index = 0
        self._generation = 0
        self._client: aetcd.Client | None = None
        self._kv: Any = None
        self._retired: set[asyncio.Task] = set()
        self._closed = False

    @classmethod
    async def connect(cls, endpoints: list[str], **options: Any) -> EtcdStore:
        """A store on the first endpoint; it checks that some endpoint answers."""
        store = cls(endpoints, **options)
        await store._switch_to(0)
        await store.current_revision()
        return store

    # -- connection handling ---------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The endpoint requests go to now."""
        return self.endpoints[self._index]

    async def _switch_to(self, index: int) -> None:
        host, port = self._addresses[index]
        client = aetcd.Client(host, port, options=_CHANNEL_OPTIONS)
        await client.connect()  # builds the channel and stubs; the network is touched lazily
        old = self._client
        self._client, self._kv, self._index = client, client.kvstub, index
        self._generation += 1
        if old is not None:
            # In-flight calls on the old channel finish or fail on their own; close it later.
            task = asyncio.get_running_loop().create_task(self._retire(old))
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)

    async def _retire(self, client: aetcd.Client) -> None:
        try:
            await asyncio.sleep(30)
        finally:
            await client.close()

    async def _failover(self, generation: int, error: AioRpcError) -> None:
        """Move to the next endpoint, once per failure generation (many tasks fail together)."""
        if generation != self._generation or self._closed:
            return
        self._generation += 1  # claim the failover before awaiting anything
        nxt = (self._index + 1) % len(self.endpoints)
        log.warning(
            "etcd endpoint failed; switching endpoint=%s next=%s code=%s detail=%s",
            self.endpoint, self.endpoints[nxt], error.code().name, error.details(),
        )
        await self._switch_to(nxt)

    @property
    def client(self) -> aetcd.Client:
        """The aetcd client in use (for benchmarks and tools; it changes on failover)."""
        assert self._client is not None, "EtcdStore.connect() first"
        return self._client

    async def _call(
        self, what: str, attempt: Callable[[Any, int], Awaitable[T]], *, retry: bool
    ) -> T:
        """Run attempt(kv_stub, n) with failover; n counts earlier failed attempts."""
        if self._closed:
            raise StorageError("the etcd store is closed")
        deadline = time.monotonic() + self._retry_for
        n = 0
        delay = 0.05
        while True:
            generation = self._generation
            try:
                return await attempt(self._kv, n)
            except AioRpcError as e:
                if _compacted(e):
                    raise RevisionCompacted(0, 0, f"etcd: {e.details()}") from None
                if e.code() not in _RETRYABLE or self._closed:
                    raise StorageError(f"etcd {what} failed: {e.code().name}: {e.details()}") from None
                if not retry or time.monotonic() + delay > deadline:
                    raise StorageUnavailable(
                        f"etcd {what} failed at {self.endpoint} ({e.code().name}: {e.details()}); "
                        f"endpoints tried: {', '.join(self.endpoints)}"
                    ) from None
                await self._failover(generation, e)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)
                n += 1

    # -- CRUD -------------------------------------------------------------------------------

    async def create(self, key: str, obj: dict, *, fence: Fence | None = None) -> dict:
        """Store a new object; KeyExists if the key is taken. Returns it with resourceVersion.
        With a fence, only while the fence key is at the revision read (else FenceMoved),
        and the write moves the fence."""
        k = key.encode()
        value = encode(obj)
        compare = [rpc.Compare(result=_EQUAL, target=_CREATE, key=k, create_revision=0)]
        success = [rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))]
        failure = [rpc.RequestOp(request_range=rpc.RangeRequest(key=k))]
        if fence is not None:
            _add_fence(fence, compare, success)
        request = rpc.TxnRequest(compare=compare, success=success, failure=failure)

        async def attempt(kv: Any, n: int) -> int:
            resp = await kv.Txn(request, timeout=self._request_timeout)
            if resp.succeeded:
                return resp.header.revision
            kvs = resp.responses[0].response_range.kvs
            if n and kvs and kvs[0].value == value:
                return kvs[0].mod_revision  # an earlier attempt of ours landed
            if not kvs and fence is not None:
                raise FenceMoved(fence.key, fence.revision)
            raise KeyExists(key)

        revision = await self._call("create", attempt, retry=True)
        return with_resource_version(obj, revision)

    async def mod_revision(self, key: str) -> int:
        """The revision key was last written at; 0 when it does not exist (a fence's start)."""
        request = rpc.RangeRequest(key=key.encode(), keys_only=True)

        async def attempt(kv: Any, n: int) -> int:
            resp = await kv.Range(request, timeout=self._request_timeout)
            return resp.kvs[0].mod_revision if resp.kvs else 0

        return await self._call("get", attempt, retry=True)

    async def get(self, key: str) -> dict | None:
        """The object at key (linearizable read), or None."""
        request = rpc.RangeRequest(key=key.encode())

        async def attempt(kv: Any, n: int) -> dict | None:
            resp = await kv.Range(request, timeout=self._request_timeout)
            if not resp.kvs:
                return None
            item = resp.kvs[0]
            return decode(item.value, item.mod_revision)

        return await self._call("get", attempt, retry=True)

    async def update(self, key: str, obj: dict, *, expected_revision: int | None,
                     fence: Fence | None = None) -> dict:
        """Replace the object at key. With expected_revision, only if the key is still at it
        (else RevisionConflict); without, only if it exists. KeyNotFound if it does not.
        A fence as in create (FenceMoved)."""
        k = key.encode()
        value = encode(obj)
        if expected_revision is None:
            compare = rpc.Compare(result=_GREATER, target=_CREATE, key=k, create_revision=0)
        else:
            compare = rpc.Compare(result=_EQUAL, target=_MOD, key=k, mod_revision=expected_revision)
        compares = [compare]
        success = [rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))]
        if fence is not None:
            _add_fence(fence, compares, success)
        request = rpc.TxnRequest(
            compare=compares,
            success=success,
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        )

        async def attempt(kv: Any, n: int) -> int:
            resp = await kv.Txn(request, timeout=self._request_timeout)
            if resp.succeeded:
                return resp.header.revision
            kvs = resp.responses[0].response_range.kvs
            if not kvs:
                raise KeyNotFound(key)
            if n and kvs[0].value == value:
                return kvs[0].mod_revision  # an earlier attempt of ours landed
            if fence is not None and (expected_revision is None or kvs[0].mod_revision == expected_revision):
                raise FenceMoved(fence.key, fence.revision)
            raise RevisionConflict(key, expected_revision or 0, kvs[0].mod_revision)

        revision = await self._call("update", attempt, retry=True)
        return with_resource_version(obj, revision)

    async def delete(self, key: str, *, expected_revision: int | None = None) -> dict:
        """Remove the key; returns the last stored object with resourceVersion = the delete's
        revision (what a watcher sees in DELETED). KeyNotFound / RevisionConflict."""
        k = key.encode()
        if expected_revision is None:
            compare = rpc.Compare(result=_GREATER, target=_CREATE, key=k, create_revision=0)
        else:
            compare = rpc.Compare(result=_EQUAL, target=_MOD, key=k, mod_revision=expected_revision)
        request = rpc.TxnRequest(
            compare=[compare],
            success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k, prev_kv=True))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        )

        async def attempt(kv: Any, n: int) -> dict:
            resp = await kv.Txn(request, timeout=self._request_timeout)
            if resp.succeeded:
                prev = resp.responses[0].response_delete_range.prev_kvs
                if not prev:  # deleted between compare and apply cannot happen; be explicit anyway
                    raise KeyNotFound(key)
                return decode(prev[0].value, resp.header.revision)
            kvs = resp.responses[0].response_range.kvs
            if not kvs:
                raise KeyNotFound(key)
            raise RevisionConflict(key, expected_revision or 0, kvs[0].mod_revision)

        return await self._call("delete", attempt, retry=expected_revision is not None)

    async def list(self, prefix: str) -> tuple[list[dict], int]:
        """Every object under prefix, sorted by key, and the revision they were read at."""
        items, revision = await self.list_items(prefix)
        return [obj for _, obj in items], revision

    async def list_items(self, prefix: str) -> tuple[list[tuple[str, dict]], int]:
        """Like list(), with each object's key: [(key, object)], revision."""
        for _ in range(3):
            try:
                items, revision, _ = await self._range(prefix, None, None, 0)
                return items, revision
            except RevisionCompacted:
                continue  # compacted between pages: read again at the new head
        raise StorageUnavailable(f"etcd list of {prefix} kept racing with compaction")

    async def list_page(
        self, prefix: str, *, limit: int, start_key: str | None = None, revision: int = 0
    ) -> tuple[list[dict], int, str | None]:
        """One page for limit/continue: up to limit objects under prefix from start_key
        (inclusive) at revision (0 = now). Returns (objects, revision, next start key or None).
        RevisionCompacted when revision is no longer kept (the apiserver answers 410)."""
        items, revision, next_key = await self._range(prefix, start_key, limit, revision)
        return [obj for _, obj in items], revision, next_key

    async def _range(
        self, prefix: str, start_key: str | None, limit: int | None, revision: int
    ) -> tuple[list[tuple[str, dict]], int, str | None]:
        k = prefix.encode()
        end = prefix_range_end(k)
        start = start_key.encode() if start_key else k
        items: list[tuple[str, dict]] = []
        while True:
            want = self._list_chunk if limit is None else min(self._list_chunk, limit - len(items))
            request = rpc.RangeRequest(key=start, range_end=end, limit=want, revision=revision)

            async def attempt(kv: Any, n: int, request: Any = request) -> Any:
                return await kv.Range(request, timeout=self._request_timeout)

            resp = await self._call("list", attempt, retry=True)
            if revision == 0:
                revision = resp.header.revision
            # An empty value is a watch marker (see EtcdWatch), never an object.
            items.extend((kv.key.decode(), decode(kv.value, kv.mod_revision)) for kv in resp.kvs if kv.value)
            if not resp.more:
                return items, revision, None
            start = resp.kvs[-1].key + b"\0"
            if limit is not None and len(items) >= limit:
                return items, revision, start.decode()

    async def current_revision(self) -> int:
        """The newest revision of the etcd cluster (a linearizable read)."""
        request = rpc.RangeRequest(key=b"\0", keys_only=True)

        async def attempt(kv: Any, n: int) -> int:
            resp = await kv.Range(request, timeout=self._request_timeout)
            return resp.header.revision

        return await self._call("revision", attempt, retry=True)

    async def compact(self, revision: int) -> None:
        """Drop history before revision (physically, so later reads of it fail)."""
        request = rpc.CompactionRequest(revision=revision, physical=True)

        async def attempt(kv: Any, n: int) -> None:
            await kv.Compact(request, timeout=max(self._request_timeout, 60))

        await self._call("compact", attempt, retry=True)

    # -- watch ------------------------------------------------------------------------------

    def open_watch(
        self, prefix: str, *, after_revision: int | None, with_marker: bool = False
    ) -> EtcdWatch:
        """A resumable etcd watch of prefix delivering, in batches, the changes with revision
        > after_revision (None = changes from now on); see EtcdWatch."""
        return EtcdWatch(self, prefix, after_revision, with_marker=with_marker)

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[WatchEvent]:
        """Every change under prefix with revision > start_revision (0 = changes from now on).
        Survives endpoint failures; raises RevisionCompacted when etcd no longer has
        start_revision + 1."""
        stream = self.open_watch(prefix, after_revision=start_revision or None)
        try:
            async for batch in stream:
                for event in batch.events:
                    yield event
        finally:
            await stream.close()

    async def mark(self, prefix: str) -> int:
        """Write the marker key of prefix (see EtcdWatch); returns the write's revision."""
        request = rpc.PutRequest(key=prefix_range_end(prefix.encode()), value=b"")

        async def attempt(kv: Any, n: int) -> int:
            resp = await kv.Put(request, timeout=self._request_timeout)
            return resp.header.revision

        return await self._call("mark", attempt, retry=True)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._retired):
            task.cancel()
        if self._client is not None:
            await self._client.close()
        self._client = None


class EtcdWatch:
    """An etcd watch that resumes after a broken stream from the last delivered revision,
    on whichever endpoint the store uses then. Iterating yields WatchBatch; the iteration
    raises RevisionCompacted when the revision to resume from is gone, StorageError when
    etcd cancels the watch or the store is closed.

    with_marker: the watch also covers one key just past the prefix (the prefix's range
    end, e.g. `/registry/core/pods0` for `/registry/core/pods/`), never used by objects.
    mark() writes it; its event is not delivered, but the batch carrying it reports that
    revision, which proves every change before it has been delivered. (etcd 3.4's
    progress requests cannot prove that: they may overtake pending events.)"""

    def __init__(
        self, store: EtcdStore, prefix: str, after_revision: int | None, *, with_marker: bool = False
    ) -> None:
        self._store = store
        self.prefix = prefix
        #: Every change up to this revision has been delivered (None: not started, "from now").
        self.revision: int | None = after_revision
        self._key = prefix.encode()
        self._marker = prefix_range_end(self._key) if with_marker else None
        self._end = self._marker + b"\0" if self._marker else prefix_range_end(self._key)
        self._requests: asyncio.Queue | None = None
        self._call: Any = None
        self._closed = False
        self._iterator = self._batches()

    def __aiter__(self) -> EtcdWatch:
        return self

    async def __anext__(self) -> WatchBatch:
        return await self._iterator.__anext__()

    async def mark(self) -> int:
        """Write the marker key; returns its revision. A batch with revision >= it follows."""
        if self._marker is None:
            raise ValueError("open the watch with with_marker=True to use mark()")
        return await self._store.mark(self.prefix)

    async def close(self) -> None:
        self._closed = True
        if self._requests is not None:
            self._requests.put_nowait(None)
        if self._call is not None:
            self._call.cancel()
        try:
            await self._iterator.aclose()
        except RuntimeError:
            pass  # being iterated by another task: the cancelled call ends it there

    async def _batches(self) -> AsyncIterator[WatchBatch]:
        store = self._store
        delay = 0.05
        while not self._closed:
            if store._closed or store._client is None:
                raise StorageError("the etcd store is closed")
            generation = store._generation
            requests: asyncio.Queue = asyncio.Queue()
            create = rpc.WatchCreateRequest(
                key=self._key, range_end=self._end, prev_kv=True,
                start_revision=0 if self.revision is None else self.revision + 1,
            )
            requests.put_nowait(rpc.WatchRequest(create_request=create))
            self._requests = requests
            call = rpc.WatchStub(store._client.channel).Watch(_drain(requests))
            self._call = call
            try:
                async for resp in call:
                    if resp.compact_revision:
                        raise RevisionCompacted((self.revision or 0) + 1, resp.compact_revision)
                    if resp.canceled:
                        raise StorageError(
                            f"etcd cancelled the watch on {self.prefix}: {resp.cancel_reason or 'no reason given'}"
                        )
                    if resp.created:
                        delay = 0.05
                        if self.revision is None:
                            self.revision = resp.header.revision
                        continue
                    if resp.events:
                        marker = self._marker
                        events = [_event(e) for e in resp.events
                                  if e.kv.key != marker and (e.kv.value or e.type != _PUT_EVENT)]
                        self.revision = resp.events[-1].kv.mod_revision
                        yield WatchBatch(events, self.revision)
            except AioRpcError as e:
                if self._closed:
                    return
                if _compacted(e):
                    raise RevisionCompacted((self.revision or 0) + 1, 0, f"etcd: {e.details()}") from None
                if e.code() not in _RETRYABLE:
                    raise StorageError(f"etcd watch on {self.prefix} failed: {e.code().name}: {e.details()}") from None
                log.warning(
                    "etcd watch broke; resuming prefix=%s after_revision=%s endpoint=%s code=%s",
                    self.prefix, self.revision, store.endpoint, e.code().name,
                )
                await store._failover(generation, e)
            finally:
                requests.put_nowait(None)
                call.cancel()
            if self._closed:
                return
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)


async def _drain(requests: asyncio.Queue) -> AsyncIterator[Any]:
    while True:
        request = await requests.get()
        if request is None:
            return
        yield request


def _event(e: Any) -> WatchEvent:
    kv = e.kv
    key = kv.key.decode()
    if e.type == _PUT_EVENT:
        kind = "ADDED" if kv.create_revision == kv.mod_revision else "MODIFIED"
        return WatchEvent(kind, key, decode(kv.value, kv.mod_revision), kv.mod_revision)
    if e.prev_kv.value:
        obj = decode(e.prev_kv.value, kv.mod_revision)
    else:  # prev_kv is missing only if it was compacted away already
        obj = {"metadata": {"resourceVersion": str(kv.mod_revision)}}
    return WatchEvent("DELETED", key, obj, kv.mod_revision)
