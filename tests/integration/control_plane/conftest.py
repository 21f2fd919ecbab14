"""A control plane under test: real apiserver and etcd, scheduler and controllers in-process.

The node side is a *kubelet double* (``FakeKubelet``): it renews node Leases,
marks bound pods Running and Ready (or Succeeded, for pods that ask to), and
confirms graceful deletions. The real node agent is covered by the e2e tests
on a lab cluster; here the subject is scheduling and reconciliation.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import pytest

from controllers.main import parse_args, run_controllers
from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.api.timeutil import format_rfc3339_micro, now, now_rfc3339
from ketch.client.aio import AsyncClient, ClusterAccess
from scheduler.scheduler import Scheduler

PODS = lookup("", "v1", "pods")
NODES = lookup("", "v1", "nodes")
LEASES = lookup("coordination.k8s.io", "v1", "leases")
NAMESPACES = lookup("", "v1", "namespaces")

#: Pods with this label finish (Succeeded) once running, like a batch container would.
FINISH_LABEL = "test.ketch.io/finish"


def node_object(name: str, cpu: str = "2", memory: str = "4Gi") -> dict:
    stamp = now_rfc3339()
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok",
                            "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}],
        },
    }


@dataclass
class FakeKubelet:
    client: AsyncClient
    nodes: list[str]
    stopped: set[str] = field(default_factory=set)  # nodes that stopped heartbeating
    _ips: dict[str, str] = field(default_factory=dict)

    async def run(self) -> None:
        while True:
            await asyncio.gather(*(self._beat(n) for n in self.nodes if n not in self.stopped))
            await self._pods()
            await asyncio.sleep(0.3)

    async def _beat(self, node: str) -> None:
        stamp = format_rfc3339_micro(now())
        try:
            lease = await self.client.get(LEASES, node, "kube-node-lease")
            lease["spec"]["renewTime"] = stamp
            await self.client.update(LEASES, lease)
        except ApiError as err:
            if err.code != 404:
                return
            await self.client.create(LEASES, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": node, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": stamp}})

    async def _pods(self) -> None:
        pods = (await self.client.list(PODS))["items"]
        for pod in pods:
            meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
            node = spec.get("nodeName")
            if not node or node in self.stopped:
                continue
            with contextlib.suppress(ApiError):
                if meta.get("deletionTimestamp"):
                    await self.client.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=0)
                elif status.get("phase") == "Pending":
                    ip = self._ips.setdefault(meta["uid"], f"10.244.{len(self._ips) // 250}.{len(self._ips) % 250 + 2}")
                    stamp = now_rfc3339()
                    finished = (meta.get("labels") or {}).get(FINISH_LABEL) == "true"
                    new = {"phase": "Succeeded" if finished else "Running", "podIP": ip, "startTime": stamp,
                           "conditions": [{"type": "Ready", "status": "False" if finished else "True",
                                           "lastTransitionTime": stamp}]}
                    await self.client.patch(PODS, meta["name"], {"status": new}, meta["namespace"],
                                            subresource="status")


@dataclass
class Cluster:
    client: AsyncClient
    kubelet: FakeKubelet
    namespace: str

    async def wait_for(self, predicate, timeout: float = 45.0, interval: float = 0.2):  # noqa: ANN001
        """Poll an async predicate until it returns something truthy; return that."""
        deadline = asyncio.get_running_loop().time() + timeout
        last = None
        while asyncio.get_running_loop().time() < deadline:
            last = await predicate()
            if last:
                return last
            await asyncio.sleep(interval)
        raise AssertionError(f"condition not met in {timeout}s (last: {last!r})")

    async def pods(self, selector: str | None = None) -> list[dict]:
        return (await self.client.list(PODS, self.namespace, label_selector=selector))["items"]


@pytest.fixture
async def cluster(fresh_apiserver, run_id):
    client = AsyncClient(ClusterAccess.from_kubeconfig(str(fresh_apiserver.kubeconfig)))
    names = ["cp-a", "cp-b"]
    for name in names:
        node = node_object(name)
        await client.create(NODES, node)
        await client.patch(NODES, name, {"status": node["status"]}, subresource="status")
    namespace = f"cp-{run_id}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    kubelet = FakeKubelet(client, names)
    args = parse_args(["--kubeconfig", str(fresh_apiserver.kubeconfig), "--node-monitor-grace-period", "3",
                       "--default-toleration-seconds", "2", "--metrics-bind-address", ""])
    tasks = [
        asyncio.create_task(kubelet.run()),
        asyncio.create_task(Scheduler(client).run()),
        asyncio.create_task(run_controllers(args, client)),
    ]
    try:
        yield Cluster(client, kubelet, namespace)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
