"""Unix socket paths longer than sun_path (108 bytes) reached through /proc/self/fd."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_MAX = 100


@contextlib.contextmanager
def short_path(path: str) -> Iterator[str]:
    """Yield a path usable for bind/connect that names the same socket as `path`.

    Long paths go through an O_PATH descriptor of the directory, which the
    kernel resolves like the real directory; the descriptor lives while the
    context is open.
    """
    if len(os.fsencode(path)) <= _MAX:
        yield path
        return
    directory, name = os.path.split(path)
    fd = os.open(directory, os.O_PATH | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{name}"
    finally:
        os.close(fd)
