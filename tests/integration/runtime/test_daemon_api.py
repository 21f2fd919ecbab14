"""The runtime daemon through its gRPC API: lifecycle, image config, logs, exec, restarts."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import grpc
import pytest

from proto import runtime_pb2 as pb


def create(daemon, *, network: str = "none", **config) -> str:
    cfg = pb.ContainerConfig(image=config.pop("image", "busybox"), network=network, **config)
    return daemon.client.runtime.CreateContainer(pb.CreateContainerRequest(config=cfg)).container_id


def start(daemon, cid: str) -> None:
    daemon.client.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))


def wait(daemon, cid: str, timeout: float = 30) -> pb.WaitContainerResponse:
    return daemon.client.runtime.WaitContainer(pb.WaitContainerRequest(container_id=cid), timeout=timeout)


def status(daemon, cid: str) -> pb.ContainerStatus:
    return daemon.client.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status


def logs(daemon, cid: str, tail: int = -1, **kw) -> list[pb.LogEntry]:
    return list(daemon.client.runtime.ReadLogs(pb.ReadLogsRequest(container_id=cid, tail=tail, **kw), timeout=30))


def test_version_names_the_daemon(runtime_daemon) -> None:
    v = runtime_daemon.client.runtime.Version(pb.VersionRequest())
    assert v.runtime_name == "ketch" and v.runtime_api_version == "v1"
    assert v.cgroup_mode in ("v1", "hybrid", "v2")
    assert v.pid == runtime_daemon.process.pid
    assert oct(os.stat(runtime_daemon.socket).st_mode & 0o777) == "0o600"


def test_create_start_wait_exit_code_and_complete_ordered_logs(runtime_daemon) -> None:
    cid = create(runtime_daemon, command=["sh", "-c", "i=1; while [ $i -le 300 ]; do echo line$i; "
                                                      "i=$((i+1)); done; echo oops >&2; exit 7"])
    assert status(runtime_daemon, cid).state == pb.CONTAINER_CREATED
    start(runtime_daemon, cid)
    result = wait(runtime_daemon, cid)
    assert result.exit_code == 7 and result.reason == "Error"
    st = status(runtime_daemon, cid)
    assert st.state == pb.CONTAINER_EXITED and st.finished_at >= st.started_at > 0
    entries = logs(runtime_daemon, cid)
    out = [e.data for e in entries if e.stream == pb.STDOUT]
    assert out == [f"line{i}\n".encode() for i in range(1, 301)]
    assert [e.data for e in entries if e.stream == pb.STDERR] == [b"oops\n"]
    assert [e.data for e in logs(runtime_daemon, cid, tail=2)] == [b"line300\n", b"oops\n"]


def test_unknown_image_and_container_are_not_found(runtime_daemon) -> None:
    with pytest.raises(grpc.RpcError) as err:
        create(runtime_daemon, image="nosuchimage:1", command=["true"])
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "No such image" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        status(runtime_daemon, "doesnotexist")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        list(runtime_daemon.client.images.PullImage(pb.PullImageRequest(image="nginx:latest")))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "later release" in err.value.details()


def test_names_are_unique(runtime_daemon) -> None:
    create(runtime_daemon, name="only", command=["true"])
    with pytest.raises(grpc.RpcError) as err:
        create(runtime_daemon, name="only", command=["true"])
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert status(runtime_daemon, "only").name == "only"


def _import_image_with_config(daemon, tmp_path: Path, ref: str, config: dict) -> None:
    from node_agent.runtime.images.busybox import write_rootfs_tar

    tar = tmp_path / "rootfs.tar"
    write_rootfs_tar(tar)
    (tmp_path / "rootfs.tar").chmod(0o644)
    daemon.client.images.ImportImage(pb.ImportImageRequest(
        path=str(tar), format="rootfs", reference=ref, config_json=json.dumps(config).encode()))


def test_image_config_is_honoured_like_docker(runtime_daemon, tmp_path: Path) -> None:
    _import_image_with_config(runtime_daemon, tmp_path, "cfgtest:1", {
        "Entrypoint": ["/bin/sh", "-c", 'echo "$0 $* in $(pwd) as $(id -u) with $GREETING"'],
        "Cmd": ["default-arg"], "Env": ["PATH=/bin", "GREETING=hello"], "WorkingDir": "/tmp",
        "User": "65534", "Volumes": {"/data": {}}, "StopSignal": "SIGUSR1",
    })
    cases = [
        ({}, "default-arg  in /tmp as 65534 with hello"),
        ({"command": ["x", "y"]}, "x y in /tmp as 65534 with hello"),
        ({"env": [pb.KeyValue(key="GREETING", value="bye")], "working_dir": "/", "user": "0"},
         "default-arg  in / as 0 with bye"),
    ]
    for overrides, expected in cases:
        cid = create(runtime_daemon, image="cfgtest:1", **overrides)
        start(runtime_daemon, cid)
        assert wait(runtime_daemon, cid).exit_code == 0
        assert logs(runtime_daemon, cid)[0].data.decode().strip() == expected
    # --entrypoint replaces the entrypoint and drops the image Cmd
    cid = create(runtime_daemon, image="cfgtest:1", entrypoint=["echo"], clear_entrypoint=True)
    start(runtime_daemon, cid)
    wait(runtime_daemon, cid)
    assert logs(runtime_daemon, cid)[0].data == b"\n"
    st = status(runtime_daemon, cid)
    assert st.stop_signal == "SIGUSR1"
    anon = [m for m in st.mounts if m.destination == "/data"]
    assert anon and anon[0].type == "volume", "an image VOLUME becomes an anonymous volume"


def test_exec_sync_and_interactive_exec_with_tty(runtime_daemon) -> None:
    cid = create(runtime_daemon, command=["sleep", "1000"], hostname="boxy")
    start(runtime_daemon, cid)
    r = runtime_daemon.client.runtime.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["hostname"], timeout=10))
    assert (r.exit_code, r.stdout) == (0, b"boxy\n")
    r = runtime_daemon.client.runtime.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "echo e >&2; exit 4"]))
    assert (r.exit_code, r.stderr) == (4, b"e\n")

    def requests():
        yield pb.ExecRequest(start=pb.ExecStart(container_id=cid, cmd=["sh"], tty=True, stdin=True,
                                                size=pb.TerminalSize(width=100, height=40)))
        time.sleep(0.3)
        yield pb.ExecRequest(stdin=b"echo $((6*7)); tty; exit 3\n")

    out, code = b"", None
    for msg in runtime_daemon.client.runtime.Exec(requests(), timeout=30):
        out += msg.data
        if msg.exited:
            code = msg.exit_code
    assert code == 3
    assert b"42" in out and b"/dev/pts/" in out


def test_daemon_killed_and_restarted_readopts_running_containers(runtime_daemon) -> None:
    long_running = create(runtime_daemon, name="survivor", command=["sleep", "1000"])
    start(runtime_daemon, long_running)
    short = create(runtime_daemon, name="shortlived", command=["sh", "-c", "sleep 1; exit 9"])
    start(runtime_daemon, short)
    pid = status(runtime_daemon, long_running).pid
    assert pid > 0
    runtime_daemon.close_client()
    runtime_daemon.stop(signal.SIGKILL)
    time.sleep(1.5)  # `shortlived` exits while the daemon is down
    os.kill(pid, 0)  # still running without its daemon
    runtime_daemon.start()
    st = status(runtime_daemon, "survivor")
    assert st.state == pb.CONTAINER_RUNNING and st.pid == pid
    gone = status(runtime_daemon, "shortlived")
    assert gone.state == pb.CONTAINER_EXITED and gone.exit_code == 9
    r = runtime_daemon.client.runtime.ExecSync(pb.ExecSyncRequest(container_id=long_running, cmd=["echo", "ok"]))
    assert r.stdout == b"ok\n"
    runtime_daemon.client.runtime.StopContainer(pb.StopContainerRequest(container_id=long_running, timeout=2))
    assert status(runtime_daemon, "survivor").state == pb.CONTAINER_EXITED


def test_sigterm_stops_daemon_but_not_containers(runtime_daemon) -> None:
    cid = create(runtime_daemon, command=["sleep", "1000"])
    start(runtime_daemon, cid)
    pid = status(runtime_daemon, cid).pid
    runtime_daemon.close_client()
    assert runtime_daemon.stop(signal.SIGTERM) == 0
    assert not os.path.exists(runtime_daemon.socket)
    os.kill(pid, 0)
    runtime_daemon.start()
    assert status(runtime_daemon, cid).state == pb.CONTAINER_RUNNING


def test_events_stream_reports_lifecycle(runtime_daemon) -> None:
    import threading

    seen: list[tuple[str, str]] = []
    stream = runtime_daemon.client.runtime.GetEvents(pb.GetEventsRequest())

    def collect() -> None:
        try:
            for ev in stream:
                seen.append((ev.container_id, ev.type))
        except grpc.RpcError:
            pass

    t = threading.Thread(target=collect, daemon=True)
    t.start()
    time.sleep(0.3)
    cid = create(runtime_daemon, command=["true"])
    start(runtime_daemon, cid)
    wait(runtime_daemon, cid)
    runtime_daemon.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (cid, "removed") not in seen:
        time.sleep(0.05)
    stream.cancel()
    kinds = [k for c, k in seen if c == cid]
    assert kinds[:1] == ["created"] and "started" in kinds and "exited" in kinds and kinds[-1] == "removed"


def test_stats_from_the_cgroup(runtime_daemon) -> None:
    cid = create(runtime_daemon, command=["sh", "-c", "sleep 1000 & sleep 1000 & wait"],
                 resources=pb.Resources(memory_bytes=64 << 20, pids_limit=50))
    start(runtime_daemon, cid)
    time.sleep(0.3)
    s = runtime_daemon.client.runtime.ContainerStats(pb.ContainerStatsRequest(container_id=cid)).stats
    assert s.pids >= 3
    assert 0 < s.memory_usage_bytes < 64 << 20
    assert s.memory_limit_bytes == 64 << 20
    listed = runtime_daemon.client.runtime.ListContainerStats(pb.ListContainerStatsRequest())
    assert cid in [x.container_id for x in listed.stats]


def test_pod_sandbox_shares_network_and_hostname_between_its_containers(runtime_daemon) -> None:
    rt = runtime_daemon.client.runtime
    sandbox_id = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(
        name="pod1", namespace="default", uid="u1", hostname="pod1-host", labels={"app": "demo"},
        network="bridge"))).pod_sandbox_id
    status_ = rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)).status
    assert status_.state == pb.SANDBOX_READY and status_.network.ip.startswith("10.213.10.")
    assert status_.netns_path and os.path.exists(status_.netns_path)
    ids = []
    for name in ("a", "b"):
        cfg = pb.ContainerConfig(name=f"pod1-{name}", image="busybox", command=[
            "sh", "-c", "hostname; ip -o -4 addr show eth0 | awk '{print $4}'; sleep 1000"])
        ids.append(rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=cfg)).container_id)
        start(runtime_daemon, ids[-1])
    deadline = time.monotonic() + 10
    outs = []
    while time.monotonic() < deadline:
        outs = [b"".join(e.data for e in logs(runtime_daemon, c)) for c in ids]
        if all(o.count(b"\n") >= 2 for o in outs):
            break
        time.sleep(0.1)
    expected = f"pod1-host\n{status_.network.ip}/{status_.network.prefix_length}\n".encode()
    assert outs == [expected, expected]
    assert [s.id for s in rt.ListPodSandbox(pb.ListPodSandboxRequest(label_selector={"app": "demo"})).items] == [sandbox_id]
    assert rt.ListPodSandbox(pb.ListPodSandboxRequest(label_selector={"app": "other"})).items == []
    listed = rt.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=sandbox_id)))
    assert sorted(c.id for c in listed.containers) == sorted(ids)
    t0 = time.monotonic()
    rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
    assert time.monotonic() - t0 < 5, "StopPodSandbox kills what is left, it does not wait out grace periods"
    assert all(status(runtime_daemon, c).state == pb.CONTAINER_EXITED for c in ids)
    stopped = rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)).status
    assert stopped.state == pb.SANDBOX_NOTREADY and stopped.network.ip == "", "the address is given back"
    rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
    assert rt.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(all=True))).containers == []
    assert not os.path.exists(status_.netns_path)
    with pytest.raises(grpc.RpcError) as err:
        rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_sandbox_joining_a_namespace_the_caller_made(runtime_daemon, run_id: str) -> None:
    """The cluster path: the node networking makes and wires the netns; the sandbox joins it."""
    import subprocess

    name = f"ketch{run_id}cj"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "add", "ketchjoin0", "type", "veth", "peer", "name", "ketchjoin1"], check=True)
        sid = runtime_daemon.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(
            name="joined", netns_path=f"/run/netns/{name}"))).pod_sandbox_id
        cid = runtime_daemon.client.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=sid, config=pb.ContainerConfig(image="busybox", command=["ip", "-o", "link"]))).container_id
        start(runtime_daemon, cid)
        wait(runtime_daemon, cid)
        assert b"ketchjoin0" in b"".join(e.data for e in logs(runtime_daemon, cid))
        runtime_daemon.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sid))
        assert os.path.exists(f"/run/netns/{name}"), "a joined namespace stays with its owner"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_logs_read_across_size_rotation_complete_and_in_order(run_id, busybox_store_template) -> None:
    import shutil

    from tests.fixtures.runtime import make_runtime_daemon

    daemon = make_runtime_daemon(run_id, busybox_store_template)
    daemon.extra_args = ["--log-max-size", "4096", "--log-max-files", "50"]
    try:
        daemon.start()
        cid = create(daemon, command=["sh", "-c", "i=1; while [ $i -le 400 ]; do echo line-$i; "
                                                  "i=$((i+1)); [ $((i % 50)) = 0 ] && sleep 0.05; done"])
        follower = daemon.client.runtime.ReadLogs(pb.ReadLogsRequest(container_id=cid, follow=True, tail=0),
                                                  timeout=60)
        start(daemon, cid)
        followed = [e.data for e in follower]
        wait(daemon, cid)
        expected = [f"line-{i}\n".encode() for i in range(1, 401)]
        assert followed == expected, "follow sees every line across rotations"
        assert [e.data for e in logs(daemon, cid)] == expected
        rotated = list(Path(status(daemon, cid).log_path).parent.glob("container.log.*"))
        assert len(rotated) >= 2, "the log was rotated"
    finally:
        daemon.teardown()
        shutil.rmtree(daemon.root.parent, ignore_errors=True)


def test_warm_sandbox_pool_serves_runs_and_leaves_nothing_behind(runtime_daemon) -> None:
    sandboxes_dir = runtime_daemon.run_root / "sandboxes"

    def on_disk() -> set[str]:
        return {p.name for p in sandboxes_dir.iterdir()} if sandboxes_dir.exists() else set()

    def wait_for(count: int) -> set[str]:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(on_disk()) < count:
            time.sleep(0.05)
        return on_disk()

    first = create(runtime_daemon, network="bridge", command=["true"])
    warm = wait_for(3) - {first}
    assert len(warm) == 2, "two warm sandboxes are made after the first run"
    listed = runtime_daemon.client.networks.InspectNetwork(pb.InspectNetworkRequest(name="bridge"))
    assert [e.container_id for e in listed.endpoints] == [first], "warm sandboxes are not endpoints yet"
    second = create(runtime_daemon, network="bridge", name="fromwarm", command=["hostname"])
    assert second in warm, "the container took a warm sandbox (and its id)"
    start(runtime_daemon, second)
    wait(runtime_daemon, second)
    assert logs(runtime_daemon, second)[0].data == f"{second[:12]}\n".encode()
    st = status(runtime_daemon, second)
    assert st.network.ip.startswith("10.213.10.") and st.name == "fromwarm"
    wait_for(4)
    runtime_daemon.close_client()
    runtime_daemon.stop(signal.SIGKILL)  # the warm ones are orphaned ...
    runtime_daemon.start()  # ... and removed at start
    assert on_disk() == {first, second}
    third = create(runtime_daemon, network="none", command=["true"])
    wait_for(5)
    runtime_daemon.close_client()
    assert runtime_daemon.stop(signal.SIGTERM) == 0
    assert on_disk() == {first, second, third}, "a graceful stop gives the warm sandboxes back"
    runtime_daemon.start()
