"""What the node agent makes of a pod spec, seen from inside the container, on the lab cluster.

Environment sources, volumes, init containers, hooks and the securityContext,
checked with the real kubectl (`logs`, `exec`) against real containers.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml

BUSYBOX = {"image": "busybox:latest", "imagePullPolicy": "IfNotPresent"}


@pytest.fixture
def k(lab, run_id, request):
    """Run the real kubectl in a namespace of this test's own."""
    namespace = f"spec-{request.node.name[5:20].replace('_', '-').strip('-')}-{run_id}"[:63]
    assert lab.kubectl("create", "namespace", namespace).returncode == 0

    def run(*args: str, stdin: str | None = None, ok: bool = True, timeout: float = 60):
        proc = lab.kubectl("-n", namespace, *args, stdin=stdin, timeout=timeout)
        if ok:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc

    run.namespace = namespace
    yield run
    lab.kubectl("delete", "namespace", namespace, "--wait=false")


def apply(k, *objects: dict) -> None:
    k("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))


def pod_json(k, name: str) -> dict:
    return json.loads(k("get", "pod", name, "-o", "json").stdout)


def wait_for(check, timeout: float = 90, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not within {timeout}s (last: {last!r})")


def running(k, name: str) -> bool:
    st = pod_json(k, name).get("status") or {}
    return st.get("phase") == "Running" and all(c.get("ready") for c in st.get("containerStatuses") or [])


def waiting_reason(k, name: str) -> str | None:
    for c in (pod_json(k, name).get("status") or {}).get("containerStatuses") or []:
        return ((c.get("state") or {}).get("waiting") or {}).get("reason")
    return None


def test_env_volumes_and_init_containers(k):
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
              "data": {"greeting": "hello", "mode": "fast"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
              "stringData": {"password": "hunter2"}}
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "full", "labels": {"app": "full", "tier": "web"}},
        "spec": {
            "initContainers": [
                {"name": "first", **BUSYBOX, "command": ["sh", "-c", "echo one > /work/order"],
                 "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
                {"name": "second", **BUSYBOX, "command": ["sh", "-c", "echo two >> /work/order"],
                 "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
            ],
            "containers": [{
                "name": "main", **BUSYBOX, "command": ["sh", "-c", "sleep 3600"],
                "env": [
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                          "divisor": "1Mi"}}},
                    {"name": "MESSAGE", "value": "$(GREETING) from $(POD_NAME)"},
                ],
                "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
                "resources": {"limits": {"memory": "64Mi"}},
                "volumeMounts": [
                    {"name": "work", "mountPath": "/work"},
                    {"name": "ram", "mountPath": "/ram"},
                    {"name": "cfg", "mountPath": "/etc/cfg"},
                    {"name": "sec", "mountPath": "/etc/sec", "readOnly": True},
                    {"name": "info", "mountPath": "/etc/info"},
                    {"name": "all", "mountPath": "/etc/all"},
                ],
                "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo started > /work/hook"]}}},
            }],
            "volumes": [
                {"name": "work", "emptyDir": {}},
                {"name": "ram", "emptyDir": {"medium": "Memory"}},
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "all", "projected": {"sources": [
                    {"configMap": {"name": "cfg", "items": [{"key": "mode", "path": "mode"}]}},
                    {"secret": {"name": "sec", "items": [{"key": "password", "path": "pw"}]}},
                ]}},
            ],
        },
    }
    apply(k, config, secret, pod)
    wait_for(lambda: running(k, "full"))

    def sh(script: str) -> str:
        return k("exec", "full", "-c", "main", "--", "sh", "-c", script).stdout

    env = dict(line.split("=", 1) for line in sh("env").splitlines() if "=" in line)
    ip = pod_json(k, "full")["status"]["podIP"]
    assert env["GREETING"] == "hello" and env["PASSWORD"] == "hunter2"
    assert env["POD_NAME"] == "full" and env["POD_IP"] == ip and env["MEM_MI"] == "64"
    assert env["MESSAGE"] == "hello from full"
    assert env["CFG_greeting"] == "hello" and env["CFG_mode"] == "fast"
    assert sh("cat /work/order").split() == ["one", "two"], "init containers run in order, to completion"
    assert sh("cat /work/hook").strip() == "started", "postStart ran"
    assert sh("cat /etc/cfg/greeting") == "hello"
    assert sh("cat /etc/sec/password") == "hunter2"
    assert sh("stat -c %a /etc/sec/password").strip() == "400"
    assert 'tier="web"' in sh("cat /etc/info/labels")
    assert sh("cat /etc/all/mode; echo; cat /etc/all/pw").split() == ["fast", "hunter2"]
    assert "tmpfs" in sh("grep ' /ram ' /proc/mounts"), "emptyDir medium Memory is a tmpfs"
    assert "tmpfs" in sh("grep ' /etc/sec ' /proc/mounts"), "secrets never touch the disk"
    write = k("exec", "full", "-c", "main", "--", "sh", "-c", "echo x > /etc/sec/new", ok=False)
    assert write.returncode != 0, "a readOnly volumeMount refuses writes"

    # A changed ConfigMap reaches the mounted files (env vars keep their start value, as in Kubernetes).
    k("patch", "configmap", "cfg", "--type", "merge", "-p", '{"data": {"greeting": "bonjour"}}')
    wait_for(lambda: sh("cat /etc/cfg/greeting") == "bonjour", timeout=60)

    statuses = pod_json(k, "full")["status"]["initContainerStatuses"]
    assert [s["state"]["terminated"]["exitCode"] for s in statuses] == [0, 0]


