"""Build small layer tarballs in memory for image tests."""

from __future__ import annotations

import gzip
import io
import tarfile


class LayerTar:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buffer, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name: str, kind: bytes, mode: int, **extra) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.mtime = 1_000_000
        for key, value in extra.items():
            setattr(info, key, value)
        return info

    def dir(self, name: str, mode: int = 0o755, **extra) -> LayerTar:
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode, **extra))
        return self

    def file(self, name: str, data: bytes = b"", mode: int = 0o644, **extra) -> LayerTar:
        info = self._info(name, tarfile.REGTYPE, mode, **extra)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))
        return self

    def symlink(self, name: str, target: str) -> LayerTar:
        self.tar.addfile(self._info(name, tarfile.SYMTYPE, 0o777, linkname=target))
        return self

    def hardlink(self, name: str, target: str) -> LayerTar:
        self.tar.addfile(self._info(name, tarfile.LNKTYPE, 0o644, linkname=target))
        return self

    def whiteout(self, name: str) -> LayerTar:
        head, _, base = name.rpartition("/")
        return self.file(f"{head}/.wh.{base}" if head else f".wh.{base}")

    def opaque(self, directory: str) -> LayerTar:
        return self.file(f"{directory}/.wh..wh..opq")

    def build(self, *, gz: bool = False) -> bytes:
        self.tar.close()
        data = self.buffer.getvalue()
        return gzip.compress(data, mtime=0) if gz else data
