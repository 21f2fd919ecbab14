"""`ketch-apiserver`: the Kubernetes REST API over etcd, on HTTPS with bearer tokens.

Without --etcd-servers it starts and supervises a local etcd member under
--data-dir (the embedded default). On first start it makes the cluster CA, the
serving certificate and an admin token, and writes an admin kubeconfig to
<data-dir>/admin.kubeconfig.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from pathlib import Path

from apiserver.auth import TokenAuthenticator, ensure_token_file
from apiserver.config import ServerConfig, parse_args
from apiserver.tls import ServingFiles, ensure_serving_cert, wanted_sans

log = logging.getLogger("ketch.apiserver")


def setup_logging(level: str, worker: int | None = None) -> None:
    who = "" if worker is None else f"worker={worker} "
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"time=%(asctime)s level=%(levelname)s {who}logger=%(name)s msg=%(message)s",
        stream=sys.stderr,
    )


def kubeconfig_text(server: str, ca_file: Path, token: str, name: str = "ketch") -> str:
    """A kubeconfig with cluster, user and context all named `name`."""
    import base64

    ca = base64.b64encode(ca_file.read_bytes()).decode()
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: {name}\n  cluster:\n    server: {server}\n"
        f"    certificate-authority-data: {ca}\n"
        f"users:\n- name: {name}\n  user:\n    token: {token}\n"
        f"contexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n"
        f"    namespace: default\ncurrent-context: {name}\n"
    )


def prepare(config: ServerConfig) -> tuple[ServingFiles | None, str]:
    """Certificates, token file and the admin kubeconfig; returns (TLS files, admin token)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    token = ensure_token_file(config.tokens_path)
    files = None
    scheme = "http"
    if not config.insecure_http:
        files = ensure_serving_cert(config.pki_dir, wanted_sans(config.bind_address, config.extra_sans))
        scheme = "https"
    host = "127.0.0.1" if config.bind_address in ("0.0.0.0", "::", "") else config.bind_address
    if files is not None:
        path = config.data_dir / "admin.kubeconfig"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(kubeconfig_text(f"{scheme}://{host}:{config.secure_port}", files.ca_cert, token))
    return files, token


def serving_files(config: ServerConfig) -> ServingFiles | None:
    """The TLS files `prepare` made (a worker reads them; the supervisor made them)."""
    if config.insecure_http:
        return None
    return ServingFiles(config.pki_dir / "ca.crt", config.pki_dir / "apiserver.crt", config.pki_dir / "apiserver.key")


async def serve(config: ServerConfig, argv: list[str]) -> int:
    """Serve in this process, or (--workers > 1) supervise the workers; the exit code."""
    supervisor = None
    if config.worker_index is None:
        files, _token = prepare(config)
        if config.workers > 1:
            from apiserver.workers import WorkerSupervisor

            supervisor = WorkerSupervisor(config, argv)
            try:
                supervisor.bind()  # before etcd: a taken port fails at once
            except OSError as exc:
                log.error("cannot listen on %s:%d: %s", config.bind_address, config.secure_port, exc)
                return 1
    else:
        from apiserver.workers import die_with_parent

        die_with_parent()
        files = serving_files(config)
    embedded = None
    if not config.etcd_servers:
        from apiserver.etcd_supervisor import EmbeddedEtcd

        embedded = EmbeddedEtcd(config.data_dir / "etcd", client_port=config.embedded_etcd_client_port,
                                peer_port=config.embedded_etcd_peer_port)
        await embedded.start()
        config.etcd_servers = [embedded.client_url]
    loop = asyncio.get_running_loop()
    if supervisor is not None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, supervisor.request_stop)
        try:
            return await supervisor.run()
        finally:
            if embedded is not None:
                await embedded.stop()
    import uvicorn  # only serving processes load the web stack: a supervisor stays small

    from apiserver.app import DirectDispatch, create_app

    app = create_app(config, TokenAuthenticator.from_file(config.tokens_path))
    uv = uvicorn.Config(
        DirectDispatch(app),
        host=config.bind_address,
        port=config.secure_port,
        ssl_certfile=str(files.cert) if files else None,
        ssl_keyfile=str(files.key) if files else None,
        log_level=config.log_level,
        log_config=None,  # uvicorn's loggers go through our key=value root handler
        access_log=False,
        proxy_headers=False,  # clients talk to us directly: no X-Forwarded-* rewriting per request
        server_header=False,
        lifespan="on",
        timeout_keep_alive=120,
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(uv)
    # Fewer, cheaper collections: the watch caches hold many long-lived objects.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    sockets = None
    if config.listen_fd is not None:
        import socket

        sockets = [socket.socket(fileno=config.listen_fd)]
    try:
        await server.serve(sockets=sockets)
    finally:
        if embedded is not None:
            await embedded.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    config = parse_args(argv)
    setup_logging(config.log_level, config.worker_index)
    try:
        import uvloop  # noqa: F401  (optional: faster event loop when installed)

        runner = uvloop.run  # type: ignore[attr-defined]
    except ImportError:
        runner = asyncio.run
    try:
        return runner(serve(config, argv))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
