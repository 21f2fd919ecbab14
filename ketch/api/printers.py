"""Server-side `Table` output (meta.k8s.io/v1), so `kubectl get` prints what it prints
against Kubernetes.

Columns and cell contents follow kube-apiserver's printers
(pkg/printers/internalversion): the server always renders the wide form and
marks wide-only columns with priority 1; kubectl hides them unless `-o wide`.
Every function here is a pure function of the objects (and of `now`, for
ages), so the CLI can also print locally.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ketch.api.selectors import LabelSelector, SelectorError
from ketch.api.timeutil import human_duration, parse_rfc3339
from ketch.api.timeutil import now as utc_now


class _ResourceLike(Protocol):
    group: str
    kind: str


NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
CREATED_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
CONTAINERS_DOC = "Names of each container in the template."
IMAGES_DOC = "Images referenced by each container in the template."
SELECTOR_DOC = (
    "A label query over pods that should match the replica count. It must match the pod "
    "template's labels."
)

NONE = "<none>"
UNKNOWN = "<unknown>"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    priority: int = 0
    format: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


NAME = Column("Name", "string", NAME_DOC, format="name")
AGE = Column("Age", "string", CREATED_DOC)
WIDE_TEMPLATE = (
    Column("Containers", "string", CONTAINERS_DOC, 1),
    Column("Images", "string", IMAGES_DOC, 1),
    Column("Selector", "string", SELECTOR_DOC, 1),
)

_Cells = Callable[[Mapping[str, Any], datetime], list[Any]]


@dataclass(frozen=True)
class _Printer:
    columns: tuple[Column, ...]
    cells: _Cells
    conditions: Callable[[Mapping[str, Any]], list[dict]] | None = None


# --- small helpers -------------------------------------------------------------------


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    node = obj
    for part in path:
        if not isinstance(node, Mapping):
            return default
        node = node.get(part)
        if node is None:
            return default
    return node


def _name(obj: Mapping[str, Any]) -> str:
    return _get(obj, "metadata", "name", default="")


def _since(timestamp: Any, at: datetime) -> str:
    """translateTimestampSince: `<unknown>` for a missing time."""
    if not timestamp:
        return UNKNOWN
    try:
        return human_duration((at - parse_rfc3339(timestamp)).total_seconds())
    except ValueError:
        return UNKNOWN


def _age(obj: Mapping[str, Any], at: datetime) -> str:
    return _since(_get(obj, "metadata", "creationTimestamp"), at)


def format_labels(labels: Mapping[str, str] | None) -> str:
    """labels.FormatLabels: sorted `k=v` joined by commas, `<none>` when empty."""
    if not labels:
        return NONE
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """metav1.FormatLabelSelector: canonical selector text, `<none>` when empty."""
    try:
        text = str(LabelSelector.from_dict(selector))
    except SelectorError:
        return "<error>"
    return text or NONE


def _containers_cells(template_spec: Any) -> tuple[str, str]:
    containers = _get(template_spec, "containers", default=[]) or []
    names = ",".join(str(c.get("name", "")) for c in containers if isinstance(c, Mapping))
    images = ",".join(str(c.get("image", "")) for c in containers if isinstance(c, Mapping))
    return names, images


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _template_wide(obj: Mapping[str, Any], selector_text: str) -> list[Any]:
    names, images = _containers_cells(_get(obj, "spec", "template", "spec"))
    return [names, images, selector_text]


# --- pods ----------------------------------------------------------------------------

_POD_SUCCEEDED = [
    {
        "type": "Completed",
        "status": "True",
        "reason": "Succeeded",
        "message": "The pod has completed successfully.",
    }
]
_POD_FAILED = [
    {"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}
]


def _condition_true(conditions: Any, ctype: str) -> bool:
    return any(
        isinstance(c, Mapping) and c.get("type") == ctype and c.get("status") == "True"
        for c in conditions or ()
    )


def _later(a: str, b: Any) -> str:
    """The later of two RFC 3339 timestamps (either may be empty)."""
    if not b:
        return a
    if not a:
        return b
    try:
        return b if parse_rfc3339(b) > parse_rfc3339(a) else a
    except ValueError:
        return a


def pod_status_text(pod: Mapping[str, Any]) -> tuple[str, int, int, int, str]:
    """(STATUS reason, ready containers, total containers, restarts, last restart time),
    computed the way kubectl's pod printer does."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    init_specs = {
        c.get("name"): c for c in spec.get("initContainers") or () if isinstance(c, Mapping)
    }
    restartable = {n for n, c in init_specs.items() if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or ()) + len(restartable)
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart = ""
    sidecar_last_restart = ""

    reason = status.get("reason") or status.get("phase") or ""
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    init_statuses = status.get("initContainerStatuses") or ()
    for index, cs in enumerate(init_statuses):
        count = _int(cs.get("restartCount"))
        restarts += count
        finished = _get(cs, "lastState", "terminated", "finishedAt", default="")
        last_restart = _later(last_restart, finished)
        is_sidecar = cs.get("name") in restartable
        if is_sidecar:
            sidecar_restarts += count
            sidecar_last_restart = _later(sidecar_last_restart, finished)
        state = cs.get("state") or {}
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if terminated is not None and _int(terminated.get("exitCode")) == 0:
            continue
        if is_sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif _int(terminated.get("signal")):
                reason = f"Init:Signal:{_int(terminated.get('signal'))}"
            else:
                reason = f"Init:ExitCode:{_int(terminated.get('exitCode'))}"
        elif (
            waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing"
        ):
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status.get("conditions"), "Initialized"):
        restarts = sidecar_restarts
        last_restart = sidecar_last_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or ()):
            restarts += _int(cs.get("restartCount"))
            last_restart = _later(
                last_restart, _get(cs, "lastState", "terminated", "finishedAt", default="")
            )
            state = cs.get("state") or {}
            waiting = state.get("waiting")
            terminated = state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if _int(terminated.get("signal")):
                    reason = f"Signal:{_int(terminated.get('signal'))}"
                else:
                    reason = f"ExitCode:{_int(terminated.get('exitCode'))}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status.get("conditions"), "Ready") else "NotReady"

    if _get(pod, "metadata", "deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, total, restarts, last_restart


def _pod_cells(pod: Mapping[str, Any], at: datetime) -> list[Any]:
    reason, ready, total, restarts, last_restart = pod_status_text(pod)
    restarts_text = str(restarts)
    if restarts and last_restart:
        restarts_text = f"{restarts} ({_since(last_restart, at)} ago)"
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    ips = status.get("podIPs") or ()
    pod_ip = (
        (ips[0].get("ip") if ips and isinstance(ips[0], Mapping) else "")
        or status.get("podIP")
        or NONE
    )
    gates = spec.get("readinessGates") or ()
    gates_text = NONE
    if gates:
        by_type = {
            c.get("type"): c for c in status.get("conditions") or () if isinstance(c, Mapping)
        }
        true_count = sum(
            1 for g in gates if (by_type.get(g.get("conditionType")) or {}).get("status") == "True"
        )
        gates_text = f"{true_count}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_text,
        _age(pod, at),
        pod_ip,
        spec.get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE,
        gates_text,
    ]


