"""`ketch config`: view, get-contexts, current-context, use-context, set-context, delete-context.

Files are chosen as kubectl chooses them: `--kubeconfig` alone if given, else
the `$KUBECONFIG` list (first definition of a name wins) or ~/.kube/config.
A change goes to the file that holds the thing changed; new things go to the
first file.
"""

from __future__ import annotations

import argparse
import copy

from ketch.cli.errors import CommandError
from ketch.cli.flags import Parser
from ketch.cli.printing import tabulate
from ketch.client import kubeconfig

SECRET_USER_FIELDS = ("token", "password")
DATA_FIELDS = ("client-certificate-data", "client-key-data", "certificate-authority-data")


def _paths(ctx) -> list[str]:
    explicit = ctx.flags.get("kubeconfig")
    return [explicit] if explicit else kubeconfig.default_paths()


def redacted(config: dict) -> dict:
    """What `config view` shows without --raw: secrets replaced as kubectl does."""
    out = copy.deepcopy(config)
    for section, key in (("users", "user"), ("clusters", "cluster")):
        for item in out.get(section) or []:
            value = item.get(key) or {}
            for f in SECRET_USER_FIELDS:
                if f in value:
                    value[f] = "REDACTED"
            for f in DATA_FIELDS:
                if f in value:
                    value[f] = "DATA+OMITTED"
    return out


def minified(kc: kubeconfig.Kubeconfig, config: dict, context_name: str) -> dict:
    if not context_name or context_name not in kc.contexts:
        raise CommandError("current-context must exist in order to minify")
    ctx_value = kc.contexts[context_name].value
    out = dict(config)
    out["contexts"] = [c for c in config["contexts"] if c["name"] == context_name]
    out["clusters"] = [c for c in config["clusters"] if c["name"] == ctx_value.get("cluster")]
    out["users"] = [u for u in config["users"] if u["name"] == ctx_value.get("user")]
    out["current-context"] = context_name
    return out


def view(ctx, args) -> int:
    kc = ctx.kubeconfig()
    config = kc.to_dict()
    if args.minify:
        config = minified(kc, config, ctx.flags.get("context") or kc.current_context)
    if not args.raw:
        config = redacted(config)
    if args.output == "json":
        from ketch.cli.output import dump_json

        ctx.out.write(dump_json(config))
    else:
        from ketch.cli.output import dump_yaml

        ctx.out.write(dump_yaml(config))
    return 0


def get_contexts(ctx, args) -> int:
    kc = ctx.kubeconfig()
    names = args.names or list(kc.contexts)
    missing = [n for n in names if n not in kc.contexts]
    if args.output == "name":
        for n in names:
            if n in kc.contexts:
                ctx.print(n)
    else:
        rows = [] if args.no_headers else [["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]]
        for n in names:
            if n not in kc.contexts:
                continue
            v = kc.contexts[n].value
            rows.append(["*" if n == kc.current_context else "", n, v.get("cluster", ""),
                         v.get("user", ""), v.get("namespace", "")])
        for line in tabulate(rows):
            ctx.print(line)
    for n in missing:
        ctx.warn(f'error: context {n} not found')
    return 1 if missing else 0


def current_context(ctx, _args) -> int:
    kc = ctx.kubeconfig()
    if not kc.current_context:
        raise CommandError("current-context is not set")
    ctx.print(kc.current_context)
    return 0


def use_context(ctx, args) -> int:
    kc = ctx.kubeconfig()
    if args.name not in kc.contexts:
        raise CommandError(f'no context exists with the name: "{args.name}"')
    target = kc.current_context_source or _paths(ctx)[0]
    kubeconfig.edit_file(target, lambda data: data.__setitem__("current-context", args.name))
    ctx.print(f'Switched to context "{args.name}".')
    return 0


def set_context(ctx, args) -> int:
    kc = ctx.kubeconfig()
    if args.current:
        if args.name:
            raise CommandError("you cannot specify a context name and --current")
        if not kc.current_context:
            raise CommandError("no current context is set")
        name = kc.current_context
    elif args.name:
        name = args.name
    else:
        raise CommandError("you must specify a non-empty context name or --current")
    existing = kc.contexts.get(name)
    target = existing.source if existing else _paths(ctx)[0]
    namespace = ctx.flags.get("namespace")  # --namespace is a global flag, taken out early
    cluster, user = args.cluster or ctx.flags.get("cluster"), args.user or ctx.flags.get("user")

    def change(data: dict) -> None:
        contexts = data.setdefault("contexts", []) or []
        data["contexts"] = contexts
        for item in contexts:
            if item.get("name") == name:
                value = item.setdefault("context", {}) or {}
                item["context"] = value
                break
        else:
            value = {}
            contexts.append({"name": name, "context": value})
        for key, new in (("namespace", namespace), ("cluster", cluster), ("user", user)):
            if new is not None:
                value[key] = new

    kubeconfig.edit_file(target, change)
    ctx.print(f'Context "{name}" {"modified" if existing else "created"}.')
    return 0


def delete_context(ctx, args) -> int:
    kc = ctx.kubeconfig()
    entry = kc.contexts.get(args.name)
    if entry is None:
        raise CommandError(f"cannot delete context {args.name}, not in {entry and entry.source or _paths(ctx)[0]}")

    def change(data: dict) -> None:
        data["contexts"] = [c for c in data.get("contexts") or [] if c.get("name") != args.name]

    kubeconfig.edit_file(entry.source, change)
    if kc.current_context == args.name:
        ctx.warn("warning: this removed your active context, use \"ketch config use-context\" to select a different one")
    ctx.print(f"deleted context {args.name} from {entry.source}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="ketch config", description="Modify and view kubeconfig files.")
    sub = p.add_subparsers(dest="sub", required=True)
    v = sub.add_parser("view", help="show the merged kubeconfig")
    v.add_argument("--raw", action="store_true", help="show secrets")
    v.add_argument("--minify", action="store_true", help="only what the current context uses")
    v.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    v.set_defaults(fn=view)
    g = sub.add_parser("get-contexts", help="list contexts")
    g.add_argument("names", nargs="*")
    g.add_argument("-o", "--output", choices=["name"])
    g.add_argument("--no-headers", action="store_true")
    g.set_defaults(fn=get_contexts)
    c = sub.add_parser("current-context", help="print the current context")
    c.set_defaults(fn=current_context)
    u = sub.add_parser("use-context", help="make a context the current one")
    u.add_argument("name")
    u.set_defaults(fn=use_context)
    s = sub.add_parser("set-context", help="create or change a context (--namespace, --cluster, --user)")
    s.add_argument("name", nargs="?")
    s.add_argument("--current", action="store_true")
    s.add_argument("--cluster-name", dest="cluster")
    s.add_argument("--auth-info", dest="user")
    s.set_defaults(fn=set_context)
    d = sub.add_parser("delete-context", help="remove a context")
    d.add_argument("name")
    d.set_defaults(fn=delete_context)
    return p


def run(_name: str, argv: list[str], ctx) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(ctx, args)
