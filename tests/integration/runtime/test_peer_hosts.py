"""Docker-style peer names in /etc/hosts are a user-network feature a network can turn off."""

from __future__ import annotations

from proto import runtime_pb2 as pb


def _sandbox(client, name: str, network: str) -> str:
    config = pb.PodSandboxConfig(name=name, namespace="test", uid=f"uid-{name}", hostname=name, network=network)
    return client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id


def _hosts(daemon, sandbox_id: str) -> str:
    return (daemon.root / "sandboxes" / sandbox_id / "hosts").read_text()


def test_peer_hosts_on_user_networks_unless_turned_off(runtime_daemon):
    client = runtime_daemon.client
    client.networks.CreateNetwork(pb.CreateNetworkRequest(name="named"))
    client.networks.CreateNetwork(pb.CreateNetworkRequest(name="quiet", labels={"ketch.io/peer-hosts": "false"}))
    first, second = _sandbox(client, "alpha", "named"), _sandbox(client, "beta", "named")
    assert "beta" in _hosts(runtime_daemon, first), "a member learns of a later one by name"
    assert "alpha" in _hosts(runtime_daemon, second)
    third, fourth = _sandbox(client, "gamma", "quiet"), _sandbox(client, "delta", "quiet")
    assert "delta" not in _hosts(runtime_daemon, third)
    assert "gamma" not in _hosts(runtime_daemon, fourth)
    assert "delta" in _hosts(runtime_daemon, fourth), "a sandbox still knows its own name"
    for sandbox in (first, second, third, fourth):
        client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox))
        client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox))
