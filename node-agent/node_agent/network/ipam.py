"""File-backed IPv4 address allocation for one subnet.

One JSON file per subnet holds who owns which address; every change happens
under an exclusive flock on a sibling lock file and is written by rename, so
two allocators (two processes, or a daemon and its restart) never hand out the
same address, and a restart finds every allocation it made. Like CNI's
host-local plugin, allocation continues after the last address handed out
instead of reusing the lowest free one, so a released address is not given to
the next container at once.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class IpamError(Exception):
    """Allocation failed in a way a person must act on (subnet full, address taken)."""


class SubnetAllocator:
    """Addresses of one subnet: the gateway and network/broadcast are never handed out."""

    def __init__(self, state_dir: Path, subnet: str, *, gateway: str | None = None) -> None:
        self.network = ipaddress.IPv4Network(subnet, strict=False)
        if self.network.num_addresses < 4:
            raise IpamError(f"subnet {subnet} is too small: need at least a /30")
        hosts = self.network.hosts()
        self.gateway = ipaddress.IPv4Address(gateway) if gateway else next(hosts)
        if self.gateway not in self.network:
            raise IpamError(f"gateway {self.gateway} is not inside subnet {self.network}")
        state_dir.mkdir(parents=True, exist_ok=True)
        stem = str(self.network).replace("/", "_")
        self.path = state_dir / f"{stem}.json"
        self._lock_path = state_dir / f"{stem}.lock"

    @property
    def prefix_length(self) -> int:
        return self.network.prefixlen

    @contextmanager
    def _locked(self) -> Iterator[dict]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = self._read()
            yield state
            self._write(state)
        finally:
            os.close(fd)  # closing drops the flock

    def _read(self) -> dict:
        try:
            state = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"subnet": str(self.network), "last": None, "allocations": {}}
        if state.get("subnet") != str(self.network):
            raise IpamError(f"{self.path} belongs to subnet {state.get('subnet')}, not {self.network}")
        return state

    def _write(self, state: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def allocate(self, owner: str, *, address: str | None = None) -> ipaddress.IPv4Address:
        """The address of `owner`: the one it already holds, `address` if asked, else the next free."""
        with self._locked() as state:
            allocations: dict[str, str] = state["allocations"]
            for ip, holder in allocations.items():
                if holder == owner:
                    return ipaddress.IPv4Address(ip)
            if address is not None:
                wanted = ipaddress.IPv4Address(address)
                if wanted not in self.network or wanted in self._reserved():
                    raise IpamError(f"address {wanted} cannot be used in {self.network}")
                if str(wanted) in allocations:
                    raise IpamError(f"address {wanted} is already in use by {allocations[str(wanted)]}")
                allocations[str(wanted)] = owner
                return wanted
            chosen = self._next_free(state)
            allocations[str(chosen)] = owner
            state["last"] = str(chosen)
            return chosen

    def _reserved(self) -> set[ipaddress.IPv4Address]:
        return {self.network.network_address, self.network.broadcast_address, self.gateway}

    def _next_free(self, state: dict) -> ipaddress.IPv4Address:
        first = int(self.network.network_address) + 1
        last = int(self.network.broadcast_address) - 1
        span = last - first + 1
        start = int(ipaddress.IPv4Address(state["last"])) + 1 if state["last"] else first
        taken = state["allocations"]
        reserved = self._reserved()
        for step in range(span):
            candidate = ipaddress.IPv4Address(first + (start - first + step) % span)
            if str(candidate) not in taken and candidate not in reserved:
                return candidate
        raise IpamError(f"subnet {self.network} has no free address left ({len(taken)} in use)")

    def release(self, owner: str) -> list[str]:
        """Free every address `owner` holds; returns them (empty when it held none)."""
        with self._locked() as state:
            freed = [ip for ip, holder in state["allocations"].items() if holder == owner]
            for ip in freed:
                del state["allocations"][ip]
            return freed

    def allocations(self) -> dict[str, str]:
        """address -> owner, as stored."""
        with self._locked() as state:
            return dict(state["allocations"])

    def destroy(self) -> None:
        """Forget the subnet (when its network is removed)."""
        for path in (self.path, self._lock_path):
            path.unlink(missing_ok=True)
