"""The real kubectl 1.32 against a real apiserver: what users type must just work."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  a: "1"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sleep", "3600"]
        env:
        - name: A
          value: "1"
        - name: B
          value: "1"
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
"""


class Kubectl:
    def __init__(self, apiserver, namespace: str, cache_dir: Path) -> None:
        self.base = [KUBECTL, "--kubeconfig", str(apiserver.kubeconfig), "--cache-dir", str(cache_dir),
                     "-n", namespace]

    def run(self, *args: str, check: bool = True, stdin: str | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.base, *args], capture_output=True, text=True, input=stdin, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc


@pytest.fixture
def kubectl(apiserver, namespace: str, tmp_path: Path) -> Kubectl:
    return Kubectl(apiserver, namespace, tmp_path / "cache")


def test_apply_reapply_get_describe_scale_label_delete(kubectl: Kubectl, tmp_path: Path, api, namespace) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFEST)
    out = kubectl.run("apply", "-f", str(manifest)).stdout
    assert "configmap/cfg created" in out
    assert "deployment.apps/web created" in out
    assert "service/web created" in out

    # a changed re-apply: replicas, one env var changed, one removed
    changed = MANIFEST.replace("replicas: 2", "replicas: 3").replace('        - name: B\n          value: "1"\n', "")
    changed = changed.replace('- name: A\n          value: "1"', '- name: A\n          value: "2"')
    manifest.write_text(changed)
    out = kubectl.run("apply", "-f", str(manifest)).stdout
    assert "deployment.apps/web configured" in out and "configmap/cfg unchanged" in out
    dep = json.loads(kubectl.run("get", "deployment", "web", "-o", "json").stdout)
    assert dep["spec"]["replicas"] == 3 and dep["metadata"]["generation"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "2"}]
    assert "unchanged" in kubectl.run("apply", "-f", str(manifest)).stdout

    table = kubectl.run("get", "deployments").stdout.splitlines()
    assert table[0].split()[:2] == ["NAME", "READY"]
    assert table[1].split()[0] == "web"
    wide = kubectl.run("get", "deploy", "-o", "wide").stdout.splitlines()
    assert "IMAGES" in wide[0] and "busybox" in wide[1]
    as_yaml = yaml.safe_load(kubectl.run("get", "cm", "cfg", "-o", "yaml").stdout)
    assert as_yaml["data"] == {"a": "1"}
    assert "web" in kubectl.run("get", "all").stdout
    everywhere = kubectl.run("get", "deploy", "-A").stdout.splitlines()
    assert everywhere[0].split()[0] == "NAMESPACE"
    assert any(line.split()[:2] == [namespace, "web"] for line in everywhere[1:])

    described = kubectl.run("describe", "deployment", "web").stdout
    assert "Replicas:" in described and "3 desired" in described

    assert "scaled" in kubectl.run("scale", "deployment", "web", "--replicas=5").stdout
    assert json.loads(kubectl.run("get", "deploy", "web", "-o", "json").stdout)["spec"]["replicas"] == 5
    assert "labeled" in kubectl.run("label", "deployment", "web", "tier=front").stdout
    shown = kubectl.run("get", "deploy", "--show-labels").stdout
    assert "tier=front" in shown
    assert kubectl.run("get", "deploy", "-l", "tier=front", "-o", "name").stdout.strip() == "deployment.apps/web"

    out = kubectl.run("delete", "-f", str(manifest), "--wait=true", timeout=60).stdout
    assert 'deployment.apps "web" deleted' in out
    assert kubectl.run("get", "cm", "cfg", check=False).returncode != 0


def test_invalid_manifest_is_refused_naming_the_fields(kubectl: Kubectl, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Pod\nspec:\n  foo: 1\n"
                   "  containers:\n  - name: c\n")
    proc = kubectl.run("apply", "-f", str(bad), check=False)
    assert proc.returncode != 0
    assert 'The Pod "Bad_Pod" is invalid' in proc.stderr
    assert "spec.containers[0].image: Required value" in proc.stderr
    assert "spec.foo" in proc.stderr
    assert "metadata.name" in proc.stderr


def test_get_watch_prints_new_objects(kubectl: Kubectl, api, namespace: str) -> None:
    proc = subprocess.Popen([*kubectl.base, "get", "configmaps", "-w"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        api.post(f"/api/v1/namespaces/{namespace}/configmaps", json={"metadata": {"name": "watched"}})
        time.sleep(1.5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert "watched" in out, err


def test_get_single_object_watch(kubectl: Kubectl, api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    api.post(base, json={"metadata": {"name": "one"}, "data": {"v": "1"}})
    proc = subprocess.Popen([*kubectl.base, "get", "configmap", "one", "-w", "-o", "name"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        api.patch(f"{base}/one", json={"data": {"v": "2"}}, headers={"Content-Type": "application/merge-patch+json"})
        time.sleep(1.5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert out.count("configmap/one") == 2, (out, err)


def test_kubectl_create_sends_protobuf_and_it_is_understood(kubectl: Kubectl, api, namespace: str) -> None:
    kubectl.run("create", "configmap", "pcm", "--from-literal=a=b")
    kubectl.run("create", "secret", "generic", "psec", "--from-literal=u=p")
    kubectl.run("create", "deployment", "pdep", "--image=busybox", "--replicas=2", "--port=8080", "--", "sleep", "9")
    kubectl.run("create", "job", "pjob", "--image=busybox", "--", "echo", "hi")
    kubectl.run("create", "serviceaccount", "psa")
    kubectl.run("create", "service", "clusterip", "psvc", "--tcp=80:8080")
    base = f"/api/v1/namespaces/{namespace}"
    assert api.get(f"{base}/configmaps/pcm").json()["data"] == {"a": "b"}
    assert api.get(f"{base}/secrets/psec").json()["data"] == {"u": "cA=="}
    dep = api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/pdep").json()
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert dep["spec"]["replicas"] == 2 and container["command"] == ["sleep", "9"]
    assert container["ports"][0]["containerPort"] == 8080
    job = api.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/pjob").json()
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    svc = api.get(f"{base}/services/psvc").json()
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    assert api.get(f"{base}/serviceaccounts/psa").status_code == 200
