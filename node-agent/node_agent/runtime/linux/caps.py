"""Capability names and the set a container gets (Docker's default list ± add/drop)."""

from __future__ import annotations

import functools

from . import syscalls

CAP_NAMES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]
CAP_NUMBERS = {name: number for number, name in enumerate(CAP_NAMES)}

#: Docker's (and containerd's) default capability set.
DEFAULT_CAPS = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
})


class UnknownCapability(ValueError):
    pass


@functools.cache
def last_cap() -> int:
    """The highest capability number this kernel knows (read once; the spawner's
    children inherit the answer)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAP_NAMES) - 1


def normalize(name: str) -> str:
    """'cap_net_admin', 'NET_ADMIN' and 'CAP_NET_ADMIN' all name the same capability."""
    upper = name.strip().upper()
    if upper.startswith("CAP_"):
        upper = upper[4:]
    if upper != "ALL" and upper not in CAP_NUMBERS:
        raise UnknownCapability(f"unknown capability {name!r}")
    return upper


def effective_set(cap_add: list[str], cap_drop: list[str], privileged: bool) -> frozenset[str]:
    """The container's capabilities: the default set, plus cap_add, minus cap_drop ("ALL" works both ways)."""
    known = frozenset(CAP_NAMES[: last_cap() + 1])
    if privileged:
        return known
    adds = {normalize(c) for c in cap_add}
    drops = {normalize(c) for c in cap_drop}
    caps = set(DEFAULT_CAPS)
    if "ALL" in drops:
        caps = set()
    caps -= drops
    caps |= known if "ALL" in adds else adds
    return frozenset(caps & known)


def mask(names: frozenset[str] | set[str]) -> int:
    value = 0
    for name in names:
        value |= 1 << CAP_NUMBERS[name]
    return value


def drop_bounding_except(keep: frozenset[str]) -> None:
    """Remove every capability not in `keep` from the bounding set (needs CAP_SETPCAP)."""
    keep_mask = mask(keep)
    for number in range(last_cap() + 1):
        if not keep_mask & (1 << number):
            syscalls.capbset_drop(number)


def apply(keep: frozenset[str]) -> None:
    """Effective, permitted and inheritable become `keep`; ambient is cleared."""
    value = mask(keep)
    syscalls.capset(value, value, value)
    try:
        syscalls.ambient_clear_all()
    except OSError:
        pass
