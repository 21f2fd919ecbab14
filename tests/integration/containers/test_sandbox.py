"""Pod sandboxes: shared net/uts/ipc namespaces pinned by bind mounts."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from node_agent.runtime.containers import ContainerSpec
from node_agent.runtime.logs import read_entries
from node_agent.runtime.sandbox import SandboxError, SandboxManager


@pytest.fixture
async def sandboxes(manager):
    sm = SandboxManager(manager.run_root, spawner=manager.spawner)
    yield sm
    for sb in sm.list():
        await sm.remove(sb.id)


async def ns_of(manager, rootfs, sandbox_id, script):
    spec = ContainerSpec(id=uuid.uuid4().hex[:16], rootfs=str(rootfs), args=["sh", "-c", script], sandbox_id=sandbox_id)
    await manager.create(spec)
    await manager.start(spec.id)
    status = await manager.wait(spec.id)
    return b"".join(e.render() for e in read_entries(status.log_path)).decode().split()


def mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


async def test_containers_share_the_sandbox_namespaces(manager, sandboxes, rootfs):
    sb = await sandboxes.create("ketchsb" + uuid.uuid4().hex[:6], hostname="podhost")
    script = "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc"
    first = await ns_of(manager, rootfs, sb.id, script)
    second = await ns_of(manager, rootfs, sb.id, script)
    assert first == second
    assert first[0] == "podhost"
    net_inode = os.stat(sb.namespaces["net"]).st_ino
    assert first[1] == f"net:[{net_inode}]"
    assert net_inode != os.stat("/proc/self/ns/net").st_ino
    assert all(mounted(path) for path in sb.namespaces.values())

    await sandboxes.remove(sb.id)
    assert not any(mounted(path) for path in sb.namespaces.values())
    assert not os.path.exists(os.path.dirname(sb.namespaces["net"]))


async def test_sandbox_joins_an_existing_named_netns(manager, sandboxes, rootfs, run_id):
    name = f"ketch{run_id}sbn"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        sb = await sandboxes.create("ketchsb" + uuid.uuid4().hex[:6], hostname="joined", netns=name)
        out = await ns_of(manager, rootfs, sb.id, "readlink /proc/self/ns/net")
        assert out[0] == f"net:[{os.stat(f'/run/netns/{name}').st_ino}]"
        await sandboxes.remove(sb.id)
        assert os.path.exists(f"/run/netns/{name}")       # the owner's netns stays
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


async def test_missing_netns_is_a_clear_error(sandboxes):
    with pytest.raises(SandboxError, match="does not exist"):
        await sandboxes.create("ketchsbmissing", netns="ketch-no-such-netns")


async def test_host_network_sandbox(manager, sandboxes, rootfs):
    sb = await sandboxes.create("ketchsb" + uuid.uuid4().hex[:6], hostname="hostnet", netns="/proc/self/ns/net")
    out = await ns_of(manager, rootfs, sb.id, "readlink /proc/self/ns/net; hostname; ls /sys/class/net | wc -l")
    assert out[0] == f"net:[{os.stat('/proc/self/ns/net').st_ino}]"
    assert out[1] == "hostnet"
    assert int(out[2]) == len(os.listdir("/sys/class/net"))


async def test_sandbox_netns_published_for_ip_netns(manager, sandboxes, run_id):
    name = f"ketch{run_id}pub"
    sb = await sandboxes.create("ketchsb" + uuid.uuid4().hex[:6], hostname="pub", publish_as=name)
    try:
        assert os.stat(f"/run/netns/{name}").st_ino == os.stat(sb.namespaces["net"]).st_ino
        out = subprocess.run(["ip", "netns", "exec", name, "ip", "-o", "link"], capture_output=True, text=True,
                             check=True).stdout
        assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]
    finally:
        await sandboxes.remove(sb.id)
    assert not os.path.exists(f"/run/netns/{name}")
