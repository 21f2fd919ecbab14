"""Overlay.reconcile without a kernel: what it asks netlink to do and what it patches on its Node."""

from __future__ import annotations

from node_agent.network import overlay

from ketch.informer import Store


class Nodes:
    def __init__(self, *nodes: dict) -> None:
        self.store = Store()
        for n in nodes:
            self.store.put(n["metadata"]["name"], n)

    def add_handler(self, **_: object) -> None:
        pass


class Client:
    def __init__(self, nodes: Nodes) -> None:
        self.nodes = nodes
        self.patches: list[tuple[str, dict]] = []

    async def patch(self, info, name: str, body: dict) -> dict:  # noqa: ANN001
        self.patches.append((name, body))
        node = self.nodes.store.get(name)
        node["metadata"].setdefault("annotations", {}).update(body["metadata"]["annotations"])
        return node


class Netlink:
    """Records the netlink calls; answers like a kernel would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    async def __call__(self, fn, *args, **kwargs):  # noqa: ANN001, ANN204
        self.calls.append((fn.__name__, args, kwargs))
        return {"underlay_mtu": 1500, "ensure_device": "aa:bb:cc:dd:ee:01", "set_mtu": True,
                "reconcile_peers": overlay.Changes(added=["x"])}[fn.__name__]


def node(name: str, cidr: str = "", annotations: dict | None = None) -> dict:
    return {"metadata": {"name": name, "annotations": dict(annotations or {})},
            "spec": {"podCIDR": cidr} if cidr else {}}


async def test_nothing_happens_before_the_node_has_a_pod_cidr() -> None:
    nodes = Nodes(node("n1"))
    netlink = Netlink()
    ov = overlay.Overlay(overlay.OverlayConfig("n1", "10.213.60.11"), nodes, Client(nodes), run_netlink=netlink)
    assert not await ov.reconcile()
    assert netlink.calls == []


async def test_first_pass_sets_up_publishes_and_programs_peers_then_only_reconciles() -> None:
    peer = node("n2", "10.244.2.0/24", {overlay.VTEP_MAC_ANNOTATION: "aa:bb:cc:dd:ee:02",
                                       overlay.PUBLIC_IP_ANNOTATION: "10.213.60.12"})
    nodes = Nodes(node("n1", "10.244.1.0/24"), peer)
    client, netlink = Client(nodes), Netlink()
    ov = overlay.Overlay(overlay.OverlayConfig("n1", "10.213.60.11"), nodes, client, run_netlink=netlink)
    await ov.reconcile()
    names = [c[0] for c in netlink.calls]
    assert names == ["underlay_mtu", "ensure_device", "set_mtu", "reconcile_peers"]
    ensure = netlink.calls[1]
    assert ensure[2]["address"] == "10.244.1.0" and ensure[2]["mtu"] == 1450 and ensure[2]["local_ip"] == "10.213.60.11"
    assert client.patches == [("n1", {"metadata": {"annotations": {
        overlay.VTEP_MAC_ANNOTATION: "aa:bb:cc:dd:ee:01", overlay.PUBLIC_IP_ANNOTATION: "10.213.60.11"}}})]
    assert netlink.calls[3][1] == ("ketch-vxlan", overlay.desired_peers(nodes.store.list(), "n1"))
    netlink.calls.clear()
    await ov.reconcile()  # published already, device set up: reconcile peers (and bridge MTU) only
    assert [c[0] for c in netlink.calls] == ["set_mtu", "reconcile_peers"]
    assert len(client.patches) == 1
