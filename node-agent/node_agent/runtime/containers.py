"""ContainerManager: the container lifecycle for the runtime daemon (asyncio).

Each container has a state dir `<state_root>/containers/<id>/` with config.json
(what the shim was asked to run), state.json (written by the shim: state, pid,
exit code, reason, times) and shim.sock. The manager holds no truth of its
own: after a restart, recover() rebuilds everything from those files and the
shims' sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal as signal_module
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import logs
from .cgroups import Limits, detect, open_cgroup
from .linux import caps
from .linux.unixpath import short_path
from .shim import protocol
from .shim.spawner import SpawnerClient
from .shim.state import CONFIG_FILE, SOCKET_FILE, STATE_FILE, read_json, write_json_atomic
from .shim.trace import mark

log = logging.getLogger("ketch.runtime.containers")

#: ids name directories and cgroups: no '/', and no leading '.' (spare cgroups are `.warm-<pid>`)
VALID_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")


class ProcessIO:
    """write_stdin / close_stdin / read() -> (stream, bytes) | None / resize / wait() -> exit code."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, pid: int = 0, tty: bool = False):
        self._reader, self._writer = reader, writer
        self.pid = pid
        self.tty = tty
        self._queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pump = asyncio.ensure_future(self._read_all())
        self.error: str | None = None

    async def _read_all(self) -> None:
        try:
            while True:
                frame = await protocol.read_frame(self._reader)
                if frame is None:
                    break
                kind, payload = frame
                if kind in protocol.STREAM_KINDS:
                    self._queue.put_nowait((protocol.STREAM_KINDS[kind], payload))
                elif kind == protocol.JSON:
                    msg = json.loads(payload)
                    if msg.get("type") == "exit":
                        if not self._exit.done():
                            self._exit.set_result(int(msg.get("exit_code") if msg.get("exit_code") is not None else -1))
                        break
                    if msg.get("error"):
                        self.error = msg["error"]
        finally:
            self._queue.put_nowait(None)
            if not self._exit.done():
                self._exit.set_result(-1)      # the shim went away: the process is gone with it
            self._writer.close()

    async def write_stdin(self, data: bytes) -> None:
        if data and not self._writer.is_closing():
            self._writer.write(protocol.encode(protocol.STDIN, data))
            await self._writer.drain()

    async def close_stdin(self) -> None:
        if not self._writer.is_closing():
            self._writer.write(protocol.encode(protocol.CLOSE_STDIN))
            await self._writer.drain()

    async def resize(self, width: int, height: int) -> None:
        if not self._writer.is_closing():
            self._writer.write(protocol.encode_json({"op": "resize", "width": width, "height": height}))
            await self._writer.drain()

    async def kill(self, signal: int = 9) -> None:
        if self.pid and not self._writer.is_closing():
            self._writer.write(protocol.encode_json({"op": "kill", "pid": self.pid, "signal": signal}))
            await self._writer.drain()

    async def read(self) -> tuple[str, bytes] | None:
        """The next output chunk, or None when the output has ended."""
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)     # stay at the end for later readers
        return item

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    async def close(self) -> None:
        self._pump.cancel()
        self._writer.close()


# ---------------------------------------------------------------- the spec


@dataclass
class Mount:
    source: str = ""
    destination: str = ""
    type: str = "bind"            # bind | tmpfs | volume (a volume arrives as its host directory)
    read_only: bool = False
    options: list[str] = field(default_factory=list)


@dataclass
class Resources:
    memory_bytes: int | None = None
    cpu_quota_us: int | None = None
    cpu_period_us: int = 100_000
    cpu_shares: int | None = None
    pids_limit: int | None = None


