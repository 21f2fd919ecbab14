"""`ketch describe`: an object in kubectl's readable layout, with its Events.

The layout is kubectl's generic describer: the metadata block first, then
every field of spec and status with camelCase keys turned into words, then
the Events that name the object (listed with involvedObject field selectors).
"""

from __future__ import annotations

import re

from ketch.cli.discovery import ApiResource
from ketch.cli.errors import CommandError, status_text
from ketch.cli.flags import Parser
from ketch.cli.targets import parse_targets, path_for
from ketch.client.rest import ApiStatusError, resource_path

HIDDEN_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
ACRONYMS = {"ip": "IP", "ips": "IPs", "id": "ID", "uid": "UID", "url": "URL", "api": "API",
            "cidr": "CIDR", "cidrs": "CIDRs", "tcp": "TCP", "udp": "UDP", "dns": "DNS",
            "http": "HTTP", "tls": "TLS", "os": "OS", "cpu": "CPU", "uri": "URI"}
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def smart_label(key: str) -> str:
    """`creationTimestamp` -> `Creation Timestamp`, `podIP` -> `Pod IP` (kubectl's smartLabelFor)."""
    words = _WORD.findall(key) or [key]
    return " ".join(ACRONYMS.get(w.lower(), w[:1].upper() + w[1:]) for w in words)


