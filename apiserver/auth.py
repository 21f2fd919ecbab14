"""Who is asking (bearer tokens) and may they (the authorizer seam).

Tokens come from a CSV file in kube-apiserver's --token-auth-file format:
`token,user,uid,"group1,group2"`. On first start an admin token (user `admin`,
group `system:masters`) is generated into it. Authorization allows every
authenticated user for now; `Authorizer.authorize` is where RBAC goes later.

Anonymous requests get 401, except the public health and version endpoints
(kube-apiserver lets `system:anonymous` read /healthz, /livez, /readyz and
/version through its default `system:public-info-viewer` role).
"""

from __future__ import annotations

import csv
import io
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters", "system:authenticated")


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)


ANONYMOUS = User("system:anonymous", "", ("system:unauthenticated",))


def _parse_tokens(text: str) -> dict[str, User]:
    users: dict[str, User] = {}
    for row in csv.reader(io.StringIO(text)):
        if not row or row[0].startswith("#") or len(row) < 2:
            continue
        token, name = row[0].strip(), row[1].strip()
        uid = row[2].strip() if len(row) > 2 else ""
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
        if token:
            users[token] = User(name, uid, groups)
    return users


def ensure_token_file(path: Path) -> str:
    """Create the token file with a fresh admin token if absent; return the admin's token."""
    if path.exists():
        for token, user in _parse_tokens(path.read_text()).items():
            if user.name == ADMIN_USER:
                return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    line = f'{token},{ADMIN_USER},{ADMIN_USER},"{",".join(ADMIN_GROUPS)}"\n'
    existing = path.read_text() if path.exists() else ""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(existing + line)
    return token


class TokenAuthenticator:
    """Maps `Authorization: Bearer <token>` to a User."""

    def __init__(self, tokens: dict[str, User]) -> None:
        self._tokens = tokens

    @classmethod
    def from_file(cls, path: Path) -> TokenAuthenticator:
        return cls(_parse_tokens(path.read_text()))

    def authenticate(self, authorization: str | None) -> User | None:
        """The user for an Authorization header value; None when absent or unknown."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self._tokens.get(token.strip())


@dataclass(frozen=True)
class Attributes:
    """What a request does, as an authorizer sees it (kube's authorizer.Attributes)."""

    user: User
    verb: str
    path: str
    resource: str = ""
    namespace: str = ""
    name: str = ""


class Authorizer:
    """Allows every authenticated user. The seam for RBAC later."""

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        return True, ""
