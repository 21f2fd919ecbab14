"""`ketch runtime …` as a docker user types it, against a real daemon."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import sys
import time

from node_agent.network.portmap import free_port


def test_run_rm_echo_prints_and_leaves_nothing(runtime_daemon) -> None:
    r = runtime_daemon.cli("run", "--rm", "busybox", "echo", "hi")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"hi\n", b"")
    assert runtime_daemon.cli("ps", "-a", "-q").stdout == b""


def test_exit_codes_like_docker(runtime_daemon) -> None:
    assert runtime_daemon.cli("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    r = runtime_daemon.cli("run", "--rm", "busybox", "nosuchcommand")
    assert r.returncode == 127 and b"executable file not found" in r.stderr
    assert runtime_daemon.cli("run", "--rm", "busybox", "/etc/passwd").returncode == 126
    r = runtime_daemon.cli("run", "--rm", "nosuchimage", "true")
    assert r.returncode == 125 and b"Unable to find image 'nosuchimage' locally" in r.stderr
    assert runtime_daemon.cli("run", "--rm", "--memory", "lots", "busybox", "true").returncode == 125
    assert runtime_daemon.cli("ps", "-a", "-q").stdout == b""
    r = runtime_daemon.cli("rm", "nosuchcontainer")
    assert r.returncode == 1 and b"No such container: nosuchcontainer" in r.stderr


def test_stdin_is_passed_with_i(runtime_daemon) -> None:
    r = runtime_daemon.cli("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input=b"shout\n")
    assert (r.returncode, r.stdout) == (0, b"SHOUT\n")


def test_env_workdir_user_hostname_flags(runtime_daemon) -> None:
    r = runtime_daemon.cli("run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "65534:65534", "-h", "myhost",
                           "busybox", "sh", "-c", 'echo $A $(pwd) $(id -u):$(id -g) $(hostname)')
    assert r.stdout == b"1 /tmp 65534:65534 myhost\n"


def test_detached_lifecycle_ps_logs_inspect_stop_rm(runtime_daemon) -> None:
    r = runtime_daemon.cli("run", "-d", "--name", "ticker", "busybox", "sh", "-c",
                           "trap 'echo got TERM; exit 0' TERM; echo started; while true; do sleep 0.1; done")
    assert r.returncode == 0
    cid = r.stdout.decode().strip()
    assert len(cid) == 64
    ps = runtime_daemon.cli("ps").stdout.decode().splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert any(line.startswith(cid[:12]) and line.endswith("ticker") and "Up " in line for line in ps[1:])
    inspect = json.loads(runtime_daemon.cli("inspect", "ticker").stdout)
    assert inspect[0]["Id"] == cid and inspect[0]["Name"] == "/ticker"
    assert inspect[0]["State"]["Running"] is True and inspect[0]["State"]["Pid"] > 0
    assert runtime_daemon.cli("inspect", "-f", "{{.State.Status}} {{.Config.Image}}", "ticker").stdout == b"running busybox\n"
    deadline = time.monotonic() + 5
    while b"started" not in runtime_daemon.cli("logs", "ticker").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runtime_daemon.cli("stop", "-t", "5", "ticker").stdout == b"ticker\n"
    assert runtime_daemon.cli("logs", "ticker").stdout == b"started\ngot TERM\n"
    stamped = runtime_daemon.cli("logs", "-t", "ticker").stdout.decode().splitlines()
    assert stamped[0].endswith("Z started") and stamped[0][:4].isdigit()
    assert "Exited (0)" in runtime_daemon.cli("ps", "-a").stdout.decode()
    assert runtime_daemon.cli("rm", "ticker").returncode == 0
    assert runtime_daemon.cli("inspect", "ticker").returncode == 1


def test_stop_kills_after_timeout_when_term_is_ignored(runtime_daemon) -> None:
    cid = runtime_daemon.cli("run", "-d", "busybox", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done").stdout.decode().strip()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert runtime_daemon.cli("stop", "-t", "1", cid).returncode == 0
    assert 0.9 < time.monotonic() - t0 < 10
    assert runtime_daemon.cli("inspect", "-f", "{{.State.ExitCode}}", cid).stdout == b"137\n"


def test_running_container_cannot_be_removed_without_force(runtime_daemon) -> None:
    cid = runtime_daemon.cli("run", "-d", "busybox", "sleep", "100").stdout.decode().strip()
    r = runtime_daemon.cli("rm", cid[:12])
    assert r.returncode == 1 and b"cannot remove a running container" in r.stderr
    assert runtime_daemon.cli("rm", "-f", cid[:12]).returncode == 0


def test_images_tag_save_load_rmi(runtime_daemon, tmp_path) -> None:
    lines = runtime_daemon.cli("images").stdout.decode().splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:2] == ["busybox", "latest"] for line in lines[1:])
    assert runtime_daemon.cli("tag", "busybox", "mybox:v1").returncode == 0
    archive = tmp_path / "mybox.tar"
    assert runtime_daemon.cli("save", "-o", str(archive), "mybox:v1").returncode == 0
    assert archive.stat().st_size > 100_000
    r = runtime_daemon.cli("rmi", "mybox:v1")
    assert r.returncode == 0 and b"Untagged: mybox:v1" in r.stdout
    r = runtime_daemon.cli("load", "-i", str(archive))
    assert r.returncode == 0 and b"mybox:v1" in r.stdout
    assert runtime_daemon.cli("run", "--rm", "mybox:v1", "echo", "loaded").stdout == b"loaded\n"
    cid = runtime_daemon.cli("create", "busybox", "true").stdout.decode().strip()
    runtime_daemon.cli("rmi", "mybox:v1", check=True)  # another tag remains: only untagged
    r = runtime_daemon.cli("rmi", "busybox")
    assert r.returncode == 1 and b"being used by a container" in r.stderr
    runtime_daemon.cli("rm", cid, check=True)
    from proto import runtime_pb2 as pb

    fs = runtime_daemon.client.images.ImageFsInfo(pb.ImageFsInfoRequest())
    assert fs.used_bytes > 1_000_000 and json.loads(fs.usage_json)["images"]


def test_import_rootfs_tarball_with_name(runtime_daemon, tmp_path) -> None:
    from node_agent.runtime.images.busybox import write_rootfs_tar

    tar = tmp_path / "rootfs.tar"
    write_rootfs_tar(tar)
    r = runtime_daemon.cli("import", str(tar), "--name", "imported:1", "-c", 'CMD ["echo", "from cmd"]')
    assert r.returncode == 0 and r.stdout.startswith(b"sha256:")
    assert runtime_daemon.cli("run", "--rm", "imported:1").stdout == b"from cmd\n"


def test_named_volume_persists_and_is_refused_removal_while_used(runtime_daemon) -> None:
    assert runtime_daemon.cli("volume", "create", "data").stdout == b"data\n"
    assert runtime_daemon.cli("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c",
                              "echo kept > /data/f").returncode == 0
    assert runtime_daemon.cli("run", "--rm", "-v", "data:/data:ro", "busybox", "cat", "/data/f").stdout == b"kept\n"
    assert runtime_daemon.cli("run", "--rm", "-v", "data:/data:ro", "busybox", "sh", "-c",
                              "echo x > /data/g").returncode != 0
    cid = runtime_daemon.cli("run", "-d", "-v", "data:/data", "busybox", "sleep", "100").stdout.decode().strip()
    r = runtime_daemon.cli("volume", "rm", "data")
    assert r.returncode == 1 and b"in use" in r.stderr
    info = json.loads(runtime_daemon.cli("volume", "inspect", "data").stdout)[0]
    assert info["Mountpoint"].endswith("/volumes/data/_data")
    runtime_daemon.cli("rm", "-f", cid, check=True)
    assert b"data" in runtime_daemon.cli("volume", "ls").stdout
    assert runtime_daemon.cli("volume", "rm", "data").returncode == 0
    assert b"data" not in runtime_daemon.cli("volume", "ls").stdout


def test_bind_mount_and_tmpfs(runtime_daemon, tmp_path) -> None:
    (tmp_path / "in.txt").write_text("from host\n")
    r = runtime_daemon.cli("run", "--rm", "-v", f"{tmp_path}:/host", "--tmpfs", "/scratch", "busybox", "sh", "-c",
                           "cat /host/in.txt; echo out > /host/out.txt; grep -c ' /scratch tmpfs' /proc/mounts")
    assert r.stdout == b"from host\n1\n"
    assert (tmp_path / "out.txt").read_text() == "out\n"


def test_read_only_rootfs(runtime_daemon) -> None:
    r = runtime_daemon.cli("run", "--rm", "--read-only", "busybox", "touch", "/x")
    assert r.returncode != 0 and b"Read-only file system" in r.stderr


def test_published_port_serves_on_host_loopback(runtime_daemon) -> None:
    """The issue's demo: run -d -p PORT:80 --name web busybox httpd -f -p 80, fetched from the host."""
    port = runtime_daemon.in_netns(free_port)
    r = runtime_daemon.cli("run", "-d", "-p", f"{port}:80", "--name", "web", "busybox", "sh", "-c",
                           "mkdir -p /www && echo served > /www/index.html && httpd -f -p 80 -h /www")
    assert r.returncode == 0, r.stderr
    assert f"0.0.0.0:{port}->80/tcp".encode() in runtime_daemon.cli("ps").stdout

    def get() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
        return data

    body = b""
    for _ in range(50):
        try:
            body = runtime_daemon.in_netns(get)
            break
        except OSError:
            time.sleep(0.1)
    assert body.startswith(b"HTTP/1.") and body.endswith(b"served\n")
    runtime_daemon.cli("rm", "-f", "web", check=True)
    # the rule went with the container
    try:
        runtime_daemon.in_netns(get)
        reached = True
    except OSError:
        reached = False
    assert not reached


