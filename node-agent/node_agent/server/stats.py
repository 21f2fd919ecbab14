"""`GET /stats/summary`: node and pod/container CPU and memory, in the kubelet's Summary shape.

Containers come from the runtime's ListContainerStats (grouped into pods by the
labels the pod workers set); the node from /proc/stat and /proc/meminfo.
`usageNanoCores` is a rate: it is worked out from the previous sample of the same
container (or node), taking a second sample a moment later when there is none.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from typing import Any

from node_agent.container_config import CONTAINER_NAME, POD_NAME, POD_NAMESPACE, POD_UID
from proto import runtime_pb2 as pb

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
RATE_WINDOW = 0.25  # seconds between two samples when there is no earlier one
STALE_AFTER = 60.0  # an older sample is not used for a rate


def rfc3339(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_cpu_ns(text: str | None = None) -> int:
    """Busy CPU time of the whole machine, from the first line of /proc/stat."""
    if text is None:
        with open("/proc/stat") as f:
            text = f.readline()
    fields = [int(x) for x in text.split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) * 1_000_000_000 // _CLK_TCK


def node_memory(text: str | None = None) -> dict[str, int]:
    """availableBytes, usageBytes, workingSetBytes from /proc/meminfo (kB values)."""
    if text is None:
        with open("/proc/meminfo") as f:
            text = f.read()
    info = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            info[key] = int(parts[0]) * 1024
    total = info.get("MemTotal", 0)
    available = info.get("MemAvailable", info.get("MemFree", 0))
    used = total - info.get("MemFree", 0)
    return {"availableBytes": available, "usageBytes": used, "workingSetBytes": total - available}


class StatsProvider:
    """Builds summaries; remembers the last CPU sample of each container and of the node."""

    def __init__(self, runtime: Any, node_name: str) -> None:
        self.runtime = runtime
        self.node_name = node_name
        self.started = time.time_ns()
        self._last: dict[str, tuple[int, int]] = {}  # key -> (timestamp ns, cpu ns)

    def _rate(self, key: str, now: int, cpu: int) -> int | None:
        prev = self._last.get(key)
        self._last[key] = (now, cpu)
        if prev is None or now <= prev[0] or now - prev[0] > STALE_AFTER * 1e9 or cpu < prev[1]:
            return None
        return int((cpu - prev[1]) * 1_000_000_000 / (now - prev[0]))

    def _fresh(self, key: str, now: int) -> bool:
        prev = self._last.get(key)
        return prev is not None and 0 < now - prev[0] < STALE_AFTER * 1e9

    async def _sample(self) -> tuple[int, int, list, dict]:
        stats = (await self.runtime.runtime.ListContainerStats(pb.ListContainerStatsRequest())).stats
        listing = (await self.runtime.runtime.ListContainers(pb.ListContainersRequest())).containers
        return time.time_ns(), node_cpu_ns(), list(stats), {c.id: c for c in listing}

    async def summary(self) -> dict:
        now, node_cpu, stats, containers = await self._sample()
        keys = ["node"] + [s.container_id for s in stats]
        if not all(self._fresh(k, now) for k in keys):
            for s in stats:
                self._rate(s.container_id, s.timestamp or now, s.cpu_usage_ns)
            self._rate("node", now, node_cpu)
            await asyncio.sleep(RATE_WINDOW)
            now, node_cpu, stats, containers = await self._sample()
        pods: dict[str, dict] = {}
        for s in stats:
            c = containers.get(s.container_id)
            if c is None or not c.labels.get(POD_UID):
                continue  # not a pod's container (e.g. `ketch runtime run`)
            uid = c.labels[POD_UID]
            pod = pods.setdefault(uid, {
                "podRef": {"name": c.labels.get(POD_NAME, ""), "namespace": c.labels.get(POD_NAMESPACE, ""),
                           "uid": uid},
                "startTime": rfc3339(c.created_at), "containers": [],
            })
            ts = s.timestamp or now
            pod["containers"].append({
                "name": c.labels.get(CONTAINER_NAME, s.name),
                "startTime": rfc3339(c.created_at),
                "cpu": _cpu(ts, s.cpu_usage_ns, self._rate(s.container_id, ts, s.cpu_usage_ns)),
                "memory": {"time": rfc3339(ts), "usageBytes": s.memory_usage_bytes,
                           "workingSetBytes": s.memory_working_set_bytes,
                           **({"availableBytes": max(s.memory_limit_bytes - s.memory_working_set_bytes, 0)}
                              if s.memory_limit_bytes else {})},
            })
        for pod in pods.values():
            pod["cpu"] = _sum_cpu(pod["containers"], now)
            pod["memory"] = {"time": rfc3339(now),
                             "usageBytes": sum(c["memory"]["usageBytes"] for c in pod["containers"]),
                             "workingSetBytes": sum(c["memory"]["workingSetBytes"] for c in pod["containers"])}
        return {
            "node": {
                "nodeName": self.node_name, "startTime": rfc3339(self.started),
                "cpu": _cpu(now, node_cpu, self._rate("node", now, node_cpu)),
                "memory": {"time": rfc3339(now), **node_memory()},
            },
            "pods": sorted(pods.values(), key=lambda p: (p["podRef"]["namespace"], p["podRef"]["name"])),
        }


def _cpu(ts: int, total_ns: int, rate: int | None) -> dict:
    out = {"time": rfc3339(ts), "usageCoreNanoSeconds": total_ns}
    if rate is not None:
        out["usageNanoCores"] = rate
    return out


def _sum_cpu(containers: list[dict], now: int) -> dict:
    out = {"time": rfc3339(now), "usageCoreNanoSeconds": sum(c["cpu"]["usageCoreNanoSeconds"] for c in containers)}
    rates = [c["cpu"].get("usageNanoCores") for c in containers]
    if rates and all(r is not None for r in rates):
        out["usageNanoCores"] = sum(rates)
    return out
