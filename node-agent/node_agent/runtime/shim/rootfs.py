"""Build the container's filesystem view inside its new mount namespace:
private propagation, /proc, a minimal /dev, read-only /sys, the user's mounts,
the masked and read-only paths runc uses, then pivot_root."""

from __future__ import annotations

import errno
import os
import stat

from ..linux import syscalls as sc

MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# name, major, minor
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))

_FLAG_OPTIONS = {
    "ro": sc.MS_RDONLY, "nosuid": sc.MS_NOSUID, "nodev": sc.MS_NODEV, "noexec": sc.MS_NOEXEC,
    "noatime": sc.MS_NOATIME, "strictatime": sc.MS_STRICTATIME,
}
_IGNORED_OPTIONS = {"rw", "bind", "rbind", "rprivate", "private", "rslave", "slave", "suid", "dev", "exec"}


def secure_join(root: str, path: str) -> str:
    """`root`/`path` with every symlink resolved inside `root`, so an image's
    symlink cannot point a mount at the host."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                raise OSError(errno.ELOOP, f"too many symlinks resolving {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _mkdirs(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _touch(path: str) -> None:
    if not os.path.exists(path):
        _mkdirs(os.path.dirname(path))
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def split_options(options: list[str]) -> tuple[int, str]:
    flags, data = 0, []
    for opt in options:
        if opt in _FLAG_OPTIONS:
            flags |= _FLAG_OPTIONS[opt]
        elif opt in _IGNORED_OPTIONS or not opt:
            continue
        else:
            data.append(opt)
    return flags, ",".join(data)


def _remount_readonly(target: str, extra: int = 0) -> None:
    sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | extra)


def mount_user(rootfs: str, m: dict) -> None:
    """bind / volume / tmpfs mounts from the spec."""
    target = secure_join(rootfs, m["destination"])
    flags, data = split_options(list(m.get("options") or []))
    if m.get("read_only"):
        flags |= sc.MS_RDONLY
    if m["type"] == "tmpfs":
        _mkdirs(target)
        sc.mount("tmpfs", target, "tmpfs", flags | sc.MS_NOSUID | sc.MS_NODEV, data or None)
        return
    source = m["source"]
    if not os.path.exists(source):
        raise FileNotFoundError(errno.ENOENT, f"mount source {source!r} for {m['destination']!r} does not exist")
    if os.path.isdir(source):
        _mkdirs(target)
    else:
        _touch(target)
    sc.mount(source, target, None, sc.MS_BIND | sc.MS_REC)
    if flags & (sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC):
        sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | flags)


def _setup_dev(rootfs: str, privileged: bool) -> None:
    dev = os.path.join(rootfs, "dev")
    _mkdirs(dev)
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k")
    old = os.umask(0)
    try:
        for name, major, minor in DEVICES:
            os.mknod(os.path.join(dev, name), 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.mkdir(os.path.join(dev, "pts"), 0o755)
        os.mkdir(os.path.join(dev, "shm"), 0o1777)
        os.mkdir(os.path.join(dev, "mqueue"), 0o755)
    finally:
        os.umask(old)
    sc.mount("devpts", os.path.join(dev, "pts"), "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    sc.mount("shm", os.path.join(dev, "shm"), "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
             "mode=1777,size=65536k")
    try:
        sc.mount("mqueue", os.path.join(dev, "mqueue"), "mqueue", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    except OSError:
        os.rmdir(os.path.join(dev, "mqueue"))   # optional
    for link, target in (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, link))


def _setup_sys(rootfs: str, privileged: bool) -> None:
    target = os.path.join(rootfs, "sys")
    _mkdirs(target)
    flags = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | (0 if privileged else sc.MS_RDONLY)
    try:
        sc.mount("sysfs", target, "sysfs", flags)
    except PermissionError:
        # sysfs may not be mounted from a network namespace we do not own: bind the host's, read-only
        sc.mount("/sys", target, None, sc.MS_BIND | sc.MS_REC)
        if not privileged:
            _remount_readonly(target, sc.MS_REC)


def _mask(rootfs: str) -> None:
    for path in MASKED_PATHS:
        target = os.path.join(rootfs, path.lstrip("/"))
        try:
            st = os.lstat(target)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY, "size=0")
        else:
            sc.mount("/dev/null", target, None, sc.MS_BIND)
    for path in READONLY_PATHS:
        target = os.path.join(rootfs, path.lstrip("/"))
        if not os.path.exists(target):
            continue
        sc.mount(target, target, None, sc.MS_BIND | sc.MS_REC)
        _remount_readonly(target, sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)


def setup_rootfs(spec: dict) -> None:
    """Run in the container's new mount (and PID) namespace, before pivot_root."""
    rootfs = os.path.realpath(spec["rootfs"])
    privileged = bool(spec.get("privileged"))
    if not os.path.isdir(rootfs):
        raise FileNotFoundError(errno.ENOENT, f"container rootfs {rootfs!r} does not exist")
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    proc = os.path.join(rootfs, "proc")
    _mkdirs(proc)
    sc.mount("proc", proc, "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    _setup_dev(rootfs, privileged)
    _setup_sys(rootfs, privileged)
    for m in spec.get("mounts") or []:
        mount_user(rootfs, m)
    if not privileged:
        _mask(rootfs)
    os.chdir(rootfs)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    if spec.get("read_only_rootfs"):
        _remount_readonly("/")
