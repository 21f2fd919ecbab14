"""Image archives: `docker save` archives and OCI image layout archives, in and out.

In: a tar (plain or compressed) or an unpacked directory, in either format;
every blob is verified against its digest as it enters the content store.
Out: `docker save`-compatible (manifest.json, repositories, `<id>/layer.tar`,
`<config>.json`: what `docker load` reads), or an OCI image layout with
`org.opencontainers.image.ref.name` (the tag) and `io.containerd.image.name`
(the full name) annotations, as Docker 25+ and containerd write them.
Output tars are deterministic: fixed owners and mtimes, sorted entries.
"""

from __future__ import annotations

import io
import json
import logging
import os
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from . import references
from .content import digest_hex, sha256_digest
from .layers import open_uncompressed
from .store import (
    INDEX_MEDIA_TYPES,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER,
    MEDIA_OCI_MANIFEST,
    Image,
    ImageNotFound,
    ImageStore,
    InvalidImage,
    _host_architecture,
    canonical_json,
)

log = logging.getLogger(__name__)

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


class InvalidArchive(ValueError):
    """The file is neither a `docker save` archive nor an OCI image layout."""


# ---------------------------------------------------------------------------
# reading: a tar or a directory, by member name


class _Source:
    def exists(self, name: str) -> bool:
        raise NotImplementedError

    @contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        raise NotImplementedError
        yield  # pragma: no cover

    def read(self, name: str) -> bytes:
        with self.open(name) as stream:
            return stream.read()

    def read_json(self, name: str) -> object:
        try:
            return json.loads(self.read(name))
        except ValueError as exc:
            raise InvalidArchive(f"{name} in the archive is not valid JSON: {exc}") from None


class _TarSource(_Source):
    def __init__(self, path: Path) -> None:
        try:
            self.tar = tarfile.open(path, mode="r:*")
        except tarfile.TarError as exc:
            raise InvalidArchive(f"{path} is not a tar archive: {exc}") from None
        self.members = {posixpath.normpath(m.name.lstrip("/")): m for m in self.tar.getmembers()}

    def _member(self, name: str) -> tarfile.TarInfo:
        name = posixpath.normpath(name)
        for _ in range(16):  # follow symlinks inside the archive (Docker 25 links layer.tar → blobs/)
            member = self.members.get(name)
            if member is None:
                raise InvalidArchive(f"the archive has no {name!r}")
            if member.issym():
                name = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            elif member.islnk():
                name = posixpath.normpath(member.linkname)
            else:
                return member
        raise InvalidArchive(f"too many links resolving {name!r}")

    def exists(self, name: str) -> bool:
        try:
            self._member(name)
            return True
        except InvalidArchive:
            return False

    @contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        stream = self.tar.extractfile(self._member(name))
        if stream is None:
            raise InvalidArchive(f"{name!r} in the archive is not a file")
        with stream:
            yield stream  # type: ignore[misc]

    def close(self) -> None:
        self.tar.close()


class _DirSource(_Source):
    def __init__(self, path: Path) -> None:
        self.root = path.resolve()

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidArchive(f"{name!r} points outside the archive directory")
        return path

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    @contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        try:
            with open(self._path(name), "rb") as stream:
                yield stream
        except FileNotFoundError:
            raise InvalidArchive(f"the archive has no {name!r}") from None

    def close(self) -> None:
        pass


def import_archive(store: ImageStore, path: Path) -> list[Image]:
    source: _TarSource | _DirSource = _DirSource(path) if path.is_dir() else _TarSource(path)
    try:
        if source.exists("index.json") and source.exists("oci-layout"):
            images = _import_oci(store, source)
        elif source.exists("manifest.json"):
            images = _import_docker(store, source)
        else:
            raise InvalidArchive(
                f"{path} is neither a docker save archive (manifest.json) nor an OCI image layout "
                f"(oci-layout + index.json); for a plain root filesystem use import_rootfs"
            )
    finally:
        source.close()
    log.info("archive imported", extra={"path": str(path), "images": [i.id for i in images]})
    return images


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{digest_hex(digest)}"


def _import_oci(store: ImageStore, source: _Source) -> list[Image]:
    layout = source.read_json("oci-layout")
    if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
        raise InvalidArchive("oci-layout has no imageLayoutVersion")
    index = source.read_json("index.json")
    images: dict[str, Image] = {}
    try:
        descriptors = list(_manifest_descriptors(source, index))
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidArchive(f"index.json: malformed descriptor ({exc!r})") from None
    for desc in descriptors:
        try:
            manifest_bytes = _read_verified(source, desc["digest"])
            manifest = json.loads(manifest_bytes)
            config_bytes = _read_verified(source, manifest["config"]["digest"])
            for layer in manifest.get("layers") or []:
                with source.open(_blob_name(layer["digest"])) as stream:
                    store.put_blob(stream, layer["digest"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidArchive(f"manifest {desc.get('digest')}: malformed ({exc!r})") from None
        ref = _oci_ref_name(desc.get("annotations") or {})
        image = store.commit_image(manifest_bytes, config_bytes, ref)
        images[image.digest] = store.get(image.digest)
    return list(images.values())


def _manifest_descriptors(source: _Source, index: object, depth: int = 0) -> Iterator[dict]:
    """Image manifests of an index; from a nested (multi-platform) index, the host's platform."""
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise InvalidArchive("index.json has no manifests list")
    if depth > 4:
        raise InvalidArchive("image indexes nested too deeply")
    for desc in index["manifests"]:
        if desc.get("mediaType") in INDEX_MEDIA_TYPES:
            nested = json.loads(_read_verified(source, desc["digest"]))
            chosen = _pick_platform(nested.get("manifests") or [])
            if chosen is None:
                raise InvalidArchive(f"no manifest for linux/{_host_architecture()} in the image index")
            chosen = dict(chosen, annotations={**(chosen.get("annotations") or {}),
                                               **(desc.get("annotations") or {})})
            if chosen.get("mediaType") in INDEX_MEDIA_TYPES:
                yield from _manifest_descriptors(source, {"manifests": [chosen]}, depth + 1)
            else:
                yield chosen
        else:
            yield desc


def _pick_platform(manifests: list[dict]) -> dict | None:
    arch = _host_architecture()
    for desc in manifests:
        platform = desc.get("platform") or {}
        if platform.get("os", "linux") == "linux" and platform.get("architecture", arch) == arch:
            return desc
    return None


def _oci_ref_name(annotations: dict) -> str | None:
    for name in (annotations.get(ANNOTATION_CONTAINERD_NAME), annotations.get(ANNOTATION_REF_NAME)):
        if name and ("/" in name or ":" in name):
            try:
                return str(references.parse(name))
            except references.InvalidReference:
                continue
    return None


def _read_verified(source: _Source, digest: str) -> bytes:
    data = source.read(_blob_name(digest))
    if sha256_digest(data) != digest:
        raise InvalidArchive(f"blob {digest} in the archive does not match its digest")
    return data


def _import_docker(store: ImageStore, source: _Source) -> list[Image]:
    entries = source.read_json("manifest.json")
    if not isinstance(entries, list):
        raise InvalidArchive("manifest.json is not a list of images")
    images: dict[str, Image] = {}
    for entry in entries:
        try:
            config_name, layer_names = entry["Config"], list(entry["Layers"])
        except (KeyError, TypeError):
            raise InvalidArchive("manifest.json entry lacks Config or Layers") from None
        tags = [str(references.parse(tag)) for tag in entry.get("RepoTags") or []]
        config_bytes = source.read(config_name)
        image_id = sha256_digest(config_bytes)
        try:
            image = store.get(image_id)
        except ImageNotFound:
            image = _commit_docker_entry(store, source, config_bytes, layer_names, tags[:1])
        for tag in tags:
            store.tag(image.digest, tag)
        images[image.digest] = store.get(image.digest)
    return list(images.values())


def _commit_docker_entry(
    store: ImageStore, source: _Source, config_bytes: bytes, layer_names: list[str], tags: list[str]
) -> Image:
    layers = []
    for name in layer_names:
        with source.open(name) as stream:
            digest = store.put_blob(stream)
        with store.content.open(digest) as blob:
            head = blob.read(4)
        if head.startswith(b"\x1f\x8b"):
            media_type = MEDIA_OCI_LAYER + "+gzip"
        elif head.startswith(b"\x28\xb5\x2f\xfd"):
            media_type = MEDIA_OCI_LAYER + "+zstd"
        else:
            media_type = MEDIA_OCI_LAYER
        layers.append({"mediaType": media_type, "digest": digest, "size": store.content.size(digest)})
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": sha256_digest(config_bytes),
                   "size": len(config_bytes)},
        "layers": layers,
    }
    try:
        return store.commit_image(canonical_json(manifest), config_bytes, tags[0] if tags else None)
    except InvalidImage as exc:
        raise InvalidArchive(f"docker archive image is invalid: {exc}") from None


# ---------------------------------------------------------------------------
# writing


