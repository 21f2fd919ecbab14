"""Issue 4 end to end: workloads on a 2-node lab cluster, driven with the real kubectl.

Every test has its own namespace on the session's `lab` (tests/fixtures/lab.py)
and bounded waits. The helpers at the top (`Kube`, `wait_for`, manifests) are
shared with test_resilience.py and test_kubectl_streaming.py.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.timeout(240)

BUSYBOX = "busybox:latest"


# --------------------------------------------------------------------------------------------
# helpers


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` and the last value if not."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)


class Kube:
    """kubectl (the real one) against the lab's kubeconfig, scoped to one namespace."""

    def __init__(self, lab: Any, namespace: str) -> None:
        self.lab = lab
        self.kubeconfig = str(lab.kubeconfig)
        self.namespace = namespace

    def run(self, *args: str, stdin: str | None = None, ok: bool = True, timeout: float = 60,
            namespaced: bool = True) -> subprocess.CompletedProcess:
        argv = ["kubectl", "--kubeconfig", self.kubeconfig, "--request-timeout", f"{int(timeout)}s"]
        if namespaced:
            argv += ["-n", self.namespace]
        proc = subprocess.run([*argv, *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout + 10)
        if ok:
            assert proc.returncode == 0, f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
        return proc

    def apply(self, *objects: dict) -> None:
        self.run("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))

    def get(self, kind: str, name: str | None = None, selector: str | None = None) -> dict:
        args = ["get", kind] + ([name] if name else []) + (["-l", selector] if selector else []) + ["-o", "json"]
        return json.loads(self.run(*args).stdout)

    def pods(self, selector: str) -> list[dict]:
        return self.get("pods", selector=selector)["items"]

    def events(self, involved: str) -> list[dict]:
        return [e for e in self.get("events")["items"] if e.get("involvedObject", {}).get("name") == involved]


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def running_ready(pods: list[dict]) -> list[dict]:
    """Pods that are Running, Ready and not being deleted."""
    return [p for p in pods if p.get("status", {}).get("phase") == "Running" and is_ready(p)
            and not p["metadata"].get("deletionTimestamp")]


def container_status(pod: dict, name: str = "c") -> dict:
    for status in pod.get("status", {}).get("containerStatuses", []):
        if status["name"] == name:
            return status
    return {}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def deployment(name: str, replicas: int, command: str = "sleep 3600", probe: dict | None = None,
               env: dict[str, str] | None = None, strategy: dict | None = None,
               tolerations: list[dict] | None = None, node_selector: dict | None = None) -> dict:
    container: dict = {"name": "c", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                       "command": ["sh", "-c", command],
                       "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}
    if probe:
        container["readinessProbe"] = probe
    spec: dict = {"containers": [container], "terminationGracePeriodSeconds": 1}
    if tolerations:
        spec["tolerations"] = tolerations
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "strategy": strategy or {"type": "RollingUpdate",
                                          "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    }


def pod(name: str, command: str, restart: str = "Always", **container_extra: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                                     "command": ["sh", "-c", command], **container_extra}]}}


def wait_running_ready(kube: Kube, selector: str, count: int, timeout: float = 60) -> list[dict]:
    def check() -> list[dict] | None:
        pods = kube.pods(selector)
        ready = running_ready(pods)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return ready if len(ready) == count and len(live) == count else None

    return wait_for(f"{count} Running, Ready pods of {selector}", check, timeout)


@pytest.fixture(name="kube")
def kube_namespace(lab, request) -> Kube:
    """A namespace of this test's own on the shared lab, deleted afterwards."""
    test = request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-")
    namespace = f"e2e-{test}-{secrets.token_hex(2)}"
    k = Kube(lab, namespace)
    k.run("create", "namespace", namespace, namespaced=False)
    wait_for("the namespace's default ServiceAccount",
             lambda: k.run("get", "serviceaccount", "default", ok=False).returncode == 0, 30)
    try:
        yield k
    finally:
        k.run("delete", "namespace", namespace, "--wait=false", ok=False, namespaced=False)


def node_names(lab: Any) -> list[str]:
    return sorted(lab.nodes)


# --------------------------------------------------------------------------------------------
# tests


def test_lab_has_two_ready_nodes(lab, kube):
    nodes = kube.get("nodes")["items"]
    ready = {n["metadata"]["name"] for n in nodes
             if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))}
    assert ready >= set(node_names(lab)) and len(ready) >= 2, nodes


