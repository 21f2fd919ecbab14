"""The controller idiom shared by every reconcile loop in the controller-manager.

Informers feed a work queue with keys; ``workers`` tasks take keys and call
``reconcile(key)``, which reads the cached desired state, observes the actual
state, and takes one step toward the desired. A reconcile that raises is
retried with the key's back-off; one that succeeds forgets the back-off. Every
loop reports how many reconciles ran, failed and how long they took.
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import Counter, Histogram

from ketch.client.aio import AsyncClient
from ketch.events import EventRecorder
from ketch.informer import Informer, object_key
from ketch.workqueue import ShutDown, WorkQueue

RECONCILES = Counter("controller_reconcile_total", "Reconciles by controller and result.", ["controller", "result"])
RECONCILE_SECONDS = Histogram(
    "controller_reconcile_duration_seconds",
    "Time of one reconcile.",
    ["controller"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class Controller:
    """Subclasses set ``name``, register handlers in ``__init__`` and implement ``reconcile``."""

    name = "controller"
    workers = 2

    def __init__(self, client: AsyncClient, informers: InformerSet, recorder: EventRecorder) -> None:
        self.client = client
        self.informers = informers
        self.recorder = recorder
        self.queue = WorkQueue(self.name)
        self.log = logging.getLogger(f"ketch.controllers.{self.name}")

    def enqueue(self, obj: dict) -> None:
        self.queue.add(object_key(obj))

    async def reconcile(self, key: str) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        await self.informers.wait_synced()
        workers = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            self.queue.shut_down()
            for w in workers:
                w.cancel()

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            started = time.perf_counter()
            try:
                await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - any failure is retried with back-off
                RECONCILES.labels(self.name, "error").inc()
                retries = self.queue.num_requeues(key)
                level = logging.WARNING if retries < 5 else logging.ERROR
                self.log.log(level, "reconcile key=%s retries=%d error=%r", key, retries, err)
                self.queue.add_rate_limited(key)
            else:
                RECONCILES.labels(self.name, "ok").inc()
                self.queue.forget(key)
            finally:
                RECONCILE_SECONDS.labels(self.name).observe(time.perf_counter() - started)
                self.queue.done(key)


class InformerSet:
    """One informer per resource for the whole process, shared by all controllers."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self._informers: dict[str, Informer] = {}
        self._tasks: list[asyncio.Task] = []

    def get(self, info) -> Informer:  # noqa: ANN001 - ResourceInfo
        key = info.group_resource
        if key not in self._informers:
            self._informers[key] = Informer(self.client, info)
            if self._tasks:  # already running: start it now
                self._tasks.append(asyncio.create_task(self._informers[key].run()))
        return self._informers[key]

    def start(self) -> None:
        self._tasks = [asyncio.create_task(i.run()) for i in self._informers.values()]

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.wait_synced() for i in self._informers.values()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Expectations:
    """How many creates/deletes a controller is still waiting to see in its informer.

    Without it, a reconcile that runs before the informer delivers the pods it
    just created would create them again (client-go's ControllerExpectations).
    Expectations lapse after ``ttl`` so a lost event cannot wedge a controller.
    """

    def __init__(self, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self._pending: dict[str, tuple[int, int, float]] = {}  # key -> (adds, deletes, set_at)

    def expect(self, key: str, adds: int = 0, deletes: int = 0) -> None:
        self._pending[key] = (adds, deletes, time.monotonic())

    def observed_add(self, key: str) -> None:
        self._lower(key, 1, 0)

    def observed_delete(self, key: str) -> None:
        self._lower(key, 0, 1)

    def _lower(self, key: str, adds: int, deletes: int) -> None:
        if key in self._pending:
            a, d, at = self._pending[key]
            self._pending[key] = (a - adds, d - deletes, at)

    def satisfied(self, key: str) -> bool:
        entry = self._pending.get(key)
        if entry is None:
            return True
        adds, deletes, at = entry
        if (adds <= 0 and deletes <= 0) or time.monotonic() - at > self.ttl:
            del self._pending[key]
            return True
        return False

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)
