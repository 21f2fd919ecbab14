"""Find out at start whether this host runs pure cgroup v2 or v1/hybrid, and where
each controller lives."""

from __future__ import annotations

from dataclasses import dataclass, field

#: v1 controllers a container joins. Each join is a separate migration that
#: waits for an RCU grace period (milliseconds), so only those Ketch limits or
#: reads: memory, cpu (quota/shares), cpuacct (usage) and pids.
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
V1_KNOWN = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb",
            "net_cls", "net_prio", "perf_event", "rdma", "misc")


@dataclass
class CgroupLayout:
    version: int                                   # 1 (v1 or hybrid) or 2 (unified)
    root: str = "/sys/fs/cgroup"                   # v2: the unified mount
    v1_mounts: dict[str, str] = field(default_factory=dict)  # v1: controller -> mount point

    def to_dict(self) -> dict:
        return {"version": self.version, "root": self.root, "v1_mounts": dict(self.v1_mounts)}

    @classmethod
    def from_dict(cls, data: dict) -> CgroupLayout:
        return cls(version=data["version"], root=data["root"], v1_mounts=dict(data.get("v1_mounts", {})))


def parse_mountinfo(text: str) -> CgroupLayout:
    """A layout from /proc/self/mountinfo text: cgroup2 at /sys/fs/cgroup with
    controllers → v2; otherwise the v1 controller hierarchies."""
    unified: list[str] = []
    v1: dict[str, str] = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mount_point, fstype, super_opts = fields[4], rfields[0], rfields[2]
        if fstype == "cgroup2":
            unified.append(mount_point)
        elif fstype == "cgroup":
            for opt in super_opts.split(","):
                if opt in V1_KNOWN:
                    v1.setdefault(opt, mount_point)
    if "/sys/fs/cgroup" in unified and not v1:
        return CgroupLayout(version=2, root="/sys/fs/cgroup")
    if not v1 and unified:
        return CgroupLayout(version=2, root=unified[0])
    return CgroupLayout(version=1, root="/sys/fs/cgroup", v1_mounts=v1)


def detect() -> CgroupLayout:
    with open("/proc/self/mountinfo") as f:
        return parse_mountinfo(f.read())
