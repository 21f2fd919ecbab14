"""A 3-node `ketch up` lab for the cluster-network e2e tests (issue 5), and the helpers they share.

One lab for the whole package (`net_lab`, lab index 5: its own name, subnet
and ports, apart from the session's 2-node `lab`). Each test module works in
its own Kubernetes namespace and leaves the lab whole. At the end the lab is
purged and the kernel is checked: no netns, link, cgroup or mount of the lab,
and no nftables rule in the host namespace naming its bridge or subnet.

Traffic only ever goes to the lab's own addresses: pod IPs and ClusterIPs from
inside node namespaces or pods, and node addresses on the lab bridge.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.fixtures.lab import Lab, make_lab, short_dir, tear_down

LAB_INDEX = 5
#: Lab traffic never goes through a proxy named in the environment.
NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}
T = TypeVar("T")

#: A pod that serves its own name (its hostname) at / on 8080 and is ready while /w/ready exists.
WEB_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {app}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {node}}}
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /w && hostname > /w/index.html && echo ok > /w/ready && exec httpd -f -p 8080 -h /w"]
    ports: [{{containerPort: 8080, name: http}}]
    readinessProbe:
      httpGet: {{path: /ready, port: 8080}}
      periodSeconds: {period}
      failureThreshold: 1
"""

SERVICE = """
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  type: {type}
  selector: {{app: {app}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"""


def web_pod(name: str, ns: str, node: str, app: str = "web", period: int = 1) -> str:
    return WEB_POD.format(name=name, ns=ns, node=node, app=app, period=period)


def service(name: str, ns: str, app: str = "web", type: str = "ClusterIP") -> str:  # noqa: A002 - the field
    return SERVICE.format(name=name, ns=ns, app=app, type=type)


# ---------------------------------------------------------------------- the lab


def host_nft_ruleset() -> str:
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, timeout=30).stdout


@pytest.fixture(scope="package")
def net_lab(run_id: str) -> Iterator[Lab]:
    """A running 3-node lab; at the end `ketch down --purge`, and nothing of it left in the kernel."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, cgroups)")
    with short_dir(run_id, LAB_INDEX) as base:
        the_lab = make_lab(run_id, base, index=LAB_INDEX, nodes=3)
        try:
            the_lab.up()
            yield the_lab
        finally:
            tear_down(the_lab)  # asserts `ketch down --purge` left no netns, link, cgroup or mount
            assert not (the_lab.state_dir / "lab.json").exists(), "purge deletes the lab's state"
            netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
            links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
            prefix = f"ketch-{the_lab.name}"
            assert prefix not in netns, netns
            assert prefix not in links, links
            # the cluster network lived in the node namespaces only: nothing in the host's nftables
            ruleset = host_nft_ruleset()
            subnet_prefix = the_lab.subnet.rsplit(".", 1)[0] + "."  # "10.215.n."
            assert prefix not in ruleset and subnet_prefix not in ruleset, ruleset
            with open("/proc/self/mounts") as f:
                assert str(the_lab.state_dir) not in f.read()


@pytest.fixture(scope="module")
def namespace(net_lab: Lab, request: pytest.FixtureRequest) -> Iterator[str]:
    """A Kubernetes namespace for one test module, deleted at its end."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    created = net_lab.kubectl("create", "namespace", name)
    assert created.returncode == 0, created.stderr
    try:
        yield name
    finally:
        net_lab.kubectl("delete", "namespace", name, "--wait=false")


# ---------------------------------------------------------------------- kubectl


def kubectl_ok(lab: Lab, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
    proc = lab.kubectl(*args, stdin=stdin, timeout=timeout)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def kubectl_json(lab: Lab, *args: str) -> dict:
    return json.loads(kubectl_ok(lab, *args, "-o", "json"))


def apply(lab: Lab, *manifests: str) -> None:
    kubectl_ok(lab, "apply", "-f", "-", stdin="\n---\n".join(manifests))


def is_ready(pod: dict) -> bool:
    return (pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or []))


def wait_ready(lab: Lab, ns: str, names: list[str], timeout: float = 60) -> dict[str, dict]:
    """The named pods once all are Running and Ready (fails with `get pods -o wide` after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        pods = {p["metadata"]["name"]: p for p in kubectl_json(lab, "get", "pods", "-n", ns)["items"]}
        if all(n in pods and is_ready(pods[n]) for n in names):
            return pods
        if time.monotonic() > deadline:
            wide = lab.kubectl("get", "pods", "-n", ns, "-o", "wide").stdout
            pytest.fail(f"pods {names} not all Ready after {timeout}s:\n{wide}")
        time.sleep(0.5)


def endpoint_ips(lab: Lab, ns: str, name: str) -> set[str]:
    """The ready addresses of a Service's Endpoints."""
    proc = lab.kubectl("get", "endpoints", name, "-n", ns, "-o", "json")
    if proc.returncode != 0:
        return set()
    subsets = json.loads(proc.stdout).get("subsets") or []
    return {a["ip"] for s in subsets for a in s.get("addresses") or []}


def eventually(check: Callable[[], T], timeout: float, what: str, interval: float = 0.3) -> T:
    """`check()`'s first truthy result within `timeout` seconds, else fail saying `what`."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what} (last: {got!r})")
        time.sleep(interval)


# ---------------------------------------------------------------------- traffic inside the lab


def pod_get(lab: Lab, ns: str, pod: str, url: str, count: int = 1, timeout: float = 3) -> list[str]:
    """`count` GETs of `url` from inside `pod` (busybox wget, one `kubectl exec`): each answer's
    body, or "" for a request that failed."""
    script = (f'i=0; while [ $i -lt {count} ]; do i=$((i+1)); '
              f'timeout {int(timeout)} wget -qO- {url} || echo; done')
    out = kubectl_ok(lab, "exec", "-n", ns, pod, "--", "sh", "-c", script, timeout=30 + count * (timeout + 1))
    return [line.strip() for line in out.splitlines()][:count]


def node_get(lab: Lab, node: str, url: str, count: int = 1, timeout: float = 3) -> list[str]:
    """`count` GETs of `url` from a node: busybox wget run under `nsenter --net` into its namespace."""
    answers = []
    for _ in range(count):
        proc = subprocess.run(["nsenter", f"--net=/run/netns/{lab.node_netns(node)}",
                               "timeout", str(timeout), "busybox", "wget", "-qO-", url],
                              capture_output=True, text=True, timeout=timeout + 10,
                              env={k: v for k, v in os.environ.items() if k not in PROXY_VARS})
        answers.append(proc.stdout.strip() if proc.returncode == 0 else "")
    return answers


def host_get(lab: Lab, url: str, timeout: float = 3) -> str:
    """A GET from the host namespace over the lab bridge; only to an address of the lab's subnet."""
    host = urllib.request.urlparse(url).hostname or ""
    assert ipaddress.ip_address(host) in ipaddress.ip_network(lab.subnet), f"{url} is outside the lab"
    try:
        with NO_PROXY_OPENER.open(url, timeout=timeout) as r:
            return r.read().decode().strip()
    except OSError:
        return ""


def node_nft_table(lab: Lab, node: str) -> str:
    proc = subprocess.run(["ip", "netns", "exec", lab.node_netns(node), "nft", "list", "table", "ip",
                           "ketch_services"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"{node}: {proc.stderr}"
    return proc.stdout
