"""The proxy's delta transactions leave exactly the table a whole swap would, and keep affinity state."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest
from node_agent.network import service_rules
from node_agent.network.service_proxy import ServiceProxy, run_nft

from tests.integration.network_cluster.lab import StaticSource, sh

SETTINGS = service_rules.ProxySettings(pod_bridge="ketch-pods", pod_cidr="10.213.64.0/18",
                                       cluster_cidr="10.213.64.0/18")


@pytest.fixture
def two_ns(run_id: str) -> Iterator[tuple[str, str]]:
    names = (f"ketch{run_id}d1", f"ketch{run_id}d2")
    for name in names:
        sh("ip", "netns", "add", name)
    try:
        yield names
    finally:
        for name in names:
            sh("ip", "netns", "delete", name, check=False)


def nft(ns: str) -> list[str]:
    return ["ip", "netns", "exec", ns, "nft"]


def normal(ns: str) -> dict:
    """The table as comparable data: chains with their rules, maps and sets with their elements."""
    data = json.loads(sh(*nft(ns), "-j", "list", "table", "ip", "ketch_services").stdout)["nftables"]
    out: dict = {"chains": {}, "maps": {}, "sets": {}}
    for item in data:
        if "chain" in item:
            out["chains"].setdefault(item["chain"]["name"], [])
        elif "rule" in item:
            out["chains"].setdefault(item["rule"]["chain"], []).append(json.dumps(item["rule"]["expr"], sort_keys=True))
        elif "map" in item:
            m = item["map"]
            out["maps"][m["name"]] = sorted(json.dumps(e, sort_keys=True) for e in m.get("elem", []))
        elif "set" in item:
            s = item["set"]
            out["sets"][s["name"]] = (s.get("timeout"), sorted(json.dumps(e, sort_keys=True) for e in s.get("elem", [])))
    return out


def svc(name: str, ip: str, *, node_port: int = 0, affinity: bool = False, port: int = 80) -> dict:
    spec: dict = {"clusterIP": ip, "type": "NodePort" if node_port else "ClusterIP",
                  "ports": [{"name": "web", "port": port, **({"nodePort": node_port} if node_port else {})}]}
    if affinity:
        spec["sessionAffinity"] = "ClientIP"
    return {"metadata": {"namespace": "default", "name": name}, "spec": spec}


def eps(name: str, ips: list[str]) -> dict:
    return {"metadata": {"namespace": "default", "name": name},
            "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": [{"name": "web", "port": 8080}]}] if ips else []}


def states() -> list[list[list[dict]]]:
    s0 = [[svc("a", "10.213.32.1"), svc("b", "10.213.32.2", node_port=30001)],
          [eps("a", ["10.213.65.10", "10.213.66.10"]), eps("b", ["10.213.65.11"])]]
    s1 = copy.deepcopy(s0)
    s1[1][0] = eps("a", ["10.213.65.10", "10.213.66.10", "10.213.67.10"])  # an endpoint more
    s2 = copy.deepcopy(s1)
    s2[0].append(svc("c", "10.213.32.3", affinity=True))  # affinity Service appears
    s2[1].append(eps("c", ["10.213.65.12", "10.213.66.12"]))
    s3 = copy.deepcopy(s2)
    s3[1][1] = eps("b", [])  # b loses its endpoints: reject
    s4 = copy.deepcopy(s3)
    s4[0] = [x for x in s4[0] if x["metadata"]["name"] != "a"]  # a deleted
    s5 = copy.deepcopy(s4)
    s5[1][2] = eps("c", ["10.213.66.12"])  # c drops one endpoint (its set and chain go)
    s6 = copy.deepcopy(s5)
    s6[0][0] = svc("b", "10.213.32.2", node_port=30002)  # nodePort changes
    s6[1][1] = eps("b", ["10.213.65.11"])
    return [s0, s1, s2, s3, s4, s5, s6]


def test_deltas_leave_the_same_table_as_a_full_swap(two_ns: tuple[str, str]) -> None:
    by_delta, by_swap = two_ns
    services, endpoints = StaticSource(), StaticSource()
    proxy = ServiceProxy(services, endpoints, SETTINGS, nft_command=nft(by_delta))
    modes = []
    for objs, eobjs in states():
        services.set(objs)
        endpoints.set(eobjs)
        timing = proxy.sync_once()
        modes.append(timing.mode)
        run_nft(proxy.render().script, nft(by_swap))
        assert normal(by_delta) == normal(by_swap)
    assert modes == ["full"] + ["delta"] * (len(modes) - 1)
    assert proxy.sync_once() is None  # nothing changed: nothing applied


def test_a_delta_keeps_other_services_affinity_state(two_ns: tuple[str, str]) -> None:
    ns = two_ns[0]
    services, endpoints = StaticSource(), StaticSource()
    proxy = ServiceProxy(services, endpoints, SETTINGS, nft_command=nft(ns))
    objs, eobjs = states()[2]
    services.set(objs)
    endpoints.set(eobjs)
    proxy.sync_once()
    [port] = [p for p in service_rules.service_ports(objs, {f"default/{e['metadata']['name']}": e for e in eobjs})
              if p.name == "c"]
    set_name = port.affinity_set(port.backends[0])
    sh(*nft(ns), "add", "element", "ip", "ketch_services", set_name, "{ 10.213.65.99 }")
    services.set(objs + [svc("d", "10.213.32.4")])  # another Service changes
    assert proxy.sync_once().mode == "delta"
    assert "10.213.65.99" in sh(*nft(ns), "list", "set", "ip", "ketch_services", set_name).stdout


def test_a_refused_delta_falls_back_to_a_full_swap(two_ns: tuple[str, str]) -> None:
    ns = two_ns[0]
    services, endpoints = StaticSource(), StaticSource()
    proxy = ServiceProxy(services, endpoints, SETTINGS, nft_command=nft(ns))
    objs, eobjs = states()[0]
    services.set(objs)
    endpoints.set(eobjs)
    proxy.sync_once()
    sh(*nft(ns), "delete", "table", "ip", "ketch_services")  # someone removed it behind our back
    services.set(objs + [svc("d", "10.213.32.4")])
    endpoints.set(eobjs + [eps("d", ["10.213.65.20"])])
    assert proxy.sync_once().mode == "full"
    assert "10.213.32.4" in sh(*nft(ns), "list", "table", "ip", "ketch_services").stdout
