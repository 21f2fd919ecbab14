"""Issue 4 resilience on the 2-node lab: kill daemons, check nothing is lost or restarted.

Each test restores the lab (restarts what it killed, waits for the node to be
Ready) in a `finally`, so the session lab stays healthy for the next test.
Container processes are identified by (host pid, process start time) read
through the node's runtime daemon (`ketch runtime inspect`): the same pair
before and after means the process was never restarted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_workloads import (  # noqa: F401  (kube_namespace: the `kube` fixture)
    Kube,
    container_status,
    deployment,
    kube_namespace,
    pod,
    running_ready,
    wait_for,
    wait_running_ready,
)

pytestmark = pytest.mark.timeout(300)

REPO_ROOT = Path(__file__).resolve().parents[2]
AGENT, RUNTIME, SCHEDULER, MANAGER = "node-agent", "runtime", "scheduler", "controller-manager"


# --------------------------------------------------------------------------------------------
# helpers


def node_ready(kube: Kube, node: str) -> str:
    """The Ready condition's status of `node` ("True", "False", "Unknown")."""
    obj = kube.get("node", node)
    return next((c["status"] for c in obj["status"].get("conditions", []) if c["type"] == "Ready"), "")


def runtime_socket(lab: Any, node: str) -> str:
    """The node's runtime socket, from the runtime daemon's own command line."""
    pid = lab.pid_of(RUNTIME, node)
    assert pid, f"the runtime of {node} is not running"
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    if "--socket" in argv:
        return argv[argv.index("--socket") + 1]
    return str(Path(argv[argv.index("--run-root") + 1]) / "runtime.sock")


