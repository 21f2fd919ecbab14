"""A pod's /etc/resolv.conf, following its dnsPolicy as the kubelet does.

ClusterFirst: the cluster DNS server, search ``<ns>.svc.<domain> svc.<domain>
<domain>`` and ``ndots:5``; Default: the node's own resolv.conf; None: only
dnsConfig. dnsConfig nameservers, searches and options are merged in. Without
a cluster DNS address configured, ClusterFirst falls back to Default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ResolvConfig:
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    host_resolv_conf: str = "/etc/resolv.conf"


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    servers, searches, options = [], [], []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            servers.append(words[1])
        elif words[0] in ("search", "domain"):
            searches = words[1:]
        elif words[0] == "options":
            options.extend(words[1:])
    return servers, searches, options


def render(pod: dict, config: ResolvConfig) -> str:
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy", "ClusterFirst")
    if spec.get("hostNetwork") and policy == "ClusterFirst":
        policy = "Default"
    if policy == "ClusterFirstWithHostNet":
        policy = "ClusterFirst"
    if policy == "ClusterFirst" and not config.cluster_dns:
        policy = "Default"
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy == "ClusterFirst":
        ns, domain = pod["metadata"]["namespace"], config.cluster_domain
        servers = list(config.cluster_dns)
        searches = [f"{ns}.svc.{domain}", f"svc.{domain}", domain]
        options = ["ndots:5"]
    elif policy == "Default":
        try:
            servers, searches, options = parse_resolv_conf(Path(config.host_resolv_conf).read_text())
        except OSError:
            pass
    dns = spec.get("dnsConfig") or {}
    servers += [s for s in dns.get("nameservers") or [] if s not in servers]
    searches += [s for s in dns.get("searches") or [] if s not in searches]
    merged = {o.split(":")[0]: o for o in options}
    for opt in dns.get("options") or []:
        merged[opt["name"]] = f"{opt['name']}:{opt['value']}" if opt.get("value") is not None else opt["name"]
    lines = [f"nameserver {s}" for s in servers[:3]]
    if searches:
        lines.append("search " + " ".join(searches[:32]))
    if merged:
        lines.append("options " + " ".join(merged.values()))
    return "\n".join(lines) + "\n"


def pod_resolv_conf(pod: dict, config: ResolvConfig, pod_dir: Path) -> str:
    """Write the pod's resolv.conf under its directory and return the path."""
    pod_dir.mkdir(parents=True, exist_ok=True)
    path = pod_dir / "resolv.conf"
    content = render(pod, config)
    if not path.exists() or path.read_text() != content:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(content)
        tmp.replace(path)
    return str(path)