class Writer:
    """kubectl's PrefixWriter: indented lines whose `Key:\tvalue` pairs align per block."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str, str | None]] = []  # (level, key or text, value)

    def kv(self, level: int, key: str, value: str) -> None:
        self.lines.append((level, key + ":", value))

    def line(self, level: int, text: str) -> None:
        self.lines.append((level, text, None))

    def render(self) -> str:
        out: list[str] = []
        # align values of consecutive key/value lines at the same level
        i = 0
        while i < len(self.lines):
            level, key, value = self.lines[i]
            if value is None:
                out.append("  " * level + key)
                i += 1
                continue
            j = i
            while j < len(self.lines) and self.lines[j][2] is not None and self.lines[j][0] == level:
                j += 1
            width = max(len(k) for _, k, _ in self.lines[i:j]) + 2
            for lvl, k, v in self.lines[i:j]:
                text = ("  " * lvl + k.ljust(width) + v) if v else ("  " * lvl + k)
                out.append(text.rstrip())
            i = j
        return "\n".join(out) + "\n"


def _scalar(value: object) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pairs(writer: Writer, level: int, label: str, mapping: dict | None, sep: str) -> None:
    items = sorted((mapping or {}).items())
    if not items:
        writer.kv(level, label, "<none>")
        return
    first, *rest = items
    writer.kv(level, label, f"{first[0]}{sep}{first[1]}")
    pad = len(label) + 1
    for k, v in rest:
        # continuation lines aligned under the first value (computed at render: use a marker)
        writer.lines.append((level, " " * pad, f"{k}{sep}{v}"))


#: maps whose keys are data (label keys, resource names), printed as they are
RAW_KEYS_UNDER = frozenset({"labels", "annotations", "matchLabels", "nodeSelector",
                            "data", "binaryData", "stringData", "requests", "limits", "capacity",
                            "allocatable", "hard", "used"})


def _walk(writer: Writer, level: int, value: object, raw_keys: bool = False) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            label = k if raw_keys else smart_label(k)
            raw_below = k in RAW_KEYS_UNDER
            if isinstance(v, dict):
                if not v:
                    continue
                writer.line(level, label + ":")
                _walk(writer, level + 1, v, raw_below)
            elif isinstance(v, list):
                if not v:
                    continue
                if all(not isinstance(x, (dict, list)) for x in v):
                    writer.line(level, label + ":")
                    for x in v:
                        writer.line(level + 1, _scalar(x))
                else:
                    writer.line(level, label + ":")
                    for x in v:
                        _walk(writer, level + 1, x)
            else:
                writer.kv(level, label, _scalar(v))
    elif isinstance(value, list):
        for x in value:
            _walk(writer, level, x)
    else:
        writer.line(level, _scalar(value))


def _data_section(w: Writer, title: str, data: dict, binary: bool) -> None:
    """ConfigMap/Secret data as kubectl shows it: each key, a rule, the value."""
    w.line(0, title)
    w.line(0, "=" * len(title))
    for key in sorted(data):
        w.line(0, f"{key}:")
        w.line(0, "----")
        value = data[key]
        w.line(0, f"{len(value) * 3 // 4} bytes" if binary else str(value).rstrip("\n"))
        w.line(0, "")


def _timestamp(text: str | None) -> str:
    """kubectl prints times as RFC 1123 with a numeric zone: `Sun, 29 Nov 2026 06:00:00 +0000`."""
    if not text:
        return "<unknown>"
    from ketch.api.timeutil import parse_rfc3339

    try:
        return parse_rfc3339(text).strftime("%a, %d %b %Y %H:%M:%S %z")
    except ValueError:
        return text


def events_for(ctx, obj: dict) -> list[dict] | None:
    """Events whose involvedObject is this object; None if they cannot be listed."""
    meta = obj.get("metadata", {})
    selectors = [f"involvedObject.name={meta.get('name')}", f"involvedObject.kind={obj.get('kind')}"]
    if meta.get("namespace"):
        selectors.append(f"involvedObject.namespace={meta['namespace']}")
    if meta.get("uid"):
        selectors.append(f"involvedObject.uid={meta['uid']}")
    ns = meta.get("namespace") or None
    try:
        listed = ctx.client.get(resource_path("", "v1", "events", namespace=ns),
                                query={"fieldSelector": ",".join(selectors)})
    except ApiStatusError:
        return None
    return listed.get("items") or []


def render_events(writer: Writer, events: list[dict] | None) -> None:
    from ketch.api.timeutil import age

    if not events:
        writer.kv(0, "Events", "<none>")
        return

    def when(e: dict) -> str:
        return (e.get("lastTimestamp") or e.get("eventTime") or
                e.get("metadata", {}).get("creationTimestamp") or "")

    rows = [["Type", "Reason", "Age", "From", "Message"], ["----", "------", "----", "----", "-------"]]
    for e in sorted(events, key=when):
        last = age(when(e)) if when(e) else "<unknown>"
        count = e.get("count") or 1
        first = e.get("firstTimestamp") or when(e)
        shown = f"{last} (x{count} over {age(first)})" if count > 1 else last
        source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
        host = (e.get("source") or {}).get("host")
        rows.append([e.get("type", ""), e.get("reason", ""), shown,
                     f"{source}, {host}" if host else source,
                     (e.get("message") or e.get("note") or "").strip()])
    from ketch.cli.printing import tabulate

    writer.line(0, "Events:")
    for line in tabulate(rows):
        writer.line(1, line)


def _selector_text(selector: dict | None) -> str:
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        values = ",".join(e.get("values") or [])
        op = e.get("operator", "")
        parts.append({"In": f"{e.get('key')} in ({values})", "NotIn": f"{e.get('key')} notin ({values})",
                      "Exists": f"{e.get('key')}", "DoesNotExist": f"!{e.get('key')}"}.get(op, op))
    return ",".join(parts) or "<none>"


def _summary(w: Writer, kind: str, obj: dict) -> None:
    """The at-a-glance lines kubectl's describers print for the kinds people describe most."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind in ("Deployment", "ReplicaSet", "DaemonSet"):
        w.kv(0, "Selector", _selector_text(spec.get("selector")))
    if kind == "Deployment":
        desired = spec.get("replicas", 1)
        w.kv(0, "Replicas", f"{desired} desired | {status.get('updatedReplicas', 0)} updated | "
                            f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
                            f"{status.get('unavailableReplicas', 0)} unavailable")
        strategy = spec.get("strategy") or {}
        w.kv(0, "StrategyType", strategy.get("type", "RollingUpdate"))
        rolling = strategy.get("rollingUpdate")
        if rolling:
            w.kv(0, "RollingUpdateStrategy", f"{rolling.get('maxUnavailable')} max unavailable, "
                                             f"{rolling.get('maxSurge')} max surge")
    elif kind == "ReplicaSet":
        w.kv(0, "Replicas", f"{status.get('replicas', 0)} current / {spec.get('replicas', 1)} desired")
    elif kind == "Pod":
        node = spec.get("nodeName")
        w.kv(0, "Node", f"{node}/{status.get('hostIP')}" if node and status.get("hostIP") else node or "<none>")
        w.kv(0, "Status", status.get("phase") or "Unknown")
        w.kv(0, "IP", status.get("podIP") or "")
    elif kind == "Service":
        w.kv(0, "Type", spec.get("type", "ClusterIP"))
        w.kv(0, "IP", spec.get("clusterIP") or "<none>")
        for port in spec.get("ports") or []:
            w.kv(0, "Port", f"{port.get('name') or '<unset>'}  {port.get('port')}/{port.get('protocol', 'TCP')}")


