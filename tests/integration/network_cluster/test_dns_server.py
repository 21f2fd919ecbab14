"""The cluster DNS server over real sockets on loopback, with a fake upstream on loopback too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from node_agent.dns.records import ClusterRecords, reverse_name
from node_agent.dns.server import DnsServer, Upstream, ZoneFromInformers, upstreams_from_resolv_conf

from ketch.informer import Store


class Source:
    """The informer surface the zone uses: a store and handlers."""

    def __init__(self) -> None:
        self.store = Store()
        self.handlers = []

    def add_handler(self, on_add=None, on_update=None, on_delete=None) -> None:  # noqa: ANN001
        self.handlers.append(on_add)

    def put(self, obj: dict) -> None:
        self.store.put(f"{obj['metadata']['namespace']}/{obj['metadata']['name']}", obj)
        for h in self.handlers:
            h(obj)


class FakeUpstream:
    """Answers every A question with 192.0.2.7 and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def answer(self, data: bytes) -> bytes:
        q = DNSRecord.parse(data)
        self.asked.append(str(q.q.qname))
        reply = q.reply()
        reply.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("192.0.2.7"), ttl=60))
        return reply.pack()

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        upstream = self

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport) -> None:  # noqa: ANN001
                self.transport = transport

            def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
                self.transport.sendto(upstream.answer(data), addr)

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            size = int.from_bytes(await reader.readexactly(2), "big")
            out = upstream.answer(await reader.readexactly(size))
            writer.write(len(out).to_bytes(2, "big") + out)
            await writer.drain()
            writer.close()

        for _ in range(20):  # a port free for both UDP and TCP
            self.udp, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
            port = self.udp.get_extra_info("sockname")[1]
            try:
                self.tcp = await asyncio.start_server(tcp, "127.0.0.1", port)
                return port
            except OSError:
                self.udp.close()
        raise RuntimeError("no port free for both UDP and TCP on loopback")

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


@pytest.fixture
async def dns(tmp_path: Path) -> AsyncIterator[tuple[DnsServer, Source, Source, FakeUpstream]]:
    upstream = FakeUpstream()
    up_port = await upstream.start()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search example.test\nnameserver 127.0.0.1\noptions ndots:2\n")
    services, endpoints = Source(), Source()
    services.put({"metadata": {"namespace": "default", "name": "web"},
                  "spec": {"clusterIP": "10.213.32.10", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    services.put({"metadata": {"namespace": "default", "name": "db"},
                  "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})
    endpoints.put({"metadata": {"namespace": "default", "name": "db"},
                   "subsets": [{"addresses": [{"ip": "10.213.65.10", "hostname": "db-0"}, {"ip": "10.213.66.10"}],
                                "ports": [{"name": "pg", "port": 5432}]}]})
    zone = ZoneFromInformers(services, endpoints, "cluster.local")
    server = DnsServer(zone.current, host="127.0.0.1", port=0,
                       upstreams=upstreams_from_resolv_conf(str(resolv), port=up_port), upstream_timeout=1.0)
    await server.start()
    try:
        yield server, services, endpoints, upstream
    finally:
        await server.close()
        upstream.close()


async def ask(server: DnsServer, name: str, qtype: str = "A", *, tcp: bool = False) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    raw = await asyncio.to_thread(q.send, "127.0.0.1", server.port, tcp=tcp, timeout=3)
    return DNSRecord.parse(raw)


def rdata(reply: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr)


async def test_a_records_over_udp_and_tcp(dns) -> None:  # noqa: ANN001
    server, *_ = dns
    for tcp in (False, True):
        reply = await ask(server, "web.default.svc.cluster.local", tcp=tcp)
        assert reply.header.rcode == RCODE.NOERROR and reply.header.aa == 1
        assert rdata(reply) == ["10.213.32.10"]
    assert rdata(await ask(server, "db.default.svc.cluster.local")) == ["10.213.65.10", "10.213.66.10"]
    assert rdata(await ask(server, "db-0.db.default.svc.cluster.local")) == ["10.213.65.10"]


async def test_srv_ptr_and_nxdomain(dns) -> None:  # noqa: ANN001
    server, *_ = dns
    srv = await ask(server, "_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert sorted(str(rr.rdata.target) for rr in srv.rr) == [
        "10-213-66-10.db.default.svc.cluster.local.", "db-0.db.default.svc.cluster.local."]
    assert {str(rr.rdata) for rr in srv.ar} == {"10.213.65.10", "10.213.66.10"}
    assert rdata(await ask(server, reverse_name("10.213.32.10"), "PTR")) == ["web.default.svc.cluster.local."]
    assert rdata(await ask(server, reverse_name("10.213.65.10"), "PTR")) == ["db-0.db.default.svc.cluster.local."]
    nx = await ask(server, "missing.default.svc.cluster.local")
    assert nx.header.rcode == RCODE.NXDOMAIN and not nx.rr
    assert [rr.rtype for rr in nx.auth] == [QTYPE.SOA]


async def test_other_names_are_forwarded_upstream(dns) -> None:  # noqa: ANN001
    server, _, _, upstream = dns
    for tcp in (False, True):
        reply = await ask(server, "www.example.test", tcp=tcp)
        assert rdata(reply) == ["192.0.2.7"]
    assert upstream.asked == ["www.example.test.", "www.example.test."]
    assert server.forwarded == 2
    # an unknown reverse name is not ours either
    await ask(server, reverse_name("192.0.2.50"), "PTR")
    assert upstream.asked[-1] == reverse_name("192.0.2.50") + "."
    # and nothing of the cluster zone went upstream
    await ask(server, "nope.default.svc.cluster.local")
    assert all("cluster.local" not in name for name in upstream.asked)


async def test_answers_follow_service_changes(dns) -> None:  # noqa: ANN001
    server, services, _, _ = dns
    services.put({"metadata": {"namespace": "other", "name": "api"},
                  "spec": {"clusterIP": "10.213.32.20", "ports": [{"port": 443}]}})
    assert rdata(await ask(server, "api.other.svc.cluster.local")) == ["10.213.32.20"]


async def test_dead_upstream_is_servfail_not_a_hang(tmp_path: Path) -> None:
    server = DnsServer(ClusterRecords,
                       host="127.0.0.1", port=0, upstreams=[Upstream("127.0.0.1", 9)], upstream_timeout=0.5)
    await server.start()
    try:
        reply = await ask(server, "www.example.test")
        assert reply.header.rcode == RCODE.SERVFAIL
    finally:
        await server.close()


def test_resolv_conf_nameservers_without_our_own(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text("# comment\nnameserver 10.213.65.1\nnameserver 127.0.0.53\nsearch x\n")
    assert upstreams_from_resolv_conf(str(path), exclude={"10.213.65.1"}) == [Upstream("127.0.0.53", 53)]
    assert upstreams_from_resolv_conf(str(tmp_path / "missing")) == []
