"""Settings of one apiserver process, parsed from `ketch-apiserver` flags.

Kept as a plain dataclass so the app factory and tests can build one without argv.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServerConfig:
    etcd_servers: list[str] = field(default_factory=list)  # empty: start an embedded etcd
    etcd_prefix: str = "/registry"
    bind_address: str = "127.0.0.1"
    secure_port: int = 6443
    data_dir: Path = Path("/var/lib/ketch/apiserver")
    cert_dir: Path | None = None  # default: <data_dir>/pki
    token_file: Path | None = None  # default: <data_dir>/tokens.csv (admin token made on first start)
    service_cluster_ip_range: str = "10.96.0.0/12"
    extra_sans: list[str] = field(default_factory=list)
    log_level: str = "info"
    insecure_http: bool = False  # plain HTTP, for local debugging only
    pod_grace_slack_seconds: float = 5.0  # after a graceful pod deletion runs out, remove it this much later
    bookmark_interval_seconds: float = 10.0
    etcd_retry_seconds: float = 20.0  # how long one request keeps retrying while etcd is unreachable
    embedded_etcd_client_port: int = 2379
    embedded_etcd_peer_port: int = 2380
    #: Serving processes. 1: this process serves. N > 1: this process supervises N workers
    #: sharing the port (SO_REUSEPORT), each with its own etcd client and watch caches.
    workers: int = 1
    #: Set in a worker started by the supervisor: its index (0 runs the singletons) and
    #: the listening socket it inherited. None in a standalone or supervising process.
    worker_index: int | None = None
    listen_fd: int | None = None

    @property
    def leader(self) -> bool:
        """Whether this process runs the once-per-cluster loops (grace reaper, namespace
        controller, default namespaces): a standalone process or worker 0."""
        return self.worker_index in (None, 0)

    @property
    def pki_dir(self) -> Path:
        return self.cert_dir if self.cert_dir is not None else self.data_dir / "pki"

    @property
    def tokens_path(self) -> Path:
        return self.token_file if self.token_file is not None else self.data_dir / "tokens.csv"


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    p = argparse.ArgumentParser(
        prog="ketch-apiserver",
        description="Ketch API server: the Kubernetes REST API over etcd.",
    )
    p.add_argument("--etcd-servers", default="", help="comma-separated etcd client URLs; "
                   "absent: start and supervise a local etcd under --data-dir")
    p.add_argument("--embedded-etcd-client-port", type=int, default=2379,
                   help="client port of the local etcd started when --etcd-servers is absent")
    p.add_argument("--embedded-etcd-peer-port", type=int, default=2380)
    p.add_argument("--etcd-retry-seconds", type=float, default=20.0,
                   help="how long a request keeps retrying an unreachable etcd before answering 503")
    p.add_argument("--etcd-prefix", default="/registry", help="key prefix of every object in etcd")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--secure-port", type=int, default=6443)
    p.add_argument("--data-dir", default="/var/lib/ketch/apiserver")
    p.add_argument("--cert-dir", default=None, help="cluster CA and serving certificate (default <data-dir>/pki)")
    p.add_argument("--token-file", default=None, help='token,user,uid,"group1,group2" CSV '
                   "(default <data-dir>/tokens.csv, an admin token is generated on first start)")
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12")
    p.add_argument("--tls-san", action="append", default=[], help="extra DNS name or IP for the serving certificate")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--watch-bookmark-interval", type=float, default=10.0,
                   help="seconds of idle watch before a BOOKMARK event (when the client allows them)")
    p.add_argument("--pod-grace-slack", type=float, default=5.0,
                   help="seconds after a pod's deletion grace ran out before the apiserver removes it")
    p.add_argument("--insecure-http", action="store_true", help="serve plain HTTP (debugging only)")
    p.add_argument("--workers", type=int, default=1,
                   help="serving processes sharing the port (SO_REUSEPORT), each with its own etcd client "
                        "and watch caches; 1 (default) serves in this process (docs/apiserver.md: when more help)")
    p.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.workers < 1:
        p.error("--workers must be at least 1")
    import ipaddress

    try:
        ipaddress.ip_network(a.service_cluster_ip_range, strict=False)
    except ValueError as exc:
        p.error(f"--service-cluster-ip-range: {exc}")
    return ServerConfig(
        etcd_servers=[s.strip() for s in a.etcd_servers.split(",") if s.strip()],
        etcd_prefix="/" + a.etcd_prefix.strip("/"),
        bind_address=a.bind_address,
        secure_port=a.secure_port,
        data_dir=Path(a.data_dir),
        cert_dir=Path(a.cert_dir) if a.cert_dir else None,
        token_file=Path(a.token_file) if a.token_file else None,
        service_cluster_ip_range=a.service_cluster_ip_range,
        extra_sans=list(a.tls_san),
        log_level=a.log_level,
        insecure_http=a.insecure_http,
        bookmark_interval_seconds=a.watch_bookmark_interval,
        pod_grace_slack_seconds=a.pod_grace_slack,
        etcd_retry_seconds=a.etcd_retry_seconds,
        embedded_etcd_client_port=a.embedded_etcd_client_port,
        embedded_etcd_peer_port=a.embedded_etcd_peer_port,
        workers=a.workers,
        worker_index=a.worker_index,
        listen_fd=a.listen_fd,
    )
