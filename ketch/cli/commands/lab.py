"""`ketch up` and `ketch down`: the local lab (logic in ketch.lab)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ketch.cli.flags import Parser


def build_parser(name: str) -> argparse.ArgumentParser:
    if name == "up":
        desc = ("Start etcd and the apiserver as background daemons (state under --state-dir), "
                "then merge an admin context named \"ketch\" into your kubeconfig and make it current.")
    else:
        desc = "Stop the daemons `ketch up` started (by their recorded pids); state is kept."
    p = Parser(prog=f"ketch {name}", description=desc)
    p.add_argument("--state-dir", type=Path, default=None,
                   help="keep state, pid files and logs under DIR (default /var/lib/ketch, "
                        "/run/ketch, /var/log/ketch)")
    if name == "up":
        p.add_argument("--apiserver-port", type=int, help="HTTPS port of the apiserver (default 6443)")
        p.add_argument("--etcd-client-port", type=int, help="etcd client port (default 2379)")
        p.add_argument("--etcd-peer-port", type=int, help="etcd peer port (default 2380)")
        p.add_argument("--bind-address", help="address to serve on (default 127.0.0.1)")
    return p


def run(name: str, argv: list[str], ctx) -> int:
    from ketch.cli.errors import CommandError
    from ketch.lab import cluster
    from ketch.lab.components import LabLayout

    args = build_parser(name).parse_args(argv)
    layout = LabLayout.under(args.state_dir)
    try:
        if name == "down":
            return cluster.down(layout, say=ctx.print)
        from ketch.client.kubeconfig import write_target

        settings = cluster.effective_settings(layout, {
            "apiserver_port": args.apiserver_port, "etcd_client_port": args.etcd_client_port,
            "etcd_peer_port": args.etcd_peer_port, "bind_address": args.bind_address,
        })
        target = ctx.flags.get("kubeconfig") or write_target()
        return cluster.up(layout, settings, str(target), say=ctx.print)
    except (cluster.LabError, RuntimeError) as e:
        raise CommandError(str(e)) from None
