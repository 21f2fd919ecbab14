"""What port-forward streams say to each other, on top of SPDY/3.1.

kubectl opens, per local connection, two SPDY streams carrying the same
`requestID` and `port` headers: first `streamType: error` (it half-closes it at
once and only reads: the server writes a message there if forwarding fails),
then `streamType: data` (the bytes of the connection both ways). Over a
WebSocket the SPDY session is a plain byte stream in binary messages, with the
subprotocol below.
"""

from __future__ import annotations

WEBSOCKET_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
SPDY_PROTOCOL = "portforward.k8s.io"  # X-Stream-Protocol-Version of a plain SPDY upgrade

HEADER_STREAM_TYPE = "streamType"
HEADER_PORT = "port"
HEADER_REQUEST_ID = "requestID"

STREAM_ERROR = "error"
STREAM_DATA = "data"


def parse_ports(values: list[str]) -> list[int]:
    """`ports` query values (repeated or comma-separated) as port numbers; ValueError names the bad one."""
    out = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            port = int(item) if item.isdigit() else -1
            if not 0 < port < 65536:
                raise ValueError(f"invalid port {item!r}: ports must be 1-65535")
            out.append(port)
    return out
