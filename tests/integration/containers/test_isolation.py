"""What a process inside a container can see and do (run as root, real kernel)."""

from __future__ import annotations

import os
import socket
import uuid

import pytest
from node_agent.runtime.containers import ContainerError, ContainerSpec, Mount
from node_agent.runtime.logs import read_entries


def cid() -> str:
    return uuid.uuid4().hex[:16]


async def run(manager, rootfs, args, **kwargs):
    """create, start, wait; the status and stdout+stderr text."""
    spec = ContainerSpec(id=cid(), rootfs=str(rootfs), args=args, **kwargs)
    await manager.create(spec)
    await manager.start(spec.id)
    status = await manager.wait(spec.id)
    text = b"".join(e.render() for e in read_entries(status.log_path)).decode()
    return status, text


async def test_pid1_is_the_containers_process_and_hostname_is_its_own(manager, rootfs):
    status, out = await run(manager, rootfs, ["sh", "-c", "echo pid=$$; hostname; cat /proc/1/cmdline | tr '\\0' ' '"],
                            hostname="ketchbox")
    assert status.exit_code == 0, out
    lines = out.splitlines()
    assert lines[0] == "pid=1"
    assert lines[1] == "ketchbox"
    assert socket.gethostname() != "ketchbox"


async def test_host_processes_and_files_are_invisible(manager, rootfs, tmp_path):
    marker = tmp_path / f"host-secret-{uuid.uuid4().hex}"
    marker.write_text("TOPSECRETCONTENT")
    status, out = await run(manager, rootfs, ["sh", "-c", f"ls /proc | grep -c '^[0-9]'; ls /; cat {marker} || echo nofile"])
    assert status.exit_code == 0, out
    lines = out.splitlines()
    assert int(lines[0]) <= 3         # sh, ls, grep at most; the host has hundreds
    assert "nofile" in out and "TOPSECRETCONTENT" not in out
    assert "work" not in lines and "rootfs" not in lines


async def test_mount_and_module_loading_fail_with_eperm(manager, rootfs):
    (rootfs / "dummy.ko").write_bytes(b"\x7fELF" + b"\0" * 200)
    status, out = await run(manager, rootfs, ["sh", "-c", "mount -t tmpfs none /tmp; echo mount=$?; "
                                              "insmod /dummy.ko; echo insmod=$?; grep CapBnd /proc/self/status"])
    assert "mount=1" in out and "permission denied" in out.lower(), out      # busybox's words for EPERM
    assert "insmod=0" not in out and "insmod=" in out
    assert not int(out.split("CapBnd:")[1], 16) & (1 << 16)                  # no CAP_SYS_MODULE
    if os.path.exists("/proc/modules"):        # a kernel without module support answers ENOSYS to anyone
        assert "not permitted" in out.lower(), out


async def test_default_capabilities_and_no_new_privs(manager, rootfs):
    status, out = await run(manager, rootfs, ["sh", "-c", "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status"])
    fields = dict(line.split(":\t") for line in out.splitlines())
    # Docker's default 14 capabilities
    assert int(fields["CapEff"], 16) == 0xA80425FB
    assert int(fields["CapBnd"], 16) == 0xA80425FB
    assert fields["NoNewPrivs"].strip() == "1"


async def test_cap_add_and_drop(manager, rootfs):
    status, out = await run(manager, rootfs, ["sh", "-c", "grep CapEff /proc/self/status"],
                            cap_add=["NET_ADMIN"], cap_drop=["CHOWN"])
    eff = int(out.split(":")[1], 16)
    assert eff & (1 << 12)          # NET_ADMIN
    assert not eff & (1 << 0)       # CHOWN


async def test_masked_and_readonly_paths_and_dev(manager, rootfs):
    masked = next(p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug") if os.path.exists(p))
    script = (f"wc -c < {masked}; echo x > /proc/sys/kernel/hostname; echo sys=$?; ls /dev; "
              "touch /sys/ketch 2>&1; echo systouch=$?")
    status, out = await run(manager, rootfs, ["sh", "-c", script])
    lines = out.splitlines()
    assert lines[0].strip() == "0"
    assert "sys=0" not in out
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx", "fd"):
        assert dev in lines, out
    assert "systouch=0" not in out


async def test_read_only_rootfs_and_user_mounts(manager, rootfs, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from host")
    script = "cat /data/in.txt; echo ok > /data/out.txt; touch /newfile; echo root=$?; echo t > /scratch/t && echo tmpfs=ok"
    status, out = await run(manager, rootfs, ["sh", "-c", script], read_only_rootfs=True,
                            mounts=[Mount(source=str(shared), destination="/data", type="bind"),
                                    Mount(destination="/scratch", type="tmpfs", options=["size=1m"])])
    assert "from host" in out
    assert (shared / "out.txt").read_text() == "ok\n"
    assert "root=0" not in out
    assert "tmpfs=ok" in out
    assert not (rootfs / "newfile").exists()


async def test_user_uid_gid_env_and_cwd(manager, rootfs):
    status, out = await run(manager, rootfs, ["sh", "-c", "id; pwd; echo $GREETING; grep CapEff /proc/self/status"],
                            uid=1000, gid=1000, additional_gids=[50], env=["GREETING=hello"], cwd="/home/app")
    assert "uid=1000(app) gid=1000(app) groups=50(staff)" in out, out
    assert "/home/app" in out and "hello" in out
    env_status, env_out = await run(manager, rootfs, ["sh", "-c", "echo $HOME $HOSTNAME"], uid=1000, gid=1000,
                                    hostname="envhost")
    assert env_out.split() == ["/home/app", "envhost"]
    assert "0000000000000000" in out      # a non-root user keeps no capabilities, as in Docker


async def test_missing_binary_fails_start_with_127(manager, rootfs):
    spec = ContainerSpec(id=cid(), rootfs=str(rootfs), args=["no-such-binary"])
    await manager.create(spec)
    with pytest.raises(ContainerError, match=r'exec: "no-such-binary": executable file not found in \$PATH'):
        await manager.start(spec.id)
    status = await manager.wait(spec.id)
    assert status.state == "exited" and status.exit_code == 127 and status.reason == "Error"


async def test_bad_cwd_fails_start(manager, rootfs):
    spec = ContainerSpec(id=cid(), rootfs=str(rootfs), args=["true"], cwd="/does/not/exist")
    await manager.create(spec)
    with pytest.raises(ContainerError, match="chdir to cwd"):
        await manager.start(spec.id)
    assert (await manager.wait(spec.id)).exit_code == 126


async def test_own_network_namespace(manager, rootfs):
    status, out = await run(manager, rootfs, ["sh", "-c", "ls /sys/class/net"])
    assert out.split() == ["lo"]
    host_links = os.listdir("/sys/class/net")
    assert len(host_links) >= 1


async def test_file_bind_mounts_for_etc_files(manager, rootfs, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.0.0.5 peer\n")
    status, out = await run(manager, rootfs, ["sh", "-c", "cat /etc/hosts; echo x >> /etc/hosts; echo w=$?"],
                            mounts=[Mount(source=str(hosts), destination="/etc/hosts", type="bind", read_only=True)])
    assert "10.0.0.5 peer" in out
    assert "w=0" not in out
    assert hosts.read_text() == "127.0.0.1 localhost\n10.0.0.5 peer\n"
