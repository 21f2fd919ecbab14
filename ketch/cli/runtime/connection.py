"""The CLI's line to the runtime daemon: JSON frames on its unix socket.

The daemon serves its gRPC API a second time as JSON (see
node_agent/runtime/json_gateway.py) so that this side needs only `json` and
`socket`, not grpc and protobuf: that keeps `ketch runtime run` fast to start.
Messages are plain dicts shaped like the protobuf JSON of runtime.proto
(int64 values arrive as strings, bytes as base64, defaults omitted).
"""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Iterator

DEFAULT_SOCKET = "/run/ketch/runtime/runtime.sock"
SOCKET_ENV = "KETCH_RUNTIME_SOCKET"
_LEN = struct.Struct(">I")


class DaemonError(Exception):
    """An error answered by the daemon: `code` is the gRPC status name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class DaemonUnavailable(DaemonError):
    pass


def default_socket() -> str:
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


def json_socket_for(grpc_socket: str) -> str:
    """runtime.sock -> runtime.json.sock (the rule json_gateway.json_socket_for applies)."""
    directory, name = os.path.split(grpc_socket)
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, "sock"
    return os.path.join(directory, f"{stem}.json.{suffix}")


class Stream:
    """One call on its own connection: send request frames, receive response frames."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = b""

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, request: dict) -> None:
        data = json.dumps({"request": request}, separators=(",", ":")).encode()
        self.sock.sendall(_LEN.pack(len(data)) + data)

    def end(self) -> None:
        data = b'{"end":true}'
        try:
            self.sock.sendall(_LEN.pack(len(data)) + data)
        except OSError:
            pass

    def _frame_from_buffer(self) -> dict | None:
        if len(self._buf) < 4:
            return None
        (length,) = _LEN.unpack(self._buf[:4])
        if len(self._buf) < 4 + length:
            return None
        frame, self._buf = self._buf[4:4 + length], self._buf[4 + length:]
        return json.loads(frame)

    def _next(self, frame: dict) -> dict | None:
        if "response" in frame:
            return frame["response"]
        if "error" in frame:
            err = frame["error"]
            raise DaemonError(err.get("code", "UNKNOWN"), err.get("message", ""))
        return None  # end

    def recv(self) -> dict | None:
        """The next response, or None at the end of the call (DaemonError on an error)."""
        while True:
            frame = self._frame_from_buffer()
            if frame is not None:
                return self._next(frame)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise DaemonUnavailable("UNAVAILABLE", "the runtime daemon closed the connection")
            self._buf += chunk

    def pending(self) -> list[dict | None]:
        """After the socket polled readable: read once and return whatever frames are complete."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise DaemonUnavailable("UNAVAILABLE", "the runtime daemon closed the connection")
        self._buf += chunk
        out: list[dict | None] = []
        while (frame := self._frame_from_buffer()) is not None:
            out.append(self._next(frame))
        return out

    def close(self) -> None:
        self.sock.close()


class Connection:
    def __init__(self, socket_path: str | None = None) -> None:
        self.grpc_socket = socket_path or default_socket()
        self.path = json_socket_for(self.grpc_socket)

    def open(self, service: str, method: str, request: dict | None = None) -> Stream:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise DaemonUnavailable(
                "UNAVAILABLE",
                f"Cannot connect to the Ketch runtime daemon at unix://{self.grpc_socket} "
                f"({exc.strerror}). Is the daemon running? Start it with `ketch runtime daemon`.",
            ) from None
        except PermissionError:
            sock.close()
            raise DaemonUnavailable("UNAVAILABLE", f"permission denied on {self.path}: run as root") from None
        data = json.dumps({"service": service, "method": method, "request": request or {}},
                          separators=(",", ":")).encode()
        sock.sendall(_LEN.pack(len(data)) + data)
        return Stream(sock)

    def call(self, service: str, method: str, request: dict | None = None) -> dict:
        stream = self.open(service, method, request)
        try:
            reply = stream.recv()
            return reply or {}
        finally:
            stream.close()

    def stream(self, service: str, method: str, request: dict | None = None) -> Iterator[dict]:
        s = self.open(service, method, request)
        try:
            while (reply := s.recv()) is not None:
                yield reply
        finally:
            s.close()

    # shorthands
    def runtime(self, method: str, request: dict | None = None) -> dict:
        return self.call("RuntimeService", method, request)

    def images(self, method: str, request: dict | None = None) -> dict:
        return self.call("ImageService", method, request)

    def available(self) -> bool:
        try:
            self.runtime("Version")
            return True
        except DaemonUnavailable:
            return False
