"""The agent's stats: /proc parsing and the Summary built from runtime stats."""

import asyncio
from types import SimpleNamespace

from node_agent.container_config import CONTAINER_NAME, POD_NAME, POD_NAMESPACE, POD_UID
from node_agent.server import stats

from proto import runtime_pb2 as pb


def test_proc_parsing():
    busy = stats.node_cpu_ns("cpu  100 5 50 1000 20 3 2 0 0 0")
    assert busy == (100 + 5 + 50 + 3 + 2) * 1_000_000_000 // stats._CLK_TCK
    mem = stats.node_memory("MemTotal:  1000 kB\nMemFree:  200 kB\nMemAvailable:  600 kB\n")
    assert mem == {"availableBytes": 600 * 1024, "usageBytes": 800 * 1024, "workingSetBytes": 400 * 1024}


class FakeRuntime:
    def __init__(self) -> None:
        self.cpu = 1_000_000_000
        labels = {POD_UID: "u1", POD_NAME: "web", POD_NAMESPACE: "default", CONTAINER_NAME: "app"}
        self.containers = [pb.Container(id="c1", labels=labels, created_at=1_700_000_000_000_000_000),
                           pb.Container(id="c2", labels={}, created_at=1)]
        self.runtime = SimpleNamespace(ListContainerStats=self.list_stats, ListContainers=self.list_containers)

    async def list_stats(self, request):
        self.cpu += 50_000_000  # 0.05 s of CPU per sample
        import time

        now = time.time_ns()
        return pb.ListContainerStatsResponse(stats=[
            pb.ContainerStats(container_id="c1", timestamp=now, cpu_usage_ns=self.cpu,
                              memory_working_set_bytes=5 << 20, memory_usage_bytes=6 << 20),
            pb.ContainerStats(container_id="c2", timestamp=now, cpu_usage_ns=1)])

    async def list_containers(self, request):
        return pb.ListContainersResponse(containers=self.containers)


def test_summary_groups_pod_containers_and_rates_cpu(monkeypatch):
    monkeypatch.setattr(stats, "RATE_WINDOW", 0.05)
    provider = stats.StatsProvider(FakeRuntime(), "node-1")
    summary = asyncio.run(provider.summary())
    assert summary["node"]["nodeName"] == "node-1"
    assert "usageNanoCores" in summary["node"]["cpu"]
    [pod] = summary["pods"]  # c2 has no pod labels: not a pod's container
    assert pod["podRef"] == {"name": "web", "namespace": "default", "uid": "u1"}
    [app] = pod["containers"]
    assert app["name"] == "app" and app["memory"]["workingSetBytes"] == 5 << 20
    assert app["cpu"]["usageNanoCores"] > 0  # 50 ms of CPU over ~50 ms: a rate near a core
    assert pod["memory"]["workingSetBytes"] == 5 << 20
