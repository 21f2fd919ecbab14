"""The per-container supervisor.

Forked from the spawner (never a fresh interpreter), it starts its own session
so it outlives the daemon, forks the container's init into a new PID
namespace, owns the container's stdio (pipes or a pty) and writes it to the
CRI log, reaps the init, records exit code and reason in state.json, and
serves start/kill/wait/attach/exec on a unix socket in the state dir. It exits
once the container has exited, its output is drained and the state recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time

from .. import logs
from ..cgroups import CgroupLayout, Limits, open_cgroup
from ..linux import syscalls as sc
from ..linux.unixpath import short_path
from . import init, protocol
from .fdio import FdWriter, OutputPump, receive_fd, set_nonblocking, set_winsize
from .state import SOCKET_FILE, STATE_FILE, write_json_atomic
from .trace import mark


def exit_code_of(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


#: an attached client further behind than this is dropped rather than buffered without end
MAX_CLIENT_BACKLOG = 16 * 1024 * 1024


class CreateFailed(Exception):
    """The container could not be set up; the message goes back to the creator."""


class ExecSession:
    def __init__(self, pid: int):
        self.pid = pid
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()


class Shim:
    def __init__(self) -> None:
        self.cfg: dict = {}
        self.spec: dict = {}
        self.id = ""
        self.state_dir = ""
        self.tty = False
        self.state: dict = {}
        self.init_pid = 0
        self.execs: dict[int, ExecSession] = {}
        self.attach_writers: set[asyncio.StreamWriter] = set()
        self.pumps: list[OutputPump] = []
        self.stdin_writer: FdWriter | None = None
        self.tty_master = -1
        self._stdin_fd = -1
        self._out_fds: list[tuple[str, int]] = []
        self.exited: asyncio.Future | None = None

    # -------------------------------------------------------------- set-up (blocking, before the loop)

    def spawn_init(self, spare_cgroup: dict | None = None) -> None:
        """Fork the future container init into a new PID namespace with every pipe it
        may need; it waits for its config. Nothing here depends on the container, so
        the spawner can do it ahead of time (a warm shim).

        spare_cgroup ({"layout", "parent"}, cgroup v1 only): make `<parent>/.warm-<pid>`
        and have the init join it now; assign() renames it to the container's."""
        mark('shim.fork')
        prejoin = None
        self.spare = None
        if spare_cgroup and spare_cgroup["layout"]["version"] == 1:
            try:
                layout = CgroupLayout.from_dict(spare_cgroup["layout"])
                spare = open_cgroup(layout, f"{spare_cgroup['parent']}/.warm-{os.getpid()}")
                spare.create(Limits())
                self.spare, prejoin = spare, spare.procs_files()
            except OSError:
                self.spare = None
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        # a terminal is opened by the init on the container's devpts and its master sent here
        pty_parent_sock, pty_child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pty_parent, pty_child = pty_parent_sock.detach(), pty_child_sock.detach()
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        start_r, start_w = os.pipe2(os.O_CLOEXEC)
        config_r, config_w = os.pipe2(os.O_CLOEXEC)
        sc.unshare(sc.CLONE_NEWPID)          # our next child is PID 1 of the container
        pid = os.fork()
        if pid == 0:
            for fd in (out_r, err_r, in_w, pty_parent, status_r, start_w, config_w):
                os.close(fd)
            init.waiting_init(config_r, (in_r, out_w, err_w), pty_child, status_w, start_r, prejoin)
            os._exit(1)
        self.init_pid = pid
        for fd in (out_w, err_w, in_r, pty_child, status_w, start_r, config_r):
            os.close(fd)
        self._pipes = {"out": out_r, "err": err_r, "in": in_w, "pty": pty_parent}
        self.start_fd, self.status_fd, self.config_fd = start_w, status_r, config_w

    def assign(self, cfg: dict) -> None:
        """Make this shim the given container's: cgroup, socket, config to the init."""
        mark('shim.assign')
        self.cfg = cfg
        self.spec = cfg["spec"]
        self.id = self.spec["id"]
        self.state_dir = cfg["state_dir"]
        self.tty = bool(self.spec.get("tty"))
        layout = CgroupLayout.from_dict(cfg["cgroup"]["layout"])
        self.cgroup = open_cgroup(layout, cfg["cgroup"]["relpath"])
        cfg["cgroup_prejoined"] = self._adopt_spare_cgroup(layout)
        res = self.spec.get("resources") or {}
        self.cgroup.create(Limits(
            memory_bytes=res.get("memory_bytes"), cpu_quota_us=res.get("cpu_quota_us"),
            cpu_period_us=res.get("cpu_period_us") or 100_000, cpu_shares=res.get("cpu_shares"),
            pids_limit=res.get("pids_limit"),
        ))
        cfg["cgroup_procs"] = self.cgroup.procs_files()
        mark('shim.cgroup')

        # The socket exists before anyone is told the container was created.
        sock_path = os.path.join(self.state_dir, SOCKET_FILE)
        try:
            os.unlink(sock_path)
        except FileNotFoundError:
            pass
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        with short_path(sock_path) as p:
            self.listener.bind(p)
        os.chmod(sock_path, 0o600)
        self.listener.listen(64)

        pipes = self._pipes
        if self.tty:
            for name in ("out", "err", "in"):
                os.close(pipes[name])
            self._pty_parent = pipes["pty"]
        else:
            os.close(pipes["pty"])
            self._pty_parent = -1
            self._out_fds = [("stdout", pipes["out"]), ("stderr", pipes["err"])]
            if self.spec.get("stdin"):
                self._stdin_fd = pipes["in"]
            else:
                os.close(pipes["in"])
        data = json.dumps(cfg).encode()
        view = memoryview(data)
        while view:
            n = os.write(self.config_fd, view)
            view = view[n:]
        os.close(self.config_fd)

    def _adopt_spare_cgroup(self, layout: CgroupLayout) -> bool:
        """Rename the spare cgroup the init already sits in to the container's (v1).
        False (and the init joins the usual way) when that cannot be done."""
        spare, self.spare = self.spare, None
        if spare is None:
            return False
        try:
            target_dirs = self.cgroup.directories()
            if layout.version != 1 or len(target_dirs) != len(spare.directories()):
                raise OSError("spare cgroup not usable")
            for procs in spare.procs_files():     # the init may still be joining: all or nothing
                with open(procs) as f:
                    if str(self.init_pid) not in f.read().split():
                        raise OSError("the init has not joined the spare cgroup yet")
            done = []
            try:
                for old, new in zip(spare.directories(), target_dirs, strict=True):
                    os.makedirs(os.path.dirname(new), exist_ok=True)
                    os.rename(old, new)
                    done.append((old, new))
            except OSError:
                for old, new in reversed(done):
                    os.rename(new, old)
                raise
            mark('shim.adopted')
            return True
        except OSError:
            self._leftover_spare = spare     # removed once the init has left it
            return False

    async def finish_create(self) -> None:
        """Wait for the init's "ready" (it joins its cgroup last, which waits for an RCU
        grace period; meanwhile this process has set up its event loop)."""
        reply = await self._read_status_pipe(self.status_fd, until_eof=False)
        mark('shim.ready')
        leftover = getattr(self, "_leftover_spare", None)
        if leftover is not None:
            try:
                leftover.remove(timeout=1)
            except OSError:
                pass
        if reply.get("error") or not reply.get("ready"):
            os.waitpid(self.init_pid, 0)
            raise RuntimeError(reply.get("error") or "container init exited during set-up")
        if self.tty:
            self.tty_master = receive_fd(self._pty_parent)
            self._out_fds = [("stdout", self.tty_master)]
        self.state = {
            "id": self.id, "state": "created", "pid": self.init_pid, "shim_pid": os.getpid(),
            "exit_code": None, "reason": "", "message": "", "created_at": time.time_ns(),
            "started_at": 0, "finished_at": 0,
        }
        self._save()
        mark('shim.saved')

    async def _read_status_pipe(self, fd: int, *, until_eof: bool) -> dict:
        """One JSON line from a status pipe, or {} if none came.

        ``until_eof=False``: stop at the first newline (the "ready" line; the pipe stays open
        for the start, and nothing follows it until we release the start, so a read is safe).
        ``until_eof=True``: read to EOF and close (EOF alone means execve succeeded)."""
        loop = asyncio.get_running_loop()
        data = bytearray()
        done = loop.create_future()
        set_nonblocking(fd)

        def readable() -> None:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                return
            if chunk:
                data.extend(chunk)
                if until_eof or not data.endswith(b"\n"):
                    return
            loop.remove_reader(fd)
            if not done.done():
                done.set_result(None)

        loop.add_reader(fd, readable)
        await done
        if until_eof:
            os.close(fd)
        if not data.strip():
            return {}
        return json.loads(bytes(data).decode().splitlines()[0])

    def _save(self) -> None:
        write_json_atomic(os.path.join(self.state_dir, STATE_FILE), self.state)

    # -------------------------------------------------------------- the loop

    async def serve(self, conn: socket.socket) -> None:
        """Run until the container has exited; `conn` (the creator) hears "created"
        once requests can be served."""
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.exited = loop.create_future()
        self.start_lock = asyncio.Lock()
        log_cfg = self.cfg.get("log") or {}
        self.log = logs.CriLogWriter(self.spec["log_path"], max_size=log_cfg.get("max_size", logs.DEFAULT_MAX_SIZE),
                                     max_files=log_cfg.get("max_files", logs.DEFAULT_MAX_FILES))
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, lambda: None)   # only the container's death ends a shim
        server = await asyncio.start_unix_server(self._handle, sock=self.listener)
        try:
            await self.finish_create()
        except BaseException as e:  # noqa: BLE001
            server.close()
            raise CreateFailed(str(e)) from None
        for stream, fd in self._out_fds:
            self.pumps.append(OutputPump(loop, fd, stream, self._on_output))
        if self.tty:
            self.stdin_writer = FdWriter(loop, os.dup(self.tty_master))
        elif self._stdin_fd >= 0:
            self.stdin_writer = FdWriter(loop, self._stdin_fd)
        loop.add_signal_handler(signal.SIGCHLD, self._reap)
        try:
            protocol.send_json_blocking(conn, {"ok": True, "state": self.state})
        except OSError:
            pass
        conn.close()
        self._reap()
        await self.exited
        server.close()
        try:
            os.unlink(os.path.join(self.state_dir, SOCKET_FILE))
        except FileNotFoundError:
            pass
        await asyncio.sleep(0.05)   # let the last replies leave

    def _on_output(self, stream: str, data: bytes) -> None:
        try:
            self.log.write(stream, data)
        except OSError:
            pass          # a full disk loses log lines; it must not block the container on its pipe
        frame = protocol.encode(protocol.STDOUT if stream == "stdout" else protocol.STDERR, data)
        for w in list(self.attach_writers):
            try:
                if w.transport.get_write_buffer_size() > MAX_CLIENT_BACKLOG:
                    raise ConnectionError("attach client too slow")
                w.write(frame)
            except Exception:   # noqa: BLE001 - a broken or stuck client must not hurt the container
                self.attach_writers.discard(w)
                w.close()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = exit_code_of(status)
            if pid == self.init_pid:
                mark('shim.reaped')
                asyncio.ensure_future(self._on_init_exit(code))
            elif pid in self.execs:
                session = self.execs.pop(pid)
                if not session.exited.done():
                    session.exited.set_result(code)

    async def _on_init_exit(self, code: int) -> None:
        async with self.start_lock:    # a start in progress records "running" first
            pass
        try:
            await asyncio.wait_for(asyncio.gather(*(p.done.wait() for p in self.pumps)), 5)
        except TimeoutError:
            pass
        self.log.close()
        oom = False
        try:
            oom = code != 0 and self.cgroup.oom_kill_count() > 0
        except OSError:
            pass
        if self.state.get("state") == "exited":        # start failed: keep its message
            self.state["exit_code"] = self.state.get("exit_code") or code
        else:
            self.state.update(
                state="exited", exit_code=code,
                reason="OOMKilled" if oom else ("Completed" if code == 0 else "Error"),
            )
        self.state["finished_at"] = time.time_ns()
        self._save()
        mark('shim.exited')
        if self.stdin_writer:
            self.stdin_writer.close()
        if not self.exited.done():
            self.exited.set_result(code)

    # -------------------------------------------------------------- requests

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await protocol.read_json(reader)
            if request is None:
                return
            op = request.get("op")
            handler = getattr(self, f"_op_{op}", None)
            if handler is None:
                writer.write(protocol.encode_json({"error": f"unknown shim operation {op!r}"}))
                return
            await handler(request, reader, writer)
        except Exception as e:  # noqa: BLE001
            try:
                writer.write(protocol.encode_json({"error": f"shim: {e}"}))
            except Exception:  # noqa: BLE001
                pass
        finally:
            try:
                await writer.drain()
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    async def _op_state(self, request, reader, writer) -> None:
        writer.write(protocol.encode_json({"state": self.state}))

    async def _op_start(self, request, reader, writer) -> None:
        async with self.start_lock:
            if self.state["state"] != "created":
                writer.write(protocol.encode_json({"error": f"container {self.id} is {self.state['state']}, not created"}))
                return
            mark('shim.start')
            os.write(self.start_fd, b"1")
            os.close(self.start_fd)
            self.state["started_at"] = time.time_ns()
            result = await self._read_status_pipe(self.status_fd, until_eof=True)
            if result.get("error"):
                self.state.update(state="exited", exit_code=result.get("exit_code", 127), reason="Error",
                                  message=result["error"], finished_at=time.time_ns())
                self._save()
                writer.write(protocol.encode_json({"error": result["error"], "exit_code": result.get("exit_code")}))
                return
            mark('shim.execd')
            self.state["state"] = "running"
            self._save()
            mark('shim.running')
        writer.write(protocol.encode_json({"ok": True, "state": self.state}))

    async def _op_wait(self, request, reader, writer) -> None:
        await asyncio.shield(self.exited)
        writer.write(protocol.encode_json({"state": self.state}))

    async def _op_kill(self, request, reader, writer) -> None:
        sig = int(request.get("signal", signal.SIGKILL))
        if self.state["state"] == "exited" or self.exited.done():
            writer.write(protocol.encode_json({"ok": True, "already_exited": True}))
            return
        if request.get("all") and sig == signal.SIGKILL:
            try:
                self.cgroup.kill_all(sig)
            except OSError:
                pass
        try:
            os.kill(self.init_pid, sig)
        except ProcessLookupError:
            pass
        writer.write(protocol.encode_json({"ok": True}))

    async def _op_attach(self, request, reader, writer) -> None:
        if self.exited.done():
            writer.write(protocol.encode_json({"type": "exit", "exit_code": self.state.get("exit_code")}))
            return
        writer.write(protocol.encode_json({"ok": True, "tty": self.tty}))
        self.attach_writers.add(writer)
        use_stdin = bool(request.get("stdin")) and self.stdin_writer is not None
        pump = asyncio.ensure_future(self._client_input(reader, self.stdin_writer if use_stdin else None,
                                                        self.tty_master if self.tty else -1))
        await asyncio.wait([pump, self.exited], return_when=asyncio.FIRST_COMPLETED)
        if use_stdin and self.spec.get("stdin_once") and self.stdin_writer:
            self.stdin_writer.close()
        if self.exited.done():
            self.attach_writers.discard(writer)
            writer.write(protocol.encode_json({"type": "exit", "exit_code": self.state.get("exit_code")}))
        else:
            self.attach_writers.discard(writer)
        pump.cancel()

    async def _client_input(self, reader, stdin: FdWriter | None, tty_fd: int) -> None:
        """stdin data, stdin close and resizes from a client until it goes away."""
        while True:
            frame = await protocol.read_frame(reader)
            if frame is None:
                return
            kind, payload = frame
            if kind == protocol.STDIN and stdin is not None:
                stdin.write(payload)
            elif kind == protocol.CLOSE_STDIN and stdin is not None:
                if self.tty and stdin is self.stdin_writer:
                    stdin.write(b"\x04")          # EOF on a terminal is ^D
                else:
                    stdin.close()
            elif kind == protocol.JSON:
                msg = json.loads(payload)
                if msg.get("op") == "resize" and tty_fd >= 0:
                    set_winsize(tty_fd, int(msg["width"]), int(msg["height"]))
                elif msg.get("op") == "kill" and msg.get("pid"):
                    try:
                        os.kill(int(msg["pid"]), int(msg.get("signal", 9)))
                    except ProcessLookupError:
                        pass

    async def _op_exec(self, request, reader, writer) -> None:
        if self.state["state"] != "running" or self.exited.done():
            writer.write(protocol.encode_json({"error": f"container {self.id} is not running", "exit_code": 126}))
            return
        loop = asyncio.get_running_loop()
        tty = bool(request.get("tty"))
        proc = dict(self.cfg["process"])
        proc["args"] = list(request["args"])
        if request.get("env"):
            proc["env"] = list(proc.get("env") or []) + list(request["env"])
        if request.get("cwd"):
            proc["cwd"] = request["cwd"]
        if request.get("uid") is not None:
            proc["uid"] = int(request["uid"])
            proc["gid"] = int(request["gid"] if request.get("gid") is not None else request["uid"])
            proc["additional_gids"] = list(request.get("additional_gids") or [])
        pty_parent = pty_child = -1
        if tty:
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            pty_parent, pty_child = a.detach(), b.detach()
            stdio, child_ends, outputs, stdin_w, master = None, [pty_child], [], -1, -1
        else:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            if request.get("stdin"):
                in_r, stdin_w = os.pipe2(os.O_CLOEXEC)
            else:
                in_r, stdin_w = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC), -1
            stdio, child_ends = (in_r, out_w, err_w), [in_r, out_w, err_w]
            outputs = [("stdout", out_r), ("stderr", err_r)]
            master = -1
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            init.exec_child(self.cfg, self.init_pid, proc, stdio, status_w, pty_child,
                            (int(request.get("width") or 0), int(request.get("height") or 0)))
            os._exit(1)
        session = ExecSession(pid)
        self.execs[pid] = session
        for fd in child_ends + [status_w]:
            os.close(fd)
        self._reap()     # the child may already be gone
        result = await self._read_status_pipe(status_r, until_eof=True)
        if tty:
            if result.get("error"):
                os.close(pty_parent)
            else:
                master = receive_fd(pty_parent)      # sent before execve: already queued
                outputs = [("stdout", master)]
                stdin_w = os.dup(master) if request.get("stdin") else -1
        if result.get("error"):
            for _, fd in outputs:
                os.close(fd)
            if stdin_w >= 0:
                os.close(stdin_w)
            code = await session.exited
            writer.write(protocol.encode_json({"error": result["error"], "exit_code": result.get("exit_code", code)}))
            return
        writer.write(protocol.encode_json({"ok": True, "pid": pid}))

        def send(stream: str, data: bytes) -> None:
            writer.write(protocol.encode(protocol.STDOUT if stream == "stdout" else protocol.STDERR, data))

        pumps = [OutputPump(loop, fd, stream, send) for stream, fd in outputs]
        stdin_writer = FdWriter(loop, stdin_w) if stdin_w >= 0 else None

        async def client_input() -> None:
            await self._client_input(reader, stdin_writer, master)

        input_task = asyncio.ensure_future(client_input())
        code = await session.exited
        try:
            await asyncio.wait_for(asyncio.gather(*(p.done.wait() for p in pumps)), 2)
        except TimeoutError:
            for p in pumps:
                if not p.done.is_set():
                    loop.remove_reader(p.fd)
                    os.close(p.fd)
        input_task.cancel()
        if stdin_writer:
            stdin_writer.close()
        writer.write(protocol.encode_json({"type": "exit", "exit_code": code}))

    async def _op_shutdown(self, request, reader, writer) -> None:
        """Remove of a container that never ran (or force): kill the init, then exit."""
        if not self.exited.done():
            try:
                os.kill(self.init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await asyncio.shield(self.exited)
        writer.write(protocol.encode_json({"ok": True, "state": self.state}))


def _become_daemon() -> None:
    os.setsid()
    sc.set_process_name("ketch-shim")
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def shim_main(cfg: dict, conn: socket.socket) -> None:
    """Entry in a child the spawner forked for one container. Never returns."""
    shim = None
    try:
        _become_daemon()
        shim = Shim()
        shim.spawn_init()
    except BaseException as e:  # noqa: BLE001
        _abandon(shim, cfg, conn, e)
        os._exit(1)
    _run(shim, cfg, conn)


def warm_shim_main(control: socket.socket, spare_cgroup: dict | None = None) -> None:
    """A shim forked ahead of time, its init already waiting and its event loop
    running: it gets its container's config and the creator's connection over
    `control`. Never returns."""
    shim = None
    try:
        _become_daemon()
        shim = Shim()
        shim.spawn_init(spare_cgroup)
    except BaseException:  # noqa: BLE001
        _kill_waiting_init(shim)
        os._exit(1)
    code = 0
    try:
        code = asyncio.run(_warm(shim, control))
    except BaseException:  # noqa: BLE001
        code = 1
    os._exit(code)


async def _warm(shim: Shim, control: socket.socket) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, lambda: None)
    mark('shim.warm')
    readable = loop.create_future()
    loop.add_reader(control.fileno(), lambda: readable.done() or readable.set_result(None))
    await readable
    loop.remove_reader(control.fileno())
    try:
        message, fds = receive_assignment(control)
    except BaseException:  # noqa: BLE001 - the spawner went away: we were never needed
        _kill_waiting_init(shim)
        return 0
    control.close()
    conn = socket.socket(fileno=fds[0])
    cfg = message["config"]
    try:
        shim.assign(cfg)
        await shim.serve(conn)
    except BaseException as e:  # noqa: BLE001
        if not shim.state:          # failed before "created": tell the creator
            _abandon(shim, cfg, conn, e)
        return 1
    return 0


