"""``ketch-node-agent``: register this machine as a Node and run the pods bound to it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
from pathlib import Path

import grpc

from ketch import daemon
from ketch.api.resources import lookup
from ketch.events import EventRecorder
from ketch.informer import Informer
from node_agent.network import cluster as cluster_network
from node_agent.node_status import NodeConfig, NodeStatusReporter, default_internal_ip
from node_agent.pod_manager import PodManager
from node_agent.pod_volumes import PodVolumes
from node_agent.pod_worker import AgentContext
from node_agent.resolv_conf import ResolvConfig
from node_agent.runtime.client import AsyncRuntimeClient, default_socket
from proto import runtime_pb2 as pb

log = logging.getLogger("ketch.node_agent")

PODS = lookup("", "v1", "pods")
NODES = lookup("", "v1", "nodes")
POD_NETWORK = "pods"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ketch-node-agent", description=__doc__)
    daemon.add_common_flags(p, metrics_port=10255)
    p.add_argument("--node-name", default=socket.gethostname())
    p.add_argument("--node-ip", default=None, help="InternalIP to report (default: the host's outbound address)")
    p.add_argument("--root-dir", default="/var/lib/ketch/node-agent")
    p.add_argument("--port", type=int, default=10250,
                   help="the agent API (logs, exec, attach, port-forward, stats) on --node-ip; 0 = off")
    p.add_argument("--runtime-endpoint", default=default_socket(), help="the runtime daemon's unix socket")
    p.add_argument("--cluster-dns", default="", help="comma list of cluster DNS server addresses")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--allow-privileged", action="store_true")
    p.add_argument("--node-labels", default="", help="k=v,k2=v2 added to the Node")
    p.add_argument("--register-with-taints", default="", help="key=value:Effect,... added at registration")
    p.add_argument("--pod-cidr-wait", type=float, default=30.0,
                   help="seconds to wait for spec.podCIDR before using the runtime's default bridge")
    p.add_argument("--lease-duration", type=int, default=40)
    p.add_argument("--lease-renew-interval", type=float, default=10.0)
    cluster_network.add_flags(p)
    return p.parse_args(argv)


def parse_taints(text: str) -> list[dict]:
    taints = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        kv, _, effect = item.partition(":")
        key, _, value = kv.partition("=")
        taint = {"key": key, "effect": effect or "NoSchedule"}
        if value:
            taint["value"] = value
        taints.append(taint)
    return taints


async def ensure_pod_network(runtime: AsyncRuntimeClient, client, node_name: str, wait: float,  # noqa: ANN001
                             cluster_cidr: str) -> str:
    """The runtime network pods join: a bridge on this node's pod CIDR."""
    deadline = asyncio.get_running_loop().time() + wait
    cidr = ""
    while True:
        node = await client.get(NODES, node_name)
        cidr = (node.get("spec") or {}).get("podCIDR", "")
        if cidr or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    if not cidr:
        log.warning("node=%s has no spec.podCIDR after %ss: pods use the runtime's default bridge", node_name, wait)
        return "bridge"
    try:
        existing = await runtime.networks.InspectNetwork(pb.InspectNetworkRequest(name=POD_NETWORK))
        if existing.subnet == cidr:
            return POD_NETWORK
        log.warning("pod network subnet %s differs from podCIDR %s: recreating it", existing.subnet, cidr)
        await runtime.networks.RemoveNetwork(pb.RemoveNetworkRequest(name=POD_NETWORK))
    except grpc.aio.AioRpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:
            raise
    # Pod-to-pod traffic keeps its source address (the runtime masquerades only what leaves the
    # cluster), and pods find each other through cluster DNS, not /etc/hosts.
    await runtime.networks.CreateNetwork(pb.CreateNetworkRequest(
        name=POD_NETWORK, subnet=cidr,
        labels={"io.ketch.network": "pods", "ketch.io/no-masquerade-to": cluster_cidr,
                "ketch.io/peer-hosts": "false"}))
    log.info("pod network on %s", cidr)
    return POD_NETWORK


async def run(args: argparse.Namespace) -> None:
    client = daemon.client_from_args(args, f"ketch-node-agent/{args.node_name}")
    runtime = AsyncRuntimeClient(args.runtime_endpoint)
    root = Path(args.root_dir)
    root.mkdir(parents=True, exist_ok=True)

    async def runtime_ready() -> tuple[bool, str]:
        try:
            await runtime.runtime.Version(pb.VersionRequest(), timeout=3)
            return True, ""
        except grpc.aio.AioRpcError as err:
            return False, f"container runtime is down: {err.details() or err.code()}"

    async def list_images() -> list[dict]:
        try:
            images = await runtime.images.ListImages(pb.ListImagesRequest(), timeout=5)
        except grpc.aio.AioRpcError:
            return []
        return [{"repo_tags": list(i.repo_tags), "repo_digests": list(i.repo_digests), "size": i.size}
                for i in images.images]

    labels = dict(kv.split("=", 1) for kv in args.node_labels.split(",") if "=" in kv)
    config = NodeConfig(
        name=args.node_name, internal_ip=args.node_ip or default_internal_ip(), max_pods=args.max_pods,
        agent_port=args.port,
        labels=labels, taints=parse_taints(args.register_with_taints),
    )
    reporter = NodeStatusReporter(
        client, config, root_dir=str(root), runtime_ready=runtime_ready, list_images=list_images,
        lease_duration=args.lease_duration, lease_renew_interval=args.lease_renew_interval,
    )
    try:
        node = await reporter.register()
        network = await ensure_pod_network(runtime, client, args.node_name, args.pod_cidr_wait, args.cluster_cidr)
        pod_net = await runtime.networks.InspectNetwork(pb.InspectNetworkRequest(name=network))
        gateway = pod_net.gateway if network == POD_NETWORK else ""
        ctx = AgentContext(
            client=client, runtime=runtime, volumes=PodVolumes(root),
            recorder=EventRecorder(client, "kubelet", args.node_name),
            node_name=args.node_name, host_ip=config.internal_ip, root=root, pod_network=network,
            resolv=ResolvConfig(cluster_network.cluster_dns_servers(args, gateway), args.cluster_domain),
            node_allocatable=(node.get("status") or {}).get("allocatable") or {},
            allow_privileged=args.allow_privileged,
        )
        informer = Informer(client, PODS, field_selector=f"spec.nodeName={args.node_name}")
        pods = PodManager(ctx, informer)
        net = None
        if args.cluster_network and gateway:
            net = cluster_network.from_args(args, client, args.node_name, config.internal_ip,
                                            pod_bridge=pod_net.bridge, gateway=gateway)
        tasks = [reporter.run(), pods.run()]
        if net is not None:
            tasks.append(net.run())
        if args.port:
            from node_agent.server.app import AgentServerConfig, serve_agent_api

            tasks.append(serve_agent_api(pods, runtime, AgentServerConfig.from_args(args, config.internal_ip)))
        await asyncio.gather(*tasks)
    finally:
        await runtime.close()
        await client.close()


def main(argv: list[str] | None = None) -> int:
    return daemon.main("node-agent", parse_args(argv), run)


if __name__ == "__main__":
    raise SystemExit(main())
