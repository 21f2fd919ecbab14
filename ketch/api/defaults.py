"""Kubernetes defaults, applied in place before validation.

Two layers: the `default` of every schema `Field` (applied wherever the
field's parent object is present, e.g. every container port gets protocol
TCP), then the defaults that depend on other fields (imagePullPolicy from the
image tag, a Service port's targetPort from its port, the Job selector, ...).

The walk visits only the parts of an object whose schema has a default
somewhere below; which parts those are is computed once per schema node.
"""

from __future__ import annotations

import base64
import copy
import threading
from typing import Any

from ketch.api.core_v1 import BUILTIN_PRIORITY_CLASSES
from ketch.api.resources import ResourceInfo
from ketch.api.schema import NOTHING, Node, Object, schema_for

# --- schema-driven defaults ---------------------------------------------------------------

# id(schema node) -> what to do under it; built once per node, never per call. Only
# finished plans are stored, under a lock, so a thread never sees a half-built one.
_PLANS: dict[int, Any] = {}
_PLANS_LOCK = threading.Lock()
_NO_PLAN: tuple = ()


def _plan(node: Node) -> Any:
    """The defaulting plan of a node: falsy when nothing below it has a default."""
    plan = _PLANS.get(id(node))
    if plan is None:
        with _PLANS_LOCK:
            plan = _build_plan(node, set())
    return plan


def _build_plan(node: Node, building: set[int]) -> Any:
    key = id(node)
    if key in _PLANS:
        return _PLANS[key]
    if key in building:  # a recursive schema: the inner occurrence contributes nothing more
        return _NO_PLAN
    building.add(key)
    plan: Any = _NO_PLAN
    if isinstance(node, Object):
        steps = []
        for name, field in node.fields.items():
            child = _build_plan(field.node, building)
            if field.default is not NOTHING or child:
                steps.append((name, field.default, field.node, child))
        plan = tuple(steps)
    elif node.tag == "array":
        child = _build_plan(node.items, building)  # type: ignore[attr-defined]
        plan = ("items", node.items, child) if child else _NO_PLAN  # type: ignore[attr-defined]
    elif node.tag == "map":
        child = _build_plan(node.values, building)  # type: ignore[attr-defined]
        plan = ("values", node.values, child) if child else _NO_PLAN  # type: ignore[attr-defined]
    building.discard(key)
    _PLANS[key] = plan
    return plan