def describe(ctx, info: ApiResource, obj: dict) -> str:
    w = Writer()
    meta = obj.get("metadata", {})
    w.kv(0, "Name", meta.get("name", ""))
    if info.namespaced:
        w.kv(0, "Namespace", meta.get("namespace", ""))
    w.kv(0, "CreationTimestamp", _timestamp(meta.get("creationTimestamp")))
    _pairs(w, 0, "Labels", meta.get("labels"), "=")
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in HIDDEN_ANNOTATIONS}
    _pairs(w, 0, "Annotations", annotations, ": ")
    w.kv(0, "API Version", obj.get("apiVersion") or info.api_version)
    w.kv(0, "Kind", obj.get("kind") or info.kind)
    if meta.get("deletionTimestamp"):
        w.kv(0, "Terminating Since", _timestamp(meta["deletionTimestamp"]))
    if meta.get("ownerReferences"):
        owners = ", ".join(f"{o.get('kind')}/{o.get('name')}" for o in meta["ownerReferences"])
        w.kv(0, "Controlled By", owners)
    if meta.get("finalizers"):
        w.kv(0, "Finalizers", ", ".join(meta["finalizers"]))
    _summary(w, obj.get("kind") or info.kind, obj)
    for section in obj:
        if section in ("apiVersion", "kind", "metadata"):
            continue
        value = obj[section]
        if section in ("data", "binaryData", "stringData") and isinstance(value, dict):
            _data_section(w, smart_label(section), value, binary=section == "binaryData")
            continue
        if isinstance(value, (dict, list)):
            if not value:
                continue
            w.line(0, smart_label(section) + ":")
            _walk(w, 1, value)
        else:
            w.kv(0, smart_label(section), _scalar(value))
    if info.kind != "Event":
        render_events(w, events_for(ctx, {**obj, "kind": obj.get("kind") or info.kind}))
    return w.render()


def run(_name: str, argv: list[str], ctx) -> int:
    p = Parser(prog="ketch describe", description="Show details of resources and their events.")
    p.add_argument("args", nargs="+", metavar="TYPE [NAME...] | TYPE/NAME")
    p.add_argument("-l", "--selector")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    args = p.parse_intermixed_args(argv)
    if len(args.args) == 1 and "/" not in args.args[0] and ctx.resolve(args.args[0]) is None:
        raise CommandError(f'the server doesn\'t have a resource type "{args.args[0]}"')
    blocks: list[str] = []
    errors = 0
    for info, names in parse_targets(ctx, args.args):
        ns = None if (args.all_namespaces or not info.namespaced) else ctx.namespace
        objects: list[dict] = []
        if names:
            for name in names:
                try:
                    objects.append(ctx.client.get(path_for(info, ns, name)))
                except ApiStatusError as e:
                    ctx.warn(status_text(e.status, e.code))
                    errors += 1
        else:
            listed = ctx.client.get(path_for(info, ns), query={"labelSelector": args.selector})
            objects = listed.get("items") or []
        blocks += [describe(ctx, info, o) for o in objects]
    if blocks:
        ctx.out.write("\n\n".join(b.rstrip("\n") for b in blocks) + "\n")
    elif not errors:
        ctx.warn(f"No resources found in {ctx.namespace} namespace.")
    return 1 if errors else 0
