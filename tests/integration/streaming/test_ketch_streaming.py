"""The same streams through the `ketch` CLI: logs, exec, port-forward, top."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.fixtures.etcd import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture(scope="module")
def chatty(cluster):
    cluster.create_pod("chatty", ["sh", "-c", "echo one; echo two; echo three; exec sleep 3600"])
    cluster.wait_running("chatty")
    return "chatty"


def test_ketch_logs_tail_and_default_container(cluster, chatty):
    deadline = time.monotonic() + 10
    while True:
        r = cluster.ketch("logs", chatty)
        assert r.returncode == 0, r.stderr.decode()
        if r.stdout == b"one\ntwo\nthree\n" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.stdout == b"one\ntwo\nthree\n"
    r = cluster.ketch("logs", "--tail", "1", f"pod/{chatty}")
    assert r.stdout == b"three\n"
    r = cluster.ketch("logs", "-t", "--tail", "1", chatty)
    assert r.stdout.decode().split(" ", 1)[1] == "three\n"


def test_ketch_missing_pod_errors(cluster):
    for args in (("logs", "nobody"), ("exec", "nobody", "--", "true"), ("port-forward", "nobody", "8080")):
        r = cluster.ketch(*args)
        assert r.returncode == 1, args
        assert r.stderr.decode().strip() == 'Error from server (NotFound): pods "nobody" not found', args


def test_ketch_exec_passes_exit_code_and_stdin(cluster, chatty):
    r = cluster.ketch("exec", chatty, "--", "sh", "-c", "echo hi; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, b"hi\n", b"err\n")
    r = cluster.ketch("exec", "-i", chatty, "--", "wc", "-c", input=b"x" * 100000)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.strip() == b"100000"


def test_ketch_port_forward(cluster):
    cluster.create_pod("web2", ["sh", "-c", "mkdir -p /www && echo ketch-forwarded > /www/index.html && "
                                            "exec httpd -f -p 8081 -h /www"])
    cluster.wait_running("web2")
    local = free_port()
    env = dict(os.environ, PYTHONPATH=REPO, HOME=str(cluster.root))
    proc = subprocess.Popen([sys.executable, "-m", "ketch.cli.main", "--kubeconfig", str(cluster.api.kubeconfig),
                             "-n", cluster.namespace, "port-forward", "web2", f"{local}:8081"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    try:
        line = proc.stdout.readline().decode()
        assert line == f"Forwarding from 127.0.0.1:{local} -> 8081\n", (line, proc.stderr.read1(4096))
        for _ in range(2):
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=5) as resp:
                assert resp.read() == b"ketch-forwarded\n"
    finally:
        proc.terminate()
        proc.wait(10)


def test_ketch_top_pods_and_nodes(cluster, chatty):
    r = cluster.ketch("top", "pods")
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    row = next(line.split() for line in lines[1:] if line.startswith(chatty + " "))
    assert row[1].endswith("m") and row[2].endswith("Mi")
    r = cluster.ketch("top", "nodes")
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    row = next(line.split() for line in lines[1:] if line.startswith(cluster.agent.node_name))
    assert row[1].endswith("m") and row[3].endswith("Mi") and int(row[3][:-2]) > 0


def test_ketch_exec_it_on_a_terminal_resizes_and_exits_with_the_code(cluster, chatty):
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = dict(os.environ, PYTHONPATH=REPO, HOME=str(cluster.root))
    proc = subprocess.Popen([sys.executable, "-m", "ketch.cli.main", "--kubeconfig", str(cluster.api.kubeconfig),
                             "-n", cluster.namespace, "exec", "-it", chatty, "--", "sh"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO, close_fds=True)
    os.close(slave)
    output = b""

    def read_for(seconds: float, until: bytes | None = None) -> None:
        nonlocal output
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and proc.poll() is None:
            if until is not None and until in output:
                return
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    output += os.read(master, 4096)
                except OSError:
                    return

    try:
        read_for(10, until=b"# ")  # the shell's prompt: it reads its input from here on
        os.write(master, b"stty size\n")
        read_for(5, until=b"30 100")
        assert b"30 100" in output, output  # the terminal's size reached the container
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        os.kill(proc.pid, __import__("signal").SIGWINCH)
        time.sleep(0.5)
        os.write(master, b"stty size; exit 7\n")
        read_for(10)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert b"50 132" in output, output  # SIGWINCH sent the new size
    assert proc.returncode == 7, output


def test_ketch_logs_follow_and_the_default_container_annotation(cluster):
    containers = [
        {"name": "first", "image": "busybox:latest", "imagePullPolicy": "Never",
         "command": ["sh", "-c", "echo from-first; exec sleep 3600"]},
        {"name": "ticker", "image": "busybox:latest", "imagePullPolicy": "Never",
         "command": ["sh", "-c", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done"]},
    ]
    cluster.create_pod("multi", [], containers=containers,
                       annotations={"kubectl.kubernetes.io/default-container": "ticker"})
    cluster.wait_running("multi")
    env = dict(os.environ, PYTHONPATH=REPO, HOME=str(cluster.root))
    proc = subprocess.Popen([sys.executable, "-m", "ketch.cli.main", "--kubeconfig", str(cluster.api.kubeconfig),
                             "-n", cluster.namespace, "logs", "-f", "multi"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    try:
        lines = [proc.stdout.readline().decode().strip() for _ in range(5)]
    finally:
        proc.kill()
        proc.wait()
    numbers = [int(line.split("-")[1]) for line in lines]
    assert numbers == list(range(numbers[0], numbers[0] + 5)), lines
    r = cluster.ketch("logs", "multi", "-c", "first")
    assert r.stdout == b"from-first\n"
    r = cluster.kubectl("logs", "multi", "--tail", "1")  # kubectl honours the annotation too
    assert r.returncode == 0 and r.stdout.startswith(b"tick-"), r.stderr
    # the server's own default (no container parameter) is the annotated one
    resp = cluster.http.get(f"/api/v1/namespaces/{cluster.namespace}/pods/multi/log", params={"tailLines": "1"})
    assert resp.status_code == 200 and resp.text.startswith("tick-")
