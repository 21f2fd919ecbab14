"""WatchCache against a real etcd: the in-memory view must agree with etcd, revision by revision."""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import pytest

from apiserver.storage import EtcdStore, RevisionCompacted, WatchCache


def pod(name: str, image: str = "busybox", ns: str = "default") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": image}]}}


@pytest.fixture
def prefix() -> str:
    return f"/test-{uuid.uuid4().hex[:12]}/registry/core/pods/"


@pytest.fixture
async def store(etcd):
    s = await EtcdStore.connect([etcd.client_url])
    yield s
    await s.close()


@pytest.fixture
async def cache_factory(store, prefix):
    caches: list[WatchCache] = []

    async def make(**options) -> WatchCache:
        cache = WatchCache(options.pop("store", store), options.pop("prefix", prefix), **options)
        await cache.start()
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        await cache.stop()


async def take(aiter, n: int, timeout: float = 10) -> list:
    out = []

    async def run():
        async for item in aiter:
            out.append(item)
            if len(out) == n:
                return

    await asyncio.wait_for(run(), timeout)
    return out


def apply(state: dict[str, dict], events) -> None:
    for e in events:
        if e.type == "DELETED":
            assert e.key in state, f"DELETED for unknown {e.key}"
            del state[e.key]
        else:
            assert (e.type == "ADDED") == (e.key not in state), f"{e.type} for {e.key}"
            state[e.key] = e.obj


async def test_start_lists_current_state(store, cache_factory, prefix):
    for name in ["b", "a"]:
        await store.create(prefix + f"default/{name}", pod(name))
    await store.create(prefix + "kube-system/c", pod("c", ns="kube-system"))
    cache = await cache_factory()
    objects, revision = cache.list()
    assert [o["metadata"]["name"] for o in objects] == ["a", "b", "c"]
    etcd_objects, etcd_revision = await store.list(prefix)
    assert objects == etcd_objects and revision >= etcd_revision
    assert [o["metadata"]["name"] for o in cache.list(prefix + "default/")[0]] == ["a", "b"]
    assert cache.get(prefix + "kube-system/c")["metadata"]["name"] == "c"
    assert cache.get(prefix + "default/zzz") is None


async def test_own_write_visible_after_wait_for_revision(store, cache_factory, prefix):
    cache = await cache_factory()
    created = await store.create(prefix + "default/a", pod("a"))
    await cache.wait_for_revision(int(created["metadata"]["resourceVersion"]), timeout=5)
    assert cache.get(prefix + "default/a") == created
    deleted = await store.delete(prefix + "default/a")
    await cache.wait_for_revision(int(deleted["metadata"]["resourceVersion"]), timeout=5)
    assert cache.get(prefix + "default/a") is None


async def test_wait_for_revision_of_another_prefix_uses_etcd_progress(store, cache_factory, prefix):
    cache = await cache_factory()
    other = await store.create(prefix.replace("/pods/", "/configmaps/") + "default/x", pod("x"))
    rv = int(other["metadata"]["resourceVersion"])
    assert cache.revision < rv
    await cache.wait_for_revision(rv, timeout=5)
    assert cache.revision >= rv
    with pytest.raises(TimeoutError):
        await cache.wait_for_revision(rv + 1_000_000, timeout=0.3)


async def test_list_then_watch_from_its_revision_sees_every_later_write_once(store, cache_factory, prefix):
    cache = await cache_factory()
    rng = random.Random(7)
    names = [f"p{i}" for i in range(30)]
    snapshot: dict = {}
    ready = asyncio.Event()

    async def writer(worker: int) -> None:
        for step in range(60):
            if worker == 0 and step == 20:
                objects, revision = cache.list()
                snapshot["objects"] = {o["metadata"]["name"]: o for o in objects}
                snapshot["revision"] = revision
                ready.set()
            name = rng.choice(names)
            key = prefix + f"default/{name}"
            current = await store.get(key)
            try:
                if current is None:
                    await store.create(key, pod(name, image=f"w{worker}s{step}"))
                elif rng.random() < 0.3:
                    await store.delete(key, expected_revision=int(current["metadata"]["resourceVersion"]))
                else:
                    await store.update(key, pod(name, image=f"w{worker}s{step}"),
                                       expected_revision=int(current["metadata"]["resourceVersion"]))
            except Exception as e:  # conflicts between the writers are expected
                assert type(e).__name__ in {"KeyExists", "RevisionConflict", "KeyNotFound"}

    writers = [asyncio.create_task(writer(i)) for i in range(4)]
    await ready.wait()
    start = snapshot["revision"]
    events = []

    async def consume():
        async for e in cache.watch(prefix, start):
            events.append(e)

    consumer = asyncio.create_task(consume())
    await asyncio.gather(*writers)
    final, final_revision = await store.list(prefix)
    await cache.wait_for_revision(final_revision)
    await asyncio.sleep(0.1)
    consumer.cancel()
    # Exactly the changes after `start`, in revision order, none twice: etcd's own watch agrees.
    truth = await take(store.watch(prefix, start_revision=start),
                       n=len(events), timeout=10) if events else []
    assert [(e.type, e.key, e.revision) for e in events] == [(e.type, e.key, e.revision) for e in truth]
    assert all(e.revision > start for e in events)
    state = {prefix + f"default/{n}": o for n, o in snapshot["objects"].items()}
    apply(state, events)
    assert [state[k] for k in sorted(state)] == final
    assert cache.list()[0] == final


