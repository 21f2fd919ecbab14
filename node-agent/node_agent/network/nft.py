"""The runtime's nftables table: egress masquerade, port publishing, isolation.

Ketch renders its whole table as text and hands it to `nft -f` in one
transaction that starts with `table …; delete table …; table … { … }`: the old
rules vanish and the new ones appear atomically, and no other table on the
machine is read or touched.

Publishing `127.0.0.1:<port>` works by DNAT in the output hook plus
`route_localnet` on the bridge (set by bridge.ensure_bridge) and a masquerade
of loopback-sourced packets leaving through the bridge, so no userspace proxy
is needed.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class NftError(Exception):
    """`nft` refused the ruleset; the message carries its complaint."""


@dataclass(frozen=True)
class NatNetwork:
    """A bridge whose subnet is masqueraded when it leaves through another link."""

    bridge: str
    subnet: str
    #: destinations reached with the pods' own addresses (the cluster CIDR over the overlay)
    no_masquerade_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortRule:
    """host_ip:host_port/protocol -> container_ip:container_port."""

    protocol: str
    host_port: int
    container_ip: str
    container_port: int
    host_ip: str = ""


def _check_name(name: str) -> str:
    if not _NAME.match(name) or not name.startswith("ketch"):
        raise NftError(f"table name {name!r} must start with 'ketch' and hold only letters, digits, _")
    return name


def _cidr(text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.IPv4Network(text, strict=False))
    except ValueError as exc:
        raise NftError(f"invalid CIDR {text!r}: {exc}") from None


def _quote(ifname: str) -> str:
    if not re.match(r"^[A-Za-z0-9_.-]{1,15}$", ifname):
        raise NftError(f"invalid interface name {ifname!r}")
    return f'"{ifname}"'


def render(table: str, networks: list[NatNetwork], ports: list[PortRule], *,
           isolate: bool = True) -> str:
    """The whole `ip <table>` as an `nft -f` script that replaces any previous version."""
    table = _check_name(table)
    publish: list[str] = []
    for rule in sorted(ports, key=lambda r: (r.protocol, r.host_port, r.host_ip)):
        if rule.protocol not in ("tcp", "udp"):
            raise NftError(f"unsupported protocol {rule.protocol!r} (tcp or udp)")
        match = f"ip daddr {rule.host_ip} " if rule.host_ip not in ("", "0.0.0.0") else ""
        publish.append(f"\t\t{match}{rule.protocol} dport {int(rule.host_port)} "
                       f"dnat to {rule.container_ip}:{int(rule.container_port)}")
    post: list[str] = []
    forward: list[str] = []
    bridges = [n.bridge for n in networks]
    for net in networks:
        br = _quote(net.bridge)
        post.append(f"\t\toifname {br} ip saddr 127.0.0.0/8 masquerade")
        post.append(f"\t\tip saddr {net.subnet} ip daddr {net.subnet} ct status dnat masquerade")
        keep = "".join(f"ip daddr != {_cidr(c)} " for c in net.no_masquerade_to)
        post.append(f"\t\tip saddr {net.subnet} {keep}oifname != {br} masquerade")
        if isolate:
            for other in bridges:
                if other != net.bridge:
                    forward.append(f"\t\tiifname {br} oifname {_quote(other)} drop")
    lines = [
        f"table ip {table}",
        f"delete table ip {table}",
        f"table ip {table} {{",
        "\tchain publish {",
        *publish,
        "\t}",
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
        "\t\tfib daddr type local jump publish",
        "\t}",
        "\tchain output {",
        "\t\ttype nat hook output priority -100; policy accept;",
        "\t\tfib daddr type local jump publish",
        "\t}",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        *post,
        "\t}",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        *forward,
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def apply(script: str, *, nft: str = "nft") -> None:
    """Run the script as one nftables transaction."""
    proc = subprocess.run([nft, "-f", "-"], input=script.encode(), capture_output=True)
    if proc.returncode != 0:
        raise NftError(f"nft -f failed: {proc.stderr.decode(errors='replace').strip()}")


def delete_table(table: str, *, nft: str = "nft") -> bool:
    """Remove the table if it exists; False when it did not."""
    table = _check_name(table)
    script = f"table ip {table}\ndelete table ip {table}\n"
    apply(script, nft=nft)
    return True


def list_table(table: str, *, nft: str = "nft") -> str:
    proc = subprocess.run([nft, "list", "table", "ip", _check_name(table)], capture_output=True)
    if proc.returncode != 0:
        raise NftError(proc.stderr.decode(errors="replace").strip())
    return proc.stdout.decode()
