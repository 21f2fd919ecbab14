"""Rendering of the nftables table, `-p` parsing and /etc/hosts rendering."""

from __future__ import annotations

from pathlib import Path

import pytest
from node_agent.network import hosts, nft, portmap
from node_agent.network.portmap import PortMapping, PortSpecError


def test_render_is_replace_whole_table_and_only_ours() -> None:
    text = nft.render("ketch_runtime_abc123",
                      [nft.NatNetwork("ketchabc1230", "10.213.1.0/24"),
                       nft.NatNetwork("ketchabc123-u", "10.213.2.0/24")],
                      [nft.PortRule("tcp", 8080, "10.213.1.2", 80),
                       nft.PortRule("udp", 53, "10.213.1.3", 5353, "127.0.0.1")])
    lines = text.splitlines()
    assert lines[0] == "table ip ketch_runtime_abc123"
    assert lines[1] == "delete table ip ketch_runtime_abc123"
    assert lines[2] == "table ip ketch_runtime_abc123 {"
    assert all("table" not in line or "ketch_runtime_abc123" in line for line in lines)
    assert "tcp dport 8080 dnat to 10.213.1.2:80" in text
    assert "ip daddr 127.0.0.1 udp dport 53 dnat to 10.213.1.3:5353" in text
    assert 'ip saddr 10.213.1.0/24 oifname != "ketchabc1230" masquerade' in text
    assert 'iifname "ketchabc1230" oifname "ketchabc123-u" drop' in text
    assert 'oifname "ketchabc1230" ip saddr 127.0.0.0/8 masquerade' in text


def test_cluster_cidr_is_not_masqueraded() -> None:
    text = nft.render("ketch_x", [nft.NatNetwork("ketch-pods", "10.244.1.0/24", ("10.244.0.0/16",))], [])
    assert 'ip saddr 10.244.1.0/24 ip daddr != 10.244.0.0/16 oifname != "ketch-pods" masquerade' in text
    with pytest.raises(nft.NftError):
        nft.render("ketch_x", [nft.NatNetwork("b", "10.0.0.0/24", ("10.0.0.0/99",))], [])


def test_render_refuses_foreign_table_names_and_bad_interfaces() -> None:
    with pytest.raises(nft.NftError):
        nft.render("filter", [], [])
    with pytest.raises(nft.NftError):
        nft.render("ketch_x", [nft.NatNetwork('br"; flush ruleset', "10.0.0.0/24")], [])


@pytest.mark.parametrize("spec,expected", [
    ("8080:80", [PortMapping("tcp", 80, 8080, "")]),
    ("80", [PortMapping("tcp", 80, 0, "")]),
    ("127.0.0.1:8080:80/udp", [PortMapping("udp", 80, 8080, "127.0.0.1")]),
    ("0.0.0.0:8080:80", [PortMapping("tcp", 80, 8080, "")]),
    ("127.0.0.1::80", [PortMapping("tcp", 80, 0, "127.0.0.1")]),
    ("8000-8001:80-81", [PortMapping("tcp", 80, 8000, ""), PortMapping("tcp", 81, 8001, "")]),
])
def test_parse_port_specs(spec: str, expected: list[PortMapping]) -> None:
    assert portmap.parse(spec) == expected


@pytest.mark.parametrize("spec", ["", "x:80", "8080:80/sctp", "1:2:3:4", "70000:80",
                                  "8000-8002:80-81", "999.1.1.1:80:80"])
def test_parse_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(PortSpecError):
        portmap.parse(spec)


def test_resolve_refuses_clash_and_fills_free_ports() -> None:
    taken = [PortMapping("tcp", 80, 8080)]
    with pytest.raises(PortSpecError, match="already published"):
        portmap.resolve([PortMapping("tcp", 81, 8080)], taken)
    assert portmap.resolve([PortMapping("udp", 81, 8080)], taken)[0].host_port == 8080
    got = portmap.resolve([PortMapping("tcp", 80, 0), PortMapping("tcp", 81, 0)], taken)
    assert all(p.host_port > 0 for p in got)
    assert got[0].host_port != got[1].host_port


def test_hosts_file_names_self_and_peers(tmp_path: Path) -> None:
    text = hosts.render_hosts("web", ["10.213.1.2"], [("10.213.1.2", ["web"]), ("10.213.1.3", ["db", "database"])])
    assert "127.0.0.1\tlocalhost" in text
    assert "10.213.1.2\tweb" in text
    assert "10.213.1.3\tdb database" in text
    assert text.count("10.213.1.2") == 1
    named = hosts.render_hosts("abc123", ["10.213.1.2"], [], own_names=["web", "abc123"])
    assert "10.213.1.2\tabc123 web\n" in named
    path = tmp_path / "hosts"
    path.write_text("old contents that are longer\n")
    inode = path.stat().st_ino
    assert hosts.write_in_place(path, "new\n") is True
    assert path.read_text() == "new\n" and path.stat().st_ino == inode
    mtime = path.stat().st_mtime_ns
    assert hosts.write_in_place(path, "new\n") is False       # unchanged: not written again
    assert path.stat().st_mtime_ns == mtime
    fresh = tmp_path / "hostname"
    assert hosts.write_in_place(fresh, "box\n") is True and fresh.read_text() == "box\n"


def test_resolv_conf_drops_loopback_resolvers(tmp_path: Path) -> None:
    src = tmp_path / "resolv.conf"
    src.write_text("nameserver 127.0.0.53\nsearch lan\n")
    text = hosts.render_resolv_conf(src)
    assert "127.0.0.53" not in text and "search lan" in text and "nameserver 8.8.8.8" in text
