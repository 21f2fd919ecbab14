"""SubnetAllocator: unique addresses, persistence across instances, release."""

from __future__ import annotations

import ipaddress
import multiprocessing
from pathlib import Path

import pytest
from node_agent.network.ipam import IpamError, SubnetAllocator


def test_allocates_distinct_addresses_skipping_gateway(tmp_path: Path) -> None:
    ipam = SubnetAllocator(tmp_path, "10.213.7.0/29")
    got = [ipam.allocate(f"c{i}") for i in range(5)]
    assert ipam.gateway == ipaddress.IPv4Address("10.213.7.1")
    assert [str(a) for a in got] == ["10.213.7.2", "10.213.7.3", "10.213.7.4",
                                     "10.213.7.5", "10.213.7.6"]
    with pytest.raises(IpamError, match="no free address"):
        ipam.allocate("c5")


def test_same_owner_gets_same_address_and_survives_restart(tmp_path: Path) -> None:
    first = SubnetAllocator(tmp_path, "10.213.7.0/24")
    a = first.allocate("web")
    again = SubnetAllocator(tmp_path, "10.213.7.0/24")
    assert again.allocate("web") == a
    assert again.allocate("db") != a
    assert again.allocations() == {str(a): "web", str(again.allocate("db")): "db"}


def test_release_frees_but_next_allocation_moves_on(tmp_path: Path) -> None:
    ipam = SubnetAllocator(tmp_path, "10.213.7.0/24")
    a = ipam.allocate("a")
    assert ipam.release("a") == [str(a)]
    assert ipam.release("a") == []
    b = ipam.allocate("b")
    assert b != a, "a just-released address should not be reused at once"


def test_wraps_around_to_released_addresses(tmp_path: Path) -> None:
    ipam = SubnetAllocator(tmp_path, "10.213.7.0/29")
    for i in range(5):
        ipam.allocate(f"c{i}")
    ipam.release("c1")
    assert str(ipam.allocate("new")) == "10.213.7.3"


def test_explicit_address_conflicts_are_refused(tmp_path: Path) -> None:
    ipam = SubnetAllocator(tmp_path, "10.213.7.0/24")
    assert str(ipam.allocate("a", address="10.213.7.50")) == "10.213.7.50"
    with pytest.raises(IpamError, match="already in use by a"):
        ipam.allocate("b", address="10.213.7.50")
    with pytest.raises(IpamError, match="cannot be used"):
        ipam.allocate("b", address="10.213.7.1")
    with pytest.raises(IpamError, match="cannot be used"):
        ipam.allocate("b", address="10.213.8.3")


def _grab(args: tuple[str, int]) -> list[str]:
    state_dir, worker = args
    ipam = SubnetAllocator(Path(state_dir), "10.213.9.0/24")
    return [str(ipam.allocate(f"w{worker}-{i}")) for i in range(20)]


def test_concurrent_processes_never_share_an_address(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(_grab, [(str(tmp_path), w) for w in range(4)])
    flat = [ip for chunk in results for ip in chunk]
    assert len(flat) == 80
    assert len(set(flat)) == 80
