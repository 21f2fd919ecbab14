"""What every cluster daemon shares: flags to reach the apiserver, metrics, logs, leader election, main.

The scheduler, the controller-manager and the node agent differ only in the
work they do; how they start, log, expose /metrics, elect a leader and stop
is the same, and lives here once.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable

from ketch.client.aio import AsyncClient, ClusterAccess
from ketch.logconfig import setup_logging


def add_common_flags(parser: argparse.ArgumentParser, *, metrics_port: int) -> None:
    parser.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig with the apiserver address and credentials (default: $KUBECONFIG, else ~/.kube/config)",
    )
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument(
        "--metrics-bind-address",
        default=f"127.0.0.1:{metrics_port}",
        help="where /metrics is served; empty to disable",
    )
    parser.add_argument("--log-level", default="INFO")


def add_leader_election_flags(parser: argparse.ArgumentParser, *, lease_name: str) -> None:
    parser.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--lease-name", default=lease_name)
    parser.add_argument("--lease-duration", type=float, default=15.0)


def client_from_args(args: argparse.Namespace, user_agent: str) -> AsyncClient:
    access = ClusterAccess.from_kubeconfig(args.kubeconfig, args.context)
    return AsyncClient(access, user_agent=user_agent)


def start_metrics(args: argparse.Namespace) -> None:
    if not args.metrics_bind_address:
        return
    from prometheus_client import start_http_server

    host, _, port = args.metrics_bind_address.rpartition(":")
    start_http_server(int(port), addr=host or "127.0.0.1")


async def run_elected(args: argparse.Namespace, client: AsyncClient, work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` while holding the Lease (or at once with --no-leader-elect), then close the client."""
    from ketch.leader_election import LeaderElector

    try:
        if args.leader_elect:
            elector = LeaderElector(
                client, args.lease_name, lease_duration=args.lease_duration,
                renew_deadline=args.lease_duration * 2 / 3, retry_period=args.lease_duration / 7,
            )
            await elector.run(work)
        else:
            await work()
    finally:
        await client.close()


def main(component: str, args: argparse.Namespace, run: Callable[[argparse.Namespace], Awaitable[None]]) -> int:
    """Log setup, /metrics, the event loop; SIGTERM and Ctrl-C cancel the work so it can clean up
    (a leader gives its Lease back instead of making a successor wait for it to expire)."""
    setup_logging(component, args.log_level)
    start_metrics(args)

    async def until_signalled() -> None:
        main_task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, main_task.cancel)
        try:
            await run(args)
        except asyncio.CancelledError:
            pass

    asyncio.run(until_signalled())
    return 0
