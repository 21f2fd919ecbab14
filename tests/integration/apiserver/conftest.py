"""Helpers for apiserver integration tests: an admin HTTP client and a fresh namespace per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest


def pod(name: str, image: str = "busybox", **spec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{"name": "main", "image": image}], **spec},
    }


def deployment(name: str, replicas: int = 1) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "main", "image": "busybox"}]}},
        },
    }


@pytest.fixture
def api(apiserver) -> Iterator[httpx.Client]:
    with apiserver.client() as client:
        yield client


@pytest.fixture
def namespace(api: httpx.Client) -> Iterator[str]:
    name = f"t-{secrets.token_hex(4)}"
    r = api.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert r.status_code == 201, r.text
    yield name
    api.delete(f"/api/v1/namespaces/{name}")
