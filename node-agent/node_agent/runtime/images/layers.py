"""Layers: each layer tar is unpacked once into `<root>/layers/<diffid-hex>/fs`.

Every image and every container that uses a layer shares that one directory
(it becomes an overlay lowerdir), so the unpacker must be strict: it refuses
entries that would land outside the layer (`..`, absolute names, paths
through a symlink, hard links to outside), and it converts OCI whiteouts to
the form overlayfs reads — `.wh.<name>` becomes a 0/0 character device and
`.wh..wh..opq` becomes the `overlay.opaque=y` xattr on its directory.

The diff id (sha256 of the uncompressed tar) is computed while extracting, so
a layer is read exactly once.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .content import digest_hex

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
META_PREFIX = ".wh..wh."
COPY_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class UnsafeLayer(ValueError):
    """A layer entry would escape the layer directory; the whole layer is refused."""


class CorruptLayer(ValueError):
    """The layer blob is truncated or not a tar (gzip, zstd) at all."""


class LayerNotFound(KeyError):
    def __str__(self) -> str:
        return f"layer {self.args[0]} is not unpacked"


@dataclass(frozen=True)
class LayerInfo:
    diff_id: str
    size: int  # bytes of regular file content


# ---------------------------------------------------------------------------
# decompression and hashing


class _HashingReader:
    """Wraps the uncompressed tar stream; the digest of all bytes read is the diff id."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hasher = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hasher.update(data)
        return data

    def drain(self) -> None:
        while self.read(COPY_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hasher.hexdigest()


@contextmanager
def open_uncompressed(stream: BinaryIO) -> Iterator[BinaryIO]:
    """Yield the uncompressed tar bytes of a layer blob: tar, tar+gzip or tar+zstd (by magic)."""
    head = stream.peek(4)[:4] if hasattr(stream, "peek") else b""
    if not head:
        buffered = _Prepend(stream)
        head = buffered.peek4()
        stream = buffered  # type: ignore[assignment]
    if head.startswith(_GZIP_MAGIC):
        with gzip.GzipFile(fileobj=stream, mode="rb") as gz:
            yield gz  # type: ignore[misc]
    elif head.startswith(_ZSTD_MAGIC):
        with _zstd_reader(stream) as zr:
            yield zr
    else:
        yield stream


class _Prepend:
    """A minimal peekable wrapper for streams without peek()."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.head = b""

    def peek4(self) -> bytes:
        while len(self.head) < 4:
            chunk = self.raw.read(4 - len(self.head))
            if not chunk:
                break
            self.head += chunk
        return self.head

    def read(self, size: int = -1) -> bytes:
        if self.head:
            head, self.head = self.head, b""
            if size is None or size < 0:
                return head + self.raw.read()
            if size <= len(head):
                self.head = head[size:]
                return head[:size]
            return head + self.raw.read(size - len(head))
        return self.raw.read(size)


@contextmanager
def _zstd_reader(stream: BinaryIO) -> Iterator[BinaryIO]:
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        zstandard = None
    if zstandard is not None:
        with zstandard.ZstdDecompressor().stream_reader(stream) as reader:
            yield reader
        return
    zstd = shutil.which("zstd")
    if zstd is None:
        raise ValueError("layer is zstd-compressed: install the zstd command or python zstandard")
    with tempfile.TemporaryFile() as tmp:
        shutil.copyfileobj(stream, tmp, COPY_CHUNK)
        tmp.seek(0)
        proc = subprocess.Popen([zstd, "-dc"], stdin=tmp, stdout=subprocess.PIPE)
        try:
            yield proc.stdout  # type: ignore[misc]
        finally:
            proc.stdout.close()  # type: ignore[union-attr]
            if proc.wait() != 0:
                raise ValueError(f"zstd failed to decompress the layer (exit {proc.returncode})")


def uncompressed_digest(stream: BinaryIO) -> str:
    """The diff id of a layer blob, without unpacking it."""
    with open_uncompressed(stream) as raw:
        reader = _HashingReader(raw)
        reader.drain()
        return reader.digest


# ---------------------------------------------------------------------------
# extraction


@dataclass
class _PendingDir:
    path: str
    mode: int
    mtime: float


class LayerExtractor:
    """One pass over a tar stream into an (empty) directory, safely."""

    def __init__(self, dest: Path, *, whiteouts: bool = True, xattr_ns: str | None = None) -> None:
        self.dest = str(dest)
        self.whiteouts = whiteouts
        self.is_root = os.geteuid() == 0
        self.opaque_xattr = f"{xattr_ns or ('trusted' if self.is_root else 'user')}.overlay.opaque"
        self.symlinks: set[str] = set()
        self.pending_dirs: dict[str, _PendingDir] = {}
        self.size = 0

    def extract(self, stream: BinaryIO) -> None:
        with tarfile.open(fileobj=stream, mode="r|", errorlevel=2) as tar:
            for member in tar:
                self._extract_member(tar, member)
        for pending in sorted(self.pending_dirs.values(), key=lambda d: d.path, reverse=True):
            os.chmod(pending.path, pending.mode)
            os.utime(pending.path, (pending.mtime, pending.mtime), follow_symlinks=False)

    # -- names

    def _relative(self, name: str, what: str = "entry") -> str:
        if name.startswith("/"):
            raise UnsafeLayer(f"layer {what} {name!r} has an absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise UnsafeLayer(f"layer {what} {name!r} contains '..'")
        rel = "/".join(parts)
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in self.symlinks:
                raise UnsafeLayer(f"layer {what} {name!r} goes through the symlink {prefix!r}")
        return rel

    def _ensure_parent(self, rel: str) -> str:
        parent_rel = os.path.dirname(rel)
        parent = os.path.join(self.dest, parent_rel) if parent_rel else self.dest
        if not os.path.isdir(parent):
            self._make_parents(parent_rel, rel)
        return parent

    def _make_parents(self, parent_rel: str, rel: str) -> None:
        """Directories the tar implies but does not list: root-owned 0755, whatever the umask."""
        path = self.dest
        for part in parent_rel.split("/"):
            path = os.path.join(path, part)
            try:
                os.mkdir(path)
            except FileExistsError:
                if not os.path.isdir(path) or os.path.islink(path):
                    raise UnsafeLayer(f"layer entry {rel!r}: a parent is not a directory") from None
                continue
            except NotADirectoryError:
                raise UnsafeLayer(f"layer entry {rel!r}: a parent is not a directory") from None
            os.chmod(path, 0o755)

    def _clear(self, path: str, rel: str, keep_dir: bool = False) -> None:
        """Remove whatever is at path (a later entry replaces an earlier one)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            shutil.rmtree(path)
            for key in [k for k in self.pending_dirs if k == path or k.startswith(path + "/")]:
                del self.pending_dirs[key]
            prefix = rel + "/"
            self.symlinks = {s for s in self.symlinks if not s.startswith(prefix)}
        else:
            os.unlink(path)
            self.symlinks.discard(rel)

    # -- entries

    def _extract_member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        rel = self._relative(member.name)
        if not rel:
            return  # the layer's root directory itself
        base = os.path.basename(rel)
        if self.whiteouts and WHITEOUT_PREFIX in rel:
            if any(part.startswith(META_PREFIX) for part in rel.split("/")[:-1]):
                return  # inside aufs bookkeeping (.wh..wh.plnk/...): not content
            if base.startswith(WHITEOUT_PREFIX):
                self._whiteout(rel, base)
                return
        parent = self._ensure_parent(rel)
        path = os.path.join(parent, base)
        if member.isdir():
            self._clear(path, rel, keep_dir=True)
            if not os.path.isdir(path):
                os.mkdir(path, 0o700)
            self._owner(path, member)
            self._xattrs(path, member)
            self.pending_dirs[path] = _PendingDir(path, member.mode & 0o7777, member.mtime)
            return
        self._clear(path, rel)
        if member.isreg():
            self._regular(tar, member, path)
        elif member.issym():
            os.symlink(member.linkname, path)
            self.symlinks.add(rel)
            self._owner(path, member)
            self._xattrs(path, member)
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
        elif member.islnk():
            self._hardlink(member, path)
        elif member.ischr() or member.isblk():
            self._device(member, path)
        elif member.isfifo():
            os.mkfifo(path, 0o600)
            self._finish(path, member)
        else:
            log.warning("layer entry %r has unsupported type %r: skipped", rel, member.type)

    def _regular(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            source = tar.extractfile(member)
            if source is not None and member.size:
                remaining = member.size
                while remaining:
                    chunk = source.read(min(COPY_CHUNK, remaining))
                    if not chunk:
                        raise ValueError(f"layer entry {member.name!r} is truncated")
                    _write_all(fd, chunk)
                    remaining -= len(chunk)
            if self.is_root:
                os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode & 0o7777)
            self._xattrs(fd, member)
            os.utime(fd, (member.mtime, member.mtime))
        finally:
            os.close(fd)
        self.size += member.size

    def _hardlink(self, member: tarfile.TarInfo, path: str) -> None:
        target_rel = self._relative(member.linkname, "hard link target")
        if not target_rel or os.path.basename(target_rel).startswith(WHITEOUT_PREFIX):
            raise UnsafeLayer(f"layer hard link {member.name!r} → {member.linkname!r} is invalid")
        target = os.path.join(self.dest, target_rel)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            raise UnsafeLayer(
                f"layer hard link {member.name!r} → {member.linkname!r}: target is not in the layer"
            ) from None
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeLayer(f"layer hard link {member.name!r} points at a directory")
        os.link(target, path, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            self.symlinks.add(self._relative(member.name))

    def _device(self, member: tarfile.TarInfo, path: str) -> None:
        if not self.is_root:
            log.warning("layer device node %r skipped: only root may create devices", member.name)
            return
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        self._finish(path, member)

    def _whiteout(self, rel: str, base: str) -> None:
        parent_rel = os.path.dirname(rel)
        parent = os.path.join(self.dest, parent_rel) if parent_rel else self.dest
        if base == OPAQUE_MARKER:
            if not os.path.isdir(parent):
                self._make_parents(parent_rel, rel)
            os.setxattr(parent, self.opaque_xattr, b"y", follow_symlinks=False)
            return
        if base.startswith(META_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): meaningless here
        name = base[len(WHITEOUT_PREFIX):]
        self._ensure_parent(rel)
        target_rel = f"{parent_rel}/{name}" if parent_rel else name
        target = os.path.join(parent, name)
        self._clear(target, target_rel)
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))

    # -- attributes

    def _finish(self, path: str, member: tarfile.TarInfo) -> None:
        self._owner(path, member)
        os.chmod(path, member.mode & 0o7777)
        self._xattrs(path, member)
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def _owner(self, path: str, member: tarfile.TarInfo) -> None:
        if self.is_root:
            os.chown(path, member.uid, member.gid, follow_symlinks=False)

    def _xattrs(self, target: str | int, member: tarfile.TarInfo) -> None:
        if not member.pax_headers:
            return
        for key, value in member.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr."):]
            if name.startswith("trusted.overlay.") or name.startswith("user.overlay."):
                continue  # a layer may not forge overlay metadata
            raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, raw)
                else:
                    os.setxattr(target, name, raw, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES):
                    raise
                log.debug("xattr %s on %s not kept: %s", name, member.name, exc)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def extract_tar(stream: BinaryIO, dest: Path, *, whiteouts: bool = True) -> LayerInfo:
    """Extract a (possibly compressed) tar stream into dest; returns its diff id and size."""
    try:
        with open_uncompressed(stream) as raw:
            reader = _HashingReader(raw)
            extractor = LayerExtractor(dest, whiteouts=whiteouts)
            extractor.extract(reader)  # type: ignore[arg-type]
            reader.drain()
            return LayerInfo(reader.digest, extractor.size)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptLayer(f"layer is not a readable tar archive: {exc}") from None


