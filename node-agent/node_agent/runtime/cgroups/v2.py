"""cgroup v2 (unified): one directory, controllers enabled down the tree."""

from __future__ import annotations

import os

from .base import Cgroup, Limits, read, read_int, read_keyed, write
from .detect import CgroupLayout

WANTED_CONTROLLERS = ("cpu", "memory", "pids", "io")


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) → cpu.weight (1..10000), the Kubernetes formula."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


class CgroupV2(Cgroup):
    version = 2

    def __init__(self, layout: CgroupLayout, relpath: str):
        self.root = layout.root
        self.relpath = relpath.strip("/")
        self.path = os.path.join(self.root, self.relpath)

    def directories(self) -> list[str]:
        return [self.path]

    def procs_files(self) -> list[str]:
        return [os.path.join(self.path, "cgroup.procs")]

    def _enable_controllers(self) -> None:
        """Each ancestor below the root must delegate the controllers to its children."""
        parts = self.relpath.split("/")[:-1]
        current = self.root
        for part in [""] + parts:
            current = os.path.join(current, part) if part else current
            os.makedirs(current, exist_ok=True)
            available = read(os.path.join(current, "cgroup.controllers")).split()
            enabled = read(os.path.join(current, "cgroup.subtree_control")).split()
            missing = [c for c in WANTED_CONTROLLERS if c in available and c not in enabled]
            if missing:
                try:
                    write(os.path.join(current, "cgroup.subtree_control"), " ".join("+" + c for c in missing))
                except OSError:
                    pass   # e.g. the root still holds processes of its own: limits then fail loudly below

    def create(self, limits: Limits) -> None:
        self._enable_controllers()
        os.makedirs(self.path, exist_ok=True)
        f = lambda name: os.path.join(self.path, name)  # noqa: E731
        if limits.memory_bytes:
            write(f("memory.max"), limits.memory_bytes)
            if os.path.exists(f("memory.swap.max")) or not os.path.exists(f("cgroup.controllers")):
                write(f("memory.swap.max"), 0)
        if os.path.exists(f("memory.oom.group")):
            write(f("memory.oom.group"), 1)    # an OOM kill takes the whole container, as Kubernetes does
        if limits.cpu_quota_us:
            write(f("cpu.max"), f"{limits.cpu_quota_us} {limits.cpu_period_us}")
        if limits.cpu_shares:
            write(f("cpu.weight"), shares_to_weight(limits.cpu_shares))
        if limits.pids_limit:
            write(f("pids.max"), limits.pids_limit)

    def stats(self) -> dict:
        f = lambda name: os.path.join(self.path, name)  # noqa: E731
        cpu = read_keyed(f("cpu.stat"))
        mem = read_keyed(f("memory.stat"))
        usage = read_int(f("memory.current"))
        return {
            "cpu_usage_ns": cpu.get("usage_usec", 0) * 1000,
            "memory_usage_bytes": usage,
            "memory_working_set_bytes": max(0, usage - mem.get("inactive_file", 0)),
            "pids": read_int(f("pids.current")),
            "memory_limit_bytes": _limit(read(f("memory.max"))),
            "pids_limit": _limit(read(f("pids.max"))),
        }

    def oom_kill_count(self) -> int:
        return read_keyed(os.path.join(self.path, "memory.events")).get("oom_kill", 0)

    def kill_all(self, signum: int) -> None:
        kill_file = os.path.join(self.path, "cgroup.kill")
        if signum == 9 and os.path.exists(kill_file):
            try:
                write(kill_file, 1)
                return
            except OSError:
                pass
        super().kill_all(signum)


def _limit(text: str) -> int:
    """0 for no limit ("max")."""
    text = text.strip()
    return int(text) if text.isdigit() else 0
