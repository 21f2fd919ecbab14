"""ImageStore: images as OCI manifests + configs + shared unpacked layers, with tags.

On disk under `<root>`:
- `blobs/sha256/<hex>`   manifests, configs and layer blobs (content.py)
- `layers/<hex>/fs`      each layer unpacked once, by diff id (layers.py)
- `index.json`           references → manifest digest, and the images known;
                         rewritten atomically under `index.lock` (flock), since
                         the runtime daemon and a CLI command may both write
- `leases/<name>.json`   layers a snapshot (a container root) is using, so a
                         forced image removal never pulls a layer out from
                         under a running container

An image's id is its config digest (as in Docker); its digest is the manifest's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from . import references
from .content import ContentStore, DigestMismatch, digest_hex, sha256_digest
from .layers import LayerStore

log = logging.getLogger(__name__)

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MANIFEST_MEDIA_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)
INDEX_MEDIA_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_HEX_PREFIX = re.compile(r"^(?:sha256:)?([0-9a-f]{1,64})$")
_LEASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")


class ImageNotFound(KeyError):
    def __str__(self) -> str:
        return f"No such image: {self.args[0]}"


class ImageConflict(Exception):
    """The operation would break something in use (or is ambiguous); `force` may override."""


class InvalidImage(ValueError):
    """A manifest or config that is not a usable image."""


def _copy(image: Image) -> Image:
    """A cached Image handed out: its lists are the caller's (the config dict is shared, read-only)."""
    return dataclasses.replace(image, repo_tags=list(image.repo_tags), layers=list(image.layers),
                               layer_blobs=list(image.layer_blobs))


@dataclass
class Image:
    id: str  # "sha256:<config digest hex>"
    digest: str  # manifest digest
    repo_tags: list[str]  # full references, e.g. "docker.io/library/busybox:latest"
    config: dict  # the OCI image config (its "config" key holds Entrypoint, Cmd, Env, ...)
    layers: list[str]  # diff ids, bottom first
    size: int  # unpacked bytes
    created: str
    media_type: str = MEDIA_OCI_MANIFEST
    layer_blobs: list[str] = field(default_factory=list)  # blob digests, bottom first

    @property
    def short_id(self) -> str:
        return digest_hex(self.id)[:12]

    @property
    def familiar_tags(self) -> list[str]:
        return [references.familiar(tag) for tag in self.repo_tags]

    @property
    def container_config(self) -> dict:
        """The run defaults: Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts, Volumes, Labels, StopSignal."""
        return self.config.get("config") or {}


