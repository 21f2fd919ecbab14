"""Our Status bodies as the real kubectl reports them to a user.

A throwaway HTTP server on 127.0.0.1 (ephemeral port) answers every object
request with an `ApiError`'s Status; kubectl must print Kubernetes' wording.
Skipped where kubectl is not installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ketch.api import errors, resources
from tests.unit.api.kubectl_harness import KUBECTL, run_kubectl, serving, write_kubeconfig

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

PODS = resources.lookup("", "v1", "pods")
DEPLOYMENTS = resources.lookup("apps", "v1", "deployments")


@dataclass
class Cause:
    type: str
    field: str
    message: str


ANSWERS = {
    ("GET", "/api/v1/namespaces/default/pods/missing"): errors.not_found(PODS, "missing"),
    ("GET", "/api/v1/namespaces/default/pods/secret"): errors.forbidden(
        "not today", PODS, "secret"
    ),
    ("POST", "/apis/apps/v1/namespaces/default/deployments"): errors.invalid(
        DEPLOYMENTS,
        "web",
        [
            Cause(
                "FieldValueInvalid",
                "spec.replicas",
                "Invalid value: -1: must be greater than or equal to 0",
            )
        ],
    ),
    ("POST", "/api/v1/namespaces/default/pods"): errors.already_exists(PODS, "web-1"),
}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, method):
        path = self.path.split("?")[0]
        if self.headers.get("Content-Length"):
            self.rfile.read(int(self.headers["Content-Length"]))
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            gv = {"groupVersion": "apps/v1", "version": "v1"}
            return self._send(
                200,
                {
                    "kind": "APIGroupList",
                    "groups": [{"name": "apps", "versions": [gv], "preferredVersion": gv}],
                },
            )
        if path in ("/api/v1", "/apis/apps/v1"):
            info = PODS if path == "/api/v1" else DEPLOYMENTS
            entry = {
                "name": info.plural,
                "singularName": info.singular,
                "namespaced": True,
                "kind": info.kind,
                "verbs": ["create", "get", "list"],
            }
            return self._send(
                200,
                {
                    "kind": "APIResourceList",
                    "groupVersion": path.split("/", 2)[-1] if path != "/api/v1" else "v1",
                    "resources": [entry],
                },
            )
        error = ANSWERS.get((method, path)) or errors.not_found("things", path)
        return self._send(error.code, error.status)

    def do_GET(self):  # noqa: N802
        self._answer("GET")

    def do_POST(self):  # noqa: N802
        self._answer("POST")


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kubectl-errors")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    with serving(server):
        kubeconfig = write_kubeconfig(tmp, server.server_port)

        def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
            out = run_kubectl(tmp, kubeconfig, *args, stdin=stdin)
            return out.returncode, out.stderr.strip()

        yield run


def test_not_found_and_forbidden(kubectl):
    assert kubectl("get", "pod", "missing") == (
        1,
        'Error from server (NotFound): pods "missing" not found',
    )
    assert kubectl("get", "pod", "secret") == (
        1,
        'Error from server (Forbidden): pods "secret" is forbidden: not today',
    )


def test_invalid_prints_the_field(kubectl):
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": -1, "selector": {}, "template": {}},
    }
    code, stderr = kubectl("create", "-f", "-", "--validate=false", stdin=json.dumps(manifest))
    assert code == 1
    assert stderr == (
        'The Deployment "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
    )


def test_already_exists(kubectl):
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1"},
        "spec": {"containers": []},
    }
    code, stderr = kubectl("create", "-f", "-", "--validate=false", stdin=json.dumps(manifest))
    assert (code, stderr) == (
        1,
        'Error from server (AlreadyExists): error when creating "STDIN": pods "web-1" already exists',
    )
