"""The node as the cluster sees it: registration, status, and the Lease heartbeat.

The agent registers its Node once (create, or adopt an existing one of the
same name), then renews a Lease in ``kube-node-lease`` every
``lease_renew_interval`` seconds: that is the cheap heartbeat the node
lifecycle controller watches. The full status (conditions, capacity, images)
is patched only when it changed, or at least every ``status_report_interval``
so ``lastHeartbeatTime`` stays fresh, as the kubelet does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import shutil
import socket
from dataclasses import dataclass, field

from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.api.timeutil import format_rfc3339, format_rfc3339_micro, now
from ketch.client.aio import AsyncClient

log = logging.getLogger("ketch.node_agent.status")

NODES = lookup("", "v1", "nodes")
LEASES = lookup("coordination.k8s.io", "v1", "leases")
NAMESPACES = lookup("", "v1", "namespaces")
LEASE_NAMESPACE = "kube-node-lease"
AGENT_VERSION = "v1.32.0-ketch.0.1.0"


@dataclass
class NodeConfig:
    name: str
    internal_ip: str
    agent_port: int = 10250
    max_pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict] = field(default_factory=list)
    reserved_cpu_millis: int = 0
    reserved_memory_bytes: int = 0
    annotations: dict[str, str] = field(default_factory=dict)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def mem_info() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            out[key] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    return out


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def default_internal_ip() -> str:
    """The address the host would use to reach the outside: no packet is sent (UDP connect)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, nothing is sent
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def capacity(config: NodeConfig, root_dir: str) -> tuple[dict[str, str], dict[str, str]]:
    cpus = os.cpu_count() or 1
    memory = mem_info().get("MemTotal", 0)
    disk = shutil.disk_usage(root_dir).total if os.path.exists(root_dir) else 0
    cap = {
        "cpu": str(cpus),
        "memory": f"{memory // 1024}Ki",
        "pods": str(config.max_pods),
        "ephemeral-storage": f"{disk // 1024}Ki",
    }
    alloc_cpu = max(cpus * 1000 - config.reserved_cpu_millis, 0)
    alloc = {
        "cpu": f"{alloc_cpu}m" if alloc_cpu % 1000 else str(alloc_cpu // 1000),
        "memory": f"{max(memory - config.reserved_memory_bytes, 0) // 1024}Ki",
        "pods": str(config.max_pods),
        "ephemeral-storage": cap["ephemeral-storage"],
    }
    return cap, alloc


def pressure_conditions(root_dir: str) -> dict[str, tuple[bool, str, str]]:
    """type -> (under pressure, reason, message), with the kubelet's default eviction thresholds."""
    mem = mem_info()
    available = mem.get("MemAvailable", 0)
    disk = shutil.disk_usage(root_dir if os.path.exists(root_dir) else "/")
    pid_max = int(_read("/proc/sys/kernel/pid_max") or 4194304)
    pids = sum(1 for d in os.listdir("/proc") if d.isdigit())
    return {
        "MemoryPressure": (available < 100 * 1024 * 1024, "KubeletHasInsufficientMemory" if available < 100 * 1024 * 1024
                           else "KubeletHasSufficientMemory", f"{available // (1024 * 1024)}Mi available"),
        "DiskPressure": (disk.free / disk.total < 0.10, "KubeletHasDiskPressure" if disk.free / disk.total < 0.10
                         else "KubeletHasNoDiskPressure", f"{disk.free * 100 // disk.total}% free"),
        "PIDPressure": (pids > 0.9 * pid_max, "KubeletHasInsufficientPID" if pids > 0.9 * pid_max
                        else "KubeletHasSufficientPID", f"{pids} of {pid_max} pids"),
    }


class NodeStatusReporter:
    def __init__(
        self,
        client: AsyncClient,
        config: NodeConfig,
        *,
        root_dir: str,
        runtime_ready,  # noqa: ANN001 - async () -> (bool, str)
        list_images,  # noqa: ANN001 - async () -> list[dict]
        lease_duration: int = 40,
        lease_renew_interval: float = 10.0,
        status_report_interval: float = 60.0,
    ) -> None:
        self.client = client
        self.config = config
        self.root_dir = root_dir
        self.runtime_ready = runtime_ready
        self.list_images = list_images
        self.lease_duration = lease_duration
        self.lease_renew_interval = lease_renew_interval
        self.status_report_interval = status_report_interval
        self.node: dict | None = None
        self._last_reported: dict | None = None
        self._last_report_at = 0.0
        self.status_changed = asyncio.Event()

    # -- registration -----------------------------------------------------------

    async def register(self) -> dict:
        """Create our Node, or take over the one already there (after a restart)."""
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.config.name,
                "labels": {
                    "kubernetes.io/hostname": self.config.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": _arch(),
                    **self.config.labels,
                },
                "annotations": dict(self.config.annotations),
            },
            "spec": {"taints": self.config.taints} if self.config.taints else {},
            "status": await self._status({}),
        }
        while True:
            try:
                self.node = await self.client.create(NODES, body)
                log.info("registered node=%s", self.config.name)
                break
            except ApiError as err:
                if err.code != 409:
                    log.warning("register node=%s error=%r", self.config.name, err)
                    await asyncio.sleep(2)
                    continue
            # Already registered (agent restart): keep its spec, refresh labels and annotations.
            patch = {"metadata": {"labels": body["metadata"]["labels"], "annotations": body["metadata"]["annotations"]}}
            self.node = await self.client.patch(NODES, self.config.name, patch)
            log.info("node=%s already registered: resuming", self.config.name)
            break
        await self.report_status(force=True)
        await self._ensure_lease_namespace()
        return self.node

    async def _ensure_lease_namespace(self) -> None:
        try:
            await self.client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": LEASE_NAMESPACE}})
        except ApiError as err:
            if err.code != 409:
                raise

    # -- status -----------------------------------------------------------------

    async def _status(self, previous: dict) -> dict:
        cap, alloc = capacity(self.config, self.root_dir)
        stamp = format_rfc3339(now())
        ok, message = await self.runtime_ready()
        old_conditions = {c["type"]: c for c in previous.get("conditions") or []}
        wanted = {
            "Ready": (ok, "KubeletReady" if ok else "KubeletNotReady",
                      "ketch node agent is posting ready status" if ok else message),
        }
        for type_, (pressure, reason, msg) in pressure_conditions(self.root_dir).items():
            wanted[type_] = (not pressure, reason, msg)
        conditions = []
        for type_ in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready"):
            good, reason, msg = wanted[type_]
            status = ("True" if good else "False") if type_ == "Ready" else ("False" if good else "True")
            old = old_conditions.get(type_) or {}
            conditions.append({
                "type": type_, "status": status, "reason": reason, "message": msg,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": old.get("lastTransitionTime", stamp) if old.get("status") == status else stamp,
            })
        images = []
        for image in await self.list_images():
            names = list(image.get("repo_tags") or []) + list(image.get("repo_digests") or [])
            if names:
                images.append({"names": names, "sizeBytes": int(image.get("size") or 0)})
        uname = platform.uname()
        return {
            "capacity": cap,
            "allocatable": alloc,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": self.config.internal_ip},
                {"type": "Hostname", "address": self.config.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.config.agent_port}},
            "nodeInfo": {
                "machineID": _read("/etc/machine-id"),
                "systemUUID": _read("/sys/class/dmi/id/product_uuid") or _read("/etc/machine-id"),
                "bootID": _read("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": uname.release,
                "osImage": os_image(),
                "containerRuntimeVersion": "ketch://0.1.0",
                "kubeletVersion": AGENT_VERSION,
                "kubeProxyVersion": AGENT_VERSION,
                "operatingSystem": "linux",
                "architecture": _arch(),
            },
            "images": images[:50],
        }

    async def report_status(self, *, force: bool = False) -> None:
        loop_time = asyncio.get_running_loop().time()
        previous = ((self.node or {}).get("status")) or {}
        status = await self._status(previous)
        comparable = _without_heartbeats(status)
        due = loop_time - self._last_report_at >= self.status_report_interval
        if not force and not due and comparable == self._last_reported:
            return
        try:
            self.node = await self.client.patch(NODES, self.config.name, {"status": status}, subresource="status")
        except ApiError as err:
            if err.code == 404:  # someone deleted our Node: register again
                await self.register()
                return
            raise
        self._last_reported = comparable
        self._last_report_at = loop_time

    async def renew_lease(self) -> None:
        stamp = format_rfc3339_micro(now())
        try:
            lease = await self.client.get(LEASES, self.config.name, LEASE_NAMESPACE)
        except ApiError as err:
            if err.code != 404:
                raise
            node_uid = (self.node or {}).get("metadata", {}).get("uid")
            owner = ([{"apiVersion": "v1", "kind": "Node", "name": self.config.name, "uid": node_uid}]
                     if node_uid else [])
            await self.client.create(LEASES, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.config.name, "namespace": LEASE_NAMESPACE, "ownerReferences": owner},
                "spec": {"holderIdentity": self.config.name, "leaseDurationSeconds": self.lease_duration,
                         "renewTime": stamp},
            })
            return
        lease["spec"].update(holderIdentity=self.config.name, leaseDurationSeconds=self.lease_duration,
                             renewTime=stamp)
        await self.client.update(LEASES, lease)

    async def run(self) -> None:
        """Heartbeat forever: the Lease often, the status when it changes."""
        while True:
            try:
                await self.renew_lease()
                await self.report_status()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - keep beating whatever happened
                log.warning("heartbeat node=%s error=%r", self.config.name, err)
            self.status_changed.clear()
            try:
                await asyncio.wait_for(self.status_changed.wait(), self.lease_renew_interval)
            except TimeoutError:
                pass


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _without_heartbeats(status: dict) -> dict:
    return {**status, "conditions": [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                                     for c in status.get("conditions") or []]}