# ---------------------------------------------------------------------------
# the shared layer directory


class LayerStore:
    """`<root>/layers/<diffid-hex>/{fs,meta.json}`: unpacked once, shared by all."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "layers"
        self.root.mkdir(parents=True, exist_ok=True)

    def dir(self, diff_id: str) -> Path:
        return self.root / digest_hex(diff_id)

    def path(self, diff_id: str) -> Path:
        return self.dir(diff_id) / "fs"

    def has(self, diff_id: str) -> bool:
        return (self.dir(diff_id) / "meta.json").is_file()

    def info(self, diff_id: str) -> LayerInfo:
        try:
            meta = json.loads((self.dir(diff_id) / "meta.json").read_text())
        except FileNotFoundError:
            raise LayerNotFound(diff_id) from None
        return LayerInfo(meta["diff_id"], meta["size"])

    def list(self) -> list[str]:
        return sorted(
            "sha256:" + entry.name
            for entry in os.scandir(self.root)
            if not entry.name.startswith("tmp-") and os.path.isfile(os.path.join(entry.path, "meta.json"))
        )

    def unpack(self, blob: BinaryIO, expected_diff_id: str | None = None) -> LayerInfo:
        """Unpack a layer blob unless its diff id is already unpacked; verifies the diff id."""
        if expected_diff_id is not None and self.has(expected_diff_id):
            return self.info(expected_diff_id)
        work = Path(tempfile.mkdtemp(dir=self.root, prefix="tmp-"))
        try:
            fs = work / "fs"
            fs.mkdir()
            os.chmod(fs, 0o755)
            started = time.monotonic()
            info = extract_tar(blob, fs)
            if expected_diff_id is not None and info.diff_id != expected_diff_id:
                raise ValueError(
                    f"layer content does not match its diff id: expected {expected_diff_id}, "
                    f"got {info.diff_id}"
                )
            meta = {"diff_id": info.diff_id, "size": info.size, "unpacked_at": time.time()}
            (work / "meta.json").write_text(json.dumps(meta))
            final = self.dir(info.diff_id)
            try:
                os.rename(work, final)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                log.debug("layer %s was unpacked concurrently; keeping the other copy", info.diff_id)
                _remove_tree(work)
            else:
                log.info(
                    "layer unpacked",
                    extra={"diff_id": info.diff_id, "bytes": info.size,
                           "ms": round((time.monotonic() - started) * 1000, 1)},
                )
            return info
        except BaseException:
            if work.exists():
                _remove_tree(work)
            raise

    def remove(self, diff_id: str) -> bool:
        directory = self.dir(diff_id)
        if not directory.exists():
            return False
        # rename first, so a half-deleted layer is never seen as present
        doomed = Path(tempfile.mkdtemp(dir=self.root, prefix="tmp-rm-"))
        os.rename(directory, doomed / "layer")
        _remove_tree(doomed)
        return True

    def clean_temp(self, older_than: float | None = None) -> None:
        """Remove interrupted unpacks (all, or those started before `older_than`)."""
        for entry in os.scandir(self.root):
            if not entry.name.startswith("tmp-"):
                continue
            if older_than is None or entry.stat(follow_symlinks=False).st_mtime < older_than:
                _remove_tree(Path(entry.path))


def _remove_tree(path: Path) -> None:
    def make_writable(func, failed_path, _exc):  # noqa: ANN001 - shutil callback
        parent = os.path.dirname(failed_path)
        os.chmod(parent, 0o700)
        func(failed_path)

    shutil.rmtree(path, onerror=make_writable)
