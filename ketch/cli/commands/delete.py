"""`ketch delete`: by type and name, `-f`, `-l` or `--all`; waits for the objects to be gone."""

from __future__ import annotations

import argparse
import time

from ketch.cli import manifests
from ketch.cli.commands.apply import namespace_for, resource_for
from ketch.cli.discovery import ApiResource
from ketch.cli.errors import CommandError, status_text
from ketch.cli.flags import Parser
from ketch.cli.output import name_of
from ketch.cli.targets import parse_targets, path_for
from ketch.client.rest import ApiStatusError


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="ketch delete", description="Delete resources.")
    p.add_argument("args", nargs="*", metavar="TYPE [NAME...] | TYPE/NAME")
    p.add_argument("-f", "--filename", action="append", default=[])
    p.add_argument("-R", "--recursive", action="store_true")
    p.add_argument("-l", "--selector")
    p.add_argument("--field-selector")
    p.add_argument("--all", action="store_true", help="delete every object of the type(s) in the namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--grace-period", type=int, default=-1,
                   help="seconds the object gets to terminate (-1: its own default)")
    p.add_argument("--now", action="store_true", help="--grace-period=1: signal for immediate shutdown")
    p.add_argument("--force", action="store_true", help="with --grace-period=0: remove without waiting for the node")
    p.add_argument("--wait", default="true",
                   help="wait for the objects to be gone: --wait=true (default) or --wait=false")
    p.add_argument("--timeout", type=float, default=0, help="seconds to wait (0: a week, like kubectl)")
    p.add_argument("--ignore-not-found", action="store_true")
    p.add_argument("--cascade", default="background", choices=["background", "foreground", "orphan"])
    p.add_argument("-o", "--output", choices=["name"])
    return p


class Doomed:
    """One object to delete, and the UID the DELETE answered with (to wait for exactly it)."""

    def __init__(self, info: ApiResource, namespace: str | None, name: str):
        self.info, self.namespace, self.name = info, namespace, name
        self.uid = ""


def _grace(args) -> int | None:
    if args.now:
        if args.grace_period not in (-1, 1):
            raise CommandError("--now and --grace-period cannot be specified together")
        return 1
    if args.force and args.grace_period == -1:
        return 0
    if args.grace_period == 0 and not args.force:
        return 1  # as kubectl: 0 without --force means "as fast as possible", not "skip the node"
    return None if args.grace_period < 0 else args.grace_period


def collect(ctx, args) -> list[Doomed]:
    if args.filename:
        if args.args:
            raise CommandError("when using -f, do not name resources on the command line")
        out = []
        for m in manifests.load(args.filename, recursive=args.recursive):
            info = resource_for(ctx, m.obj, m.source)
            ns = namespace_for(ctx, info, m.obj)
            out.append(Doomed(info, ns, m.obj["metadata"]["name"]))
        return out
    targets = parse_targets(ctx, args.args)
    out = []
    for info, names in targets:
        ns = None if (args.all_namespaces or not info.namespaced) else ctx.namespace
        if names:
            if args.selector or args.all:
                raise CommandError("name cannot be provided when a selector or --all is specified")
            out += [Doomed(info, ns, n) for n in names]
            continue
        if not (args.selector or args.all or args.field_selector):
            raise CommandError(
                "resource(s) were provided, but no name was specified; give names, -l or --all"
            )
        listed = ctx.client.get(path_for(info, ns), query={
            "labelSelector": args.selector, "fieldSelector": args.field_selector})
        for item in listed.get("items") or []:
            meta = item.get("metadata", {})
            out.append(Doomed(info, meta.get("namespace") or ns, meta["name"]))
    return out


def delete_one(ctx, d: Doomed, grace: int | None, propagation: str) -> None:
    body: dict = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
    if grace is not None:
        body["gracePeriodSeconds"] = grace
    answer = ctx.client.delete(path_for(d.info, d.namespace, d.name), body) or {}
    if answer.get("kind") == "Status":
        d.uid = (answer.get("details") or {}).get("uid", "")
    else:
        d.uid = answer.get("metadata", {}).get("uid", "")


def wait_gone(ctx, d: Doomed, deadline: float) -> bool:
    """Watch the object until it is deleted (or replaced by one with another UID)."""
    path = path_for(d.info, d.namespace)
    while time.monotonic() < deadline:
        try:
            live = ctx.client.get(path_for(d.info, d.namespace, d.name))
        except ApiStatusError as e:
            if e.code == 404:
                return True
            raise
        if d.uid and live.get("metadata", {}).get("uid") != d.uid:
            return True
        rv = live.get("metadata", {}).get("resourceVersion", "")
        query = {"fieldSelector": f"metadata.name={d.name}", "resourceVersion": rv,
                 "timeoutSeconds": max(1, int(deadline - time.monotonic()))}
        try:
            for event in ctx.client.watch(path, query=query, timeout=deadline - time.monotonic()):
                if event.get("type") == "DELETED":
                    return True
                if event.get("type") == "ERROR":
                    break  # e.g. 410 Gone: look again
        except ApiStatusError as e:
            if e.code != 410:
                raise
    return False


def run(_name: str, argv: list[str], ctx) -> int:
    # a bare boolean flag, as kubectl accepts it; `--wait false` is not kubectl's syntax either
    argv = ["--wait=true" if a == "--wait" else a for a in argv]
    args = build_parser().parse_intermixed_args(argv)
    wait = str(args.wait).lower() not in ("false", "0", "no")
    grace = _grace(args)
    if grace == 0 and args.force:
        ctx.warn("Warning: Immediate deletion does not wait for confirmation that the running "
                 "resource has been terminated. The resource may continue to run on the cluster "
                 "indefinitely.")
    doomed = collect(ctx, args)
    if not doomed and not args.filename:
        ns = ctx.namespace
        ctx.warn("No resources found" if args.all_namespaces else f"No resources found in {ns} namespace.")
        return 0
    propagation = args.cascade.capitalize()
    failed = 0
    deleted: list[Doomed] = []
    for d in doomed:
        try:
            delete_one(ctx, d, grace, propagation)
        except ApiStatusError as e:
            if e.code == 404 and args.ignore_not_found:
                continue
            ctx.warn(status_text(e.status, e.code))
            failed += 1
            continue
        kind = name_of(d.info, {"metadata": {"name": ""}})[:-1]
        ctx.print(f"{kind}/{d.name}" if args.output == "name" else f'{kind} "{d.name}" deleted')
        deleted.append(d)
    if wait and deleted:
        ctx.out.flush()
        deadline = time.monotonic() + (args.timeout or 7 * 24 * 3600)
        for d in deleted:
            if not wait_gone(ctx, d, deadline):
                ctx.warn(f'error: timed out waiting for the condition on {d.info.plural}/{d.name}')
                failed += 1
    return 1 if failed else 0
