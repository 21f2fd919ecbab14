"""``ketch-scheduler``: place pending pods on nodes; one active replica via a Lease."""

from __future__ import annotations

import argparse
import asyncio

from ketch.daemon_args import add_common_flags, client_from_args, start_metrics
from ketch.leader_election import LeaderElector
from ketch.logconfig import setup_logging
from scheduler.scheduler import Scheduler


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ketch-scheduler", description=__doc__)
    add_common_flags(parser, metrics_port=10251)
    parser.add_argument("--scheduler-name", default="default-scheduler")
    parser.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--lease-name", default="kube-scheduler")
    parser.add_argument("--lease-duration", type=float, default=15.0)
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    client = client_from_args(args, "ketch-scheduler")
    scheduler = Scheduler(client, scheduler_name=args.scheduler_name)
    try:
        if args.leader_elect:
            elector = LeaderElector(
                client, args.lease_name, lease_duration=args.lease_duration,
                renew_deadline=args.lease_duration * 2 / 3, retry_period=args.lease_duration / 7,
            )
            await elector.run(scheduler.run)
        else:
            await scheduler.run()
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging("scheduler", args.log_level)
    start_metrics(args)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