async def test_watch_from_zero_gives_current_state_then_live(store, cache_factory, prefix):
    a = await store.create(prefix + "default/a", pod("a"))
    cache = await cache_factory()
    watch = cache.watch(prefix, 0)
    first = await take(watch, 1)
    assert [(e.type, e.obj) for e in first] == [("ADDED", a)]
    b = await store.create(prefix + "default/b", pod("b"))
    second = await take(watch, 1)
    assert [(e.type, e.obj) for e in second] == [("ADDED", b)]
    await watch.aclose()


async def test_namespace_watch_filters_other_namespaces(store, cache_factory, prefix):
    cache = await cache_factory()
    watch = cache.watch(prefix + "ns1/", cache.revision)
    await store.create(prefix + "ns2/x", pod("x", ns="ns2"))
    y = await store.create(prefix + "ns1/y", pod("y", ns="ns1"))
    got = await take(watch, 1)
    assert [(e.type, e.obj) for e in got] == [("ADDED", y)]
    await watch.aclose()


async def test_new_cache_serves_watch_from_before_its_start(store, cache_factory, prefix):
    """An apiserver restarted mid-watch: the client resumes from its last resourceVersion."""
    first = await store.create(prefix + "default/a", pod("a"))
    seen = int(first["metadata"]["resourceVersion"])
    b = await store.create(prefix + "default/b", pod("b"))
    gone = await store.delete(prefix + "default/a")
    cache = await cache_factory()  # starts after all three writes
    events = await take(cache.watch(prefix, seen), 2)
    assert [(e.type, e.obj) for e in events] == [("ADDED", b), ("DELETED", gone)]


async def test_watch_older_than_history_is_compacted(store, cache_factory, prefix):
    cache = await cache_factory(history=5)
    first = await store.create(prefix + "default/p0", pod("p0"))
    for i in range(1, 12):
        await store.create(prefix + f"default/p{i}", pod(f"p{i}"))
    await cache.wait_for_revision(await store.current_revision())
    with pytest.raises(RevisionCompacted):
        await take(cache.watch(prefix, int(first["metadata"]["resourceVersion"])), 1)
    recent = cache.watch(prefix, cache.revision - 1)
    assert len(await take(recent, 1)) == 1
    await recent.aclose()


async def test_slow_watcher_is_ended_and_others_keep_going(store, cache_factory, prefix):
    cache = await cache_factory(watcher_queue=10)
    slow = cache.watch(prefix, cache.revision)
    fast = cache.watch(prefix, cache.revision)
    slow_first = asyncio.create_task(take(slow, 1))
    fast_all = asyncio.create_task(take(fast, 40, timeout=20))
    await asyncio.sleep(0.1)
    for i in range(40):
        await store.create(prefix + f"default/p{i}", pod(f"p{i}"))
        await asyncio.sleep(0)
    assert len(await slow_first) == 1
    assert [e.obj["metadata"]["name"] for e in await fast_all] == [f"p{i}" for i in range(40)]
    with pytest.raises(RevisionCompacted, match="fell behind"):
        await take(slow, 100)
    assert cache.watcher_count == 1
    await fast.aclose()
    assert cache.watcher_count == 0


