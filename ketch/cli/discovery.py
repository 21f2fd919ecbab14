"""The server's resource types, from its discovery documents, cached on disk like kubectl's.

Why not ketch.api.resources: the CLI must also work against resources it was
not built with (any Kubernetes server), and importing the shared registry
costs ~15 ms of start-up. As kubectl does, discovery is fetched once and kept
for six hours in ~/.cache/ketch/discovery/<server>.json; a type the cache does
not know triggers one refresh.
"""

from __future__ import annotations

import json
import os
import time

CACHE_TTL_SECONDS = 6 * 3600


class ApiResource:
    """One resource as discovery describes it (the attributes of ketch.api.resources.ResourceInfo)."""

    __slots__ = ("group", "version", "kind", "plural", "singular", "namespaced",
                 "short_names", "categories", "subresources", "verbs")

    def __init__(self, group: str, version: str, kind: str, plural: str, singular: str = "",
                 namespaced: bool = True, short_names: tuple[str, ...] = (),
                 categories: tuple[str, ...] = (), subresources: tuple[str, ...] = (),
                 verbs: tuple[str, ...] = ()):
        self.group, self.version, self.kind, self.plural = group, version, kind, plural
        self.singular = singular or kind.lower()
        self.namespaced = namespaced
        self.short_names = tuple(short_names)
        self.categories = tuple(categories)
        self.subresources = tuple(subresources)
        self.verbs = tuple(verbs)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k in self.__slots__
                for v in [getattr(self, k)]}

    @classmethod
    def from_dict(cls, d: dict) -> ApiResource:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in cls.__slots__})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiResource) and (self.group, self.plural) == (other.group, other.plural)

    def __hash__(self) -> int:
        return hash((self.group, self.plural))

    def __repr__(self) -> str:
        return f"ApiResource({self.group_resource})"


class Catalog:
    """Lookups kubectl users rely on: plural, singular, kind, short name, `name.group`."""

    def __init__(self, resources: list[ApiResource]):
        self.resources = resources
        self._names: dict[str, ApiResource] = {}
        for r in resources:
            for n in (r.plural, r.singular, r.kind.lower(), *r.short_names):
                self._names.setdefault(n, r)
                if r.group:
                    self._names.setdefault(f"{n}.{r.group}", r)
                    self._names.setdefault(f"{n}.{r.version}.{r.group}", r)
                else:
                    self._names.setdefault(f"{n}.{r.version}", r)
        self._kinds = {(r.api_version, r.kind): r for r in resources}

    def resolve(self, name: str) -> ApiResource | None:
        return self._names.get(name.lower())

    def by_kind(self, api_version: str, kind: str) -> ApiResource | None:
        return self._kinds.get((api_version, kind))

    def in_category(self, category: str) -> list[ApiResource]:
        return [r for r in self.resources if category in r.categories]


def parse_resource_lists(lists: list[dict]) -> list[ApiResource]:
    """APIResourceList documents -> resources, their `x/sub` entries folded into subresources."""
    out: list[ApiResource] = []
    for listing in lists:
        gv = listing.get("groupVersion", "v1")
        group, _, version = gv.rpartition("/")
        subs: dict[str, list[str]] = {}
        mains: list[dict] = []
        for r in listing.get("resources") or []:
            name = r.get("name", "")
            if "/" in name:
                parent, _, sub = name.partition("/")
                subs.setdefault(parent, []).append(sub)
            else:
                mains.append(r)
        for r in mains:
            out.append(ApiResource(
                group=group, version=version, kind=r.get("kind", ""), plural=r["name"],
                singular=r.get("singularName") or "", namespaced=bool(r.get("namespaced")),
                short_names=tuple(r.get("shortNames") or ()), categories=tuple(r.get("categories") or ()),
                subresources=tuple(subs.get(r["name"], ())), verbs=tuple(r.get("verbs") or ()),
            ))
    return out


def fetch_resource_lists(client) -> list[dict]:
    """GET /api, /api/<v>, /apis and each group's preferred version (legacy discovery)."""
    lists = []
    core = client.get("/api")
    for version in core.get("versions") or []:
        lists.append(client.get(f"/api/{version}"))
    for g in client.get("/apis").get("groups") or []:
        gv = (g.get("preferredVersion") or {}).get("groupVersion") or (
            (g.get("versions") or [{}])[0].get("groupVersion"))
        if gv:
            listing = client.get(f"/apis/{gv}")
            listing.setdefault("groupVersion", gv)
            lists.append(listing)
    return lists


def _cache_path(server: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = server.replace("://", "_").replace("/", "_").replace(":", "_")
    return os.path.join(base, "ketch", "discovery", key + ".json")


def load_catalog(client, *, refresh: bool = False) -> Catalog:
    """The cached catalog of this server, fetched anew when missing, stale or `refresh`."""
    path = _cache_path(client.conn.server)
    if not refresh:
        try:
            with open(path, encoding="utf-8") as f:
                cached = json.load(f)
            if time.time() - cached.get("fetched", 0) < CACHE_TTL_SECONDS:
                return Catalog([ApiResource.from_dict(d) for d in cached["resources"]])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    resources = parse_resource_lists(fetch_resource_lists(client))
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"fetched": time.time(), "resources": [r.to_dict() for r in resources]}, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return Catalog(resources)
