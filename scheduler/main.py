"""``ketch-scheduler``: place pending pods on nodes; one active replica via a Lease."""

from __future__ import annotations

import argparse

from ketch import daemon
from scheduler.scheduler import Scheduler


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ketch-scheduler", description=__doc__)
    daemon.add_common_flags(parser, metrics_port=10251)
    daemon.add_leader_election_flags(parser, lease_name="kube-scheduler")
    parser.add_argument("--scheduler-name", default="default-scheduler")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    client = daemon.client_from_args(args, "ketch-scheduler")
    scheduler = Scheduler(client, scheduler_name=args.scheduler_name)
    await daemon.run_elected(args, client, scheduler.run)


def main(argv: list[str] | None = None) -> int:
    return daemon.main("scheduler", parse_args(argv), run)


if __name__ == "__main__":
    raise SystemExit(main())
