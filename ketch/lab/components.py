"""What `ketch up` runs: each component's command line, pid file, log file and readiness check.

Today: etcd and the apiserver. The etcd member is a component of its own (not
the apiserver's embedded one) so that the lab records its pid, owns its ports
and `ketch down` stops exactly it. Its data dir is the one the embedded etcd
would use (<state>/apiserver/etcd), so either way finds the same objects.
Next: scheduler, controller-manager, and per node a runtime daemon and a node
agent, appended to `lab_components` in start order.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/ketch")
DEFAULT_RUN_DIR = Path("/run/ketch")
DEFAULT_LOG_DIR = Path("/var/log/ketch")


@dataclass
class LabSettings:
    """Choices made at the first `ketch up` and kept in <state>/lab.json for the next ones."""

    apiserver_port: int = 6443
    etcd_client_port: int = 2379
    etcd_peer_port: int = 2380
    bind_address: str = "127.0.0.1"

    @classmethod
    def load(cls, path: Path) -> LabSettings | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")


@dataclass
class LabLayout:
    """Where the lab keeps state, pid files and logs; `--state-dir X` moves all three under X."""

    state_dir: Path = DEFAULT_STATE_DIR
    run_dir: Path = DEFAULT_RUN_DIR
    log_dir: Path = DEFAULT_LOG_DIR

    @classmethod
    def under(cls, state_dir: Path | None) -> LabLayout:
        if state_dir is None:
            return cls()
        state_dir = state_dir.resolve()
        return cls(state_dir, state_dir / "run", state_dir / "log")

    @property
    def settings_file(self) -> Path:
        return self.state_dir / "lab.json"

    @property
    def apiserver_dir(self) -> Path:
        return self.state_dir / "apiserver"

    @property
    def ca_file(self) -> Path:
        return self.apiserver_dir / "pki" / "ca.crt"

    @property
    def token_file(self) -> Path:
        return self.apiserver_dir / "tokens.csv"


@dataclass
class Component:
    """One daemon of the lab."""

    name: str
    argv: list[str]
    pid_file: Path
    log_file: Path
    ready: Callable[[], bool]  # True once it serves; polled after start
    endpoint: str = ""  # shown to the user
    ready_timeout: float = 60.0
    env: dict[str, str] | None = field(default=None)


def tcp_ready(host: str, port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return check


def https_ready(url: str, ca_file: Path, path: str = "/readyz") -> Callable[[], bool]:
    """GET <url><path> trusting the cluster CA (anonymous: kube-apiserver allows it for /readyz)."""

    def check() -> bool:
        if not ca_file.exists():
            return False
        from ketch.client.kubeconfig import Connection
        from ketch.client.rest import RestClient, TransportError

        conn = Connection(url)
        conn.ca_data = ca_file.read_bytes()
        client = RestClient(conn, timeout=2.0)
        try:
            return client.request("GET", path, accept="text/plain").status == 200
        except (TransportError, OSError):
            return False
        finally:
            client.close()

    return check


def etcd_binary() -> str:
    found = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if found is None:
        raise RuntimeError("etcd is not installed: run `make up` (deploy/install-deps.sh installs etcd-server)")
    return found


def lab_components(layout: LabLayout, settings: LabSettings) -> list[Component]:
    """The daemons of a one-machine lab, in start order (stopped in reverse)."""
    host = settings.bind_address
    client_url = f"http://{host}:{settings.etcd_client_port}"
    peer_url = f"http://{host}:{settings.etcd_peer_port}"
    etcd = Component(
        name="etcd",
        argv=[etcd_binary(), "--name", "ketch", "--data-dir", str(layout.apiserver_dir / "etcd"),
              "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
              "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
              "--initial-cluster", f"ketch={peer_url}", "--log-level", "warn"],
        pid_file=layout.run_dir / "etcd.pid",
        log_file=layout.log_dir / "etcd.log",
        ready=tcp_ready(host, settings.etcd_client_port),
        endpoint=client_url,
    )
    api_url = f"https://{host}:{settings.apiserver_port}"
    apiserver = Component(
        name="apiserver",
        argv=[sys.executable, "-m", "apiserver.main", "--etcd-servers", client_url,
              "--data-dir", str(layout.apiserver_dir), "--bind-address", host,
              "--secure-port", str(settings.apiserver_port)],
        pid_file=layout.run_dir / "apiserver.pid",
        log_file=layout.log_dir / "apiserver.log",
        ready=https_ready(api_url, layout.ca_file),
        endpoint=api_url,
    )
    return [etcd, apiserver]


def wait_ready(component: Component, alive: Callable[[], bool]) -> bool:
    """Poll the readiness check until it passes, the process dies, or the timeout runs out."""
    deadline = time.monotonic() + component.ready_timeout
    while time.monotonic() < deadline:
        if component.ready():
            return True
        if not alive():
            return False
        time.sleep(0.1)
    return False