@dataclass
class ContainerSpec:
    id: str
    name: str = ""
    image: str = ""
    rootfs: str = ""              # already mounted by the caller (the snapshotter)
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    hostname: str = ""
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    mounts: list[Mount] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    read_only_rootfs: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    no_new_privs: bool = True
    sandbox_id: str | None = None
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    log_path: str = ""            # default: <state dir>/container.log
    stop_signal: str = "SIGTERM"  # the image's StopSignal

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ContainerStatus:
    id: str
    name: str
    state: str                    # created | running | exited | unknown
    pid: int
    exit_code: int | None
    reason: str                   # "" | Completed | Error | OOMKilled
    created_at: int               # ns since the epoch
    started_at: int
    finished_at: int
    image: str
    labels: dict
    log_path: str
    message: str = ""
    annotations: dict = field(default_factory=dict)


class ContainerError(Exception):
    """A container operation failed; the message says why and what to do."""


class ContainerNotFound(ContainerError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "container not found"


class ExecTimeout(ContainerError, TimeoutError):
    def __init__(self, message: str, stdout: bytes = b"", stderr: bytes = b""):
        super().__init__(message)
        self.stdout, self.stderr = stdout, stderr


def parse_signal(value: str | int) -> int:
    if isinstance(value, int):
        return value
    text = str(value).strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal_module.Signals[text])
    except KeyError:
        raise ContainerError(f"unknown signal {value!r}") from None


# ---------------------------------------------------------------- the manager


@dataclass
class _Container:
    id: str
    state_dir: str
    config: dict
    state: dict
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    monitor: asyncio.Task | None = None


