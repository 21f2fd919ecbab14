"""The scheduling loop: take the next pending pod, filter, score, assume, bind.

Level triggered like every Ketch loop: the pod and node informers keep the
cache and the queue current, so a restarted scheduler simply finds the pending
pods again. Binding runs in the background; the cache already counts the pod
on its node (assumed), so the loop never waits for the apiserver.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter

from prometheus_client import Counter as MetricCounter
from prometheus_client import Gauge, Histogram

from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.api.timeutil import now_rfc3339
from ketch.client.aio import STRATEGIC_MERGE_PATCH, AsyncClient
from ketch.events import EventRecorder
from ketch.informer import Informer
from scheduler.cache import SchedulerCache, is_terminal
from scheduler.framework import CycleState, NodeInfo, Profile, pod_key
from scheduler.plugins import default_profile
from scheduler.queue import QueuedPod, SchedulingQueue

log = logging.getLogger("ketch.scheduler")

PODS = lookup("", "v1", "pods")
NODES = lookup("", "v1", "nodes")

ATTEMPTS = MetricCounter(
    "scheduler_schedule_attempts_total", "Scheduling attempts by result.", ["result"]
)
ATTEMPT_SECONDS = Histogram(
    "scheduler_scheduling_attempt_duration_seconds",
    "Time to decide one pod's node (filter and score).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
PENDING = Gauge("scheduler_pending_pods", "Pods waiting in the scheduling queue.", ["queue"])


class NoFit(Exception):
    """No node passed the filters; the message is the FailedScheduling text."""


def fit_error_message(total: int, reasons: Counter[str]) -> str:
    """``0/3 nodes are available: 1 Insufficient memory, 2 node(s) were unschedulable.``"""
    if total == 0:
        return "no nodes available to schedule pods"
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return f"0/{total} nodes are available: {', '.join(parts)}."


class Scheduler:
    def __init__(
        self,
        client: AsyncClient,
        *,
        profile: Profile | None = None,
        scheduler_name: str = "default-scheduler",
        recorder: EventRecorder | None = None,
    ) -> None:
        self.client = client
        self.profile = profile or default_profile()
        self.scheduler_name = scheduler_name
        self.recorder = recorder or EventRecorder(client, "default-scheduler")
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue()
        self.pods = Informer(client, PODS)
        self.nodes = Informer(client, NODES)
        self._binds: set[asyncio.Task] = set()
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)

    # -- event handlers: keep cache and queue current ------------------------

    def _responsible(self, pod: dict) -> bool:
        spec = pod.get("spec") or {}
        return (spec.get("schedulerName") or "default-scheduler") == self.scheduler_name

    def _pending(self, pod: dict) -> bool:
        meta = pod.get("metadata") or {}
        return (
            not (pod.get("spec") or {}).get("nodeName")
            and not meta.get("deletionTimestamp")
            and not is_terminal(pod)
            and self._responsible(pod)
        )

    def _pod_added(self, pod: dict) -> None:
        if self._pending(pod):
            self.queue.add(pod)
        else:
            self.cache.observe_pod(pod)

    def _pod_updated(self, old: dict, pod: dict) -> None:
        if self._pending(pod):
            self.queue.update(pod)
            return
        if pod_key(pod) in self.queue and not (pod.get("spec") or {}).get("nodeName"):
            self.queue.delete(pod)  # being deleted or finished while pending
        self.cache.observe_pod(pod)
        if is_terminal(pod) and not is_terminal(old):
            self.queue.move_all_to_active_or_backoff()

    def _pod_deleted(self, pod: dict) -> None:
        self.queue.delete(pod)
        if (pod.get("spec") or {}).get("nodeName"):
            self.cache.remove_pod(pod)
            self.queue.move_all_to_active_or_backoff()

    def _node_added(self, node: dict) -> None:
        self.cache.set_node(node)
        self.queue.move_all_to_active_or_backoff()

    def _node_updated(self, old: dict, node: dict) -> None:
        self.cache.set_node(node)
        if old.get("spec") != node.get("spec") or _allocatable(old) != _allocatable(node) or (
            (old.get("metadata") or {}).get("labels") != (node.get("metadata") or {}).get("labels")
        ):
            self.queue.move_all_to_active_or_backoff()

    def _node_deleted(self, node: dict) -> None:
        self.cache.remove_node(node)

    # -- the loop --------------------------------------------------------

    async def run(self) -> None:
        informers = [asyncio.create_task(i.run()) for i in (self.nodes, self.pods)]
        try:
            await self.nodes.wait_synced()
            await self.pods.wait_synced()
            log.info("scheduler synced nodes=%d pods=%d", len(self.nodes.store.objects), len(self.pods.store.objects))
            while True:
                await self.schedule_one()
        finally:
            for task in informers:
                task.cancel()

    async def schedule_one(self) -> None:
        queued = await self.queue.pop()
        self._report_queue()
        for key in self.cache.expire_assumed():
            log.warning("scheduler assumed pod=%s expired without a bind", key)
        pod = queued.pod
        started = time.perf_counter()
        try:
            node = self.choose_node(pod)
        except NoFit as fit:
            ATTEMPT_SECONDS.observe(time.perf_counter() - started)
            ATTEMPTS.labels("unschedulable").inc()
            self._unschedulable(queued, str(fit))
            return
        ATTEMPT_SECONDS.observe(time.perf_counter() - started)
        self.cache.assume(pod, node)
        task = asyncio.create_task(self._bind(queued, node))
        self._binds.add(task)
        task.add_done_callback(self._binds.discard)

    def choose_node(self, pod: dict) -> str:
        nodes = list(self.cache.nodes.values())
        state = CycleState()
        feasible: list[NodeInfo] = []
        reasons: Counter[str] = Counter()
        for node in nodes:
            why = self._filter(state, pod, node)
            if why:
                reasons.update(why)
            else:
                feasible.append(node)
        if not feasible:
            raise NoFit(fit_error_message(len(nodes), reasons))
        if len(feasible) == 1:
            return feasible[0].name
        totals = dict.fromkeys((n.name for n in feasible), 0.0)
        for plugin in self.profile.scores:
            raw = {n.name: plugin.score(state, pod, n) for n in feasible}
            normalize = getattr(plugin, "normalize_scores", None)
            scored = normalize(state, pod, raw) if normalize else raw
            for name, value in scored.items():
                totals[name] += plugin.weight * value
        best = max(totals.values())
        return random.choice([name for name, total in totals.items() if total == best])

    def _filter(self, state: CycleState, pod: dict, node: NodeInfo) -> list[str]:
        for plugin in self.profile.filters:
            why = plugin.filter(state, pod, node)
            if why:
                return why  # as Kubernetes: the first failing plugin's reasons
        return []

    async def _bind(self, queued: QueuedPod, node: str) -> None:
        pod = queued.pod
        meta = pod["metadata"]
        try:
            await self.client.bind(meta["namespace"], meta["name"], node, meta.get("uid"))
        except (ApiError, OSError) as err:
            self.cache.forget(pod)
            if isinstance(err, ApiError) and err.code == 404:
                self.queue.done(queued.key)  # deleted meanwhile
                return
            ATTEMPTS.labels("error").inc()
            log.warning("scheduler bind pod=%s node=%s error=%r", queued.key, node, err)
            if isinstance(err, ApiError) and err.code == 409:
                self.queue.done(queued.key)  # already bound elsewhere; the informer will tell
                return
            self.queue.retry_with_backoff(queued)
            return
        ATTEMPTS.labels("scheduled").inc()
        self.queue.done(queued.key)
        log.info("scheduler bound pod=%s node=%s attempts=%d", queued.key, node, queued.attempts)
        self.recorder.event(pod, "Normal", "Scheduled", f"Successfully assigned {queued.key} to {node}")

    def _unschedulable(self, queued: QueuedPod, message: str) -> None:
        self.queue.unschedulable(queued)
        pod = queued.pod
        log.info("scheduler unschedulable pod=%s reason=%r", queued.key, message)
        self.recorder.event(pod, "Warning", "FailedScheduling", message)
        task = asyncio.create_task(self._set_unschedulable_condition(pod, message))
        self._binds.add(task)
        task.add_done_callback(self._binds.discard)

    async def _set_unschedulable_condition(self, pod: dict, message: str) -> None:
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("message") == message:
                return
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": now_rfc3339(),
        }
        meta = pod["metadata"]
        try:
            await self.client.patch(
                PODS, meta["name"], {"status": {"conditions": [condition]}}, meta["namespace"],
                subresource="status", content_type=STRATEGIC_MERGE_PATCH,
            )
        except (ApiError, OSError) as err:
            log.info("scheduler condition pod=%s error=%r", meta["name"], err)

    def _report_queue(self) -> None:
        for place, count in self.queue.counts().items():
            PENDING.labels(place).set(count)


def _allocatable(node: dict) -> dict:
    return (node.get("status") or {}).get("allocatable") or {}
