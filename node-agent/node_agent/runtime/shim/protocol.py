"""Frames exchanged with the spawner and the shims over unix sockets.

A frame is one kind byte, a 4-byte big-endian length and the payload. Kinds:
  J  a JSON control message (requests, replies, {"type": "exit", ...})
  0  stdin bytes (client → shim)      C  close stdin (client → shim)
  1  stdout bytes                     2  stderr bytes  (shim → client)
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct

HEADER = struct.Struct(">cI")
JSON, STDIN, CLOSE_STDIN, STDOUT, STDERR = b"J", b"0", b"C", b"1", b"2"
STREAM_KINDS = {STDOUT: "stdout", STDERR: "stderr"}
MAX_FRAME = 64 * 1024 * 1024


def encode(kind: bytes, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def encode_json(message: dict) -> bytes:
    return encode(JSON, json.dumps(message, separators=(",", ":")).encode())


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """The next frame, or None at end of stream."""
    try:
        header = await reader.readexactly(HEADER.size)
        kind, length = HEADER.unpack(header)
        if length > MAX_FRAME:
            raise ValueError(f"frame of {length} bytes is too large")
        payload = await reader.readexactly(length) if length else b""
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return kind, payload


async def read_json(reader: asyncio.StreamReader) -> dict | None:
    frame = await read_frame(reader)
    if frame is None:
        return None
    kind, payload = frame
    if kind != JSON:
        raise ValueError(f"expected a control message, got frame kind {kind!r}")
    return json.loads(payload)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def recv_json_blocking(sock: socket.socket) -> dict:
    kind, length = HEADER.unpack(_recv_exactly(sock, HEADER.size))
    payload = _recv_exactly(sock, length)
    if kind != JSON:
        raise ValueError(f"expected a control message, got frame kind {kind!r}")
    return json.loads(payload)


def send_json_blocking(sock: socket.socket, message: dict) -> None:
    sock.sendall(encode_json(message))
