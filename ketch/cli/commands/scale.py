"""`ketch scale --replicas=N`: a merge patch to the scale subresource, as kubectl sends it."""

from __future__ import annotations

from ketch.cli.errors import CommandError
from ketch.cli.flags import Parser
from ketch.cli.output import name_of
from ketch.cli.targets import parse_targets, path_for
from ketch.client.rest import MERGE_PATCH


def run(_name: str, argv: list[str], ctx) -> int:
    p = Parser(prog="ketch scale", description="Set a new size for a deployment or replica set.")
    p.add_argument("args", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument("--replicas", type=int, required=True)
    p.add_argument("--current-replicas", type=int, default=-1,
                   help="only scale if the current size is this")
    args = p.parse_intermixed_args(argv)
    if args.replicas < 0:
        raise CommandError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    for info, names in parse_targets(ctx, args.args):
        if "scale" not in info.subresources:
            raise CommandError(f"{info.group_resource} cannot be scaled: it has no scale subresource")
        if not names:
            raise CommandError("resource(s) were provided, but no name was specified")
        ns = ctx.namespace if info.namespaced else None
        for name in names:
            path = path_for(info, ns, name, "scale")
            if args.current_replicas >= 0:
                scale = ctx.client.get(path)
                have = scale.get("spec", {}).get("replicas", 0)
                if have != args.current_replicas:
                    raise CommandError(
                        f"Expected replicas to be {args.current_replicas}, was {have}")
            ctx.client.patch(path, {"spec": {"replicas": args.replicas}}, content_type=MERGE_PATCH)
            ctx.print(f"{name_of(info, {'metadata': {'name': name}})} scaled")
    return 0
