"""The official Python `kubernetes` client: create, list, watch and delete pods."""

from __future__ import annotations

import threading

import pytest

kubernetes = pytest.importorskip("kubernetes")


@pytest.fixture
def core_v1(apiserver):
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=str(apiserver.kubeconfig))
    try:
        yield client.CoreV1Api(api_client)
    finally:
        api_client.close()


def test_create_list_watch_delete_pods(core_v1, namespace: str) -> None:
    from kubernetes import client, watch

    body = client.V1Pod(
        metadata=client.V1ObjectMeta(name="py", labels={"via": "python"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
    )
    created = core_v1.create_namespaced_pod(namespace, body)
    assert created.metadata.uid and created.status.phase == "Pending"
    assert created.spec.containers[0].image_pull_policy == "Always"

    listed = core_v1.list_namespaced_pod(namespace, label_selector="via=python")
    assert [p.metadata.name for p in listed.items] == ["py"]
    rv = listed.metadata.resource_version

    events: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume() -> None:
        for event in w.stream(core_v1.list_namespaced_pod, namespace, resource_version=rv, timeout_seconds=4):
            events.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    core_v1.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name="py2"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")])))
    deleted = core_v1.delete_namespaced_pod("py2", namespace)
    assert deleted.metadata.name == "py2"
    t.join(15)
    assert events == [("ADDED", "py2"), ("DELETED", "py2")]

    with pytest.raises(client.exceptions.ApiException) as err:
        core_v1.read_namespaced_pod("py2", namespace)
    assert err.value.status == 404

    with pytest.raises(client.exceptions.ApiException) as err:
        core_v1.create_namespaced_pod(namespace, body)
    assert err.value.status == 409
