"""Discovery, version, OpenAPI, Tables and metrics as kubectl and Prometheus read them."""

from __future__ import annotations

import httpx

from tests.integration.apiserver.conftest import pod

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
KUBECTL_DISCOVERY = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                     "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")


def test_legacy_discovery_documents(api: httpx.Client) -> None:
    r = api.get("/api", headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json()["kind"] == "APIVersions" and r.json()["versions"] == ["v1"]
    groups = api.get("/apis", headers={"Accept": "application/json"}).json()
    assert groups["kind"] == "APIGroupList"
    assert {g["name"] for g in groups["groups"]} == {"apps", "batch", "coordination.k8s.io"}
    core = api.get("/api/v1").json()
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["shortNames"] == ["po"] and by_name["pods"]["namespaced"] is True
    assert by_name["pods"]["categories"] == ["all"]
    assert "watch" in by_name["pods"]["verbs"]
    assert by_name["pods/status"]["kind"] == "Pod"
    assert by_name["pods/binding"]["kind"] == "Binding"
    assert by_name["namespaces"]["namespaced"] is False
    apps = {r["name"]: r for r in api.get("/apis/apps/v1").json()["resources"]}
    scale = apps["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert api.get("/apis/apps").json()["preferredVersion"]["groupVersion"] == "apps/v1"
    assert api.get("/apis/nothing/v1").status_code == 404


def test_version(api: httpx.Client) -> None:
    v = api.get("/version").json()
    assert v["major"] == "1" and v["minor"] == "32"
    assert v["gitVersion"].startswith("v1.32.0-ketch.")


def test_openapi_v3_index_and_documents(api: httpx.Client) -> None:
    index = api.get("/openapi/v3").json()
    assert set(index["paths"]) >= {"api/v1", "apis/apps/v1", "apis/batch/v1"}
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    doc = api.get(url).json()
    assert doc["openapi"].startswith("3.")
    patch_ops = [op.get("patch") for op in doc["paths"].values() if op.get("patch")]
    assert any(
        any(p.get("name") == "fieldValidation" for p in op.get("parameters", []))
        and op.get("x-kubernetes-group-version-kind", {}).get("kind") == "Deployment"
        for op in patch_ops
    )
    assert api.get("/openapi/v2").status_code == 404


def test_tables(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    api.post(base, json=pod("t1"))
    api.post(base, json=pod("t2"))
    r = api.get(base, params={"limit": 500}, headers={"Accept": TABLE})
    assert r.status_code == 200
    table = r.json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"]["resourceVersion"]
    assert table["columnDefinitions"][0]["name"] == "Name"
    assert [row["cells"][0] for row in table["rows"]] == ["t1", "t2"]
    obj = table["rows"][0]["object"]
    assert obj["kind"] == "PartialObjectMetadata" and obj["metadata"]["namespace"] == namespace
    single = api.get(f"{base}/t1", headers={"Accept": TABLE}).json()
    assert single["kind"] == "Table" and len(single["rows"]) == 1
    full = api.get(base, params={"includeObject": "Object"}, headers={"Accept": TABLE}).json()
    assert full["rows"][0]["object"]["kind"] == "Pod"
    # typed clients ask for protobuf first: they get JSON, never 406
    r = api.get(base, headers={"Accept": "application/vnd.kubernetes.protobuf,application/json"})
    assert r.status_code == 200 and r.json()["kind"] == "PodList"


def test_metrics(api: httpx.Client, namespace: str) -> None:
    api.get(f"/api/v1/namespaces/{namespace}/configmaps")
    text = api.get("/metrics").text
    assert 'apiserver_request_total{code="200",resource="configmaps",verb="list"}' in text
    assert "apiserver_request_duration_seconds_bucket" in text
    assert 'etcd_request_duration_seconds_count{operation="create"' in text
    assert "apiserver_registered_watchers" in text


def test_aggregated_discovery_v2(api: httpx.Client) -> None:
    r = api.get("/apis", headers={"Accept": KUBECTL_DISCOVERY})
    assert r.headers["content-type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    doc = r.json()
    assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    apps = next(g for g in doc["items"] if g["metadata"]["name"] == "apps")
    deploy = next(res for res in apps["versions"][0]["resources"] if res["resource"] == "deployments")
    assert deploy["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert deploy["scope"] == "Namespaced" and deploy["shortNames"] == ["deploy"]
    scale = next(s for s in deploy["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"]["kind"] == "Scale"
    core = api.get("/api", headers={"Accept": KUBECTL_DISCOVERY}).json()
    assert [g["metadata"]["name"] for g in core["items"]] == [""]
    # plain clients still get the legacy documents
    assert api.get("/apis").json()["kind"] == "APIGroupList"


def test_kubectl_uses_aggregated_discovery(apiserver, tmp_path) -> None:
    import shutil
    import subprocess

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return
    proc = subprocess.run([kubectl, "--kubeconfig", str(apiserver.kubeconfig), "--cache-dir", str(tmp_path),
                           "get", "deploy", "-A", "-v=6"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    discovery_gets = [line for line in proc.stderr.splitlines() if " GET " in line and "/api" in line
                      and "deployments" not in line]
    assert len(discovery_gets) == 2, discovery_gets
