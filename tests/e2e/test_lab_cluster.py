"""A 2-node lab cluster from `ketch up`: Ready nodes, a spread Deployment, power-off and resume, purge."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from tests.fixtures.lab import REPO, Lab, make_lab, short_dir, tear_down

HTTPD_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["busybox", "httpd", "-f", "-p", "8080", "-h", "/var/www"]
        ports:
        - containerPort: 8080
        readinessProbe:
          httpGet: {{path: /index.html, port: 8080}}
          periodSeconds: 1
"""


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if entry.isdigit() and int(entry) != os.getpid() and text.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            pass
    return found


def kubectl_json(lab: Lab, *args: str) -> dict:
    proc = lab.kubectl(*args, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def ready_pods(lab: Lab, selector: str) -> list[dict]:
    pods = kubectl_json(lab, "get", "pods", "-l", selector)["items"]
    return [p for p in pods
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])]


def wait_ready_pods(lab: Lab, selector: str, count: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        pods = ready_pods(lab, selector)
        if len(pods) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    wide = lab.kubectl("get", "pods", "-o", "wide", "-l", selector).stdout
    assert len(pods) == count, f"{len(pods)}/{count} pods Running and Ready after {timeout}s:\n{wide}"
    return pods


def node_conditions(lab: Lab) -> dict[str, dict]:
    return {n["metadata"]["name"]: n for n in kubectl_json(lab, "get", "nodes")["items"]}


def test_two_nodes_ready_with_their_lab_addresses(lab: Lab):
    got = lab.kubectl("get", "nodes")
    assert got.returncode == 0, got.stderr
    rows = [line.split() for line in got.stdout.splitlines()[1:]]
    assert sorted((r[0], r[1]) for r in rows) == [(n, "Ready") for n in sorted(lab.nodes)]
    settings = lab.settings
    for name, node in node_conditions(lab).items():
        addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
        assert addresses["InternalIP"] == settings.node_ip(name)
        assert node["spec"].get("podCIDR"), f"{name} has no pod CIDR"
    # each node is its own network namespace, with no route out of the lab
    for name in lab.nodes:
        routes = subprocess.run(["ip", "-n", lab.node_netns(name), "route", "show", "default"],
                                capture_output=True, text=True, check=True).stdout
        assert routes.strip() == "", f"{name} has a default route: {routes}"


def test_up_again_says_running_and_restarts_only_what_is_missing(lab: Lab):
    lab.up()  # whatever earlier tests stopped runs again
    assert "already running and healthy" in lab.up().stdout
    node = lab.nodes[0]
    old = lab.kill("node-agent", node)
    again = lab.up().stdout
    assert f"restarted {node}/node-agent." in again, again
    assert lab.pid_of("node-agent", node) not in (None, old)


def test_deployment_spreads_over_both_nodes_and_survives_power_off(lab: Lab):
    applied = lab.kubectl("apply", "-f", "-", stdin=HTTPD_DEPLOYMENT.format(name="spread", replicas=3))
    assert applied.returncode == 0, applied.stderr
    try:
        pods = wait_ready_pods(lab, "app=spread", 3)
        wide = lab.kubectl("get", "pods", "-o", "wide", "-l", "app=spread").stdout
        assert {p["spec"]["nodeName"] for p in pods} == set(lab.nodes), wide
        placement = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods}
        agent, runtime = lab.pid_of("node-agent", lab.nodes[0]), lab.pid_of("runtime", lab.nodes[0])

        down = lab.down()
        assert down.returncode == 0, down.stdout + down.stderr
        stopped = re.search(r"Stopped (\d+) containers\.", down.stdout)
        assert stopped and int(stopped.group(1)) >= 3, down.stdout
        assert lab.leftovers() == [], "ketch down leaves no kernel objects"
        for pid in (agent, runtime):
            assert not os.path.exists(f"/proc/{pid}") or " Z " in open(f"/proc/{pid}/stat").read()
        assert (lab.state_dir / "apiserver").is_dir(), "ketch down keeps the state"

        lab.up()
        back = wait_ready_pods(lab, "app=spread", 3)
        assert {p["metadata"]["name"]: p["spec"]["nodeName"] for p in back} == placement, \
            "the same pods come back on their nodes"
    finally:
        lab.kubectl("delete", "deployment", "spread", "--wait=false")


def test_purge_leaves_nothing_of_the_lab(run_id: str):
    """A second, 1-node lab: up, a pod runs, `down --purge`: no netns, link, cgroup, mount or state left."""
    with short_dir(run_id, 2) as base:
        check_purge(make_lab(run_id, base, index=2, nodes=1))


def check_purge(small: Lab) -> None:
    try:
        small.up()
        applied = small.kubectl("apply", "-f", "-", stdin=HTTPD_DEPLOYMENT.format(name="one", replicas=1))
        assert applied.returncode == 0, applied.stderr
        wait_ready_pods(small, "app=one", 1)
        assert small.leftovers(), "a running lab shows up in kernel_leftovers (the check can fail)"
        down = small.down("--purge")
        assert down.returncode == 0, down.stdout + down.stderr
        prefix = f"ketch-{small.name}"
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        assert prefix not in netns and prefix not in links
        cgroups = [p for p in os.listdir("/sys/fs/cgroup") if os.path.isdir(f"/sys/fs/cgroup/{p}")]
        for hierarchy in ["."] + cgroups:
            names = os.listdir(os.path.join("/sys/fs/cgroup", hierarchy))
            assert not [n for n in names if n.startswith(prefix)], hierarchy
        with open("/proc/self/mounts") as f:
            assert str(small.state_dir) not in f.read()
        assert not (small.state_dir / "apiserver").exists() and not (small.state_dir / "nodes").exists()
    finally:
        if small.leftovers() or (small.state_dir / "lab.json").exists():
            tear_down(small)


@pytest.mark.parametrize("component", ["scheduler", "controller-manager"])
def test_fixture_kill_and_start_a_control_plane_daemon(lab: Lab, component: str):
    old = lab.kill(component)
    deadline = time.monotonic() + 10
    while lab.pid_of(component) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lab.pid_of(component) is None
    new = lab.start(component)
    assert new != old and lab.pid_of(component) == new
    assert "--- ketch up: starting" in lab.logs(component)


def test_with_sample_app_deploys_the_readme_example(lab: Lab):
    """What `make up` runs: the web example is applied and available, one pod per node."""
    try:
        out = lab.up("--with-sample-app").stdout
        assert "Sample app: deployment web has 2/2 pods available" in out, out
        pods = ready_pods(lab, "app=web")
        assert {p["spec"]["nodeName"] for p in pods} == set(lab.nodes)
    finally:
        lab.kubectl("delete", "deployment,service,configmap", "-l", "app=web", "--wait=false")


def test_down_after_a_runtime_crash_then_up_brings_the_pods_back(lab: Lab):
    """A runtime that died cannot stop its containers: down kills them by cgroup, up clears its stale pods."""
    applied = lab.kubectl("apply", "-f", "-", stdin=HTTPD_DEPLOYMENT.format(name="crash", replicas=2))
    assert applied.returncode == 0, applied.stderr
    try:
        wait_ready_pods(lab, "app=crash", 2)
        node = lab.nodes[0]
        lab.kill("runtime", node)
        down = lab.down()
        assert down.returncode == 0, down.stdout + down.stderr
        assert lab.leftovers() == []
        up = lab.up().stdout
        assert f"{node}: cleared the pods of its last unclean power-off" in up, up
        wait_ready_pods(lab, "app=crash", 2)
    finally:
        lab.kubectl("delete", "deployment", "crash", "--wait=false")


