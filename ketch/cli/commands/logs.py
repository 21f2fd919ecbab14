"""`ketch logs [-f] [--tail N] [-t] [-c C] [-p] POD`: a container's log through pods/log, as kubectl."""

from __future__ import annotations

import sys

from ketch.cli.errors import CommandError
from ketch.cli.flags import Parser


def parse_duration(text: str) -> int:
    """`30s`, `5m`, `2h`, `1h30m` to whole seconds (kubectl's --since)."""
    units = {"s": 1, "m": 60, "h": 3600}
    total, number = 0.0, ""
    for ch in text:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in units and number:
            total += float(number) * units[ch]
            number = ""
        else:
            raise CommandError(f'invalid argument "{text}" for "--since" flag: time: invalid duration "{text}"')
    if number:
        raise CommandError(f'invalid argument "{text}" for "--since" flag: time: missing unit in duration "{text}"')
    return max(int(total), 1)


def pod_name(arg: str) -> str:
    kind, slash, name = arg.partition("/")
    if not slash:
        return arg
    if kind not in ("pod", "pods", "po"):
        raise CommandError(f"ketch logs takes a pod: {arg!r} is a {kind}")
    return name


def default_container(ctx, pod: dict, err) -> str:  # noqa: ANN001
    """The annotation's container or the first, saying so when there was a choice (as kubectl does)."""
    containers = [c["name"] for c in pod["spec"].get("containers") or []]
    wanted = (pod["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    name = wanted if wanted in containers else containers[0]
    if len(containers) > 1 and wanted not in containers:
        err.write(f'Defaulted container "{name}" out of: {", ".join(containers)}\n')
    return name


def run(_name: str, argv: list[str], ctx) -> int:  # noqa: ANN001
    p = Parser(prog="ketch logs", description="Print the logs for a container in a pod.")
    p.add_argument("pod", metavar="POD")
    p.add_argument("-c", "--container", default="")
    p.add_argument("-f", "--follow", action="store_true", help="stream the log as it grows")
    p.add_argument("--tail", type=int, default=-1, help="lines of recent log to show (-1: all)")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("-p", "--previous", action="store_true", help="the previous instance of the container")
    p.add_argument("--since", default="", help="only newer logs, e.g. 5s, 2m, 3h")
    p.add_argument("--since-time", default="", help="only logs after this RFC 3339 time")
    p.add_argument("--limit-bytes", type=int, default=0)
    args = p.parse_intermixed_args(argv)
    if args.since and args.since_time:
        raise CommandError("at most one of `sinceTime` or `sinceSeconds` may be specified")
    from ketch.streaming.client import stream_get

    name, ns = pod_name(args.pod), ctx.namespace
    path = f"/api/v1/namespaces/{ns}/pods/{name}"
    container = args.container or default_container(ctx, ctx.client.get(path), ctx.err)
    query = [("container", container)]
    for key, value in (("follow", args.follow), ("previous", args.previous), ("timestamps", args.timestamps)):
        if value:
            query.append((key, "true"))
    if args.tail >= 0:
        query.append(("tailLines", str(args.tail)))
    if args.since:
        query.append(("sinceSeconds", str(parse_duration(args.since))))
    if args.since_time:
        query.append(("sinceTime", args.since_time))
    if args.limit_bytes > 0:
        query.append(("limitBytes", str(args.limit_bytes)))
    out = sys.stdout.buffer
    for chunk in stream_get(ctx.client, path + "/log", query):
        out.write(chunk)
        out.flush()
    return 0
