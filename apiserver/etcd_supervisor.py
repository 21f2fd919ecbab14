"""EmbeddedEtcd: the apiserver's own etcd member when no --etcd-servers is given.

It runs the system etcd (Debian's etcd-server) as a child process on loopback
ports with a persistent data directory, waits until it is healthy, restarts it
with back-off if it dies, and stops it (SIGTERM, then SIGKILL) on shutdown.
The child gets PR_SET_PDEATHSIG, so it also ends if the apiserver is killed;
a leftover member of the same data dir (pid file) is stopped before starting.
Its output goes to `etcd.log` next to the data directory.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger("ketch.apiserver.etcd")

_PR_SET_PDEATHSIG = 1


class EtcdStartError(RuntimeError):
    """etcd could not be started; the message says why and what to do."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


async def etcd_healthy(client_url: str, timeout: float = 1.0) -> bool:
    """GET /health on an etcd client URL; True when it reports healthy (has a leader)."""
    host_port = client_url.split("://", 1)[-1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(f"GET /health HTTP/1.0\r\nHost: {host_port}\r\n\r\n".encode())
        await writer.drain()
        body = await asyncio.wait_for(reader.read(), timeout)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
    return b" 200 " in body.split(b"\r\n", 1)[0] and b'"health":"true"' in body.replace(b" ", b"")


class EmbeddedEtcd:
    """One supervised local etcd member."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        host: str = "127.0.0.1",
        client_port: int = 2379,
        peer_port: int = 2380,
        name: str = "ketch",
        binary: str | None = None,
        start_timeout: float = 30.0,
        auto_compaction_retention: str = "1h",
        port_wait: float = 5.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self.client_port = client_port
        self.peer_port = peer_port
        self.name = name
        self.binary = binary
        self.start_timeout = start_timeout
        self.auto_compaction_retention = auto_compaction_retention
        #: How long start() waits for a busy port to be released before giving up.
        self.port_wait = port_wait
        self.log_path = self.data_dir.parent / "etcd.log"
        self.pid_path = self.data_dir.parent / "etcd.pid"
        #: How many times the supervisor started etcd again after it died.
        self.restarts = 0
        self._process: subprocess.Popen | None = None
        self._supervisor: asyncio.Task | None = None
        self._stopping = False

    @property
    def client_url(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def _command(self) -> list[str]:
        binary = self.binary or shutil.which("etcd") or "/usr/bin/etcd"
        if not os.access(binary, os.X_OK):
            raise EtcdStartError(
                f"etcd is not installed ({binary} not found): apt-get install etcd-server, "
                "or run deploy/install-deps.sh, or pass --etcd-servers"
            )
        return [
            binary, "--name", self.name, "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", f"{self.name}={self.peer_url}",
            "--initial-cluster-token", f"ketch-{self.name}",
            "--initial-cluster-state", "new",
            "--auto-compaction-mode", "periodic",
            "--auto-compaction-retention", self.auto_compaction_retention,
            "--snapshot-count", "10000",
            "--logger", "zap", "--log-level", "warn",
        ]

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start etcd and return once it is healthy; then keep it running."""
        self._stopping = False
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        await self._stop_leftover()
        for port in (self.client_port, self.peer_port):
            await self._wait_port_free(port, self.port_wait)
        await self._spawn_and_wait()
        self._supervisor = asyncio.create_task(self._supervise(), name="etcd-supervisor")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop supervising and stop etcd: SIGTERM, then SIGKILL after timeout."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            try:
                await self._supervisor
            except (asyncio.CancelledError, Exception):
                pass
            self._supervisor = None
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            if not await self._wait_exit(process, timeout):
                log.warning("etcd did not stop on SIGTERM within %ss; killing pid=%d", timeout, process.pid)
                process.kill()
                await self._wait_exit(process, 5)
        self._process = None
        try:
            self.pid_path.unlink()
        except FileNotFoundError:
            pass
        log.info("etcd stopped data_dir=%s", self.data_dir)

    async def __aenter__(self) -> EmbeddedEtcd:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- internals --------------------------------------------------------------------------

    async def _spawn_and_wait(self) -> None:
        command = self._command()
        with open(self.log_path, "ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(command)}\n".encode())
            out.flush()
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent, close_fds=True,
            )
        self.pid_path.write_text(f"{self._process.pid}\n")
        log.info("etcd starting pid=%d client_url=%s data_dir=%s log=%s",
                 self._process.pid, self.client_url, self.data_dir, self.log_path)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise EtcdStartError(
                    f"etcd exited with code {code} while starting; see {self.log_path} (last lines: "
                    f"{self._log_tail()})"
                )
            if await etcd_healthy(self.client_url, 0.5):
                log.info("etcd healthy pid=%d client_url=%s", self._process.pid, self.client_url)
                return
            await asyncio.sleep(0.05)
        self._process.kill()
        raise EtcdStartError(f"etcd was not healthy within {self.start_timeout}s; see {self.log_path}")

    async def _supervise(self) -> None:
        delay = 0.5
        while not self._stopping:
            process = self._process
            started = time.monotonic()
            while process is not None and process.poll() is None:
                await asyncio.sleep(0.2)
            if self._stopping:
                return
            code = process.returncode if process is not None else None
            if time.monotonic() - started > 60:
                delay = 0.5
            log.error("etcd died code=%s; restarting in %.1fs log=%s", code, delay, self.log_path)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            try:
                for port in (self.client_port, self.peer_port):
                    await self._wait_port_free(port, self.port_wait)
                self.restarts += 1
                await self._spawn_and_wait()
            except EtcdStartError as e:
                log.error("etcd restart failed: %s", e)

    async def _wait_port_free(self, port: int, timeout: float = 5.0) -> None:
        # A predecessor may still be releasing it (e.g. our own etcd, ending after a crash).
        deadline = time.monotonic() + timeout
        while _port_in_use(self.host, port):
            if time.monotonic() >= deadline:
                raise EtcdStartError(
                    f"port {port} on {self.host} is already in use, so the embedded etcd cannot "
                    f"listen there: stop what uses it (ss -ltnp 'sport = :{port}') or choose other "
                    "etcd ports, or point the apiserver at that etcd with --etcd-servers"
                )
            await asyncio.sleep(0.1)

    async def _stop_leftover(self) -> None:
        """Stop an etcd this data dir's pid file names, if it is still ours and running."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return
        if str(self.data_dir).encode() not in cmdline or not cmdline[0].endswith(b"etcd"):
            return  # the pid was reused by something else
        log.warning("stopping a leftover etcd of this data dir pid=%d", pid)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)

    @staticmethod
    async def _wait_exit(process: subprocess.Popen, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return " | ".join(text[-lines:])
