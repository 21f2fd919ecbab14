"""cgroup drivers over fake cgroupfs trees (no root): what they write and how they read stats."""

from __future__ import annotations

from pathlib import Path

import pytest
from node_agent.runtime.cgroups import (
    CgroupV1,
    CgroupV2,
    Limits,
    open_cgroup,
    parse_mountinfo,
    shares_to_weight,
)
from node_agent.runtime.cgroups.detect import CgroupLayout

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
COMOUNTED = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
UNIFIED = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"


def test_detect_hybrid_is_v1_with_each_controller():
    layout = parse_mountinfo(HYBRID)
    assert layout.version == 1
    assert layout.v1_mounts["memory"] == "/sys/fs/cgroup/memory"
    assert layout.v1_mounts["cpuacct"] == "/sys/fs/cgroup/cpuacct"
    assert "systemd" not in layout.v1_mounts


def test_detect_unified_is_v2():
    layout = parse_mountinfo(UNIFIED)
    assert layout.version == 2 and layout.root == "/sys/fs/cgroup"


def test_comounted_cpu_cpuacct_is_one_directory(tmp_path: Path):
    layout = parse_mountinfo(COMOUNTED)
    layout.v1_mounts = {k: str(tmp_path / "cpu,cpuacct") for k in layout.v1_mounts}
    cg = CgroupV1(layout, "ketch/x")
    assert len(cg.procs_files()) == 1


def _v1_layout(root: Path) -> CgroupLayout:
    mounts = {c: str(root / c) for c in ("memory", "cpu", "cpuacct", "pids", "freezer", "blkio")}
    for m in mounts.values():
        Path(m).mkdir(parents=True)
    return CgroupLayout(version=1, v1_mounts=mounts)


def test_v1_limits_written_to_the_right_files(tmp_path: Path):
    layout = _v1_layout(tmp_path)
    cg = open_cgroup(layout, "ketchtest/c1")
    assert isinstance(cg, CgroupV1)
    # a real memory cgroup has the memsw file only with swap accounting; pretend it has
    (tmp_path / "memory/ketchtest/c1").mkdir(parents=True)
    (tmp_path / "memory/ketchtest/c1/memory.memsw.limit_in_bytes").write_text("max")
    cg.create(Limits(memory_bytes=64 << 20, cpu_quota_us=50_000, cpu_period_us=100_000, cpu_shares=512, pids_limit=20))
    read = lambda p: (tmp_path / p).read_text()  # noqa: E731
    assert read("memory/ketchtest/c1/memory.limit_in_bytes") == str(64 << 20)
    assert read("memory/ketchtest/c1/memory.memsw.limit_in_bytes") == str(64 << 20)
    assert read("cpu/ketchtest/c1/cpu.cfs_quota_us") == "50000"
    assert read("cpu/ketchtest/c1/cpu.cfs_period_us") == "100000"
    assert read("cpu/ketchtest/c1/cpu.shares") == "512"
    assert read("pids/ketchtest/c1/pids.max") == "20"
    assert sorted(cg.procs_files()) == sorted(str(tmp_path / c / "ketchtest/c1/cgroup.procs")
                                              for c in ("memory", "cpu", "cpuacct", "pids"))


def test_v1_stats_and_oom(tmp_path: Path):
    layout = _v1_layout(tmp_path)
    cg = open_cgroup(layout, "k/c")
    cg.create(Limits())
    (tmp_path / "memory/k/c/memory.usage_in_bytes").write_text("1000000\n")
    (tmp_path / "memory/k/c/memory.stat").write_text("cache 5\ntotal_inactive_file 250000\n")
    (tmp_path / "cpuacct/k/c/cpuacct.usage").write_text("123456789\n")
    (tmp_path / "pids/k/c/pids.current").write_text("7\n")
    (tmp_path / "memory/k/c/memory.limit_in_bytes").write_text("9223372036854771712\n")
    (tmp_path / "memory/k/c/memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert cg.stats() == {"cpu_usage_ns": 123456789, "memory_usage_bytes": 1000000,
                          "memory_working_set_bytes": 750000, "pids": 7, "memory_limit_bytes": 0, "pids_limit": 0}
    assert cg.oom_kill_count() == 2


def test_v2_limits_enable_controllers_and_convert_shares(tmp_path: Path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    layout = CgroupLayout(version=2, root=str(tmp_path))
    cg = open_cgroup(layout, "ketchtest/c1")
    assert isinstance(cg, CgroupV2)
    # the parent will have the controllers once the root delegates them
    (tmp_path / "ketchtest").mkdir()
    (tmp_path / "ketchtest/cgroup.controllers").write_text("cpu io memory pids\n")
    (tmp_path / "ketchtest/c1").mkdir()
    (tmp_path / "ketchtest/c1/memory.oom.group").write_text("0\n")
    cg.create(Limits(memory_bytes=1 << 30, cpu_quota_us=150_000, cpu_period_us=100_000, cpu_shares=1024, pids_limit=100))
    assert set((tmp_path / "cgroup.subtree_control").read_text().split()) == {"+cpu", "+memory", "+pids", "+io"}
    assert set((tmp_path / "ketchtest/cgroup.subtree_control").read_text().split()) == {"+cpu", "+memory", "+pids", "+io"}
    d = tmp_path / "ketchtest/c1"
    assert (d / "memory.max").read_text() == str(1 << 30)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "cpu.max").read_text() == "150000 100000"
    assert (d / "cpu.weight").read_text() == "39"
    assert (d / "pids.max").read_text() == "100"
    assert (d / "memory.oom.group").read_text() == "1"
    assert cg.procs_files() == [str(d / "cgroup.procs")]


def test_v2_stats_and_oom(tmp_path: Path):
    layout = CgroupLayout(version=2, root=str(tmp_path))
    cg = open_cgroup(layout, "k/c")
    d = tmp_path / "k/c"
    d.mkdir(parents=True)
    (d / "cpu.stat").write_text("usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n")
    (d / "memory.current").write_text("4096000\n")
    (d / "memory.stat").write_text("anon 100\ninactive_file 96000\nactive_file 5\n")
    (d / "pids.current").write_text("3\n")
    (d / "memory.max").write_text("max\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    assert cg.stats() == {"cpu_usage_ns": 2_500_000, "memory_usage_bytes": 4096000,
                          "memory_working_set_bytes": 4000000, "pids": 3, "memory_limit_bytes": 0, "pids_limit": 0}
    assert cg.oom_kill_count() == 1
    with pytest.raises(OSError, match="cannot remove cgroup"):   # a fake tree is a plain, non-empty directory
        cg.remove(timeout=0)


def test_shares_to_weight_matches_kubernetes():
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(262144) == 10000
    assert shares_to_weight(1) == 1
