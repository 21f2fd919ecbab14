"""From a Kubernetes container spec to the runtime's ContainerConfig.

``command``/``args`` map onto the image Entrypoint/Cmd exactly as Kubernetes
documents (the runtime has Docker's semantics: an entrypoint drops the image
Cmd). Limits become cgroup settings (cpu limit → CFS quota, cpu request →
shares, memory limit → memory.max); the securityContext becomes user, groups,
capabilities and a read-only root.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketch.api.quantity import bytes_value, cpu_millis
from node_agent.env import ConfigError, expand_command
from proto import runtime_pb2 as pb

CPU_PERIOD_US = 100_000
MIN_SHARES = 2

# Runtime labels that tie a runtime container back to its pod and spec.
POD_UID = "io.kubernetes.pod.uid"
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
CONTAINER_NAME = "io.kubernetes.container.name"
RESTART_COUNT = "io.kubernetes.container.restartCount"
CONTAINER_HASH = "io.kubernetes.container.hash"
INIT_CONTAINER = "io.ketch.container.init"


@dataclass
class PodContext:
    """What every container of one pod shares when its config is built."""

    pod: dict
    volume_paths: dict[str, str]
    resolv_conf: str | None
    allow_privileged: bool = False


def resources_for(container: dict) -> pb.Resources:
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    out = pb.Resources()
    if "memory" in limits:
        out.memory_bytes = bytes_value(limits["memory"])
    if "cpu" in limits:
        out.cpu_period_us = CPU_PERIOD_US
        out.cpu_quota_us = max(cpu_millis(limits["cpu"]) * CPU_PERIOD_US // 1000, 1000)
    cpu_request = requests.get("cpu", limits.get("cpu"))
    if cpu_request is not None:
        out.cpu_shares = max(cpu_millis(cpu_request) * 1024 // 1000, MIN_SHARES)
    return out


def user_for(pod: dict, container: dict) -> str:
    """``uid[:gid]`` from the container's securityContext, else the pod's; "" = the image's user."""
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = container.get("securityContext") or {}
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    if uid is None:
        if gid is not None:
            raise ConfigError("runAsGroup needs runAsUser (Ketch does not combine it with the image's user)")
        return ""
    return f"{uid}:{gid}" if gid is not None else str(uid)


def run_as_non_root(pod: dict, container: dict) -> bool:
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = container.get("securityContext") or {}
    return bool(sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")))


def check_non_root(pod: dict, container: dict, image_user: str) -> None:
    """runAsNonRoot: refuse to start a container that would run as uid 0."""
    if not run_as_non_root(pod, container):
        return
    user = user_for(pod, container) or image_user or "0"
    first = user.split(":")[0]
    if first in ("0", "root", ""):
        raise ConfigError("container has runAsNonRoot and image will run as root")
    if not first.isdigit():
        raise ConfigError(f"container has runAsNonRoot and image has non-numeric user ({first}), cannot verify user is non-root")


def mounts_for(container: dict, ctx: PodContext) -> list[pb.Mount]:
    mounts = []
    for vm in container.get("volumeMounts") or []:
        source = ctx.volume_paths.get(vm["name"])
        if source is None:
            raise ConfigError(f'volumeMount "{vm["name"]}": no volume of that name')
        sub = vm.get("subPath")
        if sub:
            if sub.startswith("/") or ".." in sub.split("/"):
                raise ConfigError(f"subPath {sub!r} must be a relative path inside the volume")
            source = f"{source}/{sub}"
        mounts.append(pb.Mount(type="bind", source=source, destination=vm["mountPath"],
                               read_only=bool(vm.get("readOnly"))))
    if ctx.resolv_conf:
        mounts.append(pb.Mount(type="bind", source=ctx.resolv_conf, destination="/etc/resolv.conf", read_only=True))
    return mounts


def container_config(
    container: dict,
    ctx: PodContext,
    env: list[tuple[str, str]],
    *,
    log_path: str,
    restart_count: int,
    spec_hash: str,
    init: bool = False,
) -> pb.ContainerConfig:
    pod = ctx.pod
    meta = pod["metadata"]
    sc = container.get("securityContext") or {}
    privileged = bool(sc.get("privileged"))
    if privileged and not ctx.allow_privileged:
        raise ConfigError("privileged containers are not allowed on this node (start the agent with --allow-privileged)")
    caps = sc.get("capabilities") or {}
    labels = {
        POD_UID: meta["uid"],
        POD_NAME: meta["name"],
        POD_NAMESPACE: meta["namespace"],
        CONTAINER_NAME: container["name"],
        RESTART_COUNT: str(restart_count),
        CONTAINER_HASH: spec_hash,
    }
    if init:
        labels[INIT_CONTAINER] = "true"
    return pb.ContainerConfig(
        name=f"{meta['namespace']}_{meta['name']}_{container['name']}_{restart_count}",
        image=container["image"],
        entrypoint=expand_command(container.get("command") or [], env),
        command=expand_command(container.get("args") or [], env),
        env=[pb.KeyValue(key=k, value=v) for k, v in env],
        working_dir=container.get("workingDir", ""),
        user=user_for(pod, container),
        tty=bool(container.get("tty")),
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        mounts=mounts_for(container, ctx),
        resources=resources_for(container),
        read_only_rootfs=bool(sc.get("readOnlyRootFilesystem")),
        cap_add=[c.upper() for c in caps.get("add") or []],
        cap_drop=[c.upper() for c in caps.get("drop") or []],
        privileged=privileged,
        labels=labels,
        log_path=log_path,
    )
