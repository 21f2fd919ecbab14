"""The stored form of objects and endpoint parsing (no etcd needed)."""

from __future__ import annotations

import json

import pytest

from apiserver.storage.etcd_store import decode, encode, parse_endpoint, with_resource_version


def test_encode_is_compact_json_without_resource_version():
    obj = {"kind": "Pod", "metadata": {"name": "a", "resourceVersion": "7", "labels": {"x": "é"}}}
    raw = encode(obj)
    assert raw == json.dumps({"kind": "Pod", "metadata": {"name": "a", "labels": {"x": "é"}}},
                             separators=(",", ":"), ensure_ascii=False).encode()
    assert obj["metadata"]["resourceVersion"] == "7"  # the caller's object is untouched


def test_decode_sets_resource_version_from_revision():
    obj = decode(b'{"kind":"Pod","metadata":{"name":"a"}}', 42)
    assert obj == {"kind": "Pod", "metadata": {"name": "a", "resourceVersion": "42"}}
    assert decode(b'{"kind":"X"}', 3)["metadata"] == {"resourceVersion": "3"}


def test_with_resource_version_copies():
    obj = {"kind": "Pod", "metadata": {"name": "a"}, "spec": {"x": 1}}
    out = with_resource_version(obj, 9)
    assert out["metadata"] == {"name": "a", "resourceVersion": "9"}
    assert "resourceVersion" not in obj["metadata"]
    assert out["spec"] is obj["spec"]


@pytest.mark.parametrize("text,expected", [
    ("http://127.0.0.1:2379", ("127.0.0.1", 2379)),
    ("127.0.0.1:12379", ("127.0.0.1", 12379)),
    ("http://etcd.local", ("etcd.local", 2379)),
])
def test_parse_endpoint(text, expected):
    assert parse_endpoint(text) == expected


def test_parse_endpoint_refuses_tls():
    with pytest.raises(ValueError, match="only http://"):
        parse_endpoint("https://127.0.0.1:2379")