def _pod_conditions(pod: Mapping[str, Any]) -> list[dict]:
    phase = _get(pod, "status", "phase")
    if phase == "Succeeded":
        return _POD_SUCCEEDED
    if phase == "Failed":
        return _POD_FAILED
    return []


_POD = _Printer(
    (
        NAME,
        Column(
            "Ready", "string", "The aggregate readiness state of this pod for accepting traffic."
        ),
        Column("Status", "string", "The aggregate status of the containers in this pod."),
        Column(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the "
            "last container in this pod has restarted.",
        ),
        AGE,
        Column(
            "IP",
            "string",
            "podIP address allocated to the pod. Routable at least within the cluster.",
            1,
        ),
        Column("Node", "string", "NodeName indicates in which node this pod is scheduled.", 1),
        Column(
            "Nominated Node",
            "string",
            "nominatedNodeName is set when this pod preempts other pods on the node.",
            1,
        ),
        Column(
            "Readiness Gates",
            "string",
            "If specified, all readiness gates will be evaluated for pod readiness.",
            1,
        ),
    ),
    _pod_cells,
    _pod_conditions,
)


# --- nodes, namespaces, services, endpoints, config -----------------------------------


def _node_cells(node: Mapping[str, Any], at: datetime) -> list[Any]:
    status = node.get("status") or {}
    states = []
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Ready":
            states = ["Ready" if cond.get("status") == "True" else "NotReady"]
    if not states:
        states = ["Unknown"]
    if _get(node, "spec", "unschedulable"):
        states.append("SchedulingDisabled")
    roles = set()
    for key, value in (_get(node, "metadata", "labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/") :]:
            roles.add(key[len("node-role.kubernetes.io/") :])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    info = status.get("nodeInfo") or {}

    def address(kind: str) -> str:
        for entry in status.get("addresses") or ():
            if entry.get("type") == kind:
                return entry.get("address", "")
        return NONE

    return [
        _name(node),
        ",".join(states),
        ",".join(sorted(roles)) or NONE,
        _age(node, at),
        info.get("kubeletVersion", ""),
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage") or UNKNOWN,
        info.get("kernelVersion") or UNKNOWN,
        info.get("containerRuntimeVersion") or UNKNOWN,
    ]


