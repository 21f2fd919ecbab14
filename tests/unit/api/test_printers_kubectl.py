"""Our Tables rendered by the real kubectl: shape accepted, columns as kubectl prints them.

A throwaway HTTP server on 127.0.0.1 (ephemeral port) answers discovery and
list requests with `printers.table(...)`; `kubectl get` must print the rows.
Skipped where kubectl is not installed.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ketch.api import resources
from ketch.api.printers import table
from ketch.api.timeutil import format_rfc3339, now
from tests.unit.api.kubectl_harness import KUBECTL, run_kubectl, serving, write_kubeconfig

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

THREE_HOURS_AGO = format_rfc3339(now() - timedelta(hours=3))


def _meta(name, namespace="default", **extra):
    meta = {"name": name, "creationTimestamp": THREE_HOURS_AGO, "uid": f"uid-{name}", **extra}
    if namespace:
        meta["namespace"] = namespace
    return meta


OBJECTS = {
    "pods": [
        {
            "metadata": _meta("web-1", labels={"app": "web"}),
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "busybox"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.1.0.5",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}
                ],
            },
        },
        {
            "metadata": _meta("web-2", labels={"app": "web"}),
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Pending"},
        },
    ],
    "deployments": [
        {
            "metadata": _meta("web"),
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}},
            },
            "status": {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1},
        }
    ],
    "nodes": [
        {
            "metadata": _meta("node-a", namespace=None),
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0"},
                "addresses": [{"type": "InternalIP", "address": "192.168.7.2"}],
            },
        }
    ],
    "events": [
        {
            "metadata": _meta("web-1.abc"),
            "involvedObject": {"kind": "Pod", "name": "web-1"},
            "reason": "Started",
            "type": "Normal",
            "message": "Started container c",
            "lastTimestamp": THREE_HOURS_AGO,
        }
    ],
}

INFOS = {
    "pods": resources.lookup("", "v1", "pods"),
    "nodes": resources.lookup("", "v1", "nodes"),
    "events": resources.lookup("", "v1", "events"),
    "deployments": resources.lookup("apps", "v1", "deployments"),
}


def _resource_entry(info):
    return {
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": ["get", "list"],
        "shortNames": list(info.short_names),
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)


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

    def do_GET(self):  # noqa: N802
        path = self.path.split("?")[0]
        core = [i for i in INFOS.values() if not i.group]
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            gv = {"groupVersion": "apps/v1", "version": "v1"}
            return self._send(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [{"name": "apps", "versions": [gv], "preferredVersion": gv}],
                },
            )
        if path == "/api/v1":
            return self._send(
                200,
                {
                    "kind": "APIResourceList",
                    "groupVersion": "v1",
                    "resources": [_resource_entry(i) for i in core],
                },
            )
        if path == "/apis/apps/v1":
            return self._send(
                200,
                {
                    "kind": "APIResourceList",
                    "groupVersion": "apps/v1",
                    "resources": [_resource_entry(INFOS["deployments"])],
                },
            )
        plural = path.rstrip("/").rsplit("/", 1)[-1]
        if plural in OBJECTS and "as=Table" in (self.headers.get("Accept") or ""):
            body = table(INFOS[plural], OBJECTS[plural])
            body["metadata"]["resourceVersion"] = "7"
            return self._send(200, body)
        return self._send(
            404,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "NotFound",
                "code": 404,
            },
        )


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kubectl-get")
    with serving(_Server()) as server:
        kubeconfig = write_kubeconfig(tmp, server.server_port)

        def run(*args: str) -> list[list[str]]:
            out = run_kubectl(tmp, kubeconfig, *args)
            assert out.returncode == 0, out.stderr
            return [re.split(r"\s{2,}", line.strip()) for line in out.stdout.strip().splitlines()]

        yield run


def test_kubectl_get_pods(kubectl):
    assert kubectl("get", "pods") == [
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ["web-1", "1/1", "Running", "0", "3h"],
        ["web-2", "0/1", "Pending", "0", "3h"],
    ]


def test_kubectl_get_pods_wide_and_labels(kubectl):
    rows = kubectl("get", "pods", "-o", "wide", "--show-labels")
    assert rows[0] == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
        "LABELS",
    ]
    assert rows[1] == [
        "web-1",
        "1/1",
        "Running",
        "0",
        "3h",
        "10.1.0.5",
        "node-a",
        "<none>",
        "<none>",
        "app=web",
    ]


def test_kubectl_get_deployments_wide(kubectl):
    assert kubectl("get", "deployments") == [
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        ["web", "1/2", "2", "1", "3h"],
    ]
    wide = kubectl("get", "deploy", "-o", "wide")
    assert wide[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1][-3:] == ["c", "busybox", "app=web"]


def test_kubectl_get_nodes_and_events(kubectl):
    assert kubectl("get", "nodes") == [
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        ["node-a", "Ready", "<none>", "3h", "v1.32.0"],
    ]
    assert kubectl("get", "events") == [
        ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        ["3h", "Normal", "Started", "pod/web-1", "Started container c"],
    ]
