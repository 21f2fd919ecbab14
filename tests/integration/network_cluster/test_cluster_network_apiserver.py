"""ClusterNetwork against the real apiserver: Node annotations, overlay and proxy follow the API.

Two lab nodes (network namespaces) each run a ClusterNetwork from this
process, programming their namespace (``netns=``) while the informers talk to
the session apiserver on loopback. Node, Service and Endpoints objects are
created through the API; nothing else drives the kernel.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from dnslib import RCODE, DNSRecord
from node_agent.dns.records import reverse_name
from node_agent.network import netns, overlay
from node_agent.network.cluster import ClusterNetwork

from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.client.aio import AsyncClient, ClusterAccess
from tests.integration.network_cluster.lab import CLUSTER_CIDR, Lab, sh

NODES = lookup("", "v1", "nodes")
SERVICES = lookup("", "v1", "services")
ENDPOINTS = lookup("", "v1", "endpoints")


def _query(server: str, name: str, qtype: str = "A") -> DNSRecord:
    return DNSRecord.parse(DNSRecord.question(name, qtype).send(server, 53, timeout=2))


async def eventually(check, timeout: float = 15.0):  # noqa: ANN001, ANN201
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


@pytest.fixture
async def api_lab(apiserver, run_id: str, tmp_path) -> AsyncIterator[tuple[Lab, AsyncClient]]:  # noqa: ANN001
    lab = Lab(run_id, tmp_path, nodes=2, pods_per_node=1, tag="a", node_prefix=f"ketch-{run_id}-n")
    client = AsyncClient(ClusterAccess.from_kubeconfig(str(apiserver.kubeconfig)))
    lab.up()
    try:
        for node in lab.nodes:
            await client.create(NODES, {"metadata": {"name": node.name}, "spec": {"podCIDR": node.pod_cidr},
                                        "status": {"addresses": [{"type": "InternalIP", "address": node.ip}]}})
        yield lab, client
    finally:
        for node in lab.nodes:
            try:
                await client.delete(NODES, node.name)
            except ApiError:
                pass
        await client.close()
        lab.down()


async def test_cluster_network_follows_nodes_services_and_endpoints(api_lab) -> None:  # noqa: ANN001
    lab, client = api_lab
    n1, n2 = lab.nodes
    no_upstream = lab.work / "resolv.conf"
    no_upstream.write_text("# no upstream: only cluster names are asked here\n")
    nets = [ClusterNetwork(client, n.name, n.ip, netns=n.netns, cluster_cidr=CLUSTER_CIDR,
                           dns_address=n.gateway, dns_port=53, upstream_resolv_conf=str(no_upstream),
                           service_cidr="10.96.0.0/12", hairpin_interval=0.5,
                           debounce=0.05, resync=1.0, cleanup=True) for n in lab.nodes]
    tasks = [asyncio.create_task(net.run()) for net in nets]
    port = random.randint(20000, 29999)
    svc_name = f"ketch-{lab.rid}-web"
    try:
        # the agent publishes its VTEP on its Node, and peers program routes from it
        async def published() -> bool:
            nodes = [await client.get(NODES, n.name) for n in lab.nodes]
            return all(overlay.VTEP_MAC_ANNOTATION in (x["metadata"].get("annotations") or {}) for x in nodes)

        assert await eventually(published)
        node2 = await client.get(NODES, n2.name)
        assert node2["metadata"]["annotations"][overlay.PUBLIC_IP_ANNOTATION] == n2.ip

        async def routed() -> bool:
            return n2.pod_cidr in sh("ip", "-n", n1.netns, "route", "show", "dev", overlay.DEFAULT_DEVICE,
                                     check=False).stdout

        assert await eventually(routed)
        for node in lab.nodes:
            lab.serve(node.pods[0].netns, port, node.pods[0].name)
        a, b = n1.pods[0], n2.pods[0]
        assert await asyncio.to_thread(lab.connect, a.netns, b.ip, port) == f"{b.name} {a.ip}"

        # a Service with its Endpoints through the API reaches the table of every node
        svc = await client.create(SERVICES, {"metadata": {"name": svc_name},
                                             "spec": {"ports": [{"name": "web", "port": 80, "targetPort": port}]}},
                                  namespace="default")
        cluster_ip = svc["spec"]["clusterIP"]
        await client.create(ENDPOINTS, {"metadata": {"name": svc_name},
                                        "subsets": [{"addresses": [{"ip": b.ip}], "ports": [{"name": "web", "port": port}]}]},
                            namespace="default")

        async def programmed() -> bool:
            return all(cluster_ip in lab.table(n) for n in lab.nodes)

        assert await eventually(programmed)
        assert (await asyncio.to_thread(lab.connect, a.netns, cluster_ip, 80)).startswith(b.name)
        # from the nodes themselves too (no default route there: ClusterNetwork routes the service CIDR)
        for node in lab.nodes:
            assert (await asyncio.to_thread(lab.connect, node.netns, cluster_ip, 80)).startswith(b.name)

        # a pod asks its node's DNS server (on the pod gateway) and reaches the Service by name
        fqdn = f"{svc_name}.default.svc.cluster.local"

        async def resolved() -> list[str]:
            reply = await asyncio.to_thread(netns.run_in, a.path, _query, n1.gateway, fqdn)
            return [str(rr.rdata) for rr in reply.rr]

        assert await eventually(resolved) == [cluster_ip]
        by_name = (await resolved())[0]
        assert (await asyncio.to_thread(lab.connect, a.netns, by_name, 80)).startswith(b.name)
        reverse = await asyncio.to_thread(netns.run_in, a.path, _query, n1.gateway,
                                          reverse_name(cluster_ip), "PTR")
        assert [str(rr.rdata) for rr in reverse.rr] == [fqdn + "."]
        missing = await asyncio.to_thread(netns.run_in, b.path, _query, n2.gateway,
                                          f"nope-{lab.rid}.default.svc.cluster.local")
        assert missing.header.rcode == RCODE.NXDOMAIN

        # the endpoint turns unready (the endpoints controller moves it): new connections are refused
        endpoints = await client.get(ENDPOINTS, svc_name, namespace="default")
        subset = endpoints["subsets"][0]
        subset["notReadyAddresses"], subset["addresses"] = subset.pop("addresses"), []
        await client.update(ENDPOINTS, endpoints)

        async def refused() -> bool:
            try:
                await asyncio.to_thread(lab.connect, a.netns, cluster_ip, 80, 1.0)
            except ConnectionRefusedError:
                return True
            return False

        assert await eventually(refused, timeout=5)
        endpoints = await client.get(ENDPOINTS, svc_name, namespace="default")
        subset = endpoints["subsets"][0]
        subset["addresses"], subset["notReadyAddresses"] = subset.pop("notReadyAddresses"), []
        await client.update(ENDPOINTS, endpoints)

        async def served() -> bool:
            try:
                return (await asyncio.to_thread(lab.connect, a.netns, cluster_ip, 80, 1.0)).startswith(b.name)
            except OSError:
                return False

        assert await eventually(served, timeout=5)

        # what someone removes behind the agent's back comes back (level-triggered, periodic checks)
        sh("ip", "-n", n1.netns, "link", "del", overlay.DEFAULT_DEVICE)
        sh(*lab.nft(n1), "delete", "table", "ip", "ketch_services")
        assert await eventually(routed)
        assert await eventually(programmed)
        assert await asyncio.to_thread(lab.connect, a.netns, b.ip, port) == f"{b.name} {a.ip}"

        # deleting it removes its rules everywhere
        await client.delete(SERVICES, svc_name, namespace="default")

        async def unprogrammed() -> bool:
            return all(cluster_ip not in lab.table(n) for n in lab.nodes)

        assert await eventually(unprogrammed)

        # a Node that goes away leaves the overlay of the others
        await client.delete(NODES, n2.name)

        async def unrouted() -> bool:
            return n2.pod_cidr not in sh("ip", "-n", n1.netns, "route").stdout

        assert await eventually(unrouted)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await client.delete(ENDPOINTS, svc_name, namespace="default")
        except ApiError:
            pass
    # cleanup=True: what ClusterNetwork programmed is gone
    for node in lab.nodes:
        assert sh(*lab.nft(node), "list", "table", "ip", "ketch_services", check=False).returncode != 0
        assert sh("ip", "-n", node.netns, "link", "show", overlay.DEFAULT_DEVICE, check=False).returncode != 0
