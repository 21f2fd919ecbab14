"""`ketch api-resources`: the server's discovery documents, in kubectl's columns."""

from __future__ import annotations

from ketch.cli.flags import Parser
from ketch.cli.printing import tabulate


def discover(client) -> list[dict]:
    """Every resource of /api/v1 and each group's preferred version, with its group and version."""
    from ketch.cli.discovery import fetch_resource_lists

    found: list[dict] = []
    for listing in fetch_resource_lists(client):
        gv = listing.get("groupVersion", "v1")
        group = gv.rpartition("/")[0]
        found += [{**r, "groupVersion": gv, "group": group} for r in listing.get("resources") or []]
    return found


def run(_name: str, argv: list[str], ctx) -> int:
    p = Parser(prog="ketch api-resources", description="Print the supported API resources.")
    p.add_argument("--namespaced", choices=["true", "false"])
    p.add_argument("--api-group")
    p.add_argument("--verbs", help="only resources supporting these verbs (comma-separated)")
    p.add_argument("-o", "--output", choices=["wide", "name"])
    p.add_argument("--no-headers", action="store_true")
    args = p.parse_args(argv)
    resources = [r for r in discover(ctx.client) if "/" not in r.get("name", "")]
    if args.namespaced is not None:
        resources = [r for r in resources if bool(r.get("namespaced")) == (args.namespaced == "true")]
    if args.api_group is not None:
        resources = [r for r in resources if r["group"] == args.api_group]
    if args.verbs:
        wanted = set(args.verbs.split(","))
        resources = [r for r in resources if wanted <= set(r.get("verbs") or [])]
    resources.sort(key=lambda r: (r["group"], r["name"]))
    if args.output == "name":
        for r in resources:
            ctx.print(f"{r['name']}.{r['group']}" if r["group"] else r["name"])
        return 0
    rows = [] if args.no_headers else [["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]]
    if args.output == "wide" and rows:
        rows[0] += ["VERBS", "CATEGORIES"]
    for r in resources:
        row = [r["name"], ",".join(r.get("shortNames") or []), r["groupVersion"],
               "true" if r.get("namespaced") else "false", r.get("kind", "")]
        if args.output == "wide":
            row += [",".join(r.get("verbs") or []), ",".join(r.get("categories") or [])]
        rows.append(row)
    for line in tabulate(rows):
        ctx.print(line)
    return 0
