"""`ketch apply -f` (client-side apply, like kubectl's) and `ketch create -f`."""

from __future__ import annotations

import argparse
import copy
import json

from ketch.cli import manifests, output
from ketch.cli.apply_patch import LAST_APPLIED, three_way_merge_patch
from ketch.cli.discovery import ApiResource
from ketch.cli.errors import CommandError, status_text, with_source
from ketch.cli.flags import Parser
from ketch.cli.targets import path_for
from ketch.client.rest import MERGE_PATCH, ApiStatusError

MAX_CONFLICT_RETRIES = 5
APPLY_QUERY = {"fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"}
CREATE_QUERY = {"fieldManager": "kubectl-create", "fieldValidation": "Strict"}


def build_parser(prog: str) -> argparse.ArgumentParser:
    verb = "Apply a configuration to" if prog == "apply" else "Create"
    p = Parser(prog=f"ketch {prog}", description=f"{verb} resources from files or stdin.")
    p.add_argument("-f", "--filename", action="append", default=[],
                   help="file, directory or - (stdin); repeatable")
    p.add_argument("-R", "--recursive", action="store_true", help="walk directories given with -f")
    p.add_argument("-o", "--output", help="name|yaml|json")
    return p


def resource_for(ctx, obj: dict, source: str) -> ApiResource:
    info = ctx.by_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
    if info is None:
        name = obj.get("metadata", {}).get("name", "")
        raise CommandError(
            f'resource mapping not found for name: "{name}" namespace: "" from "{source}": '
            f'no matches for kind "{obj.get("kind")}" in version "{obj.get("apiVersion")}"\n'
            "ensure CRDs are installed first"
        )
    return info


def namespace_for(ctx, info: ApiResource, obj: dict) -> str | None:
    """The object's namespace; -n must agree with it, as kubectl insists."""
    if not info.namespaced:
        return None
    meta = obj.setdefault("metadata", {})
    ns = meta.get("namespace")
    if ns and ctx.namespace_explicit and ns != ctx.namespace:
        raise CommandError(
            f'the namespace from the provided object "{ns}" does not match the namespace '
            f'"{ctx.namespace}". You must pass \'--namespace={ns}\' to perform this operation.'
        )
    ns = ns or ctx.namespace
    meta["namespace"] = ns
    return ns


def go_json(value: object) -> str:
    """JSON as Go's encoding/json writes it (kubectl's annotation): sorted keys, compact,
    raw UTF-8, HTML characters escaped; so kubectl and ketch agree on "unchanged"."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def with_last_applied(obj: dict) -> dict:
    """The manifest plus the annotation that records it (the annotation's own value left out)."""
    modified = copy.deepcopy(obj)
    annotations = modified.setdefault("metadata", {}).setdefault("annotations", {}) or {}
    annotations.pop(LAST_APPLIED, None)
    modified["metadata"]["annotations"] = annotations
    record = copy.deepcopy(modified)  # keeps "annotations": {} as kubectl's record does
    annotations[LAST_APPLIED] = go_json(record) + "\n"
    return modified


def apply_one(ctx, m: manifests.Manifest) -> tuple[str, dict]:
    """Create or patch one object; returns ("created"|"configured"|"unchanged", the object)."""
    manifests.check_object(m.obj, m.source)
    info = resource_for(ctx, m.obj, m.source)
    obj = copy.deepcopy(m.obj)
    ns = namespace_for(ctx, info, obj)
    name = obj["metadata"].get("name")
    modified = with_last_applied(obj)
    client = ctx.client
    for _attempt in range(MAX_CONFLICT_RETRIES):
        try:
            current = client.get(path_for(info, ns, name)) if name else None
        except ApiStatusError as e:
            if e.code != 404:
                raise ApiStatusError(e.code, with_source(e.status, "retrieving current configuration of", m.source)) from None
            current = None
        if current is None:
            try:
                created = client.post(path_for(info, ns), modified, query=APPLY_QUERY)
            except ApiStatusError as e:
                if e.code == 409 and e.reason == "AlreadyExists":
                    continue  # created meanwhile: patch it instead
                raise ApiStatusError(e.code, with_source(e.status, "creating", m.source)) from None
            return "created", output.with_type(info, created)
        annotations = current.get("metadata", {}).get("annotations") or {}
        original = None
        if annotations.get(LAST_APPLIED):
            try:
                original = json.loads(annotations[LAST_APPLIED])
            except ValueError:
                original = None
        patch = three_way_merge_patch(original, modified, current)
        if not patch:
            return "unchanged", output.with_type(info, current)
        patch.setdefault("metadata", {})["resourceVersion"] = current["metadata"].get("resourceVersion")
        try:
            patched = client.patch(path_for(info, ns, name), patch, content_type=MERGE_PATCH,
                                   query=APPLY_QUERY)
        except ApiStatusError as e:
            if e.code == 409 and e.reason == "Conflict":
                continue
            raise ApiStatusError(e.code, with_source(e.status, "patching", m.source)) from None
        return "configured", output.with_type(info, patched)
    raise CommandError(f"{m.source}: gave up after {MAX_CONFLICT_RETRIES} conflicting updates")


def create_one(ctx, m: manifests.Manifest) -> tuple[str, dict]:
    manifests.check_object(m.obj, m.source)
    info = resource_for(ctx, m.obj, m.source)
    obj = copy.deepcopy(m.obj)
    ns = namespace_for(ctx, info, obj)
    try:
        created = ctx.client.post(path_for(info, ns), obj, query=CREATE_QUERY)
    except ApiStatusError as e:
        raise ApiStatusError(e.code, with_source(e.status, "creating", m.source)) from None
    return "created", output.with_type(info, created)


def run(name: str, argv: list[str], ctx) -> int:
    args = build_parser(name).parse_args(argv)
    if args.output not in (None, "name", "yaml", "json"):
        raise CommandError(f"output format {args.output!r} is not supported by {name}; use name, yaml or json")
    items = manifests.load(args.filename, recursive=args.recursive)
    act = apply_one if name == "apply" else create_one
    failed = 0
    results = []
    for m in items:
        try:
            verdict, obj = act(ctx, m)
        except ApiStatusError as e:
            ctx.warn(status_text(e.status, e.code))
            failed += 1
            continue
        except CommandError as e:
            ctx.warn(f"error: {e}")
            failed += 1
            continue
        info = resource_for(ctx, obj, m.source)
        if args.output in ("yaml", "json"):
            results.append(obj)
        elif args.output == "name":
            ctx.print(output.name_of(info, obj))
        else:
            ctx.print(f"{output.name_of(info, obj)} {verdict}")
    if results:
        ctx.out.write(output.render(args.output, results[0] if len(results) == 1 else output.as_list(results)))
    return 1 if failed else 0
