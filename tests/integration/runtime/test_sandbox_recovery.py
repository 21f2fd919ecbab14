"""A restarted runtime must not vouch for sandboxes whose namespaces it can no longer enter."""

from __future__ import annotations

import os
import subprocess

from proto import runtime_pb2 as pb


def _sandbox(client, name: str) -> str:
    config = pb.PodSandboxConfig(name=name, namespace="test", uid=f"uid-{name}", hostname=name, network="bridge")
    return client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id


def _state(client, sandbox_id: str) -> str:
    status = client.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)).status
    return pb.PodSandboxState.Name(status.state)


def test_sandbox_with_lost_namespaces_is_not_ready_after_restart(runtime_daemon):
    client = runtime_daemon.client
    healthy, broken = _sandbox(client, "healthy"), _sandbox(client, "broken")
    ns_dir = runtime_daemon.run_root / "sandboxes" / broken / "ns"
    pinned = [ns_dir / name for name in os.listdir(ns_dir)]
    assert pinned and all(os.path.ismount(p) for p in pinned)
    # What `ketch down` (or a stray unmount) does to a node's run dir while the runtime is down.
    for path in pinned:
        subprocess.run(["umount", str(path)], check=True)

    runtime_daemon.restart()
    client = runtime_daemon.client
    assert _state(client, healthy) == "SANDBOX_READY"
    assert _state(client, broken) == "SANDBOX_NOTREADY"
    # The owner replaces it: the broken one can still be stopped and removed cleanly.
    client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=broken))
    client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=broken))
