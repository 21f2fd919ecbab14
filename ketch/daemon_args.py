"""Command-line flags every cluster daemon shares: how to reach the apiserver, metrics, logs."""

from __future__ import annotations

import argparse
import os

from ketch.client.aio import AsyncClient, ClusterAccess


def add_common_flags(parser: argparse.ArgumentParser, *, metrics_port: int) -> None:
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG", os.path.expanduser("~/.kube/config")).split(":")[0],
        help="kubeconfig with the apiserver address and credentials",
    )
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument(
        "--metrics-bind-address",
        default=f"127.0.0.1:{metrics_port}",
        help="where /metrics is served; empty to disable",
    )
    parser.add_argument("--log-level", default="INFO")


def client_from_args(args: argparse.Namespace, user_agent: str) -> AsyncClient:
    access = ClusterAccess.from_kubeconfig(args.kubeconfig, args.context)
    return AsyncClient(access, user_agent=user_agent)


def start_metrics(args: argparse.Namespace) -> None:
    if not args.metrics_bind_address:
        return
    from prometheus_client import start_http_server

    host, _, port = args.metrics_bind_address.rpartition(":")
    start_http_server(int(port), addr=host or "127.0.0.1")