def _fresh(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value


def _apply(node: Node, plan: Any, value: Any) -> None:
    if not plan:
        return
    if isinstance(node, Object):
        if not isinstance(value, dict):
            return
        for name, default, child_node, child_plan in plan:
            current = value.get(name)
            if current is None and default is not NOTHING:
                current = value[name] = _fresh(default)
            if child_plan and current is not None:
                _apply(child_node, child_plan, current)
    elif plan[0] == "items":
        if isinstance(value, list):
            for item in value:
                _apply(plan[1], plan[2], item)
    elif plan[0] == "values":
        if isinstance(value, dict):
            for item in value.values():
                _apply(plan[1], plan[2], item)


def apply_schema_defaults(node: Node, value: Any) -> None:
    """The `Field.default`s of `node`'s tree, in place."""
    _apply(node, _plan(node), value)


# --- defaults that depend on other fields --------------------------------------------------


def _d(parent: dict, key: str) -> dict:
    """parent[key] as a dict, created if absent (only where Kubernetes creates it too).

    A value of the wrong type is left alone for validation to report; the
    caller then writes into a detached dict that goes nowhere.
    """
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    elif not isinstance(value, dict):
        return {}
    return value


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, else IfNotPresent (a digest counts as a tag)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


_VOLUME_SOURCES = ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected")


def _default_container(c: Any, host_network: bool) -> None:
    if not isinstance(c, dict):
        return
    image = c.get("image")
    if not c.get("imagePullPolicy") and isinstance(image, str) and image:
        c["imagePullPolicy"] = image_pull_policy(image)
    resources = c.get("resources")
    if resources is None:
        resources = c["resources"] = {}
    if isinstance(resources, dict):
        limits = resources.get("limits")
        if isinstance(limits, dict) and limits:
            requests = resources.get("requests")
            if requests is None:
                requests = resources["requests"] = {}
            if isinstance(requests, dict):
                for name, amount in limits.items():
                    requests.setdefault(name, amount)
    if host_network:
        for port in c.get("ports") or ():
            if isinstance(port, dict) and port.get("hostPort") in (None, 0):
                if port.get("containerPort") is not None:
                    port["hostPort"] = port["containerPort"]


def default_pod_spec(spec: Any, *, restart_policy: str | None = "Always") -> None:
    """Pod spec defaults that depend on other fields; `restart_policy=None` leaves it unset (Jobs)."""
    if not isinstance(spec, dict):
        return
    if restart_policy and not spec.get("restartPolicy"):
        spec["restartPolicy"] = restart_policy
    host_network = spec.get("hostNetwork") is True
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or ():
            _default_container(c, host_network)
    for vol in spec.get("volumes") or ():
        if isinstance(vol, dict) and not any(vol.get(s) is not None for s in _VOLUME_SOURCES):
            vol["emptyDir"] = {}
    sa, san = spec.get("serviceAccount"), spec.get("serviceAccountName")
    if san and not sa:
        spec["serviceAccount"] = san
    elif sa and not san:
        spec["serviceAccountName"] = sa


def _template_spec(obj: dict) -> Any:
    spec = obj.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    return template.get("spec") if isinstance(template, dict) else None


def _default_pod(obj: dict) -> None:
    spec = obj.get("spec")
    default_pod_spec(spec)
    if isinstance(spec, dict):
        # What the ServiceAccount and Priority admission plugins set on pods.
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = spec["serviceAccount"] = "default"
        if spec.get("priority") is None:
            spec["priority"] = BUILTIN_PRIORITY_CLASSES.get(spec.get("priorityClassName"), 0)


def _default_deployment(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    strategy = _d(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _d(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    default_pod_spec(_template_spec(obj))


def _default_replica_set(obj: dict) -> None:
    default_pod_spec(_template_spec(obj))


def _default_daemon_set(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    strategy = _d(spec, "updateStrategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _d(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    default_pod_spec(_template_spec(obj))


JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def _default_job(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    elif spec.get("parallelism") is None:
        spec["parallelism"] = 1
    default_pod_spec(_template_spec(obj), restart_policy=None)
    if spec.get("manualSelector") is True or spec.get("selector") is not None:
        return
    # Like Kubernetes, the server picks the selector and labels the template with it:
    # by uid when the apiserver has set it, else by job name (unique in the namespace).
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    uid, name = meta.get("uid"), meta.get("name")
    template = spec.get("template")
    if not isinstance(template, dict) or not (uid or name):
        return
    labels = _d(_d(template, "metadata"), "labels")
    if name:
        labels.setdefault(JOB_NAME_LABEL, name)
        labels.setdefault("job-name", name)
    if uid:
        labels.setdefault(JOB_UID_LABEL, uid)
        labels.setdefault("controller-uid", uid)
        spec["selector"] = {"matchLabels": {JOB_UID_LABEL: uid}}
    else:
        spec["selector"] = {"matchLabels": {JOB_NAME_LABEL: name}}


def _default_service(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for port in spec.get("ports") or ():
        if isinstance(port, dict) and port.get("targetPort") in (None, 0, ""):
            if port.get("port") is not None:
                port["targetPort"] = port["port"]
    if spec.get("sessionAffinity") == "ClientIP":
        client_ip = _d(_d(spec, "sessionAffinityConfig"), "clientIP")
        client_ip.setdefault("timeoutSeconds", 10800)
    if spec.get("type") == "NodePort" and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = ["IPv4"]
    if not spec.get("ipFamilyPolicy"):
        spec["ipFamilyPolicy"] = "SingleStack"
    ip = spec.get("clusterIP")
    if ip and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [ip]


def _default_secret(obj: dict) -> None:
    """stringData is write-only: merged into data, base64-encoded, as Kubernetes does."""
    string_data = obj.pop("stringData", None)
    if not isinstance(string_data, dict) or not string_data:
        return
    data = obj.get("data")
    if not isinstance(data, dict):
        data = obj["data"] = {}
    for key, value in string_data.items():
        if isinstance(value, str):
            data[key] = base64.b64encode(value.encode()).decode()
        else:
            # Leave a wrongly typed value for validation to report under data[key].
            data[key] = value


_KIND_DEFAULTS = {
    ("v1", "Pod"): _default_pod,
    ("v1", "Service"): _default_service,
    ("v1", "Secret"): _default_secret,
    ("apps/v1", "Deployment"): _default_deployment,
    ("apps/v1", "ReplicaSet"): _default_replica_set,
    ("apps/v1", "DaemonSet"): _default_daemon_set,
    ("batch/v1", "Job"): _default_job,
}


def apply_defaults(info: ResourceInfo, obj: dict) -> None:
    """Kubernetes defaults for a `info.kind` object, in place. Tolerates invalid input."""
    if not isinstance(obj, dict):
        return
    kind_defaults = _KIND_DEFAULTS.get((info.api_version, info.kind))
    if kind_defaults is not None:
        kind_defaults(obj)
    apply_schema_defaults(schema_for(info), obj)