_NODE = _Printer(
    (
        NAME,
        Column("Status", "string", "The status of the node"),
        Column("Roles", "string", "The roles of the node"),
        AGE,
        Column("Version", "string", "Kubelet Version reported by the node."),
        Column("Internal-IP", "string", "List of addresses reachable to the node.", 1),
        Column("External-IP", "string", "List of addresses reachable to the node.", 1),
        Column("OS-Image", "string", "OS Image reported by the node from /etc/os-release.", 1),
        Column(
            "Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r'.", 1
        ),
        Column("Container-Runtime", "string", "ContainerRuntime Version reported by the node.", 1),
    ),
    _node_cells,
)

_NAMESPACE = _Printer(
    (NAME, Column("Status", "string", "The status of the namespace"), AGE),
    lambda o, at: [_name(o), _get(o, "status", "phase", default=""), _age(o, at)],
)


def _service_external_ip(svc: Mapping[str, Any]) -> str:
    spec = svc.get("spec") or {}
    external = list(spec.get("externalIPs") or ())
    kind = spec.get("type") or "ClusterIP"
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or NONE
    if kind == "LoadBalancer":
        found = set()
        for ingress in _get(svc, "status", "loadBalancer", "ingress", default=[]) or ():
            if ingress.get("ip"):
                found.add(ingress["ip"])
            elif ingress.get("hostname"):
                found.add(ingress["hostname"])
        balancer = ",".join(sorted(found))
        if external:
            return ",".join(([*balancer.split(",")] if balancer else []) + external)
        return balancer or "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName", "")
    return UNKNOWN


def _service_ports(ports: Any) -> str:
    pieces = []
    for port in ports or ():
        protocol = port.get("protocol") or "TCP"
        if _int(port.get("nodePort")) > 0:
            pieces.append(f"{port.get('port')}:{port.get('nodePort')}/{protocol}")
        else:
            pieces.append(f"{port.get('port')}/{protocol}")
    return ",".join(pieces) or NONE


def _service_cells(svc: Mapping[str, Any], at: datetime) -> list[Any]:
    spec = svc.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or ()
    cluster_ip = cluster_ips[0] if cluster_ips else spec.get("clusterIP") or NONE
    return [
        _name(svc),
        spec.get("type") or "ClusterIP",
        cluster_ip,
        _service_external_ip(svc),
        _service_ports(spec.get("ports")),
        _age(svc, at),
        format_labels(spec.get("selector")),
    ]


_SERVICE = _Printer(
    (
        NAME,
        Column("Type", "string", "type determines how the Service is exposed."),
        Column("Cluster-IP", "string", "clusterIP is the IP address of the service."),
        Column(
            "External-IP",
            "string",
            "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
        ),
        Column("Port(s)", "string", "The list of ports that are exposed by this service."),
        AGE,
        Column(
            "Selector",
            "string",
            "Route service traffic to pods with label keys and values matching this selector.",
            1,
        ),
    ),
    _service_cells,
)


def _host_port(ip: str, port: Any) -> str:
    try:
        if isinstance(ipaddress.ip_address(ip), ipaddress.IPv6Address):
            return f"[{ip}]:{port}"
    except ValueError:
        pass
    return f"{ip}:{port}"


def format_endpoints(endpoints: Mapping[str, Any], limit: int = 3) -> str:
    """`10.0.0.1:80,10.0.0.2:80 + 3 more...` as kubectl shows an Endpoints object."""
    subsets = endpoints.get("subsets") or ()
    if not subsets:
        return NONE
    shown: list[str] = []
    count = 0
    more = False
    for subset in subsets:
        addresses = subset.get("addresses") or ()
        ports = subset.get("ports") or ()
        if not ports:
            count += len(addresses)
            for address in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(address.get("ip", ""))
            continue
        for port in ports:
            count += len(addresses)
            for address in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(_host_port(address.get("ip", ""), port.get("port")))
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if more else text


_ENDPOINTS = _Printer(
    (
        NAME,
        Column("Endpoints", "string", "The set of all endpoints is the union of all subsets."),
        AGE,
    ),
    lambda o, at: [_name(o), format_endpoints(o), _age(o, at)],
)

_CONFIGMAP = _Printer(
    (NAME, Column("Data", "string", "Data contains the configuration data."), AGE),
    lambda o, at: [
        _name(o),
        len(o.get("data") or {}) + len(o.get("binaryData") or {}),
        _age(o, at),
    ],
)

