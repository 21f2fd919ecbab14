"""EtcdStore against a real etcd: CRUD semantics, revisions, watch, compaction, failover."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from apiserver.storage import (
    EtcdStore,
    KeyExists,
    KeyNotFound,
    RevisionCompacted,
    RevisionConflict,
)


def pod(name: str, image: str = "busybox", **meta) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", **meta},
            "spec": {"containers": [{"name": "c", "image": image}]}}


@pytest.fixture
def prefix() -> str:
    return f"/test-{uuid.uuid4().hex[:12]}/registry/core/pods/"


@pytest.fixture
async def store(etcd):
    s = await EtcdStore.connect([etcd.client_url])
    yield s
    await s.close()


async def test_create_get_sets_resource_version_from_mod_revision(store, prefix):
    created = await store.create(prefix + "default/a", pod("a"))
    rv = int(created["metadata"]["resourceVersion"])
    assert rv > 0
    got = await store.get(prefix + "default/a")
    assert got == created
    raw = await store.client.get((prefix + "default/a").encode())
    assert raw.mod_revision == rv
    stored = json.loads(raw.value)
    assert "resourceVersion" not in stored["metadata"]
    assert raw.value == json.dumps(stored, separators=(",", ":")).encode()


async def test_create_ignores_incoming_resource_version_and_does_not_mutate_input(store, prefix):
    obj = pod("a", resourceVersion="999")
    created = await store.create(prefix + "default/a", obj)
    assert obj["metadata"]["resourceVersion"] == "999"
    assert created["metadata"]["resourceVersion"] != "999"
    raw = await store.client.get((prefix + "default/a").encode())
    assert b"resourceVersion" not in raw.value


async def test_create_twice_raises_key_exists(store, prefix):
    await store.create(prefix + "default/a", pod("a"))
    with pytest.raises(KeyExists):
        await store.create(prefix + "default/a", pod("a", image="other"))
    assert (await store.get(prefix + "default/a"))["spec"]["containers"][0]["image"] == "busybox"


async def test_get_missing_is_none(store, prefix):
    assert await store.get(prefix + "default/nothing") is None


async def test_update_guarded_by_revision(store, prefix):
    key = prefix + "default/a"
    created = await store.create(key, pod("a"))
    rv = int(created["metadata"]["resourceVersion"])
    updated = await store.update(key, pod("a", image="v2"), expected_revision=rv)
    rv2 = int(updated["metadata"]["resourceVersion"])
    assert rv2 > rv
    with pytest.raises(RevisionConflict) as err:
        await store.update(key, pod("a", image="v3"), expected_revision=rv)
    assert err.value.actual == rv2
    assert (await store.get(key))["spec"]["containers"][0]["image"] == "v2"
    unguarded = await store.update(key, pod("a", image="v4"), expected_revision=None)
    assert int(unguarded["metadata"]["resourceVersion"]) > rv2


async def test_update_missing_raises_key_not_found(store, prefix):
    with pytest.raises(KeyNotFound):
        await store.update(prefix + "default/x", pod("x"), expected_revision=None)
    with pytest.raises(KeyNotFound):
        await store.update(prefix + "default/x", pod("x"), expected_revision=5)


async def test_delete_returns_last_object_at_delete_revision(store, prefix):
    key = prefix + "default/a"
    created = await store.create(key, pod("a"))
    rv = int(created["metadata"]["resourceVersion"])
    with pytest.raises(RevisionConflict):
        await store.delete(key, expected_revision=rv + 1000)
    deleted = await store.delete(key, expected_revision=rv)
    assert deleted["metadata"]["name"] == "a"
    assert int(deleted["metadata"]["resourceVersion"]) > rv
    assert await store.get(key) is None
    with pytest.raises(KeyNotFound):
        await store.delete(key)
    with pytest.raises(KeyNotFound):
        await store.delete(key, expected_revision=rv)


async def test_list_sorted_with_read_revision(store, prefix):
    for name in ["c", "a", "b"]:
        await store.create(prefix + f"default/{name}", pod(name))
    await store.create(prefix + "other/z", pod("z"))
    objects, revision = await store.list(prefix)
    assert [o["metadata"]["name"] for o in objects] == ["a", "b", "c", "z"]
    assert revision >= max(int(o["metadata"]["resourceVersion"]) for o in objects)
    assert revision == await store.current_revision() or revision < await store.current_revision()
    ns_objects, _ = await store.list(prefix + "default/")
    assert [o["metadata"]["name"] for o in ns_objects] == ["a", "b", "c"]


async def test_list_pages_through_chunks_at_one_revision(etcd, prefix):
    store = await EtcdStore.connect([etcd.client_url], list_chunk=3)
    try:
        for i in range(10):
            await store.create(prefix + f"default/p{i:02d}", pod(f"p{i:02d}"))
        objects, revision = await store.list(prefix)
        assert [o["metadata"]["name"] for o in objects] == [f"p{i:02d}" for i in range(10)]
        page, rev, nxt = await store.list_page(prefix, limit=4)
        assert [o["metadata"]["name"] for o in page] == ["p00", "p01", "p02", "p03"]
        await store.create(prefix + "default/p015", pod("p015"))  # after the page's revision
        page2, rev2, nxt2 = await store.list_page(prefix, limit=4, start_key=nxt, revision=rev)
        assert rev2 == rev
        assert [o["metadata"]["name"] for o in page2] == ["p04", "p05", "p06", "p07"]
        page3, _, nxt3 = await store.list_page(prefix, limit=4, start_key=nxt2, revision=rev)
        assert [o["metadata"]["name"] for o in page3] == ["p08", "p09"]
        assert nxt3 is None
        assert revision <= rev
    finally:
        await store.close()


async def _collect(aiter, n: int, timeout: float = 10) -> list:
    out = []

    async def run():
        async for item in aiter:
            out.append(item)
            if len(out) == n:
                return

    await asyncio.wait_for(run(), timeout)
    return out


async def test_watch_from_revision_sees_later_changes_including_delete(store, prefix):
    key_a, key_b = prefix + "default/a", prefix + "default/b"
    a = await store.create(key_a, pod("a"))
    _, list_rev = await store.list(prefix)
    b = await store.create(key_b, pod("b"))
    a2 = await store.update(key_a, pod("a", image="v2"), expected_revision=int(a["metadata"]["resourceVersion"]))
    gone = await store.delete(key_b)
    watch = store.watch(prefix, start_revision=list_rev)
    events = await _collect(watch, 3)
    await watch.aclose()
    assert [(e.type, e.key) for e in events] == [("ADDED", key_b), ("MODIFIED", key_a), ("DELETED", key_b)]
    assert events[0].obj == b
    assert events[1].obj == a2
    assert events[2].obj == gone  # the old object, resourceVersion = the delete revision
    assert events[2].revision == int(gone["metadata"]["resourceVersion"])
    assert [e.revision for e in events] == sorted(e.revision for e in events)


async def test_watch_from_zero_sees_only_new_changes(store, prefix):
    await store.create(prefix + "default/old", pod("old"))
    watch = store.watch(prefix, start_revision=0)
    collector = asyncio.ensure_future(_collect(watch, 1))
    await asyncio.sleep(0.3)
    new = await store.create(prefix + "default/new", pod("new"))
    events = await collector
    await watch.aclose()
    assert [(e.type, e.obj) for e in events] == [("ADDED", new)]


async def test_compacted_revision_raises_for_watch_and_page(etcd_factory, prefix):
    member = etcd_factory.member()
    store = await EtcdStore.connect([member.client_url])
    try:
        first = await store.create(prefix + "default/a", pod("a"))
        rv = int(first["metadata"]["resourceVersion"])
        for i in range(5):
            await store.update(prefix + "default/a", pod("a", image=f"v{i}"), expected_revision=None)
        head = await store.current_revision()
        await store.compact(head)
        with pytest.raises(RevisionCompacted) as err:
            await _collect(store.watch(prefix, start_revision=rv), 1)
        assert err.value.compact_revision == head
        with pytest.raises(RevisionCompacted):
            await store.list_page(prefix, limit=10, revision=rv)
        objects, revision = await store.list(prefix)  # the head is still readable
        assert len(objects) == 1 and revision == head
    finally:
        await store.close()


async def test_concurrent_creates_one_round_trip_each(store, prefix):
    objs = await asyncio.gather(*(store.create(prefix + f"default/p{i}", pod(f"p{i}")) for i in range(200)))
    revs = sorted(int(o["metadata"]["resourceVersion"]) for o in objs)
    assert len(set(revs)) == 200
    # One transaction per create: the 200 creates used exactly 200 consecutive revisions
    # unless other tests wrote in between (they may: then the span is only larger).
    assert revs[-1] - revs[0] >= 199
    objects, _ = await store.list(prefix)
    assert len(objects) == 200


async def test_watch_resumes_after_etcd_restart(etcd_factory, prefix):
    member = etcd_factory.member()
    store = await EtcdStore.connect([member.client_url], retry_for=30)
    try:
        watch = store.watch(prefix, start_revision=0)
        collector = asyncio.ensure_future(_collect(watch, 4, timeout=60))
        await asyncio.sleep(0.3)
        await store.create(prefix + "default/a", pod("a"))
        await store.create(prefix + "default/b", pod("b"))
        await asyncio.to_thread(member.kill)
        await asyncio.to_thread(member.restart)
        c = await store.create(prefix + "default/c", pod("c"))  # retried until etcd is back
        await store.delete(prefix + "default/a")
        events = await collector
        await watch.aclose()
        assert [(e.type, e.key.rsplit("/", 1)[1]) for e in events] == [
            ("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c"), ("DELETED", "a")]
        assert events[2].obj == c
    finally:
        await store.close()


async def test_three_member_cluster_survives_a_member_death(etcd_factory, prefix):
    members = etcd_factory.cluster(3)
    # A short request timeout: a follower whose leader died holds a write ~7 s otherwise.
    store = await EtcdStore.connect([m.client_url for m in members], retry_for=30, request_timeout=2)
    try:
        watch = store.watch(prefix, start_revision=0)
        collector = asyncio.ensure_future(_collect(watch, 40, timeout=60))
        await asyncio.sleep(0.3)
        for i in range(20):
            await store.create(prefix + f"default/p{i}", pod(f"p{i}"))
        # Kill the member the store is talking to: it must move on to another one.
        current = next(m for m in members if m.client_url == store.endpoint)
        await asyncio.to_thread(current.kill)
        for i in range(20, 40):
            await store.create(prefix + f"default/p{i}", pod(f"p{i}"))
        assert store.endpoint != current.client_url
        objects, _ = await store.list(prefix)
        assert sorted(o["metadata"]["name"] for o in objects) == sorted(f"p{i}" for i in range(40))
        got = await store.get(prefix + "default/p39")
        updated = await store.update(prefix + "default/p39", pod("p39", image="v2"),
                                     expected_revision=int(got["metadata"]["resourceVersion"]))
        assert updated["spec"]["containers"][0]["image"] == "v2"
        events = await collector
        await watch.aclose()
        assert sorted(e.key.rsplit("/", 1)[1] for e in events) == sorted(f"p{i}" for i in range(40))
        assert all(e.type == "ADDED" for e in events)
    finally:
        await store.close()
