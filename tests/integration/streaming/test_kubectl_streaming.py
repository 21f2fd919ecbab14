"""Real kubectl against the apiserver's node proxy and a node agent running real containers."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request

import pytest

from tests.fixtures.etcd import free_port

PRINTER = ["sh", "-c", "for i in 1 2 3; do echo line-$i; done; i=4; while true; do echo line-$i; i=$((i+1)); sleep 0.3; done"]


@pytest.fixture(scope="module")
def printer(cluster):
    cluster.create_pod("printer", PRINTER)
    cluster.wait_running("printer")
    return "printer"


@pytest.fixture(scope="module")
def sleeper(cluster):
    cluster.create_pod("sleeper", ["sh", "-c", "echo ready; exec sleep 3600"])
    cluster.wait_running("sleeper")
    return "sleeper"


def test_kubectl_logs_and_tail(cluster, printer):
    deadline = time.monotonic() + 10
    while True:
        r = cluster.kubectl("logs", printer)
        assert r.returncode == 0, r.stderr.decode()
        lines = r.stdout.decode().splitlines()
        if len(lines) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert lines[:4] == ["line-1", "line-2", "line-3", "line-4"]
    r = cluster.kubectl("logs", printer, "--tail", "2")
    assert r.returncode == 0
    tail = r.stdout.decode().splitlines()
    assert len(tail) == 2 and all(t.startswith("line-") for t in tail)
    r = cluster.kubectl("logs", printer, "--timestamps", "--tail", "1")
    stamp, _, text = r.stdout.decode().strip().partition(" ")
    assert stamp.endswith("Z") and "T" in stamp and text.startswith("line-")


def test_kubectl_logs_follow_streams_new_lines(cluster, printer):
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.api.kubeconfig), "--cache-dir",
                             str(cluster.kube_cache), "-n", cluster.namespace, "logs", "-f", "--tail", "1", printer],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = []
        deadline = time.monotonic() + 15
        while len(seen) < 4 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.decode().strip())
        assert len(seen) == 4, (seen, proc.stderr.read1(4096) if proc.poll() is not None else b"")
        numbers = [int(s.split("-")[1]) for s in seen]
        assert numbers == list(range(numbers[0], numbers[0] + 4))  # consecutive: streamed as printed
    finally:
        proc.kill()
        proc.wait()


def test_kubectl_logs_errors_are_kubernetes_statuses(cluster, printer):
    r = cluster.kubectl("logs", "no-such-pod")
    assert r.returncode != 0 and b'pods "no-such-pod" not found' in r.stderr
    r = cluster.kubectl("logs", printer, "-c", "nope")
    assert r.returncode != 0 and b"container nope is not valid for pod printer" in r.stderr
    r = cluster.kubectl("logs", printer, "--previous")
    assert r.returncode != 0 and b'previous terminated container "main" in pod "printer" not found' in r.stderr


def test_kubectl_exec_output_and_exit_code(cluster, sleeper):
    r = cluster.kubectl("exec", sleeper, "--", "sh", "-c", "echo hi; echo oops >&2; exit 3")
    assert r.stdout == b"hi\n"
    assert b"oops" in r.stderr
    assert r.returncode == 3
    r = cluster.kubectl("exec", sleeper, "--", "true")
    assert r.returncode == 0


def test_kubectl_exec_with_stdin(cluster, sleeper):
    r = cluster.kubectl("exec", "-i", sleeper, "--", "sh", "-c", "tr a-z A-Z; echo done", input=b"hello\nworld\n")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == b"HELLO\nWORLD\ndone\n"


def test_exec_into_a_pod_that_is_not_there(cluster):
    r = cluster.kubectl("exec", "ghost", "--", "true")
    assert r.returncode != 0 and b'pods "ghost" not found' in r.stderr


def _fetch(port: int, path: str = "/", timeout: float = 5) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
        return resp.read()


def test_kubectl_port_forward_to_httpd(cluster):
    cluster.create_pod("web", ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && "
                                           "head -c 3000000 /dev/urandom > /www/big && md5sum /www/big && "
                                           "exec httpd -f -p 8080 -h /www"])
    cluster.wait_running("web")
    local = free_port()
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.api.kubeconfig), "--cache-dir",
                             str(cluster.kube_cache), "-n", cluster.namespace, "port-forward", "web",
                             f"{local}:8080"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline().decode()
        assert f"127.0.0.1:{local} -> 8080" in line, (line, proc.stderr.read1(4096) if proc.poll() is not None else "")
        assert _fetch(local) == b"hello-from-pod\n"
        assert _fetch(local) == b"hello-from-pod\n"  # a second connection on the same session
        # concurrent connections, and 3 MB in many SPDY data frames, intact
        import hashlib
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(lambda _: _fetch(local), range(16))) == [b"hello-from-pod\n"] * 16
        logged = cluster.kubectl("logs", "web").stdout.split()[0].decode()
        assert hashlib.md5(_fetch(local, "/big", timeout=30)).hexdigest() == logged
        # a raw connection: bytes both ways, the pod closes, we see EOF
        with socket.create_connection(("127.0.0.1", local), timeout=5) as s:
            s.sendall(b"GET /missing HTTP/1.0\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
            assert reply.startswith(b"HTTP/1.") and b"404" in reply.split(b"\r\n", 1)[0]
    finally:
        proc.terminate()
        proc.wait(10)


def test_stats_summary_through_nodes_proxy(cluster, sleeper):
    r = cluster.http.get(f"/api/v1/nodes/{cluster.agent.node_name}/proxy/stats/summary")
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["node"]["nodeName"] == cluster.agent.node_name
    assert summary["node"]["memory"]["workingSetBytes"] > 0
    assert "usageNanoCores" in summary["node"]["cpu"]
    pods = {p["podRef"]["name"]: p for p in summary["pods"]}
    assert sleeper in pods
    main = pods[sleeper]["containers"][0]
    assert main["name"] == "main" and main["memory"]["workingSetBytes"] > 0
    assert main["cpu"]["usageCoreNanoSeconds"] > 0


def test_agent_refuses_callers_without_a_cluster_client_cert(cluster):
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        urllib.request.urlopen(f"https://127.0.0.1:{cluster.agent.port}/stats/summary", context=ctx,
                               timeout=5).read()



def test_kubectl_exec_it_on_a_terminal(cluster, sleeper):
    import os
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.api.kubeconfig), "--cache-dir",
                             str(cluster.kube_cache), "-n", cluster.namespace, "exec", "-it", sleeper, "--", "sh"],
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    output = b""
    try:
        deadline = time.monotonic() + 10
        while b"# " not in output and proc.poll() is None and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                output += os.read(master, 4096)  # wait for the prompt: the shell reads input after it
        os.write(master, b"stty size; echo $((6*7)); exit 5\n")
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    output += os.read(master, 4096)
                except OSError:
                    break
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert b"42" in output, output
    assert proc.returncode == 5, output


def test_kubectl_attach_sees_output(cluster, printer):
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.api.kubeconfig), "--cache-dir",
                             str(cluster.kube_cache), "-n", cluster.namespace, "attach", printer],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = [proc.stdout.readline().decode().strip() for _ in range(2)]
        assert all(line.startswith("line-") for line in lines), (lines, proc.stderr.read1(4096))
    finally:
        proc.kill()
        proc.wait()


def test_kubectl_logs_previous_instance(cluster):
    cluster.create_pod("crasher", ["sh", "-c", "echo started-at-$(date +%s%N); sleep 0.5; exit 1"])
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        statuses = (cluster.pod("crasher").get("status") or {}).get("containerStatuses") or []
        if statuses and statuses[0].get("restartCount", 0) >= 1:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("crasher never restarted")
    r = cluster.kubectl("logs", "crasher", "--previous")
    assert r.returncode == 0, r.stderr.decode()
    previous = r.stdout.decode().strip()
    assert previous.startswith("started-at-")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = cluster.kubectl("logs", "crasher")
        current = r.stdout.decode().strip()
        if r.returncode == 0 and current:
            break
        time.sleep(0.3)
    assert current.startswith("started-at-") and current != previous


def test_kubectl_port_forward_to_a_closed_port_reports_the_error(cluster, sleeper):
    local = free_port()
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.api.kubeconfig), "--cache-dir",
                             str(cluster.kube_cache), "-n", cluster.namespace, "port-forward", sleeper,
                             f"{local}:9"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline().decode()
        assert f"127.0.0.1:{local} -> 9" in line
        with socket.create_connection(("127.0.0.1", local), timeout=5) as s:
            s.settimeout(5)
            assert s.recv(100) == b""  # nothing listens on 9 in the pod: the connection just ends
        time.sleep(0.5)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"error forwarding port 9 to pod" in err and b"connection refused" in err.lower(), err


def test_kubectl_cp_both_ways(cluster, sleeper, tmp_path):
    """kubectl cp is tar over exec: stdin to the end, then the stdin close frame, then the exit code."""
    src = tmp_path / "payload.txt"
    src.write_bytes(b"copied through exec\n" * 1000)
    r = cluster.kubectl("cp", str(src), f"{sleeper}:/tmp/payload.txt")
    assert r.returncode == 0, r.stderr.decode()
    r = cluster.kubectl("exec", sleeper, "--", "md5sum", "/tmp/payload.txt")
    import hashlib

    assert r.stdout.split()[0].decode() == hashlib.md5(src.read_bytes()).hexdigest()
    back = tmp_path / "back.txt"
    r = cluster.kubectl("cp", f"{sleeper}:/tmp/payload.txt", str(back))
    assert r.returncode == 0, r.stderr.decode()
    assert back.read_bytes() == src.read_bytes()


def test_python_kubernetes_client_exec_and_logs(cluster, sleeper):
    """The official Python client: exec over v4.channel.k8s.io WebSockets, logs over plain GET."""
    from kubernetes import client, config
    from kubernetes.stream import stream

    api = client.CoreV1Api(config.new_client_from_config(str(cluster.api.kubeconfig)))
    out = stream(api.connect_get_namespaced_pod_exec, sleeper, cluster.namespace,
                 command=["sh", "-c", "echo from-python"], stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "from-python\n"
    resp = stream(api.connect_get_namespaced_pod_exec, sleeper, cluster.namespace,
                  command=["sh", "-c", "exit 4"], stderr=True, stdin=False, stdout=True, tty=False,
                  _preload_content=False)
    resp.run_forever(timeout=10)
    assert resp.returncode == 4
    assert api.read_namespaced_pod_log(sleeper, cluster.namespace) == "ready\n"


def test_a_node_whose_agent_is_down_answers_503(cluster):
    """A pod on a node nobody serves: logs and exec say which agent address did not answer."""
    dead_port = free_port()
    node_name = f"{cluster.agent.node_name}-gone"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name}}
    r = cluster.http.post("/api/v1/nodes", json=node)
    assert r.status_code == 201, r.text
    node = r.json()
    node["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                      "daemonEndpoints": {"kubeletEndpoint": {"Port": dead_port}}}
    assert cluster.http.put(f"/api/v1/nodes/{node_name}/status", json=node).status_code == 200
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan"},
           "spec": {"nodeName": node_name, "containers": [{"name": "main", "image": "busybox:latest"}]}}
    r = cluster.http.post(f"/api/v1/namespaces/{cluster.namespace}/pods", json=pod)
    assert r.status_code == 201, r.text
    pod = r.json()
    pod["status"] = {"phase": "Running", "containerStatuses": [
        {"name": "main", "ready": True, "restartCount": 0, "image": "busybox:latest", "imageID": "",
         "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}
    r = cluster.http.put(f"/api/v1/namespaces/{cluster.namespace}/pods/orphan/status", json=pod)
    assert r.status_code == 200, r.text
    try:
        r = cluster.kubectl("logs", "orphan")
        assert r.returncode != 0 and f"127.0.0.1:{dead_port} is not reachable".encode() in r.stderr, r.stderr
        r = cluster.kubectl("exec", "orphan", "--", "true")
        assert r.returncode != 0 and f"127.0.0.1:{dead_port} is not reachable".encode() in r.stderr, r.stderr
        r = cluster.http.get(f"/api/v1/nodes/{node_name}/proxy/stats/summary")
        assert r.status_code == 503 and r.json()["reason"] == "ServiceUnavailable"
    finally:
        cluster.http.delete(f"/api/v1/namespaces/{cluster.namespace}/pods/orphan", params={"gracePeriodSeconds": 0})
        cluster.http.delete(f"/api/v1/nodes/{node_name}")


def test_agent_accepts_the_apiserver_client_cert_and_denies_unknown_pods_with_a_status(cluster):
    import asyncio
    import json as jsonlib

    import websockets

    from apiserver.node_proxy import client_ssl_context
    from ketch.streaming.ws_compat import allow_kubernetes_subprotocols

    allow_kubernetes_subprotocols()
    pki = cluster.api.data_dir / "pki"
    ctx = client_ssl_context(pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key")
    base = f"127.0.0.1:{cluster.agent.port}"
    with urllib.request.urlopen(f"https://{base}/healthz", context=ctx, timeout=5) as resp:
        assert resp.read() == b"ok"

    async def attempt() -> tuple[int, dict]:
        try:
            async with websockets.connect(f"wss://{base}/portForward/{cluster.namespace}/nobody", ssl=ctx,
                                          subprotocols=["SPDY/3.1+portforward.k8s.io"]):
                pass
        except websockets.InvalidStatus as exc:
            return exc.response.status_code, jsonlib.loads(exc.response.body)
        raise AssertionError("the agent accepted a port-forward to a pod it does not run")

    code, status = asyncio.run(attempt())
    assert code == 404 and status["kind"] == "Status" and "nobody" in status["message"]
