"""Discovery documents: /api, /apis, /apis/{g}, /api/v1, /apis/{g}/{v} and /version.

Legacy discovery (APIVersions, APIGroupList, APIResourceList) in plain
application/json; kubectl falls back to it from the aggregated format.
Built once from `ketch.api.resources.RESOURCES`: they are static.
"""

from __future__ import annotations

import platform
import sys
from functools import cache

from ketch.api.resources import RESOURCES, ResourceInfo, groups, subresource

KUBERNETES_VERSION = (1, 32)


def version_info() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ketch_version = version("ketch")
    except PackageNotFoundError:
        ketch_version = "0.0.0"
    major, minor = KUBERNETES_VERSION
    return {
        "major": str(major),
        "minor": str(minor),
        "gitVersion": f"v{major}.{minor}.0-ketch.{ketch_version}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
        "compiler": "cpython",
        "platform": f"{platform.system().lower()}/{'amd64' if platform.machine() == 'x86_64' else platform.machine()}",
    }


def api_versions(server_address: str) -> dict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_entry(name: str, versions: tuple[str, ...]) -> dict:
    vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": vs, "preferredVersion": vs[0]}


@cache
def api_group_list() -> dict:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(g, vs) for g, vs in groups().items() if g],
    }


def api_group(group: str) -> dict | None:
    vs = groups().get(group)
    if not group or vs is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, vs)}


def _resource_entries(info: ResourceInfo) -> list[dict]:
    entry: dict = {
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    out = [entry]
    for name in info.subresources:
        sub = subresource(info, name)
        if sub is None:
            continue
        s: dict = {"name": f"{info.plural}/{name}", "singularName": "", "namespaced": info.namespaced,
                   "kind": sub.kind, "verbs": list(sub.verbs)}
        if (sub.group, sub.version) != (info.group, info.version):
            s["group"], s["version"] = sub.group, sub.version
        out.append(s)
    return out


@cache
def api_resource_list(group: str, version: str) -> dict | None:
    infos = [r for r in RESOURCES if r.group == group and r.version == version]
    if not infos:
        return None
    resources: list[dict] = []
    for info in infos:
        resources.extend(_resource_entries(info))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


# --- aggregated discovery (apidiscovery.k8s.io/v2) -------------------------------------

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> str | None:
    """The aggregated media type to answer with, when the Accept header asks for one we serve."""
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip() for p in part.split(";")[1:] if "=" in p}
        if (params.get("g"), params.get("v"), params.get("as")) == ("apidiscovery.k8s.io", "v2",
                                                                     "APIGroupDiscoveryList"):
            return AGGREGATED_V2
    return None


def _aggregated_resource(info: ResourceInfo) -> dict:
    entry: dict = {
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    subs = []
    for name in info.subresources:
        sub = subresource(info, name)
        if sub is not None:
            subs.append({"subresource": name,
                         "responseKind": {"group": sub.group, "version": sub.version, "kind": sub.kind},
                         "verbs": list(sub.verbs)})
    if subs:
        entry["subresources"] = subs
    return entry


@cache
def aggregated(core: bool) -> dict:
    """`/api` (core=True) or `/apis` as an APIGroupDiscoveryList."""
    items = []
    for group, versions in groups().items():
        if bool(group) == core:
            continue
        items.append({
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [{"version": v, "freshness": "Current",
                          "resources": [_aggregated_resource(r) for r in RESOURCES
                                        if r.group == group and r.version == v]}
                         for v in versions],
        })
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {"creationTimestamp": None}, "items": items}
