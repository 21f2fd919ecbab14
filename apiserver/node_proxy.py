"""The apiserver's proxy to node agents: pods/log, pods/exec|attach|portforward, nodes/proxy.

A request is checked here the way kube-apiserver checks it (pod exists, is
scheduled, the container is one of the pod's and has started; exec and attach
only into pods that have not completed), then forwarded to the agent of the
pod's node (`status.addresses` InternalIP, `status.daemonEndpoints.kubeletEndpoint.Port`)
with the apiserver's client certificate `apiserver-kubelet-client.crt`, made
from the cluster CA on start. The agent's serving certificate is not verified,
as kube-apiserver does not verify kubelets by default.

pods/log and nodes/proxy are plain HTTP, streamed through; exec, attach and
portforward are WebSockets (`v5.channel.k8s.io`, `SPDY/3.1+portforward.k8s.io`)
spliced message for message to the agent's WebSocket.

`install(app, registry, config)` plugs all of this into the app made by
`apiserver.app.create_app`: the `subresources.NODE_AGENT_PROXY` seam for plain
requests, a WebSocket route for upgrades, and `nodes/{name}/proxy/{path}` (a
path longer than the resource paths the router resolves).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from apiserver.handlers import negotiation, subresources
from ketch.api import errors
from ketch.api.resources import lookup

if TYPE_CHECKING:
    from fastapi import FastAPI

    from apiserver.config import ServerConfig
    from apiserver.handlers.paths import ResourcePath
    from apiserver.registry.registry import Registry

log = logging.getLogger("ketch.apiserver.node_proxy")

PODS = lookup("", "v1", "pods")
NODES = lookup("", "v1", "nodes")
DEFAULT_AGENT_PORT = 10250
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
CLIENT_CERT = "apiserver-kubelet-client.crt"
CLIENT_KEY = "apiserver-kubelet-client.key"
STREAMING = frozenset({"exec", "attach", "portforward"})
_AGENT_PATHS = {"log": "containerLogs", "exec": "exec", "attach": "attach", "portforward": "portForward"}
_LOG_PARAMS = ("follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime", "limitBytes")


# ------------------------------------------------------------------ credentials

def ensure_client_cert(cert_dir: Path) -> tuple[Path, Path]:
    """The apiserver's client certificate for node agents, signed by the cluster CA (made once).

    Several apiserver workers may start at once: a lock file makes one of them create it."""
    import fcntl

    cert_dir.mkdir(parents=True, exist_ok=True)
    with open(cert_dir / ".apiserver-kubelet-client.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_client_cert_locked(cert_dir)


def _ensure_client_cert_locked(cert_dir: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from apiserver.tls import _key_pem, _write_private, ensure_ca

    crt, key_path = cert_dir / CLIENT_CERT, cert_dir / CLIENT_KEY
    ca_cert, ca_key = ensure_ca(cert_dir)
    now = datetime.datetime.now(datetime.UTC)
    if crt.exists() and key_path.exists():
        existing = x509.load_pem_x509_certificate(crt.read_bytes())
        if existing.issuer == ca_cert.subject and existing.not_valid_after_utc > now + datetime.timedelta(days=30):
            return crt, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-kubelet-client")]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return crt, key_path


def client_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # agents serve self-signed certificates
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


# ------------------------------------------------------------------ targets

def _bad_request(message: str) -> errors.ApiError:
    return errors.bad_request(message)


def default_container(pod: dict) -> str:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    wanted = annotations.get(DEFAULT_CONTAINER_ANNOTATION)
    if wanted and wanted in names:
        return wanted
    if not names:
        raise _bad_request(f"pod {pod['metadata']['name']} has no containers")
    return names[0]


def _container_status(pod: dict, name: str) -> dict | None:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == name:
                return cs
    return None


def check_pod(pod: dict, sub: str, container: str, previous: bool = False) -> None:
    """kube-apiserver's (and the kubelet's) 400s for a container that cannot serve `sub` yet."""
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    all_names = [c["name"] for key in ("containers", "initContainers", "ephemeralContainers")
                 for c in spec.get(key) or []]
    if container not in all_names:
        raise _bad_request(f"container {container} is not valid for pod {name}")
    if not spec.get("nodeName"):
        raise _bad_request(f"pod {name} does not have a host assigned")
    phase = (pod.get("status") or {}).get("phase", "")
    if sub in ("exec", "attach") and phase in ("Succeeded", "Failed"):
        verb = "exec into" if sub == "exec" else "attach to"
        raise _bad_request(f"cannot {verb} a container in a completed pod; current phase is {phase}")
    cs = _container_status(pod, container) or {}
    state = cs.get("state") or {}
    if sub == "log" and previous:
        return  # the agent knows whether there is a prior instance
    if "running" in state or (sub == "log" and ("terminated" in state or (cs.get("lastState") or {}))):
        return
    if "terminated" in state and sub in ("exec", "attach"):
        raise _bad_request(f'container "{container}" in pod "{name}" is not running')
    reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
    raise _bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')


def node_address(node: dict) -> tuple[str, int]:
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    by_type = {a.get("type"): a.get("address") for a in addresses}
    host = by_type.get("InternalIP") or by_type.get("ExternalIP") or by_type.get("Hostname")
    if not host:
        raise errors.service_unavailable(f'node "{node["metadata"]["name"]}" reports no address to reach its agent')
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or DEFAULT_AGENT_PORT
    return host, int(port)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class NodeProxy:
    """Everything that reaches node agents, with one TLS identity and one HTTP client."""

    def __init__(self, registry_of: Any, cert: Path, key: Path) -> None:
        self._registry_of = registry_of
        self.ssl = client_ssl_context(cert, key)
        self._http: Any = None

    @property
    def registry(self) -> Registry:
        registry = self._registry_of()
        if registry is None:
            raise errors.service_unavailable("the apiserver is starting; try again shortly")
        return registry

    def http(self) -> Any:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(verify=self.ssl, timeout=httpx.Timeout(30.0, read=None))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def _node_base(self, node_name: str) -> str:
        node = await self.registry.for_info(NODES).get(None, node_name)
        host, port = node_address(node)
        return f"{_host_port(host, port)}"

    async def pod_target(self, namespace: str, name: str, sub: str, params: Any) -> tuple[str, str, str]:
        """(agent host:port, agent path, agent query) for a pod subresource request."""
        pod = await self.registry.pods.get(namespace, name)
        agent_name = _AGENT_PATHS.get(sub)
        if agent_name is None:
            raise errors.service_unavailable(f"pods/{sub} is not served by Ketch's node agents")
        query: list[tuple[str, str]] = []
        if sub == "portforward":
            if not (pod.get("spec") or {}).get("nodeName"):
                raise _bad_request(f"pod {name} does not have a host assigned")
            phase = (pod.get("status") or {}).get("phase", "")
            if phase != "Running":
                raise _bad_request(f"unable to forward port because pod is not running. Current status={phase}")
            path = f"/{agent_name}/{quote(namespace)}/{quote(name)}"
            query = [("port", p) for p in params.getlist("ports")]
        else:
            container = params.get("container") or default_container(pod)
            previous = (params.get("previous") or "").lower() == "true"
            check_pod(pod, sub, container, previous)
            path = f"/{agent_name}/{quote(namespace)}/{quote(name)}/{quote(container)}"
            if sub == "log":
                query = [(k, params[k]) for k in _LOG_PARAMS if params.get(k)]
            else:
                query = [("command", c) for c in params.getlist("command")]
                query += [(k, params[k]) for k in ("stdin", "stdout", "stderr", "tty") if k in params]
        base = await self._node_base(pod["spec"]["nodeName"])
        return base, path, urlencode(query)

    # ------------------------------------------------------------------ plain HTTP
    async def handle(self, request: Request, rp: ResourcePath, registry: Registry | None = None) -> Response:
        """The subresources seam: pods/log, nodes/proxy (no sub-path), streaming ones without an upgrade."""
        del registry
        sub, name = rp.subresource, rp.name or ""
        if rp.info.plural == "nodes" and sub == "proxy":
            return await self.node_proxy(request, name, "")
        if rp.info.plural != "pods":
            raise errors.service_unavailable(f"{rp.info.plural}/{sub} is not served by Ketch")
        if sub == "proxy":
            await self.registry.pods.get(rp.namespace, name)
            raise errors.service_unavailable("pods/proxy is not served by Ketch")
        base, path, query = await self.pod_target(rp.namespace or "", name, sub or "", request.query_params)
        if sub in STREAMING:
            # kubectl lands here when its WebSocket upgrade failed and it falls back to SPDY:
            # say why the WebSocket failed if the agent is down, else that SPDY is not served.
            await self._check_reachable(base)
            raise _bad_request(f"Upgrade request required: Ketch serves pods/{sub} over WebSocket only "
                               "(v5.channel.k8s.io, SPDY/3.1+portforward.k8s.io)")
        return await self._forward(request, f"https://{base}{path}", query)

    async def _check_reachable(self, base: str) -> None:
        host, _, port = base.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), int(port)), 3)
        except (OSError, TimeoutError) as exc:
            raise errors.service_unavailable(f"the node agent at {base} is not reachable: {exc}") from None
        writer.close()

    async def node_proxy(self, request: Request, node_name: str, rest: str) -> Response:
        base = await self._node_base(node_name)
        return await self._forward(request, f"https://{base}/{rest}", request.url.query)

    async def _forward(self, request: Request, url: str, query: str) -> Response:
        import httpx

        client = self.http()
        body = await request.body() if request.method not in ("GET", "HEAD") else None
        upstream = client.build_request(request.method, url + (f"?{query}" if query else ""), content=body)
        try:
            resp = await client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            raise errors.service_unavailable(f"the node agent at {url.split('/')[2]} is not reachable: "
                                             f"{exc or type(exc).__name__}") from None
        media = resp.headers.get("content-type", "text/plain")
        if resp.status_code >= 400:
            data = await resp.aread()
            await resp.aclose()
            return Response(data, resp.status_code, media_type=media)
        return StreamingResponse(_relay(resp), resp.status_code, media_type=media)

    # ------------------------------------------------------------------ WebSockets
    async def websocket(self, websocket: WebSocket, authenticate: Any, authorize: Any = None) -> None:
        """exec, attach, portforward upgrades: check, connect to the agent, splice both ways."""
        try:
            user = authenticate(websocket.headers.get("authorization"))
            if user is None:
                raise errors.unauthorized()
            if authorize is not None:
                allowed, reason = authorize(user, websocket.scope["path"])
                if not allowed:
                    raise errors.forbidden(reason or f'User "{user.name}" cannot create {websocket.scope["path"]}')
            namespace, name, sub = _pod_stream_path(websocket.scope["path"])
            base, path, query = await self.pod_target(namespace, name, sub, websocket.query_params)
        except errors.ApiError as exc:
            await _deny(websocket, exc.status, exc.code)
            return
        offered = list(websocket.scope.get("subprotocols") or [])
        import websockets

        url = f"wss://{base}{path}" + (f"?{query}" if query else "")
        try:
            upstream = await websockets.connect(url, ssl=self.ssl, subprotocols=offered or None,
                                                max_size=None, ping_interval=None, open_timeout=10,
                                                compression=None)
        except websockets.InvalidStatus as exc:  # the agent said no, with a Status: pass it on
            import json

            code = exc.response.status_code
            try:
                status = json.loads(exc.response.body or b"")
            except ValueError:
                status = errors.service_unavailable(f"the node agent at {base} refused the {sub} stream: "
                                                    f"HTTP {code}").status
                code = 503
            await _deny(websocket, status, code)
            return
        except (TimeoutError, OSError, websockets.WebSocketException) as exc:
            err = errors.service_unavailable(f"the node agent at {base} did not take the {sub} stream: {exc}")
            await _deny(websocket, err.status, err.code)
            return
        log.info("%s pod=%s/%s via %s protocol=%s", sub, namespace, name, base, upstream.subprotocol)
        await websocket.accept(subprotocol=upstream.subprotocol)
        await splice(websocket, upstream)


async def _relay(resp: Any) -> Any:
    try:
        async for chunk in resp.aiter_raw():
            yield chunk
    finally:
        await resp.aclose()


def _pod_stream_path(path: str) -> tuple[str, str, str]:
    parts = [p for p in path.split("/") if p]
    if (len(parts) == 7 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods"
            and parts[6] in STREAMING):
        return parts[3], parts[5], parts[6]
    raise errors.ApiError(errors.status(404, "NotFound", "the server could not find the requested resource"))


async def _deny(websocket: WebSocket, status: dict, code: int) -> None:
    """Answer an upgrade with a plain HTTP Status (kubectl shows its message)."""
    response = negotiation.json_response(status, code)
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:
        await websocket.close(1008, reason=str(status.get("message", ""))[:120])


async def splice(downstream: WebSocket, upstream: Any) -> None:
    """Copy messages both ways until either side closes; then close the other."""

    async def down_to_up() -> None:
        while True:
            message = await downstream.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            await upstream.send(data if data is not None else message.get("text") or "")

    async def up_to_down() -> None:
        async for message in upstream:
            if isinstance(message, bytes):
                await downstream.send_bytes(message)
            else:
                await downstream.send_text(message)

    tasks = [asyncio.create_task(down_to_up()), asyncio.create_task(up_to_down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await upstream.close()
        with contextlib.suppress(Exception):
            await downstream.close(1000)


def _nodes_proxy_rest(path: str) -> tuple[str, str] | None:
    """(node, rest) for `/api/v1/nodes/{node}/proxy/{rest...}`."""
    parts = path.split("/")
    if len(parts) >= 7 and parts[1:4] == ["api", "v1", "nodes"] and parts[5] == "proxy" and parts[4]:
        return parts[4], "/".join(parts[6:])
    return None


def install(app: FastAPI, registry: Registry | None, config: ServerConfig) -> NodeProxy:
    """Wire the node proxy into `app` (made by apiserver.app.create_app)."""
    from ketch.streaming.ws_compat import allow_kubernetes_subprotocols

    allow_kubernetes_subprotocols()
    server = app.state.server
    cert, key = ensure_client_cert(config.pki_dir)
    proxy = NodeProxy(lambda: registry or server.registry, cert, key)
    subresources.NODE_AGENT_PROXY = proxy.handle

    def authorize(user: Any, path: str) -> tuple[bool, str]:
        from apiserver.auth import Attributes

        return server.authorizer.authorize(Attributes(user, "create", path))

    async def ws_endpoint(websocket: WebSocket) -> None:
        try:
            await proxy.websocket(websocket, server.authenticator.authenticate, authorize)
        except WebSocketDisconnect:
            pass

    app.router.add_websocket_route("/{path:path}", ws_endpoint)

    original_route = server.route

    async def route(request: Request, path: str, ri: Any) -> Response:
        target = _nodes_proxy_rest(path)
        if target is None:
            return await original_route(request, path, ri)
        ri.resource, ri.verb = "nodes", "get" if request.method == "GET" else "create"
        return await proxy.node_proxy(request, target[0], target[1])

    server.route = route
    return proxy
