"""`ketch label` and `ketch annotate`: `k=v` sets, `k-` removes, `--overwrite` to change."""

from __future__ import annotations

import argparse

from ketch.cli.errors import CommandError, status_text
from ketch.cli.flags import Parser
from ketch.cli.output import name_of
from ketch.cli.targets import parse_targets, path_for
from ketch.client.rest import MERGE_PATCH, ApiStatusError


def build_parser(verb: str) -> argparse.ArgumentParser:
    p = Parser(prog=f"ketch {verb}", description=f"Update the {verb}s on resources.")
    p.add_argument("args", nargs="+", metavar="TYPE NAME|TYPE/NAME KEY=VAL|KEY-")
    p.add_argument("--overwrite", action="store_true", help="allow changing an existing value")
    p.add_argument("-l", "--selector")
    p.add_argument("--all", action="store_true")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--resource-version", help="only if the object still has this resourceVersion")
    p.add_argument("-o", "--output", choices=["name"])
    return p


def split_changes(args: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """Resource arguments, then `k=v` to set and `k-` to remove (kubectl's order)."""
    resources, sets, removes = [], {}, []
    for a in args:
        if "=" in a:
            k, v = a.split("=", 1)
            if not k:
                raise CommandError(f"invalid {a!r}: a key is required")
            sets[k] = v
        elif a.endswith("-") and resources:  # object names never end in "-"
            removes.append(a[:-1])
        else:
            resources.append(a)
    if not sets and not removes:
        raise CommandError("at least one label update is required")
    overlap = set(sets) & set(removes)
    if overlap:
        raise CommandError(f"can not both modify and remove the same key: {sorted(overlap)}")
    return resources, sets, removes


def run(verb: str, argv: list[str], ctx) -> int:
    args = build_parser(verb).parse_intermixed_args(argv)
    field = "labels" if verb == "label" else "annotations"
    past = "labeled" if verb == "label" else "annotated"
    resource_args, sets, removes = split_changes(args.args)
    targets = parse_targets(ctx, resource_args)
    client = ctx.client
    objects: list[tuple] = []
    for info, names in targets:
        ns = None if (args.all_namespaces or not info.namespaced) else ctx.namespace
        if names:
            objects += [(info, client.get(path_for(info, ns, n))) for n in names]
        elif args.selector or args.all:
            listed = client.get(path_for(info, ns), query={"labelSelector": args.selector})
            objects += [(info, o) for o in listed.get("items") or []]
        else:
            raise CommandError("one or more resources must be specified as <resource> <name> or <resource>/<name>")
    failed = 0
    for info, obj in objects:
        meta = obj.get("metadata", {})
        current = meta.get(field) or {}
        refused = [k for k, v in sets.items() if k in current and current[k] != v and not args.overwrite]
        if refused:
            k = refused[0]
            ctx.warn(f"error: '{k}' already has a value ({current[k]}), and --overwrite is false")
            failed += 1
            continue
        change: dict[str, str | None] = {k: v for k, v in sets.items() if current.get(k) != v}
        change.update({k: None for k in removes if k in current})
        if verb == "label":
            for k in removes:
                if k not in current:
                    ctx.print(f'label "{k}" not found.')
        display = name_of(info, obj)
        if not change:
            ctx.print(f"{display} not {past}")
            continue
        patch: dict = {"metadata": {field: change}}
        if args.resource_version:
            patch["metadata"]["resourceVersion"] = args.resource_version
        try:
            client.patch(path_for(info, meta.get("namespace"), meta["name"]), patch,
                         content_type=MERGE_PATCH)
        except ApiStatusError as e:
            ctx.warn(status_text(e.status, e.code))
            failed += 1
            continue
        ctx.print(display if args.output == "name" else f"{display} {past}")
    return 1 if failed else 0
