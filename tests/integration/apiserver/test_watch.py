"""Watch streaming over real HTTPS: events, selectors, bookmarks, timeouts, 410, resume across restarts."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.apiserver import ApiServerProcess
from tests.integration.apiserver.conftest import pod


class WatchReader:
    """Reads one JSON event per line from an open watch response."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/json")
        self.lines = response.iter_lines()

    def next(self) -> dict:
        for line in self.lines:
            if line.strip():
                return json.loads(line)
        raise EOFError("watch ended")

    def next_non_bookmark(self) -> dict:
        while True:
            event = self.next()
            if event["type"] != "BOOKMARK":
                return event


def test_watch_from_list_revision_sees_changes_in_order(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    api.post(base, json={"metadata": {"name": "before"}})
    rv = api.get(base).json()["metadata"]["resourceVersion"]
    with api.stream("GET", base, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": 10}) as r:
        events = WatchReader(r)
        api.post(base, json={"metadata": {"name": "w"}, "data": {"a": "1"}})
        api.patch(f"{base}/w", json={"data": {"a": "2"}}, headers={"Content-Type": "application/merge-patch+json"})
        api.delete(f"{base}/w")
        seen = [events.next_non_bookmark() for _ in range(3)]
    assert [e["type"] for e in seen] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(e["object"]["metadata"]["name"] == "w" for e in seen)
    assert seen[1]["object"]["data"] == {"a": "2"}
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in seen]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


def test_watch_with_name_field_selector_and_rv0_sends_current_state_first(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    api.post(base, json={"metadata": {"name": "one"}, "data": {"v": "1"}})
    api.post(base, json={"metadata": {"name": "two"}})
    params = {"watch": "true", "resourceVersion": "0", "fieldSelector": "metadata.name=one", "timeoutSeconds": 10}
    with api.stream("GET", base, params=params) as r:
        events = WatchReader(r)
        first = events.next_non_bookmark()
        assert first["type"] == "ADDED" and first["object"]["data"] == {"v": "1"}
        api.patch(f"{base}/two", json={"data": {"x": "y"}}, headers={"Content-Type": "application/merge-patch+json"})
        api.patch(f"{base}/one", json={"data": {"v": "2"}}, headers={"Content-Type": "application/merge-patch+json"})
        second = events.next_non_bookmark()
    assert second["type"] == "MODIFIED" and second["object"]["metadata"]["name"] == "one"


def test_watch_label_selector_sends_deleted_and_added_on_relabel(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    api.post(base, json={"metadata": {"name": "c", "labels": {"sel": "yes"}}})
    rv = api.get(base).json()["metadata"]["resourceVersion"]
    merge = {"Content-Type": "application/merge-patch+json"}
    params = {"watch": "true", "resourceVersion": rv, "labelSelector": "sel=yes", "timeoutSeconds": 10}
    with api.stream("GET", base, params=params) as r:
        events = WatchReader(r)
        api.patch(f"{base}/c", json={"metadata": {"labels": {"sel": "no"}}}, headers=merge)
        api.patch(f"{base}/c", json={"data": {"ignored": "while not matching"}}, headers=merge)
        api.patch(f"{base}/c", json={"metadata": {"labels": {"sel": "yes"}}}, headers=merge)
        api.patch(f"{base}/c", json={"data": {"k": "v"}}, headers=merge)
        seen = [events.next_non_bookmark()["type"] for _ in range(3)]
    assert seen == ["DELETED", "ADDED", "MODIFIED"]


def test_bookmarks_and_timeout(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    api.post(base, json={"metadata": {"name": "b"}})
    rv = api.get(base).json()["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": 3}
    start = time.monotonic()
    with api.stream("GET", base, params=params) as r:
        events = WatchReader(r)
        bookmark = events.next()
        assert bookmark["type"] == "BOOKMARK"
        assert bookmark["object"]["kind"] == "ConfigMap"
        assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= int(rv)
        assert set(bookmark["object"]["metadata"]) == {"resourceVersion"}
        with pytest.raises(EOFError):
            while True:
                events.next()
    assert 2.5 < time.monotonic() - start < 8


def test_watch_table_events(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    params = {"watch": "true", "resourceVersion": "0", "timeoutSeconds": 10}
    with api.stream("GET", base, params=params, headers=headers) as r:
        events = WatchReader(r)
        api.post(base, json=pod("tbl"))
        api.post(base, json=pod("tbl2"))
        first, second = events.next_non_bookmark(), events.next_non_bookmark()
    assert first["object"]["kind"] == "Table" and first["object"]["apiVersion"] == "meta.k8s.io/v1"
    assert first["object"]["columnDefinitions"][0]["name"] == "Name"
    assert len(first["object"]["rows"]) == 1 and first["object"]["rows"][0]["cells"][0] == "tbl"
    assert second["object"]["rows"][0]["cells"][0] == "tbl2"


def _private_apiserver(etcd_url: str) -> tuple[ApiServerProcess, Path]:
    root = Path(tempfile.mkdtemp(prefix="ketch-test-apiserver-"))
    server = ApiServerProcess(etcd_url, root, prefix="/registry")
    server.start()
    return server, root


def test_410_after_compaction(etcd_factory) -> None:
    member = etcd_factory.member()
    server, root = _private_apiserver(member.client_url)
    try:
        with server.client() as api:
            base = "/api/v1/namespaces/default/configmaps"
            old_rv = api.post(base, json={"metadata": {"name": "a"}}).json()["metadata"]["resourceVersion"]
            for i in range(5):
                api.post(base, json={"metadata": {"name": f"n{i}"}})
            newest = int(api.get(base).json()["metadata"]["resourceVersion"])

            async def compact() -> None:
                from apiserver.storage.etcd_store import EtcdStore

                store = await EtcdStore.connect([member.client_url])
                try:
                    await store.compact(newest)
                finally:
                    await store.close()

            asyncio.run(compact())
            server.restart()
            r = api.get(base, params={"watch": "true", "resourceVersion": old_rv, "timeoutSeconds": 5})
            if r.status_code == 200:
                event = json.loads(r.text.splitlines()[0])
                assert event["type"] == "ERROR"
                status = event["object"]
            else:
                status = r.json()
                assert r.status_code == 410
            assert status["code"] == 410 and status["reason"] == "Expired"
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_watch_resumes_across_apiserver_kill_without_losing_events(fresh_apiserver) -> None:
    server = fresh_apiserver
    base = "/api/v1/namespaces/default/configmaps"
    with server.client() as api:
        rv = api.get(base).json()["metadata"]["resourceVersion"]
        expected = []
        with api.stream("GET", base, params={"watch": "true", "resourceVersion": rv}) as r:
            events = WatchReader(r)
            for i in range(6):
                api.post(base, json={"metadata": {"name": f"e{i}"}})
                expected.append(f"e{i}")
            got = [events.next_non_bookmark() for _ in range(2)]
            last_rv = got[-1]["object"]["metadata"]["resourceVersion"]
            server.kill()
        # while the apiserver is down, another writer changes etcd directly
        async def write_direct() -> None:
            from apiserver.storage.etcd_store import EtcdStore

            store = await EtcdStore.connect([server.etcd_url])
            try:
                await store.create(f"{server.prefix}/core/configmaps/default/offline",
                                   {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "offline", "namespace": "default", "uid": "x"}})
            finally:
                await store.close()

        asyncio.run(write_direct())
        expected.append("offline")
        server.start()
    with server.client() as api:
        names = [e["object"]["metadata"]["name"] for e in got]
        with api.stream("GET", base, params={"watch": "true", "resourceVersion": last_rv, "timeoutSeconds": 10}) as r:
            events = WatchReader(r)
            while len(names) < len(expected):
                event = events.next_non_bookmark()
                assert event["type"] == "ADDED"
                names.append(event["object"]["metadata"]["name"])
    assert names == expected


def test_node_agent_style_watch_sees_binding_graceful_delete_and_confirmation(api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    node = f"node-{namespace}"
    rv = api.get("/api/v1/pods", params={"fieldSelector": f"spec.nodeName={node}"}).json()["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": rv, "fieldSelector": f"spec.nodeName={node}",
              "allowWatchBookmarks": "true", "timeoutSeconds": 15}
    with api.stream("GET", "/api/v1/pods", params=params) as r:
        events = WatchReader(r)
        api.post(base, json=pod("other"))  # never on this node: never seen
        api.post(base, json=pod("mine"))
        binding = {"metadata": {"name": "mine"}, "target": {"kind": "Node", "name": node}}
        assert api.post(f"{base}/mine/binding", json=binding).status_code == 201
        added = events.next_non_bookmark()
        assert added["type"] == "ADDED" and added["object"]["spec"]["nodeName"] == node
        api.delete(f"{base}/mine")
        marked = events.next_non_bookmark()
        assert marked["type"] == "MODIFIED" and marked["object"]["metadata"]["deletionTimestamp"]
        api.request("DELETE", f"{base}/mine", json={"gracePeriodSeconds": 0})
        gone = events.next_non_bookmark()
        assert gone["type"] == "DELETED" and gone["object"]["metadata"]["name"] == "mine"


def test_resumed_selector_watch_reports_object_that_stopped_matching_before_it_started(
        api: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    merge = {"Content-Type": "application/merge-patch+json"}
    api.post(base, json={"metadata": {"name": "gone-away", "labels": {"sel": "yes"}}})
    listed = api.get(base, params={"labelSelector": "sel=yes"}).json()
    assert [i["metadata"]["name"] for i in listed["items"]] == ["gone-away"]
    # changes between the client's list and its watch
    api.patch(f"{base}/gone-away", json={"metadata": {"labels": {"sel": "no"}}}, headers=merge)
    params = {"watch": "true", "resourceVersion": listed["metadata"]["resourceVersion"],
              "labelSelector": "sel=yes", "timeoutSeconds": 10}
    with api.stream("GET", base, params=params) as r:
        event = WatchReader(r).next_non_bookmark()
    assert event["type"] == "DELETED" and event["object"]["metadata"]["name"] == "gone-away"
