"""OverlaySnapshotter: a container's root = overlay(image layers below, its own layer above).

`<root>/snapshots/<key>/` holds `upper/` (the container's writes), `work/`
(overlayfs scratch) and `rootfs/` (the mount point). The image layers are
named through short symlinks `<root>/l/<16 hex>` so that the mount options of
an image with 100+ layers still fit in one page (the kernel's limit); when
even that is too long, the mount is made from a thread with its own working
directory and relative lower paths. Mounting is one mount(2) call via ctypes:
it sits on the container start path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import threading
from pathlib import Path

from ..images.store import Image, ImageStore

log = logging.getLogger(__name__)

OVERLAYFS_MAGIC = 0x794C7630
MNT_DETACH = 2
CLONE_FS = 0x00000200
PAGE_LIMIT = os.sysconf("SC_PAGE_SIZE") - 1
LINK_CHARS = 16
# like Docker: no inode index, so many mounts can share a lower layer whatever the kernel default
_EXTRA_OPTIONS = ",index=off" if os.path.exists("/sys/module/overlay/parameters/index") else ""
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]


class SnapshotError(OSError):
    """An overlay could not be set up; the message says why and what to do."""


class _StatFs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 112)]


_libc.statfs.argtypes = [ctypes.c_char_p, ctypes.POINTER(_StatFs)]


def _fs_type(path: Path) -> int:
    buf = _StatFs()
    if _libc.statfs(os.fsencode(str(path)), ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(path))
    return buf.f_type & 0xFFFFFFFF


def _mount_overlay(target: Path, options: str) -> None:
    if _libc.mount(b"overlay", os.fsencode(str(target)), b"overlay", 0, options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _top_first_unique(layers: list[str]) -> list[str]:
    """Top-first lower layers, each once: overlayfs refuses a repeated lowerdir, and applying a
    layer again at its topmost position already gives everything its lower copy would."""
    seen: set[str] = set()
    ordered = []
    for diff_id in reversed(layers):
        if diff_id not in seen:
            seen.add(diff_id)
            ordered.append(diff_id)
    return ordered


def _umount(target: Path, flags: int = 0) -> int:
    """0 on success, else errno."""
    if _libc.umount2(os.fsencode(str(target)), flags) != 0:
        return ctypes.get_errno()
    return 0


class OverlaySnapshotter:
    def __init__(self, root: Path, images: ImageStore) -> None:
        self.root = Path(root)
        self.images = images
        self.snapshots = self.root / "snapshots"
        self.links = self.root / "l"
        self.snapshots.mkdir(parents=True, exist_ok=True)
        self.links.mkdir(exist_ok=True)
        self._checked_fs = False
        self._root_tag = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:8]

    def _dir(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"invalid snapshot key {key!r} (letters, digits, '_', '.', '-')")
        return self.snapshots / key

    def rootfs(self, key: str) -> Path:
        return self._dir(key) / "rootfs"

    def exists(self, key: str) -> bool:
        return (self._dir(key) / "meta.json").exists()

    def is_mounted(self, key: str) -> bool:
        return os.path.ismount(self.rootfs(key))

    def list(self) -> list[str]:
        return sorted(entry.name for entry in os.scandir(self.snapshots) if entry.is_dir())

    # ------------------------------------------------------------------ prepare

    def prepare(self, key: str, image: Image) -> Path:
        """Mount and return the container's merged root; the same path if already mounted."""
        directory = self._dir(key)
        rootfs = directory / "rootfs"
        if os.path.ismount(rootfs):
            return rootfs
        self._check_filesystem()
        lowers = [self._link(diff_id) for diff_id in _top_first_unique(image.layers)]
        if not lowers:
            raise SnapshotError(errno.EINVAL, f"image {image.id} has no layers to mount")
        for sub in ("upper", "work", "rootfs"):
            try:
                (directory / sub).mkdir(parents=True)
            except FileExistsError:
                continue  # remounting after a reboot: keep what the container did to its root
            if sub == "upper":
                # the merged root directory takes its owner and mode from upper (as layer roots: 0755)
                os.chmod(directory / sub, 0o755)
        self.images.add_lease(self._lease_name(key), list(image.layers), holder=directory)
        meta = {"key": key, "image": image.id, "layers": list(image.layers)}
        (directory / "meta.json").write_text(json.dumps(meta))
        upper, work = directory / "upper", directory / "work"
        lower = ":".join(str(self.links / name) for name in lowers)
        absolute = f"lowerdir={lower},upperdir={upper},workdir={work}{_EXTRA_OPTIONS}"
        try:
            if len(absolute) <= PAGE_LIMIT:
                _mount_overlay(rootfs, absolute)
            else:
                relative = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}{_EXTRA_OPTIONS}"
                if len(relative) > PAGE_LIMIT:
                    raise SnapshotError(
                        errno.E2BIG, f"image {image.id} has too many layers ({len(lowers)}) for one overlay mount"
                    )
                self._mount_from(self.links, rootfs, relative)
        except SnapshotError:
            raise
        except OSError as exc:
            raise SnapshotError(exc.errno, self._explain(exc, rootfs)) from None
        log.debug("snapshot mounted", extra={"key": key, "image": image.id, "layers": len(lowers)})
        return rootfs

    def _link(self, diff_id: str) -> str:
        """A short name in `<root>/l` for a layer dir (the kernel option string is one page)."""
        hexid = diff_id.split(":", 1)[1]
        target = str(self.images.layers.path(diff_id))
        if not os.path.isdir(target):
            raise SnapshotError(errno.ENOENT, f"layer {diff_id} is not unpacked in the image store")
        for length in (LINK_CHARS, 32, 64):
            name = hexid[:length]
            link = self.links / name
            try:
                if os.readlink(link) == target:
                    return name
                continue  # a (very unlikely) prefix clash: use a longer name
            except FileNotFoundError:
                pass
            try:
                os.symlink(target, link)
            except FileExistsError:
                if os.readlink(link) != target:
                    continue
            return name
        raise SnapshotError(errno.EEXIST, f"cannot name layer {diff_id} in {self.links}")

    @staticmethod
    def _mount_from(cwd: Path, target: Path, options: str) -> None:
        """Mount with relative lower paths from a thread with a private working directory."""
        failure: list[BaseException] = []

        def run() -> None:
            try:
                if _libc.unshare(CLONE_FS) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"unshare(CLONE_FS): {os.strerror(err)}")
                os.chdir(cwd)
                _mount_overlay(target, options)
            except BaseException as exc:  # re-raised in the caller
                failure.append(exc)

        thread = threading.Thread(target=run, name="ketch-overlay-mount")
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    def _check_filesystem(self) -> None:
        if self._checked_fs:
            return
        if _fs_type(self.snapshots) == OVERLAYFS_MAGIC:
            raise SnapshotError(
                errno.EINVAL,
                f"{self.snapshots} is on overlayfs (as inside a container): an overlay upper "
                f"directory cannot live there. Put the runtime root on a real filesystem "
                f"(ext4, xfs, tmpfs), e.g. a volume or /var/lib/ketch.",
            )
        self._checked_fs = True

    def _explain(self, exc: OSError, rootfs: Path) -> str:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = ""
        if exc.errno == errno.EPERM:
            hint = " (mounting needs root / CAP_SYS_ADMIN)"
        elif exc.errno == errno.ENODEV:
            hint = " (the kernel has no overlay filesystem: modprobe overlay)"
        elif exc.errno == errno.EINVAL:
            hint = " (see dmesg for the overlayfs message; is the root on a filesystem overlay can use as upper?)"
        return f"cannot mount overlay at {rootfs}: {reason}{hint}"

    # ------------------------------------------------------------------ remove

    def remove(self, key: str) -> None:
        """Unmount (lazily if busy) and delete the snapshot; no error if it does not exist."""
        directory = self._dir(key)
        rootfs = directory / "rootfs"
        if os.path.ismount(rootfs):
            err = _umount(rootfs)
            if err == errno.EBUSY:
                log.info("snapshot busy, detaching", extra={"key": key})
                err = _umount(rootfs, MNT_DETACH)
            if err not in (0, errno.EINVAL, errno.ENOENT):
                raise SnapshotError(err, f"cannot unmount {rootfs}: {os.strerror(err)}")
        if directory.exists():
            shutil.rmtree(directory)
        self.images.remove_lease(self._lease_name(key))

    def _lease_name(self, key: str) -> str:
        """Unique per snapshotter root, so two runtimes sharing an image store never collide."""
        return f"snapshot-{self._root_tag}-{key}"

    # ------------------------------------------------------------------ usage

    def usage(self, key: str) -> int:
        """Bytes the container has written (its upper directory), each inode counted once."""
        upper = self._dir(key) / "upper"
        seen: set[int] = set()
        total = 0
        for dirpath, dirnames, filenames in os.walk(upper):
            for name in filenames + dirnames:
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                if st.st_ino in seen or stat.S_ISDIR(st.st_mode):
                    continue
                seen.add(st.st_ino)
                total += st.st_size
        return total
