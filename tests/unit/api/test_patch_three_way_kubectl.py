"""`three_way_strategic_merge_patch` judged against the patch kubectl apply sends.

A throwaway HTTP server on 127.0.0.1 (ephemeral port) answers discovery, GET
with the live object and records the PATCH body of
`kubectl apply --dry-run=server`; the recorded patch must equal ours, last-applied
annotation included. Skipped where kubectl is not installed.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ketch.api import resources
from ketch.api.patch import three_way_strategic_merge_patch
from ketch.api.schema import schema_for
from tests.unit.api.kubectl_harness import KUBECTL, run_kubectl, serving, write_kubeconfig

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def deployment(name, containers, labels=None, replicas=2, **pod_spec):
    meta = {"name": name, "namespace": "default"}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": containers, **pod_spec},
            },
        },
    }


def live(obj, **server_fields):
    """What the server holds: defaults inside list items, status, server metadata."""
    current = json.loads(json.dumps(obj))
    current["metadata"].update(
        uid="u-" + obj["metadata"]["name"], resourceVersion="42", generation=1
    )
    for container in current["spec"]["template"]["spec"]["containers"]:
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
    current["spec"].setdefault("revisionHistoryLimit", 10)
    current["status"] = {"replicas": obj["spec"].get("replicas", 1)}
    current.update(server_fields)
    return current


C = {"name": "web", "image": "nginx:1"}
SIDECAR = {"name": "log", "image": "busybox", "args": ["tail", "-f"]}

# name: (last applied, new manifest, live object)
CASES = {
    "unchanged": lambda n: (deployment(n, [C, SIDECAR]), deployment(n, [C, SIDECAR])),
    "image-change": lambda n: (deployment(n, [C]), deployment(n, [{**C, "image": "nginx:2"}])),
    "drop-container": lambda n: (deployment(n, [C, SIDECAR]), deployment(n, [C])),
    "add-container-first": lambda n: (deployment(n, [C]), deployment(n, [SIDECAR, C])),
    "reorder": lambda n: (deployment(n, [C, SIDECAR]), deployment(n, [SIDECAR, C])),
    "env-and-ports": lambda n: (
        deployment(
            n,
            [
                {
                    **C,
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "ports": [{"containerPort": 80}],
                }
            ],
        ),
        deployment(
            n,
            [
                {
                    **C,
                    "env": [{"name": "B", "value": "3"}],
                    "ports": [{"containerPort": 80}, {"containerPort": 443}],
                }
            ],
        ),
    ),
    "labels-and-replicas": lambda n: (
        deployment(n, [C], labels={"a": "1", "b": "2"}, replicas=2),
        deployment(n, [C], labels={"a": "1", "c": "3"}, replicas=5),
    ),
    "args-replace-and-dropped-field": lambda n: (
        deployment(n, [C, SIDECAR], nodeSelector={"disk": "ssd"}),
        deployment(n, [C, {**SIDECAR, "args": ["sleep", "1"]}]),
    ),
    "volume-source-switch": lambda n: (
        deployment(n, [C], volumes=[{"name": "v", "emptyDir": {}}]),
        deployment(n, [C], volumes=[{"name": "v", "hostPath": {"path": "/data"}}]),
    ),
    "strategy-switch": lambda n: (
        {
            **deployment(n, [C]),
            "spec": {
                **deployment(n, [C])["spec"],
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            },
        },
        {
            **deployment(n, [C]),
            "spec": {**deployment(n, [C])["spec"], "strategy": {"type": "Recreate"}},
        },
    ),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, objects: dict[str, dict]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.objects = objects
        self.patches: dict[str, tuple[str, dict]] = {}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self) -> None:
        self._send(
            404,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "NotFound",
                "code": 404,
            },
        )

    def do_GET(self):  # noqa: N802
        path = self.path.split("?")[0]
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            group = {"groupVersion": "apps/v1", "version": "v1"}
            return self._send(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [{"name": "apps", "versions": [group], "preferredVersion": group}],
                },
            )
        if path == "/api/v1":
            return self._send(
                200,
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": "v1",
                    "resources": [],
                },
            )
        if path == "/apis/apps/v1":
            deployments = {
                "name": "deployments",
                "singularName": "deployment",
                "namespaced": True,
                "kind": "Deployment",
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
            return self._send(
                200,
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": "apps/v1",
                    "resources": [deployments],
                },
            )
        prefix = "/apis/apps/v1/namespaces/default/deployments/"
        if path.startswith(prefix) and path[len(prefix) :] in self.server.objects:
            return self._send(200, self.server.objects[path[len(prefix) :]])
        return self._not_found()

    def do_PATCH(self):  # noqa: N802
        path = self.path.split("?")[0]
        name = path.rsplit("/", 1)[-1]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.patches[name] = (self.headers["Content-Type"], body)
        if name not in self.server.objects:
            return self._not_found()
        return self._send(200, self.server.objects[name])


def last_applied_text(manifest: dict) -> str:
    """The annotation value kubectl writes: the manifest with empty annotations, compact JSON."""
    body = json.loads(json.dumps(manifest))
    body["metadata"].setdefault("annotations", {})
    return json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"


def annotated(manifest: dict) -> dict:
    """The `modified` kubectl diffs against: the manifest carrying its own last-applied text."""
    body = json.loads(json.dumps(manifest))
    body["metadata"].setdefault("annotations", {})[LAST_APPLIED] = last_applied_text(manifest)
    return body


@pytest.fixture(scope="module")
def kubectl_patches(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kubectl-apply")
    objects, manifests, expected = {}, [], {}
    for case, build in CASES.items():
        original, modified = build(case)
        current = live(original)
        current["metadata"]["annotations"] = {LAST_APPLIED: last_applied_text(original)}
        objects[case] = current
        manifests.append(modified)
        expected[case] = (json.loads(last_applied_text(original)), annotated(modified), current)
    with serving(_Server(objects)) as server:
        kubeconfig = write_kubeconfig(tmp, server.server_port)
        manifest = tmp / "all.json"
        manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))
        out = run_kubectl(tmp, kubeconfig, "apply", "-f", str(manifest), "--dry-run=server",
                          "--validate=false", timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
    return server.patches, expected, out.stdout


@pytest.mark.parametrize("case", list(CASES))
def test_three_way_strategic_patch_matches_kubectl_apply(case, kubectl_patches):
    patches, expected, stdout = kubectl_patches
    original, modified, current = expected[case]
    schema = schema_for(resources.by_kind("apps/v1", "Deployment"))
    ours = three_way_strategic_merge_patch(original, modified, current, schema)
    if case == "unchanged":
        assert ours == {}
        assert case not in patches and f"deployment.apps/{case} unchanged" in stdout
        return
    content_type, theirs = patches[case]
    assert content_type.startswith("application/strategic-merge-patch+json")
    assert ours == theirs
