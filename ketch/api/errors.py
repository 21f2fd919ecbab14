"""API errors as Kubernetes reports them: an exception carrying a v1 `Status`.

Every non-2xx answer of the apiserver is one of these, so the wire body, the
HTTP code and the wording match what kube-apiserver sends (kubectl and the
Python client parse `reason`, `code` and `details`). The builders follow
k8s.io/apimachinery/pkg/api/errors: empty detail fields are left out of the
JSON, as Go's `omitempty` does.
"""

from __future__ import annotations

from typing import Any, Protocol


class _ResourceLike(Protocol):
    """What the builders read of a `ketch.api.resources.ResourceInfo`."""

    group: str
    kind: str
    plural: str


class _FieldErrorLike(Protocol):
    type: str
    field: str
    message: str


class ApiError(Exception):
    """An error the apiserver answers with; `status` is the v1 Status body."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(status.get("message", ""))
        self.status = status
        self.code: int = int(status.get("code", 500))

    @property
    def reason(self) -> str:
        return self.status.get("reason", "")

    @property
    def message(self) -> str:
        return self.status.get("message", "")

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.reason!r}, {self.message!r})"

    @classmethod
    def from_status(cls, status: dict[str, Any], code: int | None = None) -> ApiError:
        """Rebuild an error from a Status body received over the wire (client side)."""
        body = dict(status)
        if code is not None and not body.get("code"):
            body["code"] = code
        return cls(body)


def status(
    code: int,
    reason: str,
    message: str,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A failure `Status`; `details` entries that are empty are dropped (omitempty)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
    }
    if reason:
        body["reason"] = reason
    if details:
        cleaned = {k: v for k, v in details.items() if v not in (None, "", [], 0)}
        if cleaned:
            body["details"] = cleaned
    body["code"] = code
    return body


def success_status(details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `Status` a delete answers with when the object is already gone."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    if details:
        cleaned = {k: v for k, v in details.items() if v not in (None, "", [])}
        if cleaned:
            body["details"] = cleaned
    return body


def _error(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(status(code, reason, message, details))


def _group_resource(info: _ResourceLike | str) -> tuple[str, str, str]:
    """(qualified resource text, group, resource) from a ResourceInfo or "deployments.apps"."""
    if isinstance(info, str):
        resource, _, group = info.partition(".")
        return info, group, resource
    qualified = f"{info.plural}.{info.group}" if info.group else info.plural
    return qualified, info.group, info.plural


def _group_kind(info: _ResourceLike) -> str:
    return f"{info.kind}.{info.group}" if info.group else info.kind


def _resource_details(info: _ResourceLike | str, name: str, uid: str | None = None) -> dict:
    _, group, resource = _group_resource(info)
    return {"name": name, "group": group, "kind": resource, "uid": uid}


# --- 4xx ---------------------------------------------------------------------------


def not_found(info: _ResourceLike | str, name: str) -> ApiError:
    """404: `deployments.apps "x" not found`."""
    qualified, _, _ = _group_resource(info)
    return _error(404, "NotFound", f'{qualified} "{name}" not found', _resource_details(info, name))


def already_exists(info: _ResourceLike | str, name: str) -> ApiError:
    """409: `pods "x" already exists`."""
    qualified, _, _ = _group_resource(info)
    return _error(
        409, "AlreadyExists", f'{qualified} "{name}" already exists', _resource_details(info, name)
    )


OBJECT_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def conflict(info: _ResourceLike | str, name: str, message: str = OBJECT_MODIFIED) -> ApiError:
    """409: `Operation cannot be fulfilled on deployments.apps "x": <message>`."""
    qualified, _, _ = _group_resource(info)
    return _error(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified} "{name}": {message}',
        _resource_details(info, name),
    )


def _field_error_text(err: _FieldErrorLike) -> str:
    return f"{err.field}: {err.message}" if err.field else err.message


def invalid(info: _ResourceLike, name: str, causes: list[_FieldErrorLike]) -> ApiError:
    """422: `Deployment.apps "x" is invalid: spec.replicas: Invalid value: -1: must be ...`.

    Several causes are joined as Kubernetes' error aggregate prints them:
    `[a, b]` (duplicates dropped, order kept).
    """
    texts: list[str] = []
    for err in causes:
        text = _field_error_text(err)
        if text not in texts:
            texts.append(text)
    if len(texts) == 1:
        joined = texts[0]
    else:
        joined = "[" + ", ".join(texts) + "]"
    details = {
        "name": name,
        "group": info.group,
        "kind": info.kind,
        "causes": [
            {"reason": err.type, "message": err.message, "field": err.field} for err in causes
        ],
    }
    return _error(422, "Invalid", f'{_group_kind(info)} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> ApiError:
    """400 BadRequest, e.g. `strict decoding error: unknown field "spec.foo"`."""
    return _error(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> ApiError:
    """401: what kube-apiserver answers an unauthenticated request."""
    return _error(401, "Unauthorized", message)


def forbidden(message: str, info: _ResourceLike | str | None = None, name: str = "") -> ApiError:
    """403: `pods "x" is forbidden: <message>` (or `forbidden: <message>` without a resource)."""
    if info is None:
        return _error(403, "Forbidden", f"forbidden: {message}")
    qualified, _, _ = _group_resource(info)
    text = (
        f'{qualified} "{name}" is forbidden: {message}'
        if name
        else f"{qualified} is forbidden: {message}"
    )
    return _error(403, "Forbidden", text, _resource_details(info, name))


def method_not_allowed(message: str) -> ApiError:
    """405 MethodNotAllowed with the given message."""
    return _error(405, "MethodNotAllowed", message)


def method_not_supported(info: _ResourceLike | str, action: str) -> ApiError:
    """405: `create is not supported on resources of kind "pods/log"` (kube's wording)."""
    qualified, _, _ = _group_resource(info)
    return _error(
        405,
        "MethodNotAllowed",
        f'{action} is not supported on resources of kind "{qualified}"',
        _resource_details(info, ""),
    )


def not_acceptable(accepted: list[str] | str) -> ApiError:
    """406: the Accept header asks for a representation the server cannot produce."""
    if isinstance(accepted, str):
        message = accepted
    else:
        message = "only the following media types are accepted: " + ", ".join(accepted)
    return _error(406, "NotAcceptable", message)


def unsupported_media_type(accepted: list[str] | str) -> ApiError:
    """415: a request body in a Content-Type the endpoint does not take."""
    if isinstance(accepted, str):
        message = accepted
    else:
        message = (
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(accepted)
        )
    return _error(415, "UnsupportedMediaType", message)


def gone(message: str) -> ApiError:
    """410 Expired: a watch or list from a resourceVersion older than what is kept.

    kube-apiserver words it `too old resource version: 5 (120)`; clients relist.
    """
    return _error(410, "Expired", message)


def too_old_resource_version(requested: int | str, oldest: int | str) -> ApiError:
    """410 Expired with kube-apiserver's exact wording for a compacted watch start."""
    return gone(f"too old resource version: {requested} ({oldest})")


def too_many_requests(
    message: str = "Too many requests, please try again later.", retry_after_seconds: int = 1
) -> ApiError:
    """429: the server sheds load; clients retry after `retryAfterSeconds`."""
    return _error(429, "TooManyRequests", message, {"retryAfterSeconds": retry_after_seconds})


# --- 5xx ---------------------------------------------------------------------------


def internal(message: str) -> ApiError:
    """500: `Internal error occurred: <message>`, the message also as the one cause."""
    return _error(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        {"causes": [{"message": message}]},
    )


def service_unavailable(message: str) -> ApiError:
    """503, e.g. while etcd cannot be reached."""
    return _error(503, "ServiceUnavailable", message)


def timeout(message: str, retry_after_seconds: int = 0) -> ApiError:
    """504: `Timeout: <message>`."""
    return _error(504, "Timeout", f"Timeout: {message}", {"retryAfterSeconds": retry_after_seconds})
