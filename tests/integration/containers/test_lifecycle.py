"""Limits, stop semantics, logs, events and stats of real containers."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest
from node_agent.runtime.cgroups import open_cgroup
from node_agent.runtime.containers import (
    ContainerError,
    ContainerManager,
    ContainerSpec,
    Mount,
    Resources,
)
from node_agent.runtime.logs import read_entries


def cid() -> str:
    return uuid.uuid4().hex[:16]


async def started(manager, rootfs, args, **kwargs) -> str:
    spec = ContainerSpec(id=cid(), rootfs=str(rootfs), args=args, **kwargs)
    await manager.create(spec)
    await manager.start(spec.id)
    return spec.id


def log_text(status) -> str:
    return b"".join(e.render() for e in read_entries(status.log_path)).decode()


async def wait_for_output(manager, container_id: str, text: str, timeout: float = 20) -> None:
    """Until the container has printed `text` (e.g. that its signal traps are set)."""
    deadline = time.monotonic() + timeout
    while text not in log_text(manager.status(container_id)):
        assert time.monotonic() < deadline, f"container never printed {text!r}"
        await asyncio.sleep(0.02)


async def test_memory_limit_oom_kills(manager, rootfs):
    events = []

    async def collect():
        async for event in manager.events():
            events.append(event["type"])

    task = asyncio.create_task(collect())
    await asyncio.sleep(0)
    # tail keeps every byte of a file without newlines: it grows until the limit kills it
    cid_ = await started(manager, rootfs, ["tail", "/dev/zero"], resources=Resources(memory_bytes=32 * 1024 * 1024))
    status = await asyncio.wait_for(manager.wait(cid_), 60)
    assert status.exit_code == 137
    assert status.reason == "OOMKilled"
    await asyncio.sleep(0.05)
    task.cancel()
    assert events == ["created", "started", "exited", "oom"]


async def test_exit_code_and_reason(manager, rootfs):
    ok = await started(manager, rootfs, ["true"])
    bad = await started(manager, rootfs, ["sh", "-c", "exit 3"])
    s_ok, s_bad = await manager.wait(ok), await manager.wait(bad)
    assert (s_ok.exit_code, s_ok.reason) == (0, "Completed")
    assert (s_bad.exit_code, s_bad.reason) == (3, "Error")
    assert s_ok.created_at <= s_ok.started_at <= s_ok.finished_at


async def test_pid_limit_holds_against_a_fork_bomb(manager, rootfs):
    # the inner shell gives up at the first failed fork; the outer one reports and stays (exec: no fork)
    script = "sh -c 'for i in $(seq 100); do sleep 30 & done' 2>/dev/null; echo forked; exec sleep 30"
    cid_ = await started(manager, rootfs, ["sh", "-c", script], resources=Resources(pids_limit=20))
    await wait_for_output(manager, cid_, "forked")
    pids = manager.stats(cid_)["pids"]
    assert 1 < pids <= 20
    # the host can still fork
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    await manager.kill(cid_, 9)
    status = await asyncio.wait_for(manager.wait(cid_), 10)
    assert status.exit_code == 137


async def test_stop_sends_sigterm_then_sigkill(manager, rootfs):
    polite = await started(manager, rootfs, ["sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo trapped; "
                                                         "while :; do sleep 0.1; done"])
    stubborn = await started(manager, rootfs, ["sh", "-c", "trap 'echo ignoring TERM' TERM; echo trapped; "
                                                           "while :; do sleep 0.1; done"])
    await wait_for_output(manager, polite, "trapped")
    await wait_for_output(manager, stubborn, "trapped")
    t0 = time.monotonic()
    await manager.stop(polite, timeout=10)
    assert time.monotonic() - t0 < 5
    status = manager.status(polite)
    assert status.exit_code == 3 and "got TERM" in log_text(status)

    t0 = time.monotonic()
    await manager.stop(stubborn, timeout=1.0)
    elapsed = time.monotonic() - t0
    status = manager.status(stubborn)
    assert 1.0 <= elapsed < 5
    assert status.exit_code == 137
    assert "ignoring TERM" in log_text(status)


async def test_logs_complete_and_in_order(manager, rootfs):
    cid_ = await started(manager, rootfs, ["sh", "-c", "seq 1 10000; echo oops >&2; printf tail-without-newline"])
    status = await manager.wait(cid_)
    entries = list(read_entries(status.log_path))
    stdout = [e.content.decode() for e in entries if e.stream == "stdout" and not e.partial]
    assert stdout == [str(i) for i in range(1, 10001)]
    assert [e.content for e in entries if e.stream == "stderr"] == [b"oops"]
    assert entries[-1].partial and entries[-1].content == b"tail-without-newline"
    # the reader API the CLI uses: tail and timestamps
    got = [chunk async for _, chunk in manager.logs(cid_, tail=3)]
    assert got[-1] == b"tail-without-newline"
    stamped = [chunk async for _, chunk in manager.logs(cid_, tail=1, timestamps=True)]
    assert stamped[0].split(b" ", 1)[0].endswith(b"Z")


async def test_logs_rotate_by_size(tmp_path, run_id, rootfs):
    m = ContainerManager(tmp_path / "st2", tmp_path / "rn2", cgroup_parent=f"ketch{run_id}", log_max_size=64 * 1024,
                         log_max_files=3)
    try:
        cid_ = await started(m, rootfs, ["sh", "-c", "seq 1 30000"])
        status = await m.wait(cid_)
        assert os.path.exists(status.log_path + ".1") and os.path.exists(status.log_path + ".2")
        assert not os.path.exists(status.log_path + ".3")
        lines = [int(e.content) for e in read_entries(status.log_path)]
        assert lines[-1] == 30000 and lines == sorted(lines) and lines == list(range(lines[0], 30001))
        await m.remove(cid_)
    finally:
        await m.close()


async def test_events_and_stats(manager, rootfs):
    events = []

    async def collect():
        async for event in manager.events():
            events.append(event)

    task = asyncio.create_task(collect())
    await asyncio.sleep(0)
    cid_ = await started(manager, rootfs, ["sh", "-c", "sleep 30"], resources=Resources(memory_bytes=64 << 20,
                                                                                          cpu_quota_us=50_000,
                                                                                          cpu_shares=512))
    stats = manager.stats(cid_)
    assert stats["pids"] >= 1 and stats["memory_usage_bytes"] > 0 and stats["cpu_usage_ns"] > 0
    assert 0 < stats["memory_working_set_bytes"] <= stats["memory_usage_bytes"]
    assert stats["memory_limit_bytes"] == 64 << 20
    await manager.kill(cid_, "SIGKILL")
    await manager.wait(cid_)
    await manager.remove(cid_)
    await asyncio.sleep(0.05)
    task.cancel()
    kinds = [e["type"] for e in events if e["container_id"] == cid_]
    assert kinds == ["created", "started", "exited", "removed"]


async def test_remove_cleans_cgroup_and_state(manager, rootfs):
    cid_ = await started(manager, rootfs, ["sleep", "30"])
    status = manager.status(cid_)
    assert status.state == "running"
    cg = open_cgroup(manager.layout, f"{manager.cgroup_parent}/{cid_}")
    assert all(os.path.isdir(d) for d in cg.directories())
    await manager.remove(cid_, force=True)
    assert not any(os.path.isdir(d) for d in cg.directories())
    assert not (manager.state_root / "containers" / cid_).exists()
    assert not os.path.exists(f"/proc/{status.pid}")


async def test_create_without_start_then_remove(manager, rootfs):
    spec = ContainerSpec(id=cid(), rootfs=str(rootfs), args=["sleep", "30"])
    await manager.create(spec)
    assert manager.status(spec.id).state == "created"
    await manager.remove(spec.id)
    assert spec.id not in [s.id for s in manager.list()]


async def test_cpu_and_memory_limits_reach_the_cgroup(manager, rootfs):
    cid_ = await started(manager, rootfs, ["sleep", "30"], resources=Resources(
        memory_bytes=48 << 20, cpu_quota_us=25_000, cpu_period_us=50_000, cpu_shares=256, pids_limit=7))
    cg = open_cgroup(manager.layout, f"{manager.cgroup_parent}/{cid_}")
    if manager.layout.version == 1:
        files = {"memory": ("memory.limit_in_bytes", str(48 << 20)), "cpu": ("cpu.cfs_quota_us", "25000"),
                 "pids": ("pids.max", "7")}
        for controller, (name, expected) in files.items():
            assert open(f"{cg.paths[controller]}/{name}").read().strip() == expected
        assert open(f"{cg.paths['cpu']}/cpu.cfs_period_us").read().strip() == "50000"
        assert open(f"{cg.paths['cpu']}/cpu.shares").read().strip() == "256"
    else:
        assert open(f"{cg.path}/memory.max").read().strip() == str(48 << 20)
        assert open(f"{cg.path}/cpu.max").read().strip() == "25000 50000"
        assert open(f"{cg.path}/pids.max").read().strip() == "7"
    # the container's processes are in it, and see it as their root
    status = manager.status(cid_)
    assert str(status.pid) in open(cg.procs_files()[0]).read().split()
    code, out, _ = await manager.exec_sync(cid_, ["cat", "/proc/self/cgroup"], 5)
    assert all(line.endswith(":/") for line in out.decode().splitlines())


async def test_kill_with_a_signal_name_and_stdin_once(manager, rootfs):
    cid_ = await started(manager, rootfs, ["sh", "-c", "trap 'exit 42' USR1; echo trapped; while :; do sleep 0.1; done"])
    await wait_for_output(manager, cid_, "trapped")
    await manager.kill(cid_, "SIGUSR1")
    assert (await asyncio.wait_for(manager.wait(cid_), 5)).exit_code == 42

    once = await started(manager, rootfs, ["cat"], stdin=True, stdin_once=True)
    io = await manager.attach(once)
    await io.write_stdin(b"only once\n")
    await io.close()                        # the first attach leaves: stdin closes, cat ends
    status = await asyncio.wait_for(manager.wait(once), 5)
    assert status.exit_code == 0
    assert log_text(status) == "only once\n"


async def test_many_containers_at_once(manager, rootfs):
    async def one(i: int) -> None:
        cid_ = await started(manager, rootfs, ["sh", "-c", f"echo {i}; exit {i % 4}"])
        status = await manager.wait(cid_)
        assert status.exit_code == i % 4 and log_text(status) == f"{i}\n"
        await manager.remove(cid_)

    await asyncio.gather(*(one(i) for i in range(30)))
    assert manager.list() == []


async def test_failed_create_leaves_nothing_behind(manager, rootfs, tmp_path):
    spec = ContainerSpec(id=cid(), rootfs=str(rootfs), args=["true"],
                         mounts=[Mount(source=str(tmp_path / "missing"), destination="/data")])
    with pytest.raises(ContainerError, match="does not exist"):
        await manager.create(spec)
    cg = open_cgroup(manager.layout, f"{manager.cgroup_parent}/{spec.id}")
    assert not any(os.path.isdir(d) for d in cg.directories())
    assert not (manager.state_root / "containers" / spec.id).exists()
    assert manager.list() == []
    # the id can be used again
    spec.mounts = []
    await manager.create(spec)
    await manager.start(spec.id)
    assert (await manager.wait(spec.id)).exit_code == 0


async def test_update_resources_of_a_running_container(manager, rootfs):
    cid_ = await started(manager, rootfs, ["sleep", "30"], resources=Resources(memory_bytes=64 << 20))
    await manager.update_resources(cid_, Resources(memory_bytes=96 << 20, pids_limit=50))
    stats = manager.stats(cid_)
    assert stats["memory_limit_bytes"] == 96 << 20
    assert stats["pids_limit"] == 50


async def test_ids_that_would_escape_their_directories_are_refused(manager, rootfs):
    for bad in ("../etc", "a/b", ".warm-1", ""):
        with pytest.raises(ContainerError, match="invalid container id"):
            await manager.create(ContainerSpec(id=bad, rootfs=str(rootfs), args=["true"]))
    assert manager.list() == []
