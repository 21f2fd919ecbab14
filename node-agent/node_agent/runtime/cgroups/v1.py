"""cgroup v1 (and hybrid): one directory per controller hierarchy."""

from __future__ import annotations

import os

from .base import Cgroup, Limits, read, read_int, read_keyed, write
from .detect import V1_CONTROLLERS, CgroupLayout


class CgroupV1(Cgroup):
    version = 1

    def __init__(self, layout: CgroupLayout, relpath: str):
        self.relpath = relpath.strip("/")
        self.paths: dict[str, str] = {}
        for controller in V1_CONTROLLERS:
            mount = layout.v1_mounts.get(controller)
            if mount:
                self.paths[controller] = os.path.join(mount, self.relpath)

    def _unique_dirs(self) -> list[str]:
        seen: list[str] = []
        for path in self.paths.values():
            if path not in seen:
                seen.append(path)
        return seen

    def directories(self) -> list[str]:
        return self._unique_dirs()

    def procs_files(self) -> list[str]:
        return [os.path.join(p, "cgroup.procs") for p in self._unique_dirs()]

    def _file(self, controller: str, name: str) -> str | None:
        base = self.paths.get(controller)
        return os.path.join(base, name) if base else None

    def create(self, limits: Limits) -> None:
        for path in self._unique_dirs():
            os.makedirs(path, exist_ok=True)
        if limits.memory_bytes:
            limit = self._file("memory", "memory.limit_in_bytes")
            memsw = self._file("memory", "memory.memsw.limit_in_bytes")
            if memsw and os.path.exists(memsw):
                # memory+swap = memory (no swap); the kernel wants memsw >= limit at every step
                order = [limit, memsw] if limits.memory_bytes <= read_int(limit, 1 << 62) else [memsw, limit]
                for path in order:
                    write(path, limits.memory_bytes)
            else:
                write(limit, limits.memory_bytes)
        if "cpu" in self.paths:
            if limits.cpu_quota_us:
                write(self._file("cpu", "cpu.cfs_period_us"), limits.cpu_period_us)
                write(self._file("cpu", "cpu.cfs_quota_us"), limits.cpu_quota_us)
            if limits.cpu_shares:
                write(self._file("cpu", "cpu.shares"), max(2, limits.cpu_shares))
        if limits.pids_limit and "pids" in self.paths:
            write(self._file("pids", "pids.max"), limits.pids_limit)

    def stats(self) -> dict:
        mem_stat = read_keyed(self._file("memory", "memory.stat") or "")
        usage = read_int(self._file("memory", "memory.usage_in_bytes") or "")
        inactive = mem_stat.get("total_inactive_file", mem_stat.get("inactive_file", 0))
        return {
            "cpu_usage_ns": read_int(self._file("cpuacct", "cpuacct.usage") or ""),
            "memory_usage_bytes": usage,
            "memory_working_set_bytes": max(0, usage - inactive),
            "pids": read_int(self._file("pids", "pids.current") or ""),
            "memory_limit_bytes": _limit(read(self._file("memory", "memory.limit_in_bytes") or "")),
            "pids_limit": _limit(read(self._file("pids", "pids.max") or "")),
        }

    def oom_kill_count(self) -> int:
        path = self._file("memory", "memory.oom_control")
        if not path:
            return 0
        control = read_keyed(path)
        if "oom_kill" in control:
            return control["oom_kill"]
        # Old kernels have no counter: hitting the limit with a failure count is the best sign.
        return read_int(self._file("memory", "memory.failcnt") or "")

    def memory_limit(self) -> int:
        return read_int(self._file("memory", "memory.limit_in_bytes") or "")


def _limit(text: str) -> int:
    """0 for no limit ("max", or v1's page-rounded LONG_MAX)."""
    text = text.strip()
    if not text.isdigit():
        return 0
    value = int(text)
    return 0 if value >= (1 << 62) else value
