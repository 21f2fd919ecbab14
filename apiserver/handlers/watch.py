"""Watch streaming: one JSON event per line, chunked, flushed per event, from the WatchCache.

Semantics as kube-apiserver:
- resourceVersion absent or "0": synthetic ADDED events for the current state first;
  otherwise every change after that revision. A revision the cache no longer holds
  answers 410 Expired (before the stream starts when it can be told at once, else
  an ERROR event carrying the Status).
- label/field selectors filter events; an object that stops matching is sent as
  DELETED, one that starts matching as ADDED. For a watch resumed from a revision,
  "was matching" is seeded from the cache's state when the watch starts; for the
  changes between the client's revision and that point, a non-matching object is
  sent as DELETED since it may have matched before (a client that never had it
  ignores that, as client-go's informers do).
- allowWatchBookmarks: a BOOKMARK with only metadata.resourceVersion after
  `bookmark_interval` idle seconds, at a revision up to which everything was
  delivered (the WatchCache's, else the last one this stream saw), so resuming from
  it never skips an event.
- timeoutSeconds ends the stream; so does the client going away.
- With the Table Accept header, each event's object is a one-row Table
  (columnDefinitions on the first event only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from apiserver.handlers import negotiation
from apiserver.metrics import WATCH_EVENTS, WATCHERS
from apiserver.registry.generic import ListOptions, ResourceStore
from apiserver.storage.errors import RevisionCompacted
from ketch.api import errors

log = logging.getLogger("ketch.apiserver.watch")

_DISCONNECT_CHECK_SECONDS = 5.0
_MAX_TIMEOUT_SECONDS = 1800


class WatchHandler:
    def __init__(self, bookmark_interval: float = 10.0) -> None:
        self.bookmark_interval = bookmark_interval

    async def serve(
        self, request: Request, store: ResourceStore, namespace: str | None, name: str | None
    ) -> Response:
        from apiserver.handlers.crud import parse_list_options

        opts = parse_list_options(request, store.info)
        if name is not None:
            from ketch.api.selectors import field_selector_for

            text = f"metadata.name={name}"
            extra = request.query_params.get("fieldSelector", "")
            opts.field_selector = field_selector_for(store.info, f"{text},{extra}" if extra else text)
        rv_text = request.query_params.get("resourceVersion", "")
        try:
            start = int(rv_text) if rv_text else 0
        except ValueError:
            raise errors.bad_request(f"invalid resourceVersion {rv_text!r}: must be an integer") from None
        q = request.query_params
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        timeout_s = q.get("timeoutSeconds")
        if timeout_s:
            try:
                timeout = float(timeout_s)
            except ValueError:
                raise errors.bad_request("timeoutSeconds must be an integer") from None
        else:
            # kube-apiserver picks a random timeout in [min-request-timeout, 2x] (30-60 min)
            timeout = _MAX_TIMEOUT_SECONDS * (1 + random.random())
        table = negotiation.wants_table(request)

        prefix = store.prefix(namespace)
        try:
            events = store.cache.watch(
                prefix, start, bookmark_interval=self.bookmark_interval if bookmarks else None
            )
        except RevisionCompacted as exc:
            raise errors.too_old_resource_version(start, exc.compact_revision) from None
        iterator = events.__aiter__()
        first: asyncio.Future = asyncio.ensure_future(iterator.__anext__())
        await asyncio.wait({first}, timeout=0.02)
        if first.done() and isinstance(first.exception(), RevisionCompacted):
            exc = first.exception()
            raise errors.too_old_resource_version(start, getattr(exc, "compact_revision", 0))
        stream = _Stream(self, request, store, opts, iterator, first, start, bookmarks, timeout, table)
        return _WatchResponse(stream)


class _WatchResponse(StreamingResponse):
    """Streams a watch; closes the cache watcher even when the stream never got to start."""

    def __init__(self, stream: _Stream) -> None:
        super().__init__(stream.run(), media_type=negotiation.JSON, headers={"Cache-Control": "no-cache, private"})
        self.stream = stream

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self.stream.closed:
                await self.stream._close()


class _Stream:
    def __init__(self, handler: WatchHandler, request: Request, store: ResourceStore, opts: ListOptions,
                 iterator: AsyncIterator, first: asyncio.Future, start: int, bookmarks: bool,
                 timeout: float, table: bool) -> None:
        self.handler = handler
        self.request = request
        self.store = store
        self.info = store.info
        self.opts = opts
        self.iterator = iterator
        self.pending: asyncio.Future | None = first
        self.last_revision = start
        self.bookmarks = bookmarks
        self.timeout = timeout
        self.table = table
        self.columns_sent = False
        self.filtering = opts.label_selector is not None or opts.field_selector is not None
        self.visible: set[str] = set()
        self.closed = False
        self.seeded_at = 0
        if self.filtering and start:
            items, self.seeded_at = store.cache.list(store.prefix(None))
            self.visible = {self._key(o) for o in items if store.matches(o, opts)}

    @staticmethod
    def _key(obj: dict) -> str:
        meta = obj.get("metadata") or {}
        return f"{meta.get('namespace') or ''}/{meta.get('name')}"

    def _encode(self, etype: str, obj: dict) -> bytes:
        if self.table and etype in ("ADDED", "MODIFIED", "DELETED"):
            from ketch.api.printers import table

            tbl = table(self.info, [obj], wide=True)
            if self.columns_sent:
                tbl["columnDefinitions"] = []
            self.columns_sent = True
            tbl.setdefault("metadata", {})["resourceVersion"] = obj["metadata"].get("resourceVersion", "")
            obj = tbl
        return negotiation.dumps({"type": etype, "object": obj}) + b"\n"

    def _translate(self, etype: str, obj: dict, revision: int) -> str | None:
        """The event type this client sees after selector filtering, or None to skip.

        `visible` holds the keys the client has as matching. For a resumed watch it is
        seeded from the cache at `seeded_at`, which is already past the events between the
        client's revision and that point: for those, an object that does not match may have
        matched before, so it is sent as DELETED (a client that never had it ignores that).
        """
        if not self.filtering:
            return etype
        key = self._key(obj)
        matches = self.store.matches(obj, self.opts)
        was = key in self.visible
        if etype == "DELETED":
            self.visible.discard(key)
            return "DELETED" if (was or matches or revision <= self.seeded_at) else None
        if matches:
            self.visible.add(key)
            return "MODIFIED" if (was and etype == "MODIFIED") else ("ADDED" if not was else etype)
        if was:
            self.visible.discard(key)
            return "DELETED"
        if etype == "MODIFIED" and revision <= self.seeded_at:
            return "DELETED"
        return None

    def _bookmark(self) -> bytes:
        obj = {"kind": self.info.kind, "apiVersion": self.info.api_version,
               "metadata": {"resourceVersion": str(self.last_revision)}}
        return negotiation.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"

    async def run(self) -> AsyncIterator[bytes]:
        resource = self.info.plural
        WATCHERS.labels(resource).inc()
        sent = WATCH_EVENTS.labels(resource)
        deadline = time.monotonic() + self.timeout
        last_check = last_output = time.monotonic()
        interval = self.handler.bookmark_interval
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return
                if self.pending is None:
                    self.pending = asyncio.ensure_future(self.iterator.__anext__())
                wait_for = min(deadline - now, _DISCONNECT_CHECK_SECONDS)
                if self.bookmarks:
                    wait_for = max(0.01, min(wait_for, interval - (now - last_output)))
                done, _ = await asyncio.wait({self.pending}, timeout=wait_for)
                if done:
                    fut, self.pending = self.pending, None
                    try:
                        event = fut.result()
                    except StopAsyncIteration:
                        return
                    except RevisionCompacted as exc:
                        status = errors.too_old_resource_version(self.last_revision, exc.compact_revision).status
                        yield negotiation.dumps({"type": "ERROR", "object": status}) + b"\n"
                        return
                    if event.revision > self.last_revision:
                        self.last_revision = event.revision
                    if event.type == "BOOKMARK":
                        if self.bookmarks:
                            last_output = time.monotonic()
                            yield self._bookmark()
                        continue
                    etype = self._translate(event.type, event.obj, event.revision)
                    if etype is not None:
                        sent.inc()
                        last_output = time.monotonic()
                        yield self._encode(etype, event.obj)
                    continue
                now = time.monotonic()
                if self.bookmarks and self.last_revision and now - last_output >= interval:
                    # idle: everything up to last_revision was delivered (events or filtered out)
                    last_output = now
                    yield self._bookmark()
                if now - last_check >= _DISCONNECT_CHECK_SECONDS:
                    last_check = now
                    if await self.request.is_disconnected():
                        return
        except Exception as exc:  # noqa: BLE001 - tell the client, then end the stream
            log.exception("watch stream failed resource=%s", resource)
            yield negotiation.dumps({"type": "ERROR", "object": errors.internal(str(exc)).status}) + b"\n"
        finally:
            WATCHERS.labels(resource).dec()
            await self._close()

    async def _close(self) -> None:
        self.closed = True
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()
            with contextlib.suppress(BaseException):
                await self.pending
        aclose: Any = getattr(self.iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()
