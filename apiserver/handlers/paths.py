"""Resolve `/api/v1/...` and `/apis/{group}/{version}/...` paths to a resource request."""

from __future__ import annotations

from dataclasses import dataclass

from ketch.api import errors
from ketch.api.resources import ResourceInfo, lookup


@dataclass(frozen=True)
class ResourcePath:
    info: ResourceInfo
    namespace: str | None  # None: cluster-scoped or all namespaces
    name: str | None
    subresource: str | None
    watch: bool  # the deprecated /watch/ prefix form


def _not_found(path: str) -> errors.ApiError:
    return errors.ApiError(errors.status(404, "NotFound", "the server could not find the requested resource"))


def resolve(group: str, version: str, segments: list[str], path: str) -> ResourcePath:
    """`segments` follow the group-version prefix; 404 Status for anything we do not serve."""
    watch = False
    if segments and segments[0] == "watch":
        watch, segments = True, segments[1:]
    if not segments:
        raise _not_found(path)
    namespace: str | None = None
    if segments[0] == "namespaces" and len(segments) >= 3:
        candidate = lookup(group, version, segments[2])
        if candidate is not None and candidate.namespaced:
            namespace, segments = segments[1], segments[2:]
    info = lookup(group, version, segments[0])
    if info is None or len(segments) > 3:
        raise _not_found(path)
    if info.namespaced and namespace is None and len(segments) > 1:
        raise _not_found(path)  # /api/v1/pods/x: namespaced objects need their namespace
    name = segments[1] if len(segments) > 1 else None
    sub = segments[2] if len(segments) > 2 else None
    if sub is not None and sub not in info.subresources:
        raise _not_found(path)
    if name == "":
        raise _not_found(path)
    return ResourcePath(info, namespace, name, sub, watch)
