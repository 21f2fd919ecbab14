"""A container's environment, resolved the way the kubelet resolves it.

Order and precedence as Kubernetes: ``envFrom`` sources first (later sources
win), then ``env`` entries in order, each able to refer to earlier variables
with ``$(NAME)`` (``$$`` escapes). A missing ConfigMap, Secret or key that is
not ``optional`` is a CreateContainerConfigError naming what is missing.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal

from ketch.api.quantity import parse_quantity
from node_agent.config_sources import ConfigError, Lookup, source_data

__all__ = ["ConfigError", "expand", "expand_command", "field_value", "resolve_env", "resource_value"]


_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """``$(VAR)`` from ``env``; unknown references stay as written; ``$$`` is a literal ``$``."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _REF.sub(sub, text)


def field_value(pod: dict, path: str, pod_ip: str, host_ip: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
    }
    if path in simple:
        return simple[path]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    if path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    raise ConfigError(f"unsupported fieldRef {path!r}")


def resource_value(container: dict, ref: dict, node_allocatable: dict[str, str]) -> str:
    """requests/limits of cpu or memory, divided by ``divisor`` and rounded up, as Kubernetes does."""
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    values = (container.get("resources") or {}).get(kind) or {}
    raw = values.get(name)
    if raw is None and kind == "limits":
        raw = node_allocatable.get(name)  # no limit: the node's allocatable
    if raw is None:
        raw = "0"
    divisor = parse_quantity(ref.get("divisor") or ("1" if name != "cpu" else "1"))
    if divisor == 0:
        raise ConfigError(f"resourceFieldRef {resource}: divisor must not be zero")
    value = Decimal(parse_quantity(raw).numerator) / Decimal(parse_quantity(raw).denominator)
    div = Decimal(divisor.numerator) / Decimal(divisor.denominator)
    return str(int((value / div).to_integral_value(rounding=ROUND_CEILING)))


async def _text_data(lookup: Lookup, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
    data = await source_data(lookup, kind, namespace, name, optional)
    return None if data is None else {k: v.decode(errors="replace") for k, v in data.items()}


async def resolve_env(
    pod: dict,
    container: dict,
    lookup: Lookup,
    *,
    pod_ip: str = "",
    host_ip: str = "",
    node_allocatable: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref = source["configMapRef"]
            data = await _text_data(lookup, "configmaps", namespace, ref["name"], bool(ref.get("optional")))
        else:
            ref = source["secretRef"]
            data = await _text_data(lookup, "secrets", namespace, ref["name"], bool(ref.get("optional")))
        for key, value in (data or {}).items():
            env[prefix + key] = value
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[name] = field_value(pod, source["fieldRef"]["fieldPath"], pod_ip, host_ip)
        elif "resourceFieldRef" in source:
            env[name] = resource_value(container, source["resourceFieldRef"], node_allocatable or {})
        else:
            kind, ref = (
                ("configmaps", source["configMapKeyRef"]) if "configMapKeyRef" in source
                else ("secrets", source["secretKeyRef"])
            )
            optional = bool(ref.get("optional"))
            data = await _text_data(lookup, kind, namespace, ref["name"], optional)
            if data is None:
                continue
            if ref["key"] not in data:
                if optional:
                    continue
                noun = "configmap" if kind == "configmaps" else "secret"
                raise ConfigError(f'couldn\'t find key {ref["key"]} in {noun} {pod["metadata"]["namespace"]}/{ref["name"]}')
            env[name] = data[ref["key"]]
    return list(env.items())


def expand_command(words: list[str], env: list[tuple[str, str]]) -> list[str]:
    values = dict(env)
    return [expand(w, values) for w in words]
