"""Multi-process serving: one supervisor, N worker processes sharing one port.

Why: one CPython process answers one request at a time on one CPU (TLS, HTTP,
JSON, validation, gRPC all hold the GIL), so the apiserver tops out near
1,000-1,500 creates/s whatever etcd could take. With `--workers N` the
supervisor (the process `ketch-apiserver` started) does what must happen once
(certificates, token file, admin kubeconfig, the embedded etcd) and then runs N
`apiserver.main` workers. It binds N listening sockets to the port with
SO_REUSEPORT, one per worker, and passes each its socket: the kernel spreads
connections over them, a bind error shows in the supervisor before any worker
starts, and a restarted worker takes over its socket (and the connections
queued on it) from the supervisor.

Each worker has its own etcd client and watch caches; worker 0 also runs the
once-per-cluster loops (pod grace reaper, namespace controller, default
namespaces: `ServerConfig.leader`). A worker that exits is started again; if
workers keep failing the supervisor stops them all and exits non-zero. Workers
die with the supervisor (PR_SET_PDEATHSIG), so a SIGKILL of the supervisor
leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import sys
import time

from apiserver.config import ServerConfig

log = logging.getLogger("ketch.apiserver.workers")

_PR_SET_PDEATHSIG = 1
_RESTART_WINDOW = 60.0  # seconds
_MAX_RESTARTS = 5  # within the window, over all workers: then give up


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one (host, port), SO_REUSEPORT, inheritable."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((host, port))
            sock.listen(2048)
            sock.set_inheritable(True)
            port = sock.getsockname()[1]  # port 0: the rest take the one the kernel picked
    except OSError:
        for s in sockets:
            s.close()
        raise
    return sockets


def die_with_parent() -> None:
    """In a worker: get SIGKILL when the supervisor goes, and exit if it is gone already."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        log.warning("PR_SET_PDEATHSIG unavailable: a killed supervisor leaves its workers running")
    if os.getppid() == 1:
        sys.exit("apiserver worker: the supervisor is gone")


def worker_argv(argv: list[str], index: int, fd: int, etcd_servers: list[str]) -> list[str]:
    """The command line of worker `index`: the supervisor's flags plus its own (later flags win)."""
    return [sys.executable, "-m", "apiserver.main", *argv,
            "--etcd-servers", ",".join(etcd_servers),
            "--worker-index", str(index), "--listen-fd", str(fd)]


class WorkerSupervisor:
    """Starts, restarts and stops the workers of one apiserver."""

    def __init__(self, config: ServerConfig, argv: list[str]) -> None:
        self.config = config
        self.argv = list(argv)
        self.sockets: list[socket.socket] = []
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = asyncio.Event()
        self.metrics_dir = config.data_dir / "metrics"
        self._failures: list[float] = []

    def bind(self) -> None:
        self.sockets = bind_sockets(self.config.bind_address, self.config.secure_port, self.config.workers)

    def prepare_metrics_dir(self) -> None:
        """An empty directory for the workers' shared metrics (apiserver/metrics.py)."""
        self.metrics_dir = self.config.data_dir / "metrics"
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        for old in self.metrics_dir.glob("*.db"):
            old.unlink()

    async def _spawn(self, index: int) -> None:
        fd = self.sockets[index].fileno()
        env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(self.metrics_dir))
        process = await asyncio.create_subprocess_exec(
            *worker_argv(self.argv, index, fd, self.config.etcd_servers), pass_fds=(fd,), env=env)
        self.processes[index] = process
        log.info("apiserver worker started index=%d pid=%d", index, process.pid)

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> int:
        """Serve until asked to stop (0) or until workers keep failing (1)."""
        self.prepare_metrics_dir()
        for index in range(self.config.workers):
            await self._spawn(index)
        waits = {asyncio.ensure_future(p.wait()): i for i, p in self.processes.items()}
        stop = asyncio.ensure_future(self._stopping.wait())
        code = 0
        try:
            while True:
                done, _ = await asyncio.wait({stop, *waits}, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:
                    break
                for fut in done:
                    index = waits.pop(fut)
                    log.error("apiserver worker exited; restarting index=%d pid=%d code=%s",
                              index, self.processes[index].pid, fut.result())
                    self._forget_metrics_of(self.processes[index].pid)
                    now = time.monotonic()
                    self._failures = [t for t in self._failures if now - t < _RESTART_WINDOW] + [now]
                    if len(self._failures) > _MAX_RESTARTS:
                        log.error("apiserver workers keep exiting (%d restarts in %.0fs); giving up",
                                  len(self._failures) - 1, _RESTART_WINDOW)
                        code = 1
                        return code
                    await asyncio.sleep(min(0.2 * len(self._failures), 2.0))
                    await self._spawn(index)
                    waits[asyncio.ensure_future(self.processes[index].wait())] = index
        finally:
            stop.cancel()
            for fut in waits:
                fut.cancel()
            await self.stop_workers()
        return code

    def _forget_metrics_of(self, pid: int) -> None:
        """A dead worker's gauges (open watches) no longer count; its counters still do."""
        from prometheus_client import multiprocess

        try:
            multiprocess.mark_process_dead(pid, str(self.metrics_dir))
        except OSError as exc:
            log.warning("could not drop the metrics of worker pid=%d: %s", pid, exc)

    async def stop_workers(self, timeout: float = 10.0) -> None:
        """SIGTERM every worker, SIGKILL those still running after `timeout`."""
        running = [p for p in self.processes.values() if p.returncode is None]
        for p in running:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        if running:
            _, pending = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in running], timeout=timeout)
            for p in running:
                if p.returncode is None:
                    try:
                        p.kill()
                    except ProcessLookupError:
                        pass
                    await p.wait()
        for s in self.sockets:
            s.close()