def test_security_context(k):
    base = {"apiVersion": "v1", "kind": "Pod"}
    apply(k,
          {**base, "metadata": {"name": "locked"}, "spec": {
              "securityContext": {"runAsUser": 1000, "runAsGroup": 3000},
              "containers": [{"name": "c", **BUSYBOX, "command": ["sleep", "3600"],
                              "securityContext": {"readOnlyRootFilesystem": True,
                                                  "capabilities": {"drop": ["ALL"]}}}]}},
          {**base, "metadata": {"name": "nonroot"}, "spec": {
              "securityContext": {"runAsNonRoot": True},
              "containers": [{"name": "c", **BUSYBOX, "command": ["sleep", "3600"]}]}},
          {**base, "metadata": {"name": "priv"}, "spec": {
              "containers": [{"name": "c", **BUSYBOX, "command": ["sleep", "3600"],
                              "securityContext": {"privileged": True}}]}})
    wait_for(lambda: running(k, "locked"))
    ids = k("exec", "locked", "--", "id").stdout
    assert "uid=1000" in ids and "gid=3000" in ids
    assert k("exec", "locked", "--", "touch", "/x", ok=False).returncode != 0, "read-only root filesystem"
    caps = k("exec", "locked", "--", "grep", "CapBnd", "/proc/self/status").stdout
    assert caps.split()[-1].strip("0") == "", f"every capability dropped: {caps}"

    assert wait_for(lambda: waiting_reason(k, "nonroot") == "CreateContainerConfigError")
    message = pod_json(k, "nonroot")["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert "runAsNonRoot" in message
    assert wait_for(lambda: waiting_reason(k, "priv") == "CreateContainerConfigError")
    assert "privileged" in pod_json(k, "priv")["status"]["containerStatuses"][0]["state"]["waiting"]["message"]


def test_graceful_termination_runs_pre_stop_within_grace(k, tmp_path):
    marks = tmp_path / "marks"  # a hostPath: lab nodes share this machine's filesystem
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "polite"}, "spec": {
        "terminationGracePeriodSeconds": 20,
        "volumes": [{"name": "marks", "hostPath": {"path": str(marks), "type": "DirectoryOrCreate"}}],
        "containers": [{
            "name": "c", **BUSYBOX,
            "command": ["sh", "-c", "trap 'echo term >> /marks/log; exit 0' TERM; while true; do sleep 0.2; done"],
            "volumeMounts": [{"name": "marks", "mountPath": "/marks"}],
            "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /marks/log"]}}},
        }]}}
    apply(k, pod)
    wait_for(lambda: running(k, "polite"))
    started = time.monotonic()
    k("delete", "pod", "polite", "--wait=true", timeout=60)
    took = time.monotonic() - started
    assert (marks / "log").read_text().split() == ["prestop", "term"], "preStop first, then SIGTERM"
    assert took < 15, f"a container that exits on SIGTERM is gone at once ({took:.1f}s), not after its grace"
