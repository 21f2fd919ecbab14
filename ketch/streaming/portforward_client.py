"""The client side of port-forward: local listeners whose connections ride one SPDY session
(inside a WebSocket, `SPDY/3.1+portforward.k8s.io`) to the pod, as kubectl does it."""

from __future__ import annotations

import itertools
import socket
import sys
import threading
from typing import Any, TextIO

from ketch.streaming import portforward as pf
from ketch.streaming import spdy


def parse_mapping(text: str) -> tuple[int, int]:
    """`8080:80`, `80` (same port), `:80` (any free local port, 0) to (local, remote)."""
    local, colon, remote = text.partition(":")
    if not colon:
        local, remote = text, text
    try:
        local_port = int(local) if local else 0
        remote_port = int(remote)
    except ValueError:
        raise ValueError(f"invalid port mapping {text!r}: want LOCAL:REMOTE") from None
    if not (0 <= local_port < 65536 and 0 < remote_port < 65536):
        raise ValueError(f"invalid port mapping {text!r}: ports are 1-65535")
    return local_port, remote_port


class _Conn:
    def __init__(self, sock: socket.socket, error_id: int, data_id: int) -> None:
        self.sock, self.error_id, self.data_id = sock, error_id, data_id


class PortForwarder:
    def __init__(self, ws: Any, mappings: list[tuple[int, int]], out: TextIO | None = None,
                 err: TextIO | None = None) -> None:
        self.ws = ws
        self.mappings = mappings
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self._codec = spdy.FrameCodec()
        self._lock = threading.Lock()
        self._ids = itertools.count(1, 2)  # client-initiated streams are odd
        self._requests = itertools.count(0)
        self._by_stream: dict[int, _Conn] = {}
        self._listeners: list[socket.socket] = []
        self._done = threading.Event()

    def _send(self, *frames: spdy.Frame) -> None:
        with self._lock:
            self.ws.send(b"".join(self._codec.encode(f) for f in frames))

    def listen(self) -> list[tuple[int, int]]:
        """Bind every local port on 127.0.0.1 only; (bound local port, remote port) pairs."""
        bound = []
        for local, remote in self.mappings:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", local))
            sock.listen(64)
            self._listeners.append(sock)
            bound.append((sock.getsockname()[1], remote))
        return bound

    def run(self) -> None:
        """Serve until the session ends (the pod went away, or the server closed it)."""
        bound = self.listen()
        for (local, remote), listener in zip(bound, self._listeners, strict=True):
            self.out.write(f"Forwarding from 127.0.0.1:{local} -> {remote}\n")
            threading.Thread(target=self._accept, args=(listener, local, remote), daemon=True).start()
        self.out.flush()
        try:
            for message in self.ws:
                data = message if isinstance(message, bytes) else message.encode()
                for frame in self._codec.feed(data):
                    self._handle(frame)
        finally:
            self._done.set()
            for listener in self._listeners:
                listener.close()
            for conn in list(self._by_stream.values()):
                conn.sock.close()

    def _accept(self, listener: socket.socket, local: int, remote: int) -> None:
        while not self._done.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            self.out.write(f"Handling connection for {local}\n")
            self.out.flush()
            request = str(next(self._requests))
            error_id, data_id = next(self._ids), next(self._ids)
            conn = _Conn(sock, error_id, data_id)
            self._by_stream[error_id] = self._by_stream[data_id] = conn
            headers = [(pf.HEADER_PORT, str(remote)), (pf.HEADER_REQUEST_ID, request)]
            try:
                self._send(spdy.SynStream(error_id, [(pf.HEADER_STREAM_TYPE, pf.STREAM_ERROR), *headers],
                                          flags=spdy.FLAG_FIN),
                           spdy.SynStream(data_id, [(pf.HEADER_STREAM_TYPE, pf.STREAM_DATA), *headers]))
            except Exception:  # noqa: BLE001 - the session is gone
                sock.close()
                return
            threading.Thread(target=self._pump_local, args=(conn,), daemon=True).start()

    def _pump_local(self, conn: _Conn) -> None:
        try:
            while True:
                data = conn.sock.recv(spdy.MAX_DATA)
                if not data:
                    break
                with self._lock:
                    self.ws.send(self._codec.data(conn.data_id, data))
            with self._lock:
                self.ws.send(self._codec.data(conn.data_id, b"", fin=True))
        except OSError:
            pass
        except Exception:  # noqa: BLE001 - the session closed
            conn.sock.close()

    def _handle(self, frame: spdy.Frame) -> None:
        if isinstance(frame, spdy.DataFrame):
            conn = self._by_stream.get(frame.stream_id)
            if conn is None:
                return
            if frame.stream_id == conn.error_id:
                if frame.data:
                    self.err.write(f"error: {frame.data.decode(errors='replace')}\n")
                    self.err.flush()
                return
            try:
                if frame.data:
                    conn.sock.sendall(frame.data)
                if frame.fin:
                    conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if frame.fin:
                self._finish(conn)
        elif isinstance(frame, spdy.RstStream):
            conn = self._by_stream.get(frame.stream_id)
            if conn is not None:
                conn.sock.close()
                self._finish(conn)
        elif isinstance(frame, spdy.Ping):
            self._send(spdy.Ping(frame.ping_id))

    def _finish(self, conn: _Conn) -> None:
        self._by_stream.pop(conn.error_id, None)
        self._by_stream.pop(conn.data_id, None)
        threading.Timer(1.0, conn.sock.close).start()  # let the local reader drain first