_SECRET = _Printer(
    (
        NAME,
        Column("Type", "string", "Used to facilitate programmatic handling of secret data."),
        Column("Data", "string", "Data contains the secret data."),
        AGE,
    ),
    lambda o, at: [
        _name(o),
        o.get("type") or "Opaque",
        len(o.get("data") or {}),
        _age(o, at),
    ],
)

_SERVICE_ACCOUNT = _Printer(
    (
        NAME,
        Column(
            "Secrets",
            "string",
            "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
        ),
        AGE,
    ),
    lambda o, at: [_name(o), len(o.get("secrets") or ()), _age(o, at)],
)


# --- events -------------------------------------------------------------------------


def _event_cells(event: Mapping[str, Any], at: datetime) -> list[Any]:
    first = event.get("firstTimestamp")
    first_text = _since(first, at) if first else _since(event.get("eventTime"), at)
    last = event.get("lastTimestamp")
    last_text = _since(last, at) if last else first_text
    count = _int(event.get("count"))
    series = event.get("series")
    if series:
        last_text = _since(series.get("lastObservedTime"), at)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    source_text = f"{component}, {instance}" if instance else component
    return [
        last_text,
        event.get("type", ""),
        event.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        source_text,
        str(event.get("message", "")).strip(),
        first_text,
        count,
        _name(event),
    ]


