"""A small synchronous HTTPS client for the Kubernetes REST API, built for start-up speed.

Why not http.client: importing it pulls in the `email` package (~12 ms here),
as much as a whole `ketch get pods` should cost. HTTP/1.1 as an API server
speaks it is small: a request line, headers, and a body delimited by
Content-Length, chunked encoding, or connection close. One connection is kept
alive for every request of a command; a watch uses a connection of its own.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import quote, urlencode, urlsplit

from ketch.client.kubeconfig import Connection

USER_AGENT = "ketch/0.1.0"
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


class TransportError(Exception):
    """The server could not be reached or spoke something other than HTTP."""


class ApiStatusError(Exception):
    """A non-2xx answer; `status` is the server's v1 Status (or one built from the body)."""

    def __init__(self, code: int, status: dict[str, object]):
        self.code = code
        self.status = status
        super().__init__(status.get("message") or f"HTTP {code}")

    @property
    def reason(self) -> str:
        return str(self.status.get("reason") or "")

    @property
    def message(self) -> str:
        return str(self.status.get("message") or "")


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    def json(self) -> object:
        return json.loads(self.body) if self.body else None


def _status_from(code: int, body: bytes) -> dict[str, object]:
    try:
        data = json.loads(body)
        if isinstance(data, dict) and data.get("kind") == "Status":
            return data
    except ValueError:
        pass
    text = body.decode("utf-8", "replace").strip()
    reason = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
              409: "Conflict", 410: "Gone", 422: "Invalid", 500: "InternalError",
              503: "ServiceUnavailable"}.get(code, "")
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": text or f"the server responded with HTTP {code}"}


