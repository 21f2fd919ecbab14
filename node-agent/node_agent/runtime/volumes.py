"""Named (and anonymous) volumes: directories the runtime creates and keeps.

`<root>/volumes/<name>/_data` is what containers mount; `meta.json` beside it
records labels, creation time and whether the volume is anonymous (made for an
image VOLUME and removed with the container under `--rm`). Which containers
use a volume is known to the caller (the service reads its container
records), so removal takes the user list instead of keeping a second copy.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")


class VolumeError(Exception):
    pass


class VolumeNotFound(VolumeError):
    pass


class VolumeInUse(VolumeError):
    pass


@dataclass
class Volume:
    name: str
    mountpoint: str
    created_at: int
    labels: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False
    driver: str = "local"


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "volumes"
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, name: str) -> Path:
        if not _NAME.match(name):
            raise VolumeError(f"invalid volume name {name!r}: letters, digits, '_', '.', '-' "
                              "(and not starting with one of the last three)")
        return self.root / name

    def exists(self, name: str) -> bool:
        return (self._dir(name) / "meta.json").exists()

    def create(self, name: str = "", *, labels: dict[str, str] | None = None,
               anonymous: bool = False) -> Volume:
        """Create a volume; an existing named volume is returned as is (Docker does the same)."""
        if not name:
            name = secrets.token_hex(32)
            anonymous = True
        directory = self._dir(name)
        if self.exists(name):
            return self.get(name)
        (directory / "_data").mkdir(parents=True, exist_ok=True)
        volume = Volume(name=name, mountpoint=str(directory / "_data"), created_at=time.time_ns(),
                        labels=dict(labels or {}), anonymous=anonymous)
        tmp = directory / "meta.json.tmp"
        tmp.write_text(json.dumps(asdict(volume)))
        os.replace(tmp, directory / "meta.json")
        return volume

    def get(self, name: str) -> Volume:
        try:
            return Volume(**json.loads((self._dir(name) / "meta.json").read_text()))
        except FileNotFoundError:
            raise VolumeNotFound(f"no such volume: {name}") from None

    def list(self) -> list[Volume]:
        out = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            try:
                out.append(Volume(**json.loads(Path(entry.path, "meta.json").read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return out

    def remove(self, name: str, *, used_by: list[str] | tuple[str, ...] = (), force: bool = False) -> None:
        """Delete the volume and its data; refused while a container uses it."""
        self.get(name)
        if used_by and not force:
            raise VolumeInUse(f"remove {name}: volume is in use - [{', '.join(used_by)}]")
        shutil.rmtree(self._dir(name))

    def copy_up(self, name: str, source: Path) -> bool:
        """Seed an empty volume with what the image has at the mount point (Docker's copy-up)."""
        data = Path(self.get(name).mountpoint)
        if not source.is_dir() or source.is_symlink() or any(data.iterdir()):
            return False
        shutil.copytree(source, data, symlinks=True, dirs_exist_ok=True)
        st = source.stat()
        os.chown(data, st.st_uid, st.st_gid)
        os.chmod(data, st.st_mode & 0o7777)
        return True
