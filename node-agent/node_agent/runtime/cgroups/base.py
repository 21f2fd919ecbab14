"""What every cgroup driver offers a container."""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass


@dataclass
class Limits:
    memory_bytes: int | None = None
    cpu_quota_us: int | None = None
    cpu_period_us: int = 100_000
    cpu_shares: int | None = None
    pids_limit: int | None = None


class Cgroup:
    """A container's cgroup: created before the container's init execs, which
    joins it by writing 0 to every file in procs_files()."""

    version: int

    def procs_files(self) -> list[str]:
        raise NotImplementedError

    def create(self, limits: Limits) -> None:
        raise NotImplementedError

    def stats(self) -> dict:
        raise NotImplementedError

    def oom_kill_count(self) -> int:
        raise NotImplementedError

    def pids(self) -> list[int]:
        return _read_pids(self.procs_files()[0])

    def kill_all(self, signum: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def directories(self) -> list[str]:
        raise NotImplementedError

    def remove(self, timeout: float = 2.0, *, kill: bool = False) -> None:
        """rmdir every directory; processes that are still exiting get `timeout`.
        With `kill`, whatever is still inside is SIGKILLed on every try."""
        deadline = time.monotonic() + timeout
        for path in self.directories():
            while True:
                if kill:
                    for pid in _read_pids(os.path.join(path, "cgroup.procs")):
                        try:
                            os.kill(pid, 9)
                        except ProcessLookupError:
                            pass
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise OSError(e.errno, f"cannot remove cgroup {path}: {e.strerror}") from None
                    time.sleep(0.01)


def write(path: str, value: str | int) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def read(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def read_int(path: str, default: int = 0) -> int:
    text = read(path).strip()
    try:
        return int(text)
    except ValueError:
        return default


def read_keyed(path: str) -> dict[str, int]:
    """'key value' lines (memory.stat, memory.events, cpu.stat, memory.oom_control)."""
    result: dict[str, int] = {}
    for line in read(path).splitlines():
        key, _, value = line.partition(" ")
        try:
            result[key] = int(value)
        except ValueError:
            continue
    return result


def _read_pids(path: str) -> list[int]:
    return [int(x) for x in read(path).split() if x.isdigit()]
