"""A thin client of the runtime daemon: one channel, the four service stubs.

`RuntimeClient` is synchronous (the CLI: nothing but grpc and the stubs is
imported, for start-up time); `AsyncRuntimeClient` is the grpc.aio twin the
node agent uses. Both are plain stubs: call `client.runtime.CreateContainer(
pb.CreateContainerRequest(...))` and so on (see proto/runtime.proto).
"""

from __future__ import annotations

import os

import grpc

from proto import runtime_pb2 as pb  # noqa: F401  (re-exported for callers)
from proto import runtime_pb2_grpc as pb_grpc

DEFAULT_SOCKET = "/run/ketch/runtime/runtime.sock"
SOCKET_ENV = "KETCH_RUNTIME_SOCKET"

_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.enable_http_proxy", 0),
]


def default_socket() -> str:
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


class _Stubs:
    def _bind(self, channel) -> None:
        self.channel = channel
        self.runtime = pb_grpc.RuntimeServiceStub(channel)
        self.images = pb_grpc.ImageServiceStub(channel)
        self.volumes = pb_grpc.VolumeServiceStub(channel)
        self.networks = pb_grpc.NetworkServiceStub(channel)


class RuntimeClient(_Stubs):
    def __init__(self, socket_path: str | None = None) -> None:
        self.socket_path = socket_path or default_socket()
        self._bind(grpc.insecure_channel(f"unix:{self.socket_path}", options=_OPTIONS))

    def wait_ready(self, timeout: float = 5.0) -> None:
        """Block until the daemon answers (grpc.FutureTimeoutError when it does not)."""
        grpc.channel_ready_future(self.channel).result(timeout=timeout)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> RuntimeClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncRuntimeClient(_Stubs):
    def __init__(self, socket_path: str | None = None) -> None:
        self.socket_path = socket_path or default_socket()
        self._bind(grpc.aio.insecure_channel(f"unix:{self.socket_path}", options=_OPTIONS))

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncRuntimeClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
