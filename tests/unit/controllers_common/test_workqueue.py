import asyncio

import pytest

from ketch.workqueue import ExponentialBackoff, ShutDown, WorkQueue


async def test_keys_are_deduplicated_while_waiting():
    q = WorkQueue()
    for _ in range(3):
        q.add("ns/a")
    q.add("ns/b")
    assert len(q) == 2
    assert await q.get() == "ns/a"
    assert await q.get() == "ns/b"


async def test_key_added_during_processing_is_requeued_after_done():
    q = WorkQueue()
    q.add("k")
    key = await q.get()
    q.add("k")  # an event arrives while a worker holds the key
    assert len(q) == 0, "a key in processing must not be handed to a second worker"
    q.done(key)
    assert len(q) == 1
    assert await q.get() == "k"


async def test_add_after_delays_the_key():
    q = WorkQueue()
    q.add_after("later", 0.05)
    q.add("now")
    assert await q.get() == "now"
    got = await asyncio.wait_for(q.get(), 1)
    assert got == "later"


async def test_rate_limited_backoff_doubles_and_forget_resets():
    b = ExponentialBackoff(base=0.01, cap=0.05)
    assert [b.when("k") for _ in range(4)] == [0.01, 0.02, 0.04, 0.05]
    b.forget("k")
    assert b.when("k") == 0.01


async def test_shut_down_wakes_waiting_workers():
    q = WorkQueue()
    worker = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shut_down()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(worker, 1)


async def test_many_workers_never_share_a_key():
    q = WorkQueue()
    active: set[str] = set()
    seen: list[str] = []

    async def worker():
        while True:
            try:
                key = await q.get()
            except ShutDown:
                return
            assert key not in active
            active.add(key)
            await asyncio.sleep(0.001)
            seen.append(key)
            active.discard(key)
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for i in range(50):
        q.add(f"k{i % 5}")
        await asyncio.sleep(0)
    while len(q) or active:
        await asyncio.sleep(0.005)
    q.shut_down()
    await asyncio.gather(*workers)
    assert set(seen) == {f"k{i}" for i in range(5)}
