"""What `ketch up` runs: each component's command line, pid file, log file and readiness check.

The control plane runs in the host network namespace: the apiserver (which
starts and supervises its embedded etcd, data in <state>/apiserver/etcd),
the controller-manager and the scheduler. Each node is a network namespace
("a VM", see network.py) with its own runtime daemon (serving from inside the
namespace through its own --netns flag) and node agent (started through
`nsenter --net` so that it shares the host's mount namespace and cgroups with
the runtime: `ip netns exec` would remount /sys and hide the agent's volume
mounts from the runtime).
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_NAME = "lab"
DEFAULT_STATE_DIR = Path("/var/lib/ketch")
DEFAULT_RUN_DIR = Path("/run/ketch")
DEFAULT_LOG_DIR = Path("/var/log/ketch")
NAME_PATTERN = re.compile(r"^[a-z0-9]{1,6}$")  # kernel link names are ≤ 15 chars


@dataclass
class LabSettings:
    """Choices made at the first `ketch up` and kept in <state>/lab.json for the next ones."""

    name: str = DEFAULT_NAME
    nodes: int = 2
    subnet: str = "10.213.0.0/24"  # the lab bridge: host .1, nodes .11, .12, ...
    apiserver_port: int = 6443
    etcd_client_port: int = 2379
    etcd_peer_port: int = 2380
    cluster_cidr: str = "10.244.0.0/16"
    node_monitor_grace_period: float = 12.0
    default_toleration_seconds: int = 30
    lease_renew_interval: float = 2.0

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

    def validate(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"lab name {self.name!r}: use 1-6 lower-case letters or digits "
                             "(it goes into kernel link names of at most 15 characters)")
        net = ipaddress.ip_network(self.subnet, strict=False)
        if net.version != 4 or net.prefixlen > 27:
            raise ValueError(f"lab subnet {self.subnet}: give an IPv4 network of /27 or larger")
        if not 0 <= self.nodes <= min(net.num_addresses - 12, 99):
            raise ValueError(f"--nodes {self.nodes}: between 0 and {min(net.num_addresses - 12, 99)} "
                             f"fit in {self.subnet}")

    # ------------------------------------------------------------ names and addresses

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.ip_network(self.subnet, strict=False)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    @property
    def gateway(self) -> str:
        """The host's address on the lab bridge: the apiserver serves here."""
        return str(self.network.network_address + 1)

    def node_names(self) -> list[str]:
        return [self.node_name(i) for i in range(1, self.nodes + 1)]

    def node_name(self, index: int) -> str:
        return f"{self.name}-n{index}"

    def node_index(self, node: str) -> int:
        return int(node.rsplit("-n", 1)[1])

    def node_ip(self, node: str) -> str:
        return str(self.network.network_address + 10 + self.node_index(node))

    def netns(self, node: str) -> str:
        return f"ketch-{node}"

    def host_veth(self, node: str) -> str:
        return f"ketch-{self.name}v{self.node_index(node)}"

    @property
    def bridge(self) -> str:
        return f"ketch-{self.name}-br"

    def cgroup_parent(self, node: str) -> str:
        return f"ketch-{node}"

    @property
    def kernel_prefix(self) -> str:
        """Every kernel object of this lab in the host is named with this (netns, links, cgroups)."""
        return f"ketch-{self.name}"

    @property
    def context(self) -> str:
        return "ketch" if self.name == DEFAULT_NAME else f"ketch-{self.name}"


