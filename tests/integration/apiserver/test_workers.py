"""`ketch-apiserver --workers 2`: one port, two processes, one consistent API.

Every response of a worker carries `ketch-worker: <index>`; each request here opens
its own connection (`Connection: close`), so the kernel's SO_REUSEPORT hash spreads
them over both workers and the tests check that pairs really crossed workers.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.apiserver import ApiServerProcess
from tests.integration.apiserver.conftest import pod


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _worker_pids(server: ApiServerProcess) -> list[int]:
    assert server.process is not None
    return [p for p in _children(server.process.pid)
            if b"apiserver.main" in Path(f"/proc/{p}/cmdline").read_bytes()]


@pytest.fixture(scope="module")
def workers_server(etcd) -> Iterator[ApiServerProcess]:
    import secrets

    root = Path(tempfile.mkdtemp(prefix="ketch-test-workers-"))
    server = ApiServerProcess(etcd.client_url, root, prefix=f"/ketch-test-{secrets.token_hex(4)}/registry",
                              extra_args=["--workers", "2"])
    try:
        server.start(timeout=60)
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ns(workers_server: ApiServerProcess) -> Iterator[str]:
    import secrets

    name = f"w-{secrets.token_hex(3)}"
    with _client(workers_server) as c:
        r = c.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        assert r.status_code == 201, r.text
    yield name
    with _client(workers_server) as c:
        c.delete(f"/api/v1/namespaces/{name}")


def _client(server: ApiServerProcess) -> httpx.Client:
    """Every request on a new connection, so consecutive requests may land on either worker."""
    return httpx.Client(base_url=server.url, verify=server.ssl_context(), timeout=30,
                        headers={"Authorization": f"Bearer {server.token}", "Connection": "close"})


def _configmap(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}}


def test_both_workers_serve_the_port(workers_server: ApiServerProcess) -> None:
    seen = set()
    with _client(workers_server) as c:
        for _ in range(40):
            r = c.get("/api/v1/namespaces/default")
            assert r.status_code == 200
            seen.add(r.headers["ketch-worker"])
            if seen == {"0", "1"}:
                break
    assert seen == {"0", "1"}
    assert len(_worker_pids(workers_server)) == 2


def test_read_after_write_is_consistent_across_workers(workers_server: ApiServerProcess, ns: str) -> None:
    """A create answered by one worker is in the very next list and get, answered by the other."""
    crossed = 0
    with _client(workers_server) as c:
        for i in range(40):
            created = c.post(f"/api/v1/namespaces/{ns}/configmaps", json=_configmap(f"cm-{i}"))
            assert created.status_code == 201, created.text
            listed = c.get(f"/api/v1/namespaces/{ns}/configmaps")
            assert listed.status_code == 200
            names = {item["metadata"]["name"] for item in listed.json()["items"]}
            assert f"cm-{i}" in names, f"list by worker {listed.headers['ketch-worker']} misses cm-{i}"
            assert int(listed.json()["metadata"]["resourceVersion"]) >= int(
                created.json()["metadata"]["resourceVersion"])
            got = c.get(f"/api/v1/namespaces/{ns}/configmaps/cm-{i}")
            assert got.status_code == 200
            assert got.json()["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]
            if created.headers["ketch-worker"] != listed.headers["ketch-worker"]:
                crossed += 1
    assert crossed >= 5, f"only {crossed} of 40 write/list pairs crossed workers"


def test_update_after_write_on_other_worker_uses_the_new_revision(workers_server: ApiServerProcess, ns: str) -> None:
    with _client(workers_server) as c:
        created = c.post(f"/api/v1/namespaces/{ns}/configmaps", json=_configmap("upd")).json()
        body = dict(created, data={"k": "v2"})
        stale = dict(created, data={"k": "v3"})
        for attempt in range(10):
            r = c.put(f"/api/v1/namespaces/{ns}/configmaps/upd", json=body)
            assert r.status_code == 200, r.text
            body = dict(r.json(), data={"k": f"v{attempt + 4}"})
        r = c.put(f"/api/v1/namespaces/{ns}/configmaps/upd", json=stale)
        assert r.status_code == 409


def test_watch_on_one_worker_sees_writes_made_through_the_other(workers_server: ApiServerProcess, ns: str) -> None:
    async def scenario() -> None:
        async with workers_server.async_client() as watch_client:
            async with watch_client.stream(
                "GET", f"/api/v1/namespaces/{ns}/pods",
                params={"watch": "true", "resourceVersion": "0", "timeoutSeconds": "30"},
            ) as stream:
                watcher = stream.headers["ketch-worker"]
                lines = stream.aiter_lines()
                writers: set[str] = set()
                revisions = []
                with _client(workers_server) as c:
                    for i in range(12):
                        r = await asyncio.to_thread(c.post, f"/api/v1/namespaces/{ns}/pods", json=pod(f"p{i}"))
                        assert r.status_code == 201, r.text
                        writers.add(r.headers["ketch-worker"])
                        revisions.append(r.json()["metadata"]["resourceVersion"])
                got = []
                while len(got) < 12:
                    line = await asyncio.wait_for(lines.__anext__(), 15)
                    if line.strip():
                        event = json.loads(line)
                        assert event["type"] == "ADDED"
                        got.append(event["object"]["metadata"]["resourceVersion"])
                assert got == revisions
                assert writers - {watcher}, "no write went through the other worker"

    asyncio.run(scenario())


def test_watch_resumes_on_any_worker_from_a_revision(workers_server: ApiServerProcess, ns: str) -> None:
    with _client(workers_server) as c:
        start = c.get(f"/api/v1/namespaces/{ns}/configmaps").json()["metadata"]["resourceVersion"]
        made = [c.post(f"/api/v1/namespaces/{ns}/configmaps", json=_configmap(f"r{i}")).json() for i in range(3)]
        for _ in range(4):  # from several connections: both workers serve the resumed watch
            r = c.get(f"/api/v1/namespaces/{ns}/configmaps",
                      params={"watch": "true", "resourceVersion": start, "timeoutSeconds": "1"})
            events = [json.loads(line) for line in r.text.splitlines() if line.strip()]
            assert [e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"] == ["r0", "r1", "r2"]
            assert events[-1]["object"]["metadata"]["resourceVersion"] == made[-1]["metadata"]["resourceVersion"]


def test_singletons_run_once_in_worker_zero(workers_server: ApiServerProcess, ns: str) -> None:
    """Default namespaces and service accounts exist; the grace reaper and the namespace
    controller work whichever worker took the request, and only worker 0 runs them."""
    with _client(workers_server) as c:
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            assert c.get(f"/api/v1/namespaces/{name}").status_code == 200
        deadline = time.monotonic() + 15
        while c.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default").status_code != 200:
            assert time.monotonic() < deadline, "no default serviceaccount"
            time.sleep(0.2)
        bound = pod("graceful", nodeName="node-x", terminationGracePeriodSeconds=1)
        assert c.post(f"/api/v1/namespaces/{ns}/pods", json=bound).status_code == 201
        r = c.delete(f"/api/v1/namespaces/{ns}/pods/graceful")
        assert r.status_code == 200 and r.json()["metadata"]["deletionTimestamp"]
        deadline = time.monotonic() + 20
        while c.get(f"/api/v1/namespaces/{ns}/pods/graceful").status_code != 404:
            assert time.monotonic() < deadline, "the grace reaper did not remove the pod"
            time.sleep(0.3)
    reaped = [line for line in workers_server.log_path.read_text().splitlines()
              if "pod grace expired" in line and "pod=graceful" in line]
    assert reaped and all("worker=0" in line for line in reaped), reaped
    assert len(reaped) == 1


def test_namespace_deleted_through_any_worker_goes(workers_server: ApiServerProcess) -> None:
    with _client(workers_server) as c:
        for i in range(3):
            name = f"wdel-{os.getpid()}-{i}"
            assert c.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": name}}).status_code == 201
            assert c.post(f"/api/v1/namespaces/{name}/configmaps", json=_configmap("x")).status_code == 201
            assert c.delete(f"/api/v1/namespaces/{name}").status_code == 200
            deadline = time.monotonic() + 20
            while c.get(f"/api/v1/namespaces/{name}").status_code != 404:
                assert time.monotonic() < deadline, f"namespace {name} still there"
                time.sleep(0.2)


def test_same_cluster_ip_requested_through_both_workers_is_given_once(
        workers_server: ApiServerProcess, ns: str) -> None:
    """Allocation is guarded in etcd, not per process: of concurrent creates asking for one
    clusterIP (spread over both workers), exactly one wins."""
    def service(name: str) -> dict:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"clusterIP": "10.96.77.77", "ports": [{"port": 80}]}}

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=workers_server.url, verify=workers_server.ssl_context(), timeout=30,
                                     headers={"Authorization": f"Bearer {workers_server.token}",
                                              "Connection": "close"}) as c:
            return await asyncio.gather(*(c.post(f"/api/v1/namespaces/{ns}/services", json=service(f"s{i}"))
                                          for i in range(8)))

    responses = asyncio.run(scenario())
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1, [(r.status_code, r.headers.get("ketch-worker"), r.text[:200]) for r in responses]
    assert set(codes) == {201, 422}


def test_a_killed_worker_is_replaced(workers_server: ApiServerProcess) -> None:
    before = _worker_pids(workers_server)
    os.kill(before[-1], signal.SIGKILL)
    deadline = time.monotonic() + 30
    with _client(workers_server) as c:
        while True:
            now = _worker_pids(workers_server)
            if len(now) == 2 and before[-1] not in now:
                seen = {c.get("/readyz").headers.get("ketch-worker") for _ in range(30)}
                if seen == {"0", "1"}:
                    break
            assert time.monotonic() < deadline, f"worker not replaced: {before} -> {now}"
            time.sleep(0.3)


def test_sigkill_of_the_supervisor_takes_the_workers_down(etcd) -> None:
    import secrets

    root = Path(tempfile.mkdtemp(prefix="ketch-test-workers-kill-"))
    server = ApiServerProcess(etcd.client_url, root, prefix=f"/ketch-test-{secrets.token_hex(4)}/registry",
                              extra_args=["--workers", "2"])
    try:
        server.start(timeout=60)
        workers = _worker_pids(server)
        assert len(workers) == 2
        server.kill()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers):
            assert time.monotonic() < deadline, "workers outlived their supervisor"
            time.sleep(0.1)
    finally:
        server.kill()
        shutil.rmtree(root, ignore_errors=True)


def _secret_creates(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{") and 'resource="secrets"' in line \
                and 'verb="create"' in line and 'code="201"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_add_up_over_workers(workers_server: ApiServerProcess, ns: str) -> None:
    with _client(workers_server) as c:
        before = _secret_creates(c.get("/metrics").text)
        writers = set()
        for i in range(12):
            r = c.post(f"/api/v1/namespaces/{ns}/secrets",
                       json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i}"}})
            assert r.status_code == 201
            writers.add(r.headers["ketch-worker"])
        assert writers == {"0", "1"}
        scraped_by = set()
        for _ in range(20):
            r = c.get("/metrics")
            assert _secret_creates(r.text) == before + 12
            scraped_by.add(r.headers["ketch-worker"])
        assert scraped_by == {"0", "1"}
