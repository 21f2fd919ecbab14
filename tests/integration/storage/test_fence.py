"""Fenced writes: a create/update happens only while the fence key is where it was read."""

from __future__ import annotations

import uuid

import pytest

from apiserver.storage import EtcdStore, FenceMoved, KeyExists, RevisionConflict
from apiserver.storage.etcd_store import Fence


def obj(name: str, value: str = "v") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": value}}


@pytest.fixture
def base() -> str:
    return f"/test-fence-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def store(etcd):
    s = await EtcdStore.connect([etcd.client_url])
    yield s
    await s.close()


async def test_fenced_create_moves_the_fence_and_a_stale_fence_loses(store, base) -> None:
    fence_key = f"{base}/fence"
    assert await store.mod_revision(fence_key) == 0
    first = await store.create(f"{base}/a", obj("a"), fence=Fence(fence_key, 0))
    moved = await store.mod_revision(fence_key)
    assert moved == int(first["metadata"]["resourceVersion"])  # one transaction
    with pytest.raises(FenceMoved):
        await store.create(f"{base}/b", obj("b"), fence=Fence(fence_key, 0))
    assert await store.get(f"{base}/b") is None
    second = await store.create(f"{base}/b", obj("b"), fence=Fence(fence_key, moved))
    assert await store.mod_revision(fence_key) == int(second["metadata"]["resourceVersion"])


async def test_fenced_create_of_a_taken_key_is_key_exists(store, base) -> None:
    fence_key = f"{base}/fence"
    await store.create(f"{base}/a", obj("a"))
    with pytest.raises(KeyExists):
        await store.create(f"{base}/a", obj("a", "other"), fence=Fence(fence_key, 0))
    with pytest.raises(KeyExists):  # both refused: the key's answer wins
        await store.create(f"{base}/a", obj("a", "other"), fence=Fence(fence_key, 12345))


async def test_fenced_update_tells_a_moved_fence_from_a_stale_object(store, base) -> None:
    fence_key = f"{base}/fence"
    created = await store.create(f"{base}/a", obj("a"))
    rev = int(created["metadata"]["resourceVersion"])
    await store.create(f"{base}/other", obj("other"), fence=Fence(fence_key, 0))
    with pytest.raises(FenceMoved):
        await store.update(f"{base}/a", obj("a", "x"), expected_revision=rev, fence=Fence(fence_key, 0))
    with pytest.raises(RevisionConflict):
        await store.update(f"{base}/a", obj("a", "x"), expected_revision=rev - 1,
                           fence=Fence(fence_key, await store.mod_revision(fence_key)))
    updated = await store.update(f"{base}/a", obj("a", "x"), expected_revision=rev,
                                 fence=Fence(fence_key, await store.mod_revision(fence_key)))
    assert (await store.get(f"{base}/a"))["data"] == {"k": "x"}
    assert await store.mod_revision(fence_key) == int(updated["metadata"]["resourceVersion"])
