"""Optional timing trace of the container start path (KETCH_RUNTIME_TRACE=<file>)."""

from __future__ import annotations

import os
import time

_PATH = os.environ.get("KETCH_RUNTIME_TRACE")


def mark(label: str) -> None:
    """Append 'pid label monotonic-seconds' to the trace file, when tracing is on."""
    if _PATH:
        try:
            fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return          # e.g. inside the container after pivot_root
        os.write(fd, f"{os.getpid()} {label} {time.perf_counter():.6f} {time.process_time():.6f}\n".encode())
        os.close(fd)
