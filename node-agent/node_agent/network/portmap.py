"""Docker's `-p` syntax and host port bookkeeping for published ports.

`-p [hostip:][hostport:]containerport[/proto]`; a missing host port means
"any free one", chosen by asking the kernel for an ephemeral port in the
daemon's network namespace. Ranges (`8000-8010:80-90`) are accepted too.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass


class PortSpecError(ValueError):
    """A `-p` value that cannot be understood; the message shows the expected form."""


@dataclass(frozen=True)
class PortMapping:
    protocol: str
    container_port: int
    host_port: int = 0  # 0 = pick a free one
    host_ip: str = ""


USAGE = "expected [hostip:][hostport:]containerport[/tcp|udp], e.g. 8080:80"


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise PortSpecError(f"invalid port {text!r} in {spec!r}: {USAGE}")
    return int(text)


def _range(text: str, spec: str) -> list[int]:
    if "-" in text:
        lo, _, hi = text.partition("-")
        a, b = _port(lo, spec), _port(hi, spec)
        if b < a:
            raise PortSpecError(f"invalid port range {text!r} in {spec!r}")
        return list(range(a, b + 1))
    return [_port(text, spec)]


def parse(spec: str) -> list[PortMapping]:
    """One `-p` value -> its mappings."""
    body, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp"):
        raise PortSpecError(f"invalid protocol {proto!r} in {spec!r}: tcp or udp")
    host_ip = ""
    if body.startswith("["):
        raise PortSpecError(f"IPv6 host addresses are not supported yet: {spec!r}")
    parts = body.split(":")
    if len(parts) == 3:
        host_ip, host, container = parts
        try:
            ipaddress.IPv4Address(host_ip)
        except ValueError as exc:
            raise PortSpecError(f"invalid host address {host_ip!r} in {spec!r}") from exc
    elif len(parts) == 2:
        host, container = parts
    elif len(parts) == 1:
        host, container = "", parts[0]
    else:
        raise PortSpecError(f"cannot parse {spec!r}: {USAGE}")
    containers = _range(container, spec)
    hosts = _range(host, spec) if host else [0] * len(containers)
    if len(hosts) != len(containers):
        if len(hosts) == 1 or host == "":
            raise PortSpecError(f"host and container port ranges differ in size in {spec!r}")
        raise PortSpecError(f"host and container port ranges differ in size in {spec!r}")
    return [PortMapping(proto, c, h, "" if host_ip == "0.0.0.0" else host_ip)
            for h, c in zip(hosts, containers, strict=True)]


def free_port(protocol: str = "tcp", host_ip: str = "") -> int:
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host_ip or "0.0.0.0", 0))
        return s.getsockname()[1]


def conflicts(wanted: list[PortMapping], taken: list[PortMapping]) -> list[PortMapping]:
    """Mappings of `wanted` whose host side clashes with one already published."""
    clashes = []
    for w in wanted:
        for t in taken:
            same_ip = not w.host_ip or not t.host_ip or w.host_ip == t.host_ip
            if w.host_port and w.protocol == t.protocol and w.host_port == t.host_port and same_ip:
                clashes.append(w)
                break
    return clashes


def resolve(wanted: list[PortMapping], taken: list[PortMapping]) -> list[PortMapping]:
    """Fill in free host ports and refuse clashes with what is already published."""
    clash = conflicts(wanted, taken)
    if clash:
        c = clash[0]
        where = f"{c.host_ip}:" if c.host_ip else ""
        raise PortSpecError(f"host port {where}{c.host_port}/{c.protocol} is already published by another container")
    out = []
    used = {(t.protocol, t.host_port) for t in taken}
    for w in wanted:
        port = w.host_port
        while not port or (w.protocol, port) in used:
            port = free_port(w.protocol, w.host_ip)
        used.add((w.protocol, port))
        out.append(PortMapping(w.protocol, w.container_port, port, w.host_ip))
    return out
