"""Background refills (warm shim, warm sandboxes) wait until no create or start is in flight."""

from __future__ import annotations

import asyncio
from pathlib import Path

from node_agent.runtime.service import Runtime
from node_agent.runtime.state import RecordStore
from node_agent.runtime.volumes import VolumeStore


class Containers:
    def __init__(self) -> None:
        self.refills = 0

    async def prepare_next(self) -> None:
        self.refills += 1


def runtime(tmp_path: Path) -> tuple[Runtime, Containers]:
    containers = Containers()
    rt = Runtime(root=tmp_path, run_root=tmp_path / "run", images=None, snapshots=None, containers=containers,
                 sandboxes=None, volumes=VolumeStore(tmp_path), networks=None, records=RecordStore(tmp_path))
    return rt, containers


def test_refill_only_when_the_last_create_or_start_is_done(tmp_path: Path) -> None:
    async def scenario() -> None:
        rt, containers = runtime(tmp_path)
        async with rt._hot_path():
            async with rt._hot_path():
                pass
            await asyncio.sleep(0)
            assert containers.refills == 0 and not rt._quiet.is_set()
        await asyncio.sleep(0)
        assert containers.refills == 1 and rt._quiet.is_set()

    asyncio.run(scenario())


def test_a_create_holds_the_daemon_busy_until_its_start_or_the_patience_runs_out(tmp_path: Path) -> None:
    async def scenario() -> None:
        rt, containers = runtime(tmp_path)
        async with rt._hot_path():           # the create
            pass
        rt._hold_for_start("c1", patience=5)
        await asyncio.sleep(0)
        base = containers.refills
        assert not rt._quiet.is_set()
        async with rt._hot_path():           # its start
            rt._release_hold("c1")
            assert not rt._quiet.is_set()
        await asyncio.sleep(0)
        assert rt._quiet.is_set() and containers.refills == base + 1
        rt._release_hold("c1")               # twice is harmless
        assert rt._busy == 0
        rt._hold_for_start("c2", patience=0.05)   # never started
        assert not rt._quiet.is_set()
        await asyncio.wait_for(rt._quiet.wait(), 2)
        assert rt._busy == 0 and "c2" not in rt._awaiting_start

    asyncio.run(scenario())


class Snapshots:
    def __init__(self, keys: list[str]) -> None:
        self.keys = list(keys)

    def list(self) -> list[str]:
        return list(self.keys)

    def remove(self, key: str) -> None:
        self.keys.remove(key)


class Sandboxes:
    def __init__(self) -> None:
        self.removed: list[str] = []

    async def remove(self, sandbox_id: str) -> None:
        self.removed.append(sandbox_id)


def test_recovery_finishes_removals_a_stopped_daemon_left_half_done(tmp_path: Path) -> None:
    from node_agent.runtime.state import SandboxRecord

    def sandbox(sid: str, implicit_for: str) -> SandboxRecord:
        return SandboxRecord(id=sid, name=sid, created_at=0, config={}, hostname=sid, network="none",
                             netns_path="", files_dir=str(tmp_path / "files" / sid), implicit_for=implicit_for)

    async def scenario() -> None:
        records = RecordStore(tmp_path)
        records.put_sandbox(sandbox("gone", "gone"))        # its container's record was removed
        records.put_sandbox(sandbox("pod", ""))             # a CRI pod sandbox: not ours to judge
        snapshots, sandboxes = Snapshots(["gone", "live"]), Sandboxes()
        rt = Runtime(root=tmp_path, run_root=tmp_path / "run", images=None, snapshots=snapshots,
                     containers=Containers(), sandboxes=sandboxes, volumes=VolumeStore(tmp_path),
                     networks=None, records=records)
        await rt._finish_interrupted_removals({"live"})    # "live": a container still known to its shim
        assert snapshots.keys == ["live"]
        assert sandboxes.removed == ["gone"] and set(records.sandboxes) == {"pod"}

    asyncio.run(scenario())
