"""Run network code inside another network namespace, one thread at a time.

setns(2) with CLONE_NEWNET changes only the calling thread, so a fresh thread
that enters the namespace, opens its netlink socket there and runs the work
leaves the rest of the process where it was (a netlink socket stays bound to
the namespace it was opened in). Python 3.11 has no os.setns: ctypes on libc.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TypeVar

CLONE_NEWNET = 0x40000000

T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """Move the calling thread into the namespace open at fd."""
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def enter(path: str) -> None:
    """Move the calling thread (at start-up: the whole future process) into the netns at path."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd)
    finally:
        os.close(fd)


def netns_path(name_or_path: str) -> str:
    """`ip netns` names live under /run/netns; anything with a slash is a path already."""
    return name_or_path if "/" in name_or_path else f"/run/netns/{name_or_path}"


def run_in(path: str, fn: Callable[..., T], *args, **kwargs) -> T:
    """Call fn(*args, **kwargs) in a new thread that has entered the netns at path."""
    result: list = []
    error: list[BaseException] = []
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # fail here, in the caller, if it is gone

    def target() -> None:
        try:
            setns(fd)
            result.append(fn(*args, **kwargs))
        except BaseException as exc:  # re-raised in the caller
            error.append(exc)

    try:
        thread = threading.Thread(target=target, name="ketch-netns", daemon=True)
        thread.start()
        thread.join()
    finally:
        os.close(fd)
    if error:
        raise error[0]
    return result[0]