@dataclass
class LabLayout:
    """Where the lab keeps state, pid files and logs; `--state-dir X` moves all three under X."""

    state_dir: Path = DEFAULT_STATE_DIR
    run_dir: Path = DEFAULT_RUN_DIR
    log_dir: Path = DEFAULT_LOG_DIR

    @classmethod
    def under(cls, state_dir: Path | None, name: str | None = None) -> LabLayout:
        if state_dir is None:
            if name in (None, DEFAULT_NAME):
                return cls()
            return cls(Path(f"{DEFAULT_STATE_DIR}-{name}"), Path(f"{DEFAULT_RUN_DIR}-{name}"),
                       Path(f"{DEFAULT_LOG_DIR}-{name}"))
        state_dir = state_dir.resolve()
        return cls(state_dir, state_dir / "run", state_dir / "logs")

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

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig the lab's own daemons use."""
        return self.state_dir / "admin.kubeconfig"

    def node_dir(self, node: str) -> Path:
        return self.state_dir / "nodes" / node

    def runtime_root(self, node: str) -> Path:
        return self.node_dir(node) / "runtime"

    def runtime_run_root(self, node: str) -> Path:
        """Like a machine's /run: sockets, sandboxes (short: a unix socket path has at most 107 bytes)."""
        return self.run_dir / node

    def runtime_socket(self, node: str) -> Path:
        return self.runtime_run_root(node) / "runtime.sock"

    def agent_root(self, node: str) -> Path:
        return self.node_dir(node) / "agent"

    def dirty_marker(self, node: str) -> Path:
        """Left by a `ketch down` that could not reach the node's runtime: its records are stale."""
        return self.node_dir(node) / "unclean-power-off"

    def mount_dirs(self, settings: LabSettings) -> list[Path]:
        """Where the lab's nodes mount things (rootfs, volumes, sandbox namespaces): nothing else.

        Not the whole state or run dir: with the defaults they are /var/lib/ketch
        and /run/ketch, which a stand-alone `ketch runtime daemon` uses too.
        """
        run_roots = set(self.run_dir.glob(f"{settings.name}-n[0-9]*")) if self.run_dir.is_dir() else set()
        run_roots |= {self.runtime_run_root(n) for n in settings.node_names()}
        return [self.state_dir / "nodes", *sorted(run_roots)]


@dataclass
class Component:
    """One daemon of the lab."""

    name: str  # "apiserver", or "<node>/runtime" for a node's daemons
    argv: list[str]
    pid_file: Path
    log_file: Path
    ready: Callable[[], bool]  # True once it serves; polled after start
    endpoint: str = ""  # shown to the user
    ready_timeout: float = 60.0
    env: dict[str, str] | None = field(default=None)
    kind: str = ""  # apiserver, controller-manager, scheduler, runtime, node-agent
    node: str | None = None
    stage: int = 0  # components of one stage start together, stages in order
    #: (host, port) it listens on, when its readiness is only "something accepts there": the
    #: port must be free before it starts, or a leftover process would pass for it.
    listens: tuple[str, int] | None = None


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


def tcp_ready(host: str, port: int) -> Callable[[], bool]:
    """Something accepts connections on host:port (a daemon's metrics endpoint)."""

    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            return False

    return check