def _kill_waiting_init(shim: Shim | None) -> None:
    """A warm shim that will not be used: its init and its spare cgroup go."""
    if shim is None:
        return
    if shim.init_pid:
        try:
            os.kill(shim.init_pid, signal.SIGKILL)
            os.waitpid(shim.init_pid, 0)
        except OSError:
            pass
    spare = getattr(shim, "spare", None)
    if spare is not None:
        try:
            spare.remove(timeout=1)
        except OSError:
            pass


def receive_assignment(control: socket.socket) -> tuple[dict, list[int]]:
    """A length-prefixed JSON message with the creator's connection attached."""
    data, fds, _, _ = socket.recv_fds(control, 65536, 1)
    if not data or not fds:
        raise ConnectionError("no assignment")
    length = int.from_bytes(data[:4], "big")
    body = bytearray(data[4:])
    while len(body) < length:
        chunk = control.recv(length - len(body))
        if not chunk:
            raise ConnectionError("assignment cut short")
        body.extend(chunk)
    return json.loads(bytes(body)), fds


def send_assignment(control: socket.socket, message: dict, conn_fd: int) -> None:
    body = json.dumps(message).encode()
    payload = len(body).to_bytes(4, "big") + body
    sent = socket.send_fds(control, [payload], [conn_fd])
    if sent < len(payload):
        control.sendall(payload[sent:])


def _run(shim: Shim, cfg: dict, conn: socket.socket) -> None:
    code = 0
    try:
        shim.assign(cfg)
        asyncio.run(shim.serve(conn))
    except BaseException as e:  # noqa: BLE001
        code = 1
        if not shim.state:          # failed before "created": tell the creator
            _abandon(shim, cfg, conn, e)
    os._exit(code)


def _abandon(shim: Shim | None, cfg: dict, conn: socket.socket, error: BaseException) -> None:
    if shim is not None and shim.init_pid:
        try:
            os.kill(shim.init_pid, signal.SIGKILL)
            os.waitpid(shim.init_pid, 0)
        except OSError:
            pass
    cgroup = getattr(shim, "cgroup", None)
    if cgroup is not None:
        try:
            cgroup.remove(timeout=0.5)
        except Exception:  # noqa: BLE001
            pass
    try:
        os.unlink(os.path.join(cfg["state_dir"], SOCKET_FILE))
    except OSError:
        pass
    try:
        protocol.send_json_blocking(conn, {"error": str(error)})
        conn.close()
    except OSError:
        pass