def test_deployment_spreads_replaces_and_scales(lab, kube):
    kube.apply(deployment("web", 3))
    pods = wait_running_ready(kube, "app=web", 3, timeout=60)
    assert {p["spec"]["nodeName"] for p in pods} == set(node_names(lab)), "3 replicas should use both nodes"
    assert all(p["status"].get("podIP") and p["status"].get("hostIP") for p in pods)

    victim = pods[0]["metadata"]["name"]
    kube.run("delete", "pod", victim, "--wait=false")
    replaced = wait_for("a replacement for the deleted pod", lambda: (
        (lambda ready: ready if len(ready) == 3 and victim not in {p["metadata"]["name"] for p in ready} else None)
        (running_ready(kube.pods("app=web")))), timeout=60)
    assert victim not in {p["metadata"]["name"] for p in replaced}

    kube.run("scale", "deployment/web", "--replicas=5")
    wait_running_ready(kube, "app=web", 5, timeout=60)
    kube.run("scale", "deployment/web", "--replicas=2")
    wait_running_ready(kube, "app=web", 2, timeout=60)
    wait_for("the scaled-down pods to be gone", lambda: len(kube.pods("app=web")) == 2, 60)
    status = wait_for("deployment status to settle", lambda: (
        (lambda s: s if s.get("availableReplicas") == 2 and s.get("replicas") == 2 else None)
        (kube.get("deployment", "web").get("status", {}))), 30)
    assert status["readyReplicas"] == 2


def sample_rollout(kube: Kube, selector: str, replicas: int, updated: Callable[[dict], bool],
                   timeout: float = 120) -> list[tuple[int, int]]:
    """(available, existing) pods every ~0.2 s until `replicas` updated pods are the only ones left."""
    samples: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout
    while True:
        pods = kube.pods(selector)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        available = running_ready(pods)
        samples.append((len(available), len(live)))
        if len([p for p in available if updated(p)]) == replicas and len(live) == replicas:
            return samples
        assert time.monotonic() < deadline, f"rollout did not finish; samples {samples[-10:]}"
        time.sleep(0.2)


def test_rolling_update_keeps_promised_availability(lab, kube):
    """4 replicas, maxUnavailable 1, maxSurge 1: sampled during an image and then an env rollout,
    >= 3 pods available and <= 5 pods existing at every sample."""
    probe = {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1, "failureThreshold": 1}
    command = "sleep 2; touch /tmp/ready; exec sleep 3600"
    kube.apply(deployment("roll", 4, command=command, probe=probe, env={"VERSION": "1"}))
    wait_running_ready(kube, "app=roll", 4, timeout=90)

    new_image = "docker.io/library/busybox:latest"  # the same local image under its full name
    kube.run("set", "image", "deployment/roll", f"c={new_image}")
    by_image = sample_rollout(kube, "app=roll", 4, lambda p: p["spec"]["containers"][0]["image"] == new_image)
    kube.run("set", "env", "deployment/roll", "VERSION=2")
    by_env = sample_rollout(kube, "app=roll", 4,
                            lambda p: {"name": "VERSION", "value": "2"} in p["spec"]["containers"][0]["env"])
    for samples in (by_image, by_env):
        assert len(samples) >= 5, "the rollout finished too fast to have been sampled"
        assert min(a for a, _ in samples) >= 3, f"availability dropped below 3: {samples}"
        assert max(n for _, n in samples) <= 5, f"more than replicas+maxSurge pods existed: {samples}"
    deploy = kube.get("deployment", "roll")
    assert deploy["status"].get("updatedReplicas") == 4
    assert int(deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) == 3
    history = kube.run("rollout", "history", "deployment/roll").stdout
    assert [line.split()[0] for line in history.splitlines() if line[:1].isdigit()] == ["1", "2", "3"], history


