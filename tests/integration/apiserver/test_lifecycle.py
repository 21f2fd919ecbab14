"""Deletion semantics: finalizers, graceful pod deletion, propagation policies, namespace lifecycle."""

from __future__ import annotations

import time

import httpx

from tests.integration.apiserver.conftest import pod

MERGE = {"Content-Type": "application/merge-patch+json"}


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def test_finalizers_keep_object_until_removed(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    api.post(base, json={"metadata": {"name": "f", "finalizers": ["example.com/hold"]}})
    r = api.delete(f"{base}/f")
    assert r.status_code == 200
    marked = api.get(f"{base}/f").json()
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 0
    # a second delete changes nothing
    assert api.delete(f"{base}/f").json()["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    r = api.patch(f"{base}/f", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert r.status_code == 200, r.text
    assert api.get(f"{base}/f").status_code == 404


def test_propagation_policies_set_kubernetes_finalizers(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    api.post(base, json={"metadata": {"name": "fg"}})
    api.post(base, json={"metadata": {"name": "or"}})
    api.post(base, json={"metadata": {"name": "bg"}})
    api.request("DELETE", f"{base}/fg", json={"propagationPolicy": "Foreground"})
    api.delete(f"{base}/or", params={"propagationPolicy": "Orphan"})
    api.request("DELETE", f"{base}/bg", json={"propagationPolicy": "Background"})
    assert api.get(f"{base}/fg").json()["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert api.get(f"{base}/or").json()["metadata"]["finalizers"] == ["orphan"]
    assert api.get(f"{base}/bg").status_code == 404
    for n in ("fg", "or"):
        api.patch(f"{base}/{n}", json={"metadata": {"finalizers": []}}, headers=MERGE)
        assert api.get(f"{base}/{n}").status_code == 404


def test_unscheduled_pod_is_deleted_at_once(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    api.post(base, json=pod("loose"))
    assert api.delete(f"{base}/loose").status_code == 200
    assert api.get(f"{base}/loose").status_code == 404


def test_bound_pod_waits_for_node_confirmation(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    api.post(base, json=pod("bound", terminationGracePeriodSeconds=120, nodeName="node-a"))
    r = api.delete(f"{base}/bound")
    assert r.status_code == 200
    meta = r.json()["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 120 and meta["deletionTimestamp"]
    assert api.get(f"{base}/bound").status_code == 200
    # a shorter grace period wins
    r = api.delete(f"{base}/bound", params={"gracePeriodSeconds": 60})
    assert r.json()["metadata"]["deletionGracePeriodSeconds"] == 60
    # the node agent confirms
    r = api.request("DELETE", f"{base}/bound", json={"gracePeriodSeconds": 0})
    assert r.status_code == 200
    assert api.get(f"{base}/bound").status_code == 404


def test_bound_pod_goes_when_grace_runs_out(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    api.post(base, json=pod("short", terminationGracePeriodSeconds=1, nodeName="node-a"))
    api.delete(f"{base}/short")
    assert api.get(f"{base}/short").status_code == 200
    wait_until(lambda: api.get(f"{base}/short").status_code == 404, timeout=15)


def test_namespace_deletion_removes_contents(api: httpx.Client) -> None:
    name = "doomed-ns-test"
    api.delete(f"/api/v1/namespaces/{name}")
    wait_until(lambda: api.get(f"/api/v1/namespaces/{name}").status_code == 404)
    ns = api.post("/api/v1/namespaces", json={"metadata": {"name": name}}).json()
    assert ns["spec"]["finalizers"] == ["kubernetes"] and ns["status"]["phase"] == "Active"
    api.post(f"/api/v1/namespaces/{name}/configmaps", json={"metadata": {"name": "c"}})
    api.post(f"/api/v1/namespaces/{name}/pods", json=pod("p"))
    api.post(f"/apis/apps/v1/namespaces/{name}/deployments", json={
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
    r = api.delete(f"/api/v1/namespaces/{name}")
    assert r.status_code == 200
    assert r.json()["status"]["phase"] == "Terminating"
    # no new content while terminating (unless it already went)
    r = api.post(f"/api/v1/namespaces/{name}/configmaps", json={"metadata": {"name": "late"}})
    if r.status_code != 404:
        assert r.status_code == 403
        assert r.json()["message"] == (
            f'configmaps "late" is forbidden: unable to create new content in namespace {name} '
            "because it is being terminated"
        )
    wait_until(lambda: api.get(f"/api/v1/namespaces/{name}").status_code == 404)
    assert api.get(f"/api/v1/namespaces/{name}/configmaps").json()["items"] == []
    assert api.get(f"/apis/apps/v1/namespaces/{name}/deployments").json()["items"] == []


def test_default_namespaces_exist_and_are_protected(api: httpx.Client) -> None:
    for name in ("default", "kube-system", "kube-public"):
        assert api.get(f"/api/v1/namespaces/{name}").status_code == 200
    r = api.delete("/api/v1/namespaces/default")
    assert r.status_code == 403


def test_embedded_etcd_when_no_etcd_servers(tmp_path) -> None:
    """Without --etcd-servers the apiserver runs its own etcd and keeps data across restarts."""
    from tests.fixtures.apiserver import ApiServerProcess
    from tests.fixtures.etcd import free_port

    server = ApiServerProcess("", tmp_path, prefix="/registry",
                              extra_args=["--embedded-etcd-client-port", str(free_port()),
                                          "--embedded-etcd-peer-port", str(free_port())])
    server.command = lambda: [a for a in ApiServerProcess.command(server) if a != "--etcd-servers" and a != ""]
    try:
        server.start(timeout=60)
        with server.client() as api:
            api.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "kept"}})
        server.restart()
        with server.client() as api:
            assert api.get("/api/v1/namespaces/default/configmaps/kept").status_code == 200
    finally:
        server.stop()
    assert (tmp_path / "data" / "etcd").is_dir()


def test_etcd_down_gives_5xx_status_and_recovers(etcd_factory, tmp_path) -> None:
    from tests.fixtures.apiserver import ApiServerProcess

    member = etcd_factory.member()
    server = ApiServerProcess(member.client_url, tmp_path, prefix="/registry",
                              extra_args=["--etcd-retry-seconds", "2"])
    server.start()
    try:
        with server.client() as api:
            assert api.get("/api/v1/namespaces/default").status_code == 200
            member.stop()
            r = api.get("/api/v1/namespaces/default", timeout=60)
            assert r.status_code in (503, 504), r.text
            assert r.json()["kind"] == "Status"
            with server.client() as anon:
                assert anon.get("/readyz", timeout=30).status_code == 503
            member.restart()
            wait_until(lambda: api.get("/api/v1/namespaces/default").status_code == 200, timeout=30)
    finally:
        server.stop()


def test_every_namespace_gets_a_default_service_account(api: httpx.Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
    wait_until(lambda: api.get(path).status_code == 200, timeout=10)
    api.delete(path)
    wait_until(lambda: api.get(path).status_code == 200, timeout=10)
    assert api.get("/api/v1/namespaces/kube-system/serviceaccounts/default").status_code == 200