async def test_fan_out_to_hundreds_of_watchers(store, cache_factory, prefix):
    cache = await cache_factory()
    watchers = [cache.watch(prefix, cache.revision) for _ in range(300)]
    tasks = [asyncio.create_task(take(w, 50, timeout=30)) for w in watchers]
    await asyncio.sleep(0.2)
    began = time.monotonic()
    await asyncio.gather(*(store.create(prefix + f"default/p{i}", pod(f"p{i}")) for i in range(50)))
    results = await asyncio.gather(*tasks)
    elapsed = time.monotonic() - began
    revisions = [e.revision for e in results[0]]
    assert revisions == sorted(revisions) and len(set(revisions)) == 50
    assert all([e.revision for e in r] == revisions for r in results)
    assert elapsed < 10, f"15,000 deliveries took {elapsed:.1f}s"


async def test_bookmark_when_idle(store, cache_factory, prefix):
    cache = await cache_factory()
    watch = cache.watch(prefix, cache.revision, bookmark_interval=0.2)
    await store.create(prefix.replace("/pods/", "/services/") + "default/x", pod("x"))
    await cache.sync()
    got = await take(watch, 1, timeout=5)
    assert got[0].type == "BOOKMARK" and got[0].revision == cache.revision
    await watch.aclose()


async def test_cache_survives_etcd_restart_mid_watch(etcd_factory, prefix):
    member = etcd_factory.member()
    store = await EtcdStore.connect([member.client_url], retry_for=30)
    cache = WatchCache(store, prefix)
    await cache.start()
    try:
        watch = cache.watch(prefix, cache.revision)
        collected = asyncio.create_task(take(watch, 4, timeout=60))
        await store.create(prefix + "default/a", pod("a"))
        await asyncio.to_thread(member.kill)
        await asyncio.to_thread(member.restart)
        await store.create(prefix + "default/b", pod("b"))
        await store.create(prefix + "default/c", pod("c"))
        await store.delete(prefix + "default/a")
        events = await collected
        assert [(e.type, e.key.rsplit("/", 1)[1]) for e in events] == [
            ("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c"), ("DELETED", "a")]
        objects, revision = await store.list(prefix)
        await cache.wait_for_revision(revision)
        assert cache.list()[0] == objects
        assert cache.relists == 0
    finally:
        await cache.stop()
        await store.close()


async def test_relist_after_compaction_sends_differences(etcd_factory, prefix):
    member = etcd_factory.member()
    store = await EtcdStore.connect([member.client_url])
    for name in ["keep", "change", "drop"]:
        await store.create(prefix + f"default/{name}", pod(name))
    cache = WatchCache(store, prefix)
    await cache.start()
    try:
        watch = cache.watch(prefix, cache.revision)
        collected = asyncio.create_task(take(watch, 3, timeout=30))
        # Stop the feed (as a long etcd outage would), change etcd, compact past the cache.
        cache._task.cancel()
        await asyncio.gather(cache._task, return_exceptions=True)
        await store.update(prefix + "default/change", pod("change", image="v2"), expected_revision=None)
        await store.delete(prefix + "default/drop")
        new = await store.create(prefix + "default/new", pod("new"))
        await store.compact(await store.current_revision())
        cache._task = asyncio.create_task(cache._run(None, cache.revision, None))
        events = await collected
        assert sorted((e.type, e.key.rsplit("/", 1)[1]) for e in events) == [
            ("ADDED", "new"), ("DELETED", "drop"), ("MODIFIED", "change")]
        assert cache.relists == 1
        assert cache.get(prefix + "default/new") == new
        objects, _ = await store.list(prefix)
        assert cache.list()[0] == objects
        # And it keeps following etcd afterwards.
        later = await store.create(prefix + "default/later", pod("later"))
        await cache.wait_for_revision(int(later["metadata"]["resourceVersion"]))
        assert cache.get(prefix + "default/later") == later
    finally:
        await cache.stop()
        await store.close()


async def test_marker_key_stays_out_of_reads_of_a_parent_prefix(store, cache_factory, prefix):
    parent = prefix.rsplit("/", 2)[0] + "/"  # /test-…/registry/core/
    watch = store.watch(parent, start_revision=await store.current_revision())
    cache = await cache_factory()
    revision = await cache.sync()  # writes the marker key just past the pods prefix
    assert (await store.client.get(prefix[:-1].encode() + b"0")) is not None
    a = await store.create(prefix + "default/a", pod("a"))
    objects, listed_at = await store.list(parent)
    assert objects == [a] and listed_at > revision
    events = await take(watch, 1)
    assert [(e.type, e.obj) for e in events] == [("ADDED", a)]
    await watch.aclose()
