"""`ketch apply` / `create` / invalid manifests against a real apiserver and etcd."""

from __future__ import annotations

import json

import yaml

from tests.integration.cli.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "deploy" / "examples" / "web.yaml"


def test_apply_example_stores_all_three_objects(ketch):
    first = ketch.ns("apply", "-f", str(EXAMPLE))
    assert first.stdout.splitlines() == [
        "configmap/web-content created", "deployment.apps/web created", "service/web created"]
    for kind, name in (("configmap", "web-content"), ("deployment", "web"), ("service", "web")):
        obj = json.loads(ketch.ns("get", kind, name, "-o", "json").stdout)
        assert obj["metadata"]["name"] == name
        assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    deploy = json.loads(ketch.ns("get", "deploy", "web", "-o", "json").stdout)
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:latest"
    again = ketch.ns("apply", "-f", str(EXAMPLE))
    assert again.stdout.splitlines() == [
        "configmap/web-content unchanged", "deployment.apps/web unchanged", "service/web unchanged"]


def test_reapply_with_removed_fields_removes_them(ketch, tmp_path):
    docs = list(yaml.safe_load_all(EXAMPLE.read_text()))
    ketch.ns("apply", "-f", str(EXAMPLE))
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    del deploy["metadata"]["labels"]
    del deploy["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    deploy["spec"]["replicas"] = 3
    changed = tmp_path / "web.yaml"
    changed.write_text(yaml.safe_dump_all(docs))
    out = ketch.ns("apply", "-f", str(changed)).stdout.splitlines()
    assert "deployment.apps/web configured" in out
    assert "service/web unchanged" in out
    live = json.loads(ketch.ns("get", "deploy", "web", "-o", "json").stdout)
    assert "labels" not in live["metadata"]
    resources = live["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert "limits" not in resources and resources["requests"]["cpu"] == "10m"
    assert live["spec"]["replicas"] == 3


def test_apply_from_stdin_json_and_create_conflict(ketch):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-stdin"}, "data": {"a": "1"}}
    assert ketch.ns("apply", "-f", "-", input=json.dumps(cm)).stdout.strip() == "configmap/from-stdin created"
    again = ketch.ns("create", "-f", "-", input=json.dumps(cm), ok=False)
    assert again.returncode == 1
    assert 'Error from server (AlreadyExists): error when creating "STDIN": ' in again.stderr
    assert "already exists" in again.stderr


def test_invalid_manifest_prints_the_field_and_fails(ketch, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\nspec:\n"
        "  selector:\n    matchLabels: {app: bad}\n  template:\n    metadata:\n      labels: {app: bad}\n"
        "    spec:\n      containers:\n      - name: c\n")
    proc = ketch.ns("apply", "-f", str(bad), ok=False)
    assert proc.returncode == 1
    assert 'The Deployment "bad" is invalid: spec.template.spec.containers[0].image: Required value' in proc.stderr
    assert ketch.ns("get", "deploy", "bad", ok=False).returncode == 1


def test_namespace_mismatch_is_refused(ketch):
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: elsewhere\n"
    proc = ketch.ns("apply", "-f", "-", input=cm, ok=False)
    assert proc.returncode == 1 and "does not match the namespace" in proc.stderr


def test_kubectl_and_ketch_agree_on_unchanged(ketch, tmp_path):
    """The last-applied annotation is written byte for byte as kubectl writes it."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    kubectl = ["kubectl", "--kubeconfig", str(ketch.kubeconfig), "--cache-dir", str(tmp_path / "kc"),
               "-n", ketch.namespace]
    ketch.ns("apply", "-f", str(EXAMPLE))
    after_ketch = subprocess.run([*kubectl, "apply", "-f", str(EXAMPLE)], capture_output=True, text=True)
    assert after_ketch.returncode == 0, after_ketch.stderr
    assert after_ketch.stdout.split("\n")[:3] == [
        "configmap/web-content unchanged", "deployment.apps/web unchanged", "service/web unchanged"]
    ketch.ns("delete", "-f", str(EXAMPLE))
    first = subprocess.run([*kubectl, "apply", "-f", str(EXAMPLE)], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert ketch.ns("apply", "-f", str(EXAMPLE)).stdout.splitlines() == [
        "configmap/web-content unchanged", "deployment.apps/web unchanged", "service/web unchanged"]
