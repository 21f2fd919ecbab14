"""exec (sync and streaming, with and without a TTY) and attach."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from node_agent.runtime.containers import ContainerError, ContainerSpec, ExecTimeout


async def running(manager, rootfs, args, **kwargs) -> str:
    spec = ContainerSpec(id=uuid.uuid4().hex[:16], rootfs=str(rootfs), args=args, **kwargs)
    await manager.create(spec)
    await manager.start(spec.id)
    return spec.id


async def read_all(proc) -> tuple[bytes, bytes]:
    out, err = bytearray(), bytearray()
    while (item := await proc.read()) is not None:
        (out if item[0] == "stdout" else err).extend(item[1])
    return bytes(out), bytes(err)


async def test_exec_sync_joins_the_containers_namespaces(manager, rootfs):
    cid = await running(manager, rootfs, ["sleep", "30"], hostname="exechost", env=["FROM_SPEC=yes"], uid=1000, gid=1000)
    code, out, err = await manager.exec_sync(cid, ["sh", "-c", "hostname; cat /proc/1/cmdline; echo; id -u; "
                                                   "echo $FROM_SPEC; ls /proc | grep -c '^[0-9]'; echo bad >&2; exit 4"], 10)
    lines = out.decode().splitlines()
    assert code == 4
    assert lines[0] == "exechost"
    assert lines[1].replace("\0", " ").strip() == "sleep 30"
    assert lines[2] == "1000"
    assert lines[3] == "yes"
    assert int(lines[4]) <= 4             # the container's PID namespace, not the host's
    assert err == b"bad\n"


async def test_exec_sync_timeout_kills(manager, rootfs):
    cid = await running(manager, rootfs, ["sleep", "30"])
    with pytest.raises(ExecTimeout):
        await manager.exec_sync(cid, ["sleep", "20"], timeout=0.5)
    code, out, _ = await manager.exec_sync(cid, ["sh", "-c", "ps -o comm | grep -c sleep"], 5)
    assert out.strip() == b"1"           # only the container's own sleep is left


async def test_exec_missing_binary(manager, rootfs):
    cid = await running(manager, rootfs, ["sleep", "30"])
    with pytest.raises(ContainerError, match="executable file not found"):
        await manager.exec_sync(cid, ["nope"], 5)


async def test_exec_stream_with_stdin(manager, rootfs):
    cid = await running(manager, rootfs, ["sleep", "30"])
    proc = await manager.exec_stream(cid, ["cat"], tty=False, stdin=True)
    await proc.write_stdin(b"hello ")
    await proc.write_stdin(b"world\n")
    await proc.close_stdin()
    out, _ = await read_all(proc)
    assert out == b"hello world\n"
    assert await proc.wait() == 0


async def test_exec_stream_with_tty_and_resize(manager, rootfs):
    cid = await running(manager, rootfs, ["sleep", "30"])
    proc = await manager.exec_stream(cid, ["sh"], tty=True, stdin=True, width=80, height=24)
    await proc.resize(123, 45)
    await asyncio.sleep(0.1)
    await proc.write_stdin(b"stty size; tty; exit 5\n")
    out, err = await read_all(proc)
    assert await proc.wait() == 5
    text = out.decode(errors="replace")
    assert "/dev/pts/0" in text          # a terminal of the container's own devpts
    assert "45 123" in text
    assert err == b""                   # a terminal has one stream


async def test_attach_to_container_stdio(manager, rootfs):
    cid = await running(manager, rootfs, ["sh", "-c", "read line; echo got:$line; echo err:$line >&2"], stdin=True)
    io = await manager.attach(cid)
    await io.write_stdin(b"ping\n")
    out, err = await read_all(io)
    assert out == b"got:ping\n" and err == b"err:ping\n"
    assert await io.wait() == 0
    assert (await manager.wait(cid)).exit_code == 0


async def test_attach_with_tty(manager, rootfs):
    cid = await running(manager, rootfs, ["sh"], tty=True, stdin=True)
    io = await manager.attach(cid)
    await io.write_stdin(b"echo $((6*7)); tty; exit 0\n")
    out, _ = await read_all(io)
    assert b"42" in out and b"/dev/pts/0" in out
    assert (await manager.wait(cid)).exit_code == 0


async def test_exec_as_another_user_with_env_and_cwd(manager, rootfs):
    cid = await running(manager, rootfs, ["sleep", "30"])
    code, out, _ = await manager.exec_sync(cid, ["sh", "-c", "id -u; id -g; pwd; echo $EXTRA"], 5,
                                           uid=65534, gid=65534, env=["EXTRA=1"], cwd="/tmp")
    assert (code, out.decode().split()) == (0, ["65534", "65534", "/tmp", "1"])
