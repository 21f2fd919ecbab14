"""The /etc/hosts, /etc/hostname and /etc/resolv.conf a container sees.

Docker's embedded DNS, lite: containers on a user network find each other by
name through /etc/hosts lines the runtime writes and rewrites as peers come
and go. The files are bind-mounted, so rewrites keep the inode (truncate and
write in place, never rename).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
]


def render_hosts(hostname: str, own: list[str], peers: list[tuple[str, list[str]]],
                 extra: list[str] | None = None, own_names: list[str] | None = None) -> str:
    """own: this sandbox's addresses; peers: (ip, names) of others it may reach by name;
    own_names: more names for its own addresses (its container name on a user network)."""
    lines = list(BASE)
    names = " ".join(dict.fromkeys([hostname, *(own_names or [])]))
    for ip in own:
        lines.append(f"{ip}\t{names}")
    seen = set(own)
    for ip, names in sorted(peers):
        if ip in seen or not names:
            continue
        seen.add(ip)
        lines.append(f"{ip}\t{' '.join(names)}")
    lines += list(extra or [])
    return "\n".join(lines) + "\n"


def render_resolv_conf(host_resolv: Path = Path("/etc/resolv.conf")) -> str:
    """The host's resolvers, minus loopback ones a container cannot reach."""
    try:
        text = host_resolv.read_text()
    except OSError:
        text = ""
    kept = []
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["nameserver"] and len(parts) > 1 and parts[1].startswith("127."):
            continue
        kept.append(line)
    if not any(line.startswith("nameserver") for line in kept):
        kept += ["nameserver 8.8.8.8", "nameserver 1.1.1.1"]
    return "\n".join(kept) + "\n"


def write_in_place(path: Path, text: str) -> bool:
    """Rewrite without changing the inode, so a bind mount of the file sees it.

    A new file is simply created; an existing one is rewritten only when its
    text changes (a truncate costs a journal transaction, which a loaded disk
    makes milliseconds long, and this runs on every sandbox's creation).
    Returns whether anything was written."""
    data = text.encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        with open(path, "r+b") as f:
            if f.read() == data:
                return False
            f.seek(0)
            f.truncate()
            f.write(data)
        return True
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return True