def test_user_network_containers_reach_each_other_by_name(runtime_daemon) -> None:
    assert runtime_daemon.cli("network", "create", "appnet").returncode == 0
    assert b"appnet" in runtime_daemon.cli("network", "ls").stdout
    runtime_daemon.cli("run", "-d", "--network", "appnet", "--name", "db", "busybox", "sleep", "100", check=True)
    r = runtime_daemon.cli("run", "--rm", "--network", "appnet", "busybox", "ping", "-c", "1", "-W", "2", "db")
    assert r.returncode == 0, r.stdout + r.stderr
    # the default bridge cannot reach into appnet
    ip = runtime_daemon.cli("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db").stdout.decode().strip()
    assert ip
    assert runtime_daemon.cli("run", "--rm", "busybox", "ping", "-c", "1", "-W", "1", ip).returncode != 0
    r = runtime_daemon.cli("network", "rm", "appnet")
    assert r.returncode == 1 and b"active endpoints" in r.stderr
    runtime_daemon.cli("rm", "-f", "db", check=True)
    assert runtime_daemon.cli("network", "rm", "appnet").returncode == 0


def _in_a_pty(socket_path: str, *args: str, script: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """Run `ketch runtime ARGS` on a pseudo-terminal, as a user at a terminal would; for each
    (wait_for, then_type) step wait until the output shows wait_for, then type then_type."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["KETCH_RUNTIME_SOCKET"] = socket_path
        os.execv(sys.executable, [sys.executable, "-m", "ketch.cli.main", "runtime", *args])
    seen = b""

    def read_until(token: bytes, start: int, timeout: float = 15) -> None:
        nonlocal seen
        end = time.monotonic() + timeout
        while time.monotonic() < end and token not in seen[start:]:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    return
                if not chunk:
                    return
                seen += chunk
        assert token in seen[start:], f"never saw {token!r} in {seen[start:]!r}"

    try:
        start = 0
        for wait_for, then_type in script:
            read_until(wait_for, start)
            start = len(seen)  # the next token must appear after what we type now
            os.write(fd, then_type)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            done, wstatus = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(wstatus), seen
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    pass
        raise AssertionError(f"ketch runtime {' '.join(args)} did not exit; output {seen!r}")
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def test_exec_it_gives_a_working_shell_through_a_pty(runtime_daemon) -> None:
    runtime_daemon.cli("run", "-d", "--name", "web", "busybox", "sleep", "1000", check=True)
    code, out = _in_a_pty(runtime_daemon.socket, "exec", "-it", "web", "sh", script=[
        (b"# ", b"echo $((6*7)) $(tty)\n"), (b"42 /dev/pts/", b"exit 4\n")])
    assert code == 4


def test_run_it_gives_an_interactive_container(runtime_daemon) -> None:
    code, out = _in_a_pty(runtime_daemon.socket, "run", "-it", "--rm", "busybox", "sh", script=[
        (b"# ", b"echo $((7*8)) $TERM\n"), (b"56 xterm", b"exit 6\n")])
    assert code == 6
    assert runtime_daemon.cli("ps", "-a", "-q").stdout == b""


def test_logs_follow_streams_until_exit_and_start_attach(runtime_daemon) -> None:
    cid = runtime_daemon.cli("create", "busybox", "sh", "-c", "for i in 1 2 3; do echo n$i; sleep 0.2; done").stdout.decode().strip()
    r = runtime_daemon.cli("start", "-a", cid)
    assert (r.returncode, r.stdout) == (0, b"n1\nn2\nn3\n")
    cid = runtime_daemon.cli("run", "-d", "busybox", "sh", "-c", "for i in 1 2 3; do echo m$i; sleep 0.3; done; exit 2").stdout.decode().strip()
    r = runtime_daemon.cli("logs", "-f", cid, timeout=20)
    assert r.stdout == b"m1\nm2\nm3\n"
    assert runtime_daemon.cli("wait", cid).stdout == b"2\n"
    assert runtime_daemon.cli("logs", "--tail", "1", cid).stdout == b"m3\n"
    assert runtime_daemon.cli("logs", "--tail", "0", cid).stdout == b""


def test_stats_no_stream(runtime_daemon) -> None:
    runtime_daemon.cli("run", "-d", "--name", "busy", "--memory", "32m", "busybox", "sleep", "100", check=True)
    out = runtime_daemon.cli("stats", "--no-stream").stdout.decode().splitlines()
    assert out[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    row = [line for line in out if " busy " in line]
    assert row and "/ 32MiB" in row[0]


def test_build_busybox_works_with_and_without_daemon(runtime_daemon) -> None:
    r = runtime_daemon.cli("build-busybox")
    assert r.returncode == 0 and b"busybox:latest sha256:" in r.stdout
    with_daemon = r.stdout.split()[-1]
    runtime_daemon.close_client()
    runtime_daemon.stop()
    env = dict(os.environ, KETCH_RUNTIME_SOCKET=runtime_daemon.socket)
    r = subprocess.run([sys.executable, "-m", "ketch.cli.main", "runtime", "--root", str(runtime_daemon.root),
                        "build-busybox"], capture_output=True, env=env)
    assert r.returncode == 0 and r.stdout.split()[-1] == with_daemon
    runtime_daemon.start()


def test_image_volumes_become_anonymous_volumes_removed_with_rm(runtime_daemon, tmp_path) -> None:
    import io
    import tarfile

    from node_agent.runtime.images.busybox import write_rootfs_tar

    base = tmp_path / "base.tar"
    write_rootfs_tar(base)
    tar = tmp_path / "withdata.tar"
    with tarfile.open(base) as src, tarfile.open(tar, "w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        d = tarfile.TarInfo("data")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        dst.addfile(d)
        payload = b"seeded by the image\n"
        f = tarfile.TarInfo("data/seed.txt")
        f.size = len(payload)
        dst.addfile(f, io.BytesIO(payload))
    runtime_daemon.cli("import", str(tar), "--name", "withvol:1", "-c", "VOLUME /data", check=True)
    r = runtime_daemon.cli("run", "--rm", "withvol:1", "sh", "-c", "cat /data/seed.txt; grep -c ' /data ' /proc/mounts")
    assert r.stdout == b"seeded by the image\n1\n"
    assert runtime_daemon.cli("volume", "ls", "-q").stdout == b"", "--rm takes the anonymous volume along"
    cid = runtime_daemon.cli("run", "-d", "withvol:1", "true").stdout.decode().strip()
    runtime_daemon.cli("wait", cid, check=True)
    assert len(runtime_daemon.cli("volume", "ls", "-q").stdout.split()) == 1
    runtime_daemon.cli("rm", "-v", cid, check=True)
    assert runtime_daemon.cli("volume", "ls", "-q").stdout == b""


def test_published_ports_survive_a_daemon_restart(runtime_daemon) -> None:
    port = runtime_daemon.in_netns(free_port)
    runtime_daemon.cli("run", "-d", "-p", f"{port}:80", "--name", "web", "busybox", "sh", "-c",
                       "mkdir -p /www && echo again > /www/index.html && httpd -f -p 80 -h /www", check=True)
    runtime_daemon.restart()
    from node_agent.network import nft

    table = runtime_daemon.in_netns(nft.list_table, runtime_daemon.nft_table)
    assert f"tcp dport {port}" in table
    assert f"0.0.0.0:{port}->80/tcp".encode() in runtime_daemon.cli("ps").stdout

    def get() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            return data

    body = b""
    for _ in range(50):
        try:
            body = runtime_daemon.in_netns(get)
            break
        except OSError:
            time.sleep(0.1)
    assert body.endswith(b"again\n")
    runtime_daemon.cli("rm", "-f", "web", check=True)
    assert f"tcp dport {port}" not in runtime_daemon.in_netns(nft.list_table, runtime_daemon.nft_table)


def test_exec_as_another_user_resolves_it_in_the_container(runtime_daemon) -> None:
    runtime_daemon.cli("run", "-d", "--name", "who", "busybox", "sleep", "1000", check=True)
    assert runtime_daemon.cli("exec", "who", "id", "-u").stdout == b"0\n"
    r = runtime_daemon.cli("exec", "-u", "nobody", "who", "sh", "-c", "id -u; id -g")
    assert (r.returncode, r.stdout) == (0, b"65534\n65534\n")
    r = runtime_daemon.cli("exec", "-u", "1234:55", "who", "sh", "-c", "id -u; id -g")
    assert (r.returncode, r.stdout) == (0, b"1234\n55\n")
    # a user added inside the container afterwards is found too
    runtime_daemon.cli("exec", "who", "sh", "-c", "echo 'app:x:777:778::/home/app:/bin/sh' >> /etc/passwd",
                       check=True)
    assert runtime_daemon.cli("exec", "-u", "app", "who", "id", "-u").stdout == b"777\n"
    r = runtime_daemon.cli("exec", "-u", "ghost", "who", "true")
    assert r.returncode == 126 and b"unable to find user ghost" in r.stderr


def test_loopback_is_up_in_every_new_sandbox(runtime_daemon) -> None:
    for network in ("none", "bridge"):
        r = runtime_daemon.cli("run", "--rm", "--network", network, "busybox", "ip", "-o", "link", "show", "lo")
        assert r.returncode == 0 and b"<LOOPBACK,UP" in r.stdout, (network, r.stdout, r.stderr)
