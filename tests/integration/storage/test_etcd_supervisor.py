"""EmbeddedEtcd: starts a real etcd, keeps it alive, stops it, keeps its data."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from apiserver.etcd_supervisor import EmbeddedEtcd, EtcdStartError, etcd_healthy
from apiserver.storage import EtcdStore
from tests.fixtures.etcd import free_port


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def embedded(tmp_path):
    etcd = EmbeddedEtcd(tmp_path / "state" / "etcd", client_port=free_port(), peer_port=free_port())
    yield etcd
    pid = etcd.pid
    if pid is not None:  # the test failed half way: do not leave it running
        os.kill(pid, signal.SIGKILL)


async def test_start_stop_and_data_persists(embedded, tmp_path):
    await embedded.start()
    assert await etcd_healthy(embedded.client_url)
    pid = embedded.pid
    store = await EtcdStore.connect([embedded.client_url])
    created = await store.create("/registry/core/namespaces/a", {"metadata": {"name": "a"}})
    await store.close()
    assert (tmp_path / "state" / "etcd.log").exists()
    assert (tmp_path / "state" / "etcd").stat().st_mode & 0o777 == 0o700
    await embedded.stop()
    assert not alive(pid)
    assert not await etcd_healthy(embedded.client_url)

    await embedded.start()  # same data dir: the object is still there
    store = await EtcdStore.connect([embedded.client_url])
    assert await store.get("/registry/core/namespaces/a") == created
    await store.close()
    await embedded.stop()


async def test_restarts_etcd_after_a_crash(embedded):
    await embedded.start()
    store = await EtcdStore.connect([embedded.client_url], retry_for=30)
    try:
        await store.create("/registry/core/namespaces/before", {"metadata": {"name": "before"}})
        first = embedded.pid
        os.kill(first, signal.SIGKILL)
        # The store retries until the supervisor has etcd back.
        after = await store.create("/registry/core/namespaces/after", {"metadata": {"name": "after"}})
        assert after["metadata"]["resourceVersion"]
        assert embedded.restarts == 1
        assert embedded.pid not in (None, first)
        assert await store.get("/registry/core/namespaces/before") is not None
    finally:
        await store.close()
        await embedded.stop()


async def test_port_in_use_is_refused_naming_the_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        etcd = EmbeddedEtcd(tmp_path / "etcd", client_port=port, peer_port=free_port(), port_wait=1.0)
        started = time.monotonic()
        with pytest.raises(EtcdStartError, match=f"port {port} "):
            await etcd.start()
        assert time.monotonic() - started < 5
        assert etcd.pid is None


async def test_etcd_ends_when_its_parent_is_killed(tmp_path):
    client_port, peer_port = free_port(), free_port()
    script = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
        from apiserver.etcd_supervisor import EmbeddedEtcd
        async def main():
            etcd = EmbeddedEtcd({str(tmp_path / "etcd")!r}, client_port={client_port}, peer_port={peer_port})
            await etcd.start()
            print(etcd.pid, flush=True)
            await asyncio.sleep(120)
        asyncio.run(main())
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), 40)
        etcd_pid = int(line)
        assert alive(etcd_pid)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while alive(etcd_pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not alive(etcd_pid), "etcd outlived the apiserver that started it"
        # A new supervisor on the same data dir and ports starts cleanly.
        again = EmbeddedEtcd(tmp_path / "etcd", client_port=client_port, peer_port=peer_port)
        await again.start()
        await again.stop()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
