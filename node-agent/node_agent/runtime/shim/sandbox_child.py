"""Runs in a child forked by the spawner: make a sandbox's namespaces and pin
them with bind mounts (no process stays behind)."""

from __future__ import annotations

import fcntl
import os
import socket
import struct

from ..linux import syscalls as sc
from . import protocol


def _loopback_up() -> None:
    """`lo` up in this (new) network namespace: two ioctls, no netlink library."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s.fileno(), siocgifflags, request))[1]
        if not flags & iff_up:
            fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sh14x", b"lo", flags | iff_up))


def sandbox_main(request: dict, conn: socket.socket) -> None:
    """request: {"ns": {"net": path|None, "uts": path, "ipc": path}, "hostname": str}.
    A namespace with a path is created and bound there; net=None means the
    caller joins an existing network namespace instead."""
    try:
        targets: dict[str, str] = {k: v for k, v in request["ns"].items() if v}
        flags = 0
        for kind, flag in (("net", sc.CLONE_NEWNET), ("uts", sc.CLONE_NEWUTS), ("ipc", sc.CLONE_NEWIPC)):
            if kind in targets:
                flags |= flag
        sc.unshare(flags)
        if "uts" in targets and request.get("hostname"):
            sc.sethostname(request["hostname"])
        if "net" in targets:
            _loopback_up()       # 127.0.0.1 works in every new sandbox, wired to a network or not
        for kind, target in targets.items():
            if not os.path.exists(target):
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o444))
            sc.mount(f"/proc/self/ns/{kind}", target, None, sc.MS_BIND)
        protocol.send_json_blocking(conn, {"ok": True})
    except BaseException as e:  # noqa: BLE001
        for target in request["ns"].values():
            if target:
                try:
                    sc.umount2(target, sc.MNT_DETACH)
                except OSError:
                    pass
        try:
            protocol.send_json_blocking(conn, {"error": f"creating sandbox namespaces: {e}"})
        except OSError:
            pass
    finally:
        conn.close()
        os._exit(0)
