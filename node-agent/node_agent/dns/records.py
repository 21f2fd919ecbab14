"""The cluster zone: DNS records derived from Services and Endpoints (pure, no sockets).

Names follow the Kubernetes DNS specification:

- ``<svc>.<ns>.svc.<domain>``: A -> the clusterIP; for a headless Service one
  A per ready address; CNAME -> spec.externalName for ExternalName Services;
- ``<hostname>.<svc>.<ns>.svc.<domain>`` for every ready endpoint address
  (the pod's spec.hostname, else its IP with dashes): A -> the address;
- ``_<port>._<proto>.<svc>.<ns>.svc.<domain>`` for named ports: SRV -> the
  Service name (ClusterIP) or one per endpoint name (headless);
- ``<a-b-c-d>.<ns>.pod.<domain>``: A -> a.b.c.d (as CoreDNS "pods insecure");
- PTR for clusterIPs and endpoint addresses.

``answer`` returns None for names outside the zone and unknown reverse
addresses: the server forwards those upstream.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from dnslib import CNAME, PTR, QTYPE, RCODE, RR, SOA, SRV, A

DEFAULT_DOMAIN = "cluster.local"
DEFAULT_TTL = 5


@dataclass
class Answer:
    rcode: int = RCODE.NOERROR
    answers: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)


def _norm(name: str) -> str:
    return str(name).rstrip(".").lower()


def _ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


def reverse_name(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


def _ip_from_reverse(name: str) -> str | None:
    labels = name[: -len(".in-addr.arpa")].split(".")
    ip = ".".join(reversed(labels))
    return ip if len(labels) == 4 and _ipv4(ip) else None


class ClusterRecords:
    """An immutable snapshot of the zone; rebuild() from the informers' objects when they change."""

    def __init__(self, domain: str = DEFAULT_DOMAIN, ttl: int = DEFAULT_TTL) -> None:
        self.domain = _norm(domain)
        self.ttl = ttl
        self.a: dict[str, list[str]] = {}
        self.cname: dict[str, str] = {}
        self.srv: dict[str, list[tuple[int, str]]] = {}  # name -> [(port, target)]
        self.ptr: dict[str, str] = {}
        self.names: set[str] = set()  # every name that exists (for NODATA versus NXDOMAIN)

    # -------------------------------------------------------------- build --

    def _add_name(self, name: str) -> None:
        """Register name and its ancestors down to the domain (empty non-terminals exist)."""
        while name and name not in self.names:
            self.names.add(name)
            if name == self.domain or "." not in name:
                break
            name = name.split(".", 1)[1]

    def _add_a(self, name: str, ip: str) -> None:
        self._add_name(name)
        ips = self.a.setdefault(name, [])
        if ip not in ips:
            ips.append(ip)

    def rebuild(self, services: list[dict], endpoints: list[dict]) -> None:
        self.a, self.cname, self.srv, self.ptr, self.names = {}, {}, {}, {}, set()
        self._add_name(f"svc.{self.domain}")
        self._add_name(f"pod.{self.domain}")
        eps = {}
        for ep in endpoints:
            meta = ep.get("metadata") or {}
            eps[(meta.get("namespace", "default"), meta.get("name", ""))] = ep
        for svc in sorted(services, key=lambda s: (s["metadata"].get("namespace", ""), s["metadata"]["name"])):
            self._add_service(svc, eps)

    def _add_service(self, svc: dict, eps: dict) -> None:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ns, name = meta.get("namespace", "default"), meta.get("name", "")
        base = f"{name}.{ns}.svc.{self.domain}".lower()
        self._add_name(base)
        if spec.get("type") == "ExternalName":
            if spec.get("externalName"):
                self.cname[base] = _norm(spec["externalName"])
            return
        cluster_ip = spec.get("clusterIP") or ""
        headless = cluster_ip == "None"
        if _ipv4(cluster_ip):
            self._add_a(base, cluster_ip)
            self.ptr.setdefault(cluster_ip, base)
        endpoint_names: dict[str, list[tuple[str, int]]] = {}  # port name/proto key -> [(target, port)]
        for subset in (eps.get((ns, name)) or {}).get("subsets") or []:
            for addr in subset.get("addresses") or []:
                ip = addr.get("ip", "")
                if not _ipv4(ip):
                    continue
                host = (addr.get("hostname") or ip.replace(".", "-")).lower()
                target = f"{host}.{base}"
                self._add_a(target, ip)
                self.ptr.setdefault(ip, target)
                if headless:
                    self._add_a(base, ip)
                for port in subset.get("ports") or []:
                    if port.get("name"):
                        key = f"_{port['name']}._{(port.get('protocol') or 'TCP').lower()}"
                        endpoint_names.setdefault(key, []).append((target, int(port["port"])))
        for port in spec.get("ports") or []:
            if not port.get("name"):
                continue
            key = f"_{port['name']}._{(port.get('protocol') or 'TCP').lower()}".lower()
            srv_name = f"{key}.{base}"
            if headless:
                targets = [(int(p), t) for t, p in endpoint_names.get(key, [])]
            else:
                targets = [(int(port["port"]), base)]
            if targets:
                self._add_name(srv_name)
                self.srv[srv_name] = sorted(set(targets), key=lambda x: (x[1], x[0]))

    # ------------------------------------------------------------- answer --

    def is_ours(self, name: str) -> bool:
        name = _norm(name)
        return name == self.domain or name.endswith("." + self.domain)

    def soa(self) -> RR:
        return RR(self.domain + ".", QTYPE.SOA, ttl=self.ttl, rdata=SOA(
            f"ns.dns.{self.domain}.", f"hostmaster.{self.domain}.", (1, 7200, 1800, 86400, self.ttl)))

    def _rr(self, name: str, qtype: int, rdata) -> RR:  # noqa: ANN001
        return RR(name + ".", qtype, ttl=self.ttl, rdata=rdata)

    def answer(self, qname: str, qtype: int) -> Answer | None:
        """Records for (qname, qtype), NODATA/NXDOMAIN inside the zone, None outside it."""
        name = _norm(qname)
        if name.endswith(".in-addr.arpa"):
            ip = _ip_from_reverse(name)
            target = self.ptr.get(ip) if ip else None
            if target is None:
                return None
            if qtype not in (QTYPE.PTR, QTYPE.ANY):
                return Answer()
            return Answer(answers=[self._rr(name, QTYPE.PTR, PTR(target + "."))])
        if not self.is_ours(name):
            return None
        out = Answer()
        if name in self.cname:
            target = self.cname[name]
            out.answers.append(self._rr(name, QTYPE.CNAME, CNAME(target + ".")))
            if qtype != QTYPE.CNAME and self.is_ours(target):
                follow = self.answer(target, qtype)
                if follow is not None:
                    out.answers += follow.answers
            return out
        if qtype in (QTYPE.A, QTYPE.ANY):
            out.answers += [self._rr(name, QTYPE.A, A(ip)) for ip in self.a.get(name, [])]
        if qtype in (QTYPE.SRV, QTYPE.ANY):
            targets = self.srv.get(name, [])
            weight = max(1, 100 // max(1, len(targets)))
            for port, target in targets:
                out.answers.append(self._rr(name, QTYPE.SRV, SRV(0, weight, port, target + ".")))
                out.additional += [self._rr(target, QTYPE.A, A(ip)) for ip in self.a.get(target, [])]
        if qtype in (QTYPE.SOA, QTYPE.ANY) and name == self.domain:
            out.answers.append(self.soa())
        pod_ip = self._pod_ip(name)
        if pod_ip and qtype in (QTYPE.A, QTYPE.ANY):
            out.answers.append(self._rr(name, QTYPE.A, A(pod_ip)))
        if out.answers:
            return out
        if name not in self.names and not pod_ip:
            out.rcode = RCODE.NXDOMAIN
        out.authority.append(self.soa())
        return out

    def _pod_ip(self, name: str) -> str | None:
        labels = name.split(".")
        suffix = f"pod.{self.domain}".split(".")
        if len(labels) != 2 + len(suffix) or labels[2:] != suffix:
            return None
        ip = labels[0].replace("-", ".")
        return ip if _ipv4(ip) and labels[0].count("-") == 3 else None
