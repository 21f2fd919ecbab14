"""The scheduling queue: which pending pod to try next, and when to try again.

Three parts, as in kube-scheduler: an *active* heap ordered by priority, then
age; a *back-off* heap of pods that failed recently and wait 1 s doubling to
10 s; and an *unschedulable* set of pods that fit nowhere, which only a change
in the cluster (a node added or changed, a pod deleted) or a timeout sends back.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field

from scheduler.framework import pod_key

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
UNSCHEDULABLE_TIMEOUT = 60.0


@dataclass
class QueuedPod:
    pod: dict
    attempts: int = 0
    added_at: float = field(default_factory=time.monotonic)
    last_failure_at: float = 0.0
    #: The move-request cycle when the last attempt started; a cluster change
    #: after it means the pod may fit now, so it is not parked as unschedulable.
    cycle: int = 0

    @property
    def key(self) -> str:
        return pod_key(self.pod)

    @property
    def priority(self) -> int:
        return int((self.pod.get("spec") or {}).get("priority") or 0)

    def backoff(self) -> float:
        return min(INITIAL_BACKOFF * 2 ** max(self.attempts - 1, 0), MAX_BACKOFF)


class SchedulingQueue:
    def __init__(self) -> None:
        self._seq = itertools.count()
        self._active: list[tuple[int, str, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._pods: dict[str, QueuedPod] = {}  # every pod the queue knows, wherever it waits
        self._where: dict[str, str] = {}  # key -> "active" | "backoff" | "unschedulable" | "in_flight"
        self._unschedulable_since: dict[str, float] = {}
        self._wakeup = asyncio.Event()
        self.move_cycle = 0
        self.scheduling_cycle = 0

    def __contains__(self, key: str) -> bool:
        return key in self._pods

    def counts(self) -> dict[str, int]:
        out = {"active": 0, "backoff": 0, "unschedulable": 0, "in_flight": 0}
        for place in self._where.values():
            out[place] += 1
        return out

    # -- pods arriving, changing, leaving --------------------------------

    def add(self, pod: dict) -> None:
        key = pod_key(pod)
        if key in self._pods:
            self.update(pod)
            return
        self._pods[key] = QueuedPod(pod)
        self._push_active(key)

    def update(self, pod: dict) -> None:
        key = pod_key(pod)
        queued = self._pods.get(key)
        if queued is None:
            self.add(pod)
            return
        changed = (queued.pod.get("spec") != pod.get("spec")) or (
            (queued.pod.get("metadata") or {}).get("labels") != (pod.get("metadata") or {}).get("labels")
        )
        queued.pod = pod
        if changed and self._where.get(key) == "unschedulable":
            self._unschedulable_since.pop(key, None)
            self._push_active(key)

    def delete(self, pod: dict) -> None:
        key = pod_key(pod)
        self._pods.pop(key, None)
        self._where.pop(key, None)
        self._unschedulable_since.pop(key, None)

    # -- the scheduling loop's side ------------------------------------

    async def pop(self) -> QueuedPod:
        while True:
            self._flush()
            while self._active:
                _, _, _, key = heapq.heappop(self._active)
                if self._where.get(key) == "active":
                    queued = self._pods[key]
                    self._where[key] = "in_flight"
                    queued.attempts += 1
                    queued.cycle = self.move_cycle
                    self.scheduling_cycle += 1
                    return queued
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._next_deadline())
            except TimeoutError:
                pass

    def done(self, key: str) -> None:
        """The pod was bound (or is gone): forget it."""
        self._pods.pop(key, None)
        self._where.pop(key, None)

    def unschedulable(self, queued: QueuedPod) -> None:
        """No node fits. Park it, unless the cluster changed while we were deciding."""
        key = queued.key
        if key not in self._pods:
            return
        queued.last_failure_at = time.monotonic()
        if self.move_cycle > queued.cycle:
            self._push_backoff(key)
        else:
            self._where[key] = "unschedulable"
            self._unschedulable_since[key] = time.monotonic()

    def retry_with_backoff(self, queued: QueuedPod) -> None:
        """A transient failure (the bind failed): try again after the pod's back-off."""
        if queued.key in self._pods:
            queued.last_failure_at = time.monotonic()
            self._push_backoff(queued.key)

    def move_all_to_active_or_backoff(self) -> None:
        """Something in the cluster changed that may let parked pods fit."""
        self.move_cycle += 1
        for key in [k for k, w in self._where.items() if w == "unschedulable"]:
            self._unschedulable_since.pop(key, None)
            self._push_backoff(key)
        self._wakeup.set()

    # -- internals ------------------------------------------------------

    def _push_active(self, key: str) -> None:
        queued = self._pods[key]
        created = (queued.pod.get("metadata") or {}).get("creationTimestamp") or ""
        self._where[key] = "active"
        heapq.heappush(self._active, (-queued.priority, created, next(self._seq), key))
        self._wakeup.set()

    def _push_backoff(self, key: str) -> None:
        queued = self._pods[key]
        ready = queued.last_failure_at + queued.backoff()
        if ready <= time.monotonic():
            self._push_active(key)
            return
        self._where[key] = "backoff"
        heapq.heappush(self._backoff, (ready, next(self._seq), key))
        self._wakeup.set()

    def _flush(self) -> None:
        now = time.monotonic()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, key = heapq.heappop(self._backoff)
            if self._where.get(key) == "backoff":
                self._push_active(key)
        for key, since in list(self._unschedulable_since.items()):
            if now - since >= UNSCHEDULABLE_TIMEOUT:
                del self._unschedulable_since[key]
                if self._where.get(key) == "unschedulable":
                    self._push_active(key)

    def _next_deadline(self) -> float:
        now = time.monotonic()
        deadlines = [UNSCHEDULABLE_TIMEOUT]
        if self._backoff:
            deadlines.append(self._backoff[0][0] - now)
        if self._unschedulable_since:
            deadlines.append(min(self._unschedulable_since.values()) + UNSCHEDULABLE_TIMEOUT - now)
        return max(0.01, min(deadlines))
