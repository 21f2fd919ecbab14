"""Protobuf request bodies (what client-go typed clients send) decode to the JSON shape."""

from __future__ import annotations

import pytest

from apiserver.handlers.protobuf import MAGIC, decode
from ketch.api import errors


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _num(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _s(number: int, text: str) -> bytes:
    return _len(number, text.encode())


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + _len(1, _s(1, api_version) + _s(2, kind)) + _len(2, raw) + _s(3, "") + _s(4, "")


def test_deployment_with_go_zero_values_dropped_and_pointer_zero_kept() -> None:
    meta = _s(1, "web") + _s(2, "") + _num(7, 0) + _len(8, b"") + _len(11, _s(1, "app") + _s(2, "web"))
    container = (_s(1, "c") + _s(2, "busybox") + _s(3, "sleep") + _s(3, "") + _s(5, "")
                 + _len(6, _s(1, "") + _num(3, 8080)) + _len(8, b"") + _num(16, 0))
    pod_spec = _len(2, container) + _s(3, "") + _num(11, 0)
    rolling = _len(1, _num(1, 1) + _s(3, "http")) + _len(2, _num(2, 1))
    spec = (_num(1, 0) + _len(2, _len(1, _s(1, "app") + _s(2, "web"))) + _len(3, _len(1, b"") + _len(2, pod_spec))
            + _len(4, _s(1, "") + _len(2, rolling)) + _num(5, 0))
    obj = decode(_envelope("apps/v1", "Deployment", _len(1, meta) + _len(2, spec) + _len(3, _num(1, 0))))
    assert obj == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {}, "spec": {"containers": [{
                "name": "c", "image": "busybox", "command": ["sleep", ""],
                "ports": [{"containerPort": 8080}], "resources": {}}]}},
            "strategy": {"rollingUpdate": {"maxUnavailable": "http", "maxSurge": 1}},
        },
    }


def test_secret_bytes_are_base64_and_negative_ints_survive() -> None:
    raw = _len(1, _s(1, "s") + _num(10, -1)) + _len(2, _s(1, "k") + _len(2, b"\x00\xff")) + _s(3, "Opaque")
    obj = decode(_envelope("v1", "Secret", raw))
    assert obj["data"] == {"k": "AP8="} and obj["type"] == "Opaque"
    assert obj["metadata"]["deletionGracePeriodSeconds"] == -1


def test_unknown_kind_and_unknown_field_are_415() -> None:
    with pytest.raises(errors.ApiError) as err:
        decode(_envelope("v1", "Pod", b""))
    assert err.value.code == 415 and "application/json" in err.value.message
    with pytest.raises(errors.ApiError) as err:
        decode(_envelope("v1", "ConfigMap", _len(1, _s(1, "x")) + _s(99, "surprise")))
    assert err.value.code == 415 and "field 99 of ConfigMap" in err.value.message
    with pytest.raises(errors.ApiError) as err:
        decode(b"not protobuf")
    assert err.value.code == 400
