"""`ketch get`: tables from the server's Table responses, structured output, watch."""

from __future__ import annotations

import argparse
import time

from ketch.cli import output, printing
from ketch.cli.discovery import ApiResource
from ketch.cli.errors import CommandError, status_text
from ketch.cli.flags import Parser
from ketch.cli.targets import parse_targets, path_for
from ketch.client.rest import JSON, TABLE_ACCEPT, ApiStatusError

PAGE_SIZE = 500


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="ketch get", description="Display one or many resources.")
    p.add_argument("args", nargs="*", metavar="TYPE[,TYPE] [NAME...] | TYPE/NAME")
    p.add_argument("-o", "--output", help="wide|yaml|json|name|jsonpath=TEMPLATE")
    p.add_argument("-l", "--selector", help="label selector (k=v, k!=v, k in (a,b), !k)")
    p.add_argument("--field-selector", help="field selector (metadata.name=x, status.phase=Running)")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, watch for changes")
    p.add_argument("--watch-only", action="store_true", help="watch for changes without listing first")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--show-labels", action="store_true")
    p.add_argument("-L", "--label-columns", action="append", default=[],
                   help="labels to show as columns (repeat or comma-separate)")
    p.add_argument("--no-headers", action="store_true")
    p.add_argument("--ignore-not-found", action="store_true")
    p.add_argument("--chunk-size", type=int, default=PAGE_SIZE)
    return p


class Fetched:
    """What one resource type answered: a Table (human output) or objects (structured)."""

    def __init__(self, info: ApiResource):
        self.info = info
        self.table: dict | None = None
        self.objects: list[dict] = []
        self.resource_version = ""


def _namespace(info: ApiResource, ctx, all_namespaces: bool) -> str | None:
    if not info.namespaced or all_namespaces:
        return None
    return ctx.namespace


def _merge_table(fetched: Fetched, answer: dict) -> None:
    if not printing.is_table(answer):
        items = answer.get("items") if "items" in answer else [answer]
        answer = printing.fallback_table(items or [])
    if fetched.table is None:
        fetched.table = answer
    else:
        fetched.table.setdefault("rows", []).extend(answer.get("rows") or [])


def fetch(ctx, info: ApiResource, names: list[str], args, human: bool,
          errors: list[str]) -> Fetched:
    client = ctx.client
    accept = TABLE_ACCEPT if human else JSON
    ns = _namespace(info, ctx, args.all_namespaces)
    fetched = Fetched(info)
    if names:
        for name in names:
            try:
                answer = client.get(path_for(info, ns, name), accept=accept)
            except ApiStatusError as e:
                if e.code == 404 and args.ignore_not_found:
                    continue
                errors.append(status_text(e.status, e.code))
                continue
            if human:
                _merge_table(fetched, answer)
            else:
                fetched.objects.append(output.with_type(info, answer))
        return fetched
    query = {"labelSelector": args.selector, "fieldSelector": args.field_selector,
             "limit": args.chunk_size}
    while True:
        answer = client.get(path_for(info, ns), query=query, accept=accept)
        meta = answer.get("metadata") or {}
        fetched.resource_version = meta.get("resourceVersion", "")
        if human:
            _merge_table(fetched, answer)
        else:
            fetched.objects += [output.with_type(info, o) for o in answer.get("items") or []]
        if not meta.get("continue"):
            break
        query["continue"] = meta["continue"]
    return fetched


def _table_options(args, prefix: str) -> printing.TableOptions:
    label_columns = [c for arg in args.label_columns for c in arg.split(",") if c]
    return printing.TableOptions(
        wide=args.output == "wide", show_labels=args.show_labels, label_columns=label_columns,
        namespace_column=args.all_namespaces, name_prefix=prefix, no_headers=args.no_headers,
    )


def _print_tables(ctx, results: list[Fetched], args, force_prefix: bool) -> int:
    non_empty = [f for f in results if f.table and f.table.get("rows")]
    with_prefix = force_prefix or len(non_empty) > 1
    blocks = []
    for f in non_empty:
        prefix = f"{output.name_of(f.info, {'metadata': {'name': ''}})}" if with_prefix else ""
        opts = _table_options(args, prefix)
        if args.all_namespaces and not f.info.namespaced:
            opts.namespace_column = False
        blocks.append("\n".join(printing.tabulate(printing.table_lines(f.table, opts))))
    if blocks:
        separator = "\n" if args.no_headers else "\n\n"  # kubectl: a blank line only between headed tables
        ctx.out.write(separator.join(blocks) + "\n")
    return len(non_empty)


def _print_structured(ctx, results: list[Fetched], args, single: bool) -> None:
    objects = [o for f in results for o in f.objects]
    if args.output == "name":
        for f in results:
            for o in f.objects:
                ctx.print(output.name_of(f.info, o))
        return
    if single and len(objects) == 1:
        payload = objects[0]
    else:
        payload = output.as_list(objects)
    ctx.out.write(output.render(args.output, payload))


