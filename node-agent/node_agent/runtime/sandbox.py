"""Pod sandboxes: the network, UTS and IPC namespaces a pod's containers share,
kept alive by bind mounts under `<run_root>/sandboxes/<id>/ns/` — no
placeholder process. A sandbox may instead join an existing named network
namespace (the cluster networking makes it, e.g. `/run/netns/<name>`).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .linux import syscalls as sc
from .shim.spawner import SpawnerClient
from .shim.state import read_json, write_json_atomic

NETNS_DIR = "/run/netns"
VALID_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")


class SandboxError(Exception):
    pass


@dataclass
class Sandbox:
    id: str
    hostname: str
    namespaces: dict[str, str]          # net, uts, ipc -> path to the namespace file
    netns: str | None = None            # the named netns joined, if any
    created_at: int = 0
    labels: dict = field(default_factory=dict)
    published_as: str | None = None     # also /run/netns/<name>, for `ip netns exec`

    @property
    def netns_path(self) -> str:
        return self.namespaces["net"]


def netns_path(netns: str) -> str:
    """A name ("ketchabc") means /run/netns/<name>, like `ip netns`; a path stays as it is."""
    return netns if "/" in netns else os.path.join(NETNS_DIR, netns)


class SandboxManager:
    def __init__(self, run_root: Path | str, spawner: SpawnerClient | None = None):
        self.root = Path(run_root) / "sandboxes"
        self.root.mkdir(parents=True, exist_ok=True)
        self.spawner = spawner or SpawnerClient(str(Path(run_root) / "sandbox-spawner.sock"), warm=False)
        self._own_spawner = spawner is None

    def _dir(self, sandbox_id: str) -> Path:
        return self.root / sandbox_id

    async def create(self, id: str, hostname: str = "", *, netns: str | None = None,
                     labels: dict | None = None, publish_as: str | None = None) -> Sandbox:
        """New uts/ipc namespaces and a new network namespace, or `netns` joined (a name
        under /run/netns or a path). `publish_as` also binds the new network namespace
        at /run/netns/<name>, so `ip netns exec <name> …` works."""
        if publish_as and (netns or "/" in publish_as or not publish_as.startswith("ketch")):
            raise SandboxError("publish_as needs a new network namespace and a 'ketch…' name without '/'")
        if not VALID_ID.fullmatch(id or ""):
            raise SandboxError(f"invalid sandbox id {id!r}: use 1-128 letters, digits, '_', '-' or '.'")
        directory = self._dir(id)
        ns_dir = directory / "ns"
        try:
            directory.mkdir()
        except FileExistsError:
            raise SandboxError(f"sandbox {id} already exists") from None
        ns_dir.mkdir()
        targets = {"uts": str(ns_dir / "uts"), "ipc": str(ns_dir / "ipc"), "net": str(ns_dir / "net")}
        namespaces = dict(targets)
        if netns:
            joined = netns_path(netns)
            if not os.path.exists(joined):
                shutil.rmtree(directory, ignore_errors=True)
                raise SandboxError(f"network namespace {joined} does not exist")
            targets["net"] = None          # do not create one
            namespaces["net"] = joined
        try:
            reply = await self.spawner.request({"op": "sandbox", "ns": targets, "hostname": hostname or id[:12]})
        except BaseException:
            await asyncio.to_thread(self._cleanup, directory)
            raise
        if reply.get("error"):
            await asyncio.to_thread(self._cleanup, directory)
            raise SandboxError(f"sandbox {id}: {reply['error']}")
        sandbox = Sandbox(id=id, hostname=hostname or id[:12], namespaces=namespaces, netns=netns,
                          created_at=time.time_ns(), labels=dict(labels or {}), published_as=publish_as)
        if publish_as:
            try:
                await asyncio.to_thread(_publish, namespaces["net"], publish_as)
            except OSError as e:
                await asyncio.to_thread(self._cleanup, directory)
                raise SandboxError(f"sandbox {id}: cannot publish its netns as {publish_as}: {e}") from None
        write_json_atomic(str(directory / "sandbox.json"), asdict(sandbox))
        return sandbox

    @staticmethod
    def _cleanup(directory: Path) -> None:
        info = read_json(str(directory / "sandbox.json")) or {}
        if info.get("published_as"):
            _unpublish(info["published_as"])
        ns_dir = directory / "ns"
        if ns_dir.is_dir():
            for name in os.listdir(ns_dir):
                try:
                    sc.umount2(str(ns_dir / name), sc.MNT_DETACH)
                except OSError:
                    pass
        shutil.rmtree(directory, ignore_errors=True)

    def get(self, sandbox_id: str) -> Sandbox:
        info = read_json(str(self._dir(sandbox_id) / "sandbox.json"))
        if not info:
            raise SandboxError(f"no such sandbox: {sandbox_id}")
        return Sandbox(**info)

    async def remove(self, sandbox_id: str) -> None:
        """Unmount the namespaces and delete the directory (a joined netns is left to its owner)."""
        directory = self._dir(sandbox_id)
        if not directory.exists():
            return
        await asyncio.to_thread(self._cleanup, directory)

    def list(self) -> list[Sandbox]:
        result = []
        for entry in sorted(self.root.iterdir()):
            info = read_json(str(entry / "sandbox.json"))
            if info:
                result.append(Sandbox(**info))
        return result

    async def close(self) -> None:
        if self._own_spawner:
            await self.spawner.close()


def _publish(source: str, name: str) -> None:
    """Bind the namespace file where `ip netns` looks for it."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    target = os.path.join(NETNS_DIR, name)
    fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        sc.mount(source, target, None, sc.MS_BIND)
    except OSError:
        os.unlink(target)
        raise


def _unpublish(name: str) -> None:
    target = os.path.join(NETNS_DIR, name)
    try:
        sc.umount2(target, sc.MNT_DETACH)
    except OSError:
        pass
    try:
        os.unlink(target)
    except FileNotFoundError:
        pass
