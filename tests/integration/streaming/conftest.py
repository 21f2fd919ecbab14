"""A one-node cluster for the streaming tests: apiserver (with the node proxy), a runtime
daemon (its own netns, run-id names), and a node agent serving its API on loopback.

Everything is started as the real programs and stopped by PID; the runtime fixture
removes its containers, cgroups, mounts and namespace.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.apiserver import ApiServerProcess
from tests.fixtures.etcd import EtcdMember, free_port
from tests.fixtures.runtime import make_runtime_daemon

REPO = Path(__file__).resolve().parents[3]


class ProxiedApiServer(ApiServerProcess):
    """`ketch-apiserver` with `apiserver.node_proxy.install` applied (see launchers.py)."""

    def command(self) -> list[str]:
        cmd = super().command()
        i = cmd.index("-m")
        return [*cmd[:i], "-m", "tests.integration.streaming.launchers", "apiserver", *cmd[i + 2:]]


class AgentProcess:
    def __init__(self, root: Path, kubeconfig: Path, node_name: str, runtime_socket: str) -> None:
        self.root, self.node_name = root, node_name
        self.port = free_port()
        self.log_path = root / "agent.log"
        self.argv = [sys.executable, "-m", "tests.integration.streaming.launchers", "agent",
                     "--kubeconfig", str(kubeconfig), "--node-name", node_name,
                     "--root-dir", str(root / "agent"), "--runtime-endpoint", runtime_socket,
                     "--node-ip", "127.0.0.1", "--port", str(self.port), "--metrics-bind-address", "",
                     "--pod-cidr-wait", "0", "--lease-renew-interval", "2"]
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = f"{REPO}:{REPO / 'node-agent'}"
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
        log.close()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Cluster:
    def __init__(self, api: ApiServerProcess, agent: AgentProcess, runtime, namespace: str, root: Path) -> None:
        self.api, self.agent, self.runtime, self.namespace, self.root = api, agent, runtime, namespace, root
        self.http = api.client()
        self.kube_cache = root / "kube-cache"

    def kubectl(self, *args: str, input: bytes | None = None, timeout: float = 60,
                env: dict | None = None) -> subprocess.CompletedProcess:
        cmd = ["kubectl", "--kubeconfig", str(self.api.kubeconfig), "--cache-dir", str(self.kube_cache),
               "-n", self.namespace, *args]
        return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout,
                              env={**os.environ, **(env or {})})

    def ketch(self, *args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "ketch.cli.main", "--kubeconfig", str(self.api.kubeconfig),
               "-n", self.namespace, *args]
        env = dict(os.environ, PYTHONPATH=str(REPO), HOME=str(self.root))
        return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=env, cwd=str(REPO))

    def create_pod(self, name: str, command: list[str], *, containers: list[dict] | None = None,
                   restart_policy: str = "Always", annotations: dict | None = None) -> dict:
        spec = {
            "nodeName": self.agent.node_name, "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 1,
            "containers": containers or [{"name": "main", "image": "busybox:latest",
                                          "imagePullPolicy": "Never", "command": command}],
        }
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": annotations or {}},
               "spec": spec}
        r = self.http.post(f"/api/v1/namespaces/{self.namespace}/pods", json=pod)
        assert r.status_code == 201, r.text
        return r.json()

    def pod(self, name: str) -> dict:
        r = self.http.get(f"/api/v1/namespaces/{self.namespace}/pods/{name}")
        assert r.status_code == 200, r.text
        return r.json()

    def wait_running(self, name: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        pod: dict = {}
        while time.monotonic() < deadline:
            pod = self.pod(name)
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            if statuses and all("running" in (s.get("state") or {}) for s in statuses):
                return pod
            time.sleep(0.2)
        raise AssertionError(f"pod {name} not running in {timeout}s: {pod.get('status')}\n"
                             f"agent log:\n{self.agent.log_tail()}")


@pytest.fixture(scope="package")
def cluster(etcd: EtcdMember, run_id: str, busybox_store_template: Path) -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix=f"ketch{run_id}-streaming-"))
    unique = secrets.token_hex(3)
    api = ProxiedApiServer(etcd.client_url, root / "api", prefix=f"/ketch-test-stream-{unique}/registry")
    (root / "api").mkdir()
    runtime = make_runtime_daemon(run_id, busybox_store_template, subnet_octet=40)
    agent = None
    try:
        api.start()
        runtime.start()
        agent = AgentProcess(root, api.kubeconfig, f"ketch{run_id}-stream", runtime.socket)
        agent.start()
        cluster = Cluster(api, agent, runtime, f"stream-{unique}", root)
        r = cluster.http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": cluster.namespace}})
        assert r.status_code in (201, 409), r.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            node = cluster.http.get(f"/api/v1/nodes/{agent.node_name}")
            if node.status_code == 200:
                break
            assert agent.process.poll() is None, f"agent exited:\n{agent.log_tail()}"
            time.sleep(0.2)
        else:
            raise AssertionError(f"node never registered:\n{agent.log_tail()}")
        while time.monotonic() < deadline:  # and its API listens
            try:
                socket.create_connection(("127.0.0.1", agent.port), timeout=1).close()
                break
            except OSError:
                assert agent.process.poll() is None, f"agent exited:\n{agent.log_tail()}"
                time.sleep(0.1)
        else:
            raise AssertionError(f"the agent API never listened on {agent.port}:\n{agent.log_tail()}")
        yield cluster
        cluster.http.delete(f"/api/v1/namespaces/{cluster.namespace}")
        cluster.http.delete(f"/api/v1/nodes/{agent.node_name}")
    finally:
        if agent is not None:
            agent.stop()
        runtime.teardown()
        api.stop()
        shutil.rmtree(runtime.root.parent, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
