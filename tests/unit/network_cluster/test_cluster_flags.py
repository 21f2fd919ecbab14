"""The node agent's cluster-network flags and what they build."""

from __future__ import annotations

import argparse

from node_agent.network import cluster


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--cluster-dns", default="")  # the agent's own flags
    p.add_argument("--cluster-domain", default="cluster.local")
    cluster.add_flags(p)
    return p.parse_args(list(argv))


def test_defaults_build_overlay_proxy_and_dns_on_the_gateway() -> None:
    args = parse()
    net = cluster.from_args(args, client=object(), node_name="n1", node_ip="10.213.60.11",
                            pod_bridge="ketch-pods", gateway="10.244.1.1")
    assert net is not None and net.dns is not None and net.dns.host == "10.244.1.1" and net.dns.port == 53
    assert net.overlay.config.device == "ketch-vxlan" and net.overlay.config.port == 8472
    assert net.proxy.settings.table == "ketch_services" and net.proxy.settings.cluster_cidr == "10.244.0.0/16"
    assert cluster.cluster_dns_servers(args, "10.244.1.1") == ["10.244.1.1"]
    assert net.service_cidr == "10.96.0.0/12"


def test_explicit_cluster_dns_and_switches() -> None:
    args = parse("--cluster-dns", "10.96.0.10", "--no-serve-dns", "--vxlan-port", "4789",
                 "--cluster-cidr", "10.32.0.0/12", "--cluster-domain", "k.test")
    assert cluster.cluster_dns_servers(args, "10.244.1.1") == ["10.96.0.10"]
    net = cluster.from_args(args, object(), "n1", "10.213.60.11", pod_bridge="kp", gateway="10.244.1.1")
    assert net.dns is None and net.overlay.config.port == 4789 and net.proxy.settings.pod_bridge == "kp"
    assert cluster.cluster_dns_servers(parse("--no-serve-dns"), "10.244.1.1") == []
    assert cluster.from_args(parse("--no-cluster-network"), object(), "n1", "x", pod_bridge="b", gateway="g") is None
