"""`/exec/{ns}/{pod}/{container}` and `/attach/...`: a process's stdio over v5.channel.k8s.io.

The WebSocket's channel frames map onto the runtime's bidirectional Exec/Attach
stream: stdin (0) and resize (4) go in, close(255, 0) half-closes stdin, and the
runtime's stdout/stderr come back on channels 1/2. When the process exits the
last frame is a Status on channel 3 carrying the exit code, then a normal close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from starlette.websockets import WebSocket, WebSocketDisconnect

from ketch.streaming import channels
from proto import runtime_pb2 as pb

log = logging.getLogger("ketch.node_agent.server.exec")


def choose_protocol(websocket: WebSocket) -> str | None:
    offered = list(websocket.scope.get("subprotocols") or [])
    for proto in channels.PROTOCOLS:
        if proto in offered:
            return proto
    return None


async def reject(websocket: WebSocket, status: dict, protocol: str | None = None) -> None:
    """Accept only to say why not: a Status on the error channel, then close."""
    await websocket.accept(subprotocol=protocol or choose_protocol(websocket))
    await websocket.send_bytes(channels.status_frame(status))
    await websocket.close(1000)


async def run_stream(websocket: WebSocket, runtime: Any, container_id: str, *, command: list[str] | None,
                     stdin: bool, stdout: bool, stderr: bool, tty: bool) -> None:
    """Serve one exec (command given) or attach (command None) until the process exits or the caller leaves."""
    protocol = choose_protocol(websocket)
    await websocket.accept(subprotocol=protocol)
    requests: asyncio.Queue[Any] = asyncio.Queue()
    if command is not None:
        make = pb.ExecRequest
        requests.put_nowait(pb.ExecRequest(start=pb.ExecStart(container_id=container_id, cmd=command,
                                                              tty=tty, stdin=stdin)))
    else:
        make = pb.AttachRequest
        requests.put_nowait(pb.AttachRequest(start=pb.AttachStart(container_id=container_id, stdin=stdin, tty=tty)))

    async def request_stream() -> AsyncIterator[Any]:
        while True:
            item = await requests.get()
            if item is None:
                return
            yield item

    call = (runtime.runtime.Exec if command is not None else runtime.runtime.Attach)(request_stream())

    async def pump_input() -> None:
        """Caller -> runtime: stdin, resize, stdin close."""
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            raw = message.get("bytes")
            if raw is None:
                raw = (message.get("text") or "").encode()
            if not raw:
                continue
            channel, payload = channels.decode(raw)
            if channel == channels.STDIN and stdin:
                if payload:
                    await requests.put(make(stdin=payload))
            elif channel == channels.RESIZE:
                try:
                    width, height = channels.parse_resize(payload)
                except channels.FrameError as exc:
                    log.debug("ignored %s", exc)
                    continue
                await requests.put(make(resize=pb.TerminalSize(width=width, height=height)))
            elif channel == channels.CLOSE and payload[:1] == bytes((channels.STDIN,)):
                await requests.put(make(close_stdin=True))

    async def pump_output() -> dict:
        """Runtime -> caller: stdout/stderr frames; returns the Status to end with."""
        try:
            async for response in call:
                if response.exited:
                    return channels.exit_status(response.exit_code)
                if not response.data:
                    continue
                to_stderr = response.stream == pb.STDERR and not tty
                if (to_stderr and not stderr) or (not to_stderr and not stdout):
                    continue
                await websocket.send_bytes(channels.encode(channels.STDERR if to_stderr else channels.STDOUT,
                                                           response.data))
        except grpc.aio.AioRpcError as err:
            return channels.error_status(f"container runtime: {err.details() or err.code()}")
        return channels.error_status("the runtime ended the stream without an exit code")

    input_task = asyncio.create_task(pump_input())
    output_task = asyncio.create_task(pump_output())
    try:
        done, _ = await asyncio.wait({input_task, output_task}, return_when=asyncio.FIRST_COMPLETED)
        if output_task in done and output_task.exception() is None:
            try:
                await websocket.send_bytes(channels.status_frame(output_task.result()))
                await websocket.close(1000)
            except (WebSocketDisconnect, RuntimeError, OSError):
                pass
        elif output_task in done:
            log.warning("exec/attach output failed container=%s: %s", container_id, output_task.exception())
    finally:
        for task in (input_task, output_task):
            task.cancel()
        call.cancel()
        await requests.put(None)
        await asyncio.gather(input_task, output_task, return_exceptions=True)


def command_from(params: Any) -> list[str]:
    """The argv of an exec: repeated `command` parameters."""
    return list(params.getlist("command"))


def flags_from(params: Any) -> dict[str, bool]:
    def flag(name: str) -> bool:
        return (params.get(name) or "").lower() in ("true", "1")

    return {"stdin": flag("stdin"), "stdout": flag("stdout") or "stdout" not in params,
            "stderr": flag("stderr") or "stderr" not in params, "tty": flag("tty")}

