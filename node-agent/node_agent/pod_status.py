"""A pod's status as the kubelet reports it, computed from what the runtime says.

Pure functions: the pod worker gathers the observations (``ContainerView``s)
and these turn them into containerStatuses, conditions and the phase, with
the kubelet's rules (a container waiting after a previous termination counts
as stopped, so a pod in CrashLoopBackOff is Running, not Pending).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ketch.api.quantity import parse_quantity
from ketch.api.timeutil import format_rfc3339


def ns_to_rfc3339(ns: int) -> str | None:
    if not ns:
        return None
    from datetime import UTC, datetime

    return format_rfc3339(datetime.fromtimestamp(ns / 1e9, UTC))


@dataclass
class Terminated:
    exit_code: int
    reason: str
    started_at: int
    finished_at: int
    container_id: str
    message: str = ""

    def as_state(self) -> dict:
        out = {"exitCode": self.exit_code, "reason": self.reason or ("Completed" if self.exit_code == 0 else "Error"),
               "startedAt": ns_to_rfc3339(self.started_at), "finishedAt": ns_to_rfc3339(self.finished_at),
               "containerID": f"ketch://{self.container_id}"}
        if self.message:
            out["message"] = self.message
        return out


@dataclass
class ContainerView:
    """What the agent knows of one container of the pod spec."""

    name: str
    image: str
    image_id: str = ""
    container_id: str = ""
    restart_count: int = 0
    running_since: int = 0                 # unix ns, when running
    terminated: Terminated | None = None   # the current instance exited
    last_terminated: Terminated | None = None
    waiting_reason: str = ""               # ContainerCreating, CrashLoopBackOff, ErrImagePull, ...
    waiting_message: str = ""
    ready: bool = False
    started: bool = False                  # startup probe passed (or none)


def container_status(view: ContainerView) -> dict:
    if view.running_since and view.terminated is None:
        state = {"running": {"startedAt": ns_to_rfc3339(view.running_since)}}
    elif view.terminated is not None and not view.waiting_reason:
        state = {"terminated": view.terminated.as_state()}
    else:
        waiting = {"reason": view.waiting_reason or "ContainerCreating"}
        if view.waiting_message:
            waiting["message"] = view.waiting_message
        state = {"waiting": waiting}
    status = {
        "name": view.name,
        "state": state,
        "lastState": {"terminated": view.last_terminated.as_state()} if view.last_terminated else {},
        "ready": bool(view.ready and "running" in state),
        "restartCount": view.restart_count,
        "image": view.image,
        "imageID": view.image_id,
        "started": bool(view.started and "running" in state),
    }
    if view.container_id:
        status["containerID"] = f"ketch://{view.container_id}"
    return status


def phase(restart_policy: str, init_done: bool, init_failed: bool, statuses: list[dict]) -> str:
    if init_failed:
        return "Failed"
    if not init_done:
        return "Pending"
    waiting = running = stopped = succeeded = 0
    for s in statuses:
        state = s["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"]["exitCode"] == 0:
                succeeded += 1
        elif s.get("lastState", {}).get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if restart_policy == "Never" else "Running"
    return "Pending"


def condition(type_: str, ok: bool, previous: dict[str, dict], stamp: str, reason: str = "", message: str = "") -> dict:
    status = "True" if ok else "False"
    old = previous.get(type_) or {}
    cond = {
        "type": type_,
        "status": status,
        "lastTransitionTime": old.get("lastTransitionTime", stamp) if old.get("status") == status else stamp,
    }
    if reason and not ok:
        cond["reason"] = reason
    if message and not ok:
        cond["message"] = message
    return cond


def qos_class(pod: dict) -> str:
    """Guaranteed, Burstable or BestEffort, as Kubernetes classifies pods."""
    containers = (pod.get("spec") or {}).get("containers") or []
    any_set, guaranteed = False, True
    for c in containers:
        res = c.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        if limits or requests:
            any_set = True
        for name in ("cpu", "memory"):
            limit = limits.get(name)
            request = requests.get(name, limit)
            if limit is None or request is None or parse_quantity(limit) != parse_quantity(request):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


@dataclass
class PodObservation:
    pod: dict
    init_views: list[ContainerView] = field(default_factory=list)
    views: list[ContainerView] = field(default_factory=list)
    init_done: bool = False
    init_failed: bool = False
    pod_ip: str = ""
    host_ip: str = ""
    start_time: str | None = None
    sandbox_ready: bool = False


def pod_status(obs: PodObservation, previous: dict, stamp: str) -> dict:
    spec = obs.pod.get("spec") or {}
    statuses = [container_status(v) for v in obs.views]
    init_statuses = [container_status(v) for v in obs.init_views]
    prev_conditions = {c.get("type"): c for c in previous.get("conditions") or []}
    the_phase = phase(spec.get("restartPolicy", "Always"), obs.init_done, obs.init_failed, statuses)
    containers_ready = bool(statuses) and all(s["ready"] for s in statuses)
    not_ready = [s["name"] for s in statuses if not s["ready"]]
    unready_msg = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else ""
    pending_init = [s["name"] for s in init_statuses if "terminated" not in s["state"]
                    or s["state"]["terminated"]["exitCode"] != 0]
    terminal = the_phase in ("Succeeded", "Failed")
    conditions = [
        condition("PodReadyToStartContainers", obs.sandbox_ready, prev_conditions, stamp),
        condition("Initialized", obs.init_done, prev_conditions, stamp, "ContainersNotInitialized",
                  f"containers with incomplete status: [{' '.join(pending_init)}]"),
        condition("Ready", containers_ready and not terminal, prev_conditions, stamp,
                  "PodCompleted" if terminal else "ContainersNotReady", unready_msg),
        condition("ContainersReady", containers_ready and not terminal, prev_conditions, stamp,
                  "PodCompleted" if terminal else "ContainersNotReady", unready_msg),
        condition("PodScheduled", True, prev_conditions, stamp),
    ]
    status = {
        "phase": the_phase,
        "conditions": conditions,
        "hostIP": obs.host_ip,
        "hostIPs": [{"ip": obs.host_ip}] if obs.host_ip else [],
        "containerStatuses": statuses,
        "qosClass": qos_class(obs.pod),
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    if obs.pod_ip:
        status["podIP"] = obs.pod_ip
        status["podIPs"] = [{"ip": obs.pod_ip}]
    if obs.start_time:
        status["startTime"] = obs.start_time
    return status
