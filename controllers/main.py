"""``ketch-controller-manager``: every reconcile loop in one process, one active replica."""

from __future__ import annotations

import argparse
import asyncio

from controllers.controller import Controller, InformerSet
from controllers.daemonset import DaemonSetController
from controllers.deployment import DeploymentController
from controllers.endpoints import EndpointsController
from controllers.garbage_collector import GarbageCollector
from controllers.job import JobController
from controllers.node_lifecycle import NodeLifecycleController
from controllers.pod_cidr import PodCIDRAllocator
from controllers.replicaset import ReplicaSetController
from ketch import daemon
from ketch.events import EventRecorder

ALL = ("replicaset", "deployment", "daemonset", "job", "endpoints", "garbagecollector", "nodelifecycle", "podcidr")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ketch-controller-manager", description=__doc__)
    daemon.add_common_flags(parser, metrics_port=10252)
    daemon.add_leader_election_flags(parser, lease_name="kube-controller-manager")
    parser.add_argument("--controllers", default=",".join(ALL), help=f"comma list of {', '.join(ALL)}")
    parser.add_argument("--node-monitor-grace-period", type=float, default=40.0,
                        help="seconds without a heartbeat before a node is Unknown")
    parser.add_argument("--default-toleration-seconds", type=int, default=300,
                        help="how long pods stay on a not-ready/unreachable node unless they say otherwise")
    parser.add_argument("--cluster-cidr", default="10.244.0.0/16")
    parser.add_argument("--node-cidr-mask-size", type=int, default=24)
    return parser.parse_args(argv)


def build(args: argparse.Namespace, client, informers: InformerSet, recorder: EventRecorder) -> list[Controller]:  # noqa: ANN001
    wanted = {c.strip() for c in args.controllers.split(",") if c.strip()}
    unknown = wanted - set(ALL)
    if unknown:
        raise SystemExit(f"unknown controllers: {', '.join(sorted(unknown))} (known: {', '.join(ALL)})")
    factories = {
        "replicaset": lambda: ReplicaSetController(client, informers, recorder),
        "deployment": lambda: DeploymentController(client, informers, recorder),
        "daemonset": lambda: DaemonSetController(client, informers, recorder),
        "job": lambda: JobController(client, informers, recorder),
        "endpoints": lambda: EndpointsController(client, informers, recorder),
        "garbagecollector": lambda: GarbageCollector(client, informers, recorder),
        "nodelifecycle": lambda: NodeLifecycleController(
            client, informers, recorder, grace_period=args.node_monitor_grace_period,
            default_toleration_seconds=args.default_toleration_seconds,
        ),
        "podcidr": lambda: PodCIDRAllocator(
            client, informers, recorder, cluster_cidr=args.cluster_cidr, node_mask=args.node_cidr_mask_size,
        ),
    }
    return [factories[name]() for name in ALL if name in wanted]


async def run_controllers(args: argparse.Namespace, client) -> None:  # noqa: ANN001
    informers = InformerSet(client)
    recorder = EventRecorder(client, "controller-manager")
    controllers = build(args, client, informers, recorder)
    informers.start()
    try:
        await asyncio.gather(*(c.run() for c in controllers))
    finally:
        await informers.stop()


async def run(args: argparse.Namespace) -> None:
    client = daemon.client_from_args(args, "ketch-controller-manager")
    await daemon.run_elected(args, client, lambda: run_controllers(args, client))


def main(argv: list[str] | None = None) -> int:
    return daemon.main("controller-manager", parse_args(argv), run)


if __name__ == "__main__":
    raise SystemExit(main())
