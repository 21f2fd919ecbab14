"""The gRPC services of the runtime daemon (proto/runtime.proto), over grpc.aio.

`Runtime` is the engine: it turns a CRI/docker-style request into calls on the
parts that do the work (ImageStore, OverlaySnapshotter, SandboxManager,
ContainerManager, VolumeStore, Networks) and remembers what it added on top
(state.RecordStore). The four servicers only translate protobuf to and from
it and map errors to gRPC status codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import signal as signals
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from ketch.api.timeutil import docker_duration
from node_agent.network import hosts as hostfiles
from node_agent.network import portmap
from node_agent.network.networks import (
    BUILTIN,
    NetworkError,
    NetworkExists,
    NetworkInUse,
    NetworkNotFound,
    Networks,
)
from node_agent.runtime.shim.trace import mark
from node_agent.runtime.state import ContainerRecord, RecordStore, SandboxRecord
from node_agent.runtime.volumes import VolumeError, VolumeInUse, VolumeNotFound, VolumeStore
from proto import runtime_pb2 as pb
from proto import runtime_pb2_grpc as pb_grpc

log = logging.getLogger("ketch.runtime")

VERSION = "0.1.0"
API_VERSION = "v1"

STATE_TO_PB = {
    "created": pb.CONTAINER_CREATED,
    "running": pb.CONTAINER_RUNNING,
    "exited": pb.CONTAINER_EXITED,
}


class RuntimeError_(Exception):
    """An error with the gRPC code it should travel with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def not_found(message: str) -> RuntimeError_:
    return RuntimeError_(grpc.StatusCode.NOT_FOUND, message)


def conflict(message: str) -> RuntimeError_:
    return RuntimeError_(grpc.StatusCode.ALREADY_EXISTS, message)


def precondition(message: str) -> RuntimeError_:
    return RuntimeError_(grpc.StatusCode.FAILED_PRECONDITION, message)


def invalid(message: str) -> RuntimeError_:
    return RuntimeError_(grpc.StatusCode.INVALID_ARGUMENT, message)


# --------------------------------------------------------------- pure helpers


def merge_process(image_cfg: dict, cfg: pb.ContainerConfig) -> tuple[list[str], list[str], str, str]:
    """(argv, env, working_dir, user) from the image config and the request, the way Docker merges them.

    --entrypoint replaces the image Entrypoint and drops its Cmd; a command
    replaces the image Cmd; env entries of the request override the image's
    by name; the request's working dir and user win when given.
    """
    if cfg.entrypoint or cfg.clear_entrypoint:
        entry = list(cfg.entrypoint)
        cmd = list(cfg.command)
    else:
        entry = list(image_cfg.get("Entrypoint") or [])
        cmd = list(cfg.command) or list(image_cfg.get("Cmd") or [])
    argv = entry + cmd
    env: dict[str, str] = {}
    for item in image_cfg.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    for kv in cfg.env:
        env[kv.key] = kv.value
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    working_dir = cfg.working_dir or image_cfg.get("WorkingDir") or "/"
    user = cfg.user or image_cfg.get("User") or ""
    return argv, [f"{k}={v}" for k, v in env.items()], working_dir, user


def parse_signal(text: str, default: int = signals.SIGKILL) -> int:
    """'KILL', 'SIGKILL', '9' -> 9."""
    text = (text or "").strip().upper()
    if not text:
        return int(default)
    if text.isdigit():
        return int(text)
    name = text if text.startswith("SIG") else f"SIG{text}"
    try:
        return int(getattr(signals.Signals, name))
    except AttributeError:
        raise invalid(f"invalid signal: {text}") from None


def status_text(state: str, exit_code: int, started_ns: int, finished_ns: int, now_ns: int | None = None) -> str:
    now_ns = now_ns or time.time_ns()
    if state == "running":
        return f"Up {docker_duration((now_ns - started_ns) / 1e9)}"
    if state == "exited":
        if not finished_ns:
            return f"Exited ({exit_code})"
        return f"Exited ({exit_code}) {docker_duration((now_ns - finished_ns) / 1e9)} ago"
    if state == "created":
        return "Created"
    return state.capitalize()


_ADJECTIVES = ("brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
               "nifty", "proud", "quirky", "sharp", "tender", "vivid", "witty", "zealous", "bold", "cool")
_NOUNS = ("turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth", "dijkstra",
          "hamilton", "liskov", "kay", "perlman", "wozniak", "shannon", "noether", "curie", "darwin")


def random_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}"


