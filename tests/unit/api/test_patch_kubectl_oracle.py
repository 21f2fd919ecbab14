"""Strategic merge patch checked against kubectl's own implementation.

`kubectl patch --local` applies a strategic merge patch offline with the
compiled-in Kubernetes types (no server involved), so every case here is
judged by the real thing. Skipped where kubectl is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from ketch.api import resources
from ketch.api.patch import strategic_merge_patch
from ketch.api.schema import schema_for

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


def deployment(containers, **pod_spec):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "finalizers": ["a/x", "b/y", "c/z"]},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers, **pod_spec},
            },
        },
    }


def pod_spec(**fields):
    return {"spec": {"template": {"spec": fields}}}


ABC = [{"name": n, "image": n.upper()} for n in "abc"]
WEB = [
    {
        "name": "web",
        "image": "nginx:1",
        "args": ["--a", "--b"],
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
]
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "svc", "namespace": "default"},
    "spec": {
        "selector": {"app": "web"},
        "ports": [
            {"port": 80, "targetPort": 8080, "name": "http"},
            {"port": 443, "targetPort": 8443, "name": "https"},
        ],
    },
}

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "p",
        "namespace": "default",
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1"}
        ],
    },
    "spec": {
        "containers": [{"name": "c", "image": "busybox"}],
        "imagePullSecrets": [{"name": "reg1"}],
        "tolerations": [{"key": "a", "operator": "Exists"}],
    },
    "status": {
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False"},
        ],
        "podIPs": [{"ip": "10.0.0.1"}],
    },
}
NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "n"},
    "spec": {"podCIDRs": ["10.1.0.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]},
    "status": {
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "Starting"},
            {"type": "MemoryPressure", "status": "False"},
        ],
        "addresses": [
            {"type": "InternalIP", "address": "192.168.0.2"},
            {"type": "Hostname", "address": "n"},
        ],
    },
}

CASES = {
    "add-container-goes-first": (
        deployment(ABC),
        pod_spec(containers=[{"name": "d", "image": "D"}]),
    ),
    "merge-and-add-interleave": (
        deployment(ABC),
        pod_spec(containers=[{"name": "b", "image": "B2"}, {"name": "d", "image": "D"}]),
    ),
    "delete-container-with-order": (
        deployment(ABC),
        pod_spec(
            **{
                "$setElementOrder/containers": [{"name": "a"}, {"name": "c"}],
                "containers": [{"$patch": "delete", "name": "b"}],
            }
        ),
    ),
    "reorder-only": (
        deployment(ABC),
        pod_spec(**{"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}),
    ),
    "order-with-new-element": (
        deployment(ABC),
        pod_spec(
            **{
                "$setElementOrder/containers": [
                    {"name": "c"},
                    {"name": "new"},
                    {"name": "a"},
                    {"name": "b"},
                ],
                "containers": [{"name": "new", "image": "N"}],
            }
        ),
    ),
    "replace-list": (
        deployment(ABC),
        pod_spec(containers=[{"name": "z", "image": "Z"}, {"$patch": "replace"}]),
    ),
    "env-ports-mounts-args": (
        deployment(WEB),
        pod_spec(
            containers=[
                {
                    "name": "web",
                    "args": ["--c"],
                    "env": [
                        {"name": "B", "value": "20"},
                        {"name": "A", "$patch": "delete"},
                        {"name": "C", "value": "3"},
                    ],
                    "ports": [
                        {"containerPort": 8080, "name": "alt"},
                        {"containerPort": 80, "protocol": "TCP"},
                    ],
                    "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
                }
            ]
        ),
    ),
    "volumes-retain-keys": (
        deployment(ABC, volumes=[{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]),
        pod_spec(
            volumes=[{"name": "v", "$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/x"}}]
        ),
    ),
    "strategy-retain-keys": (
        deployment(ABC),
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
    ),
    "finalizers": (
        deployment(ABC),
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b/y"], "finalizers": ["d/w"]}},
    ),
    "finalizers-order": (
        deployment(ABC),
        {"metadata": {"$setElementOrder/finalizers": ["c/z", "a/x", "b/y"]}},
    ),
    "tolerations-replace-and-nulls": (
        deployment(
            ABC,
            tolerations=[{"key": "k1", "operator": "Exists"}],
            nodeSelector={"a": "1", "b": "2"},
        ),
        pod_spec(tolerations=[{"key": "k2", "operator": "Exists"}], nodeSelector={"a": None}),
    ),
    "map-replace-directive": (
        deployment(ABC, nodeSelector={"a": "1"}),
        pod_spec(nodeSelector={"$patch": "replace", "z": "9"}),
    ),
    "pod-status-conditions-and-ips": (
        POD,
        {
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "True"},
                    {"type": "Initialized", "status": "True"},
                ],
                "podIPs": [{"ip": "fd00::1"}],
            }
        },
    ),
    "pod-owner-secrets-tolerations": (
        POD,
        {
            "metadata": {"ownerReferences": [{"uid": "u1", "controller": True}]},
            "spec": {
                "imagePullSecrets": [{"name": "reg2"}],
                "tolerations": [{"key": "b", "operator": "Exists"}],
            },
        },
    ),
    "node-status-and-cidrs": (
        NODE,
        {
            "spec": {"podCIDRs": ["fd00:1::/64"], "taints": [{"key": "b", "effect": "NoExecute"}]},
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.0.3"}],
            },
        },
    ),
    "service-ports-by-port": (
        SERVICE,
        {
            "spec": {
                "ports": [
                    {"port": 443, "targetPort": 9443},
                    {"port": 53, "protocol": "UDP", "name": "dns"},
                ]
            }
        },
    ),
}

# Fields kubectl's typed round trip adds or rewrites that say nothing about patching.
_IGNORED = {"creationTimestamp", "status", "resources", "terminationMessagePath", "strategy"}


def _normalise(value):
    if isinstance(value, dict):
        return {
            k: _normalise(v)
            for k, v in value.items()
            if not (k in _IGNORED and v in (None, {}, []))
        }
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _kubectl_patch(obj: dict, patch: dict, tmp_path, name: str) -> dict:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(obj))
    out = subprocess.run(
        [
            KUBECTL,
            "patch",
            "-f",
            str(path),
            "--local",
            "--type",
            "strategic",
            "-p",
            json.dumps(patch),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(tmp_path / "none"), "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def kubectl_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kubectl-patch")
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {
            name: pool.submit(_kubectl_patch, obj, patch, tmp, name)
            for name, (obj, patch) in CASES.items()
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_kubectl(name, kubectl_results):
    obj, patch = CASES[name]
    info = resources.by_kind(obj["apiVersion"], obj["kind"])
    ours = strategic_merge_patch(obj, patch, schema_for(info))
    assert _normalise(ours) == _normalise(kubectl_results[name])
