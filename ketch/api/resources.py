"""Every resource Ketch serves, with the names kubectl and the CLI look them up by.

Plain data: importing this module is cheap (the CLI imports it on start-up).
"""

from __future__ import annotations

from dataclasses import dataclass

STANDARD_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)


@dataclass(frozen=True)
class ResourceInfo:
    group: str  # "" for core
    version: str  # "v1"
    kind: str  # "Deployment"
    plural: str  # "deployments"
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


@dataclass(frozen=True)
class SubresourceInfo:
    """What discovery says of `<plural>/<name>`: the kind it answers with and its verbs."""

    name: str
    group: str
    version: str
    kind: str
    verbs: tuple[str, ...]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def _r(group: str, kind: str, plural: str, namespaced: bool, **kw) -> ResourceInfo:
    return ResourceInfo(
        group=group,
        version="v1",
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        **kw,
    )


_CREATE_GET = ("create", "get")
_PROXY_VERBS = ("create", "delete", "get", "patch", "update")

RESOURCES: tuple[ResourceInfo, ...] = (
    _r(
        "",
        "Namespace",
        "namespaces",
        False,
        short_names=("ns",),
        subresources=("status",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _r("", "Node", "nodes", False, short_names=("no",), subresources=("status", "proxy")),
    _r(
        "",
        "Pod",
        "pods",
        True,
        short_names=("po",),
        categories=("all",),
        subresources=(
            "status",
            "binding",
            "log",
            "exec",
            "attach",
            "portforward",
            "proxy",
            "eviction",
        ),
    ),
    _r(
        "",
        "Service",
        "services",
        True,
        short_names=("svc",),
        categories=("all",),
        subresources=("status", "proxy"),
    ),
    _r("", "Endpoints", "endpoints", True, short_names=("ep",)),
    _r("", "ConfigMap", "configmaps", True, short_names=("cm",)),
    _r("", "Secret", "secrets", True),
    _r("", "Event", "events", True, short_names=("ev",)),
    _r("", "ServiceAccount", "serviceaccounts", True, short_names=("sa",)),
    _r(
        "apps",
        "Deployment",
        "deployments",
        True,
        short_names=("deploy",),
        categories=("all",),
        subresources=("status", "scale"),
    ),
    _r(
        "apps",
        "ReplicaSet",
        "replicasets",
        True,
        short_names=("rs",),
        categories=("all",),
        subresources=("status", "scale"),
    ),
    _r(
        "apps",
        "DaemonSet",
        "daemonsets",
        True,
        short_names=("ds",),
        categories=("all",),
        subresources=("status",),
    ),
    _r("batch", "Job", "jobs", True, categories=("all",), subresources=("status",)),
    _r("coordination.k8s.io", "Lease", "leases", True),
)

# Kubernetes' singular for Endpoints is "endpoints".
RESOURCES = tuple(
    ResourceInfo(**{**r.__dict__, "singular": "endpoints"}) if r.kind == "Endpoints" else r
    for r in RESOURCES
)

#: Subresources that answer with another kind than their parent.
_SUBRESOURCE_KINDS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    # name: (group, version, kind, verbs)
    "scale": ("autoscaling", "v1", "Scale", ("get", "patch", "update")),
    "binding": ("", "v1", "Binding", ("create",)),
    "eviction": ("policy", "v1", "Eviction", ("create",)),
    "exec": ("", "v1", "PodExecOptions", _CREATE_GET),
    "attach": ("", "v1", "PodAttachOptions", _CREATE_GET),
    "portforward": ("", "v1", "PodPortForwardOptions", _CREATE_GET),
    "log": ("", "v1", "Pod", ("get",)),
}
_PROXY_KINDS = {
    "pods": "PodProxyOptions",
    "nodes": "NodeProxyOptions",
    "services": "ServiceProxyOptions",
}


def subresource(info: ResourceInfo, name: str) -> SubresourceInfo | None:
    """Discovery facts of `info.plural/name`, or None if `info` has no such subresource."""
    if name not in info.subresources:
        return None
    if name == "status":
        return SubresourceInfo(
            name, info.group, info.version, info.kind, ("get", "patch", "update")
        )
    if name == "proxy":
        return SubresourceInfo(name, "", "v1", _PROXY_KINDS[info.plural], _PROXY_VERBS)
    group, version, kind, verbs = _SUBRESOURCE_KINDS[name]
    return SubresourceInfo(name, group, version, kind, verbs)


_BY_GVR: dict[tuple[str, str, str], ResourceInfo] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
_BY_KIND: dict[tuple[str, str], ResourceInfo] = {(r.api_version, r.kind): r for r in RESOURCES}


def _build_names() -> dict[str, ResourceInfo]:
    names: dict[str, ResourceInfo] = {}
    for r in RESOURCES:
        candidates = [r.plural, r.singular, r.kind.lower(), *r.short_names]
        for c in candidates:
            names.setdefault(c, r)
            if r.group:
                names.setdefault(f"{c}.{r.group}", r)
                names.setdefault(f"{c}.{r.version}.{r.group}", r)
            else:
                names.setdefault(f"{c}.{r.version}", r)  # kubectl: "pods.v1"
    return names


_BY_NAME = _build_names()


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    """The resource at a URL: ("apps", "v1", "deployments")."""
    return _BY_GVR.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceInfo | None:
    """The resource a manifest's apiVersion/kind names."""
    return _BY_KIND.get((api_version, kind))


def resolve(name: str) -> ResourceInfo | None:
    """The resource a user typed: "deploy", "deployments.apps", "Pod", "po", "deployment.v1.apps"."""
    return _BY_NAME.get(name.lower())


def in_category(category: str) -> tuple[ResourceInfo, ...]:
    """Resources of a category, in discovery order ("all" -> pods, services, ...)."""
    return tuple(r for r in RESOURCES if category in r.categories)


def groups() -> dict[str, tuple[str, ...]]:
    """Served API groups and their versions, core ("") first."""
    out: dict[str, tuple[str, ...]] = {}
    for r in RESOURCES:
        versions = out.setdefault(r.group, ())
        if r.version not in versions:
            out[r.group] = (*versions, r.version)
    return out
