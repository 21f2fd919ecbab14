"""`/portForward/{ns}/{pod}`: TCP connections into a pod's network namespace, over SPDY.

The caller (kubectl through the apiserver) sends a SPDY/3.1 session inside a
WebSocket (`SPDY/3.1+portforward.k8s.io`). For every pair of error/data streams
with one requestID we connect to 127.0.0.1:<port> inside the pod's netns (a
socket made by a thread that entered the netns stays in it) and copy bytes both
ways; a failed connect is reported on the error stream as the kubelet does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ketch.streaming import portforward as pf
from ketch.streaming import spdy

log = logging.getLogger("ketch.node_agent.server.portforward")

Dialer = Callable[[int], Awaitable[socket.socket]]


def netns_dialer(netns_path: str) -> Dialer:
    """Connect to 127.0.0.1:port inside `netns_path` ("" = this process's own namespace)."""

    def connect(port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.settimeout(None)
        sock.setblocking(False)
        return sock

    async def dial(port: int) -> socket.socket:
        if not netns_path:
            return await asyncio.to_thread(connect, port)
        from node_agent.network.netns import run_in

        return await asyncio.to_thread(run_in, netns_path, connect, port)

    return dial


@dataclass
class _Pair:
    port: int
    error_id: int = 0
    data_id: int = 0
    writer: asyncio.StreamWriter | None = None
    pending: list[bytes] = field(default_factory=list)
    client_done: bool = False
    task: asyncio.Task | None = None


class PortForwardSession:
    """The server end of one SPDY port-forward session; transport-agnostic (send/recv of bytes)."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], dial: Dialer) -> None:
        self._send_raw = send
        self._dial = dial
        self._codec = spdy.FrameCodec()
        self._lock = asyncio.Lock()
        self._pairs: dict[str, _Pair] = {}
        self._by_stream: dict[int, str] = {}
        self._closed = False

    async def send(self, *frames: spdy.Frame) -> None:
        async with self._lock:  # header compression state: encode and send in one order
            if self._closed:
                return
            await self._send_raw(b"".join(self._codec.encode(f) for f in frames))

    async def send_data(self, stream_id: int, data: bytes, *, fin: bool = False) -> None:
        async with self._lock:
            if self._closed:
                return
            await self._send_raw(self._codec.data(stream_id, data, fin=fin))

    async def receive(self, data: bytes) -> None:
        """Bytes from the caller: handle every complete frame in them."""
        for frame in self._codec.feed(data):
            await self._handle(frame)

    async def close(self) -> None:
        self._closed = True
        for pair in self._pairs.values():
            if pair.task is not None:
                pair.task.cancel()
            if pair.writer is not None:
                pair.writer.close()
        tasks = [p.task for p in self._pairs.values() if p.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---------------------------------------------------------------- frames
    async def _handle(self, frame: spdy.Frame) -> None:
        if isinstance(frame, spdy.SynStream):
            await self._new_stream(frame)
        elif isinstance(frame, spdy.DataFrame):
            key = self._by_stream.get(frame.stream_id)
            pair = self._pairs.get(key) if key else None
            if pair is None or frame.stream_id != pair.data_id:
                return  # data on an error stream, or a stream we reset
            if frame.data:
                if pair.writer is not None:
                    pair.writer.write(frame.data)
                else:
                    pair.pending.append(frame.data)
            if frame.fin:
                pair.client_done = True
                if pair.writer is not None and pair.writer.can_write_eof():
                    pair.writer.write_eof()
        elif isinstance(frame, spdy.Ping):
            await self.send(spdy.Ping(frame.ping_id))
        elif isinstance(frame, spdy.RstStream):
            key = self._by_stream.get(frame.stream_id)
            pair = self._pairs.get(key) if key else None
            if pair is not None and pair.task is not None and frame.stream_id == pair.data_id:
                pair.task.cancel()
        elif isinstance(frame, spdy.GoAway):
            self._closed = True
        # SETTINGS, WINDOW_UPDATE, HEADERS, SYN_REPLY: nothing to do for a forwarding server

    async def _new_stream(self, frame: spdy.SynStream) -> None:
        kind = spdy.header(frame.headers, pf.HEADER_STREAM_TYPE)
        port_text = spdy.header(frame.headers, pf.HEADER_PORT) or ""
        request_id = spdy.header(frame.headers, pf.HEADER_REQUEST_ID) or port_text
        if kind not in (pf.STREAM_ERROR, pf.STREAM_DATA) or not port_text.isdigit():
            await self.send(spdy.RstStream(frame.stream_id, spdy.PROTOCOL_ERROR))
            return
        await self.send(spdy.SynReply(frame.stream_id))
        pair = self._pairs.setdefault(request_id, _Pair(int(port_text)))
        self._by_stream[frame.stream_id] = request_id
        if kind == pf.STREAM_ERROR:
            pair.error_id = frame.stream_id
        else:
            pair.data_id = frame.stream_id
            if frame.fin:
                pair.client_done = True
        if pair.error_id and pair.data_id and pair.task is None:
            pair.task = asyncio.create_task(self._forward(request_id, pair))

    async def _forward(self, request_id: str, pair: _Pair) -> None:
        try:
            sock = await self._dial(pair.port)
        except OSError as exc:
            message = (f"error forwarding port {pair.port} to pod: failed to connect to 127.0.0.1:{pair.port} "
                       f"inside the pod: {exc.strerror or exc}")
            log.info("port-forward request=%s port=%d failed: %s", request_id, pair.port, exc)
            await self.send_data(pair.error_id, message.encode(), fin=True)
            await self.send_data(pair.data_id, b"", fin=True)
            self._forget(request_id)
            return
        reader, writer = await asyncio.open_connection(sock=sock)
        pair.writer = writer
        for chunk in pair.pending:
            writer.write(chunk)
        pair.pending.clear()
        if pair.client_done and writer.can_write_eof():
            writer.write_eof()
        try:
            while True:
                chunk = await reader.read(spdy.MAX_DATA)
                if not chunk:
                    break
                await self.send_data(pair.data_id, chunk)
            await self.send_data(pair.data_id, b"", fin=True)
            await self.send_data(pair.error_id, b"", fin=True)
        except (ConnectionError, OSError) as exc:
            await self.send(spdy.RstStream(pair.data_id, spdy.CANCEL))
            log.debug("port-forward request=%s ended: %s", request_id, exc)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._forget(request_id)

    def _forget(self, request_id: str) -> None:
        pair = self._pairs.pop(request_id, None)
        if pair is not None:
            self._by_stream.pop(pair.error_id, None)
            self._by_stream.pop(pair.data_id, None)
