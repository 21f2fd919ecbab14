"""A rate-limited work queue of object keys, after client-go's workqueue.

Controllers enqueue *keys* (``namespace/name``), never objects: by the time a
worker gets to a key the cache holds the newest state, so many events for one
object collapse into one reconcile. Guarantees, as in client-go:

- a key is never processed by two workers at once;
- a key added while it is being processed is processed again afterwards;
- a key that failed is retried after a per-key exponential back-off.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque
from collections.abc import Hashable


class ShutDown(Exception):
    """The queue was shut down; workers should return."""


class ExponentialBackoff:
    """Per-key delay that doubles on every failure, reset by ``forget``."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        return min(self.base * (2**n), self.cap)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)


class WorkQueue:
    """FIFO of unique keys with processing/dirty sets and delayed adds."""

    def __init__(self, name: str = "", backoff: ExponentialBackoff | None = None) -> None:
        self.name = name
        self.backoff = backoff or ExponentialBackoff()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._waiting: list[tuple[float, int, Hashable]] = []  # (due, seq, key)
        self._seq = 0
        self._wakeup = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: Hashable) -> None:
        """Enqueue a key now (a no-op when it is already waiting)."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # re-queued by done()
        self._queue.append(key)
        self._notify()

    def add_after(self, key: Hashable, delay: float) -> None:
        """Enqueue a key once ``delay`` seconds have passed."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        self._seq += 1
        heapq.heappush(self._waiting, (time.monotonic() + delay, self._seq, key))
        self._arm_timer()

    def add_rate_limited(self, key: Hashable) -> None:
        """Enqueue after this key's back-off: the retry path for failures."""
        self.add_after(key, self.backoff.when(key))

    def forget(self, key: Hashable) -> None:
        """Reset the key's back-off: call it after a successful reconcile."""
        self.backoff.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return self.backoff.failures(key)

    async def get(self) -> Hashable:
        """Wait for the next key; raises ShutDown when the queue is closed and drained."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            self._wakeup.clear()
            await self._wakeup.wait()
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Hashable) -> None:
        """Mark a key finished; if it was added meanwhile it goes back in line."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._notify()

    def shut_down(self) -> None:
        self._shutting_down = True
        if self._timer is not None:
            self._timer.cancel()
        self._notify()

    def _notify(self) -> None:
        self._wakeup.set()

    def _arm_timer(self) -> None:
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        due = self._waiting[0][0]
        delay = max(0.0, due - time.monotonic())
        if self._timer is not None:
            if self._timer.when() <= loop.time() + delay:
                return
            self._timer.cancel()
        self._timer = loop.call_later(delay, self._release_due)

    def _release_due(self) -> None:
        self._timer = None
        now = time.monotonic()
        while self._waiting and self._waiting[0][0] <= now:
            _, _, key = heapq.heappop(self._waiting)
            self.add(key)
        self._arm_timer()
