"""Service proxy rendering: which Service ports get rules, and the shape of the table."""

from __future__ import annotations

import re

import pytest
from node_agent.network import service_rules as rules
from node_agent.network.service_rules import Backend, ProxySettings, RenderError


def svc(name: str, ip: str = "10.96.0.10", *, ns: str = "default", ports=None, type_: str = "ClusterIP",
        affinity: int | None = None, **spec) -> dict:
    spec = {"clusterIP": ip, "type": type_, "ports": ports or [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}
    if affinity is not None:
        spec["sessionAffinity"] = "ClientIP"
        if affinity:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": affinity}}
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


def eps(ready: list[str], *, not_ready: list[str] = (), ports=None) -> dict:
    return {"subsets": [{"addresses": [{"ip": ip} for ip in ready],
                         "notReadyAddresses": [{"ip": ip} for ip in not_ready],
                         "ports": ports or [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}


def test_only_ready_addresses_become_backends_with_the_endpoint_port() -> None:
    ports = rules.service_ports([svc("web")], {"default/web": eps(["10.244.2.5", "10.244.1.5"], not_ready=["10.244.3.9"])})
    assert len(ports) == 1
    assert ports[0].backends == (Backend("10.244.1.5", 8080), Backend("10.244.2.5", 8080))
    assert ports[0].node_port == 0 and ports[0].affinity_timeout == 0


def test_ports_match_endpoints_by_name_and_protocol() -> None:
    s = svc("dns", ports=[{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}])
    e = eps(["10.244.1.7"], ports=[{"name": "dns", "port": 5353, "protocol": "UDP"},
                                   {"name": "dns-tcp", "port": 5354, "protocol": "TCP"}])
    by_proto = {p.protocol: p for p in rules.service_ports([s], {"default/dns": e})}
    assert by_proto["udp"].backends == (Backend("10.244.1.7", 5353),)
    assert by_proto["tcp"].backends == (Backend("10.244.1.7", 5354),)


def test_headless_externalname_and_missing_ip_services_get_nothing() -> None:
    services = [svc("headless", "None"), svc("ext", "", type_="ExternalName", externalName="x.example"),
                svc("pending", "")]
    assert rules.service_ports(services, {}) == []


def test_nodeport_only_for_nodeport_services_and_affinity_default_timeout() -> None:
    np = svc("np", ports=[{"name": "http", "port": 80, "nodePort": 30080}], type_="NodePort", affinity=0)
    cip = svc("cip", "10.96.0.11", ports=[{"name": "http", "port": 80, "nodePort": 30081}])
    got = {p.name: p for p in rules.service_ports([np, cip], {})}
    assert got["np"].node_port == 30080 and got["cip"].node_port == 0
    assert got["np"].affinity_timeout == rules.DEFAULT_AFFINITY_TIMEOUT


def _table(script: str) -> str:
    lines = script.splitlines()
    assert lines[0] == "table ip ketch_services" and lines[1] == "delete table ip ketch_services"
    return script


def test_render_spreads_with_numgen_over_every_backend() -> None:
    ports = rules.service_ports([svc("web")], {"default/web": eps(["10.244.1.5", "10.244.2.5", "10.244.3.5"])})
    out = rules.render(ports)
    script = _table(out.script)
    assert "10.96.0.10 . tcp . 80 : goto " + ports[0].chain in script
    assert re.search(r"meta l4proto tcp dnat ip to numgen random mod 3 map "
                     r"\{ 0 : 10\.244\.1\.5 \. 8080, 1 : 10\.244\.2\.5 \. 8080, 2 : 10\.244\.3\.5 \. 8080 \}", script)
    assert out.backends == 3 and out.rejecting == 0


def test_service_without_ready_endpoint_is_rejected_not_forwarded() -> None:
    s = svc("np", ports=[{"name": "http", "port": 80, "nodePort": 30080}], type_="NodePort")
    out = rules.render(rules.service_ports([s], {"default/np": eps([], not_ready=["10.244.1.5"])}))
    assert "10.96.0.10 . tcp . 80 : goto reject_service" in out.script
    assert "tcp . 30080 : goto reject_service" in out.script
    assert "dnat" not in out.script
    assert "reject with tcp reset" in out.script and out.rejecting == 1


def test_nodeport_marks_for_masquerade_then_joins_the_service_chain() -> None:
    s = svc("np", ports=[{"name": "http", "port": 80, "nodePort": 30080}], type_="NodePort")
    [port] = rules.service_ports([s], {"default/np": eps(["10.244.1.5"])})
    script = rules.render([port]).script
    np_chain = "np" + port.chain[3:]
    assert f"tcp . 30080 : goto {np_chain}" in script
    body = script.split(f"chain {np_chain} {{")[1].split("}")[0]
    assert "meta mark set meta mark | 0x4000" in body and f"goto {port.chain}" in body
    assert "meta mark & 0x4000 == 0x4000 masquerade" in script


def test_affinity_records_clients_in_timed_sets_per_endpoint() -> None:
    s = svc("sticky", affinity=60)
    [port] = rules.service_ports([s], {"default/sticky": eps(["10.244.1.5", "10.244.2.5"])})
    out = rules.render([port])
    assert len(out.affinity_sets) == 2
    for backend in port.backends:
        name = port.affinity_set(backend)
        assert f"set {name} {{ type ipv4_addr; flags dynamic,timeout; timeout 60s; }}" in out.script
        assert f"ip saddr @{name} goto {port.endpoint_chain(backend)}" in out.script
        assert f"update @{name} {{ ip saddr }}" in out.script


def test_chain_names_are_stable_and_distinct() -> None:
    a = rules.service_ports([svc("web"), svc("web", ns="other")], {})
    assert a[0].chain != a[1].chain
    assert [p.chain for p in a] == [p.chain for p in rules.service_ports([svc("web", ns="other"), svc("web")], {})]


def test_hairpin_and_pod_to_pod_rules_follow_the_settings() -> None:
    settings = ProxySettings(pod_bridge="ketch-pods", pod_cidr="10.244.0.0/16", cluster_cidr="10.244.0.0/16")
    script = rules.render([], settings).script
    assert 'ct status dnat ip saddr 10.244.0.0/16 oifname "ketch-pods" masquerade' in script
    assert "ip saddr 10.244.0.0/16 ip daddr 10.244.0.0/16 ct status != dnat snat ip to ip saddr" in script
    assert "oifname" not in rules.render([]).script


@pytest.mark.parametrize("settings", [ProxySettings(table="services"), ProxySettings(table="ketch-x"),
                                      ProxySettings(pod_bridge="bad name"), ProxySettings(cluster_cidr="10.0.0.0/33")])
def test_bad_settings_are_refused(settings: ProxySettings) -> None:
    with pytest.raises(RenderError):
        rules.render([], settings)


def test_thousand_services_render_quickly() -> None:
    import time

    services, endpoints = [], {}
    for i in range(1000):
        services.append(svc(f"s{i}", f"10.96.{i // 250}.{i % 250 + 1}"))
        endpoints[f"default/s{i}"] = eps([f"10.244.{i % 200}.{j + 2}" for j in range(10)])
    began = time.perf_counter()
    out = rules.render(rules.service_ports(services, endpoints))
    assert out.backends == 10_000
    assert time.perf_counter() - began < 1.0
