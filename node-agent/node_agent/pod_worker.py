"""One worker per pod: make the runtime match the pod spec, one step at a time.

Every sync reads the pod as the API has it and the containers as the runtime
has them (by labels: the agent keeps no state of its own), then takes the next
step: sandbox, volumes, init containers in order, containers, restarts with
back-off, liveness kills; and finally patches the pod status if it changed.
Because all state is re-read, a restarted agent adopts running pods without
restarting anything. A pod being deleted is stopped gracefully (preStop hook,
then SIGTERM, SIGKILL at the end of its grace period), cleaned up, and its
deletion confirmed to the apiserver.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.api.timeutil import now_rfc3339
from ketch.client.aio import AsyncClient
from ketch.events import EventRecorder
from node_agent import metrics
from node_agent.container_config import (
    CONTAINER_HASH,
    CONTAINER_NAME,
    POD_NAME,
    POD_NAMESPACE,
    POD_UID,
    RESTART_COUNT,
    PodContext,
    check_non_root,
    container_config,
)
from node_agent.env import ConfigError, resolve_env
from node_agent.pod_status import ContainerView, PodObservation, Terminated, pod_status
from node_agent.pod_volumes import PodVolumes
from node_agent.probes import ProbeTarget, ProbeWorker, run_probe
from node_agent.resolv_conf import ResolvConfig, pod_resolv_conf
from node_agent.restart_backoff import RestartBackoff
from node_agent.runtime.client import AsyncRuntimeClient
from proto import runtime_pb2 as pb

log = logging.getLogger("ketch.node_agent.pod")

PODS = lookup("", "v1", "pods")
RESYNC_BUSY = 1.0
RESYNC_IDLE = 10.0


@dataclass
class AgentContext:
    """What every pod worker of one agent shares."""

    client: AsyncClient
    runtime: AsyncRuntimeClient
    volumes: PodVolumes
    recorder: EventRecorder
    node_name: str
    host_ip: str
    root: Path
    pod_network: str
    resolv: ResolvConfig
    node_allocatable: dict[str, str] = field(default_factory=dict)
    allow_privileged: bool = False
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    image_backoff: RestartBackoff = field(default_factory=lambda: RestartBackoff(initial=10, maximum=300))

    async def lookup(self, kind: str, namespace: str, name: str) -> dict | None:
        info = lookup("", "v1", kind)
        try:
            return await self.client.get(info, name, namespace)
        except ApiError as err:
            if err.code == 404:
                return None
            raise


def spec_hash(container: dict) -> str:
    """Changes when the container spec changes (an image update restarts the container)."""
    return hashlib.sha256(json.dumps(container, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Instance:
    """One runtime container of a pod container (there may be an exited and a running one)."""

    id: str
    state: int
    restart: int
    hash: str
    status: pb.ContainerStatus | None = None


class PodWorker:
    def __init__(self, ctx: AgentContext, pod: dict) -> None:
        self.ctx = ctx
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        self.removed = False
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.sandbox_id = ""
        self.pod_ip = ""
        self.start_time: str | None = None
        self.probes: dict[tuple[str, str], ProbeWorker] = {}  # (container id, kind) -> worker
        self.readiness: dict[str, bool] = {}  # container id -> ready
        self.startup_gates: dict[str, asyncio.Event] = {}  # container id -> set once its startup probe passed
        self.started_ok: dict[str, bool] = {}  # container id -> startup probe passed
        self.liveness_failed: dict[str, str] = {}  # container id -> message
        self.waiting: dict[str, tuple[str, str]] = {}  # container name -> (reason, message)
        self.last_status: dict | None = None
        self.done = asyncio.Event()

    # -- driving --------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"pod {self.key}")

    def update(self, pod: dict) -> None:
        # The watch echo of our own status patch is the version we already hold: syncing again
        # for it would only repeat the runtime calls (it doubled them while many pods started).
        same = pod["metadata"].get("resourceVersion") == self.pod["metadata"].get("resourceVersion")
        self.pod = pod
        if not same:
            self.wake.set()

    def mark_removed(self) -> None:
        """The pod is gone from the API (deleted while we were away, or force-deleted)."""
        self.removed = True
        self.wake.set()

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            terminating = self.removed or bool(self.pod["metadata"].get("deletionTimestamp"))
            try:
                busy = await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a pod worker never dies; it retries
                log.exception("sync pod=%s failed", self.key)
                busy = True
            metrics.SYNC_SECONDS.labels("terminate" if terminating else "sync").observe(time.perf_counter() - started)
            if self.done.is_set():
                self._stop_probes()
                return
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), RESYNC_BUSY if busy else RESYNC_IDLE)
            except TimeoutError:
                pass

    # -- one sync ---------------------------------------------------------------------

    async def sync(self) -> bool:
        """One step toward the spec; True when another sync should come soon."""
        meta = self.pod["metadata"]
        if self.removed or meta.get("deletionTimestamp"):
            await self.terminate()
            return False
        if (self.pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and self.last_status is None:
            # Finished before this agent (re)started: keep it that way.
            await self._stop_all(grace=0)
            return False
        instances = await self._instances()
        if not await self._ensure_sandbox():
            await self._report(instances, init_done=False, init_failed=False)
            return True
        ctx = await self._pod_context()
        if ctx is None:
            await self._report(instances, init_done=False, init_failed=False)
            return True
        init_done, init_failed, busy = await self._sync_init_containers(ctx, instances)
        if init_done and not init_failed:
            busy |= await self._sync_containers(ctx, instances)
        instances = await self._instances()
        self._sync_probes(instances)
        status = await self._report(instances, init_done=init_done, init_failed=init_failed)
        if status.get("phase") in ("Succeeded", "Failed"):
            self._stop_probes()
            return False
        return busy

    async def _pod_context(self) -> PodContext | None:
        try:
            paths = await self.ctx.volumes.setup(self.pod, self.ctx.lookup, pod_ip=self.pod_ip, host_ip=self.ctx.host_ip,
                                                 node_allocatable=self.ctx.node_allocatable)
        except (ConfigError, OSError) as err:
            for c in self.pod["spec"]["containers"]:
                self.waiting[c["name"]] = ("CreateContainerConfigError", str(err))
            self.ctx.recorder.event(self.pod, "Warning", "FailedMount", str(err))
            return None
        resolv = pod_resolv_conf(self.pod, self.ctx.resolv, self.ctx.volumes.pod_dir(self.uid))
        return PodContext(self.pod, paths, resolv, allow_privileged=self.ctx.allow_privileged)

    async def _instances(self) -> dict[str, list[Instance]]:
        """Runtime containers of this pod by container name, newest restart last."""
        request = pb.ListContainersRequest(filter=pb.ContainerFilter(label_selector={POD_UID: self.uid}, all=True))
        response = await self.ctx.runtime.runtime.ListContainers(request)
        out: dict[str, list[Instance]] = {}
        for c in response.containers:
            name = c.labels.get(CONTAINER_NAME, "")
            out.setdefault(name, []).append(
                Instance(c.id, c.state, int(c.labels.get(RESTART_COUNT, "0")), c.labels.get(CONTAINER_HASH, ""))
            )
        for items in out.values():
            items.sort(key=lambda i: i.restart)
            for inst in items[-2:]:
                inst.status = (await self.ctx.runtime.runtime.ContainerStatus(
                    pb.ContainerStatusRequest(container_id=inst.id))).status
        return out

    async def _ensure_sandbox(self) -> bool:
        response = await self.ctx.runtime.runtime.ListPodSandbox(
            pb.ListPodSandboxRequest(label_selector={POD_UID: self.uid}))
        ready = [s for s in response.items if s.state == pb.SANDBOX_READY]
        if ready:
            sandbox = ready[0]
        else:
            meta, spec = self.pod["metadata"], self.pod["spec"]
            ports = [
                pb.PortMapping(protocol=p.get("protocol", "TCP").lower(), container_port=int(p["containerPort"]),
                               host_port=int(p["hostPort"]), host_ip=p.get("hostIP", ""))
                for c in spec["containers"] for p in c.get("ports") or [] if p.get("hostPort")
            ]
            config = pb.PodSandboxConfig(
                name=meta["name"], namespace=meta["namespace"], uid=self.uid,
                hostname=spec.get("hostname") or meta["name"][:63],
                port_mappings=ports,
                labels={POD_UID: self.uid, POD_NAME: meta["name"], POD_NAMESPACE: meta["namespace"]},
                network="host" if spec.get("hostNetwork") else self.ctx.pod_network,
            )
            try:
                created = await self.ctx.runtime.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))
            except grpc.aio.AioRpcError as err:
                message = err.details() or str(err.code())
                for c in spec["containers"]:
                    self.waiting[c["name"]] = ("ContainerCreating", f"sandbox: {message}")
                self.ctx.recorder.event(self.pod, "Warning", "FailedCreatePodSandBox",
                                        f"Failed to create pod sandbox: {message}")
                return False
            sandbox = (await self.ctx.runtime.runtime.PodSandboxStatus(
                pb.PodSandboxStatusRequest(pod_sandbox_id=created.pod_sandbox_id))).status
            for stale in response.items:  # a broken sandbox is replaced, with its containers
                await self._remove_sandbox(stale.id)
        self.sandbox_id = sandbox.id
        self.pod_ip = sandbox.network.ip if not self.pod["spec"].get("hostNetwork") else self.ctx.host_ip
        if self.start_time is None:
            self.start_time = (self.pod.get("status") or {}).get("startTime") or now_rfc3339()
        return True

    # -- containers ---------------------------------------------------------------------

    async def _sync_init_containers(self, ctx: PodContext, instances: dict) -> tuple[bool, bool, bool]:
        """(all done, failed for good, busy)."""
        policy = self.pod["spec"].get("restartPolicy", "Always")
        for container in self.pod["spec"].get("initContainers") or []:
            latest = (instances.get(container["name"]) or [None])[-1]
            if latest is not None and latest.state == pb.CONTAINER_EXITED:
                if latest.status and latest.status.exit_code == 0:
                    continue
                if policy == "Never":
                    return False, True, False
                await self._restart_with_backoff(ctx, container, latest, init=True)
                return False, False, True
            if latest is not None and latest.state == pb.CONTAINER_RUNNING:
                return False, False, True
            await self._start_container(ctx, container, restart=0 if latest is None else latest.restart + 1,
                                        init=True)
            return False, False, True
        return True, False, False

    async def _sync_containers(self, ctx: PodContext, instances: dict) -> bool:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        busy = False
        for container in self.pod["spec"]["containers"]:
            name = container["name"]
            items = instances.get(name) or []
            latest = items[-1] if items else None
            if latest is None:
                await self._start_container(ctx, container, restart=0)
                busy = True
            elif latest.state == pb.CONTAINER_RUNNING:
                if latest.id in self.liveness_failed:
                    reason = self.liveness_failed.pop(latest.id)
                    self.ctx.recorder.event(self.pod, "Normal", "Killing",
                                            f"Container {name} failed liveness probe, will be restarted")
                    await self._stop_container(latest.id, container, self._grace(), reason)
                    busy = True
                elif latest.hash != spec_hash(container):
                    self.ctx.recorder.event(self.pod, "Normal", "Killing",
                                            f"Container {name} definition changed, will be restarted")
                    await self._stop_container(latest.id, container, self._grace(), "definition changed")
                    busy = True
                else:
                    self.waiting.pop(name, None)
            elif latest.state == pb.CONTAINER_CREATED:
                await self._run_start(ctx, container, latest.id)
                busy = True
            else:  # exited
                code = latest.status.exit_code if latest.status else 1
                if policy == "Always" or (policy == "OnFailure" and code != 0):
                    busy |= await self._restart_with_backoff(ctx, container, latest)
            await self._prune(items)
        return busy

    async def _restart_with_backoff(self, ctx: PodContext, container: dict, latest: Instance, *, init: bool = False) -> bool:
        key = f"{self.uid}/{container['name']}"
        st = latest.status
        ran_for = (st.finished_at - st.started_at) / 1e9 if st and st.finished_at and st.started_at else None
        ready, left = self.ctx.backoff.ready(key, ran_for=ran_for)
        if not ready:
            message = f"back-off {int(left) + 1}s restarting failed container={container['name']} pod={self.pod['metadata']['name']}"
            if self.waiting.get(container["name"], ("",))[0] != "CrashLoopBackOff":
                self.ctx.recorder.event(self.pod, "Warning", "BackOff", "Back-off restarting failed container "
                                        f"{container['name']} in pod {self.pod['metadata']['name']}")
            self.waiting[container["name"]] = ("CrashLoopBackOff", message)
            return True
        self.ctx.backoff.record_restart(key)
        meta = self.pod["metadata"]
        metrics.CONTAINER_RESTARTS.labels(meta["namespace"], meta["name"], container["name"]).inc()
        await self._start_container(ctx, container, restart=latest.restart + 1, init=init)
        return True

    async def _ensure_image(self, container: dict) -> bool:
        image = container["image"]
        policy = container.get("imagePullPolicy", "IfNotPresent")
        try:
            await self.ctx.runtime.images.ImageStatus(pb.ImageStatusRequest(image=image))
            present = True
        except grpc.aio.AioRpcError:
            present = False
        if present and policy != "Always":
            return True
        if not present and policy == "Never":
            self.waiting[container["name"]] = ("ErrImageNeverPull",
                                               f'Container image "{image}" is not present with pull policy of Never')
            return False
        key = f"{self.uid}/{container['name']}/image"
        ready, left = self.ctx.image_backoff.ready(key)
        if not ready and not present:
            self.waiting[container["name"]] = ("ImagePullBackOff", f'Back-off pulling image "{image}"')
            return False
        try:
            self.ctx.recorder.event(self.pod, "Normal", "Pulling", f'Pulling image "{image}"')
            async for _ in self.ctx.runtime.images.PullImage(pb.PullImageRequest(image=image)):
                pass
            self.ctx.recorder.event(self.pod, "Normal", "Pulled", f'Container image "{image}" is present')
            metrics.IMAGE_PULLS.labels("success").inc()
            return True
        except grpc.aio.AioRpcError as err:
            metrics.IMAGE_PULLS.labels("failure").inc()
            if present:  # Always, but no registry reachable: the local copy is what we have
                log.info("pod=%s image=%s pull failed, using the local image: %s", self.key, image, err.details())
                return True
            self.ctx.image_backoff.record_restart(key)
            self.waiting[container["name"]] = ("ErrImagePull", err.details() or str(err.code()))
            self.ctx.recorder.event(self.pod, "Warning", "Failed", f'Failed to pull image "{image}": {err.details()}')
            return False

    async def _start_container(self, ctx: PodContext, container: dict, *, restart: int, init: bool = False) -> None:
        name = container["name"]
        if not await self._ensure_image(container):
            return
        try:
            env = await resolve_env(self.pod, container, self.ctx.lookup, pod_ip=self.pod_ip,
                                    host_ip=self.ctx.host_ip, node_allocatable=self.ctx.node_allocatable)
            image = (await self.ctx.runtime.images.ImageStatus(pb.ImageStatusRequest(image=container["image"]))).image
            image_user = (json.loads(image.config_json or b"{}").get("config") or {}).get("User", "")
            check_non_root(self.pod, container, image_user)
            meta = self.pod["metadata"]
            log_dir = self.ctx.root / "logs" / f"{meta['namespace']}_{meta['name']}_{self.uid}" / name
            log_dir.mkdir(parents=True, exist_ok=True)
            config = container_config(container, ctx, env, log_path=str(log_dir / f"{restart}.log"),
                                      restart_count=restart, spec_hash=spec_hash(container), init=init)
        except ConfigError as err:
            self.waiting[name] = ("CreateContainerConfigError", str(err))
            self.ctx.recorder.event(self.pod, "Warning", "Failed", f"Error: {err}")
            return
        try:
            created = await self.ctx.runtime.runtime.CreateContainer(
                pb.CreateContainerRequest(pod_sandbox_id=self.sandbox_id, config=config))
        except grpc.aio.AioRpcError as err:
            self.waiting[name] = ("CreateContainerError", err.details() or str(err.code()))
            self.ctx.recorder.event(self.pod, "Warning", "Failed", f"Error: {err.details()}")
            return
        self.ctx.recorder.event(self.pod, "Normal", "Created", f"Created container {name}")
        await self._run_start(ctx, container, created.container_id)

    async def _run_start(self, ctx: PodContext, container: dict, container_id: str) -> None:
        name = container["name"]
        try:
            await self.ctx.runtime.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
        except grpc.aio.AioRpcError as err:
            self.waiting[name] = ("RunContainerError", err.details() or str(err.code()))
            self.ctx.recorder.event(self.pod, "Warning", "Failed", f"Error: {err.details()}")
            return
        self.waiting.pop(name, None)
        self.ctx.recorder.event(self.pod, "Normal", "Started", f"Started container {name}")
        post_start = (container.get("lifecycle") or {}).get("postStart")
        if post_start:
            ok, message = await self._run_hook(post_start, container, container_id)
            if not ok:
                self.ctx.recorder.event(self.pod, "Warning", "FailedPostStartHook", message)
                await self._stop_container(container_id, container, self._grace(), "PostStartHookError")

    async def _run_hook(self, hook: dict, container: dict, container_id: str) -> tuple[bool, str]:
        probe = {**hook, "timeoutSeconds": self._grace()}
        if "sleep" in hook:
            await asyncio.sleep(float(hook["sleep"].get("seconds", 0)))
            return True, "ok"
        return await run_probe(probe, self._probe_target(container, container_id))

    async def _stop_container(self, container_id: str, container: dict | None, grace: float, reason: str) -> None:
        pre_stop = ((container or {}).get("lifecycle") or {}).get("preStop")
        started = time.monotonic()
        if pre_stop:
            try:
                await asyncio.wait_for(self._run_hook(pre_stop, container, container_id), grace)
            except TimeoutError:
                pass
        remaining = max(int(grace - (time.monotonic() - started)), 0)
        try:
            await self.ctx.runtime.runtime.StopContainer(
                pb.StopContainerRequest(container_id=container_id, timeout=remaining))
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
        self._stop_probes(container_id)

    async def _prune(self, items: list[Instance]) -> None:
        """Keep the running instance and the last exited one (for lastState); remove older ones."""
        for inst in items[:-2]:
            if inst.state != pb.CONTAINER_RUNNING:
                try:
                    await self.ctx.runtime.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=inst.id))
                except grpc.aio.AioRpcError:
                    pass

    def _grace(self) -> float:
        return float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))

    # -- probes --------------------------------------------------------------------

    def _probe_target(self, container: dict, container_id: str) -> ProbeTarget:
        async def exec_fn(cmd: list[str], timeout: float) -> int:
            response = await self.ctx.runtime.runtime.ExecSync(
                pb.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=max(int(timeout), 1)))
            return response.exit_code

        return ProbeTarget(self.pod_ip, container, exec_fn)

    def _sync_probes(self, instances: dict[str, list[Instance]]) -> None:
        running = {}
        for container in self.pod["spec"]["containers"]:
            items = instances.get(container["name"]) or []
            if items and items[-1].state == pb.CONTAINER_RUNNING:
                running[items[-1].id] = container
        for (cid, kind), worker in list(self.probes.items()):
            if cid not in running:
                worker.stop()
                del self.probes[(cid, kind)]
        for cid, container in running.items():
            gate = None
            if container.get("startupProbe"):
                gate = self.startup_gates.setdefault(cid, asyncio.Event())
                if (cid, "startup") not in self.probes:
                    self._add_probe(cid, container, "startup", container["startupProbe"], None)
            else:
                self.started_ok[cid] = True
            for kind, field_name in (("liveness", "livenessProbe"), ("readiness", "readinessProbe")):
                if container.get(field_name) and (cid, kind) not in self.probes:
                    self._add_probe(cid, container, kind, container[field_name], gate)
            if not container.get("readinessProbe"):
                self.readiness[cid] = self.started_ok.get(cid, False)

    def _add_probe(self, cid: str, container: dict, kind: str, probe: dict, gate: asyncio.Event | None) -> None:
        def on_change(which: str, ok: bool, message: str) -> None:
            if which == "readiness":
                self.readiness[cid] = ok
            elif which == "startup" and ok:
                self.started_ok[cid] = True
                self.startup_gates[cid].set()
            elif not ok:
                self.liveness_failed[cid] = message
            if not ok:
                self.ctx.recorder.event(self.pod, "Warning", "Unhealthy",
                                        f"{which.capitalize()} probe failed: {message}")
                log.info("pod=%s container=%s %s probe failed: %s", self.key, container["name"], which, message)
            self.wake.set()

        worker = ProbeWorker(kind, probe, self._probe_target(container, cid), on_change, gate=gate)
        self.probes[(cid, kind)] = worker
        worker.start()

    def _stop_probes(self, container_id: str | None = None) -> None:
        for (cid, kind), worker in list(self.probes.items()):
            if container_id is None or cid == container_id:
                worker.stop()
                del self.probes[(cid, kind)]

    # -- status ---------------------------------------------------------------------

    def _view(self, container: dict, items: list[Instance]) -> ContainerView:
        view = ContainerView(name=container["name"], image=container["image"])
        if container["name"] in self.waiting:
            view.waiting_reason, view.waiting_message = self.waiting[container["name"]]
        if not items:
            return view
        latest = items[-1]
        st = latest.status
        view.container_id = latest.id
        view.restart_count = latest.restart
        if st is not None:
            view.image_id = st.image_ref
        if latest.state == pb.CONTAINER_RUNNING and st is not None:
            view.running_since = st.started_at or st.created_at
            view.ready = self.readiness.get(latest.id, False)
            view.started = self.started_ok.get(latest.id, False)
            view.waiting_reason = ""
        elif latest.state == pb.CONTAINER_EXITED and st is not None:
            view.terminated = Terminated(st.exit_code, st.reason, st.started_at, st.finished_at, latest.id, st.message)
        previous = items[-2] if len(items) > 1 else None
        if previous is not None and previous.status is not None and previous.state == pb.CONTAINER_EXITED:
            p = previous.status
            view.last_terminated = Terminated(p.exit_code, p.reason, p.started_at, p.finished_at, previous.id)
        if view.terminated is not None and view.waiting_reason:
            # Waiting to restart: the exited instance becomes lastState.
            view.last_terminated = view.terminated
        return view

    async def _report(self, instances: dict[str, list[Instance]], *, init_done: bool, init_failed: bool) -> dict:
        spec = self.pod["spec"]
        obs = PodObservation(
            pod=self.pod,
            init_views=[self._view(c, instances.get(c["name"]) or []) for c in spec.get("initContainers") or []],
            views=[self._view(c, instances.get(c["name"]) or []) for c in spec["containers"]],
            init_done=init_done, init_failed=init_failed, pod_ip=self.pod_ip, host_ip=self.ctx.host_ip,
            start_time=self.start_time, sandbox_ready=bool(self.sandbox_id),
        )
        previous = self.pod.get("status") or {}
        status = pod_status(obs, previous, now_rfc3339())
        if status != self.last_status and status != {k: previous.get(k) for k in status}:
            meta = self.pod["metadata"]
            try:
                updated = await self.ctx.client.patch(PODS, meta["name"], {"status": status}, meta["namespace"],
                                                      subresource="status")
                self.pod = updated
            except ApiError as err:
                if err.code != 404:
                    raise
        self.last_status = status
        return status

    # -- termination ------------------------------------------------------------------

    async def terminate(self) -> None:
        meta = self.pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        grace = float(grace if grace is not None else self._grace())
        if not self.removed:
            self.ctx.recorder.event(self.pod, "Normal", "Killing", "Stopping pod")
        await self._stop_all(grace)
        response = await self.ctx.runtime.runtime.ListPodSandbox(
            pb.ListPodSandboxRequest(label_selector={POD_UID: self.uid}))
        for sandbox in response.items:
            await self._remove_sandbox(sandbox.id)
        self.ctx.volumes.cleanup(self.uid)
        self.ctx.backoff.forget_prefix(f"{self.uid}/")
        if not self.removed:
            try:
                await self.ctx.client.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=0,
                                             preconditions={"uid": self.uid})
            except ApiError as err:
                if err.code not in (404, 409):
                    raise
        log.info("pod=%s terminated and cleaned up", self.key)
        self.done.set()

    async def _stop_all(self, grace: float) -> None:
        instances = await self._instances()
        specs = {c["name"]: c for c in (self.pod["spec"].get("initContainers") or []) + self.pod["spec"]["containers"]}
        running = [(i, specs.get(name)) for name, items in instances.items() for i in items
                   if i.state in (pb.CONTAINER_RUNNING, pb.CONTAINER_CREATED)]
        await asyncio.gather(*(self._stop_container(i.id, spec, grace, "pod deleted") for i, spec in running))
        self._stop_probes()

    async def _remove_sandbox(self, sandbox_id: str) -> None:
        try:
            await self.ctx.runtime.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
            await self.ctx.runtime.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise

