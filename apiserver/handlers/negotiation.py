"""Content negotiation: Table vs plain JSON answers, and the request body formats we take.

Clients that ask for protobuf first (`application/vnd.kubernetes.protobuf,application/json`)
get JSON: Ketch never answers 406. Protobuf request bodies of the kinds typed clients
create are decoded by `protobuf.py`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from apiserver import codec
from ketch.api import errors

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH)

#: kube-apiserver refuses request bodies over 3 MiB; etcd would refuse the object anyway.
MAX_BODY_BYTES = 3 * 1024 * 1024


dumps = codec.dumps


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(obj), status_code=status, media_type=JSON, headers=headers)


def wants_table(request: Request) -> bool:
    """True when the Accept header asks for a meta.k8s.io Table (kubectl get does)."""
    accept = request.headers.get("accept", "")
    if "as=Table" not in accept:
        return False
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip()
                  for p in part.split(";")[1:] if "=" in p}
        if params.get("as") == "Table" and params.get("g", "meta.k8s.io") == "meta.k8s.io":
            return True
    return False


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise errors.ApiError(errors.status(413, "RequestEntityTooLarge",
                                            f"the request body is {length} bytes; the limit is {MAX_BODY_BYTES}"))
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise errors.ApiError(errors.status(413, "RequestEntityTooLarge",
                                            f"the request body is over the limit of {MAX_BODY_BYTES} bytes"))
    return raw


async def read_body(request: Request, accepted: tuple[str, ...] = (JSON,)) -> Any:
    """The decoded request body; 415 for a format we do not take, 400 for malformed JSON."""
    ctype = media_type(request) or JSON
    raw = await _body(request)
    if ctype in ("application/yaml", "application/x-yaml") and JSON in accepted:
        import yaml

        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"the request body is not valid YAML: {exc}") from None
    if ctype == PROTOBUF and JSON in accepted:
        from apiserver.handlers.protobuf import decode

        return decode(raw)
    if ctype not in accepted:
        if ctype == APPLY_PATCH:
            raise errors.unsupported_media_type(
                "server-side apply (application/apply-patch+yaml) is not supported by Ketch yet; "
                "use client-side apply (kubectl apply without --server-side)"
            )
        raise errors.unsupported_media_type(list(accepted))
    if not raw:
        raise errors.bad_request("the request body is empty")
    try:
        return codec.loads(raw)
    except ValueError as exc:
        raise errors.bad_request(f"the request body is not valid JSON: {exc}") from None


async def read_optional_body(request: Request) -> Any:
    """A body that may be absent (DELETE with DeleteOptions)."""
    raw = await _body(request)
    if not raw.strip():
        return None
    ctype = media_type(request) or JSON
    if ctype not in (JSON, "application/yaml"):
        raise errors.unsupported_media_type([JSON])
    try:
        return codec.loads(raw)
    except ValueError as exc:
        raise errors.bad_request(f"the request body is not valid JSON: {exc}") from None
