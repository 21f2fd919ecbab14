"""What `ketch up` runs: each component's command line, pid file, log file and readiness check.

Today: the apiserver, which starts and supervises its embedded etcd member
(data in <state>/apiserver/etcd, ports from the lab settings; `ketch down`
stops it with the apiserver, as part of its process family). Next: the
scheduler, the controller-manager, and per node a runtime daemon and a node
agent, appended to `lab_components` in start order.
"""

from __future__ import annotations

import json
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


def lab_components(layout: LabLayout, settings: LabSettings) -> list[Component]:
    """The daemons of a one-machine lab, in start order (stopped in reverse)."""
    host = settings.bind_address
    api_url = f"https://{host}:{settings.apiserver_port}"
    apiserver = Component(
        name="apiserver",
        argv=[sys.executable, "-m", "apiserver.main",
              "--data-dir", str(layout.apiserver_dir), "--bind-address", host,
              "--secure-port", str(settings.apiserver_port),
              "--embedded-etcd-client-port", str(settings.etcd_client_port),
              "--embedded-etcd-peer-port", str(settings.etcd_peer_port)],
        pid_file=layout.run_dir / "apiserver.pid",
        log_file=layout.log_dir / "apiserver.log",
        ready=https_ready(api_url, layout.ca_file),
        endpoint=f"{api_url} (etcd http://127.0.0.1:{settings.etcd_client_port}, "
                 f"log {layout.apiserver_dir / 'etcd.log'})",
    )
    return [apiserver]


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