class ContainerManager:
    def __init__(self, state_root: Path | str, run_root: Path | str, cgroup_parent: str = "ketch", *,
                 log_max_size: int = logs.DEFAULT_MAX_SIZE, log_max_files: int = logs.DEFAULT_MAX_FILES):
        self.state_root = Path(state_root)
        self.run_root = Path(run_root)
        self.cgroup_parent = cgroup_parent.strip("/")
        self.log_max_size, self.log_max_files = log_max_size, log_max_files
        self.layout = detect()
        self.spawner = SpawnerClient(str(self.run_root / "spawner.sock"), cgroup_layout=self.layout.to_dict(),
                                     cgroup_parent=self.cgroup_parent)
        self._containers: dict[str, _Container] = {}
        self._subscribers: set[asyncio.Queue] = set()
        (self.state_root / "containers").mkdir(parents=True, exist_ok=True)
        self.run_root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ helpers

    def _get(self, container_id: str) -> _Container:
        c = self._containers.get(container_id)
        if c is None:
            raise ContainerNotFound(f"no such container: {container_id}")
        return c

    def _emit(self, container_id: str, kind: str, **extra) -> None:
        event = {"container_id": container_id, "type": kind, "timestamp": time.time_ns(), **extra}
        for q in list(self._subscribers):
            q.put_nowait(event)

    async def _shim_connect(self, c: _Container) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        path = os.path.join(c.state_dir, SOCKET_FILE)
        try:
            with short_path(path) as p:
                return await asyncio.open_unix_connection(p)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise ContainerError(f"container {c.id}: its shim is not running ({e.strerror})") from None

    async def _shim_call(self, c: _Container, message: dict, timeout: float | None = 30) -> dict:
        reader, writer = await self._shim_connect(c)
        try:
            writer.write(protocol.encode_json(message))
            await writer.drain()
            reply = await asyncio.wait_for(protocol.read_json(reader), timeout)
        finally:
            writer.close()
        if reply is None:
            raise ContainerError(f"container {c.id}: the shim closed the connection")
        return reply

    def _refresh(self, c: _Container) -> dict:
        if c.state.get("state") != "exited":
            on_disk = read_json(os.path.join(c.state_dir, STATE_FILE))
            if on_disk:
                c.state = on_disk
        return c.state

    def _mark_exited(self, c: _Container) -> None:
        if c.exited.is_set():
            return
        c.exited.set()
        st = c.state
        log.info("container exited", extra={"container_id": c.id, "exit_code": st.get("exit_code"),
                                             "reason": st.get("reason"), "exit_message": st.get("message", "")})
        self._emit(c.id, "exited", exit_code=st.get("exit_code"), reason=st.get("reason"))
        if st.get("reason") == "OOMKilled":
            self._emit(c.id, "oom")

    async def _monitor(self, c: _Container) -> None:
        """Holds a wait request open on the shim; its answer (or its death) is the exit."""
        while True:
            try:
                reply = await self._shim_call(c, {"op": "wait"}, timeout=None)
                if reply.get("state"):
                    c.state = reply["state"]
                break
            except asyncio.CancelledError:
                return
            except (ContainerError, OSError, ValueError):
                pass
            if self._refresh(c).get("state") == "exited":
                break
            # A dying shim closes its socket before it is gone: give it a moment.
            pid = c.state.get("shim_pid") or 0
            for _ in range(100):
                if not (pid and _alive(pid)):
                    break
                await asyncio.sleep(0.02)
            else:
                continue          # alive after all: ask again
            if self._refresh(c).get("state") != "exited":
                self._shim_lost(c)
            break
        self._mark_exited(c)

    def _shim_lost(self, c: _Container) -> None:
        """The shim is gone without recording an exit: its container died with it
        (parent-death signal), so it is reported exited."""
        log.warning("container shim vanished", extra={"container_id": c.id, "shim_pid": c.state.get("shim_pid")})
        st = c.state
        st.update(state="exited", exit_code=st.get("exit_code") if st.get("exit_code") is not None else 255,
                  reason="Error", message="the container's shim exited unexpectedly",
                  finished_at=st.get("finished_at") or time.time_ns())
        try:
            write_json_atomic(os.path.join(c.state_dir, STATE_FILE), st)
        except OSError:
            pass

    def _watch(self, c: _Container) -> None:
        c.monitor = asyncio.ensure_future(self._monitor(c))

    def _status(self, c: _Container) -> ContainerStatus:
        st = self._refresh(c)
        spec = c.config.get("spec", {})
        return ContainerStatus(
            id=c.id, name=spec.get("name", ""), state=st.get("state", "unknown"), pid=st.get("pid") or 0,
            exit_code=st.get("exit_code"), reason=st.get("reason", ""), created_at=st.get("created_at", 0),
            started_at=st.get("started_at", 0), finished_at=st.get("finished_at", 0), image=spec.get("image", ""),
            labels=dict(spec.get("labels") or {}), log_path=spec.get("log_path", ""), message=st.get("message", ""),
            annotations=dict(spec.get("annotations") or {}),
        )

    def _sandbox_namespaces(self, sandbox_id: str | None) -> dict:
        if not sandbox_id:
            return {}
        info = read_json(str(self.run_root / "sandboxes" / sandbox_id / "sandbox.json"))
        if not info:
            raise ContainerError(f"no such sandbox: {sandbox_id}")
        return dict(info["namespaces"])

    # ------------------------------------------------------------ lifecycle

    def _sweep_spare_cgroups(self) -> None:
        """Spare cgroups (`<parent>/.warm-<shim pid>`) of warm shims that died uncleanly."""
        for directory in open_cgroup(self.layout, self.cgroup_parent).directories():
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                pid = name.removeprefix(".warm-")
                if name.startswith(".warm-") and pid.isdigit() and not _alive(int(pid)):
                    spare = open_cgroup(self.layout, f"{self.cgroup_parent}/{name}")
                    try:
                        spare.kill_all(signal_module.SIGKILL)
                        spare.remove(timeout=1)
                    except OSError:
                        pass

    async def recover(self) -> None:
        """Re-adopt every container found on disk (after a daemon restart)."""
        await asyncio.to_thread(self._sweep_spare_cgroups)
        root = self.state_root / "containers"
        for entry in sorted(await asyncio.to_thread(lambda: list(root.iterdir()))):
            if entry.name in self._containers or not entry.is_dir():
                continue
            config = read_json(str(entry / CONFIG_FILE))
            state = read_json(str(entry / STATE_FILE))
            if not config or not state:
                # a create that never finished: nothing runs there
                await asyncio.to_thread(self._discard_incomplete, entry, config)
                continue
            c = _Container(id=entry.name, state_dir=str(entry), config=config, state=state)
            self._containers[c.id] = c
            if state.get("state") == "exited":
                c.exited.set()
            else:
                self._watch(c)
        log.info("containers recovered", extra={
            "running": sum(1 for c in self._containers.values() if c.state.get("state") == "running"),
            "total": len(self._containers), "cgroups": f"v{self.layout.version}"})
        # the daemon calls this at start: have the spawner (and its warm shim) ready
        # before the first create rather than during it
        await self.spawner.ensure_started()
        await self.prepare_next()

    async def prepare_next(self) -> None:
        """Fork the warm shim the next create will take; called when the daemon is quiet,
        so the fork does not compete with a create or start in flight."""
        try:
            await self.spawner.refill_warm()
        except (OSError, RuntimeError, TimeoutError) as e:
            log.debug("warm shim refill request failed", extra={"error": str(e)})

    def _discard_incomplete(self, entry: Path, config: dict | None) -> None:
        if config:
            cgroup = open_cgroup(self.layout, config["cgroup"]["relpath"])
            try:
                cgroup.kill_all(signal_module.SIGKILL)
                cgroup.remove(timeout=2)
            except OSError:
                pass
        shutil.rmtree(entry, ignore_errors=True)

    async def create(self, spec: ContainerSpec) -> str:
        if not VALID_ID.fullmatch(spec.id or ""):
            raise ContainerError(f"invalid container id {spec.id!r}: use 1-128 letters, digits, '_', '-' or '.', "
                                 "not starting with '.'")
        if spec.id in self._containers:
            raise ContainerError(f"container {spec.id} already exists")
        if not spec.args:
            raise ContainerError(f"container {spec.id}: no command given (args is empty)")
        state_dir = self.state_root / "containers" / spec.id
        spec_dict = spec.to_dict()
        if not spec_dict["log_path"]:
            spec_dict["log_path"] = str(state_dir / "container.log")
        try:
            keep = caps.effective_set(spec.cap_add, spec.cap_drop, spec.privileged)
        except caps.UnknownCapability as e:
            raise ContainerError(str(e)) from None
        config = {
            "spec": spec_dict,
            "state_dir": str(state_dir),
            "cgroup": {"layout": self.layout.to_dict(), "relpath": f"{self.cgroup_parent}/{spec.id}"},
            "namespaces": self._sandbox_namespaces(spec.sandbox_id),
            "log": {"max_size": self.log_max_size, "max_files": self.log_max_files},
            "process": {
                "args": list(spec.args), "env": list(spec.env), "cwd": spec.cwd or "/",
                "uid": spec.uid, "gid": spec.gid, "additional_gids": list(spec.additional_gids),
                "capabilities": sorted(keep), "no_new_privs": spec.no_new_privs,
            },
        }
        try:
            state_dir.mkdir(parents=True)
        except FileExistsError:
            raise ContainerError(f"container {spec.id} already exists (state dir {state_dir})") from None
        try:
            # written before the shim exists: recover() needs it to adopt the container
            write_json_atomic(str(state_dir / CONFIG_FILE), config)
            reply = await self.spawner.request({"op": "create", "config": config})
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, state_dir, True)
            raise
        if reply.get("error"):
            await asyncio.to_thread(shutil.rmtree, state_dir, True)
            raise ContainerError(f"creating container {spec.id}: {reply['error']}")
        c = _Container(id=spec.id, state_dir=str(state_dir), config=config, state=reply["state"])
        self._containers[spec.id] = c
        self._watch(c)
        log.info("container created", extra={"container_id": spec.id, "container_name": spec.name, "pid": c.state.get("pid")})
        self._emit(spec.id, "created")
        return spec.id

    async def start(self, container_id: str) -> None:
        c = self._get(container_id)
        try:
            reply = await self._shim_call(c, {"op": "start"})
        except ContainerError:
            self._refresh(c)
            raise
        if reply.get("error"):
            self._refresh(c)
            log.info("container failed to start", extra={"container_id": container_id, "error": reply["error"]})
            raise ContainerError(f"starting container {container_id}: {reply['error']}")
        if c.state.get("state") != "exited":
            c.state = reply["state"]
        self._emit(container_id, "started")

    async def kill(self, container_id: str, signal: int | str = signal_module.SIGKILL) -> None:
        c = self._get(container_id)
        if self._refresh(c).get("state") == "exited":
            return
        sig = parse_signal(signal)
        try:
            await self._shim_call(c, {"op": "kill", "signal": sig, "all": sig == signal_module.SIGKILL})
        except ContainerError:
            if self._refresh(c).get("state") != "exited":
                raise

    async def stop(self, container_id: str, timeout: float = 10) -> None:
        """The stop signal (SIGTERM unless the image says otherwise), SIGKILL after `timeout` seconds."""
        c = self._get(container_id)
        if self._refresh(c).get("state") == "exited":
            return
        if c.state.get("state") == "created":
            await self._shutdown(c)
            return
        stop_signal = parse_signal(c.config["spec"].get("stop_signal") or "SIGTERM")
        await self.kill(container_id, stop_signal)
        try:
            await asyncio.wait_for(c.exited.wait(), max(0.0, timeout))
            return
        except TimeoutError:
            pass
        await self.kill(container_id, signal_module.SIGKILL)
        await c.exited.wait()

    async def _shutdown(self, c: _Container) -> None:
        try:
            reply = await self._shim_call(c, {"op": "shutdown"}, timeout=30)
            if reply.get("state"):
                c.state = reply["state"]
        except (ContainerError, OSError):
            pass          # the shim is gone or going (a failed start ends it): the monitor sees it
        await c.exited.wait()

    async def remove(self, container_id: str, force: bool = False) -> None:
        c = self._get(container_id)
        state = self._refresh(c).get("state")
        if state == "running" and not force:
            raise ContainerError(f"container {container_id} is running: stop it first or remove with force")
        if not c.exited.is_set():
            await self._shutdown(c)
        if c.monitor is not None:
            c.monitor.cancel()
        mark("containers.remove.shim")
        cgroup = open_cgroup(self.layout, c.config["cgroup"]["relpath"])

        def cleanup() -> None:
            try:
                cgroup.kill_all(signal_module.SIGKILL)
                cgroup.remove(timeout=15, kill=True)     # a loaded host may take a while to reap
            except OSError as e:
                raise ContainerError(f"removing container {container_id}: {e}") from None
            shutil.rmtree(c.state_dir, ignore_errors=True)

        await asyncio.to_thread(cleanup)
        mark("containers.remove.cgroup")
        self._containers.pop(container_id, None)
        log.info("container removed", extra={"container_id": container_id})
        self._emit(container_id, "removed")

    def status(self, container_id: str) -> ContainerStatus:
        return self._status(self._get(container_id))

    def list(self) -> list[ContainerStatus]:
        return [self._status(c) for c in self._containers.values()]

    async def wait(self, container_id: str) -> ContainerStatus:
        c = self._get(container_id)
        await c.exited.wait()
        return self._status(c)

    async def update_resources(self, container_id: str, resources: Resources) -> None:
        """New limits for a running container (CRI UpdateContainerResources); None leaves one as it is."""
        c = self._get(container_id)
        cgroup = open_cgroup(self.layout, c.config["cgroup"]["relpath"])
        limits = Limits(memory_bytes=resources.memory_bytes, cpu_quota_us=resources.cpu_quota_us,
                        cpu_period_us=resources.cpu_period_us, cpu_shares=resources.cpu_shares,
                        pids_limit=resources.pids_limit)
        try:
            await asyncio.to_thread(cgroup.create, limits)
        except OSError as e:
            raise ContainerError(f"updating the resources of container {container_id}: {e}") from None
        res = c.config["spec"].setdefault("resources", {})
        for key, value in asdict(resources).items():
            if value is not None:
                res[key] = value
        await asyncio.to_thread(write_json_atomic, os.path.join(c.state_dir, CONFIG_FILE), c.config)

    def stats(self, container_id: str) -> dict:
        c = self._get(container_id)
        st = open_cgroup(self.layout, c.config["cgroup"]["relpath"]).stats()
        st["timestamp"] = time.time_ns()
        return st

    async def events(self) -> AsyncIterator[dict]:
        queue: asyncio.Queue = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    # ------------------------------------------------------------ exec and attach

    async def exec_stream(self, container_id: str, cmd: list[str], tty: bool = False, stdin: bool = False, *,
                          env: list[str] | None = None, cwd: str | None = None,
                          width: int = 0, height: int = 0, uid: int | None = None, gid: int | None = None,
                          additional_gids: list[int] | None = None) -> ProcessIO:
        """Run `cmd` in the container (all its namespaces, cgroup, capabilities); uid/gid
        default to the container's (resolve names with linux.users.resolve_user)."""
        c = self._get(container_id)
        if self._refresh(c).get("state") != "running":
            raise ContainerError(f"container {container_id} is not running")
        if not cmd:
            raise ContainerError("exec: no command given")
        reader, writer = await self._shim_connect(c)
        writer.write(protocol.encode_json({"op": "exec", "args": list(cmd), "tty": tty, "stdin": stdin,
                                           "env": env or [], "cwd": cwd, "width": width, "height": height,
                                           "uid": uid, "gid": gid, "additional_gids": additional_gids}))
        await writer.drain()
        reply = await protocol.read_json(reader)
        if reply is None or reply.get("error"):
            writer.close()
            message = reply.get("error") if reply else "the shim closed the connection"
            err = ContainerError(f"exec in container {container_id} failed: {message}")
            err.exit_code = (reply or {}).get("exit_code", 126)  # type: ignore[attr-defined]
            raise err
        return ProcessIO(reader, writer, pid=reply.get("pid", 0), tty=tty)

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float | None = None, **options) -> tuple[int, bytes, bytes]:
        """Output and exit code; past `timeout` the process is killed and ExecTimeout raised.
        `options` as for exec_stream (env, cwd, uid, gid, additional_gids)."""
        proc = await self.exec_stream(container_id, cmd, **options)
        out, err = bytearray(), bytearray()

        async def collect() -> int:
            while (item := await proc.read()) is not None:
                (out if item[0] == "stdout" else err).extend(item[1])
            return await proc.wait()

        try:
            code = await asyncio.wait_for(collect(), timeout if timeout and timeout > 0 else None)
        except TimeoutError:
            await proc.kill(signal_module.SIGKILL)
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                pass
            await proc.close()
            raise ExecTimeout(f"command {cmd!r} timed out after {timeout}s", bytes(out), bytes(err)) from None
        return code, bytes(out), bytes(err)

    async def attach(self, container_id: str, stdin: bool = True) -> ProcessIO:
        c = self._get(container_id)
        reader, writer = await self._shim_connect(c)
        writer.write(protocol.encode_json({"op": "attach", "stdin": stdin}))
        await writer.drain()
        reply = await protocol.read_json(reader)
        if reply is None or reply.get("error"):
            writer.close()
            raise ContainerError(f"attach to container {container_id} failed: {(reply or {}).get('error', 'shim gone')}")
        if reply.get("type") == "exit":
            writer.close()
            raise ContainerError(f"container {container_id} is not running")
        return ProcessIO(reader, writer, tty=bool(reply.get("tty")))

    def logs(self, container_id: str, *, tail: int = -1, since_ns: int | None = None, timestamps: bool = False,
             follow: bool = False) -> AsyncIterator[tuple[str, bytes]]:
        c = self._get(container_id)
        return logs.follow_logs(c.config["spec"]["log_path"], tail=tail, since_ns=since_ns, timestamps=timestamps,
                                follow=follow, is_running=lambda: not c.exited.is_set())

    async def close(self) -> None:
        """Stop watching (the containers and their shims keep running)."""
        for c in self._containers.values():
            if c.monitor is not None:
                c.monitor.cancel()
        await self.spawner.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