def _msg_dict(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


# ------------------------------------------------------------------- engine


#: seconds a create keeps the daemon "busy" waiting for its start (see Runtime._hold_for_start)
START_PATIENCE = 0.2


class Runtime:
    """The runtime engine behind the gRPC services."""

    def __init__(
        self,
        *,
        root: Path,
        run_root: Path,
        images: Any,
        snapshots: Any,
        containers: Any,
        sandboxes: Any,
        volumes: VolumeStore,
        networks: Networks | None,
        records: RecordStore,
        cgroup_mode: str = "",
        sandbox_pool: int = 0,
    ) -> None:
        self.root = Path(root)
        self.run_root = Path(run_root)
        self.images = images
        self.snapshots = snapshots
        self.containers = containers
        self.sandboxes = sandboxes
        self.volumes = volumes
        self.networks = networks
        self.records = records
        self.cgroup_mode = cgroup_mode
        self._name_lock = asyncio.Lock()
        self._reserved_names: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self.attached: dict[str, int] = {}  # container id -> open output streams (auto-remove waits)
        self._auto_removed: dict[str, asyncio.Event] = {}  # set once an auto-remove is over
        # Warm sandboxes for docker-style containers (namespaces made, veth wired), so a `run`
        # does not wait for them: network -> ready records, not yet in the RecordStore.
        self.pool_size = sandbox_pool
        self.pool: dict[str, list[SandboxRecord]] = {}
        self._refilling: set[str] = set()
        # Creates and starts in flight: background work (the warm pools' refills) waits
        # until there are none, so it never competes with the path a user waits on.
        self._busy = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._awaiting_start: dict[str, asyncio.TimerHandle] = {}

    # ---------------------------------------------------------------- start

    async def recover(self) -> None:
        """After a (re)start: adopt containers, restore networks, finish interrupted auto-removes."""
        await self.containers.recover()
        await self._remove_unrecorded_sandboxes()
        self._mark_broken_sandboxes()
        if self.networks is not None:
            await asyncio.to_thread(self.networks.restore)
            live = set(self.records.sandboxes)
            await asyncio.to_thread(self.networks.prune, live)
        known = {st.id for st in self.containers.list()}
        for orphan in known - set(self.records.containers):
            log.warning("container without record (create cut short), removing", extra={"container": orphan})
            with contextlib.suppress(Exception):
                await self.containers.remove(orphan, force=True)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.snapshots.remove, orphan)
        for rec in list(self.records.containers.values()):
            if rec.id not in known:
                log.warning("record without container, dropping", extra={"container": rec.id})
                await self._cleanup_after_remove(rec)
                continue
            if rec.auto_remove:
                self._watch_auto_remove(rec.id)
        await self._finish_interrupted_removals(known)

    async def _finish_interrupted_removals(self, containers: set[str]) -> None:
        """A removal goes on after the container is hidden (its record gone): root filesystems
        and implicit sandboxes left by a daemon that stopped meanwhile are removed here."""
        for key in await asyncio.to_thread(self.snapshots.list):
            if key not in self.records.containers and key not in containers:
                log.warning("root filesystem of a removed container, removing", extra={"container": key})
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.snapshots.remove, key)
        for sb in list(self.records.sandboxes.values()):
            if sb.implicit_for and sb.implicit_for not in self.records.containers:
                log.warning("sandbox of a removed container, removing", extra={"sandbox": sb.id})
                with contextlib.suppress(Exception):
                    await self.remove_sandbox(sb.id)

    def _mark_broken_sandboxes(self) -> None:
        """A sandbox whose namespace bind mounts are gone (unmounted, or made in another mount
        namespace) cannot take containers: say NOTREADY, so its owner makes a new one."""
        for rec in self.records.sandboxes.values():
            if rec.state != "ready":
                continue
            ns_dir = self.run_root / "sandboxes" / rec.id / "ns"
            pinned = [entry.path for entry in os.scandir(ns_dir)] if ns_dir.is_dir() else []
            if rec.netns_path and rec.netns_path not in pinned:
                pinned.append(rec.netns_path)
            lost = [path for path in pinned if not os.path.ismount(path)]
            if lost:
                log.warning("sandbox namespaces lost, marking it not ready",
                            extra={"sandbox": rec.id, "lost": ",".join(lost)})
                rec.state = "notready"
                self.records.put_sandbox(rec)

    async def _remove_unrecorded_sandboxes(self) -> None:
        """Sandboxes on disk without a record: a warm pool of a daemon that died, or a cut-short create."""
        import shutil

        try:  # every directory, also one whose create was cut short before its sandbox.json
            on_disk = [entry.name for entry in os.scandir(self.run_root / "sandboxes") if entry.is_dir()]
        except FileNotFoundError:
            return
        for sandbox_id in on_disk:
            if sandbox_id not in self.records.sandboxes:
                with contextlib.suppress(Exception):
                    await _maybe_await(self.sandboxes.remove(sandbox_id))
                shutil.rmtree(self.root / "sandboxes" / sandbox_id, ignore_errors=True)

    async def close(self) -> None:
        """Daemon shutdown: give back the warm sandboxes (containers keep running)."""
        self.pool_size = 0
        for records in self.pool.values():
            while records:
                await self._discard(records.pop())

    async def _discard(self, rec: SandboxRecord) -> None:
        import shutil

        if self.networks is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.networks.release, rec.id)
        with contextlib.suppress(Exception):
            await _maybe_await(self.sandboxes.remove(rec.id))
        shutil.rmtree(rec.files_dir, ignore_errors=True)

    @contextlib.asynccontextmanager
    async def _hot_path(self):
        """Marks a create or start in flight (see _busy)."""
        self._enter_busy()
        try:
            yield
        finally:
            self._leave_busy()

    def _enter_busy(self) -> None:
        self._busy += 1
        self._quiet.clear()

    def _leave_busy(self) -> None:
        """The last one out refills the warm shim; the sandbox pool waits on _quiet."""
        self._busy -= 1
        if self._busy == 0:
            self._quiet.set()
            prepare = getattr(self.containers, "prepare_next", None)
            if prepare is not None:
                self._spawn(prepare())

    def _hold_for_start(self, container_id: str, patience: float = START_PATIENCE) -> None:
        """A docker-style create is followed by its start within milliseconds: the daemon
        stays busy until then (at most `patience` seconds), so a refill does not slip in
        between the two."""
        self._enter_busy()
        self._awaiting_start[container_id] = asyncio.get_running_loop().call_later(
            patience, self._release_hold, container_id)

    def _release_hold(self, container_id: str) -> None:
        timer = self._awaiting_start.pop(container_id, None)
        if timer is not None:
            timer.cancel()
            self._leave_busy()

    def _refill(self, network: str) -> None:
        if self.pool_size <= 0 or network in self._refilling:
            return
        self._refilling.add(network)

        async def fill() -> None:
            try:
                while len(self.pool.setdefault(network, [])) < self.pool_size:
                    if self.pool[network]:  # one is still ready: make the next when nobody waits
                        await self._quiet.wait()
                    sandbox_id = secrets.token_hex(32)
                    config = pb.PodSandboxConfig(hostname=sandbox_id[:12], network=network)
                    rec = await self.run_sandbox(config, sandbox_id=sandbox_id, implicit_for=sandbox_id,
                                                 aliases=[sandbox_id[:12]], pooled=True)
                    if self.pool_size <= 0:
                        await self._discard(rec)
                        return
                    self.pool[network].append(rec)
            except Exception as exc:  # the pool is an optimisation: runs go the slow way
                log.warning("warm sandbox pool refill failed", extra={"network": network, "error": str(exc)})
            finally:
                self._refilling.discard(network)

        self._spawn(fill())

    async def _take_pooled(self, network: str, name: str, config: pb.PodSandboxConfig,
                           ports: list[pb.PortMapping]) -> SandboxRecord | None:
        """A warm sandbox for a new docker-style container (whose id becomes the sandbox's)."""
        records = self.pool.get(network)
        self._refill(network)
        if not records:
            return None
        rec = records.pop(0)
        self._refill(network)
        config.hostname = rec.hostname
        rec.name, rec.config = name, _msg_dict(config)
        self.records.put_sandbox(rec)
        try:
            if self.networks is not None and network not in ("host", "none"):
                await asyncio.to_thread(self.networks.rename, rec.id, name, [rec.id[:12]])
                wanted = [portmap.PortMapping(p.protocol or "tcp", p.container_port, p.host_port, p.host_ip)
                          for p in ports]
                if wanted:
                    await asyncio.to_thread(self.networks.publish, rec.id, wanted)
            await self._write_sandbox_files(rec)
        except BaseException:
            await self.remove_sandbox(rec.id)
            raise
        return rec

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --------------------------------------------------------------- lookups

    def container(self, key: str) -> ContainerRecord:
        try:
            rec = self.records.find_container(key)
        except LookupError as exc:
            raise invalid(str(exc)) from None
        if rec is None:
            raise not_found(f"No such container: {key}")
        return rec

    def sandbox(self, key: str) -> SandboxRecord:
        try:
            rec = self.records.find_sandbox(key)
        except LookupError as exc:
            raise invalid(str(exc)) from None
        if rec is None:
            raise not_found(f"No such pod sandbox: {key}")
        return rec

    def image(self, ref: str):
        from node_agent.runtime.images.store import ImageNotFound

        try:
            return self.images.get(ref)
        except ImageNotFound:
            raise not_found(f"No such image: {ref} (registries come in a later release: "
                            "import it with `ketch runtime load` or `ketch runtime import`)") from None

    # -------------------------------------------------------------- sandboxes

    async def run_sandbox(self, config: pb.PodSandboxConfig, *, sandbox_id: str = "",
                          implicit_for: str = "", name: str = "", aliases: list[str] | None = None,
                          ports: list[pb.PortMapping] | None = None, pooled: bool = False) -> SandboxRecord:
        sandbox_id = sandbox_id or secrets.token_hex(32)
        network = "none" if config.netns_path else (config.network or "bridge")
        if network != "host" and network != "none" and self.networks is None:
            raise precondition("this daemon runs without networking (--network none): use --network none")
        if network not in ("host", "none"):
            self.networks.get(network)  # NOT_FOUND early, before anything is made
        hostname = config.hostname or sandbox_id[:12]
        files_dir = self.root / "sandboxes" / sandbox_id
        files_dir.mkdir(parents=True, exist_ok=True)
        # "host": the daemon's own namespace (each shim opens /proc/self/ns/net, the one it inherited)
        # config.netns_path: the caller made that namespace and wires it (the cluster)
        host_netns = "/proc/self/ns/net" if network == "host" else (config.netns_path or None)
        try:
            sb = await self.sandboxes.create(sandbox_id, hostname, netns=host_netns)
        except BaseException:
            import shutil

            shutil.rmtree(files_dir, ignore_errors=True)
            raise
        netns_path = _sandbox_netns_path(sb)
        rec = SandboxRecord(
            id=sandbox_id, name=config.name or name or sandbox_id[:12], created_at=time.time_ns(),
            config=_msg_dict(config), hostname=hostname, network=network, netns_path=netns_path,
            files_dir=str(files_dir), implicit_for=implicit_for, labels=dict(config.labels),
            annotations=dict(config.annotations), extra_hosts=list(config.extra_hosts),
        )
        if not pooled:
            self.records.put_sandbox(rec)
        try:
            if network not in ("host", "none"):
                await asyncio.to_thread(self.networks.connect, sandbox_id, netns_path, network,
                                        name=name or rec.name, aliases=aliases or [])
                wanted = [portmap.PortMapping(p.protocol or "tcp", p.container_port, p.host_port, p.host_ip)
                          for p in list(config.port_mappings) + list(ports or [])]
                if wanted:
                    await asyncio.to_thread(self.networks.publish, sandbox_id, wanted)
            elif network == "none" and host_netns:
                # a new namespace has lo up already (the sandbox child); a joined one may not
                from node_agent.network import bridge

                await asyncio.to_thread(bridge.loopback_up, netns_path)
            await self._write_sandbox_files(rec)
            if network not in ("host", "none"):
                await self._refresh_peer_hosts(network, exclude=sandbox_id)
        except BaseException:
            if pooled:
                await self._discard(rec)
            else:
                await self.remove_sandbox(sandbox_id, force=True)
            raise
        if not pooled:
            log.info("sandbox ready", extra={"sandbox": sandbox_id, "network": network})
        return rec

    def sandbox_network(self, rec: SandboxRecord) -> pb.PodSandboxNetworkStatus:
        status = pb.PodSandboxNetworkStatus(network=rec.network)
        if self.networks is None:
            return status
        ep = self.networks.endpoint(rec.id)
        if ep and ep.interfaces:
            first = ep.interfaces[0]
            status.ip, status.gateway = first.ip, first.gateway
            status.prefix_length, status.mac_address = first.prefix_length, first.mac_address
            for iface in ep.interfaces[1:]:
                status.extra_ips[iface.network] = iface.ip
        return status

    def sandbox_ports(self, rec: SandboxRecord) -> list[pb.PublishedPort]:
        if self.networks is None:
            return []
        ep = self.networks.endpoint(rec.id)
        if not ep:
            return []
        return [pb.PublishedPort(protocol=p.protocol, container_port=p.container_port,
                                 host_port=p.host_port, host_ip=p.host_ip) for p in ep.ports]

    async def _write_sandbox_files(self, rec: SandboxRecord) -> None:
        files = Path(rec.files_dir)
        own: list[str] = []
        own_names: list[str] = []
        peers: list[tuple[str, list[str]]] = []
        if self.networks is not None and rec.network not in ("host", "none"):
            ep = self.networks.endpoint(rec.id)
            if ep:
                own = [i.ip for i in ep.interfaces]
                own_names = [n for n in [ep.name] if n]
                for iface in ep.interfaces:
                    if self.networks.writes_peer_hosts(iface.network):
                        peers += self.networks.peers(iface.network)
        if rec.network == "host":
            text = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else ""
        else:
            text = hostfiles.render_hosts(rec.hostname, own, peers, rec.extra_hosts, own_names)
        hostfiles.write_in_place(files / "hosts", text)
        hostfiles.write_in_place(files / "hostname", rec.hostname + "\n")
        hostfiles.write_in_place(files / "resolv.conf", hostfiles.render_resolv_conf())

    async def _refresh_peer_hosts(self, network: str, exclude: str = "") -> None:
        """Someone joined or left a user network: every member's /etc/hosts is rewritten."""
        if self.networks is None or not self.networks.writes_peer_hosts(network):
            return
        for sb in list(self.records.sandboxes.values()):
            if sb.id == exclude:
                continue
            ep = self.networks.endpoint(sb.id)
            if ep and any(i.network == network for i in ep.interfaces):
                await self._write_sandbox_files(sb)

    async def stop_sandbox(self, sandbox_id: str) -> None:
        """CRI: stop every process of the sandbox (the caller already gave them their grace
        period) and give back its network resources; the namespaces stay until removal."""
        rec = self.sandbox(sandbox_id)
        running = [c.id for c in self.records.containers.values()
                   if c.sandbox_id == rec.id and self._state(c.id) == "running"]
        await asyncio.gather(*(self.stop(cid, 0) for cid in running))
        if self.networks is not None and rec.network not in ("host", "none"):
            ep = self.networks.endpoint(rec.id)
            await asyncio.to_thread(self.networks.release, rec.id)
            for net in {i.network for i in ep.interfaces} if ep else ():
                await self._refresh_peer_hosts(net)
        rec.state = "notready"
        self.records.put_sandbox(rec)

    async def remove_sandbox(self, sandbox_id: str, *, force: bool = True) -> None:
        rec = self.records.sandboxes.get(sandbox_id) or self.sandbox(sandbox_id)
        for c in list(self.records.containers.values()):
            if c.sandbox_id == rec.id and not c.implicit_sandbox:
                await self.remove_container(c.id, force=True)
        networks: list[str] = []
        if self.networks is not None:
            ep = self.networks.endpoint(rec.id)
            networks = [i.network for i in ep.interfaces] if ep else []
            await asyncio.to_thread(self.networks.release, rec.id)
        with contextlib.suppress(Exception):
            await _maybe_await(self.sandboxes.remove(rec.id))
        self.records.delete_sandbox(rec.id)
        import shutil

        shutil.rmtree(rec.files_dir, ignore_errors=True)
        for net in networks:
            await self._refresh_peer_hosts(net)

    # ------------------------------------------------------------- containers

    async def _reserve_name(self, name: str, container_id: str) -> str:
        async with self._name_lock:
            if not name:
                for _ in range(100):
                    name = random_name()
                    if self.records.find_container(name) is None and name not in self._reserved_names:
                        break
            if name in self._reserved_names:
                raise conflict(f'Conflict. The container name "/{name}" is already in use')
            existing = self.records.find_container(name) if name else None
            if existing is not None and existing.name == name:
                raise conflict(f'Conflict. The container name "/{name}" is already in use by container '
                               f'"{existing.id}". You have to remove (or rename) that container to be '
                               'able to reuse that name.')
            self._reserved_names.add(name)
            return name

    async def create_container(self, req: pb.CreateContainerRequest) -> ContainerRecord:
        async with self._hot_path():
            rec = await self._create_container(req)
            self._hold_for_start(rec.id)
            return rec

    async def _create_container(self, req: pb.CreateContainerRequest) -> ContainerRecord:
        from node_agent.runtime.containers import ContainerSpec, Mount, Resources
        from node_agent.runtime.linux.users import UserNotFound, resolve_user

        cfg = req.config
        if not cfg.image:
            raise invalid("an image is required")
        container_id = secrets.token_hex(32)
        name = await self._reserve_name(cfg.name, container_id)
        made: dict[str, Any] = {}
        try:
            image = self.image(cfg.image)  # one small index read
            image_cfg = image.container_config
            argv, env, working_dir, user = merge_process(image_cfg, cfg)
            if not argv:
                raise invalid("no command specified: give one after the image, or use an image with a Cmd")
            if cfg.tty:
                env = [e for e in env if not e.startswith("TERM=")] + ["TERM=xterm"]
            # the sandbox (the one named, or one of its own) and the root filesystem, side by side
            implicit = not req.pod_sandbox_id

            sbcfg = pb.PodSandboxConfig()
            warm = None
            if implicit:
                if req.HasField("sandbox_config"):
                    sbcfg.CopyFrom(req.sandbox_config)
                sbcfg.hostname = sbcfg.hostname or cfg.hostname or ""
                sbcfg.network = sbcfg.network or cfg.network or "bridge"
                sbcfg.name = sbcfg.name or name
                sbcfg.extra_hosts.extend(cfg.extra_hosts)
                if (self.pool_size and not req.HasField("sandbox_config") and not cfg.hostname
                        and not cfg.extra_hosts and sbcfg.network in ("bridge", "none")):
                    warm = await self._take_pooled(sbcfg.network, name, sbcfg, list(cfg.port_mappings))
                    if warm is not None:  # the container takes the warm sandbox's id (and hostname)
                        container_id = warm.id
                        made["sandbox"] = container_id

            async def sandbox() -> SandboxRecord:
                if warm is not None:
                    return warm
                if not implicit:
                    named = self.sandbox(req.pod_sandbox_id)
                    if named.state != "ready":
                        raise precondition(f"pod sandbox {named.id[:12]} is stopped: run a new one")
                    return named
                sbcfg.hostname = sbcfg.hostname or container_id[:12]
                made["sandbox"] = container_id
                return await self.run_sandbox(sbcfg, sandbox_id=container_id, implicit_for=container_id,
                                              name=name, aliases=[container_id[:12]],
                                              ports=list(cfg.port_mappings))

            def root_and_user():
                made["snapshot"] = True
                rootfs = self.snapshots.prepare(container_id, image)
                try:
                    return rootfs, resolve_user(rootfs, user)
                except UserNotFound as exc:
                    raise invalid(str(exc)) from None

            mark("svc.create.image")
            got = await asyncio.gather(sandbox(), asyncio.to_thread(root_and_user), return_exceptions=True)
            mark("svc.create.sandbox+rootfs")
            for result in got:
                if isinstance(result, BaseException):
                    raise result
            sb, (rootfs, resolved_user) = got
            env = [e for e in env if not e.startswith("HOSTNAME=")] + [f"HOSTNAME={sb.hostname}"]
            if not any(e.startswith("HOME=") for e in env):
                env.append(f"HOME={resolved_user.home}")

            mounts, anonymous, named = await self._resolve_mounts(cfg, image_cfg, Path(rootfs), container_id)
            made["anonymous"] = anonymous
            files = Path(sb.files_dir)
            destinations = {m["destination"] for m in mounts}
            for fname in ("hosts", "hostname", "resolv.conf"):
                if f"/etc/{fname}" not in destinations and (files / fname).exists():
                    mounts.append({"type": "bind", "source": str(files / fname),
                                   "destination": f"/etc/{fname}", "read_only": False, "options": []})

            res = cfg.resources
            resources = Resources(
                memory_bytes=res.memory_bytes or None,
                cpu_quota_us=res.cpu_quota_us or None,
                cpu_period_us=res.cpu_period_us or 100_000,
                cpu_shares=res.cpu_shares or None,
                pids_limit=res.pids_limit or None,
            )
            log_path = cfg.log_path or str(self.root / "containers" / container_id / "container.log")
            stop_signal = cfg.stop_signal or image_cfg.get("StopSignal") or "SIGTERM"
            parse_signal(stop_signal)
            labels = dict(image_cfg.get("Labels") or {})
            labels.update(cfg.labels)
            spec = ContainerSpec(
                id=container_id, name=name, image=image.id, rootfs=str(rootfs), args=argv, env=env,
                cwd=working_dir, uid=resolved_user.uid, gid=resolved_user.gid,
                additional_gids=list(resolved_user.additional_gids), hostname=sb.hostname,
                tty=cfg.tty, stdin=cfg.stdin, stdin_once=cfg.stdin_once,
                mounts=[Mount(source=m["source"], destination=m["destination"], type=m["type"],
                              read_only=m["read_only"], options=list(m["options"])) for m in mounts],
                resources=resources, read_only_rootfs=cfg.read_only_rootfs,
                cap_add=list(cfg.cap_add), cap_drop=list(cfg.cap_drop), privileged=cfg.privileged,
                sandbox_id=sb.id, labels=labels, annotations=dict(cfg.annotations), log_path=log_path,
                stop_signal=stop_signal,
            )
            rec = ContainerRecord(
                id=container_id, name=name, image=cfg.image, image_id=image.id, sandbox_id=sb.id,
                implicit_sandbox=implicit, created_at=time.time_ns(), config=_msg_dict(cfg),
                args=argv, env=env, working_dir=working_dir, user=user, uid=resolved_user.uid,
                gid=resolved_user.gid, hostname=sb.hostname, tty=cfg.tty, stdin=cfg.stdin,
                mounts=mounts, log_path=log_path, rootfs=str(rootfs), stop_signal=stop_signal,
                auto_remove=cfg.auto_remove, anonymous_volumes=anonymous, named_volumes=named,
                labels=labels, annotations=dict(cfg.annotations),
            )
            mark("svc.create.spec")
            await self.containers.create(spec)
            mark("svc.create.shim")
            made["container"] = True
            self.records.put_container(rec)
            made["record"] = True
        except BaseException:
            await self._undo_create(container_id, made)
            raise
        finally:
            self._reserved_names.discard(name)
        log.info("container created", extra={"container": container_id, "container_name": name, "image": cfg.image})
        return rec

    async def _undo_create(self, container_id: str, made: dict) -> None:
        if made.get("record"):
            self.records.delete_container(container_id)
        if made.get("container"):
            with contextlib.suppress(Exception):
                await self.containers.remove(container_id, force=True)
        if made.get("snapshot"):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.snapshots.remove, container_id)
        for vol in made.get("anonymous") or []:
            with contextlib.suppress(Exception):
                self.volumes.remove(vol, force=True)
        if made.get("sandbox"):
            with contextlib.suppress(Exception):
                await self.remove_sandbox(made["sandbox"])

    async def _resolve_mounts(self, cfg: pb.ContainerConfig, image_cfg: dict, rootfs: Path,
                              container_id: str) -> tuple[list[dict], list[str], list[str]]:
        mounts: list[dict] = []
        anonymous: list[str] = []
        named: list[str] = []
        for m in cfg.mounts:
            if not m.destination.startswith("/"):
                raise invalid(f"invalid mount destination {m.destination!r}: must be an absolute path")
            kind = m.type or "bind"
            entry = {"type": kind, "source": m.source, "destination": m.destination,
                     "read_only": m.read_only, "options": list(m.options)}
            if kind == "bind":
                if not m.source.startswith("/"):
                    raise invalid(f"invalid bind source {m.source!r}: must be an absolute path")
                if not os.path.exists(m.source):
                    raise invalid(f"invalid mount config: bind source path does not exist: {m.source}")
            elif kind == "volume":
                fresh = not m.source or not self.volumes.exists(m.source)
                try:
                    vol = self.volumes.create(m.source, anonymous=not m.source)
                except VolumeError as exc:
                    raise invalid(str(exc)) from None
                (anonymous if vol.anonymous else named).append(vol.name)
                if fresh:
                    await asyncio.to_thread(self._copy_up, vol.name, rootfs, m.destination)
                entry.update(type="bind", source=vol.mountpoint, volume=vol.name)
            elif kind == "tmpfs":
                entry["source"] = "tmpfs"
            else:
                raise invalid(f"unknown mount type {kind!r}: bind, volume or tmpfs")
            mounts.append(entry)
        taken = {m["destination"].rstrip("/") or "/" for m in mounts}
        for dest in sorted((image_cfg.get("Volumes") or {}).keys()):
            if (dest.rstrip("/") or "/") in taken:
                continue
            vol = self.volumes.create("", anonymous=True, labels={"ketch.container": container_id})
            anonymous.append(vol.name)
            await asyncio.to_thread(self._copy_up, vol.name, rootfs, dest)
            mounts.append({"type": "bind", "source": vol.mountpoint, "destination": dest,
                           "read_only": False, "options": [], "volume": vol.name})
        return mounts, anonymous, named

    def _copy_up(self, volume: str, rootfs: Path, destination: str) -> None:
        source = rootfs / destination.lstrip("/")
        try:
            resolved = source.resolve()
            if str(resolved).startswith(str(rootfs.resolve())):
                self.volumes.copy_up(volume, resolved)
        except OSError as exc:
            log.warning("volume copy-up failed", extra={"volume": volume, "error": str(exc)})

    def _state(self, container_id: str) -> str:
        try:
            return self.containers.status(container_id).state
        except Exception:
            return "unknown"

    async def start(self, key: str) -> None:
        rec = self.container(key)
        try:
            async with self._hot_path():
                self._release_hold(rec.id)
                await self.containers.start(rec.id)
        except BaseException:
            if rec.auto_remove:  # --rm: a container that cannot start goes too (as with docker)
                try:
                    await self.remove_container(rec.id, force=True, remove_volumes=True)
                except Exception as exc:  # logged, the container stays for `rm`
                    log.warning("auto-remove after a failed start failed",
                                extra={"container": rec.id, "error": f"{type(exc).__name__}: {exc}"})
            raise
        if rec.auto_remove:
            self._watch_auto_remove(rec.id)

    async def removed(self, container_id: str, timeout: float = 15) -> None:
        """Until an auto-removed container is gone (as `docker run --rm` returns only then)."""
        done = self._auto_removed.get(container_id)
        if done is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout)

    def _watch_auto_remove(self, container_id: str) -> None:
        done = self._auto_removed.setdefault(container_id, asyncio.Event())

        async def remove_when_exited() -> None:
            try:
                await self.containers.wait(container_id)
                for _ in range(2000):  # let attached streams drain the log first (10 s at most)
                    if not self.attached.get(container_id):
                        break
                    await asyncio.sleep(0.005)
                if container_id in self.records.containers:
                    # `run --rm` answers once the container is hidden; unmounting its root and
                    # tearing down its sandbox go on meanwhile (recover() finishes them after a crash)
                    await self.remove_container(container_id, force=True, remove_volumes=True,
                                                on_hidden=done.set)
            except Exception as exc:  # logged, the container stays for `rm`
                log.warning("auto-remove failed", extra={"container": container_id, "error": str(exc)})
            finally:
                done.set()
                self._auto_removed.pop(container_id, None)

        self._spawn(remove_when_exited())

    async def stop(self, key: str, timeout: float) -> None:
        rec = self.container(key)
        if self._state(rec.id) != "running":
            return
        await self.containers.stop(rec.id, timeout)  # the spec carries the stop signal

    async def kill(self, key: str, signal_text: str) -> None:
        rec = self.container(key)
        if self._state(rec.id) != "running":
            raise precondition(f"Container {rec.id[:12]} is not running")
        await self.containers.kill(rec.id, parse_signal(signal_text))

    async def remove_container(self, key: str, *, force: bool = False, remove_volumes: bool = False,
                               on_hidden=None) -> None:
        """`on_hidden()` is called once the container is gone from every listing, its name free
        and its volumes removed: what is left (root filesystem, sandbox) is invisible."""
        rec = self.container(key)
        state = self._state(rec.id)
        if state == "running" and not force:
            raise precondition(f"You cannot remove a running container {rec.id}. "
                               "Stop the container before attempting removal or force remove")
        mark("svc.remove")
        if on_hidden is not None:
            # hidden first: a crash from here on leaves a container without a record, which
            # recover() removes with its root filesystem and sandbox
            self._hide(rec, remove_volumes=True)
            on_hidden()
            await self._quiet.wait()    # the rest is invisible: it need not compete with a create
        await self.containers.remove(rec.id, force=force)
        mark("svc.remove.container")
        await self._cleanup_after_remove(rec, remove_volumes=remove_volumes or rec.auto_remove)
        mark("svc.removed")
        log.info("container removed", extra={"container": rec.id, "container_name": rec.name})

    def _hide(self, rec: ContainerRecord, *, remove_volumes: bool) -> None:
        """Out of every listing, its name free, its anonymous volumes gone (idempotent)."""
        self.records.delete_container(rec.id)
        if remove_volumes:
            for vol in rec.anonymous_volumes:
                with contextlib.suppress(VolumeError, OSError):
                    self.volumes.remove(vol, used_by=self.records.volume_users(vol))

    async def _cleanup_after_remove(self, rec: ContainerRecord, *, remove_volumes: bool = True) -> None:
        self._hide(rec, remove_volumes=remove_volumes)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.snapshots.remove, rec.id)
        mark("svc.remove.snapshot")
        if rec.implicit_sandbox and rec.sandbox_id in self.records.sandboxes:
            await self.remove_sandbox(rec.sandbox_id)

    def status(self, key: str) -> pb.ContainerStatus:
        rec = self.container(key)
        st = self.containers.status(rec.id)
        return self._status_pb(rec, st)

    def _status_pb(self, rec: ContainerRecord, st: Any) -> pb.ContainerStatus:
        state = getattr(st, "state", "unknown")
        out = pb.ContainerStatus(
            id=rec.id, name=rec.name, pod_sandbox_id=rec.sandbox_id,
            state=STATE_TO_PB.get(state, pb.CONTAINER_UNKNOWN),
            created_at=getattr(st, "created_at", 0) or rec.created_at,
            started_at=getattr(st, "started_at", 0) or 0,
            finished_at=getattr(st, "finished_at", 0) or 0,
            exit_code=getattr(st, "exit_code", 0) or 0,
            reason=getattr(st, "reason", "") or "",
            message=getattr(st, "message", "") or "",
            image=rec.image, image_ref=rec.image_id, labels=rec.labels, annotations=rec.annotations,
            log_path=rec.log_path, pid=getattr(st, "pid", 0) or 0, args=rec.args, env=rec.env,
            working_dir=rec.working_dir, user=rec.user, hostname=rec.hostname, tty=rec.tty,
            stdin=rec.stdin, rootfs=rec.rootfs, stop_signal=rec.stop_signal,
        )
        for m in rec.mounts:
            out.mounts.add(type=m.get("volume") and "volume" or m["type"], source=m["source"],
                           destination=m["destination"], read_only=m["read_only"],
                           options=m.get("options", []))
        json_format.ParseDict(rec.config, out.config, ignore_unknown_fields=True)
        sb = self.records.sandboxes.get(rec.sandbox_id)
        if sb is not None:
            out.network.CopyFrom(self.sandbox_network(sb))
            out.ports.extend(self.sandbox_ports(sb))
        out.status_text = status_text(state, out.exit_code, out.started_at, out.finished_at)
        return out

    def list_containers(self, flt: pb.ContainerFilter) -> list[pb.Container]:
        statuses = {st.id: st for st in self.containers.list()}
        out = []
        for rec in sorted(self.records.containers.values(), key=lambda r: -r.created_at):
            st = statuses.get(rec.id)
            state = getattr(st, "state", "unknown")
            if not flt.all and state != "running":
                continue
            if flt.id and not (rec.id.startswith(flt.id) or rec.name == flt.id.lstrip("/")):
                continue
            if flt.pod_sandbox_id and rec.sandbox_id != flt.pod_sandbox_id:
                continue
            if any(rec.labels.get(k) != v for k, v in flt.label_selector.items()):
                continue
            c = pb.Container(
                id=rec.id, pod_sandbox_id=rec.sandbox_id, name=rec.name, image=rec.image,
                image_ref=rec.image_id, state=STATE_TO_PB.get(state, pb.CONTAINER_UNKNOWN),
                created_at=rec.created_at, labels=rec.labels, annotations=rec.annotations, args=rec.args,
                status_text=status_text(state, getattr(st, "exit_code", 0) or 0,
                                        getattr(st, "started_at", 0) or 0, getattr(st, "finished_at", 0) or 0),
            )
            sb = self.records.sandboxes.get(rec.sandbox_id)
            if sb is not None:
                c.ports.extend(self.sandbox_ports(sb))
            out.append(c)
        return out

    def stats(self, rec: ContainerRecord) -> pb.ContainerStats:
        raw = self.containers.stats(rec.id) or {}
        res = rec.config.get("resources") or {}
        return pb.ContainerStats(
            container_id=rec.id, name=rec.name, timestamp=time.time_ns(),
            cpu_usage_ns=int(raw.get("cpu_usage_ns", 0) or 0),
            memory_working_set_bytes=int(raw.get("memory_working_set_bytes", 0) or 0),
            memory_usage_bytes=int(raw.get("memory_usage_bytes", 0) or 0),
            memory_limit_bytes=int(raw.get("memory_limit_bytes", 0) or res.get("memory_bytes", 0) or 0),
            pids=int(raw.get("pids", 0) or 0),
            pids_limit=int(raw.get("pids_limit", 0) or res.get("pids_limit", 0) or 0),
        )


