"""From a request's namespace/pod/container to runtime ids: containers and the pod's netns.

Everything is found by the labels the pod workers put on runtime objects (pod UID,
names, restart count), so the answer is right after an agent restart too. When the
pod manager knows the pod, its UID picks between a pod and an older namesake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node_agent.container_config import (
    CONTAINER_NAME,
    POD_NAME,
    POD_NAMESPACE,
    POD_UID,
    RESTART_COUNT,
)
from proto import runtime_pb2 as pb


class TargetError(Exception):
    """What the caller asked for is not here; `code` is the HTTP status to answer."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


@dataclass
class ContainerRef:
    container_id: str
    state: int
    restart: int


def pod_uid(pod_manager: Any, namespace: str, name: str) -> str | None:
    """The UID of the pod the agent runs under that name, if it knows one."""
    workers = getattr(pod_manager, "workers", None) or {}
    for uid, worker in list(workers.items()):
        meta = (getattr(worker, "pod", None) or {}).get("metadata") or {}
        if meta.get("namespace") == namespace and meta.get("name") == name:
            return uid
    return None


def _selector(pod_manager: Any, namespace: str, pod: str) -> dict[str, str]:
    uid = pod_uid(pod_manager, namespace, pod)
    return {POD_UID: uid} if uid else {POD_NAMESPACE: namespace, POD_NAME: pod}


async def instances(runtime: Any, pod_manager: Any, namespace: str, pod: str, container: str) -> list[ContainerRef]:
    """Every runtime instance of the container, oldest restart first."""
    selector = {**_selector(pod_manager, namespace, pod), CONTAINER_NAME: container}
    listing = await runtime.runtime.ListContainers(
        pb.ListContainersRequest(filter=pb.ContainerFilter(label_selector=selector, all=True)))
    refs = [ContainerRef(c.id, c.state, int(c.labels.get(RESTART_COUNT, "0") or 0)) for c in listing.containers]
    refs.sort(key=lambda r: (r.restart, r.container_id))
    return refs


async def container(runtime: Any, pod_manager: Any, namespace: str, pod: str, name: str, *,
                    previous: bool = False, running: bool = False) -> ContainerRef:
    """The current (or, with previous, the prior) instance; 404/400 TargetError when there is none."""
    refs = await instances(runtime, pod_manager, namespace, pod, name)
    if previous:
        if len(refs) < 2:
            raise TargetError(400, "BadRequest",
                              f'previous terminated container "{name}" in pod "{pod}" not found')
        return refs[-2]
    if not refs:
        raise TargetError(404, "NotFound", f'container "{name}" in pod "{pod}" is not available on this node')
    ref = refs[-1]
    if running and ref.state != pb.CONTAINER_RUNNING:
        raise TargetError(400, "BadRequest", f'container "{name}" in pod "{pod}" is not running')
    return ref


async def netns_path(runtime: Any, pod_manager: Any, namespace: str, pod: str) -> str:
    """The pod sandbox's network namespace ("" for a host-network pod)."""
    listing = await runtime.runtime.ListPodSandbox(
        pb.ListPodSandboxRequest(label_selector=_selector(pod_manager, namespace, pod)))
    ready = [s for s in listing.items if s.state == pb.SANDBOX_READY]
    if not ready:
        raise TargetError(404, "NotFound", f'pod "{pod}" in namespace "{namespace}" has no running sandbox here')
    ready.sort(key=lambda s: s.created_at)
    return ready[-1].netns_path
