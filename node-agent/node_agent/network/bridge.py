"""Wire sandboxes into a Linux bridge with veth pairs (pyroute2, netlink).

The same calls serve the single-machine runtime (`ketch0`, user networks) and
the cluster (the node's pod bridge). Every function works in the calling
thread's network namespace (the "host" side); the sandbox side is reached by
entering its namespace file in a helper thread (netns.run_in). pyroute2 is
imported on first use: it is heavy and many runtime commands never need it.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass

from node_agent.network import netns

MAX_IFNAME = 15
BRIDGE_MODE_HAIRPIN = 1   # IFLA_BRPORT_MODE: frames may leave by the port they came in on


class BridgeError(Exception):
    """A netlink step failed; the message names the link and the step."""


def _iproute():
    from pyroute2 import IPRoute

    return IPRoute()


def _index(ipr, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def link_exists(name: str) -> bool:
    with _iproute() as ipr:
        return _index(ipr, name) is not None


def check_ifname(name: str) -> str:
    if not name or len(name) > MAX_IFNAME or "/" in name or " " in name:
        raise BridgeError(f"invalid link name {name!r}: 1 to {MAX_IFNAME} characters, no '/' or spaces")
    return name


def ensure_bridge(name: str, gateway: str, prefix_length: int, *, mtu: int | None = None) -> None:
    """Create (if missing) an up bridge holding gateway/prefix_length. Idempotent."""
    check_ifname(name)
    with _iproute() as ipr:
        idx = _index(ipr, name)
        if idx is None:
            try:
                ipr.link("add", ifname=name, kind="bridge")
            except Exception as exc:
                raise BridgeError(f"creating bridge {name}: {exc}") from exc
            idx = _index(ipr, name)
        present = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=2)}
        if (gateway, prefix_length) not in present:
            try:
                ipr.addr("add", index=idx, address=gateway, prefixlen=prefix_length)
            except Exception as exc:
                raise BridgeError(f"adding {gateway}/{prefix_length} to {name}: {exc}") from exc
        settings = {"state": "up"}
        if mtu:
            settings["mtu"] = mtu
        ipr.link("set", index=idx, **settings)
    # DNAT of connections to 127.0.0.1:<published port> towards the bridge
    # needs the kernel to route loopback-sourced packets out of this link.
    set_sysctl(f"net/ipv4/conf/{name}/route_localnet", "1")


def delete_link(name: str) -> bool:
    """Delete a link (bridge, or a veth with its peer); False when it was not there."""
    with _iproute() as ipr:
        idx = _index(ipr, name)
        if idx is None:
            return False
        ipr.link("del", index=idx)
        return True


def set_sysctl(key: str, value: str) -> str | None:
    """Write /proc/sys/<key> (in this thread's netns); returns the previous value."""
    path = f"/proc/sys/{key}"
    try:
        with open(path) as f:
            previous = f.read().strip()
        if previous != value:
            with open(path, "w") as f:
                f.write(value)
        return previous
    except FileNotFoundError:
        return None


def veth_name(link_prefix: str, kind: str = "v", token: str | None = None) -> str:
    """`<prefix><kind><hex>` filling the 15 characters a link name may have."""
    room = MAX_IFNAME - len(link_prefix) - len(kind)
    if room < 3:
        raise BridgeError(f"link prefix {link_prefix!r} leaves too little room for veth names")
    token = token or secrets.token_hex(8)
    return f"{link_prefix}{kind}{token[:room]}"


@dataclass
class Attachment:
    host_ifname: str
    ifname: str
    address: str
    prefix_length: int
    gateway: str
    mac_address: str


def attach(
    bridge: str,
    sandbox_netns: str,
    *,
    host_ifname: str,
    address: str,
    prefix_length: int,
    gateway: str,
    ifname: str = "eth0",
    default_route: bool = True,
    mtu: int | None = None,
    hairpin: bool = True,
) -> Attachment:
    """Put a veth pair between bridge and the sandbox: ifname inside with address, route via gateway.

    Both ends take the bridge's MTU unless `mtu` says otherwise (a pod bridge
    carries the overlay's smaller MTU, and a bigger veth would black-hole full
    frames). The bridge port is in hairpin mode from the start, so a pod whose
    Service sends it back to itself works from its first packet (br_netfilter
    DNATs while bridging and the frame must leave by the port it came in on)."""
    check_ifname(host_ifname)
    check_ifname(ifname)
    fd = os.open(sandbox_netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _iproute() as ipr:
            br = _index(ipr, bridge)
            if br is None:
                raise BridgeError(f"bridge {bridge} does not exist")
            mtu = mtu or ipr.get_links(br)[0].get_attr("IFLA_MTU")
            extra = {"mtu": mtu} if mtu else {}
            # One RTM_NEWLINK: the host end enslaved to the bridge, the peer born
            # inside the sandbox under its final name. Moving or renaming a link
            # afterwards costs the kernel an RCU grace period each.
            try:
                ipr.link("add", ifname=host_ifname, kind="veth", master=br, **extra,
                         peer={"ifname": ifname, "net_ns_fd": fd, **extra})
            except Exception as exc:
                raise BridgeError(f"creating veth {host_ifname} into {sandbox_netns}: {exc}") from exc
            try:
                host_index = _index(ipr, host_ifname)
                if hairpin:
                    ipr.brport("set", index=host_index, mode=BRIDGE_MODE_HAIRPIN)
                ipr.link("set", index=host_index, state="up")
            except Exception as exc:
                _quiet_delete(ipr, host_ifname)
                raise BridgeError(f"bringing up veth {host_ifname}: {exc}") from exc
    finally:
        os.close(fd)
    try:
        mac = netns.run_in(sandbox_netns, _configure_inside, ifname, address, prefix_length,
                           gateway, default_route)
    except Exception as exc:
        delete_link(host_ifname)
        raise BridgeError(f"configuring {ifname} in {sandbox_netns}: {exc}") from exc
    return Attachment(host_ifname, ifname, address, prefix_length, gateway, mac)


def _quiet_delete(ipr, name: str) -> None:
    idx = _index(ipr, name)
    if idx is not None:
        try:
            ipr.link("del", index=idx)
        except Exception:
            pass


def _configure_inside(ifname: str, address: str, prefix_length: int,
                      gateway: str, default_route: bool) -> str:
    _lo_up()
    with _iproute() as ipr:
        idx = _index(ipr, ifname)
        if idx is None:
            raise BridgeError(f"veth end {ifname} did not arrive in the sandbox")
        ipr.addr("add", index=idx, address=address, prefixlen=prefix_length)
        ipr.link("set", index=idx, state="up")
        if default_route:
            ipr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=idx)
        link = ipr.get_links(idx)[0]
        return link.get_attr("IFLA_ADDRESS") or ""


def loopback_up(sandbox_netns: str) -> None:
    """A sandbox with no network still gets a working 127.0.0.1 (two ioctls, no netlink)."""
    netns.run_in(sandbox_netns, _lo_up)


def _lo_up() -> None:
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s.fileno(), siocgifflags, req))[1]
        if not flags & iff_up:
            fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sh14x", b"lo", flags | iff_up))


def detach(host_ifname: str) -> bool:
    """Remove a sandbox's veth (its peer goes with it)."""
    return delete_link(host_ifname)


def network_of(address: str, prefix_length: int) -> str:
    return str(ipaddress.IPv4Network(f"{address}/{prefix_length}", strict=False))