def canonical_json(value: Any) -> bytes:
    """Compact, key-ordered JSON: the same document always has the same digest."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def default_container_config() -> dict:
    return {"Cmd": ["/bin/sh"], "Env": [f"PATH={DEFAULT_PATH}"]}


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.content = ContentStore(self.root)
        self.layers = LayerStore(self.root)
        self.leases_dir = self.root / "leases"
        self.leases_dir.mkdir(exist_ok=True)
        self.index_path = self.root / "index.json"
        self.lock_path = self.root / "index.lock"
        self._thread_lock = threading.RLock()
        self._lock_depth = 0
        self._json_cache: dict[str, dict] = {}
        self._get_cache: dict[str, tuple[tuple, Image]] = {}
        self._remove_stale_temp()

    def _remove_stale_temp(self, max_age: float = 3600.0) -> None:
        """Leftovers of interrupted ingests and unpacks; only old ones, as another process
        (the daemon, a CLI command) may be writing right now."""
        cutoff = time.time() - max_age
        self.content.clean_temp(older_than=cutoff)
        self.layers.clean_temp(older_than=cutoff)
        for entry in os.scandir(self.root):
            if entry.name.startswith(".index-") and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)

    # ------------------------------------------------------------------ index

    def _read_index(self) -> dict:
        try:
            index = json.loads(self.index_path.read_bytes())
        except FileNotFoundError:
            index = {}
        index.setdefault("schemaVersion", 1)
        index.setdefault("images", {})
        index.setdefault("refs", {})
        return index

    def _write_index(self, index: dict) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".index-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(json.dumps(index, indent=1, sort_keys=True).encode())
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.index_path)
            dir_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @contextmanager
    def _locked(self) -> Iterator[dict]:
        """Read-modify-write the index under a file lock (other processes) and a thread lock."""
        with self._thread_lock:
            if self._lock_depth:
                # re-entered from within a locked operation: share the outer index
                yield self._current_index
                return
            with open(self.lock_path, "a+b") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                try:
                    index = self._read_index()
                    before = json.dumps(index, sort_keys=True)
                    self._current_index = index
                    self._lock_depth += 1
                    try:
                        yield index
                    finally:
                        self._lock_depth -= 1
                    if json.dumps(index, sort_keys=True) != before:
                        self._write_index(index)
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ reading

    def _json_blob(self, digest: str) -> dict:
        cached = self._json_cache.get(digest)
        if cached is None:
            cached = json.loads(self.content.read(digest))
            self._json_cache[digest] = cached
        return cached

    def _image(self, index: dict, manifest_digest: str) -> Image:
        record = index["images"][manifest_digest]
        config = self._json_blob(record["config"])
        diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
        size = 0
        for diff_id in diff_ids:
            try:
                size += self.layers.info(diff_id).size
            except KeyError:
                log.warning("image %s: layer %s is missing", manifest_digest, diff_id)
        tags = sorted(ref for ref, target in index["refs"].items() if target == manifest_digest)
        return Image(
            id=record["config"],
            digest=manifest_digest,
            repo_tags=tags,
            config=config,
            layers=diff_ids,
            size=size,
            created=config.get("created", ""),
            media_type=record.get("media_type", MEDIA_OCI_MANIFEST),
            layer_blobs=list(record.get("layer_blobs", [])),
        )

    def list(self) -> list[Image]:
        index = self._read_index()
        images = [self._image(index, digest) for digest in index["images"]]
        return sorted(images, key=lambda image: (image.repo_tags[:1], image.id))

    def get(self, ref_or_id: str) -> Image:
        """One stat of index.json when nothing changed since the last lookup of this
        reference (the create path asks for the same image again and again); any
        write to the index, by this process or another, replaces its inode."""
        try:
            st = os.stat(self.index_path)
            version = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            version = None
        cached = self._get_cache.get(ref_or_id)
        if version is not None and cached is not None and cached[0] == version:
            return _copy(cached[1])
        index = self._read_index()
        image = self._image(index, self._resolve(index, ref_or_id))
        if version is not None:
            if len(self._get_cache) > 256:
                self._get_cache.clear()
            self._get_cache[ref_or_id] = (version, image)
        return _copy(image)

    def _resolve(self, index: dict, ref_or_id: str) -> str:
        """→ manifest digest. Tries a reference, then a digest, then an id prefix (like Docker)."""
        try:
            ref = references.parse(ref_or_id)
        except references.InvalidReference:
            ref = None
        if ref is not None:
            if ref.digest is not None:
                if ref.digest in index["images"]:
                    return ref.digest
                raise ImageNotFound(ref_or_id)
            target = index["refs"].get(str(ref))
            if target is not None and target in index["images"]:
                return target
        match = _HEX_PREFIX.match(ref_or_id)
        if match:
            prefix = match.group(1)
            full = len(prefix) == 64
            by_id = {d for d, r in index["images"].items() if digest_hex(r["config"]).startswith(prefix)}
            if not by_id and full:
                by_id = {d for d in index["images"] if digest_hex(d) == prefix}
            if len(by_id) == 1:
                return by_id.pop()
            if len(by_id) > 1:
                configs = {index["images"][d]["config"] for d in by_id}
                if len(configs) == 1:
                    return sorted(by_id)[0]
                raise ImageConflict(f"image id prefix {ref_or_id!r} is ambiguous; use more characters")
        raise ImageNotFound(ref_or_id)

    def layer_paths(self, image: Image) -> list[Path]:
        """The unpacked layer directories, bottom first (overlay wants them top first)."""
        return [self.layers.path(diff_id) for diff_id in image.layers]

    def manifest_bytes(self, image: Image) -> bytes:
        return self.content.read(image.digest)

    def config_bytes(self, image: Image) -> bytes:
        return self.content.read(image.id)

    # ------------------------------------------------------------------ writing

    def put_blob(self, data: bytes | BinaryIO, expected_digest: str | None = None) -> str:
        """Store a blob (a registry pull or a build step fetches blobs, then commits)."""
        return self.content.put(data, expected_digest)

    def commit_image(
        self, manifest: bytes, config: bytes | None = None, ref: str | None = None
    ) -> Image:
        """Record an image whose blobs are (or, for config, are given) here; unpack its layers; tag it."""
        try:
            doc = json.loads(manifest)
        except ValueError as exc:
            raise InvalidImage(f"manifest is not JSON: {exc}") from None
        media_type = doc.get("mediaType") or MEDIA_OCI_MANIFEST
        if media_type in INDEX_MEDIA_TYPES or "manifests" in doc:
            raise InvalidImage("this is an image index (multi-platform): commit one platform's manifest")
        if media_type not in MANIFEST_MEDIA_TYPES or doc.get("schemaVersion") != 2:
            raise InvalidImage(f"unsupported manifest media type {media_type!r}")
        try:
            config_digest = doc["config"]["digest"]
            layer_descs = doc.get("layers") or []
            layer_blobs = [desc["digest"] for desc in layer_descs]
        except (KeyError, TypeError) as exc:
            raise InvalidImage(f"manifest is missing {exc}") from None
        if config is not None:
            self.content.put(config, config_digest)
        if not self.content.has(config_digest):
            raise InvalidImage(f"config blob {config_digest} is not in the store")
        config_doc = self._json_blob(config_digest)
        diff_ids = config_doc.get("rootfs", {}).get("diff_ids")
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layer_blobs):
            raise InvalidImage(
                f"config lists {len(diff_ids or [])} diff ids but the manifest has "
                f"{len(layer_blobs)} layers"
            )
        missing = [blob for blob in layer_blobs if not self.content.has(blob)]
        if missing:
            raise InvalidImage(f"layer blobs not in the store (put_blob them first): {missing}")
        normalized = str(references.parse(ref)) if ref else None
        with self._locked() as index:
            for blob, diff_id in zip(layer_blobs, diff_ids, strict=True):
                with self.content.open(blob) as stream:
                    try:
                        self.layers.unpack(stream, diff_id)
                    except ValueError as exc:
                        raise InvalidImage(f"layer {blob}: {exc}") from exc
            manifest_digest = self.content.put(manifest)
            index["images"].setdefault(
                manifest_digest,
                {
                    "config": config_digest,
                    "layer_blobs": layer_blobs,
                    "media_type": media_type,
                    "added_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
            )
            if normalized and references.parse(normalized).tag is not None:
                index["refs"][normalized] = manifest_digest
            image = self._image(index, manifest_digest)
        log.info("image committed", extra={"image": image.id, "digest": manifest_digest, "ref": normalized})
        return image

    def tag(self, src: str, ref: str) -> None:
        target = references.parse(ref)
        if target.digest is not None:
            raise ValueError(f"cannot tag with a digest reference: {ref!r}")
        with self._locked() as index:
            index["refs"][str(target)] = self._resolve(index, src)

    def import_rootfs(
        self, tar_path: Path | str, ref: str | None, config: dict | None = None, *, created: str | None = None
    ) -> Image:
        """A plain root filesystem tarball (tar, tar.gz, tar.zst) → a one-layer image, like `docker import`.

        config is the container config part ({"Cmd": [...], "Env": [...], ...});
        default: Cmd ["/bin/sh"] and a standard PATH.
        """
        from .layers import uncompressed_digest

        tar_path = Path(tar_path)
        with open(tar_path, "rb") as stream:
            head = stream.read(4)
            stream.seek(0)
            blob_digest = self.content.put(stream)
        if head.startswith(b"\x1f\x8b"):
            media_type = MEDIA_OCI_LAYER + "+gzip"
        elif head.startswith(b"\x28\xb5\x2f\xfd"):
            media_type = MEDIA_OCI_LAYER + "+zstd"
        else:
            media_type = MEDIA_OCI_LAYER
        if media_type == MEDIA_OCI_LAYER:
            diff_id = blob_digest
        else:
            with self.content.open(blob_digest) as blob:
                diff_id = uncompressed_digest(blob)
        created = created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        config_doc = {
            "architecture": _host_architecture(),
            "os": "linux",
            "created": created,
            "config": dict(config) if config is not None else default_container_config(),
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "ketch import"}],
        }
        config_bytes = canonical_json(config_doc)
        manifest_doc = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": sha256_digest(config_bytes),
                       "size": len(config_bytes)},
            "layers": [{"mediaType": media_type, "digest": blob_digest,
                        "size": self.content.size(blob_digest)}],
        }
        try:
            return self.commit_image(canonical_json(manifest_doc), config_bytes, ref)
        except BaseException:
            with self._locked() as index:  # do not keep the blobs of a refused tarball
                self._delete_unreferenced_blobs(index, [blob_digest, sha256_digest(config_bytes)])
            raise

    def import_archive(self, path: Path | str) -> list[Image]:
        """A `docker save` archive or an OCI image layout archive (tar or directory)."""
        from .archive import import_archive

        return import_archive(self, Path(path))

    def export(self, refs: list[str], path: Path | str, *, fmt: str = "docker") -> None:
        """Write images as a `docker save` archive (fmt="docker") or an OCI layout tar (fmt="oci")."""
        from .archive import export_archive

        export_archive(self, refs, Path(path), fmt=fmt)

    # ------------------------------------------------------------------ removal

    def remove(
        self, ref_or_id: str, *, force: bool = False, in_use: set[str] | frozenset[str] = frozenset()
    ) -> list[str]:
        """Untag, and delete the image when no tag remains. Returns Docker-style lines
        ("Untagged: busybox:latest", "Deleted: sha256:…")."""
        lines: list[str] = []
        with self._locked() as index:
            manifest_digest = self._resolve(index, ref_or_id)
            record = index["images"][manifest_digest]
            image_id = record["config"]
            tags = sorted(r for r, d in index["refs"].items() if d == manifest_digest)
            by_tag = self._is_tag(index, ref_or_id, manifest_digest)
            if by_tag is not None:
                untag = [by_tag]
            else:
                if len(tags) > 1 and not force:
                    raise ImageConflict(
                        f"conflict: unable to delete {digest_hex(image_id)[:12]} (must be forced) - "
                        f"image is referenced in multiple repositories"
                    )
                untag = tags
            deleting = len(set(tags) - set(untag)) == 0
            if deleting and image_id in in_use and not force:
                raise ImageConflict(
                    f"conflict: unable to remove {ref_or_id} (must force) - image "
                    f"{digest_hex(image_id)[:12]} is being used by a container"
                )
            for tag in untag:
                del index["refs"][tag]
                lines.append(f"Untagged: {references.familiar(tag)}")
            if deleting:
                del index["images"][manifest_digest]
                lines.append(f"Deleted: {image_id}")
        if deleting:
            # the index no longer names the image (and is on disk) before its data goes
            candidates = [manifest_digest, record["config"], *record.get("layer_blobs", [])]
            with self._locked() as index:
                self._delete_unreferenced_blobs(index, candidates)
                self._gc_layers(index)
        return lines

    @staticmethod
    def _is_tag(index: dict, text: str, manifest_digest: str) -> str | None:
        try:
            ref = references.parse(text)
        except references.InvalidReference:
            return None
        if ref.digest is None and index["refs"].get(str(ref)) == manifest_digest:
            return str(ref)
        return None

    def _delete_unreferenced_blobs(self, index: dict, candidates: list[str]) -> None:
        still_used: set[str] = set()
        for digest, other in index["images"].items():
            still_used.add(digest)
            still_used.add(other["config"])
            still_used.update(other.get("layer_blobs", []))
        for blob in candidates:
            if blob not in still_used:
                self.content.delete(blob)
                self._json_cache.pop(blob, None)

    def _gc_layers(self, index: dict) -> list[str]:
        keep = set(self._leased_layers())
        for record in index["images"].values():
            keep.update(self._json_blob(record["config"]).get("rootfs", {}).get("diff_ids", []))
        removed = [diff_id for diff_id in self.layers.list() if diff_id not in keep]
        for diff_id in removed:
            self.layers.remove(diff_id)
            log.info("layer removed", extra={"diff_id": diff_id})
        return removed

    def gc(self) -> list[str]:
        """Remove unpacked layers no image and no lease references; returns their diff ids."""
        with self._locked() as index:
            return self._gc_layers(index)

    # ------------------------------------------------------------------ leases

    def add_lease(self, name: str, diff_ids: list[str], holder: Path | str | None = None) -> None:
        """Protect layers from GC while something (a container's snapshot) uses them.

        holder: a path that exists as long as the lease is meant to; a lease whose holder
        has vanished (say, a snapshot directory removed by hand) no longer protects anything.
        """
        if not _LEASE_NAME.match(name):
            raise ValueError(f"invalid lease name {name!r}")
        path = self.leases_dir / f"{name}.json"
        tmp = self.leases_dir / f".{name}.tmp"
        tmp.write_text(json.dumps({"layers": diff_ids, "holder": str(holder) if holder else None}))
        os.replace(tmp, path)

    def remove_lease(self, name: str) -> None:
        try:
            (self.leases_dir / f"{name}.json").unlink()
        except FileNotFoundError:
            pass

    def _leased_layers(self) -> Iterator[str]:
        for entry in os.scandir(self.leases_dir):
            if not entry.name.endswith(".json"):
                continue
            try:
                lease = json.loads(Path(entry.path).read_text())
            except (ValueError, FileNotFoundError):
                continue
            holder = lease.get("holder")
            if holder and not os.path.exists(holder):
                log.info("lease %s is stale (%s is gone): removed", entry.name, holder)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                continue
            yield from lease.get("layers", [])

    # ------------------------------------------------------------------ usage

    def disk_usage(self) -> dict:
        """Bytes used by images and layers; shared = in layers used by more than one image."""
        images = self.list()
        users: dict[str, int] = {}
        for image in images:
            for diff_id in set(image.layers):
                users[diff_id] = users.get(diff_id, 0) + 1
        sizes = {}
        for diff_id in self.layers.list():
            sizes[diff_id] = self.layers.info(diff_id).size
        rows = []
        for image in images:
            shared = sum(sizes.get(d, 0) for d in set(image.layers) if users[d] > 1)
            unique = sum(sizes.get(d, 0) for d in set(image.layers) if users[d] == 1)
            rows.append({"id": image.id, "repo_tags": image.familiar_tags, "size": image.size,
                         "shared_size": shared, "unique_size": unique, "created": image.created})
        shared_total = sum(size for d, size in sizes.items() if users.get(d, 0) > 1)
        blob_bytes = sum(self.content.size(d) for d in self.content.digests())
        return {
            "images": rows,
            "layers": {"count": len(sizes), "bytes": sum(sizes.values())},
            "shared_bytes": shared_total,
            "unique_bytes": sum(sizes.values()) - shared_total,
            "blobs": {"bytes": blob_bytes},
            "total_bytes": sum(sizes.values()) + blob_bytes,
        }


def _host_architecture() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


__all__ = [
    "DigestMismatch",
    "Image",
    "ImageConflict",
    "ImageNotFound",
    "ImageStore",
    "InvalidImage",
]
