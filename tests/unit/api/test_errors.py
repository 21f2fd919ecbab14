"""ApiError Status bodies and wording as kube-apiserver sends them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ketch.api import errors


@dataclass(frozen=True)
class Info:
    group: str
    kind: str
    plural: str


@dataclass
class FieldErr:
    type: str
    field: str
    message: str
    value: Any = None


PODS = Info("", "Pod", "pods")
DEPLOYMENTS = Info("apps", "Deployment", "deployments")


def test_not_found_core_resource_status_body():
    err = errors.not_found(PODS, "web")
    assert err.code == 404
    assert err.status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "web" not found',
        "reason": "NotFound",
        "details": {"name": "web", "kind": "pods"},
        "code": 404,
    }
    assert str(err) == 'pods "web" not found'


def test_not_found_grouped_resource_names_group():
    err = errors.not_found(DEPLOYMENTS, "x")
    assert err.message == 'deployments.apps "x" not found'
    assert err.status["details"] == {"name": "x", "group": "apps", "kind": "deployments"}


def test_already_exists_and_conflict():
    err = errors.already_exists(PODS, "a")
    assert (err.code, err.reason, err.message) == (409, "AlreadyExists", 'pods "a" already exists')
    err = errors.conflict(DEPLOYMENTS, "x")
    assert err.code == 409 and err.reason == "Conflict"
    assert err.message == (
        'Operation cannot be fulfilled on deployments.apps "x": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_invalid_single_cause():
    cause = FieldErr(
        "FieldValueInvalid",
        "spec.replicas",
        "Invalid value: -1: must be greater than or equal to 0",
        -1,
    )
    err = errors.invalid(DEPLOYMENTS, "x", [cause])
    assert err.code == 422 and err.reason == "Invalid"
    assert err.message == (
        'Deployment.apps "x" is invalid: spec.replicas: Invalid value: -1: '
        "must be greater than or equal to 0"
    )
    assert err.status["details"] == {
        "name": "x",
        "group": "apps",
        "kind": "Deployment",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: -1: must be greater than or equal to 0",
                "field": "spec.replicas",
            }
        ],
    }


def test_invalid_several_causes_bracketed_like_kubernetes_aggregate():
    causes = [
        FieldErr("FieldValueRequired", "spec.containers[0].image", "Required value"),
        FieldErr("FieldValueRequired", "spec.containers[0].image", "Required value"),
        FieldErr("FieldValueInvalid", "metadata.name", 'Invalid value: "A": bad'),
    ]
    err = errors.invalid(PODS, "A", causes)
    assert err.message == (
        'Pod "A" is invalid: [spec.containers[0].image: Required value, '
        'metadata.name: Invalid value: "A": bad]'
    )
    assert len(err.status["details"]["causes"]) == 3
    assert "group" not in err.status["details"]


@pytest.mark.parametrize(
    "builder, code, reason",
    [
        (lambda: errors.bad_request("nope"), 400, "BadRequest"),
        (lambda: errors.unauthorized(), 401, "Unauthorized"),
        (lambda: errors.forbidden("no"), 403, "Forbidden"),
        (lambda: errors.method_not_allowed("no"), 405, "MethodNotAllowed"),
        (lambda: errors.not_acceptable(["application/json"]), 406, "NotAcceptable"),
        (lambda: errors.unsupported_media_type(["application/json"]), 415, "UnsupportedMediaType"),
        (lambda: errors.gone("too old resource version: 1 (5)"), 410, "Expired"),
        (lambda: errors.too_many_requests(), 429, "TooManyRequests"),
        (lambda: errors.internal("boom"), 500, "InternalError"),
        (lambda: errors.service_unavailable("etcd down"), 503, "ServiceUnavailable"),
        (lambda: errors.timeout("took too long"), 504, "Timeout"),
    ],
)
def test_codes_and_reasons(builder, code, reason):
    err = builder()
    assert isinstance(err, errors.ApiError)
    assert err.code == code == err.status["code"]
    assert err.reason == reason
    assert err.status["kind"] == "Status" and err.status["status"] == "Failure"


def test_messages_follow_kubernetes_wording():
    assert errors.unauthorized().message == "Unauthorized"
    assert errors.internal("boom").message == "Internal error occurred: boom"
    assert errors.internal("boom").status["details"]["causes"] == [{"message": "boom"}]
    assert errors.timeout("x").message == "Timeout: x"
    assert errors.forbidden("no", PODS, "p").message == 'pods "p" is forbidden: no'
    assert errors.forbidden("no").message == "forbidden: no"
    assert errors.too_old_resource_version(3, 10).message == "too old resource version: 3 (10)"
    assert errors.method_not_supported("pods/log", "create").message == (
        'create is not supported on resources of kind "pods/log"'
    )
    assert errors.too_many_requests().status["details"] == {"retryAfterSeconds": 1}


def test_from_status_round_trip():
    original = errors.not_found(DEPLOYMENTS, "x")
    again = errors.ApiError.from_status(original.status)
    assert again.code == 404 and again.status == original.status
    bare = errors.ApiError.from_status({"message": "m"}, code=503)
    assert bare.code == 503


def test_resource_given_as_text():
    assert errors.not_found("deployments.apps", "x").status["details"] == {
        "name": "x",
        "group": "apps",
        "kind": "deployments",
    }
