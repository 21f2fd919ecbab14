"""The agent's port-forward session against kubectl-shaped frames, with a socketpair as the pod."""

import asyncio
import socket

from node_agent.server.portforward import PortForwardSession

from ketch.streaming import portforward as pf
from ketch.streaming import spdy


def _streams(client: spdy.FrameCodec, request: str, port: int) -> bytes:
    headers = [(pf.HEADER_PORT, str(port)), (pf.HEADER_REQUEST_ID, request)]
    return (client.encode(spdy.SynStream(1, [(pf.HEADER_STREAM_TYPE, pf.STREAM_ERROR), *headers], spdy.FLAG_FIN))
            + client.encode(spdy.SynStream(3, [(pf.HEADER_STREAM_TYPE, pf.STREAM_DATA), *headers])))


async def _collect(sent: list[bytes], codec: spdy.FrameCodec, until, timeout: float = 3.0) -> list:
    frames: list = []
    deadline = asyncio.get_running_loop().time() + timeout
    while not until(frames) and asyncio.get_running_loop().time() < deadline:
        while sent:
            frames += codec.feed(sent.pop(0))
        await asyncio.sleep(0.01)
    return frames


def test_bytes_flow_both_ways_and_fin_ends_the_stream():
    async def main() -> None:
        pod_side, agent_side = socket.socketpair()
        pod_side.settimeout(3)
        dialed: list[int] = []

        async def dial(port: int) -> socket.socket:
            dialed.append(port)
            agent_side.setblocking(False)
            return agent_side

        sent: list[bytes] = []

        async def send(data: bytes) -> None:
            sent.append(data)

        session = PortForwardSession(send, dial)
        client, reader = spdy.FrameCodec(), spdy.FrameCodec()
        await session.receive(_streams(client, "0", 8080))
        await session.receive(client.data(3, b"ping from kubectl"))
        await asyncio.sleep(0.1)
        assert await asyncio.to_thread(pod_side.recv, 100) == b"ping from kubectl"
        pod_side.sendall(b"pong from pod")
        pod_side.shutdown(socket.SHUT_WR)
        frames = await _collect(sent, reader, lambda fs: any(isinstance(f, spdy.DataFrame) and f.fin
                                                              and f.stream_id == 3 for f in fs))
        replies = [f.stream_id for f in frames if isinstance(f, spdy.SynReply)]
        assert replies == [1, 3]
        data = b"".join(f.data for f in frames if isinstance(f, spdy.DataFrame) and f.stream_id == 3)
        assert data == b"pong from pod"
        assert dialed == [8080]
        await session.receive(client.encode(spdy.Ping(7)))
        frames = await _collect(sent, reader, lambda fs: spdy.Ping(7) in fs)
        assert spdy.Ping(7) in frames
        await session.close()
        pod_side.close()

    asyncio.run(main())


def test_a_failed_dial_is_written_on_the_error_stream():
    async def main() -> None:
        async def dial(port: int) -> socket.socket:
            raise ConnectionRefusedError(111, "Connection refused")

        sent: list[bytes] = []

        async def send(data: bytes) -> None:
            sent.append(data)

        session = PortForwardSession(send, dial)
        client, reader = spdy.FrameCodec(), spdy.FrameCodec()
        await session.receive(_streams(client, "5", 9))
        frames = await _collect(sent, reader, lambda fs: sum(
            1 for f in fs if isinstance(f, spdy.DataFrame) and f.fin) >= 2)
        errors = [f for f in frames if isinstance(f, spdy.DataFrame) and f.stream_id == 1]
        assert b"error forwarding port 9 to pod" in errors[0].data and b"Connection refused" in errors[0].data
        assert errors[0].fin
        assert any(isinstance(f, spdy.DataFrame) and f.stream_id == 3 and f.fin for f in frames)
        await session.close()

    asyncio.run(main())


def test_a_stream_without_a_port_is_reset():
    async def main() -> None:
        sent: list[bytes] = []

        async def send(data: bytes) -> None:
            sent.append(data)

        async def dial(port: int) -> socket.socket:
            raise AssertionError("must not dial")

        session = PortForwardSession(send, dial)
        client = spdy.FrameCodec()
        await session.receive(client.encode(spdy.SynStream(1, [(pf.HEADER_STREAM_TYPE, pf.STREAM_DATA)])))
        frames = spdy.FrameCodec().feed(b"".join(sent))
        assert frames == [spdy.RstStream(1, spdy.PROTOCOL_ERROR)]

    asyncio.run(main())