async def _maybe_await(value):
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value


def _sandbox_netns_path(sb: Any) -> str:
    """The bind-mounted network namespace file of a SandboxManager sandbox."""
    for attr in ("netns_path", "net_path"):
        value = getattr(sb, attr, None)
        if value:
            return str(value)
    ns = getattr(sb, "ns_paths", None) or getattr(sb, "namespaces", None)
    if isinstance(ns, dict) and ns.get("net"):
        return str(ns["net"])
    ns_dir = getattr(sb, "ns_dir", None)
    if ns_dir:
        return str(Path(ns_dir) / "net")
    raise TypeError(f"cannot find the network namespace path of sandbox {sb!r}")


# ------------------------------------------------------------------ errors


def _grpc_code(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    from node_agent.runtime.images.store import ImageConflict, ImageNotFound, InvalidImage

    if isinstance(exc, RuntimeError_):
        return exc.code, str(exc)
    if isinstance(exc, (ImageNotFound, VolumeNotFound, NetworkNotFound)):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, (ImageConflict, VolumeInUse, NetworkInUse)):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, NetworkExists):
        return grpc.StatusCode.ALREADY_EXISTS, str(exc)
    if isinstance(exc, (InvalidImage, VolumeError, NetworkError, portmap.PortSpecError, ValueError)):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, KeyError):
        return grpc.StatusCode.NOT_FOUND, str(exc.args[0] if exc.args else exc)
    if isinstance(exc, FileNotFoundError):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    return None


