"""Client ends of the streaming subresources for the CLI: a streamed GET and a WebSocket,
both with the kubeconfig's TLS and credentials (through ketch.client.rest)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from ketch.client.rest import ApiStatusError, RestClient, TransportError, _status_from


def stream_get(client: RestClient, path: str, query: list[tuple[str, str]]) -> Iterator[bytes]:
    """The body of a GET as it arrives (pods/log with follow); ApiStatusError for a non-2xx answer."""
    http = client._new_connection(None)
    try:
        http.send("GET", client._target(path, query), client._headers("*/*", None), None)
        status, headers = http.read_head()
        if status >= 300:
            body = b"".join(http.body_chunks(headers))
            raise ApiStatusError(status, _status_from(status, body))
        yield from http.body_chunks(headers)
    finally:
        http.close()


def open_websocket(client: RestClient, path: str, query: list[tuple[str, str]], subprotocols: list[str]) -> Any:
    """A connected `websockets.sync` client for a streaming subresource."""
    from websockets.exceptions import InvalidHandshake, InvalidStatus
    from websockets.sync.client import connect

    from ketch.client.rest import ssl_context
    from ketch.streaming.ws_compat import allow_kubernetes_subprotocols

    allow_kubernetes_subprotocols()
    scheme = "wss" if client.scheme == "https" else "ws"
    url = f"{scheme}://{client.host}:{client.port}{client.base_path}{path}"
    if query:
        url += "?" + urlencode(query)
    headers = {"User-Agent": "ketch/0.1.0"}
    auth = client._auth_header()
    if auth:
        headers["Authorization"] = auth
    try:
        return connect(url, ssl=ssl_context(client.conn) if scheme == "wss" else None,
                       server_hostname=client.conn.tls_server_name or client.host if scheme == "wss" else None,
                       subprotocols=subprotocols, additional_headers=headers, max_size=None,
                       compression=None, open_timeout=30, ping_interval=20)
    except InvalidStatus as exc:
        code = exc.response.status_code
        raise ApiStatusError(code, _status_from(code, exc.response.body or b"")) from None
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise TransportError(f"Unable to connect to the server: {exc}") from None