def _no_resources(ctx, targets, args) -> None:
    namespaced = any(info.namespaced for info, _ in targets)
    if args.all_namespaces or not namespaced:
        ctx.warn("No resources found")
    else:
        ctx.warn(f"No resources found in {ctx.namespace} namespace.")


def run(_name: str, argv: list[str], ctx) -> int:
    args = build_parser().parse_intermixed_args(argv)
    output.check_format(args.output)
    targets = parse_targets(ctx, args.args)
    human = args.output in (None, "wide")
    explicit_all = any(a.split(",").count("all") for a in args.args[:1])
    by_name_form = any("/" in a for a in args.args)
    single = len(targets) == 1 and len(targets[0][1]) == 1 and not by_name_form
    if args.watch or args.watch_only:
        if len(targets) != 1:
            raise CommandError("you may only specify a single resource type to watch")
        return watch(ctx, targets[0][0], targets[0][1], args, human)
    errors: list[str] = []
    results = [fetch(ctx, info, names, args, human, errors) for info, names in targets]
    if human:
        printed = _print_tables(ctx, results, args, force_prefix=explicit_all or len(targets) > 1)
        if printed == 0 and not errors and not any(names for _, names in targets):
            _no_resources(ctx, targets, args)
    else:
        _print_structured(ctx, results, args, single)
    for e in errors:
        ctx.warn(e)
    return 1 if errors else 0


def watch(ctx, info: ApiResource, names: list[str], args, human: bool) -> int:
    """List (unless --watch-only), then print every change until interrupted."""
    if len(names) > 1:
        raise CommandError("you may only watch a single resource by name")
    errors: list[str] = []
    fetched = fetch(ctx, info, names, args, human, errors)
    for e in errors:
        ctx.warn(e)
    if errors:
        return 1
    columns = (fetched.table or {}).get("columnDefinitions") or []
    opts = _table_options(args, "")
    widths: list[int] = []
    header_done = False

    def emit_rows(rows: list[dict]) -> None:
        nonlocal widths, header_done
        lines = [printing.table_row(columns, r, opts) for r in rows]
        if not header_done and not args.no_headers:
            lines.insert(0, printing.table_header(columns, opts))
        header_done = True
        for w_index, w in enumerate(printing.column_widths(lines)):
            if w_index >= len(widths):
                widths.append(w)
            elif w > widths[w_index]:
                widths[w_index] = w
        for line in lines:
            ctx.out.write(printing.format_row(line, widths) + "\n")
        ctx.out.flush()

    if not args.watch_only:
        if human and fetched.table and fetched.table.get("rows"):
            emit_rows(fetched.table["rows"])
        elif not human:
            for o in fetched.objects:
                _print_event_object(ctx, info, args, o)
    rv = fetched.resource_version
    ns = _namespace(info, ctx, args.all_namespaces)
    query = {"labelSelector": args.selector, "fieldSelector": args.field_selector,
             "allowWatchBookmarks": "true"}
    if names:
        query["fieldSelector"] = f"metadata.name={names[0]}"
        if not rv:  # a GET by name carries no list revision
            rv = ((fetched.table or {}).get("rows") or [{}])[0].get("object", {}).get(
                "metadata", {}).get("resourceVersion", "") if human else (
                fetched.objects[0]["metadata"].get("resourceVersion", "") if fetched.objects else "")
    accept = TABLE_ACCEPT if human else JSON
    while True:
        query["resourceVersion"] = rv
        started = time.monotonic()
        for event in ctx.client.watch(path_for(info, ns), query=query, accept=accept):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                ctx.warn(status_text(obj))
                return 1
            if human and printing.is_table(obj):
                if obj.get("columnDefinitions"):
                    columns = obj["columnDefinitions"]
                rows = obj.get("rows") or []
                for r in rows:
                    rv = r.get("object", {}).get("metadata", {}).get("resourceVersion") or rv
                if kind != "BOOKMARK" and rows:
                    emit_rows(rows)
                continue
            rv = obj.get("metadata", {}).get("resourceVersion") or rv
            if kind == "BOOKMARK":
                continue
            if human:
                if not columns:
                    columns = printing.fallback_table([])["columnDefinitions"]
                emit_rows(printing.fallback_table([obj])["rows"])
            else:
                _print_event_object(ctx, info, args, obj)
        # the server ended the watch (timeout or restart): resume where we were
        if time.monotonic() - started < 1.0:
            time.sleep(1.0)  # ended at once: do not spin against it


def _print_event_object(ctx, info: ApiResource, args, obj: dict) -> None:
    obj = output.with_type(info, obj)
    if args.output == "name":
        ctx.print(output.name_of(info, obj))
    else:
        text = output.render(args.output, obj)
        ctx.out.write(("---\n" + text) if args.output == "yaml" else text)
    ctx.out.flush()