def ssl_context(conn: Connection) -> ssl.SSLContext:
    """TLS trusting only the cluster CA (no system store: loading it costs ~15 ms)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if conn.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif conn.ca_data:
        ctx.load_verify_locations(cadata=conn.ca_data.decode("ascii", "replace"))
    else:
        ctx.load_default_certs()
    if conn.client_cert_data and conn.client_key_data:
        # ssl only loads key pairs from files: write them to a private temp dir briefly.
        import tempfile

        with tempfile.TemporaryDirectory(prefix="ketch-tls-") as d:
            cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            for path, data in ((cert, conn.client_cert_data), (key, conn.client_key_data)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            ctx.load_cert_chain(cert, key)
    return ctx


class _HttpConnection:
    """One HTTP/1.1 connection (optionally TLS) with keep-alive."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None, server_name: str | None,
                 timeout: float | None):
        self.host, self.port, self.tls = host, port, tls
        self.server_name = server_name or host
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.reader = None

    def connect(self) -> None:
        try:
            # bytes: a str host goes through the idna codec (an import of its own)
            host = self.host.encode("ascii") if self.host.isascii() else self.host
            sock = socket.create_connection((host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                name = self.server_name
                name = name.encode("ascii") if name.isascii() else name  # bytes: no idna codec import
                sock = self.tls.wrap_socket(sock, server_hostname=name)
        except ssl.SSLCertVerificationError as e:
            raise TransportError(
                f"Unable to connect to the server: tls: failed to verify certificate: {e.verify_message}"
            ) from None
        except OSError as e:
            raise TransportError(
                f"The connection to the server {self.host}:{self.port} was refused - "
                f"did you specify the right host or port? ({e.strerror or e})"
            ) from None
        self.sock = sock
        self.reader = sock.makefile("rb")

    def close(self) -> None:
        for closable in (self.reader, self.sock):
            if closable is not None:
                try:
                    closable.close()
                except OSError:
                    pass
        self.sock = self.reader = None

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> None:
        if self.sock is None:
            self.connect()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        self.sock.sendall(data)

    def read_head(self) -> tuple[int, dict[str, str]]:
        line = self.reader.readline(65537)
        if not line:
            raise ConnectionResetError("server closed the connection")
        parts = line.decode("latin-1").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise TransportError(f"malformed HTTP status line: {line[:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            h = self.reader.readline(65537)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def body_chunks(self, headers: dict[str, str]) -> Iterator[bytes]:
        """The body as it arrives (chunk by chunk when chunked)."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size_line = self.reader.readline(65537)
                if not size_line:
                    raise TransportError("connection closed inside a chunked body")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.reader.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                data = self.reader.read(size)
                self.reader.readline(65537)  # CRLF after the chunk
                yield data
        elif "content-length" in headers:
            n = int(headers["content-length"])
            if n:
                yield self.reader.read(n)
        else:
            yield self.reader.read()
            self.close()


class RestClient:
    """Requests against one API server with the credentials of a kubeconfig context."""

    def __init__(self, conn: Connection, *, timeout: float | None = 60.0):
        self.conn = conn
        self.namespace = conn.namespace
        url = urlsplit(conn.server)
        self.scheme = url.scheme or "https"
        self.host = url.hostname or "localhost"
        self.port = url.port or (443 if self.scheme == "https" else 80)
        self.base_path = url.path.rstrip("/")
        self.timeout = timeout
        self._tls: ssl.SSLContext | None = None
        self._http: _HttpConnection | None = None
        self._auth = self._auth_header()

    def _auth_header(self) -> str | None:
        if self.conn.token:
            return f"Bearer {self.conn.token}"
        if self.conn.username is not None:
            import base64

            raw = f"{self.conn.username}:{self.conn.password or ''}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        return None

    def _new_connection(self, timeout: float | None) -> _HttpConnection:
        if self.scheme == "https" and self._tls is None:
            self._tls = ssl_context(self.conn)
        tls = self._tls if self.scheme == "https" else None
        return _HttpConnection(self.host, self.port, tls, self.conn.tls_server_name, timeout)

    def _target(self, path: str, query: object) -> str:
        target = self.base_path + quote(path, safe="/:@!$&'()*+,;=-._~")
        if query:
            items = [(k, v) for k, v in (query.items() if isinstance(query, dict) else query)
                     if v is not None and v != ""]
            items = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in items]
            if items:
                target += "?" + urlencode(items)
        return target

    def _headers(self, accept: str, content_type: str | None) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": accept}
        if self._auth:
            headers["Authorization"] = self._auth
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def request(self, method: str, path: str, *, query: object = None, body: object = None,
                content_type: str = JSON, accept: str = JSON) -> Response:
        """One request on the kept-alive connection; reconnects once if the server closed it."""
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        target = self._target(path, query)
        headers = self._headers(accept, content_type if payload is not None else None)
        for attempt in (1, 2):
            if self._http is None:
                self._http = self._new_connection(self.timeout)
            http = self._http
            fresh = http.sock is None
            try:
                http.send(method, target, headers, payload)
                status, resp_headers = http.read_head()
                data = b"".join(http.body_chunks(resp_headers))
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                self.close()
                if attempt == 2 or fresh:
                    raise TransportError(
                        f"the connection to {self.host}:{self.port} was closed by the server"
                    ) from None
                continue
            except TimeoutError:
                self.close()
                raise TransportError(
                    f"Unable to connect to the server: timed out after {self.timeout}s"
                ) from None
            if resp_headers.get("connection", "").lower() == "close":
                self.close()
            return Response(status, resp_headers, data)
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, **kw) -> object:
        """A request whose 2xx JSON answer is returned; anything else raises ApiStatusError."""
        resp = self.request(method, path, **kw)
        if resp.status >= 300:
            raise ApiStatusError(resp.status, _status_from(resp.status, resp.body))
        return resp.json()

    def get(self, path: str, **kw) -> object:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: object, **kw) -> object:
        return self.call("POST", path, body=body, **kw)

    def put(self, path: str, body: object, **kw) -> object:
        return self.call("PUT", path, body=body, **kw)

    def patch(self, path: str, body: object, *, content_type: str = MERGE_PATCH, **kw) -> object:
        return self.call("PATCH", path, body=body, content_type=content_type, **kw)

    def delete(self, path: str, body: object = None, **kw) -> object:
        return self.call("DELETE", path, body=body, **kw)

    def watch(self, path: str, *, query: object = None, accept: str = JSON,
              timeout: float | None = None) -> Iterator[dict[str, object]]:
        """Watch events ({"type", "object"}) as the server streams them, on a connection of their own."""
        q = dict(query or {})
        q["watch"] = "true"
        http = self._new_connection(timeout)
        try:
            http.send("GET", self._target(path, q), self._headers(accept, None), None)
            status, headers = http.read_head()
            if status >= 300:
                body = b"".join(http.body_chunks(headers))
                raise ApiStatusError(status, _status_from(status, body))
            pending = b""
            for chunk in http.body_chunks(headers):
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
            if pending.strip():
                yield json.loads(pending)
        except TimeoutError:
            return
        finally:
            http.close()


def resource_path(group: str, version: str, plural: str, *, namespace: str | None = None,
                  name: str | None = None, subresource: str | None = None) -> str:
    """`/api/v1/namespaces/ns/pods/x/status`, `/apis/apps/v1/deployments`, ..."""
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name:
        path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
    return path