class _TarWriter:
    """Deterministic tar entries: root-owned, mtime 0."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.dirs: set[str] = set()

    def _info(self, name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.type, info.mode, info.mtime = size, kind, mode, 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def _parents(self, name: str) -> None:
        parent = posixpath.dirname(name)
        if parent and parent not in self.dirs:
            self._parents(parent)
            self.dirs.add(parent)
            self.tar.addfile(self._info(parent, kind=tarfile.DIRTYPE, mode=0o755))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._parents(name)
        self.tar.addfile(self._info(name, len(data)), io.BytesIO(data))

    def add_file(self, name: str, path: Path) -> None:
        self._parents(name)
        with open(path, "rb") as stream:
            self.tar.addfile(self._info(name, os.fstat(stream.fileno()).st_size), stream)

    def add_link(self, name: str, target: str) -> None:
        self._parents(name)
        info = self._info(name, kind=tarfile.SYMTYPE, mode=0o777)
        info.linkname = target
        self.tar.addfile(info)


def _resolve_for_export(store: ImageStore, refs: list[str]) -> list[tuple[Image, list[str]]]:
    """Images to write, each with the full references requested for it (none if asked by id)."""
    chosen: dict[str, tuple[Image, list[str]]] = {}
    for text in refs:
        image = store.get(text)
        image_tags = chosen.setdefault(image.digest, (image, []))[1]
        try:
            ref = references.parse(text)
        except references.InvalidReference:
            continue
        if ref.digest is None and str(ref) in image.repo_tags and str(ref) not in image_tags:
            image_tags.append(str(ref))
    return list(chosen.values())


def export_archive(store: ImageStore, refs: list[str], path: Path, *, fmt: str = "docker") -> None:
    if fmt not in ("docker", "oci"):
        raise ValueError(f"unknown archive format {fmt!r} (docker or oci)")
    if not refs:
        raise ValueError("name at least one image to export")
    selected = _resolve_for_export(store, refs)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            writer = _TarWriter(tar)
            if fmt == "docker":
                _write_docker(store, writer, selected)
            else:
                _write_oci(store, writer, selected)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    log.info("images exported", extra={"path": str(path), "format": fmt, "images": len(selected)})


def _write_oci(store: ImageStore, writer: _TarWriter, selected: list[tuple[Image, list[str]]]) -> None:
    writer.add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    descriptors = []
    written: set[str] = set()
    for image, tags in selected:
        for digest in [*image.layer_blobs, image.id, image.digest]:
            if digest not in written:
                written.add(digest)
                writer.add_file(_blob_name(digest), store.content.path(digest))
        base = {"mediaType": image.media_type, "digest": image.digest,
                "size": store.content.size(image.digest)}
        if not tags:
            descriptors.append(base)
        for tag in tags:
            ref = references.parse(tag)
            descriptors.append(dict(base, annotations={
                ANNOTATION_CONTAINERD_NAME: str(ref),
                ANNOTATION_REF_NAME: ref.tag,
            }))
    index = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": descriptors}
    writer.add_bytes("index.json", canonical_json(index))


def _write_docker(store: ImageStore, writer: _TarWriter, selected: list[tuple[Image, list[str]]]) -> None:
    entries = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    for image, tags in selected:
        config_name = f"{digest_hex(image.id)}.json"
        if config_name not in written:
            written.add(config_name)
            writer.add_bytes(config_name, store.content.read(image.id))
        layer_names = []
        parent = ""
        for blob, diff_id in zip(image.layer_blobs, image.layers, strict=True):
            layer_id = digest_hex(diff_id)
            name = f"{layer_id}/layer.tar"
            layer_names.append(name)
            if name not in written:
                written.add(name)
                writer.add_bytes(f"{layer_id}/VERSION", b"1.0")
                writer.add_bytes(f"{layer_id}/json", canonical_json(
                    {"id": layer_id, **({"parent": parent} if parent else {})}))
                _add_uncompressed_layer(store, writer, name, blob)
            parent = layer_id
        familiar = [references.parse(t).familiar for t in tags]
        entries.append({"Config": config_name, "RepoTags": familiar or None, "Layers": layer_names})
        for tag in tags:
            ref = references.parse(tag)
            repositories.setdefault(ref.familiar_name, {})[ref.tag or "latest"] = parent
    writer.add_bytes("manifest.json", json.dumps(entries, separators=(",", ":")).encode())
    if repositories:
        writer.add_bytes("repositories", json.dumps(repositories, separators=(",", ":"), sort_keys=True).encode())


def _add_uncompressed_layer(store: ImageStore, writer: _TarWriter, name: str, blob: str) -> None:
    """docker save carries uncompressed layer tars (their digest is the diff id)."""
    with store.content.open(blob) as stream:
        head = stream.read(4)
    if not (head.startswith(b"\x1f\x8b") or head.startswith(b"\x28\xb5\x2f\xfd")):
        writer.add_file(name, store.content.path(blob))
        return
    with tempfile.TemporaryFile(dir=store.root) as tmp:
        with store.content.open(blob) as stream, open_uncompressed(stream) as raw:
            shutil.copyfileobj(raw, tmp, 1 << 20)
        size = tmp.tell()
        tmp.seek(0)
        writer._parents(name)
        writer.tar.addfile(writer._info(name, size), tmp)
