"""`ketch api-resources`: the server's discovery documents, in kubectl's columns."""

from __future__ import annotations

import argparse

from ketch.cli.printing import tabulate


def discover(client) -> list[dict]:
    """Every (sub)resource from /api/v1 and each preferred /apis group version."""
    found: list[dict] = []
    core = client.get("/api")
    for version in core.get("versions") or []:
        listing = client.get(f"/api/{version}")
        for r in listing.get("resources") or []:
            found.append({**r, "groupVersion": version, "group": ""})
    groups = client.get("/apis")
    for g in groups.get("groups") or []:
        preferred = (g.get("preferredVersion") or {}).get("groupVersion") or (
            g.get("versions") or [{}])[0].get("groupVersion")
        if not preferred:
            continue
        listing = client.get(f"/apis/{preferred}")
        for r in listing.get("resources") or []:
            found.append({**r, "groupVersion": preferred, "group": g.get("name", "")})
    return found


def run(_name: str, argv: list[str], ctx) -> int:
    p = argparse.ArgumentParser(prog="ketch api-resources", description="Print the supported API resources.")
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