_EVENT = _Printer(
    (
        Column(
            "Last Seen",
            "string",
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        Column(
            "Type",
            "string",
            "Type of this event (Normal, Warning), new types could be added in the future",
        ),
        Column(
            "Reason",
            "string",
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        ),
        Column("Object", "string", "The object that this event is about."),
        Column(
            "Subobject",
            "string",
            "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
            1,
        ),
        Column("Source", "string", "The component reporting this event.", 1),
        Column(
            "Message", "string", "A human-readable description of the status of this operation."
        ),
        Column("First Seen", "string", "The time at which the event was first recorded.", 1),
        Column("Count", "string", "The number of times this event has occurred.", 1),
        Column("Name", "string", NAME_DOC, 1, "name"),
    ),
    _event_cells,
)


# --- workloads ----------------------------------------------------------------------


def _deployment_cells(obj: Mapping[str, Any], at: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    try:
        selector = str(LabelSelector.from_dict(spec.get("selector")))
    except SelectorError:
        selector = "<invalid>"
    return [
        _name(obj),
        f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'), 1)}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(obj, at),
        *_template_wide(obj, selector),
    ]


_DEPLOYMENT = _Printer(
    (
        NAME,
        Column("Ready", "string", "Number of the pod with ready state"),
        Column(
            "Up-to-date",
            "string",
            "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
        ),
        Column(
            "Available",
            "string",
            "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
        ),
        AGE,
        *WIDE_TEMPLATE,
    ),
    _deployment_cells,
)


def _replicaset_cells(obj: Mapping[str, Any], at: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return [
        _name(obj),
        _int(spec.get("replicas"), 1),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _age(obj, at),
        *_template_wide(obj, format_label_selector(spec.get("selector"))),
    ]


_REPLICASET = _Printer(
    (
        NAME,
        Column("Desired", "integer", "Replicas is the number of desired replicas."),
        Column("Current", "integer", "Replicas is the most recently observed number of replicas."),
        Column("Ready", "integer", "The number of ready replicas for this replica set."),
        AGE,
        *WIDE_TEMPLATE,
    ),
    _replicaset_cells,
)


def _daemonset_cells(obj: Mapping[str, Any], at: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return [
        _name(obj),
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        format_labels(_get(spec, "template", "spec", "nodeSelector")),
        _age(obj, at),
        *_template_wide(obj, format_label_selector(spec.get("selector"))),
    ]


_DAEMONSET = _Printer(
    (
        NAME,
        Column(
            "Desired", "integer", "The total number of nodes that should be running the daemon pod."
        ),
        Column(
            "Current",
            "integer",
            "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
        ),
        Column(
            "Ready",
            "integer",
            "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
        ),
        Column(
            "Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"
        ),
        Column(
            "Available",
            "integer",
            "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.",
        ),
        Column(
            "Node Selector",
            "string",
            "NodeSelector is a selector which must be true for the pod to fit on a node.",
        ),
        AGE,
        *WIDE_TEMPLATE,
    ),
    _daemonset_cells,
)


def job_status_text(job: Mapping[str, Any]) -> str:
    """The STATUS kubectl shows for a Job: Complete, Failed, Terminating, Suspended, ..., Running."""
    conditions = _get(job, "status", "conditions", default=[]) or []
    if _condition_true(conditions, "Complete"):
        return "Complete"
    if _condition_true(conditions, "Failed"):
        return "Failed"
    if _get(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    if _condition_true(conditions, "Suspended"):
        return "Suspended"
    if _condition_true(conditions, "FailureTarget"):
        return "FailureTarget"
    if _condition_true(conditions, "SuccessCriteriaMet"):
        return "SuccessCriteriaMet"
    return "Running"


def _job_cells(obj: Mapping[str, Any], at: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    succeeded = _int(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec.get('completions'))}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {_int(spec.get('parallelism'))}"
    else:
        completions = f"{succeeded}/1"
    duration = ""
    start = status.get("startTime")
    if start:
        try:
            end = parse_rfc3339(status["completionTime"]) if status.get("completionTime") else at
            duration = human_duration((end - parse_rfc3339(start)).total_seconds())
        except ValueError:
            duration = ""
    return [
        _name(obj),
        job_status_text(obj),
        completions,
        duration,
        _age(obj, at),
        *_template_wide(obj, format_label_selector(spec.get("selector"))),
    ]


_JOB = _Printer(
    (
        NAME,
        Column("Status", "string", "Status of the job."),
        Column("Completions", "string", "The number of pods which reached phase Succeeded."),
        Column("Duration", "string", "Time required to complete the job."),
        AGE,
        *WIDE_TEMPLATE,
    ),
    _job_cells,
)

_LEASE = _Printer(
    (
        NAME,
        Column(
            "Holder",
            "string",
            "holderIdentity contains the identity of the holder of a current lease.",
        ),
        AGE,
    ),
    lambda o, at: [_name(o), _get(o, "spec", "holderIdentity", default=""), _age(o, at)],
)

_DEFAULT = _Printer((NAME, AGE), lambda o, at: [_name(o), _age(o, at)])

PRINTERS: dict[tuple[str, str], _Printer] = {
    ("", "Pod"): _POD,
    ("", "Node"): _NODE,
    ("", "Namespace"): _NAMESPACE,
    ("", "Service"): _SERVICE,
    ("", "Endpoints"): _ENDPOINTS,
    ("", "ConfigMap"): _CONFIGMAP,
    ("", "Secret"): _SECRET,
    ("", "ServiceAccount"): _SERVICE_ACCOUNT,
    ("", "Event"): _EVENT,
    ("apps", "Deployment"): _DEPLOYMENT,
    ("apps", "ReplicaSet"): _REPLICASET,
    ("apps", "DaemonSet"): _DAEMONSET,
    ("batch", "Job"): _JOB,
    ("coordination.k8s.io", "Lease"): _LEASE,
}


# --- the Table ----------------------------------------------------------------------


def _printer(info: _ResourceLike) -> _Printer:
    return PRINTERS.get((info.group, info.kind), _DEFAULT)


def column_definitions(info: _ResourceLike, *, wide: bool = True) -> list[dict[str, Any]]:
    """The Table's columnDefinitions; without `wide`, only the priority-0 columns."""
    return [c.as_dict() for c in _printer(info).columns if wide or c.priority == 0]


def partial_object_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a row's `object` holds by default (includeObject=Metadata)."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(obj.get("metadata") or {}),
    }


def table_row(
    info: _ResourceLike,
    obj: Mapping[str, Any],
    *,
    wide: bool = True,
    at: datetime | None = None,
    include_object: str = "Metadata",
) -> dict[str, Any]:
    """One Table row: cells, conditions (pods that finished) and the object."""
    printer = _printer(info)
    cells = printer.cells(obj, at or utc_now())
    if not wide:
        cells = [
            cell for cell, col in zip(cells, printer.columns, strict=True) if col.priority == 0
        ]
    row: dict[str, Any] = {"cells": cells}
    if printer.conditions is not None:
        conditions = printer.conditions(obj)
        if conditions:
            row["conditions"] = [dict(c) for c in conditions]
    if include_object == "Metadata":
        row["object"] = partial_object_metadata(obj)
    elif include_object == "Object":
        row["object"] = obj
    return row


def table(
    info: _ResourceLike,
    objs: list[dict],
    *,
    wide: bool = True,
    now: datetime | None = None,
    include_object: str = "Metadata",
) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of `objs`. The caller adds metadata.resourceVersion/continue.

    `include_object` follows the `includeObject` query parameter: None, Metadata
    (the default: a PartialObjectMetadata per row) or Object (the whole object).
    """
    at = now or utc_now()
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": column_definitions(info, wide=wide),
        "rows": [
            table_row(info, obj, wide=wide, at=at, include_object=include_object) for obj in objs
        ],
    }
