"""Endpoints: for every Service with a selector, the addresses of its pods, ready or not.

Only ready pods go in ``addresses`` (the service proxy sends traffic only
there); running but unready ones go in ``notReadyAddresses``, unless the
Service sets ``publishNotReadyAddresses``. A pod whose node is NotReady or
Unknown (its agent stopped reporting: the pod's own Ready condition is stale)
counts as unready, as Kubernetes' node lifecycle controller marks such pods
not ready, so a lost node's pods leave the Services as soon as the node does.
A named ``targetPort`` is resolved per pod through its containers' port
names, so pods may differ.
"""

from __future__ import annotations

from controllers.controller import Controller, InformerSet
from controllers.pod_state import is_ready
from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.api.selectors import LabelSelector

PODS = lookup("", "v1", "pods")
SERVICES = lookup("", "v1", "services")
ENDPOINTS = lookup("", "v1", "endpoints")
NODES = lookup("", "v1", "nodes")


def node_ready(node: dict | None) -> bool:
    """False only for a node whose Ready condition says False or Unknown (a node
    not known, or not yet reporting, is not held against its pods)."""
    for c in ((node or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") not in ("False", "Unknown")
    return True


def _target_port(service_port: dict, pod: dict) -> int | None:
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    proto = service_port.get("protocol", "TCP")
    for container in (pod.get("spec") or {}).get("containers") or []:
        for p in container.get("ports") or []:
            if p.get("name") == target and p.get("protocol", "TCP") == proto:
                return int(p["containerPort"])
    return None


def _address(pod: dict) -> dict:
    meta = pod["metadata"]
    addr = {
        "ip": pod["status"]["podIP"],
        "targetRef": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
    }
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    hostname = (pod.get("spec") or {}).get("hostname")
    if hostname:
        addr["hostname"] = hostname
    return addr


def desired_subsets(service: dict, pods: list[dict], unready_nodes: frozenset[str] = frozenset()) -> list[dict]:
    """Subsets grouped by identical resolved port lists, sorted for a stable object; pods on
    ``unready_nodes`` count as unready."""
    spec = service["spec"]
    publish_unready = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for pod in pods:
        ports = []
        for sp in spec.get("ports") or []:
            port = _target_port(sp, pod)
            if port is None:
                continue
            entry = {"port": port, "protocol": sp.get("protocol", "TCP")}
            if sp.get("name"):
                entry["name"] = sp["name"]
            if sp.get("appProtocol"):
                entry["appProtocol"] = sp["appProtocol"]
            ports.append(entry)
        if not ports and spec.get("ports"):
            continue
        key = tuple(sorted((p.get("name", ""), p["port"], p["protocol"]) for p in ports))
        group = groups.setdefault(key, {"ports": ports, "addresses": [], "notReadyAddresses": []})
        on_unready_node = (pod.get("spec") or {}).get("nodeName") in unready_nodes
        which = "addresses" if (publish_unready or (is_ready(pod) and not on_unready_node)) else "notReadyAddresses"
        group[which].append(_address(pod))
    subsets = []
    for key in sorted(groups):
        g = groups[key]
        subset: dict = {}
        for which in ("addresses", "notReadyAddresses"):
            if g[which]:
                subset[which] = sorted(g[which], key=lambda a: tuple(int(x) for x in a["ip"].split(".")))
        subset["ports"] = sorted(g["ports"], key=lambda p: (p.get("name", ""), p["port"]))
        subsets.append(subset)
    return subsets


def _serving(pod: dict) -> bool:
    status = pod.get("status") or {}
    return (
        bool(status.get("podIP"))
        and status.get("phase") not in ("Succeeded", "Failed")
        and not pod["metadata"].get("deletionTimestamp")
    )


class EndpointsController(Controller):
    name = "endpoints"
    workers = 4

    def __init__(self, client, informers: InformerSet, recorder) -> None:  # noqa: ANN001
        super().__init__(client, informers, recorder)
        self.services = informers.get(SERVICES)
        self.pods = informers.get(PODS)
        self.endpoints = informers.get(ENDPOINTS)
        self.nodes = informers.get(NODES)
        self.pods.add_index("namespace", lambda p: [p["metadata"].get("namespace", "")])
        self.services.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.pods.add_handler(self._pod_changed, self._pod_updated, self._pod_changed)
        self.nodes.add_handler(self._node_changed, self._node_updated, self._node_changed)

    def _node_updated(self, old: dict, new: dict) -> None:
        if node_ready(old) != node_ready(new):
            self._node_changed(new)

    def _node_changed(self, node: dict) -> None:
        name = node["metadata"]["name"]
        for pod in self.pods.store.list():
            if (pod.get("spec") or {}).get("nodeName") == name:
                self._pod_changed(pod)

    def _unready_nodes(self) -> frozenset[str]:
        return frozenset(n["metadata"]["name"] for n in self.nodes.store.list() if not node_ready(n))

    def _pod_updated(self, old: dict, new: dict) -> None:
        self._pod_changed(new)
        if (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {}):
            self._pod_changed(old)

    def _pod_changed(self, pod: dict) -> None:
        ns = pod["metadata"].get("namespace")
        labels = pod["metadata"].get("labels") or {}
        for svc in self.services.store.list():
            selector = (svc.get("spec") or {}).get("selector")
            if svc["metadata"]["namespace"] == ns and selector and LabelSelector.from_labels(selector).matches(labels):
                self.enqueue(svc)

    async def reconcile(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        service = self.services.store.get(key)
        current = self.endpoints.store.get(key)
        if service is None:
            if current is not None:
                try:
                    await self.client.delete(ENDPOINTS, name, namespace)
                except ApiError as err:
                    if err.code != 404:
                        raise
            return
        selector = service["spec"].get("selector")
        if not selector:
            return  # a Service without selector: its Endpoints are the user's
        match = LabelSelector.from_labels(selector)
        pods = [
            p for p in self.pods.store.by_index("namespace", namespace)
            if _serving(p) and match.matches(p["metadata"].get("labels") or {})
        ]
        subsets = desired_subsets(service, pods, self._unready_nodes())
        labels = dict(service["metadata"].get("labels") or {})
        if current is None:
            body = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "subsets": subsets,
            }
            try:
                await self.client.create(ENDPOINTS, body)
            except ApiError as err:
                if err.code != 409:
                    raise
                self.queue.add_after(key, 0.2)
            return
        if (current.get("subsets") or []) == subsets and (current["metadata"].get("labels") or {}) == labels:
            return
        updated = {**current, "subsets": subsets, "metadata": {**current["metadata"], "labels": labels}}
        try:
            await self.client.update(ENDPOINTS, updated)
        except ApiError as err:
            if err.code not in (404, 409):
                raise
            self.queue.add_after(key, 0.2)
