"""WatchCache: one etcd watch per resource prefix feeding an in-memory mirror.

The apiserver answers lists and watches from here instead of etcd: the cache holds
the current objects of one resource (by key) and a bounded ring of its recent
changes, both at `revision`, the newest etcd revision it has applied. On start it
lists at revision R and watches from R; it also loads the history before R (up to
`history` revisions back, as etcd still has them) into the ring, so a client that
resumes a watch after an apiserver restart gets exactly the events it missed.

Objects handed out (by get, list and watch) are shared with the cache and with
every other watcher: treat them as read-only and copy before changing them.

If the etcd watch breaks it is resumed from the last applied revision (EtcdWatch
does that); if that revision has been compacted, the cache lists again, sends
the differences to its watchers as events, and starts a new history there.
A watcher that lets more than `watcher_queue` events pile up is ended with
RevisionCompacted, so its client lists again instead of holding everyone up.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import deque
from collections.abc import AsyncIterator

from .errors import RevisionCompacted, StorageError
from .etcd_store import EtcdStore, EtcdWatch, WatchBatch, WatchEvent, with_resource_version

log = logging.getLogger("ketch.apiserver.storage.cache")


class _Watcher:
    """One consumer's pending events; the cache pushes, the consumer's generator pops."""

    __slots__ = ("prefix", "queue", "limit", "error", "stopped", "waiter")

    def __init__(self, prefix: str, limit: int) -> None:
        self.prefix = prefix
        self.queue: deque[WatchEvent] = deque()
        self.limit = limit
        self.error: Exception | None = None
        self.stopped = False
        self.waiter: asyncio.Future | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class WatchCache:
    """In-memory list/watch of one resource prefix, consistent with etcd revisions."""

    def __init__(
        self,
        store: EtcdStore,
        prefix: str,
        *,
        history: int = 10_000,
        watcher_queue: int = 5_000,
        prefill_timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.history = history
        self.watcher_queue = watcher_queue
        self.prefill_timeout = prefill_timeout
        #: The newest etcd revision applied: list() answers at it.
        self.revision = 0
        self._objects: dict[str, dict] = {}
        self._sorted_keys: list[str] | None = []
        self._ring: deque[WatchEvent] = deque()
        #: The oldest start_revision watch() can serve from the ring.
        self._oldest = 0
        self._watchers: dict[str, set[_Watcher]] = {}
        self._revision_waiters: list[tuple[int, asyncio.Future]] = []
        self._stream: EtcdWatch | None = None
        #: How often the cache had to list again because its revision was compacted.
        self.relists = 0
        self._task: asyncio.Task | None = None
        self._marking: asyncio.Task | None = None
        self._stopped = False

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """List, start the etcd watch, and load history before the list (bounded by
        prefill_timeout); returns when list() and watch() can be served."""
        items, revision = await self.store.list_items(self.prefix)
        self._objects = dict(items)
        self._sorted_keys = None
        self.revision = revision
        self._oldest = revision
        after = max(0, revision - self.history)
        prefilled = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(after, revision, prefilled), name=f"watch-cache {self.prefix}")
        try:
            await asyncio.wait_for(asyncio.shield(prefilled), self.prefill_timeout)
        except TimeoutError:
            log.warning("watch cache history not loaded in time; serving from the list prefix=%s revision=%d",
                        self.prefix, revision)

    async def stop(self) -> None:
        """Stop the etcd watch; current watchers end (their iteration finishes)."""
        self._stopped = True
        if self._marking is not None and not self._marking.done():
            self._marking.cancel()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._stream is not None:
            await self._stream.close()
        for watchers in self._watchers.values():
            for w in watchers:
                w.stopped = True
                w.wake()
        self._watchers.clear()
        for _, fut in self._revision_waiters:
            if not fut.done():
                fut.set_exception(StorageError(f"watch cache for {self.prefix} stopped"))
        self._revision_waiters.clear()

    # -- reads ------------------------------------------------------------------------------

    def get(self, key: str) -> dict | None:
        return self._objects.get(key)

    def list(self, prefix: str | None = None) -> tuple[list[dict], int]:
        """The objects under prefix (default: the whole resource), sorted by key, at self.revision."""
        keys = self._keys_under(prefix or self.prefix)
        objects = self._objects
        return [objects[k] for k in keys], self.revision

    def _keys_under(self, prefix: str) -> list[str]:
        if self._sorted_keys is None:
            self._sorted_keys = sorted(self._objects)
        keys = self._sorted_keys
        if prefix == self.prefix:
            return list(keys)
        lo = bisect.bisect_left(keys, prefix)
        hi = bisect.bisect_left(keys, prefix + "\U0010ffff", lo)
        return keys[lo:hi]

    async def wait_for_revision(self, revision: int, timeout: float = 5.0) -> None:
        """Return once the cache has applied revision (e.g. the apiserver's own write);
        TimeoutError if it does not within timeout. Works for revisions of other prefixes
        too: unless the cache is there already, it writes its marker key (one write shared
        by concurrent waiters) and returns at the first event at or past the revision."""
        if self.revision >= revision:
            return
        if self._stopped:
            raise StorageError(f"watch cache for {self.prefix} is stopped")
        fut = asyncio.get_running_loop().create_future()
        entry = (revision, fut)
        self._revision_waiters.append(entry)
        deadline = time.monotonic() + timeout
        marked = 0  # the newest marker revision written on this wait's behalf
        try:
            while not fut.done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"watch cache for {self.prefix} did not reach revision {revision} "
                        f"within {timeout}s (at {self.revision})"
                    )
                if marked >= revision:
                    await asyncio.wait({fut}, timeout=remaining)
                    continue
                if self._marking is None or self._marking.done():
                    self._marking = asyncio.create_task(self.store.mark(self.prefix))
                marking = self._marking
                await asyncio.wait({fut, marking}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                if marking.done() and not marking.cancelled():
                    error = marking.exception()
                    if error is None:
                        marked = max(marked, marking.result())
                    else:
                        log.warning("watch cache marker write failed prefix=%s error=%s", self.prefix, error)
                        await asyncio.sleep(min(0.1, max(remaining, 0)))
            fut.result()
        finally:
            if entry in self._revision_waiters:
                self._revision_waiters.remove(entry)

    async def sync(self, timeout: float = 5.0) -> int:
        """Wait until the cache has caught up with etcd as of now (for a list that must be as
        fresh as a read from etcd); returns a revision the cache has reached."""
        revision = await self.store.mark(self.prefix)
        await self.wait_for_revision(revision, timeout)
        return revision

    # -- watch ------------------------------------------------------------------------------

    async def watch(
        self, prefix: str, start_revision: int, *, bookmark_interval: float | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Every change under prefix with revision > start_revision: first from the history,
        then live. start_revision == 0: the current objects as ADDED events first.
        Raises RevisionCompacted when start_revision is older than the history holds, or
        when this watcher falls more than watcher_queue events behind. With
        bookmark_interval, an idle watch yields WatchEvent("BOOKMARK", "", {}, revision)
        after that many seconds without events (revision: all before it was delivered)."""
        if self._stopped:
            raise StorageError(f"watch cache for {self.prefix} is stopped")
        if start_revision == 0:
            keys = self._keys_under(prefix)
            objects = self._objects
            backlog = [WatchEvent("ADDED", k, objects[k], int(objects[k]["metadata"]["resourceVersion"]))
                       for k in keys]
            after = self.revision
        else:
            if start_revision < self._oldest:
                raise RevisionCompacted(
                    start_revision, self._oldest,
                    f"too old resource version: {start_revision} (oldest kept: {self._oldest + 1})",
                )
            backlog = []
            for event in reversed(self._ring):
                if event.revision <= start_revision:
                    break
                if event.key.startswith(prefix):
                    backlog.append(event)
            backlog.reverse()
            after = start_revision
        watcher = _Watcher(prefix, self.watcher_queue)
        self._watchers.setdefault(prefix, set()).add(watcher)
        loop = asyncio.get_running_loop()
        try:
            for event in backlog:
                yield event
            last = after
            while True:
                queue = watcher.queue
                if queue:
                    event = queue.popleft()
                    if event.revision > after:
                        last = event.revision
                        yield event
                    continue
                if watcher.error is not None:
                    raise watcher.error
                if watcher.stopped:
                    return
                watcher.waiter = loop.create_future()
                try:
                    if bookmark_interval is None:
                        await watcher.waiter
                    else:
                        try:
                            await asyncio.wait_for(watcher.waiter, bookmark_interval)
                        except TimeoutError:
                            if not watcher.queue and self.revision > last:
                                last = self.revision
                                yield WatchEvent("BOOKMARK", "", {}, self.revision)
                finally:
                    watcher.waiter = None
        finally:
            group = self._watchers.get(prefix)
            if group is not None:
                group.discard(watcher)
                if not group:
                    del self._watchers[prefix]

    @property
    def watcher_count(self) -> int:
        return sum(len(g) for g in self._watchers.values())

    # -- feeding from etcd ------------------------------------------------------------------

    async def _run(self, after: int | None, listed_at: int, prefilled: asyncio.Future | None) -> None:
        """Apply etcd's changes for as long as the cache runs; with after, first load the
        history (after, listed_at] into the ring."""
        delay = 0.1
        prefill_from = after
        if prefilled is None:
            prefilled = asyncio.get_running_loop().create_future()
        while not self._stopped:
            try:
                if prefill_from is not None:
                    self._stream = self.store.open_watch(
                        self.prefix, after_revision=prefill_from, with_marker=True)
                    await self._prefill(self._stream, prefill_from, listed_at)
                    prefill_from = None
                    if not prefilled.done():
                        prefilled.set_result(None)
                else:
                    self._stream = self.store.open_watch(
                        self.prefix, after_revision=self.revision, with_marker=True)
                async for batch in self._stream:
                    self._apply(batch)
                    delay = 0.1
            except RevisionCompacted as e:
                if prefill_from is not None:
                    # History before the list is partly gone: load what etcd still has.
                    newer = max(e.compact_revision - 1, 0)
                    prefill_from = newer if 0 < newer < listed_at and newer > prefill_from else None
                    if prefill_from is None and not prefilled.done():
                        prefilled.set_result(None)
                    continue
                log.warning("watch cache revision compacted; relisting prefix=%s revision=%d",
                            self.prefix, self.revision)
                await self._relist_until_done()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # StorageError, unexpected: keep serving, try again
                log.error("watch cache feed failed; retrying prefix=%s error=%s", self.prefix, e)
                if prefill_from is not None:
                    # Without history the cache still serves; never let it block live events.
                    prefill_from = None
                    if not prefilled.done():
                        prefilled.set_result(None)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if self._stream is not None:
                    await self._stream.close()
                    self._stream = None

    async def _prefill(self, stream: EtcdWatch, after: int, listed_at: int) -> None:
        """Put etcd's history (after, listed_at] into the ring; the state is already at
        listed_at. Events past listed_at are applied normally."""
        if after >= listed_at:
            return
        began = time.monotonic()
        history: list[WatchEvent] = []
        await stream.mark()  # its event, after listed_at, ends the history
        async for batch in stream:
            history.extend(e for e in batch.events if e.revision <= listed_at)
            if batch.revision < listed_at:
                continue
            self._ring.extend(history[-self.history:])
            self._oldest = after if len(history) <= self.history else history[-self.history - 1].revision
            self._apply(WatchBatch([e for e in batch.events if e.revision > listed_at], batch.revision))
            log.info("watch cache ready prefix=%s revision=%d history_from=%d events=%d in=%.3fs",
                     self.prefix, self.revision, self._oldest, len(history), time.monotonic() - began)
            return

    async def _relist_until_done(self) -> None:
        delay = 0.1
        while not self._stopped:
            try:
                await self._relist()
                return
            except StorageError as e:
                log.error("watch cache relist failed; retrying prefix=%s error=%s", self.prefix, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _relist(self) -> None:
        """After compaction: read the state again, tell watchers what changed, restart history."""
        items, revision = await self.store.list_items(self.prefix)
        fresh = dict(items)
        events: list[WatchEvent] = []
        for key, old in self._objects.items():
            if key not in fresh:
                events.append(WatchEvent("DELETED", key, with_resource_version(old, revision), revision))
        for key, obj in fresh.items():
            old = self._objects.get(key)
            if old is None:
                events.append(WatchEvent("ADDED", key, obj, revision))
            elif old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                events.append(WatchEvent("MODIFIED", key, obj, revision))
        events.sort(key=lambda e: e.key)
        self._objects = fresh
        self._sorted_keys = None
        self._ring.clear()
        self._oldest = revision
        self.relists += 1
        self._fan_out(events)
        self._advance(revision)
        log.info("watch cache relisted prefix=%s revision=%d changes=%d", self.prefix, revision, len(events))

    def _apply(self, batch: WatchBatch) -> None:
        """Apply one batch to the state and the ring, hand it to watchers, advance."""
        events = batch.events
        if events:
            objects = self._objects
            ring = self._ring
            for event in events:
                key = event.key
                if event.type == "DELETED":
                    old = objects.pop(key, None)
                    if old is not None:
                        self._sorted_keys = None
                        if not event.obj.get("kind") and old is not None:
                            event.obj = with_resource_version(old, event.revision)
                else:
                    if key not in objects:
                        self._sorted_keys = None
                    objects[key] = event.obj
                if len(ring) >= self.history:
                    self._oldest = max(self._oldest, ring.popleft().revision)
                ring.append(event)
            self._fan_out(events)
        self._advance(batch.revision)

    def _fan_out(self, events: list[WatchEvent]) -> None:
        if not events or not self._watchers:
            return
        for prefix, watchers in list(self._watchers.items()):
            matching = [e for e in events if e.key.startswith(prefix)] if prefix != self.prefix else events
            if not matching:
                continue
            for w in list(watchers):
                if w.error is not None:
                    continue
                if len(w.queue) + len(matching) > w.limit:
                    w.error = RevisionCompacted(
                        matching[0].revision - 1, self.revision,
                        f"watcher fell behind by more than {w.limit} events; list again",
                    )
                    w.queue.clear()
                    watchers.discard(w)
                else:
                    w.queue.extend(matching)
                w.wake()

    def _advance(self, revision: int) -> None:
        if revision > self.revision:
            self.revision = revision
        if self._revision_waiters:
            for wanted, fut in self._revision_waiters:
                if wanted <= self.revision and not fut.done():
                    fut.set_result(None)
