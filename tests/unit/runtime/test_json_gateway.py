"""The JSON gateway serves servicer methods (unary, server- and bidi-streaming) to the CLI client."""

from __future__ import annotations

import asyncio
import base64
import threading
from pathlib import Path

import grpc
import pytest
from node_agent.runtime.json_gateway import JsonGateway, json_socket_for

from ketch.cli.runtime.connection import Connection, DaemonError
from proto import runtime_pb2 as pb


class FakeRuntime:
    async def Version(self, request, context):
        return pb.VersionResponse(version="9.9", pid=123)

    async def ContainerStatus(self, request, context):
        await context.abort(grpc.StatusCode.NOT_FOUND, f"No such container: {request.container_id}")

    async def ReadLogs(self, request, context):
        for i in range(3):
            yield pb.LogEntry(timestamp=i, data=f"line{i}\n".encode())

    async def Exec(self, requests, context):
        start = None
        async for req in requests:
            kind = req.WhichOneof("msg")
            if kind == "start":
                start = req.start
            elif kind == "stdin":
                yield pb.StreamResponse(data=req.stdin.upper())
            elif kind == "close_stdin":
                break
        yield pb.StreamResponse(exited=True, exit_code=len(start.cmd))


@pytest.fixture
def gateway(tmp_path: Path):
    grpc_socket = tmp_path / "runtime.sock"
    loop = asyncio.new_event_loop()
    gw = JsonGateway({"RuntimeService": FakeRuntime()})
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(gw.start(json_socket_for(grpc_socket)))
        ready.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready.wait(5)
    yield Connection(str(grpc_socket))
    asyncio.run_coroutine_threadsafe(gw.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)


def test_unary_call_and_int64_as_string(gateway: Connection) -> None:
    assert gateway.runtime("Version") == {"version": "9.9", "pid": 123}


def test_abort_becomes_daemon_error(gateway: Connection) -> None:
    with pytest.raises(DaemonError) as err:
        gateway.runtime("ContainerStatus", {"container_id": "x"})
    assert err.value.code == "NOT_FOUND" and "No such container: x" in err.value.message


def test_unknown_method(gateway: Connection) -> None:
    with pytest.raises(DaemonError) as err:
        gateway.runtime("Nope")
    assert err.value.code == "UNIMPLEMENTED"


def test_server_stream(gateway: Connection) -> None:
    got = [base64.b64decode(e["data"]) for e in gateway.stream("RuntimeService", "ReadLogs", {})]
    assert got == [b"line0\n", b"line1\n", b"line2\n"]


def test_bidi_stream(gateway: Connection) -> None:
    s = gateway.open("RuntimeService", "Exec", {"start": {"container_id": "c", "cmd": ["a", "b"]}})
    s.send({"stdin": base64.b64encode(b"abc").decode()})
    assert base64.b64decode(s.recv()["data"]) == b"ABC"
    s.send({"close_stdin": True})
    assert s.recv() == {"exited": True, "exit_code": 2}
    assert s.recv() is None
    s.close()
