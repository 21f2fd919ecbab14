"""Issue 4: `kubectl logs -f`, `kubectl exec` and `kubectl rollout status` against the 2-node lab.

logs and exec go kubectl -> apiserver -> node agent (the node proxy). If the
apiserver answers that it has no such subresource, or cannot reach the agent's
streaming server at all, the streaming tests are skipped with that answer as
the reason; any other failure fails them.
"""

from __future__ import annotations

import selectors
import subprocess
import time

import pytest

from tests.e2e.test_workloads import (  # noqa: F401  (kube_namespace: the `kube` fixture)
    Kube,
    deployment,
    kube_namespace,
    pod,
    running_ready,
    wait_for,
    wait_running_ready,
)

pytestmark = pytest.mark.timeout(180)

#: What kubectl prints when the apiserver has no streaming route, or no agent serves it.
NOT_LANDED = ("does not serve it yet", "the server could not find the requested resource",
              "not implemented")


def running_pod(kube: Kube, name: str, command: str) -> dict:
    kube.apply(pod(name, command))
    return wait_for(f"pod {name} to run", lambda: running_ready([kube.get("pod", name)]), 60)[0]


def require_streaming(kube: Kube, name: str) -> None:
    """Skip (with the apiserver's answer) when pod logs cannot be streamed at all on this lab."""
    probe = kube.run("logs", name, ok=False)
    if probe.returncode != 0 and any(s.lower() in probe.stderr.lower() for s in NOT_LANDED):
        pytest.skip(f"pod streaming has not landed: kubectl logs said {probe.stderr.strip()!r}")


def read_lines_until(proc: subprocess.Popen, wanted: str, timeout: float) -> list[str]:
    """Lines of proc's stdout until one equals `wanted` (bounded: kubectl logs -f never ends)."""
    lines: list[str] = []
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not selector.select(timeout=0.5):
            continue
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if lines[-1] == wanted:
            return lines
    raise AssertionError(f"did not see {wanted!r} within {timeout} s; got {lines[-5:]}; "
                         f"stderr: {proc.stderr.read() if proc.poll() is not None else ''}")


def test_logs_follow_streams_new_lines(lab, kube):
    running_pod(kube, "ticker", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.5; done")
    require_streaming(kube, "ticker")
    wait_for("some output", lambda: "tick 2" in kube.run("logs", "ticker").stdout, 20)
    argv = ["kubectl", "--kubeconfig", kube.kubeconfig, "-n", kube.namespace, "logs", "-f", "ticker"]
    follow = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = read_lines_until(follow, "tick 2", 20)
        started = time.monotonic()
        # lines written after kubectl started following arrive while it follows
        current = int(kube.run("logs", "ticker", "--tail=1").stdout.split()[-1])
        later = read_lines_until(follow, f"tick {current + 4}", 20)
        assert time.monotonic() - started >= 1.0, "lines should arrive over time, not all at once"
        numbers = [int(line.split()[1]) for line in first + later]
        assert numbers == list(range(1, len(numbers) + 1)), "logs -f must not lose or repeat lines"
    finally:
        follow.kill()
        follow.wait(timeout=10)
    tail = kube.run("logs", "ticker", "--tail=3").stdout.splitlines()
    assert len(tail) == 3 and all(line.startswith("tick ") for line in tail)


def test_exec_runs_commands_in_the_container(lab, kube):
    target = running_pod(kube, "shell", "echo hi > /tmp/greeting; exec sleep 3600")
    require_streaming(kube, "shell")
    out = kube.run("exec", "shell", "--", "sh", "-c", "cat /tmp/greeting; echo $((6*7)); hostname")
    assert out.stdout.split() == ["hi", "42", target["metadata"]["name"]]
    piped = kube.run("exec", "-i", "shell", "--", "sh", "-c", "tr a-z A-Z", stdin="hello exec\n")
    assert piped.stdout == "HELLO EXEC\n"
    failing = kube.run("exec", "shell", "--", "sh", "-c", "echo oops >&2; exit 3", ok=False)
    assert failing.returncode == 3, (failing.returncode, failing.stderr)
    assert "oops" in failing.stderr
    missing = kube.run("exec", "shell", "--", "/no/such/binary", ok=False)
    assert missing.returncode != 0


def test_rollout_status_follows_a_rollout(lab, kube):
    probe = {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1}
    kube.apply(deployment("ro", 2, command="sleep 1; touch /tmp/ready; exec sleep 3600", probe=probe,
                          env={"V": "1"}))
    done = kube.run("rollout", "status", "deployment/ro", "--timeout=90s", timeout=100)
    assert 'deployment "ro" successfully rolled out' in done.stdout
    wait_running_ready(kube, "app=ro", 2, timeout=30)

    kube.run("set", "env", "deployment/ro", "V=2")
    rolled = kube.run("rollout", "status", "deployment/ro", "--timeout=90s", timeout=100)
    assert 'deployment "ro" successfully rolled out' in rolled.stdout
    assert "Waiting for deployment" in rolled.stdout, "rollout status should have watched the roll progress"
    pods = wait_running_ready(kube, "app=ro", 2, timeout=30)
    assert all({"name": "V", "value": "2"} in p["spec"]["containers"][0]["env"] for p in pods)
    history = kube.run("rollout", "history", "deployment/ro").stdout
    assert "1" in history and "2" in history
