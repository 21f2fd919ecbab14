"""`ketch up` and `ketch down`: the local lab cluster (logic in ketch.lab)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ketch.cli.flags import Parser


def build_parser(name: str) -> argparse.ArgumentParser:
    if name == "up":
        desc = ("Start a lab cluster on this machine: a bridge, one network namespace per node, the "
                "apiserver (with etcd), controller-manager and scheduler, and per node a runtime and a "
                "node agent; wait until the nodes are Ready; merge an admin context into your kubeconfig "
                "and make it current. Run again to check it or restart what is missing.")
    else:
        desc = ("Power the lab off: stop its containers and daemons (by their recorded pids) and remove "
                "its namespaces, links, cgroups and mounts. State is kept for the next `ketch up` "
                "unless --purge.")
    p = Parser(prog=f"ketch {name}", description=desc)
    p.add_argument("--name", default=None,
                   help="lab name, 1-6 lower-case letters or digits (default lab); it names the kernel "
                        "objects (ketch-NAME-...) and, without --state-dir, the directories")
    p.add_argument("--state-dir", type=Path, default=None,
                   help="keep state, pid files and logs under DIR (default /var/lib/ketch, "
                        "/run/ketch, /var/log/ketch)")
    if name == "up":
        p.add_argument("--nodes", type=int, help="number of nodes (default 2)")
        p.add_argument("--subnet", help="the lab bridge's network (default 10.213.0.0/24: host .1, nodes .11, ...)")
        p.add_argument("--apiserver-port", type=int, help="HTTPS port of the apiserver (default 6443)")
        p.add_argument("--etcd-client-port", type=int, help="etcd client port (default 2379)")
        p.add_argument("--etcd-peer-port", type=int, help="etcd peer port (default 2380)")
        p.add_argument("--cluster-cidr", help="pod network of the cluster (default 10.244.0.0/16)")
        p.add_argument("--node-monitor-grace-period", type=float,
                       help="seconds without a heartbeat before a node is NotReady (default 12)")
        p.add_argument("--default-toleration-seconds", type=int,
                       help="how long pods stay on a NotReady node before eviction (default 30)")
        p.add_argument("--with-sample-app", action="store_true",
                       help="also apply deploy/examples/web.yaml and wait until it is available")
    else:
        p.add_argument("--purge", action="store_true",
                       help="also delete the lab's state (etcd data, images) and its kubeconfig context")
    return p


def run(name: str, argv: list[str], ctx) -> int:
    from ketch.cli.errors import CommandError
    from ketch.lab import cluster
    from ketch.lab.components import LabLayout, LabSettings

    args = build_parser(name).parse_args(argv)
    layout = LabLayout.under(args.state_dir, args.name)
    try:
        from ketch.client.kubeconfig import write_target

        target = ctx.flags.get("kubeconfig") or write_target()
        if name == "down":
            settings = LabSettings.load(layout.settings_file)
            if settings is None and args.name:
                settings = LabSettings(name=args.name)
            return cluster.down(layout, say=ctx.print, purge=args.purge, settings=settings,
                                kubeconfig_path=str(target))

        settings = cluster.effective_settings(layout, {
            "name": args.name, "nodes": args.nodes, "subnet": args.subnet,
            "apiserver_port": args.apiserver_port, "etcd_client_port": args.etcd_client_port,
            "etcd_peer_port": args.etcd_peer_port, "cluster_cidr": args.cluster_cidr,
            "node_monitor_grace_period": args.node_monitor_grace_period,
            "default_toleration_seconds": args.default_toleration_seconds,
        })
        return cluster.up(layout, settings, str(target), say=ctx.print, with_sample_app=args.with_sample_app)
    except (cluster.LabError, RuntimeError) as e:
        raise CommandError(str(e)) from None
