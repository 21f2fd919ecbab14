"""The cluster zone built from Services and Endpoints."""

from __future__ import annotations

import pytest
from dnslib import QTYPE, RCODE
from node_agent.dns.records import ClusterRecords, reverse_name

SERVICES = [
    {"metadata": {"namespace": "default", "name": "web"},
     "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
    {"metadata": {"namespace": "data", "name": "db"},
     "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}},
    {"metadata": {"namespace": "default", "name": "alias"},
     "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}},
    {"metadata": {"namespace": "default", "name": "empty"}, "spec": {"clusterIP": "None"}},
]
ENDPOINTS = [
    {"metadata": {"namespace": "data", "name": "db"},
     "subsets": [{"addresses": [{"ip": "10.244.1.5", "hostname": "db-0"}, {"ip": "10.244.2.5"}],
                  "notReadyAddresses": [{"ip": "10.244.3.5"}],
                  "ports": [{"name": "pg", "port": 5432}]}]},
]


@pytest.fixture
def zone() -> ClusterRecords:
    z = ClusterRecords("cluster.local")
    z.rebuild(SERVICES, ENDPOINTS)
    return z


def values(answer) -> list[str]:  # noqa: ANN001
    return sorted(str(rr.rdata) for rr in answer.answers)


def test_cluster_ip_service_has_one_a_record(zone: ClusterRecords) -> None:
    a = zone.answer("web.default.svc.cluster.local.", QTYPE.A)
    assert a.rcode == RCODE.NOERROR and values(a) == ["10.96.0.10"]
    assert values(zone.answer("WEB.Default.svc.cluster.local", QTYPE.A)) == ["10.96.0.10"]


def test_headless_service_has_one_record_per_ready_address(zone: ClusterRecords) -> None:
    assert values(zone.answer("db.data.svc.cluster.local", QTYPE.A)) == ["10.244.1.5", "10.244.2.5"]
    assert values(zone.answer("db-0.db.data.svc.cluster.local", QTYPE.A)) == ["10.244.1.5"]
    assert values(zone.answer("10-244-2-5.db.data.svc.cluster.local", QTYPE.A)) == ["10.244.2.5"]


def test_srv_for_named_ports(zone: ClusterRecords) -> None:
    a = zone.answer("_http._tcp.web.default.svc.cluster.local", QTYPE.SRV)
    assert [(rr.rdata.port, str(rr.rdata.target)) for rr in a.answers] == [(80, "web.default.svc.cluster.local.")]
    assert [str(rr.rdata) for rr in a.additional] == ["10.96.0.10"]
    h = zone.answer("_pg._tcp.db.data.svc.cluster.local", QTYPE.SRV)
    assert sorted(str(rr.rdata.target) for rr in h.answers) == [
        "10-244-2-5.db.data.svc.cluster.local.", "db-0.db.data.svc.cluster.local."]


def test_reverse_lookups_for_cluster_ips_and_endpoints(zone: ClusterRecords) -> None:
    assert values(zone.answer(reverse_name("10.96.0.10"), QTYPE.PTR)) == ["web.default.svc.cluster.local."]
    assert values(zone.answer(reverse_name("10.244.1.5"), QTYPE.PTR)) == ["db-0.db.data.svc.cluster.local."]
    assert zone.answer(reverse_name("10.244.3.5"), QTYPE.PTR) is None  # not ready: not ours, forwarded
    assert zone.answer(reverse_name("192.0.2.1"), QTYPE.PTR) is None


def test_unknown_names_in_the_zone_are_nxdomain_with_soa(zone: ClusterRecords) -> None:
    a = zone.answer("nope.default.svc.cluster.local", QTYPE.A)
    assert a.rcode == RCODE.NXDOMAIN and not a.answers
    assert [rr.rtype for rr in a.authority] == [QTYPE.SOA]
    nodata = zone.answer("web.default.svc.cluster.local", QTYPE.AAAA)
    assert nodata.rcode == RCODE.NOERROR and not nodata.answers and nodata.authority
    assert zone.answer("default.svc.cluster.local", QTYPE.A).rcode == RCODE.NOERROR
    assert zone.answer("empty.default.svc.cluster.local", QTYPE.A).rcode == RCODE.NOERROR


def test_external_name_is_a_cname_followed_inside_the_zone(zone: ClusterRecords) -> None:
    a = zone.answer("alias.default.svc.cluster.local", QTYPE.A)
    assert [rr.rtype for rr in a.answers] == [QTYPE.CNAME, QTYPE.A]
    assert str(a.answers[1].rdata) == "10.96.0.10"


def test_pod_names_and_outside_names(zone: ClusterRecords) -> None:
    assert values(zone.answer("10-244-9-9.default.pod.cluster.local", QTYPE.A)) == ["10.244.9.9"]
    assert zone.answer("example.org", QTYPE.A) is None
    assert zone.answer("cluster.local.example.org", QTYPE.A) is None


def test_rebuild_drops_deleted_services(zone: ClusterRecords) -> None:
    zone.rebuild(SERVICES[1:], ENDPOINTS)
    assert zone.answer("web.default.svc.cluster.local", QTYPE.A).rcode == RCODE.NXDOMAIN
    assert zone.answer(reverse_name("10.96.0.10"), QTYPE.PTR) is None


def test_custom_domain() -> None:
    z = ClusterRecords("k.test")
    z.rebuild(SERVICES, ENDPOINTS)
    assert values(z.answer("web.default.svc.k.test", QTYPE.A)) == ["10.96.0.10"]
    assert z.answer("web.default.svc.cluster.local", QTYPE.A) is None