def port_taken(host: str, port: int) -> bool:
    """Whether some process already listens on host:port (binding it fails)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def runtime_ready(sock: Path) -> Callable[[], bool]:
    """The runtime daemon answers Version on its socket."""

    def check() -> bool:
        if not sock.exists():
            return False
        from node_agent.runtime.client import RuntimeClient

        from proto import runtime_pb2 as pb

        client = RuntimeClient(str(sock))
        try:
            client.runtime.Version(pb.VersionRequest(), timeout=2)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False
        finally:
            client.close()

    return check


def node_registered(layout: LabLayout, settings: LabSettings, node: str) -> Callable[[], bool]:
    """The agent has registered its Node object."""

    def check() -> bool:
        from ketch.lab.api import lab_client

        client = lab_client(layout, settings, timeout=2.0)
        try:
            return client.request("GET", f"/api/v1/nodes/{node}").status == 200
        except OSError:
            return False
        finally:
            client.close()

    return check


def control_plane(layout: LabLayout, settings: LabSettings) -> list[Component]:
    gw = settings.gateway
    api_url = f"https://{gw}:{settings.apiserver_port}"
    apiserver = Component(
        name="apiserver", kind="apiserver", stage=0,
        argv=[sys.executable, "-m", "apiserver.main",
              "--data-dir", str(layout.apiserver_dir), "--bind-address", gw,
              "--secure-port", str(settings.apiserver_port),
              "--embedded-etcd-client-port", str(settings.etcd_client_port),
              "--embedded-etcd-peer-port", str(settings.etcd_peer_port)],
        pid_file=layout.run_dir / "apiserver.pid",
        log_file=layout.log_dir / "apiserver.log",
        ready=https_ready(api_url, layout.ca_file),
        endpoint=f"{api_url} (etcd http://127.0.0.1:{settings.etcd_client_port})",
    )
    kubeconfig = str(layout.kubeconfig)
    # metrics on the lab's own address: ports never clash with another lab's.
    # One instance each, so no leader election: a restarted daemon would wait for
    # the Lease of its killed predecessor to expire (15 s) before doing anything.
    cm_metrics, sched_metrics = f"{gw}:10257", f"{gw}:10259"
    manager = Component(
        name="controller-manager", kind="controller-manager", stage=1,
        argv=[sys.executable, "-m", "controllers.main", "--kubeconfig", kubeconfig,
              "--metrics-bind-address", cm_metrics, "--no-leader-elect",
              "--node-monitor-grace-period", str(settings.node_monitor_grace_period),
              "--default-toleration-seconds", str(settings.default_toleration_seconds),
              "--cluster-cidr", settings.cluster_cidr],
        pid_file=layout.run_dir / "controller-manager.pid",
        log_file=layout.log_dir / "controller-manager.log",
        ready=tcp_ready(gw, 10257), endpoint=f"metrics http://{cm_metrics}/metrics", listens=(gw, 10257),
    )
    scheduler = Component(
        name="scheduler", kind="scheduler", stage=1,
        argv=[sys.executable, "-m", "scheduler.main", "--kubeconfig", kubeconfig,
              "--metrics-bind-address", sched_metrics, "--no-leader-elect"],
        pid_file=layout.run_dir / "scheduler.pid",
        log_file=layout.log_dir / "scheduler.log",
        ready=tcp_ready(gw, 10259), endpoint=f"metrics http://{sched_metrics}/metrics", listens=(gw, 10259),
    )
    return [apiserver, manager, scheduler]


def node_components(layout: LabLayout, settings: LabSettings, node: str) -> list[Component]:
    netns = settings.netns(node)
    sock = layout.runtime_socket(node)
    runtime = Component(
        name=f"{node}/runtime", kind="runtime", node=node, stage=1,
        argv=[sys.executable, "-m", "node_agent.runtime.daemon",
              "--root", str(layout.runtime_root(node)), "--run-root", str(layout.runtime_run_root(node)),
              "--socket", str(sock), "--netns", netns, "--cgroup-parent", settings.cgroup_parent(node),
              "--link-prefix", "ketch", "--nft-table", "ketch_runtime"],
        pid_file=layout.run_dir / f"{node}-runtime.pid",
        log_file=layout.log_dir / f"{node}-runtime.log",
        ready=runtime_ready(sock), endpoint=f"unix://{sock} in netns {netns}",
    )
    agent = Component(
        name=f"{node}/node-agent", kind="node-agent", node=node, stage=2,
        argv=["nsenter", f"--net=/run/netns/{netns}", sys.executable, "-m", "node_agent.main",
              "--kubeconfig", str(layout.kubeconfig), "--node-name", node,
              "--node-ip", settings.node_ip(node), "--root-dir", str(layout.agent_root(node)),
              "--runtime-endpoint", str(sock), "--cluster-cidr", settings.cluster_cidr,
              "--lease-renew-interval", str(settings.lease_renew_interval),
              # on its lab address, so Prometheus on the host reaches it over the lab bridge
              "--metrics-bind-address", f"{settings.node_ip(node)}:10255"],
        pid_file=layout.run_dir / f"{node}-node-agent.pid",
        log_file=layout.log_dir / f"{node}-node-agent.log",
        ready=node_registered(layout, settings, node),
        endpoint=f"node {node} at {settings.node_ip(node)} (netns {netns})",
    )
    return [runtime, agent]


def lab_components(layout: LabLayout, settings: LabSettings) -> list[Component]:
    """The daemons of a one-machine lab, in start order (stopped in reverse)."""
    out = control_plane(layout, settings)
    for node in settings.node_names():
        out += node_components(layout, settings, node)
    return sorted(out, key=lambda c: c.stage)


def find(components: list[Component], kind: str, node: str | None = None) -> Component:
    for c in components:
        if c.kind == kind and c.node == node:
            return c
    raise KeyError(f"no component {kind!r}" + (f" on node {node}" if node else ""))


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
