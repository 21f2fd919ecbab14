"""`ketch-runtime`: the runtime daemon serving proto/runtime.proto on a unix socket.

SIGTERM/SIGINT stop the daemon gracefully and leave every container running
(their shims own them); the next start re-adopts them. Logs are one JSON
object a line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger("ketch.runtime")

DEFAULT_ROOT = "/var/lib/ketch/runtime"
DEFAULT_RUN_ROOT = "/run/ketch/runtime"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, msg and every `extra` field."""

    _std = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._std and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ketch-runtime", description=__doc__)
    p.add_argument("--root", default=DEFAULT_ROOT, help="persistent state (images, containers, volumes)")
    p.add_argument("--run-root", default=DEFAULT_RUN_ROOT, help="runtime state (sockets, sandboxes, pid file)")
    p.add_argument("--socket", help="gRPC unix socket (default <run-root>/runtime.sock)")
    p.add_argument("--cgroup-parent", default="ketch", help="cgroup under which containers are made")
    p.add_argument("--netns", help="serve from this network namespace (a path or an `ip netns` name): "
                                   "bridges, NAT and published ports live there")
    p.add_argument("--network", choices=("bridge", "none"), default="bridge",
                   help="'none': no bridges or NAT at all (containers get loopback only)")
    p.add_argument("--bridge-subnet", default="10.88.0.0/16", help="subnet of the default bridge network")
    p.add_argument("--network-pool", default="10.89.0.0/16", help="where user networks get their subnets")
    p.add_argument("--network-prefix", type=int, default=24, help="prefix length of user network subnets")
    p.add_argument("--link-prefix", default="ketch", help="prefix of bridge and veth names (≤ 10 chars)")
    p.add_argument("--nft-table", default="ketch_runtime", help="the nftables table the daemon owns")
    p.add_argument("--log-max-size", type=int, default=10 * 1024 * 1024,
                   help="rotate a container's log file at this size (bytes)")
    p.add_argument("--log-max-files", type=int, default=5, help="log files kept per container, live one included")
    p.add_argument("--sandbox-pool", type=int, default=2,
                   help="warm sandboxes kept per network (bridge, none) for docker-style runs; 0: none")
    p.add_argument("--log-level", default="info")
    return p.parse_args(argv)


def cgroup_mode(layout) -> str:
    if layout.version == 2:
        return "v2"
    return "hybrid" if os.path.isdir("/sys/fs/cgroup/unified") and os.path.ismount("/sys/fs/cgroup/unified") else "v1"


class PidFile:
    """<run-root>/runtime.pid, refusing to start beside a live daemon on the same run root."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def acquire(self) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(self.path.read_text().strip())
            if pid != os.getpid() and _alive(pid):
                raise SystemExit(f"ketch-runtime: another daemon (pid {pid}) uses {self.path.parent}; "
                                 "stop it first or give another --run-root")
        self.path.write_text(f"{os.getpid()}\n")

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            if int(self.path.read_text().strip()) == os.getpid():
                self.path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def serve(args: argparse.Namespace) -> None:
    import grpc

    from node_agent.network.networks import Networks
    from node_agent.runtime.containers import ContainerManager
    from node_agent.runtime.images.store import ImageStore
    from node_agent.runtime.json_gateway import JsonGateway, json_socket_for
    from node_agent.runtime.sandbox import SandboxManager
    from node_agent.runtime.service import Runtime, add_services, servicers
    from node_agent.runtime.snapshots.overlay import OverlaySnapshotter
    from node_agent.runtime.state import RecordStore
    from node_agent.runtime.volumes import VolumeStore

    root, run_root = Path(args.root), Path(args.run_root)
    root.mkdir(parents=True, exist_ok=True, mode=0o711)
    run_root.mkdir(parents=True, exist_ok=True, mode=0o711)
    socket_path = Path(args.socket or run_root / "runtime.sock")
    pidfile = PidFile(run_root / "runtime.pid")
    pidfile.acquire()

    images = ImageStore(root / "images")
    containers = ContainerManager(root, run_root, args.cgroup_parent, log_max_size=args.log_max_size,
                                  log_max_files=args.log_max_files)
    networks = None
    if args.network == "bridge":
        networks = Networks(root / "network", link_prefix=args.link_prefix,
                            default_subnet=args.bridge_subnet, pool=args.network_pool,
                            pool_prefix=args.network_prefix, nft_table=args.nft_table)
    runtime = Runtime(
        root=root, run_root=run_root, images=images, snapshots=OverlaySnapshotter(root / "overlay", images),
        containers=containers, sandboxes=SandboxManager(run_root, spawner=containers.spawner), volumes=VolumeStore(root),
        networks=networks, records=RecordStore(root), cgroup_mode=cgroup_mode(containers.layout),
        sandbox_pool=max(0, args.sandbox_pool),
    )
    started = time.monotonic()
    await runtime.recover()

    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20),
                                      ("grpc.max_send_message_length", 64 << 20),
                                      ("grpc.so_reuseport", 0)])
    services = servicers(runtime)
    add_services(server, services)
    gateway = JsonGateway(services)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    old_umask = os.umask(0o177)  # the socket is born 0600: root's runtime, root's socket
    try:
        server.add_insecure_port(f"unix:{socket_path}")
        await server.start()
        await gateway.start(json_socket_for(socket_path))
    finally:
        os.umask(old_umask)
    os.chmod(socket_path, 0o600)
    log.info("runtime daemon serving", extra={
        "socket": str(socket_path), "json_socket": str(json_socket_for(socket_path)), "root": str(root), "pid": os.getpid(),
        "containers": len(containers.list()), "cgroups": runtime.cgroup_mode,
        "recover_ms": round((time.monotonic() - started) * 1000, 1),
    })

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("runtime daemon stopping; containers keep running", extra={"containers": len(containers.list())})
    await gateway.stop()
    await server.stop(grace=2)
    for task in list(runtime._tasks):
        task.cancel()
    await runtime.close()
    await containers.close()
    with contextlib.suppress(Exception):
        await runtime.sandboxes.close()
    for path in (socket_path, json_socket_for(socket_path)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    pidfile.release()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    if os.geteuid() != 0:
        print("ketch-runtime: must run as root (namespaces, mounts, cgroups)", file=sys.stderr)
        return 1
    if args.netns:
        # before any thread exists, so every thread of the daemon (and each shim) lives there
        from node_agent.network import netns

        netns.enter(netns.netns_path(args.netns))
    try:
        asyncio.run(serve(args))
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