def _manager_code(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """ContainerManager errors, by class name (its module is imported lazily)."""
    from node_agent.runtime.containers import ContainerError, ExecTimeout
    from node_agent.runtime.sandbox import SandboxError

    if isinstance(exc, ExecTimeout):
        return grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
    if isinstance(exc, (ContainerError, SandboxError)):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    return None


async def _abort_for(exc: BaseException, context: grpc.aio.ServicerContext, method: str):
    mapped = _manager_code(exc) or _grpc_code(exc)
    if mapped is None:
        log.exception("rpc failed", extra={"method": method})
        mapped = (grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
    await context.abort(mapped[0], mapped[1])


def unary(fn):
    @functools.wraps(fn)
    async def wrapper(self, request, context):
        try:
            return await fn(self, request, context)
        except asyncio.CancelledError:
            raise
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_for(exc, context, fn.__name__)

    return wrapper


def streaming(fn):
    @functools.wraps(fn)
    async def wrapper(self, request, context):
        try:
            async for item in fn(self, request, context):
                yield item
        except asyncio.CancelledError:
            raise
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_for(exc, context, fn.__name__)

    return wrapper


# ---------------------------------------------------------------- servicers


class RuntimeServicer(pb_grpc.RuntimeServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @unary
    async def Version(self, request, context):
        return pb.VersionResponse(version=VERSION, runtime_name="ketch", runtime_version=VERSION,
                                  runtime_api_version=API_VERSION, cgroup_mode=self.rt.cgroup_mode,
                                  root=str(self.rt.root), pid=os.getpid())

    # sandboxes

    @unary
    async def RunPodSandbox(self, request, context):
        rec = await self.rt.run_sandbox(request.config)
        return pb.RunPodSandboxResponse(pod_sandbox_id=rec.id)

    @unary
    async def StopPodSandbox(self, request, context):
        await self.rt.stop_sandbox(request.pod_sandbox_id)
        return pb.StopPodSandboxResponse()

    @unary
    async def RemovePodSandbox(self, request, context):
        if self.rt.records.find_sandbox(request.pod_sandbox_id) is not None:
            await self.rt.remove_sandbox(self.rt.sandbox(request.pod_sandbox_id).id)
        return pb.RemovePodSandboxResponse()

    def _sandbox_pb(self, rec: SandboxRecord) -> pb.PodSandbox:
        out = pb.PodSandbox(
            id=rec.id, state=pb.SANDBOX_READY if rec.state == "ready" else pb.SANDBOX_NOTREADY,
            created_at=rec.created_at, netns_path=rec.netns_path, labels=rec.labels,
            annotations=rec.annotations,
        )
        json_format.ParseDict(rec.config, out.config, ignore_unknown_fields=True)
        out.network.CopyFrom(self.rt.sandbox_network(rec))
        return out

    @unary
    async def PodSandboxStatus(self, request, context):
        return pb.PodSandboxStatusResponse(status=self._sandbox_pb(self.rt.sandbox(request.pod_sandbox_id)))

    @unary
    async def ListPodSandbox(self, request, context):
        items = [self._sandbox_pb(s) for s in self.rt.records.sandboxes.values()
                 if all(s.labels.get(k) == v for k, v in request.label_selector.items())]
        return pb.ListPodSandboxResponse(items=items)

    # containers

    @unary
    async def CreateContainer(self, request, context):
        mark("svc.create")
        rec = await self.rt.create_container(request)
        mark("svc.created")
        return pb.CreateContainerResponse(container_id=rec.id)

    @unary
    async def StartContainer(self, request, context):
        mark("svc.start")
        await self.rt.start(request.container_id)
        mark("svc.started")
        return pb.StartContainerResponse()

    @unary
    async def StopContainer(self, request, context):
        await self.rt.stop(request.container_id, float(request.timeout))
        return pb.StopContainerResponse()

    @unary
    async def KillContainer(self, request, context):
        await self.rt.kill(request.container_id, request.signal)
        return pb.KillContainerResponse()

    @unary
    async def RemoveContainer(self, request, context):
        await self.rt.remove_container(request.container_id, force=request.force,
                                       remove_volumes=request.remove_volumes)
        return pb.RemoveContainerResponse()

    @unary
    async def ListContainers(self, request, context):
        return pb.ListContainersResponse(containers=self.rt.list_containers(request.filter))

    @unary
    async def ContainerStatus(self, request, context):
        return pb.ContainerStatusResponse(status=self.rt.status(request.container_id))

    @unary
    async def WaitContainer(self, request, context):
        rec = self.rt.container(request.container_id)
        st = await self.rt.containers.wait(rec.id)
        mark("svc.waited")
        return pb.WaitContainerResponse(exit_code=st.exit_code or 0, reason=st.reason or "")

    # exec / attach

    @unary
    async def ExecSync(self, request, context):
        rec = self.rt.container(request.container_id)
        if self.rt._state(rec.id) != "running":
            raise precondition(f"container {rec.id[:12]} is not running")
        code, out, err = await self.rt.containers.exec_sync(rec.id, list(request.cmd),
                                                            float(request.timeout) or None)
        return pb.ExecSyncResponse(stdout=out, stderr=err, exit_code=code)

    @streaming
    async def Exec(self, request_iterator, context):
        first = await anext(request_iterator, None)
        if first is None or first.WhichOneof("msg") != "start":
            raise invalid("the first Exec message must be `start`")
        start = first.start
        rec = self.rt.container(start.container_id)
        if self.rt._state(rec.id) != "running":
            raise precondition(f"container {rec.id[:12]} is not running")
        if not start.cmd:
            raise invalid("exec needs a command")
        options = _exec_options(start)
        if start.user:
            options.update(await _exec_user(rec, start.user))
        proc = await self.rt.containers.exec_stream(rec.id, list(start.cmd), start.tty, start.stdin, **options)
        async for msg in _pump(proc, request_iterator, start.size if start.HasField("size") else None):
            yield msg

    @streaming
    async def Attach(self, request_iterator, context):
        first = await anext(request_iterator, None)
        if first is None or first.WhichOneof("msg") != "start":
            raise invalid("the first Attach message must be `start`")
        start = first.start
        rec = self.rt.container(start.container_id)
        if start.logs:  # replay what the log holds, then follow it to the exit
            async for msg in self._stream_log_until_exit(rec, from_start=True):
                yield msg
            return
        state = self.rt._state(rec.id)
        if state == "exited" or (state == "created" and not start.start_container):
            raise precondition(f"You cannot attach to a stopped container {rec.id[:12]}, start it first")
        # attached before the start, so not a byte of output is missed
        self.rt.attached[rec.id] = self.rt.attached.get(rec.id, 0) + 1
        exit_message = None
        try:
            proc = await self.rt.containers.attach(rec.id, stdin=start.stdin)
            if start.start_container:
                try:
                    await self.rt.start(rec.id)
                except BaseException:
                    await proc.close()
                    raise
            async for msg in _pump(proc, request_iterator if start.stdin else None,
                                   start.size if start.HasField("size") else None,
                                   status=lambda: self.rt.containers.status(rec.id)):
                if msg.exited and rec.auto_remove:
                    exit_message = msg      # sent once the container is gone
                    continue
                yield msg
        finally:
            self.rt.attached[rec.id] -= 1
            if not self.rt.attached[rec.id]:
                del self.rt.attached[rec.id]
        if exit_message is not None:
            # `run --rm` returns when the container is removed, so what follows never sees it
            await self.rt.removed(rec.id)
            yield exit_message

    async def _stream_log_until_exit(self, rec: ContainerRecord, *, from_start: bool):
        self.rt.attached[rec.id] = self.rt.attached.get(rec.id, 0) + 1
        done = asyncio.Event()
        waiter = asyncio.create_task(self.rt.containers.wait(rec.id))
        waiter.add_done_callback(lambda _t: done.set())
        try:
            async for entry in log_entries(rec.log_path, tail=-1 if from_start else 0, follow=True,
                                           finished=done.is_set):
                yield pb.StreamResponse(stream=pb.STDERR if entry.stream == "stderr" else pb.STDOUT,
                                        data=entry.render(False))
            st = await waiter
            yield pb.StreamResponse(exited=True, exit_code=st.exit_code or 0, reason=st.reason or "")
        finally:
            if not waiter.done():
                waiter.cancel()
            self.rt.attached[rec.id] -= 1
            if not self.rt.attached[rec.id]:
                del self.rt.attached[rec.id]

    # stats, events, logs

    @unary
    async def ContainerStats(self, request, context):
        rec = self.rt.container(request.container_id)
        return pb.ContainerStatsResponse(stats=self.rt.stats(rec))

    @unary
    async def ListContainerStats(self, request, context):
        out = []
        for c in self.rt.list_containers(request.filter):
            with contextlib.suppress(Exception):
                out.append(self.rt.stats(self.rt.records.containers[c.id]))
        return pb.ListContainerStatsResponse(stats=out)

    @streaming
    async def GetEvents(self, request, context):
        async for ev in self.rt.containers.events():
            cid = ev.get("container_id", "")
            rec = self.rt.records.containers.get(cid)
            yield pb.ContainerEvent(
                container_id=cid, type=ev.get("type", ""), timestamp=int(ev.get("timestamp", 0) or 0),
                name=rec.name if rec else ev.get("name", ""), exit_code=int(ev.get("exit_code", 0) or 0),
                pod_sandbox_id=rec.sandbox_id if rec else "",
            )

    @streaming
    async def ReadLogs(self, request, context):
        rec = self.rt.container(request.container_id)
        cid = rec.id
        async for entry in log_entries(rec.log_path, tail=request.tail if request.HasField("tail") else -1,
                                       since_ns=request.since, follow=request.follow,
                                       finished=lambda: self.rt._state(cid) in ("exited", "unknown"),
                                       poll=0.02):
            yield _log_pb(entry)


async def log_entries(path: str, *, tail: int = -1, since_ns: int = 0, follow: bool = False,
                      finished=lambda: True, poll: float = 0.005) -> AsyncIterator:
    """LogEntry items of a CRI log: the last `tail` lines (-1: all) since `since_ns`, then,
    with `follow`, new ones as they are written until `finished()` and the file is drained.

    The live file is opened before anything is read and then read on from where the
    first read stopped, so no line slips between the backlog and the follow; a size
    rotation (the live file replaced) is followed too.
    """
    from node_agent.runtime import logs

    def open_live():
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return None, None
        return f, os.fstat(f.fileno()).st_ino

    def parse(data: bytes, pending: bytes) -> tuple[list, bytes]:
        *lines, pending = (pending + data).split(b"\n")
        return [e for e in (logs.parse_line(raw) for raw in lines) if e is not None], pending

    f, inode = open_live()
    try:
        backlog = []
        for name in logs.log_files(path)[:-1] if f is not None else logs.log_files(path):
            backlog += await asyncio.to_thread(lambda n=name: list(logs.read_entries(n)))
        pending = b""
        if f is not None:
            fresh, pending = parse(await asyncio.to_thread(f.read), pending)
            backlog += fresh
        if since_ns:
            backlog = [e for e in backlog if e.time_ns >= since_ns]
        for entry in logs.tail_entries(backlog, tail):
            yield entry
        if not follow:
            return
        delay = poll
        while True:
            done = finished()  # read once more after the end is known
            if f is None:
                f, inode = open_live()
            chunk = f.read() if f is not None else b""
            if chunk:
                delay = poll
                fresh, pending = parse(chunk, pending)
                for entry in fresh:
                    yield entry
                continue
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = inode
            if f is not None and current != inode:  # rotated: the old file is drained, take the new
                f.close()
                f, pending = None, b""
                continue
            if done:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
    finally:
        if f is not None:
            f.close()


def _log_pb(entry) -> pb.LogEntry:
    return pb.LogEntry(timestamp=entry.time_ns, stream=pb.STDERR if entry.stream == "stderr" else pb.STDOUT,
                       data=entry.content if entry.partial else entry.content + b"\n", partial=entry.partial)


def _exec_options(start: pb.ExecStart) -> dict:
    opts: dict[str, Any] = {}
    if start.env:
        opts["env"] = [f"{kv.key}={kv.value}" for kv in start.env]
    if start.working_dir:
        opts["cwd"] = start.working_dir
    if start.HasField("size"):
        opts["width"], opts["height"] = start.size.width, start.size.height
    return opts


async def _exec_user(rec: ContainerRecord, user: str) -> dict:
    """uid, gid and supplementary gids for `exec -u`, looked up in the container's own
    /etc/passwd and /etc/group (as they are now, writes included), as Docker does."""
    from node_agent.runtime.linux.users import UserNotFound, resolve_user

    try:
        resolved = await asyncio.to_thread(resolve_user, rec.rootfs, user)
    except UserNotFound as exc:
        raise invalid(str(exc)) from None
    return {"uid": resolved.uid, "gid": resolved.gid, "additional_gids": list(resolved.additional_gids)}


async def _pump(proc: Any, request_iterator, size: pb.TerminalSize | None, status=None):
    """Shuttle a ProcessIO: requests (stdin, resize, close) in, output and the exit out."""
    if size is not None and (size.width or size.height):
        with contextlib.suppress(Exception):
            await proc.resize(size.width, size.height)

    async def feed() -> None:
        if request_iterator is None:
            return
        async for req in request_iterator:
            kind = req.WhichOneof("msg")
            if kind == "stdin":
                await proc.write_stdin(req.stdin)
            elif kind == "resize":
                await proc.resize(req.resize.width, req.resize.height)
            elif kind == "close_stdin":
                await proc.close_stdin()

    feeder = asyncio.create_task(feed())
    try:
        while True:
            item = await proc.read()
            if not item:
                break
            stream, data = item
            yield pb.StreamResponse(stream=pb.STDERR if stream == "stderr" else pb.STDOUT, data=data)
        code = await proc.wait()
        reason = ""
        if status is not None:
            with contextlib.suppress(Exception):
                st = status()
                if st.state == "exited":
                    code = st.exit_code if st.exit_code is not None else code
                    reason = st.reason or ""
        yield pb.StreamResponse(exited=True, exit_code=code if code is not None else 0, reason=reason)
    finally:
        feeder.cancel()
        with contextlib.suppress(BaseException):
            await feeder
        with contextlib.suppress(Exception):
            await _maybe_await(proc.close())


# ---------------------------------------------------------------- images


def image_pb(image, *, with_config: bool = True) -> pb.Image:
    import json

    from node_agent.runtime.images import references

    digests = []
    for tag in image.repo_tags:
        with contextlib.suppress(Exception):
            digests.append(f"{references.parse(tag).name}@{image.digest}")
    return pb.Image(id=image.id, repo_tags=list(image.repo_tags), repo_digests=digests, size=image.size,
                    created=image.created or "", layers=list(image.layers), digest=image.digest,
                    config_json=json.dumps(image.config).encode() if with_config else b"")


class ImageServicer(pb_grpc.ImageServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @unary
    async def ListImages(self, request, context):
        images = await asyncio.to_thread(self.rt.images.list)
        if request.reference:
            from node_agent.runtime.images import references

            want = request.reference
            with contextlib.suppress(Exception):
                want = str(references.parse(want))
            images = [i for i in images if any(t == want or t.rsplit(":", 1)[0] == want.rsplit(":", 1)[0]
                                               for t in i.repo_tags)]
        return pb.ListImagesResponse(images=[image_pb(i, with_config=False) for i in images])

    @unary
    async def ImageStatus(self, request, context):
        image = await asyncio.to_thread(self.rt.image, request.image)
        return pb.ImageStatusResponse(image=image_pb(image))

    @streaming
    async def PullImage(self, request, context):
        from node_agent.runtime.images.store import ImageNotFound

        try:
            image = await asyncio.to_thread(self.rt.images.get, request.image)
        except ImageNotFound:
            raise RuntimeError_(grpc.StatusCode.UNIMPLEMENTED,
                                f"cannot pull {request.image}: pulling from registries comes in a later "
                                "release; load it with `ketch runtime load -i image.tar` or "
                                "`ketch runtime import rootfs.tar --name NAME`") from None
        yield pb.PullImageProgress(status=f"Image is up to date for {request.image}", image_id=image.id)

    @unary
    async def RemoveImage(self, request, context):
        in_use = {rec.image_id for rec in self.rt.records.containers.values()}
        lines = await asyncio.to_thread(self.rt.images.remove, request.image, force=request.force,
                                        in_use=in_use)
        return pb.RemoveImageResponse(deleted=lines)

    @unary
    async def ImportImage(self, request, context):
        import json

        path = request.path
        if not os.path.isabs(path):
            raise invalid(f"import path must be absolute on the daemon's host: {path!r}")
        if not os.path.exists(path):
            raise not_found(f"no such file: {path}")
        fmt = request.format or ("rootfs" if request.reference else "")
        if fmt == "rootfs":
            config = json.loads(request.config_json) if request.config_json else None
            image = await asyncio.to_thread(self.rt.images.import_rootfs, path, request.reference or None,
                                            config)
            images = [image]
        else:
            images = await asyncio.to_thread(self.rt.images.import_archive, path)
        return pb.ImportImageResponse(images=[image_pb(i, with_config=False) for i in images])

    @unary
    async def ExportImage(self, request, context):
        if not request.images:
            raise invalid("give at least one image to export")
        if not os.path.isabs(request.path):
            raise invalid(f"export path must be absolute on the daemon's host: {request.path!r}")
        await asyncio.to_thread(self.rt.images.export, list(request.images), request.path,
                                fmt=request.format or "docker")
        return pb.ExportImageResponse()

    @unary
    async def TagImage(self, request, context):
        await asyncio.to_thread(self.rt.images.tag, request.source, request.target)
        return pb.TagImageResponse()

    @unary
    async def ImageFsInfo(self, request, context):
        import json

        usage = await asyncio.to_thread(self.rt.images.disk_usage)
        return pb.ImageFsInfoResponse(mountpoint=str(self.rt.images.root),
                                      used_bytes=int(usage.get("total_bytes", 0)),
                                      usage_json=json.dumps(usage))


# ---------------------------------------------------------------- volumes


class VolumeServicer(pb_grpc.VolumeServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def _pb(self, vol) -> pb.Volume:
        return pb.Volume(name=vol.name, driver=vol.driver, mountpoint=vol.mountpoint,
                         created_at=vol.created_at, labels=vol.labels, anonymous=vol.anonymous,
                         used_by=self.rt.records.volume_users(vol.name))

    @unary
    async def CreateVolume(self, request, context):
        return self._pb(self.rt.volumes.create(request.name, labels=dict(request.labels)))

    @unary
    async def ListVolumes(self, request, context):
        return pb.ListVolumesResponse(volumes=[self._pb(v) for v in self.rt.volumes.list()])

    @unary
    async def InspectVolume(self, request, context):
        return self._pb(self.rt.volumes.get(request.name))

    @unary
    async def RemoveVolume(self, request, context):
        users = self.rt.records.volume_users(request.name)
        await asyncio.to_thread(self.rt.volumes.remove, request.name, used_by=users, force=request.force)
        return pb.RemoveVolumeResponse()


# ---------------------------------------------------------------- networks


class NetworkServicer(pb_grpc.NetworkServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def _nets(self) -> Networks:
        if self.rt.networks is None:
            raise precondition("this daemon runs without networking")
        return self.rt.networks

    def _pb(self, record) -> pb.Network:
        out = pb.Network(name=record.name, id=record.id, driver="bridge", bridge=record.bridge,
                         subnet=record.subnet, gateway=record.gateway, created_at=record.created_at,
                         labels=record.labels, builtin=record.builtin)
        for ep in self._nets().endpoints():
            for iface in ep.interfaces:
                if iface.network == record.name:
                    sb = self.rt.records.sandboxes.get(ep.owner)
                    if sb is None:  # a warm sandbox nobody has taken yet
                        continue
                    cid = sb.implicit_for or ep.owner
                    out.endpoints.add(container_id=cid, name=ep.name, ip=iface.ip,
                                      mac_address=iface.mac_address)
        return out

    @unary
    async def CreateNetwork(self, request, context):
        record = await asyncio.to_thread(self._nets().create, request.name, subnet=request.subnet,
                                         gateway=request.gateway, labels=dict(request.labels))
        return self._pb(record)

    @unary
    async def ListNetworks(self, request, context):
        nets = [self._pb(r) for r in self._nets().list()]
        for name in BUILTIN[1:]:
            nets.append(pb.Network(name=name, id=name, driver=name, builtin=True))
        return pb.ListNetworksResponse(networks=nets)

    @unary
    async def InspectNetwork(self, request, context):
        if request.name in BUILTIN[1:]:
            return pb.Network(name=request.name, id=request.name, driver=request.name, builtin=True)
        return self._pb(self._nets().get(request.name))

    @unary
    async def RemoveNetwork(self, request, context):
        await asyncio.to_thread(self._nets().remove, request.name)
        return pb.RemoveNetworkResponse()

    @unary
    async def ConnectNetwork(self, request, context):
        rec = self.rt.container(request.container_id)
        sb = self.rt.records.sandboxes.get(rec.sandbox_id)
        if sb is None or sb.network in ("host", "none"):
            raise precondition(f"container {rec.name} has no bridge network to add to")
        await asyncio.to_thread(self._nets().connect, sb.id, sb.netns_path, request.network,
                                name=rec.name, aliases=[rec.id[:12]])
        await self.rt._write_sandbox_files(sb)
        await self.rt._refresh_peer_hosts(request.network, exclude=sb.id)
        return pb.ConnectNetworkResponse()


def servicers(runtime: Runtime) -> dict[str, Any]:
    """Service name (as in runtime.proto) -> servicer; shared by gRPC and the JSON gateway."""
    return {
        "RuntimeService": RuntimeServicer(runtime),
        "ImageService": ImageServicer(runtime),
        "VolumeService": VolumeServicer(runtime),
        "NetworkService": NetworkServicer(runtime),
    }


def add_services(server: grpc.aio.Server, services: dict[str, Any]) -> None:
    pb_grpc.add_RuntimeServiceServicer_to_server(services["RuntimeService"], server)
    pb_grpc.add_ImageServiceServicer_to_server(services["ImageService"], server)
    pb_grpc.add_VolumeServiceServicer_to_server(services["VolumeService"], server)
    pb_grpc.add_NetworkServiceServicer_to_server(services["NetworkService"], server)
