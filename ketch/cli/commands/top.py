"""`ketch top pods|nodes`: CPU and memory from each node agent's /stats/summary (via nodes/proxy)."""

from __future__ import annotations

from ketch.cli.errors import CommandError
from ketch.cli.flags import Parser

_UNITS = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
          "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4}


def quantity(text: str | int | None) -> float:
    """A Kubernetes quantity (`2`, `500m`, `8Gi`) as a number."""
    text = str(text or "0")
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            return float(text[: -len(suffix)]) * _UNITS[suffix]
    return float(text)


def millicores(cpu: dict) -> int:
    return int(round((cpu or {}).get("usageNanoCores", 0) / 1e6))


def mebibytes(memory: dict) -> int:
    return int((memory or {}).get("workingSetBytes", 0) // (1024 * 1024))


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows) + "\n"


def summaries(ctx) -> list[tuple[dict, dict]]:  # noqa: ANN001
    """(node, summary) for every node whose agent answers."""
    nodes = ctx.client.get("/api/v1/nodes").get("items") or []
    out = []
    for node in nodes:
        name = node["metadata"]["name"]
        try:
            out.append((node, ctx.client.get(f"/api/v1/nodes/{name}/proxy/stats/summary")))
        except Exception as exc:  # noqa: BLE001 - one silent node should not hide the others
            ctx.err.write(f"warning: no metrics from node {name}: {exc}\n")
    return out


def top_nodes(ctx, selected: list[str]) -> int:  # noqa: ANN001
    rows = [["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]]
    for node, summary in summaries(ctx):
        name = node["metadata"]["name"]
        if selected and name not in selected:
            continue
        alloc = (node.get("status") or {}).get("allocatable") or {}
        cpu_m = millicores(summary["node"].get("cpu"))
        mem_mi = mebibytes(summary["node"].get("memory"))
        cpu_cap = quantity(alloc.get("cpu")) * 1000
        mem_cap = quantity(alloc.get("memory")) / (1024 * 1024)
        rows.append([name, f"{cpu_m}m", f"{int(cpu_m * 100 / cpu_cap)}%" if cpu_cap else "<unknown>",
                     f"{mem_mi}Mi", f"{int(mem_mi * 100 / mem_cap)}%" if mem_cap else "<unknown>"])
    if len(rows) == 1:
        raise CommandError("metrics not available yet: no node agent answered")
    ctx.out.write(_table(rows))
    return 0


def top_pods(ctx, selected: list[str], all_namespaces: bool, containers: bool) -> int:  # noqa: ANN001
    head = (["NAMESPACE"] if all_namespaces else []) + ["POD" if containers else "NAME"]
    head += (["NAME"] if containers else []) + ["CPU(cores)", "MEMORY(bytes)"]
    rows = [head]
    found = []
    for _node, summary in summaries(ctx):
        for pod in summary.get("pods") or []:
            ref = pod["podRef"]
            if not all_namespaces and ref["namespace"] != ctx.namespace:
                continue
            if selected and ref["name"] not in selected:
                continue
            found.append(pod)
    found.sort(key=lambda p: (p["podRef"]["namespace"], p["podRef"]["name"]))
    for pod in found:
        prefix = [pod["podRef"]["namespace"]] if all_namespaces else []
        if containers:
            for c in pod.get("containers") or []:
                rows.append(prefix + [pod["podRef"]["name"], c["name"], f"{millicores(c.get('cpu'))}m",
                                      f"{mebibytes(c.get('memory'))}Mi"])
        else:
            rows.append(prefix + [pod["podRef"]["name"], f"{millicores(pod.get('cpu'))}m",
                                  f"{mebibytes(pod.get('memory'))}Mi"])
    if len(rows) == 1:
        if selected:
            raise CommandError(f"pods \"{selected[0]}\" not found or has no metrics yet")
        ctx.err.write(f"No resources found in {ctx.namespace} namespace.\n" if not all_namespaces
                      else "No resources found\n")
        return 0
    ctx.out.write(_table(rows))
    return 0


def run(_name: str, argv: list[str], ctx) -> int:  # noqa: ANN001
    p = Parser(prog="ketch top", description="Display resource (CPU/memory) usage of nodes or pods.")
    p.add_argument("kind", choices=["pods", "pod", "po", "nodes", "node", "no"])
    p.add_argument("names", nargs="*")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--containers", action="store_true", help="one line per container")
    args = p.parse_intermixed_args(argv)
    if args.kind in ("nodes", "node", "no"):
        return top_nodes(ctx, args.names)
    return top_pods(ctx, args.names, args.all_namespaces, args.containers)
