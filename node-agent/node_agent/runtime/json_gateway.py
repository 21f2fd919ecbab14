"""The same runtime API as JSON frames on a second unix socket, for the CLI.

Why: `ketch runtime run --rm busybox true` must finish in about a quarter of
`docker run`'s time, and importing grpc and the protobuf stubs alone costs
the CLI 60–100 ms of CPU. Over this socket the CLI needs only `json` and
`socket`. The daemon serves it with the very servicers of the gRPC API (no
second implementation): each JSON request becomes the protobuf message, the
servicer method runs, each reply goes back as protobuf JSON (bytes fields in
base64, field names as in runtime.proto).

Wire format: every frame is a 4-byte big-endian length and a JSON object.
  client → {"service": "RuntimeService", "method": "CreateContainer", "request": {...}}
           then, for client-streaming methods, more {"request": {...}} frames and
           {"end": true} to half-close
  server → {"response": {...}} per message, then {"end": true}
           or {"error": {"code": "NOT_FOUND", "message": "..."}}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import struct
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from proto import runtime_pb2 as pb

log = logging.getLogger("ketch.runtime.json")

_LEN = struct.Struct(">I")
MAX_FRAME = 64 << 20


def json_socket_for(grpc_socket: str | Path) -> Path:
    """The CLI socket that sits beside the gRPC socket: runtime.sock -> runtime.json.sock."""
    p = Path(grpc_socket)
    return p.with_name(f"{p.stem}.json{p.suffix or '.sock'}")


class JsonAbort(grpc.aio.AbortError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class _Context:
    """What the servicers use of grpc.aio.ServicerContext."""

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata=()) -> None:
        raise JsonAbort(code, details)

    def cancelled(self) -> bool:
        return False


async def _read_frame(reader: asyncio.StreamReader) -> dict | None:
    try:
        (length,) = _LEN.unpack(await reader.readexactly(4))
        if length > MAX_FRAME:
            raise ValueError(f"frame of {length} bytes is too large")
        return json.loads(await reader.readexactly(length))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def _frame(obj: dict) -> bytes:
    data = json.dumps(obj, separators=(",", ":")).encode()
    return _LEN.pack(len(data)) + data


class JsonGateway:
    def __init__(self, servicers: dict[str, Any]) -> None:
        self.servicers = servicers
        self.server: asyncio.AbstractServer | None = None

    async def start(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        old = os.umask(0o177)
        try:
            self.server = await asyncio.start_unix_server(self._serve, path=str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await _read_frame(reader)
            if head is None:
                return
            await self._call(head, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:  # a bug: say so to the client, keep serving
            log.exception("json gateway call failed")
            with contextlib.suppress(Exception):
                writer.write(_frame({"error": {"code": "INTERNAL", "message": f"{type(exc).__name__}: {exc}"}}))
        finally:
            with contextlib.suppress(Exception):
                await writer.drain()
                writer.close()

    async def _call(self, head: dict, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        service = pb.DESCRIPTOR.services_by_name.get(head.get("service", ""))
        method = service.methods_by_name.get(head.get("method", "")) if service else None
        servicer = self.servicers.get(head.get("service", ""))
        if method is None or servicer is None:
            writer.write(_frame({"error": {"code": "UNIMPLEMENTED",
                                           "message": f"unknown method {head.get('service')}/{head.get('method')}"}}))
            return
        in_cls = getattr(pb, method.input_type.name)
        first = json_format.ParseDict(head.get("request") or {}, in_cls(), ignore_unknown_fields=True)
        fn = getattr(servicer, method.name)
        ctx = _Context()

        async def requests():
            yield first
            while True:
                frame = await _read_frame(reader)
                if frame is None or frame.get("end"):
                    return
                yield json_format.ParseDict(frame.get("request") or {}, in_cls(), ignore_unknown_fields=True)

        def out(message) -> None:
            writer.write(_frame({"response": json_format.MessageToDict(
                message, preserving_proto_field_name=True)}))

        try:
            arg = requests() if method.client_streaming else first
            if method.server_streaming:
                replies = fn(arg, ctx)
                try:
                    async for message in replies:
                        out(message)
                        await writer.drain()
                finally:  # the client may have gone: stop the servicer's loop now, not at GC
                    await replies.aclose()
            else:
                out(await fn(arg, ctx))
            writer.write(_frame({"end": True}))
        except JsonAbort as exc:
            writer.write(_frame({"error": {"code": exc.code.name, "message": exc.details}}))
