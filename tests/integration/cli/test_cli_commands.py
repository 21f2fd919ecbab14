"""get / describe / delete --wait / label / annotate / scale / edit / watch with the real CLI."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time

import yaml

from tests.integration.cli.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "deploy" / "examples" / "web.yaml"


def test_get_tables_and_formats(ketch):
    empty = ketch.ns("get", "pods")
    assert empty.stdout == "" and empty.stderr.strip() == f"No resources found in {ketch.namespace} namespace."
    ketch.ns("apply", "-f", str(EXAMPLE))
    table = ketch.ns("get", "deploy").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].startswith("web   ")
    wide = ketch.ns("get", "deploy", "-o", "wide").stdout.splitlines()
    assert "IMAGES" in wide[0] and "busybox:latest" in wide[1]
    everything = ketch.ns("get", "all").stdout
    assert "deployment.apps/web" in everything and "service/web" in everything
    assert ketch.ns("get", "cm,deploy", "-o", "name").stdout.splitlines() == [
        "configmap/web-content", "deployment.apps/web"]
    labels = ketch.ns("get", "svc", "--show-labels").stdout.splitlines()
    assert labels[0].endswith("LABELS") and labels[1].endswith("app=web")
    listed = yaml.safe_load(ketch.ns("get", "cm", "-l", "app=web", "-o", "yaml").stdout)
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == ["web-content"]
    assert listed["items"][0]["kind"] == "ConfigMap"
    assert ketch.ns("get", "cm", "-l", "app=nothing", "-o", "name").stdout == ""
    jp = ketch.ns("get", "deploy", "-o", "jsonpath={.items[*].spec.template.spec.containers[*].name}")
    assert jp.stdout == "httpd"
    by_field = ketch.ns("get", "cm", "--field-selector", "metadata.name=web-content", "-o", "name")
    assert by_field.stdout.strip() == "configmap/web-content"
    all_ns = ketch.run("get", "cm", "-A").stdout.splitlines()
    assert all_ns[0].startswith("NAMESPACE")
    assert any(line.startswith(ketch.namespace) and "web-content" in line for line in all_ns)
    missing = ketch.ns("get", "pod", "nope", ok=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'


def test_describe_shows_fields_and_events(ketch):
    ketch.ns("apply", "-f", str(EXAMPLE))
    uid = json.loads(ketch.ns("get", "deploy", "web", "-o", "json").stdout)["metadata"]["uid"]
    event = {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.test1"},
        "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                           "namespace": ketch.namespace, "uid": uid},
        "reason": "ScalingReplicaSet", "message": "Scaled up replica set web-abc to 2",
        "type": "Normal", "source": {"component": "deployment-controller"}, "count": 1,
    }
    ketch.ns("create", "-f", "-", input=json.dumps(event))
    out = ketch.ns("describe", "deployment", "web").stdout
    assert out.startswith("Name:")
    assert re.search(rf"^Namespace:\s+{ketch.namespace}$", out, re.M)
    assert re.search(r"^Labels:\s+app=web$", out, re.M)
    assert re.search(r"^Replicas:\s+2 desired \| 0 updated", out, re.M)
    assert re.search(r"^\s+Image:\s+busybox:latest$", out, re.M)
    assert "Events:" in out
    assert "ScalingReplicaSet" in out and "Scaled up replica set web-abc to 2" in out
    assert "deployment-controller" in out


def test_label_annotate_and_overwrite(ketch):
    ketch.ns("apply", "-f", str(EXAMPLE))
    assert ketch.ns("label", "deploy", "web", "tier=front").stdout.strip() == "deployment.apps/web labeled"
    refused = ketch.ns("label", "deploy", "web", "tier=back", ok=False)
    assert refused.returncode == 1
    assert "'tier' already has a value (front), and --overwrite is false" in refused.stderr
    ketch.ns("label", "deploy/web", "tier=back", "--overwrite")
    labels = json.loads(ketch.ns("get", "deploy", "web", "-o", "json").stdout)["metadata"]["labels"]
    assert labels == {"app": "web", "tier": "back"}
    ketch.ns("label", "deploy", "web", "tier-")
    labels = json.loads(ketch.ns("get", "deploy", "web", "-o", "json").stdout)["metadata"]["labels"]
    assert labels == {"app": "web"}
    out = ketch.ns("annotate", "cm", "-l", "app=web", "note=hello").stdout
    assert out.strip() == "configmap/web-content annotated"
    note = ketch.ns("get", "cm", "web-content", "-o", "jsonpath={.metadata.annotations.note}").stdout
    assert note == "hello"


def test_scale_through_the_scale_subresource(ketch):
    ketch.ns("apply", "-f", str(EXAMPLE))
    assert ketch.ns("scale", "deploy", "web", "--replicas=4").stdout.strip() == "deployment.apps/web scaled"
    assert ketch.ns("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "4"
    refused = ketch.ns("scale", "deploy", "web", "--replicas=1", "--current-replicas=2", ok=False)
    assert refused.returncode == 1


def test_delete_waits_until_gone(ketch):
    ketch.ns("apply", "-f", str(EXAMPLE))
    out = ketch.ns("delete", "configmap", "web-content")
    assert out.stdout.strip() == 'configmap "web-content" deleted'
    assert ketch.ns("get", "cm", "web-content", ok=False).returncode == 1
    out = ketch.ns("delete", "-f", str(EXAMPLE), "--ignore-not-found").stdout.splitlines()
    assert out == ['deployment.apps "web" deleted', 'service "web" deleted']
    assert ketch.ns("get", "deploy,svc", "-o", "name").stdout == ""
    gone = ketch.ns("delete", "svc", "web", ok=False)
    assert gone.returncode == 1 and 'services "web" not found' in gone.stderr


def test_delete_by_selector_and_all(ketch):
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        ketch.ns("create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"app": app}}}))
    assert ketch.ns("delete", "cm", "-l", "app=x").stdout.splitlines() == [
        'configmap "a" deleted', 'configmap "b" deleted']
    assert ketch.ns("delete", "cm", "--all").stdout.splitlines() == ['configmap "c" deleted']


def test_edit_with_an_editor_script(ketch, tmp_path):
    ketch.ns("apply", "-f", str(EXAMPLE))
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys\np = sys.argv[1]\ntext = open(p).read()\n"
        "open(p, 'w').write(text.replace('replicas: 2', 'replicas: 5'))\n")
    out = ketch.ns("edit", "deploy", "web", env={"KUBE_EDITOR": f"{sys.executable} {editor}"})
    assert out.stdout.strip() == "deployment.apps/web edited"
    assert ketch.ns("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "5"
    unchanged = ketch.ns("edit", "cm", "web-content", env={"KUBE_EDITOR": "true"})
    assert "Edit cancelled, no changes made." in unchanged.stderr


def test_get_watch_prints_changes(ketch):
    watcher = subprocess.Popen(
        ketch.command("get", "cm", "-w", "-n", ketch.namespace), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=ketch.env, cwd=str(REPO_ROOT))
    try:
        time.sleep(1.5)
        ketch.ns("create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}}))
        output = b""
        deadline = time.monotonic() + 20
        while b"\nwatched" not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([watcher.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                chunk = os.read(watcher.stdout.fileno(), 4096)
                if not chunk:
                    break
                output += chunk
        lines = output.decode().splitlines()
        assert lines[0].split() == ["NAME", "DATA", "AGE"], output
        assert any(line.startswith("watched") for line in lines), output
    finally:
        watcher.kill()
        watcher.wait()


def test_api_resources_and_version(ketch):
    lines = ketch.run("api-resources").stdout.splitlines()
    assert lines[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert any(line.split()[:2] == ["deployments", "deploy"] for line in lines)
    version = ketch.run("version").stdout.splitlines()
    assert version[0].startswith("Client Version: ") and version[1].startswith("Server Version: v1.")


def test_edit_reopens_with_the_server_error_and_stops_when_nothing_changes(ketch, tmp_path):
    ketch.ns("apply", "-f", str(EXAMPLE))
    editor = tmp_path / "editor.py"
    seen = tmp_path / "seen"
    seen.mkdir()
    editor.write_text(
        "import os, sys\np = sys.argv[1]\ntext = open(p).read()\n"
        f"n = len(os.listdir({str(seen)!r}))\n"
        f"open(os.path.join({str(seen)!r}, str(n)), 'w').write(text)\n"
        "open(p, 'w').write(text.replace('image: busybox:latest', 'image: \"\"'))\n")
    out = ketch.ns("edit", "deploy", "web", env={"KUBE_EDITOR": f"{sys.executable} {editor}"}, ok=False)
    assert out.returncode == 1
    assert "Edit cancelled, no valid changes were saved." in out.stderr
    second = (seen / "1").read_text()
    assert second.startswith("# Please edit the object below.")
    assert '# The Deployment "web" is invalid: spec.template.spec.containers[0].image' in second
    image = ketch.ns("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
    assert image.stdout == "busybox:latest"
