"""The node agent's HTTPS API (the kubelet's port 10250): logs, exec, attach, port-forward, stats.

Only the apiserver calls it, with a client certificate signed by the cluster CA;
anything else fails the TLS handshake. Errors are Kubernetes Status bodies so
the apiserver can pass them through unchanged.

The agent's main calls `await serve_agent_api(pod_manager, runtime, config)`
next to its other loops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from ketch.streaming import channels
from ketch.streaming import portforward as pf
from node_agent.server import auth, logs, metrics, targets
from node_agent.server import exec as exec_stream
from node_agent.server.portforward import PortForwardSession, netns_dialer
from node_agent.server.stats import StatsProvider

log = logging.getLogger("ketch.node_agent.server")

DEFAULT_PORT = 10250


@dataclass
class AgentServerConfig:
    node_name: str
    bind_address: str
    port: int = DEFAULT_PORT
    kubeconfig: str = ""
    cert_dir: Path = Path("/var/lib/ketch/node-agent/pki")
    context: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, internal_ip: str | None = None) -> AgentServerConfig:
        """From ketch-node-agent's flags (--node-name, --node-ip, --port, --kubeconfig, --root-dir)."""
        address = internal_ip or getattr(args, "node_ip", None)
        if not address:
            from node_agent.node_status import default_internal_ip

            address = default_internal_ip()
        return cls(node_name=args.node_name, bind_address=address,
                   port=int(getattr(args, "port", DEFAULT_PORT) or DEFAULT_PORT),
                   kubeconfig=args.kubeconfig, cert_dir=Path(args.root_dir) / "pki",
                   context=getattr(args, "context", None))


def status(code: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": message, "reason": reason, "code": code}, status_code=code)


def build_app(pod_manager: Any, runtime: Any, node_name: str) -> Starlette:
    stats = StatsProvider(runtime, node_name)

    async def container_logs(request: Request) -> Response:
        p = request.path_params
        try:
            opts = logs.options_from(request.query_params)
            ref = await targets.container(runtime, pod_manager, p["namespace"], p["pod"], p["container"],
                                          previous=opts.previous)
        except logs.LogQueryError as exc:
            return status(400, "BadRequest", str(exc))
        except targets.TargetError as exc:
            return status(exc.code, exc.reason, exc.message)

        async def counted() -> AsyncIterator[bytes]:
            with metrics.session("logs"):
                async for chunk in logs.stream_logs(runtime, ref.container_id, opts):
                    yield chunk

        return StreamingResponse(counted(), media_type="text/plain; charset=utf-8")

    async def stream(websocket: WebSocket, attach: bool) -> None:
        p, params = websocket.path_params, websocket.query_params
        flags = exec_stream.flags_from(params)
        command = None if attach else exec_stream.command_from(params)
        if command is not None and not command:
            await exec_stream.reject(websocket, channels.error_status("you must specify at least one command",
                                                                      "BadRequest", 400))
            return
        try:
            ref = await targets.container(runtime, pod_manager, p["namespace"], p["pod"], p["container"],
                                          running=True)
        except targets.TargetError as exc:
            await exec_stream.reject(websocket, channels.error_status(exc.message, exc.reason, exc.code))
            return
        log.info("%s pod=%s/%s container=%s tty=%s stdin=%s", "attach" if attach else "exec",
                 p["namespace"], p["pod"], p["container"], flags["tty"], flags["stdin"])
        with metrics.session("attach" if attach else "exec"):
            await exec_stream.run_stream(websocket, runtime, ref.container_id, command=command, **flags)

    async def exec_ws(websocket: WebSocket) -> None:
        await stream(websocket, attach=False)

    async def attach_ws(websocket: WebSocket) -> None:
        await stream(websocket, attach=True)

    async def port_forward(websocket: WebSocket) -> None:
        p = websocket.path_params
        if pf.WEBSOCKET_PROTOCOL not in (websocket.scope.get("subprotocols") or []):
            await websocket.send_denial_response(
                status(400, "BadRequest", f"port-forward needs the {pf.WEBSOCKET_PROTOCOL} subprotocol"))
            return
        try:
            netns = await targets.netns_path(runtime, pod_manager, p["namespace"], p["pod"])
        except targets.TargetError as exc:
            await websocket.send_denial_response(status(exc.code, exc.reason, exc.message))
            return
        await websocket.accept(subprotocol=pf.WEBSOCKET_PROTOCOL)
        log.info("port-forward pod=%s/%s", p["namespace"], p["pod"])
        session = PortForwardSession(websocket.send_bytes, netns_dialer(netns))
        with metrics.session("portforward"):
            await _serve_port_forward(websocket, session, p)

    async def _serve_port_forward(websocket: WebSocket, session: PortForwardSession, p: dict) -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes") or (message.get("text") or "").encode()
                if data:
                    await session.receive(data)
        except Exception as exc:  # noqa: BLE001 - a broken session ends; the agent goes on
            log.info("port-forward pod=%s/%s ended: %s", p["namespace"], p["pod"], exc)
        finally:
            await session.close()
            with contextlib.suppress(Exception):
                await websocket.close(1000)

    async def stats_summary(_request: Request) -> Response:
        with metrics.session("stats"):
            return Response(json.dumps(await stats.summary()), media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[
        Route("/containerLogs/{namespace}/{pod}/{container}", container_logs),
        WebSocketRoute("/exec/{namespace}/{pod}/{container}", exec_ws),
        WebSocketRoute("/attach/{namespace}/{pod}/{container}", attach_ws),
        WebSocketRoute("/portForward/{namespace}/{pod}", port_forward),
        Route("/stats/summary", stats_summary),
        Route("/healthz", healthz),
    ])


async def serve_agent_api(pod_manager: Any, runtime: Any, config: AgentServerConfig | argparse.Namespace) -> None:
    """Serve the agent API until cancelled; needs the cluster CA from the kubeconfig."""
    import uvicorn

    from ketch.streaming.ws_compat import allow_kubernetes_subprotocols

    allow_kubernetes_subprotocols()
    if not isinstance(config, AgentServerConfig):
        config = AgentServerConfig.from_args(config)
    ca_file = auth.write_client_ca(config.cert_dir, auth.cluster_ca_pem(config.kubeconfig, config.context))
    cert, key = auth.ensure_serving_cert(config.cert_dir, config.node_name, [config.bind_address])
    uv = uvicorn.Config(
        build_app(pod_manager, runtime, config.node_name), host=config.bind_address, port=config.port,
        ssl_certfile=str(cert), ssl_keyfile=str(key), ssl_ca_certs=str(ca_file), ssl_cert_reqs=ssl.CERT_REQUIRED,
        lifespan="off", log_level="warning", access_log=False, ws="websockets-sansio",
        ws_ping_interval=None, timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(uv)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # the agent owns signals
    listener = listen(config.bind_address, config.port)
    log.info("agent API on https://%s:%d (client certificates from the cluster CA)", config.bind_address, config.port)
    try:
        await server.serve(sockets=[listener])
    except asyncio.CancelledError:
        server.should_exit = True
        raise
    finally:
        listener.close()


def listen(address: str, port: int) -> socket.socket:
    """The API's listening socket, bound here so a taken port is a clear error, not an exit."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"the agent API cannot listen on {address}:{port}: {exc.strerror} "
                                 "(another agent on this address? set --port)") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock
