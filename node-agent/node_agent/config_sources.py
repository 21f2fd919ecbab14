"""ConfigMap and Secret data as the agent consumes it, for env vars and volumes alike.

A missing source that is not ``optional`` is a configuration error naming it,
worded as the kubelet words it.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

Lookup = Callable[[str, str, str], Awaitable[dict | None]]  # (kind, namespace, name) -> object or None


class ConfigError(Exception):
    """The container cannot be configured (the pod reason CreateContainerConfigError)."""


async def source_data(lookup: Lookup, kind: str, namespace: str, name: str,
                      optional: bool) -> dict[str, bytes] | None:
    """Key -> bytes of a ConfigMap (data and binaryData) or Secret; None if optional and absent."""
    obj = await lookup(kind, namespace, name)
    if obj is None:
        if optional:
            return None
        noun = "configmap" if kind == "configmaps" else "secret"
        raise ConfigError(f'{noun} "{name}" not found')
    if kind == "secrets":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data
