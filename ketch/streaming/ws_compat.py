"""Let the `websockets` library carry Kubernetes' port-forward subprotocol.

kubectl offers `Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io`, which is not
an RFC 7230 token ('/' is a separator), so `websockets` rejects the handshake
with 400 ("expected comma at 4"). Go's WebSocket library, on both ends in
Kubernetes, just splits the header on commas. `allow_kubernetes_subprotocols()`
makes `websockets` (server side under uvicorn, and its client) do the same;
it changes nothing else and is idempotent.
"""

from __future__ import annotations

import importlib
import sys


def parse_subprotocol_list(header: str) -> list[str]:
    """Comma-separated subprotocols, as Go's gorilla/websocket reads them."""
    return [item.strip() for item in header.split(",") if item.strip()]


def validate_subprotocol_list(subprotocols: object) -> None:
    """What a header can carry at all: strings without commas or line breaks."""
    if isinstance(subprotocols, str) or not all(isinstance(s, str) for s in subprotocols):  # type: ignore[attr-defined]
        raise TypeError("subprotocols must be a list of strings")
    for item in subprotocols:  # type: ignore[attr-defined]
        if not item or any(ch in item for ch in ",\r\n"):
            raise ValueError(f"invalid subprotocol: {item!r}")


_MODULES = ("websockets.server", "websockets.client", "websockets.legacy.server", "websockets.legacy.client",
            "websockets.asyncio.server", "websockets.asyncio.client", "websockets.sync.server",
            "websockets.sync.client")


def allow_kubernetes_subprotocols() -> None:
    for name in _MODULES:
        if ".legacy." in name and name not in sys.modules:
            continue  # deprecated; only patched when something (an older uvicorn) already uses it
        try:
            module = importlib.import_module(name)
        except ImportError:  # pragma: no cover - older or newer websockets layouts
            continue
        if hasattr(module, "parse_subprotocol"):
            module.parse_subprotocol = parse_subprotocol_list  # type: ignore[attr-defined]
        if hasattr(module, "validate_subprotocols"):
            module.validate_subprotocols = validate_subprotocol_list  # type: ignore[attr-defined]
