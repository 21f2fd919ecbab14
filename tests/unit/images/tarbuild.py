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


def commit_layers(store, layers: list[bytes], ref: str | None, config: dict | None = None,
                  created: str = "2024-01-01T00:00:00Z"):
    """Put layer blobs (tar or tar+gzip bytes) into an ImageStore and commit an OCI image of them."""
    import hashlib
    import json

    diff_ids, descriptors = [], []
    for data in layers:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        digest = store.put_blob(data)
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if raw is not data else "")
        descriptors.append({"mediaType": media, "digest": digest, "size": len(data)})
    config_doc = {
        "architecture": "amd64", "os": "linux", "created": created,
        "config": config if config is not None else {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config_bytes = json.dumps(config_doc).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(config_bytes).hexdigest(),
                   "size": len(config_bytes)},
        "layers": descriptors,
    }
    return store.commit_image(json.dumps(manifest).encode(), config_bytes, ref)
