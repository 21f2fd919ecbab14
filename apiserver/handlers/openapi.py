"""OpenAPI v3 documents from `ketch.api.openapi` (built once, then served from memory).

`/openapi/v2` is not served (404): kubectl 1.32 uses v3 when it is there.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache

from ketch.api import errors


@cache
def _documents() -> dict[str, bytes]:
    from ketch.api import openapi
    from ketch.api.resources import groups

    docs: dict[str, bytes] = {}
    for group, versions in groups().items():
        for version in versions:
            path = f"apis/{group}/{version}" if group else f"api/{version}"
            docs[path] = json.dumps(openapi.document(group, version), separators=(",", ":")).encode()
    return docs


@cache
def index_bytes() -> bytes:
    paths = {}
    for path, body in _documents().items():
        digest = hashlib.sha512(body).hexdigest()[:64].upper()
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return json.dumps({"paths": paths}, separators=(",", ":")).encode()


def document_bytes(path: str) -> bytes:
    body = _documents().get(path.strip("/"))
    if body is None:
        raise errors.ApiError(errors.status(404, "NotFound", f"the OpenAPI document {path} is not served"))
    return body
