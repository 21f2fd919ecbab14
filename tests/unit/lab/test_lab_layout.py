"""Lab naming, addressing and layout: every kernel name fits and is the lab's own; what down finds."""

from __future__ import annotations

from pathlib import Path

import pytest

from ketch.lab.components import LabLayout, LabSettings, find, lab_components
from ketch.lab.teardown import mounts_under


def test_default_lab_names_and_addresses():
    s = LabSettings()
    s.validate()
    assert s.node_names() == ["lab-n1", "lab-n2"]
    assert s.bridge == "ketch-lab-br" and s.gateway == "10.213.0.1"
    assert [s.node_ip(n) for n in s.node_names()] == ["10.213.0.11", "10.213.0.12"]
    assert [s.netns(n) for n in s.node_names()] == ["ketch-lab-n1", "ketch-lab-n2"]
    assert s.host_veth("lab-n2") == "ketch-labv2"
    assert s.cgroup_parent("lab-n1") == "ketch-lab-n1"
    assert s.context == "ketch"


def test_longest_names_fit_in_kernel_link_names():
    s = LabSettings(name="abcdef", nodes=99, subnet="10.215.0.0/24")
    s.validate()
    names = [s.bridge] + [s.host_veth(n) for n in s.node_names()]
    assert max(len(n) for n in names) <= 15
    assert len(set(names)) == len(names)
    assert s.node_ip("abcdef-n99") == "10.215.0.109"
    assert s.context == "ketch-abcdef"


@pytest.mark.parametrize("name", ["", "toolong7", "Lab", "a-b", "a_b"])
def test_bad_names_are_refused(name):
    with pytest.raises(ValueError, match="lab name"):
        LabSettings(name=name).validate()


def test_too_many_nodes_for_the_subnet_is_refused():
    with pytest.raises(ValueError, match="--nodes 30"):
        LabSettings(nodes=30, subnet="10.0.0.0/27").validate()
    with pytest.raises(ValueError, match="IPv4 network"):
        LabSettings(subnet="fd00::/64").validate()


def test_layout_defaults_and_named_labs():
    assert LabLayout.under(None).state_dir == Path("/var/lib/ketch")
    named = LabLayout.under(None, "x1")
    assert (named.state_dir, named.run_dir, named.log_dir) == (
        Path("/var/lib/ketch-x1"), Path("/run/ketch-x1"), Path("/var/log/ketch-x1"))
    custom = LabLayout.under(Path("/srv/lab"))
    assert custom.run_dir == Path("/srv/lab/run") and custom.log_dir == Path("/srv/lab/logs")
    assert custom.runtime_socket("lab-n1") == Path("/srv/lab/run/lab-n1/runtime.sock")


def test_settings_round_trip(tmp_path):
    s = LabSettings(name="t1", nodes=3, subnet="10.215.7.0/24", apiserver_port=1234)
    s.save(tmp_path / "lab.json")
    assert LabSettings.load(tmp_path / "lab.json") == s
    assert LabSettings.load(tmp_path / "missing.json") is None


def test_components_in_stages_and_wiring():
    layout, s = LabLayout.under(Path("/srv/lab")), LabSettings(nodes=2)
    comps = lab_components(layout, s)
    assert [c.stage for c in comps] == sorted(c.stage for c in comps)
    assert [c.name for c in comps if c.stage == 0] == ["apiserver"]
    apiserver = find(comps, "apiserver")
    assert apiserver.argv[apiserver.argv.index("--bind-address") + 1] == "10.213.0.1"
    runtime = find(comps, "runtime", "lab-n2")
    assert runtime.argv[runtime.argv.index("--netns") + 1] == "ketch-lab-n2"
    assert runtime.argv[runtime.argv.index("--cgroup-parent") + 1] == "ketch-lab-n2"
    agent = find(comps, "node-agent", "lab-n2")
    assert agent.argv[:2] == ["nsenter", "--net=/run/netns/ketch-lab-n2"], "never `ip netns exec`"
    assert agent.argv[agent.argv.index("--node-ip") + 1] == "10.213.0.12"
    assert agent.argv[agent.argv.index("--runtime-endpoint") + 1] == str(layout.runtime_socket("lab-n2"))
    assert len({c.pid_file for c in comps}) == len({c.log_file for c in comps}) == len(comps) == 7
    with pytest.raises(KeyError):
        find(comps, "runtime", "lab-n3")


def test_mounts_under_only_strictly_below_the_dirs(tmp_path, monkeypatch):
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "overlay /srv/lab/nodes/lab-n1/runtime/x/rootfs overlay rw 0 0\n"
        "tmpfs /srv/lab/nodes/lab-n1/agent/pods/u/volumes/with\\040space tmpfs rw 0 0\n"
        "tmpfs /srv/lab tmpfs rw 0 0\n"
        "tmpfs /srv/lab2/x tmpfs rw 0 0\n"
    )
    real_open = open

    def fake_open(path, *args, **kwargs):
        return real_open(mounts if path == "/proc/self/mounts" else path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    assert mounts_under([Path("/srv/lab")]) == [
        "/srv/lab/nodes/lab-n1/agent/pods/u/volumes/with space",
        "/srv/lab/nodes/lab-n1/runtime/x/rootfs",
    ]


def test_a_new_lab_moves_off_a_taken_etcd_port_but_keeps_given_and_saved_ones(tmp_path, monkeypatch):
    from ketch.lab import cluster

    layout = LabLayout.under(tmp_path)
    monkeypatch.setattr(cluster, "_port_taken", lambda port: port == 2379)
    fresh = cluster.effective_settings(layout, {"etcd_client_port": None})
    assert fresh.etcd_client_port not in (2379, 0) and fresh.etcd_peer_port == 2380
    given = cluster.effective_settings(layout, {"etcd_client_port": 2379})
    assert given.etcd_client_port == 2379, "a port given on the command line is kept"
    LabSettings(etcd_client_port=2379).save(layout.settings_file)
    assert cluster.effective_settings(layout, {}).etcd_client_port == 2379, "a saved lab keeps its ports"
