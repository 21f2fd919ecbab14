"""Scheduling decisions over a fake cluster: filters, scores, spreading, queue behaviour."""

import asyncio

import pytest

from scheduler.queue import SchedulingQueue
from scheduler.scheduler import NoFit, Scheduler
from tests.unit.scheduler.test_plugins import node, pod


def scheduler_with(*nodes):
    s = Scheduler.__new__(Scheduler)
    from scheduler.cache import SchedulerCache
    from scheduler.plugins import default_profile
    s.profile = default_profile()
    s.cache = SchedulerCache()
    for n in nodes:
        s.cache.set_node(n)
    return s


def owned(name, uid="rs-1", **kw):
    p = pod(name, **kw)
    p["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "rs", "uid": uid, "controller": True}]
    return p


def test_replicas_spread_over_nodes():
    s = scheduler_with(node("a"), node("b"))
    placed = []
    for i in range(4):
        p = owned(f"web-{i}", cpu="100m", memory="64Mi")
        n = s.choose_node(p)
        s.cache.assume(p, n)
        placed.append(n)
    assert placed.count("a") == 2 and placed.count("b") == 2


def test_least_allocated_prefers_emptier_node():
    s = scheduler_with(node("busy"), node("idle"))
    s.cache.assume(pod("hog", cpu="1500m", memory="3Gi"), "busy")
    assert s.choose_node(pod("new", cpu="100m")) == "idle"


def test_no_fit_message_summarises_reasons():
    s = scheduler_with(node("a", memory="1Gi"), node("b", memory="1Gi"),
                       node("c", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]))
    with pytest.raises(NoFit) as err:
        s.choose_node(pod("huge", memory="2Gi"))
    assert str(err.value) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient memory.")


def test_cache_assume_expire_and_confirm():
    s = scheduler_with(node("a", cpu="1"))
    p = pod("x", cpu="800m")
    s.cache.assume(p, "a")
    assert s.cache.nodes["a"].requested.milli_cpu == 800
    s.cache.forget(p)
    assert s.cache.nodes["a"].requested.milli_cpu == 0
    s.cache.assume(p, "a")
    bound = {**p, "spec": {**p["spec"], "nodeName": "a"}}
    s.cache.observe_pod(bound)
    assert not s.cache.is_assumed(p)
    assert s.cache.nodes["a"].requested.milli_cpu == 800
    finished = {**bound, "status": {"phase": "Succeeded"}}
    s.cache.observe_pod(finished)
    assert s.cache.nodes["a"].requested.milli_cpu == 0


async def test_queue_orders_by_priority_then_age():
    q = SchedulingQueue()
    for name, created, priority in (("low", "2026-01-01", 0), ("high", "2026-01-02", 100),
                                    ("old", "2025-01-01", 0)):
        p = pod(name, priority=priority)
        p["metadata"]["creationTimestamp"] = f"{created}T00:00:00Z"
        q.add(p)
    names = [(await q.pop()).pod["metadata"]["name"] for _ in range(3)]
    assert names == ["high", "old", "low"]


async def test_unschedulable_pod_returns_after_cluster_change():
    q = SchedulingQueue()
    q.add(pod("p"))
    queued = await q.pop()
    q.unschedulable(queued)
    assert q.counts()["unschedulable"] == 1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(q.pop(), 0.05)
    q.move_all_to_active_or_backoff()
    again = await asyncio.wait_for(q.pop(), 3)  # after its 1 s back-off
    assert again.pod["metadata"]["name"] == "p" and again.attempts == 2


async def test_change_during_attempt_skips_parking():
    q = SchedulingQueue()
    q.add(pod("p"))
    queued = await q.pop()
    q.move_all_to_active_or_backoff()  # e.g. a node was added while we were filtering
    q.unschedulable(queued)
    assert q.counts()["unschedulable"] == 0
