"""The stdlib HTTP/1.1 client: response framing, errors as Status, query strings, paths."""

from __future__ import annotations

import io
import json

import pytest

from ketch.client.kubeconfig import Connection
from ketch.client.rest import (
    ApiStatusError,
    RestClient,
    _HttpConnection,
    _status_from,
    resource_path,
)


def connection_reading(raw: bytes) -> _HttpConnection:
    http = _HttpConnection("h", 1, None, None, 1.0)
    http.reader = io.BufferedReader(io.BytesIO(raw))
    return http


def test_content_length_body():
    http = connection_reading(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\n{}EXTRA")
    status, headers = http.read_head()
    assert (status, headers["x-a"]) == (200, "b")
    assert b"".join(http.body_chunks(headers)) == b"{}"


def test_chunked_body_with_extensions_and_trailers():
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
    http = connection_reading(raw)
    status, headers = http.read_head()
    assert list(http.body_chunks(headers)) == [b"hello", b" world"]


def test_error_bodies_become_status():
    status = {"kind": "Status", "reason": "NotFound", "message": "nope", "code": 404}
    assert _status_from(404, json.dumps(status).encode()) == status
    plain = _status_from(503, b"etcd down")
    assert (plain["reason"], plain["message"], plain["code"]) == ("ServiceUnavailable", "etcd down", 503)
    err = ApiStatusError(404, status)
    assert (err.reason, err.message, err.code) == ("NotFound", "nope", 404)


def test_targets_and_auth():
    conn = Connection("https://example:8443/prefix/")
    conn.token = "T"
    client = RestClient(conn)
    assert (client.host, client.port, client.base_path) == ("example", 8443, "/prefix")
    target = client._target("/api/v1/pods", {"labelSelector": "a in (x,y)", "limit": 500,
                                              "watch": True, "empty": "", "none": None})
    assert target == "/prefix/api/v1/pods?labelSelector=a+in+%28x%2Cy%29&limit=500&watch=true"
    assert client._headers("application/json", None)["Authorization"] == "Bearer T"


def test_resource_paths():
    assert resource_path("", "v1", "pods", namespace="ns", name="p", subresource="status") == \
        "/api/v1/namespaces/ns/pods/p/status"
    assert resource_path("apps", "v1", "deployments") == "/apis/apps/v1/deployments"


def test_unreachable_server_is_a_transport_error():
    from ketch.client.rest import TransportError

    conn = Connection("http://127.0.0.1:1")
    with pytest.raises(TransportError, match="refused"):
        RestClient(conn, timeout=1).get("/version")
