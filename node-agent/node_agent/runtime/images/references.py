"""Image references, normalized the way Docker does it.

`busybox` means `docker.io/library/busybox:latest`; `myreg:5000/x/y:1` keeps
its registry; `name@sha256:<hex>` pins a manifest digest. Everything stored
on disk uses the full form, everything shown to a person uses the familiar
(short) form, so `ketch runtime images` reads like `docker images`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"

_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$"
)


class InvalidReference(ValueError):
    """The text is not an image reference a person could mean."""


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """Repository with its registry: `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """Repository as Docker shows it: `busybox`, `myreg:5000/x/y`."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_REPO_PREFIX):
                return self.path[len(OFFICIAL_REPO_PREFIX):]
            return self.path
        return self.name

    def __str__(self) -> str:
        return self._format(self.name)

    @property
    def familiar(self) -> str:
        """Short form for display: `busybox:latest`."""
        return self._format(self.familiar_name)

    def _format(self, name: str) -> str:
        text = name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)


def is_digest(text: str) -> bool:
    return bool(_DIGEST.match(text))


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalize a reference; a missing tag means `latest` unless digest-pinned."""
    original = text
    if not text or text != text.strip():
        raise InvalidReference(f"invalid reference format: {original!r}")
    digest: str | None = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(
                f"invalid reference format: {original!r} (digest must be sha256:<64 hex>)"
            )
    domain, remainder = _split_domain(text)
    tag: str | None = None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid tag {tag!r} in reference {original!r}")
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    components = remainder.split("/")
    for component in components:
        if not _PATH_COMPONENT.match(component):
            hint = " (repository names must be lowercase)" if component.lower() != component else ""
            raise InvalidReference(f"invalid reference format: {original!r}{hint}")
    if len(domain) + 1 + len(remainder) > 255:
        raise InvalidReference(f"repository name too long: {original!r}")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, remainder, tag, digest)


def _split_domain(text: str) -> tuple[str, str]:
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if first == "index.docker.io":
            first = DEFAULT_DOMAIN
        if not _DOMAIN.match(first):
            raise InvalidReference(f"invalid registry {first!r} in reference {text!r}")
        if not rest:
            raise InvalidReference(f"invalid reference format: {text!r}")
        return first, rest
    return DEFAULT_DOMAIN, text


def normalize(text: str) -> str:
    """The full stored form of a reference: `docker.io/library/busybox:latest`."""
    return str(parse(text))


def familiar(text: str) -> str:
    """The short display form of a full reference: `busybox:latest`."""
    try:
        return parse(text).familiar
    except InvalidReference:
        return text
