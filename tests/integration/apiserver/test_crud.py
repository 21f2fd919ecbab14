"""CRUD over real HTTPS and a real etcd: codes, metadata semantics, selectors, pagination."""

from __future__ import annotations

import re

import httpx

from tests.integration.apiserver.conftest import deployment, pod


def test_create_sets_server_metadata_and_get_returns_it(api: httpx.Client, namespace: str) -> None:
    r = api.post(f"/api/v1/namespaces/{namespace}/pods", json=pod("web"))
    assert r.status_code == 201, r.text
    created = r.json()
    meta = created["metadata"]
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["generation"] == 1 and meta["namespace"] == namespace
    assert int(meta["resourceVersion"]) > 0
    assert created["status"]["phase"] == "Pending"
    # defaults were applied
    assert created["spec"]["restartPolicy"] == "Always"
    assert created["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    got = api.get(f"/api/v1/namespaces/{namespace}/pods/web").json()
    assert got["metadata"]["uid"] == meta["uid"]
    assert got["metadata"]["resourceVersion"] == meta["resourceVersion"]


def test_create_existing_is_409_already_exists(api: httpx.Client, namespace: str) -> None:
    assert api.post(f"/api/v1/namespaces/{namespace}/configmaps",
                    json={"metadata": {"name": "c"}, "data": {"a": "1"}}).status_code == 201
    r = api.post(f"/api/v1/namespaces/{namespace}/configmaps", json={"metadata": {"name": "c"}})
    assert r.status_code == 409
    body = r.json()
    assert body["kind"] == "Status" and body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "c" already exists'


def test_get_missing_is_404_status(api: httpx.Client, namespace: str) -> None:
    r = api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/nope")
    assert r.status_code == 404
    assert r.json()["message"] == 'deployments.apps "nope" not found'
    assert r.json()["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


def test_create_in_missing_namespace_is_404(api: httpx.Client) -> None:
    r = api.post("/api/v1/namespaces/does-not-exist-x/pods", json=pod("p"))
    assert r.status_code == 404
    assert r.json()["message"] == 'namespaces "does-not-exist-x" not found'


def test_generate_name(api: httpx.Client, namespace: str) -> None:
    body = {"metadata": {"generateName": "job-"}, "data": {}}
    names = {api.post(f"/api/v1/namespaces/{namespace}/configmaps", json=body).json()["metadata"]["name"]
             for _ in range(3)}
    assert len(names) == 3
    assert all(re.fullmatch(r"job-[a-z0-9]{5}", n) for n in names)


def test_invalid_object_is_422_naming_the_field(api: httpx.Client, namespace: str) -> None:
    bad = pod("x")
    del bad["spec"]["containers"][0]["image"]
    r = api.post(f"/api/v1/namespaces/{namespace}/pods", json=bad)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["reason"] == "Invalid"
    assert "spec.containers[0].image" in [c["field"] for c in body["details"]["causes"]]
    assert body["message"].startswith('Pod "x" is invalid: ')

    unknown = pod("y")
    unknown["spec"]["foo"] = 1
    r = api.post(f"/api/v1/namespaces/{namespace}/pods", json=unknown)
    assert r.status_code == 422
    assert "spec.foo" in r.json()["message"]

    r = api.post(f"/api/v1/namespaces/{namespace}/pods", json=pod("Bad_Name"))
    assert r.status_code == 422
    assert "metadata.name" in r.json()["message"]


def test_malformed_json_is_400_with_the_decode_error(api: httpx.Client, namespace: str) -> None:
    r = api.post(f"/api/v1/namespaces/{namespace}/pods", content=b"{not json",
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["reason"] == "BadRequest" and "not valid JSON" in r.json()["message"]


def test_kind_mismatch_is_400(api: httpx.Client, namespace: str) -> None:
    r = api.post(f"/api/v1/namespaces/{namespace}/pods",
                 json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    assert r.status_code == 400


def test_unknown_path_and_method_give_status(api: httpx.Client) -> None:
    r = api.get("/api/v1/widgets")
    assert r.status_code == 404 and r.json()["kind"] == "Status"
    r = api.get("/nothing/here")
    assert r.status_code == 404 and r.json()["kind"] == "Status"
    r = api.post("/api")
    assert r.status_code == 405 and r.json()["kind"] == "Status"


def test_anonymous_is_401_but_health_and_version_are_public(apiserver) -> None:
    with httpx.Client(base_url=apiserver.url, verify=apiserver.ssl_context()) as anon:
        r = anon.get("/api/v1/namespaces")
        assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"
        assert anon.get("/api/v1/pods", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert anon.get("/metrics").status_code == 401
        assert anon.get("/healthz").text == "ok"
        assert anon.get("/readyz").status_code == 200
        assert anon.get("/version").json()["major"] == "1"


def test_update_conflict_and_unconditional_update(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    cm = api.post(base, json={"metadata": {"name": "c"}, "data": {"a": "1"}}).json()
    stale = dict(cm)
    cm["data"] = {"a": "2"}
    r = api.put(f"{base}/c", json=cm)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"a": "2"}
    assert int(r.json()["metadata"]["resourceVersion"]) > int(stale["metadata"]["resourceVersion"])
    stale["data"] = {"a": "3"}
    r = api.put(f"{base}/c", json=stale)
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    assert "the object has been modified" in r.json()["message"]
    del stale["metadata"]["resourceVersion"]
    r = api.put(f"{base}/c", json=stale)
    assert r.status_code == 200 and r.json()["data"] == {"a": "3"}
    # server-owned metadata is kept
    assert r.json()["metadata"]["uid"] == cm["metadata"]["uid"]


def test_generation_bumps_on_spec_change_only(api: httpx.Client, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    d = api.post(base, json=deployment("d")).json()
    assert d["metadata"]["generation"] == 1
    d["metadata"]["labels"] = {"x": "y"}
    d = api.put(f"{base}/d", json=d).json()
    assert d["metadata"]["generation"] == 1
    d["spec"]["replicas"] = 3
    d = api.put(f"{base}/d", json=d).json()
    assert d["metadata"]["generation"] == 2
    # status is ignored on the main resource
    d["status"] = {"replicas": 7}
    d = api.put(f"{base}/d", json=d).json()
    assert d.get("status", {}).get("replicas") != 7
    assert d["metadata"]["generation"] == 2


def test_merge_and_json_patch(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    api.post(base, json={"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}})
    r = api.patch(f"{base}/c", content=b'{"data":{"a":null,"c":"3"}}',
                  headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"b": "2", "c": "3"}
    r = api.patch(f"{base}/c", content=b'[{"op":"replace","path":"/data/b","value":"9"}]',
                  headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 200 and r.json()["data"]["b"] == "9"
    r = api.patch(f"{base}/c", content=b"data: {}", headers={"Content-Type": "application/apply-patch+yaml"})
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"
    assert "server-side apply" in r.json()["message"]
    r = api.patch(f"{base}/missing", content=b"{}", headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 404


def test_strategic_merge_patch_merges_containers_by_name(api: httpx.Client, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    d = deployment("smp")
    d["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox:1"})
    api.post(base, json=d)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox:2"}]}}}}
    r = api.patch(f"{base}/smp", json=patch, headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 200, r.text
    containers = r.json()["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("main", "busybox"), ("side", "busybox:2")]
    assert r.json()["metadata"]["generation"] == 2


def test_label_and_field_selectors(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        p = pod(name)
        p["metadata"]["labels"]["tier"] = tier
        api.post(base, json=p)
    names = lambda r: sorted(i["metadata"]["name"] for i in r.json()["items"])  # noqa: E731
    assert names(api.get(base, params={"labelSelector": "tier=web"})) == ["a", "c"]
    assert names(api.get(base, params={"labelSelector": "tier in (db),app"})) == ["b"]
    assert names(api.get(base, params={"labelSelector": "tier!=web"})) == ["b"]
    assert names(api.get(base, params={"fieldSelector": "metadata.name=c"})) == ["c"]
    assert names(api.get(base, params={"fieldSelector": "status.phase=Pending,metadata.name!=a"})) == ["b", "c"]
    r = api.get(base, params={"fieldSelector": "spec.bogus=1"})
    assert r.status_code == 400
    # all namespaces
    r = api.get("/api/v1/pods", params={"fieldSelector": f"metadata.namespace={namespace}"})
    assert names(r) == ["a", "b", "c"]


def test_pagination_with_limit_and_continue(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(7):
        api.post(base, json={"metadata": {"name": f"cm-{i}"}})
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params = {"limit": 3}
        if token:
            params["continue"] = token
        body = api.get(base, params=params).json()
        pages += 1
        seen += [i["metadata"]["name"] for i in body["items"]]
        if pages == 1:
            assert body["metadata"]["remainingItemCount"] == 4
        token = body["metadata"].get("continue")
        if not token:
            break
    assert pages == 3
    assert seen == [f"cm-{i}" for i in range(7)]
    assert api.get(base, params={"continue": "garbage!"}).status_code == 400


def test_pages_after_the_first_are_one_snapshot(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(6):
        api.post(base, json={"metadata": {"name": f"cm-{i}", "labels": {"odd": str(i % 2)}}})
    first = api.get(base, params={"limit": 2}).json()
    api.delete(f"{base}/cm-4")  # gone now, but part of the snapshot
    api.post(base, json={"metadata": {"name": "cm-9"}})  # new, not part of it
    rest = api.get(base, params={"continue": first["metadata"]["continue"]}).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["cm-2", "cm-3", "cm-4", "cm-5"]
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    # with a selector, pages fill up across etcd reads
    odd = api.get(base, params={"limit": 1, "labelSelector": "odd=1"}).json()
    names = [i["metadata"]["name"] for i in odd["items"]]
    token = odd["metadata"].get("continue")
    while token:
        page = api.get(base, params={"limit": 1, "labelSelector": "odd=1", "continue": token}).json()
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert names == ["cm-1", "cm-3", "cm-5"]


def test_list_after_write_is_consistent(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(20):
        rv = api.post(base, json={"metadata": {"name": f"x{i}"}}).json()["metadata"]["resourceVersion"]
        listing = api.get(base).json()
        assert f"x{i}" in [o["metadata"]["name"] for o in listing["items"]]
        assert int(listing["metadata"]["resourceVersion"]) >= int(rv)


def test_dry_run_create_stores_nothing(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    r = api.post(base, params={"dryRun": "All"}, json={"metadata": {"name": "dry"}})
    assert r.status_code == 201
    assert api.get(f"{base}/dry").status_code == 404


def test_delete_returns_object_and_deletecollection(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for n in ("a", "b", "c"):
        api.post(base, json={"metadata": {"name": n, "labels": {"g": "1" if n != "c" else "2"}}})
    r = api.delete(f"{base}/a")
    assert r.status_code == 200 and r.json()["metadata"]["name"] == "a"
    assert api.get(f"{base}/a").status_code == 404
    assert api.delete(f"{base}/a").status_code == 404
    r = api.delete(base, params={"labelSelector": "g=1"})
    assert r.status_code == 200
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["b"]
    assert [i["metadata"]["name"] for i in api.get(base).json()["items"]] == ["c"]


def test_delete_preconditions(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    api.post(base, json={"metadata": {"name": "p"}})
    r = api.request("DELETE", f"{base}/p", json={"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}})
    assert r.status_code == 409
    assert api.get(f"{base}/p").status_code == 200


def test_cluster_scoped_resources(api: httpx.Client) -> None:
    r = api.post("/api/v1/nodes", json={"metadata": {"name": "node-crud-test"}})
    assert r.status_code == 201, r.text
    assert "namespace" not in r.json()["metadata"]
    assert api.get("/api/v1/nodes/node-crud-test").status_code == 200
    assert api.delete("/api/v1/nodes/node-crud-test").status_code == 200


def test_oversized_body_is_413(api: httpx.Client, namespace: str) -> None:
    big = {"metadata": {"name": "big"}, "data": {"x": "y" * (3 * 1024 * 1024 + 10)}}
    r = api.post(f"/api/v1/namespaces/{namespace}/configmaps", json=big)
    assert r.status_code == 413 and r.json()["reason"] == "RequestEntityTooLarge"


def test_bad_resource_version_parameter_is_400(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    api.post(base, json={"metadata": {"name": "rv"}})
    assert api.get(f"{base}/rv", params={"resourceVersion": "abc"}).status_code == 400
    assert api.get(base, params={"resourceVersion": "abc"}).status_code == 400
    assert api.get(f"{base}/rv", params={"resourceVersion": "0"}).status_code == 200
