"""What the runtime service remembers about containers and sandboxes.

ContainerManager keeps the process side (shim, pid, exit code); these records
keep the docker/CRI side the service adds on top: the config as asked, the
image reference, the implicit sandbox, volumes to clean up, published ports.
One JSON file per object under `<root>/records/`, written by rename, so a
daemon restart reads back exactly what it had.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class ContainerRecord:
    id: str
    name: str
    image: str                # reference as asked ("busybox")
    image_id: str             # "sha256:..."
    sandbox_id: str
    implicit_sandbox: bool    # the sandbox was made for this container and goes with it
    created_at: int
    config: dict              # the ContainerConfig as asked (protobuf JSON form)
    args: list[str]
    env: list[str]
    working_dir: str
    user: str
    uid: int
    gid: int
    hostname: str
    tty: bool
    stdin: bool
    mounts: list[dict]        # resolved: {"type","source","destination","read_only","options","volume"?}
    log_path: str
    rootfs: str
    stop_signal: str = "SIGTERM"
    auto_remove: bool = False
    anonymous_volumes: list[str] = field(default_factory=list)
    named_volumes: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> ContainerRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class SandboxRecord:
    id: str
    name: str
    created_at: int
    config: dict              # PodSandboxConfig as asked (protobuf JSON form)
    hostname: str
    network: str              # "bridge", a user network, "none" or "host"
    netns_path: str
    files_dir: str            # hosts, hostname, resolv.conf written for its containers
    implicit_for: str = ""    # container id when made by a docker-style create
    state: str = "ready"      # "ready" | "notready"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    extra_hosts: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> SandboxRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class RecordStore:
    """Records in memory, written through to `<root>/records/{containers,sandboxes}/<id>.json`."""

    def __init__(self, root: Path) -> None:
        self.containers_dir = Path(root) / "records" / "containers"
        self.sandboxes_dir = Path(root) / "records" / "sandboxes"
        self.containers_dir.mkdir(parents=True, exist_ok=True)
        self.sandboxes_dir.mkdir(parents=True, exist_ok=True)
        self.containers: dict[str, ContainerRecord] = {}
        self.sandboxes: dict[str, SandboxRecord] = {}
        self.load()

    @staticmethod
    def _write(path: Path, data: dict) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, path)

    def load(self) -> None:
        self.containers.clear()
        self.sandboxes.clear()
        for path in self.containers_dir.glob("*.json"):
            try:
                rec = ContainerRecord.from_dict(json.loads(path.read_text()))
            except (ValueError, TypeError):
                continue
            self.containers[rec.id] = rec
        for path in self.sandboxes_dir.glob("*.json"):
            try:
                sb = SandboxRecord.from_dict(json.loads(path.read_text()))
            except (ValueError, TypeError):
                continue
            self.sandboxes[sb.id] = sb

    def put_container(self, rec: ContainerRecord) -> None:
        self._write(self.containers_dir / f"{rec.id}.json", asdict(rec))
        self.containers[rec.id] = rec

    def delete_container(self, container_id: str) -> None:
        (self.containers_dir / f"{container_id}.json").unlink(missing_ok=True)
        self.containers.pop(container_id, None)

    def put_sandbox(self, rec: SandboxRecord) -> None:
        self._write(self.sandboxes_dir / f"{rec.id}.json", asdict(rec))
        self.sandboxes[rec.id] = rec

    def delete_sandbox(self, sandbox_id: str) -> None:
        (self.sandboxes_dir / f"{sandbox_id}.json").unlink(missing_ok=True)
        self.sandboxes.pop(sandbox_id, None)

    def find_container(self, key: str) -> ContainerRecord | None:
        """By full id, by name (with or without a leading '/'), or by a unique id prefix."""
        if key in self.containers:
            return self.containers[key]
        name = key.lstrip("/")
        for rec in self.containers.values():
            if rec.name == name:
                return rec
        if len(key) >= 1:
            matches = [r for r in self.containers.values() if r.id.startswith(key)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise LookupError(f"multiple containers match id prefix {key!r}: give more characters")
        return None

    def find_sandbox(self, key: str) -> SandboxRecord | None:
        if key in self.sandboxes:
            return self.sandboxes[key]
        matches = [s for s in self.sandboxes.values() if s.id.startswith(key) or s.name == key]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise LookupError(f"multiple sandboxes match {key!r}: give more characters")
        return None

    def volume_users(self, volume: str) -> list[str]:
        return [r.id[:12] for r in self.containers.values()
                if volume in r.named_volumes or volume in r.anonymous_volumes]