def process_identity(pid: int) -> tuple[int, int] | None:
    """(pid, start time in clock ticks): a restarted process cannot have the same pair."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return pid, int(stat.rsplit(")", 1)[1].split()[19])


def container_processes(lab: Any, node: str, container_ids: list[str]) -> dict[str, tuple[int, int] | None]:
    """Each container's main process as the node's runtime reports it."""
    env = {**os.environ, "KETCH_RUNTIME_SOCKET": runtime_socket(lab, node),
           "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'node-agent'}"}
    found: dict[str, tuple[int, int] | None] = {}
    for cid in container_ids:
        proc = subprocess.run([sys.executable, "-m", "ketch.cli.main", "runtime", "inspect", cid],
                              capture_output=True, text=True, env=env, timeout=30, cwd=str(REPO_ROOT))
        assert proc.returncode == 0, f"runtime inspect {cid}: {proc.stderr}"
        info = json.loads(proc.stdout)
        info = info[0] if isinstance(info, list) else info
        pid = int(info["State"]["Pid"])
        found[cid] = process_identity(pid) if info["State"].get("Running") and pid else None
    return found


def snapshot(kube: Kube, selector: str) -> dict[str, tuple[str, int, str]]:
    """pod name -> (containerID, restartCount, running startedAt)."""
    out = {}
    for p in running_ready(kube.pods(selector)):
        status = container_status(p)
        out[p["metadata"]["name"]] = (status["containerID"], status["restartCount"],
                                      status["state"]["running"]["startedAt"])
    return out


def bare_id(container_id: str) -> str:
    return container_id.split("://", 1)[-1]


def ensure_running(lab: Any, kube: Kube, component: str, node: str | None = None) -> None:
    """Restart `component` if it is down (a test's clean-up), then wait for its node to be Ready."""
    if not lab.pid_of(component, node):
        lab.start(component, node)
    if node and component == AGENT:
        wait_for(f"{node} to be Ready again", lambda: node_ready(kube, node) == "True", 60)


def pinned(name: str, replicas: int, node: str) -> dict:
    return deployment(name, replicas, node_selector={"kubernetes.io/hostname": node})


# --------------------------------------------------------------------------------------------
# tests


def test_agent_sigkill_restarts_nothing_and_cleans_up_pods_deleted_meanwhile(lab, kube):
    node = sorted(lab.nodes)[0]
    kube.apply(pinned("keep", 3, node))
    wait_running_ready(kube, "app=keep", 3, timeout=60)
    before = snapshot(kube, "app=keep")
    processes = container_processes(lab, node, [bare_id(c) for c, _, _ in before.values()])
    assert all(processes.values()), processes
    try:
        lab.kill(AGENT, node, signal.SIGKILL)
        wait_for("the agent to be gone", lambda: not lab.pid_of(AGENT, node), 10)
        time.sleep(2)
        assert container_processes(lab, node, list(processes)) == processes, "containers changed without agent"
        # deleted from the API while the agent is down: its container must go once the agent is back
        gone_name, (gone_cid, _, _) = sorted(before.items())[0]
        kube.run("delete", "pod", gone_name, "--grace-period=0", "--force")
        lab.start(AGENT, node)
        wait_for(f"{node} Ready after the agent restart", lambda: node_ready(kube, node) == "True", 60)
        wait_running_ready(kube, "app=keep", 3, timeout=60)  # the replacement runs: the agent carries on
        time.sleep(3)  # a few sync rounds of the restarted agent
        after = snapshot(kube, "app=keep")
        for name, state in before.items():
            if name != gone_name:
                assert after.get(name) == state, f"{name} changed across the agent restart: {state} -> {after.get(name)}"
        kept = {c: i for c, i in processes.items() if c != bare_id(gone_cid)}
        assert container_processes(lab, node, list(kept)) == kept
        wait_for("the force-deleted pod's container to stop",
                 lambda: process_identity(processes[bare_id(gone_cid)][0]) != processes[bare_id(gone_cid)], 30)
    finally:
        ensure_running(lab, kube, AGENT, node)


def test_runtime_sigkill_restarts_nothing(lab, kube):
    node = sorted(lab.nodes)[-1]
    kube.apply(pinned("steady", 2, node))
    wait_running_ready(kube, "app=steady", 2, timeout=60)
    before = snapshot(kube, "app=steady")
    processes = container_processes(lab, node, [bare_id(c) for c, _, _ in before.values()])
    assert all(processes.values()), processes
    try:
        lab.kill(RUNTIME, node, signal.SIGKILL)
        wait_for("the runtime to be gone", lambda: not lab.pid_of(RUNTIME, node), 10)
        time.sleep(3)
        for cid, identity in processes.items():
            assert process_identity(identity[0]) == identity, f"container {cid} died with the runtime daemon"
        lab.start(RUNTIME, node)
        time.sleep(5)  # the agent reconnects and resyncs
        assert container_processes(lab, node, list(processes)) == processes
        after = snapshot(kube, "app=steady")
        assert after == before, f"pods changed across the runtime restart: {before} -> {after}"
        # and the node still starts new containers
        kube.run("scale", "deployment/steady", "--replicas=3")
        wait_running_ready(kube, "app=steady", 3, timeout=60)
        assert {k: v for k, v in snapshot(kube, "app=steady").items() if k in before} == before
    finally:
        ensure_running(lab, kube, RUNTIME, node)
        ensure_running(lab, kube, AGENT, node)


def test_lost_node_goes_notready_and_its_pods_come_back_on_the_other(lab, kube):
    lost, other = sorted(lab.nodes)[-1], sorted(lab.nodes)[0]
    toleration = 10  # small, so the test does not depend on the lab's --default-toleration-seconds
    tolerations = [{"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": toleration} for t in ("not-ready", "unreachable")]
    kube.apply(deployment("move", 4, tolerations=tolerations))
    pods = wait_running_ready(kube, "app=move", 4, timeout=60)
    on_lost = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == lost}
    assert on_lost, "the spread should put some replicas on each node"
    grace = float(lab.settings.node_monitor_grace_period)
    try:
        stopped = time.monotonic()
        lab.kill(AGENT, lost, signal.SIGKILL)
        lab.kill(RUNTIME, lost, signal.SIGKILL)
        wait_for(f"{lost} to become NotReady", lambda: node_ready(kube, lost) in ("Unknown", "False"),
                 grace + 20)
        not_ready_after = time.monotonic() - stopped
        taints = {t["key"] for t in kube.get("node", lost)["spec"].get("taints", [])}
        assert taints & {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"}, taints

        def all_on_other() -> list[dict] | None:
            ready = running_ready(kube.pods("app=move"))
            return ready if len(ready) == 4 and all(p["spec"]["nodeName"] == other for p in ready) else None

        moved = wait_for("4 Ready replicas on the other node", all_on_other, toleration + 45)
        moved_after = time.monotonic() - stopped
        assert not on_lost & {p["metadata"]["name"] for p in moved}
        assert moved_after <= not_ready_after + toleration + 40, (not_ready_after, moved_after)
    finally:
        ensure_running(lab, kube, RUNTIME, lost)
        ensure_running(lab, kube, AGENT, lost)
    # once back, the node finishes the evicted pods it still had (their containers stop, objects go)
    wait_for("evicted pods of the returned node to be gone",
             lambda: not [p for p in kube.pods("app=move") if p["spec"].get("nodeName") == lost], 60)
    wait_for(f"{lost} to lose its taints", lambda: not [
        t for t in kube.get("node", lost)["spec"].get("taints", [])
        if t["key"] in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")], 30)


def test_scheduler_and_controller_manager_lose_nothing_while_down(lab, kube):
    try:
        lab.kill(SCHEDULER, None, signal.SIGKILL)
        lab.kill(MANAGER, None, signal.SIGKILL)
        wait_for("both to be gone", lambda: not lab.pid_of(SCHEDULER) and not lab.pid_of(MANAGER), 10)
        kube.apply(pod("lonely", "sleep 3600"), deployment("later", 2))
        time.sleep(3)
        assert not kube.get("pod", "lonely")["spec"].get("nodeName"), "bound with no scheduler running"
        assert kube.get("replicasets")["items"] == [], "a ReplicaSet appeared with no controller-manager"

        lab.start(SCHEDULER)
        wait_for("the pending pod to run", lambda: running_ready([kube.get("pod", "lonely")]), 60)
        assert kube.get("replicasets")["items"] == []

        lab.start(MANAGER)
        wait_running_ready(kube, "app=later", 2, timeout=90)  # leader election may wait out the old lease
        # and they carry on: a change after the restart is handled too
        kube.run("scale", "deployment/later", "--replicas=3")
        wait_running_ready(kube, "app=later", 3, timeout=60)
    finally:
        for component in (SCHEDULER, MANAGER):
            if not lab.pid_of(component):
                lab.start(component)
