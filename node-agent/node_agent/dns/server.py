"""The node's cluster DNS server: UDP and TCP on one address, asyncio, dnslib for the wire format.

Names in the cluster domain (and reverse names of cluster addresses) are
answered from ``ClusterRecords``, rebuilt lazily after a Service or Endpoints
event; everything else is forwarded, as received, to the upstream resolvers
of the node (its resolv.conf), trying each in turn.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from dnslib import QTYPE, RCODE, DNSRecord

from node_agent.dns.records import ClusterRecords

log = logging.getLogger("ketch.node_agent.dns")

MAX_UDP = 512


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int = 53


def upstreams_from_resolv_conf(path: str, *, port: int = 53, exclude: set[str] | None = None) -> list[Upstream]:
    """The ``nameserver`` lines of a resolv.conf, without our own addresses (no loops)."""
    exclude = exclude or set()
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] not in exclude:
                    out.append(Upstream(parts[1], port))
    except FileNotFoundError:
        log.warning("dns: no resolv.conf at %s: names outside the cluster will fail", path)
    return out


def bind_sockets(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to the same host:port (port 0: one free for both), in this thread's netns."""
    for _ in range(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((host, port))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, udp.getsockname()[1]))
            return udp, tcp
        except OSError:
            udp.close()
            tcp.close()
            if port:  # a fixed port taken for TCP: say so
                raise
    raise OSError(f"no port free for both UDP and TCP on {host}")


class ZoneFromInformers:
    """ClusterRecords kept current from Service and Endpoints informers (rebuilt on first query after a change)."""

    def __init__(self, services, endpoints, domain: str, ttl: int = 5) -> None:  # noqa: ANN001
        self.services = services
        self.endpoints = endpoints
        self.records = ClusterRecords(domain, ttl)
        self._dirty = True
        for informer in (services, endpoints):
            informer.add_handler(on_add=self._mark, on_update=self._mark, on_delete=self._mark)

    def _mark(self, *_: object) -> None:
        self._dirty = True

    def current(self) -> ClusterRecords:
        if self._dirty:
            self._dirty = False
            self.records.rebuild(self.services.store.list(), self.endpoints.store.list())
        return self.records


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        task = asyncio.ensure_future(self._answer(data, addr))
        self.server._tasks.add(task)
        task.add_done_callback(self.server._tasks.discard)

    async def _answer(self, data: bytes, addr) -> None:  # noqa: ANN001
        reply = await self.server.handle(data, udp=True)
        if reply and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class _UpstreamUdp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


class DnsServer:
    """Serve ``zone()`` (a callable returning the current ClusterRecords) on host:port."""

    def __init__(self, zone: Callable[[], ClusterRecords], *, host: str = "127.0.0.1", port: int = 53,
                 upstreams: list[Upstream] | None = None, upstream_timeout: float = 2.0) -> None:
        self.zone = zone
        self.host = host
        self.port = port
        self.upstreams = list(upstreams or [])
        self.upstream_timeout = upstream_timeout
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self.queries = 0
        self.forwarded = 0

    async def start(self, sockets: tuple[socket.socket, socket.socket] | None = None) -> int:
        """Serve UDP and TCP on one port; returns it.

        ``sockets``: a bound (UDP, TCP) pair to serve on instead of binding
        host:port here, e.g. made inside another network namespace
        (``bind_sockets`` run there).
        """
        udp, tcp = sockets or bind_sockets(self.host, self.port)
        tcp.listen(128)
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=udp)
        self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp)
        self.port = udp.getsockname()[1]
        log.info("dns serving host=%s port=%d upstreams=%s", udp.getsockname()[0], self.port,
                 [f"{u.host}:{u.port}" for u in self.upstreams])
        return self.port

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", head)[0])
                reply = await self.handle(data, udp=False)
                if not reply:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def handle(self, data: bytes, *, udp: bool) -> bytes | None:
        """One query in, one reply out (None: unparseable, dropped)."""
        self.queries += 1
        try:
            request = DNSRecord.parse(data)
        except Exception:  # garbage on the port: nothing sensible to answer
            return None
        if not request.questions:
            reply = request.reply()
            reply.header.rcode = RCODE.FORMERR
            return reply.pack()
        q = request.questions[0]
        answer = self.zone().answer(str(q.qname), q.qtype)
        if answer is None:
            return await self.forward(data, request, udp=udp)
        reply = request.reply()
        reply.header.aa = 1
        reply.header.rcode = answer.rcode
        for rr in answer.answers:
            reply.add_answer(rr)
        for rr in answer.authority:
            reply.add_auth(rr)
        for rr in answer.additional:
            reply.add_ar(rr)
        packed = reply.pack()
        if udp and len(packed) > self._udp_limit(request):
            reply = reply.truncate()
            packed = reply.pack()
        return packed

    @staticmethod
    def _udp_limit(request: DNSRecord) -> int:
        for rr in request.ar:
            if rr.rtype == QTYPE.OPT:
                return max(MAX_UDP, int(rr.rclass))
        return MAX_UDP

    async def forward(self, data: bytes, request: DNSRecord, *, udp: bool) -> bytes:
        self.forwarded += 1
        for upstream in self.upstreams:
            try:
                if udp:
                    return await self._forward_udp(data, upstream)
                return await self._forward_tcp(data, upstream)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                log.warning("dns upstream=%s:%d failed: %r", upstream.host, upstream.port, exc)
        reply = request.reply()
        reply.header.rcode = RCODE.SERVFAIL
        return reply.pack()

    async def _forward_udp(self, data: bytes, upstream: Upstream) -> bytes:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(_UpstreamUdp,
                                                               remote_addr=(upstream.host, upstream.port))
        try:
            transport.sendto(data)
            return await asyncio.wait_for(proto.answer, self.upstream_timeout)
        finally:
            transport.close()

    async def _forward_tcp(self, data: bytes, upstream: Upstream) -> bytes:
        async def exchange() -> bytes:
            reader, writer = await asyncio.open_connection(upstream.host, upstream.port)
            try:
                writer.write(struct.pack("!H", len(data)) + data)
                await writer.drain()
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                return await reader.readexactly(size)
            finally:
                writer.close()

        return await asyncio.wait_for(exchange(), self.upstream_timeout)
