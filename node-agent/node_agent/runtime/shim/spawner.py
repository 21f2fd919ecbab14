"""The pre-forked spawner: a single-threaded Python process, started once per
ContainerManager, with the shim code already imported. Each request forks a
shim (or a sandbox helper) in about a millisecond instead of paying 70–100 ms
for a new interpreter.

It listens on a unix socket; it exits when its stdin (a pipe from the daemon)
closes, so it never outlives the daemon, while the shims it forked do.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import select
import signal
import socket
import sys

from ..linux import caps
from ..linux.syscalls import set_process_name
from ..linux.unixpath import short_path
from . import protocol
from .sandbox_child import sandbox_main
from .shim import send_assignment, shim_main, warm_shim_main
from .trace import mark


def _warm_up_interpreter() -> None:
    """Run once what every shim runs, so lazily built module state (asyncio's, json's,
    the regex caches) is made here and shared by the shims instead of copied into each."""

    async def exercise() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        reader, writer = await asyncio.open_unix_connection(sock=a)
        b.sendall(b"x")
        await reader.readexactly(1)
        writer.close()
        b.close()
        done = loop.create_future()
        loop.call_soon(done.set_result, None)
        await done

    try:
        caps.last_cap()
        asyncio.run(exercise())
        json.loads(json.dumps({"warm": [1, "x", None]}))
    except Exception:  # noqa: BLE001 - an optimisation only
        pass


class _Warm:
    """One shim forked ahead of time, with its init waiting for a config."""

    def __init__(self, spare_cgroup: dict | None = None, enabled: bool = True) -> None:
        self.control: socket.socket | None = None
        self.spare_cgroup = spare_cgroup
        self.enabled = enabled

    def fill(self, listener: socket.socket) -> None:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            listener.close()
            parent_end.close()
            os.close(0)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            warm_shim_main(child_end, self.spare_cgroup)
            os._exit(1)
        child_end.close()
        self.control = parent_end

    def take(self) -> socket.socket | None:
        control, self.control = self.control, None
        return control

    def discard(self, wait: float = 0) -> None:
        """The warm shim sees EOF, kills its init, removes its spare cgroup and exits;
        with `wait`, until it has (its end of the socket closes last)."""
        control, self.control = self.control, None
        if control is None:
            return
        if wait:
            try:
                control.shutdown(socket.SHUT_WR)
                control.settimeout(wait)
                while control.recv(4096):
                    pass
            except OSError:
                pass
        control.close()


def serve(sock_path: str, warm: bool = True, spare_cgroup: dict | None = None) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)    # forked children are reaped by the kernel
    set_process_name("ketch-spawner")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    with short_path(sock_path) as p:
        listener.bind(p)
    os.chmod(sock_path, 0o600)
    listener.listen(128)
    _warm_up_interpreter()
    gc.collect()
    gc.freeze()          # keep the heap shared copy-on-write with every shim
    pool = _Warm(spare_cgroup, enabled=warm)
    os.write(1, b"ready\n")
    try:
        while True:
            watched = [listener, 0] + ([pool.control] if pool.control is not None else [])
            # The daemon asks for the refill ("warm") once its create and start are done,
            # so the fork never competes with them; the timeout is only a fallback.
            timeout = None if (pool.control is not None or not pool.enabled) else IDLE_REFILL
            readable, _, _ = select.select(watched, [], [], timeout)
            if not readable:
                pool.fill(listener)
                continue
            if 0 in readable and not os.read(0, 4096):
                return
            if pool.control is not None and pool.control in readable:
                pool.discard()                 # the warm shim died: make another
            if listener in readable:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                _dispatch(conn, listener, pool)
    finally:
        pool.discard(wait=3)       # its spare cgroup is gone before the daemon cleans up
        try:
            os.unlink(sock_path)
        except OSError:
            pass


#: seconds without a request after which the spawner refills its warm shim by itself
IDLE_REFILL = 0.25


def _dispatch(conn: socket.socket, listener: socket.socket, pool: _Warm) -> None:
    try:
        conn.settimeout(5)
        request = protocol.recv_json_blocking(conn)
        conn.settimeout(None)
    except Exception as e:  # noqa: BLE001
        try:
            protocol.send_json_blocking(conn, {"error": f"bad spawner request: {e}"})
        except OSError:
            pass
        conn.close()
        return
    op = request.get("op")
    mark('spawner.request')
    if op == "warm":
        if pool.enabled and pool.control is None:
            pool.fill(listener)
        protocol.send_json_blocking(conn, {"ok": True})
        conn.close()
        return
    if op not in ("create", "sandbox"):
        protocol.send_json_blocking(conn, {"error": f"unknown spawner operation {op!r}"})
        conn.close()
        return
    if op == "create":
        control = pool.take()
        if control is not None:
            try:
                send_assignment(control, request, conn.fileno())
                control.close()
                conn.close()
                return
            except OSError:
                control.close()        # it died meanwhile: fork one for this request
    pid = os.fork()
    if pid == 0:
        listener.close()
        pool.discard()
        os.close(0)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if op == "create":
            shim_main(request["config"], conn)
        else:
            sandbox_main(request, conn)
        os._exit(1)
    conn.close()


class SpawnerClient:
    """The daemon's side: starts the spawner process and sends it requests."""

    def __init__(self, sock_path: str, *, warm: bool = True, cgroup_layout: dict | None = None,
                 cgroup_parent: str | None = None):
        """warm: keep a shim forked ahead of time (containers); sandboxes need none.
        cgroup_layout/parent: where the warm shim's init waits in a spare cgroup (v1)."""
        self.sock_path = sock_path
        self.warm = warm
        self.spare_cgroup = ({"layout": cgroup_layout, "parent": cgroup_parent}
                             if cgroup_layout and cgroup_parent else None)
        self.process: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Lock | None = None

    async def ensure_started(self) -> None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.process is not None and self.process.returncode is None:
                return
            os.makedirs(os.path.dirname(self.sock_path), exist_ok=True)
            package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
            env = dict(os.environ)
            env["PYTHONPATH"] = package_root + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "node_agent.runtime.shim.spawner", self.sock_path,
                *([] if self.warm else ["--no-warm"]),
                *(["--spare-cgroup", json.dumps(self.spare_cgroup)] if self.spare_cgroup else []),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            )
            line = await asyncio.wait_for(self.process.stdout.readline(), 30)
            if line.strip() != b"ready":
                raise RuntimeError(f"the container spawner did not start (said {line!r})")

    async def request(self, message: dict, timeout: float = 60) -> dict:
        await self.ensure_started()
        with short_path(self.sock_path) as p:
            reader, writer = await asyncio.open_unix_connection(p)
        try:
            writer.write(protocol.encode_json(message))
            await writer.drain()
            reply = await asyncio.wait_for(protocol.read_json(reader), timeout)
        finally:
            writer.close()
        if reply is None:
            raise RuntimeError("the container spawner closed the connection without an answer")
        return reply

    async def refill_warm(self) -> None:
        """Have a warm shim forked now, while nothing waits on the spawner (a no-op when
        one is ready, or for a spawner without warm shims)."""
        if self.warm and self.process is not None and self.process.returncode is None:
            await self.request({"op": "warm"}, timeout=10)

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.process = None


def main(argv: list[str]) -> None:
    spare = json.loads(argv[argv.index("--spare-cgroup") + 1]) if "--spare-cgroup" in argv else None
    serve(argv[0], warm="--no-warm" not in argv[1:], spare_cgroup=spare)


if __name__ == "__main__":
    main(sys.argv[1:])
