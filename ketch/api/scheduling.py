"""Pod-to-node rules shared by the scheduler, the DaemonSet controller and node lifecycle.

Taints and tolerations, node selectors and node affinity, and a pod's resource
requests, with the semantics of Kubernetes' component-helpers, so every
component agrees on "may this pod run on that node".
"""

from __future__ import annotations

from dataclasses import dataclass

from ketch.api.quantity import bytes_value, cpu_millis

# ---- taints and tolerations ------------------------------------------------

def toleration_tolerates(toleration: dict, taint: dict) -> bool:
    """Whether one toleration matches one taint (effect, key, operator, value)."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if not key:
        return operator == "Exists"  # an empty key with Exists tolerates everything
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    return any(toleration_tolerates(t, taint) for t in tolerations)


def untolerated_taint(pod: dict, node: dict, effects: tuple[str, ...]) -> dict | None:
    """The first taint with one of ``effects`` that the pod does not tolerate."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in effects and not tolerates(tolerations, taint):
            return taint
    return None


def format_taint(taint: dict) -> str:
    """``{key: value}`` as Kubernetes prints a taint in scheduling messages."""
    return f"{{{taint.get('key', '')}: {taint.get('value', '')}}}"


# ---- node selectors and node affinity ---------------------------------------

def _requirement_matches(req: dict, values: dict[str, str]) -> bool:
    key, op = req.get("key", ""), req.get("operator", "")
    wanted = req.get("values") or []
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        try:
            have, bound = int(values[key]), int(wanted[0])
        except (KeyError, IndexError, ValueError):
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def node_selector_term_matches(term: dict, node: dict) -> bool:
    """All matchExpressions (on labels) and matchFields (on metadata.name) hold."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    fields = {"metadata.name": (node.get("metadata") or {}).get("name", "")}
    exprs, field_exprs = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not field_exprs:
        return False  # an empty term matches no node
    return all(_requirement_matches(r, labels) for r in exprs) and all(
        _requirement_matches(r, fields) for r in field_exprs
    )


def matches_node_selector_and_affinity(pod: dict, node: dict) -> bool:
    """spec.nodeSelector and requiredDuringSchedulingIgnoredDuringExecution both hold."""
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    if required:
        terms = required.get("nodeSelectorTerms") or []
        return any(node_selector_term_matches(t, node) for t in terms)
    return True


def preferred_affinity_weight(pod: dict, node: dict) -> int:
    """Sum of the weights of preferredDuringScheduling terms the node matches."""
    affinity = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    total = 0
    for term in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        if node_selector_term_matches(term.get("preference") or {}, node):
            total += int(term.get("weight") or 0)
    return total


# ---- resource requests ------------------------------------------------------

@dataclass(frozen=True)
class Requests:
    """What a pod asks of a node: CPU in millicores, memory in bytes."""

    milli_cpu: int = 0
    memory: int = 0

    def __add__(self, other: Requests) -> Requests:
        return Requests(self.milli_cpu + other.milli_cpu, self.memory + other.memory)

    def __sub__(self, other: Requests) -> Requests:
        return Requests(self.milli_cpu - other.milli_cpu, self.memory - other.memory)


#: What scoring assumes for a container that requests nothing (as Kubernetes does),
#: so that best-effort pods still spread.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024


def _container_requests(container: dict, non_zero: bool) -> Requests:
    resources = container.get("resources") or {}
    # Kubernetes defaults requests to limits when only limits are given.
    asked = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    cpu = cpu_millis(asked["cpu"]) if "cpu" in asked else (DEFAULT_MILLI_CPU if non_zero else 0)
    mem = bytes_value(asked["memory"]) if "memory" in asked else (DEFAULT_MEMORY if non_zero else 0)
    return Requests(cpu, mem)


def pod_requests(pod: dict, *, non_zero: bool = False) -> Requests:
    """max(sum of containers, largest init container), per resource, as Kubernetes computes."""
    spec = pod.get("spec") or {}
    total = Requests()
    for c in spec.get("containers") or []:
        total = total + _container_requests(c, non_zero)
    for c in spec.get("initContainers") or []:
        init = _container_requests(c, non_zero)
        total = Requests(max(total.milli_cpu, init.milli_cpu), max(total.memory, init.memory))
    return total


def node_allocatable(node: dict) -> tuple[Requests, int]:
    """Allocatable cpu/memory and the pod count limit of a node."""
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    cpu = cpu_millis(alloc["cpu"]) if "cpu" in alloc else 0
    mem = bytes_value(alloc["memory"]) if "memory" in alloc else 0
    pods = int(alloc.get("pods", 110))
    return Requests(cpu, mem), pods


def host_ports(pod: dict) -> set[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) of every container port that asks for a host port."""
    used: set[tuple[str, str, int]] = set()
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                used.add((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(p["hostPort"])))
    return used


def ports_conflict(wanted: set[tuple[str, str, int]], used: set[tuple[str, str, int]]) -> bool:
    """0.0.0.0 conflicts with every address on the same protocol and port."""
    for ip, proto, port in wanted:
        for uip, uproto, uport in used:
            if proto == uproto and port == uport and (ip == uip or "0.0.0.0" in (ip, uip)):
                return True
    return False
