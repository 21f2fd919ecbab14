"""Overlay desired state from Node objects (no kernel)."""

from __future__ import annotations

from node_agent.network import overlay


def node(name: str, cidr: str = "", mac: str = "", ip: str = "", internal: str = "", deleting: bool = False) -> dict:
    meta: dict = {"name": name, "annotations": {}}
    if mac:
        meta["annotations"][overlay.VTEP_MAC_ANNOTATION] = mac
    if ip:
        meta["annotations"][overlay.PUBLIC_IP_ANNOTATION] = ip
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status = {"addresses": [{"type": "InternalIP", "address": internal}]} if internal else {}
    return {"metadata": meta, "spec": {"podCIDR": cidr} if cidr else {}, "status": status}


def test_vtep_address_is_the_network_address_of_the_pod_cidr() -> None:
    assert overlay.vtep_address("10.244.3.0/24") == "10.244.3.0"
    assert overlay.vtep_address("10.244.3.7/24") == "10.244.3.0"


def test_peers_are_other_complete_nodes_sorted() -> None:
    nodes = [
        node("b", "10.244.2.0/24", "AA:BB:CC:00:00:02", "10.213.60.12"),
        node("self", "10.244.1.0/24", "aa:bb:cc:00:00:01", "10.213.60.11"),
        node("a", "10.244.3.0/24", "aa:bb:cc:00:00:03", internal="10.213.60.13"),
        node("no-cidr", mac="aa:bb:cc:00:00:04", ip="10.213.60.14"),
        node("no-mac", "10.244.5.0/24", ip="10.213.60.15"),
        node("bad-mac", "10.244.6.0/24", "zz", "10.213.60.16"),
        node("going", "10.244.7.0/24", "aa:bb:cc:00:00:07", "10.213.60.17", deleting=True),
    ]
    peers = overlay.desired_peers(nodes, "self")
    assert peers == [
        overlay.Peer("a", "10.244.3.0/24", "10.244.3.0", "aa:bb:cc:00:00:03", "10.213.60.13"),
        overlay.Peer("b", "10.244.2.0/24", "10.244.2.0", "aa:bb:cc:00:00:02", "10.213.60.12"),
    ]


def test_published_address_wins_over_internal_ip() -> None:
    n = node("x", internal="10.0.0.1", ip="10.213.60.20")
    assert overlay.node_ip(n) == "10.213.60.20"
    assert overlay.node_ip(node("y", internal="10.0.0.1")) == "10.0.0.1"
    assert overlay.node_ip(node("z")) == ""
