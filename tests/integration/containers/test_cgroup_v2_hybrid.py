"""The cgroup v2 driver for real on a hybrid host: its cgroup2 mount (no controllers
here) still takes a container's processes, so creation, joining, the cgroup
namespace and removal run through the v2 code. Pure-v2 hosts run every other
test on v2 anyway."""

from __future__ import annotations

import os
import uuid

import pytest
from node_agent.runtime.cgroups import CgroupLayout, CgroupV2, open_cgroup
from node_agent.runtime.containers import ContainerSpec

UNIFIED = "/sys/fs/cgroup/unified"


def _is_cgroup2(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path and " - cgroup2 " in line for line in f)


@pytest.mark.skipif(not _is_cgroup2(UNIFIED), reason="no hybrid cgroup2 mount here (pure v1 or pure v2 host)")
async def test_v2_driver_runs_a_container(manager, rootfs):
    manager.layout = CgroupLayout(version=2, root=UNIFIED)
    parent = os.path.join(UNIFIED, manager.cgroup_parent)
    cid = uuid.uuid4().hex[:16]
    try:
        await manager.create(ContainerSpec(id=cid, rootfs=str(rootfs), args=["sleep", "30"]))
        await manager.start(cid)
        cg = open_cgroup(manager.layout, f"{manager.cgroup_parent}/{cid}")
        assert isinstance(cg, CgroupV2)
        pid = manager.status(cid).pid
        assert str(pid) in open(cg.procs_files()[0]).read().split()
        code, out, _ = await manager.exec_sync(cid, ["cat", "/proc/self/cgroup"], 5)
        assert "0::/\n" in out.decode()                 # its own cgroup is the root of its cgroup namespace
        assert manager.stats(cid)["cpu_usage_ns"] > 0   # cpu.stat exists on every cgroup2 directory
        await manager.remove(cid, force=True)
        assert not os.path.exists(cg.path)
    finally:
        if cid in [s.id for s in manager.list()]:
            await manager.remove(cid, force=True)
        if os.path.isdir(parent):
            os.rmdir(parent)