def test_clean_host_removes_a_lab_whose_owner_was_killed(run_id: str, lab: Lab):
    """`deploy/clean-host.sh ketch-<lab>` on a running lab (its `ketch` and pytest gone): nothing is left,
    and another lab (the session's) is not touched: its pid files and daemons stay."""
    others = {f.name: f.read_text() for f in (lab.state_dir / "run").glob("*.pid")}
    assert others
    with short_dir(run_id, 3) as base:
        orphan = make_lab(run_id, base, index=3, nodes=1)
        try:
            orphan.up()
            applied = orphan.kubectl("apply", "-f", "-", stdin=HTTPD_DEPLOYMENT.format(name="orphan", replicas=1))
            assert applied.returncode == 0, applied.stderr
            wait_ready_pods(orphan, "app=orphan", 1)
            pids = [orphan.pid_of(kind, node) for kind, node in
                    [("apiserver", None), ("runtime", orphan.nodes[0]), ("node-agent", orphan.nodes[0])]]
            cleaned = subprocess.run([str(REPO / "deploy" / "clean-host.sh"), f"ketch-{orphan.name}"],
                                     capture_output=True, text=True, timeout=120)
            assert cleaned.returncode == 0, cleaned.stderr
            assert orphan.leftovers() == []
            time.sleep(0.5)
            assert [p for p in pids if p and os.path.exists(f"/proc/{p}")
                    and " Z " not in open(f"/proc/{p}/stat").read()] == []
            assert processes_mentioning(str(orphan.state_dir)) == []
            assert {f.name: f.read_text() for f in (lab.state_dir / "run").glob("*.pid")} == others
            assert all(lab.pid_of(kind) for kind in ("apiserver", "scheduler", "controller-manager"))
        finally:
            tear_down(orphan)


def _http_get_in_netns(netns: str, url: str) -> bytes:
    """GET `url` from inside a node's network namespace (a thread there, not `ip netns exec`)."""
    import urllib.request

    from node_agent.network import netns as ns

    def get() -> bytes:
        with urllib.request.urlopen(url, timeout=3) as r:  # noqa: S310 - a lab address
            return r.read()

    return ns.run_in(f"/run/netns/{netns}", get)


def test_pods_and_services_reach_across_nodes(lab: Lab):
    """With the cluster network in the agents (issue 5): node 1 reaches a pod on node 2 and a ClusterIP."""
    agent_help = subprocess.run([sys.executable, "-m", "node_agent.main", "--help"], capture_output=True,
                                text=True, env=lab.env).stdout
    if "--cluster-network" not in agent_help:
        pytest.skip("the node agent has no cluster network yet")
    service = ("apiVersion: v1\nkind: Service\nmetadata: {name: across}\n"
               "spec: {selector: {app: across}, ports: [{port: 80, targetPort: 8080}]}\n")
    for manifest in (HTTPD_DEPLOYMENT.format(name="across", replicas=2), service):
        applied = lab.kubectl("apply", "-f", "-", stdin=manifest)
        assert applied.returncode == 0, applied.stderr
    try:
        pods = wait_ready_pods(lab, "app=across", 2)
        first, second = lab.nodes
        remote = [p for p in pods if p["spec"]["nodeName"] == second]
        assert remote, lab.kubectl("get", "pods", "-o", "wide").stdout
        body = _http_get_in_netns(lab.node_netns(first), f"http://{remote[0]['status']['podIP']}:8080/index.html")
        assert b"Hello from Ketch busybox" in body
        cluster_ip = kubectl_json(lab, "get", "service", "across")["spec"]["clusterIP"]
        deadline = time.monotonic() + 20
        while True:  # the proxy programs the service once the endpoints are ready
            try:
                body = _http_get_in_netns(lab.node_netns(first), f"http://{cluster_ip}/index.html")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert b"Hello from Ketch busybox" in body
    finally:
        lab.kubectl("delete", "deployment,service", "across", "--wait=false")
