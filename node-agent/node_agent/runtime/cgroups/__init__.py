"""Container cgroups on v1/hybrid and v2 hosts: detect(), then open_cgroup()."""

from __future__ import annotations

from .base import Cgroup, Limits
from .detect import CgroupLayout, detect, parse_mountinfo
from .v1 import CgroupV1
from .v2 import CgroupV2, shares_to_weight


def open_cgroup(layout: CgroupLayout, relpath: str) -> Cgroup:
    """The cgroup `relpath` (e.g. "ketch/<id>") in whichever hierarchy the host runs."""
    return CgroupV2(layout, relpath) if layout.version == 2 else CgroupV1(layout, relpath)


__all__ = [
    "Cgroup", "CgroupLayout", "CgroupV1", "CgroupV2", "Limits", "detect", "open_cgroup",
    "parse_mountinfo", "shares_to_weight",
]