def test_failing_liveness_probe_restarts_container(lab, kube):
    probe = {"exec": {"command": ["test", "-f", "/tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 2}
    kube.apply(pod("live", "touch /tmp/alive; sleep 3; rm /tmp/alive; exec sleep 3600", livenessProbe=probe))
    first = wait_for("the pod to run", lambda: container_status(kube.get("pod", "live")).get("containerID"), 60)
    restarted = wait_for("a liveness restart", lambda: (
        (lambda s: s if s.get("restartCount", 0) >= 1 and s.get("containerID") != first else None)
        (container_status(kube.get("pod", "live")))), timeout=60)
    last = restarted["lastState"].get("terminated")
    assert last and last["containerID"] == first, restarted
    assert last["exitCode"] != 0
    reasons = {e.get("reason") for e in kube.events("live")}
    assert "Unhealthy" in reasons, reasons
    # the new container passes the probe again (the file is recreated) and keeps running
    wait_for("the restarted container to run", lambda: "running" in container_status(kube.get("pod", "live"))
             .get("state", {}), 30)


def backoff_gaps(starts: set[str]) -> list[float]:
    """Seconds between consecutive attempts, without the kubelet's immediate first restart if seen."""
    attempts = sorted(parse_time(t) for t in starts)
    gaps = [(b - a).total_seconds() for a, b in zip(attempts, attempts[1:], strict=False)]
    return gaps[1:] if gaps and gaps[0] < 5 else gaps


def test_crashing_container_reaches_crashloopbackoff_with_growing_delays(lab, kube):
    kube.apply(pod("crash", "echo boom; exit 3"))
    starts: set[str] = set()  # startedAt of every attempt seen, current or last
    seen_backoff = False
    deadline = time.monotonic() + 75
    while time.monotonic() < deadline and len(backoff_gaps(starts)) < 2:
        status = container_status(kube.get("pod", "crash"))
        waiting = status.get("state", {}).get("waiting", {})
        if waiting.get("reason") == "CrashLoopBackOff":
            seen_backoff = True
        for state in (status.get("state", {}), status.get("lastState", {})):
            started = (state.get("running") or state.get("terminated") or {}).get("startedAt")
            if started:
                starts.add(started)
        time.sleep(0.5)
    assert seen_backoff, "the pod never showed CrashLoopBackOff"
    gaps = backoff_gaps(starts)
    assert len(gaps) >= 2, f"too few attempts seen in 75 s: {sorted(starts)}"
    # as the kubelet does: (an immediate first restart, then) 10 s, 20 s, 40 s ... between attempts
    assert 8 <= gaps[0] <= 15, f"the first back-off should be about 10 s: {gaps}"
    assert gaps[1] >= gaps[0] * 1.6, f"the back-off should double (10 s, 20 s, ...): {gaps}"
    final = kube.get("pod", "crash")
    status = container_status(final)
    assert status["restartCount"] >= 2 and status["lastState"]["terminated"]["exitCode"] == 3, status
    assert final["status"]["phase"] == "Running"  # restartPolicy Always: a crash-looping pod stays Running
    reasons = {e.get("reason") for e in kube.events("crash")}
    assert "BackOff" in reasons, reasons


def test_job_completes(lab, kube):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "count"},
           "spec": {"completions": 3, "parallelism": 2, "backoffLimit": 2,
                    "template": {"spec": {"restartPolicy": "Never", "containers": [
                        {"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "echo done; sleep 1"]}]}}}}
    kube.apply(job)
    kube.run("wait", "--for=condition=complete", "job/count", "--timeout=90s", timeout=100)
    status = kube.get("job", "count")["status"]
    assert status["succeeded"] == 3 and not status.get("failed"), status
    pods = kube.pods("job-name=count")
    assert sum(p["status"]["phase"] == "Succeeded" for p in pods) == 3
    assert all(container_status(p)["state"]["terminated"]["exitCode"] == 0
               for p in pods if p["status"]["phase"] == "Succeeded")


def test_daemonset_runs_one_pod_per_node(lab, kube):
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"metadata": {"labels": {"app": "agent"}},
                                "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                                    {"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}}}}
    kube.apply(ds)
    nodes = node_names(lab)
    pods = wait_running_ready(kube, "app=agent", len(nodes), timeout=60)
    assert sorted(p["spec"]["nodeName"] for p in pods) == nodes
    status = wait_for("DaemonSet status", lambda: (
        (lambda s: s if s.get("numberReady") == len(nodes) else None)(kube.get("daemonset", "agent")["status"])), 30)
    assert status["desiredNumberScheduled"] == len(nodes) and status["currentNumberScheduled"] == len(nodes)


def test_pod_too_big_for_any_node_stays_pending_with_reason(lab, kube):
    big = pod("huge", "sleep 3600", resources={"requests": {"cpu": "500", "memory": "4Ti"}})
    kube.apply(big)
    event = wait_for("a FailedScheduling event", lambda: next(
        (e for e in kube.events("huge") if e.get("reason") == "FailedScheduling"), None), 30)
    message = event["message"]
    count = len(node_names(lab))
    assert message.startswith(f"0/{count} nodes are available"), message
    assert "Insufficient cpu" in message and "Insufficient memory" in message, message
    time.sleep(3)
    still = kube.get("pod", "huge")
    assert still["status"]["phase"] == "Pending" and not still["spec"].get("nodeName")
    scheduled = next(c for c in still["status"]["conditions"] if c["type"] == "PodScheduled")
    assert scheduled["status"] == "False" and scheduled["reason"] == "Unschedulable"
    described = kube.run("describe", "pod", "huge").stdout
    assert "FailedScheduling" in described and "Insufficient cpu" in described
