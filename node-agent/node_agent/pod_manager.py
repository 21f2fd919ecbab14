"""Which pods this node runs: one worker per pod bound here, and cleanup of what no pod owns.

Watches pods with ``fieldSelector=spec.nodeName=<node>``. Anything in the
runtime that carries a pod UID the API no longer knows (a pod deleted while
the agent was down) is stopped and removed, with its volumes.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from ketch.informer import Informer
from node_agent import metrics
from node_agent.container_config import POD_UID
from node_agent.pod_worker import AgentContext, PodWorker
from proto import runtime_pb2 as pb

log = logging.getLogger("ketch.node_agent.pods")

HOUSEKEEPING_INTERVAL = 30.0
PHASE_REPORT_INTERVAL = 5.0


class PodManager:
    def __init__(self, ctx: AgentContext, informer: Informer) -> None:
        self.ctx = ctx
        self.informer = informer
        self.workers: dict[str, PodWorker] = {}
        informer.add_handler(self._added, lambda old, new: self._added(new), self._deleted)

    def _added(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is None or worker.done.is_set():
            if worker is not None:
                return  # finished and cleaned up; the API object is on its way out
            worker = self.workers[uid] = PodWorker(self.ctx, pod)
            worker.start()
        else:
            worker.update(pod)

    def _deleted(self, pod: dict) -> None:
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None and not worker.done.is_set():
            worker.mark_removed()

    def pod_by_uid(self, uid: str) -> dict | None:
        worker = self.workers.get(uid)
        return worker.pod if worker else None

    async def cleanup_orphans(self) -> None:
        known = {p["metadata"]["uid"] for p in self.informer.store.list()}
        sandboxes = await self.ctx.runtime.runtime.ListPodSandbox(pb.ListPodSandboxRequest())
        orphan_uids = {s.labels.get(POD_UID) for s in sandboxes.items if s.labels.get(POD_UID)} - known
        containers = await self.ctx.runtime.runtime.ListContainers(
            pb.ListContainersRequest(filter=pb.ContainerFilter(all=True)))
        orphan_uids |= {c.labels.get(POD_UID) for c in containers.containers if c.labels.get(POD_UID)} - known
        orphan_uids |= set(self.ctx.volumes.known_pod_uids()) - known
        for uid in orphan_uids:
            if uid in self.workers and not self.workers[uid].done.is_set():
                continue
            log.info("cleanup orphaned pod uid=%s", uid)
            for c in containers.containers:
                if c.labels.get(POD_UID) == uid:
                    await self._quietly(self.ctx.runtime.runtime.RemoveContainer(
                        pb.RemoveContainerRequest(container_id=c.id, force=True)))
            for s in sandboxes.items:
                if s.labels.get(POD_UID) == uid:
                    await self._quietly(self.ctx.runtime.runtime.StopPodSandbox(
                        pb.StopPodSandboxRequest(pod_sandbox_id=s.id)))
                    await self._quietly(self.ctx.runtime.runtime.RemovePodSandbox(
                        pb.RemovePodSandboxRequest(pod_sandbox_id=s.id)))
            self.ctx.volumes.cleanup(uid)

    @staticmethod
    async def _quietly(call) -> None:  # noqa: ANN001
        try:
            await call
        except grpc.aio.AioRpcError as err:
            log.info("cleanup call failed: %s", err.details())

    def report_phases(self) -> None:
        """ketch_node_pods{phase}: what the workers last reported, pods being cleaned up excluded."""
        counts = dict.fromkeys(metrics.PHASES, 0)
        for worker in self.workers.values():
            if worker.done.is_set():
                continue
            phase = ((worker.last_status or worker.pod.get("status") or {}).get("phase")) or "Pending"
            counts[phase if phase in counts else "Unknown"] += 1
        for phase, count in counts.items():
            metrics.PODS.labels(phase).set(count)

    async def _report_phases_forever(self) -> None:
        while True:
            self.report_phases()
            await asyncio.sleep(PHASE_REPORT_INTERVAL)

    async def run(self) -> None:
        informer = asyncio.create_task(self.informer.run())
        phases = asyncio.create_task(self._report_phases_forever())
        try:
            await self.informer.wait_synced()
            while True:
                try:
                    await self.cleanup_orphans()
                except grpc.aio.AioRpcError as err:
                    log.warning("housekeeping: runtime error %s", err.details())
                for uid in [u for u, w in self.workers.items()
                            if w.done.is_set() and self.informer.store.get(w.key) is None]:
                    del self.workers[uid]
                await asyncio.sleep(HOUSEKEEPING_INTERVAL)
        finally:
            informer.cancel()
            phases.cancel()
            for worker in self.workers.values():
                if worker.task:
                    worker.task.cancel()
