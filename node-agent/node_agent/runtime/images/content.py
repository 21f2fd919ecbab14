"""The content store: immutable blobs addressed by their sha256 digest.

A blob is written to a temporary file, hashed while written, fsynced and then
renamed into `<root>/blobs/sha256/<hex>`, so a reader never sees a partial
blob and a crash leaves at most a stray temp file. A blob whose bytes do not
match the digest the caller expected is refused, which is what makes a
registry pull or an archive import trustworthy.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")


class DigestMismatch(ValueError):
    """The bytes written do not hash to the digest they were promised to have."""


class BlobNotFound(KeyError):
    def __str__(self) -> str:
        return f"blob {self.args[0]} is not in the content store"


def digest_hex(digest: str) -> str:
    """`sha256:<hex>` → `<hex>`; anything else is refused (only sha256 is supported)."""
    match = _DIGEST.match(digest)
    if not match:
        raise ValueError(f"unsupported or malformed digest {digest!r} (want sha256:<64 hex>)")
    return match.group(1)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.tmp = self.root / "blobs" / "tmp"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.blobs / digest_hex(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def read(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def put(self, data: bytes | BinaryIO, expected_digest: str | None = None) -> str:
        """Store bytes or a readable stream; return its digest. Verified against expected_digest."""
        if expected_digest is not None:
            digest_hex(expected_digest)
            if self.has(expected_digest):
                return expected_digest
        stream: BinaryIO = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
        hasher = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix="ingest-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = "sha256:" + hasher.hexdigest()
            if expected_digest is not None and digest != expected_digest:
                raise DigestMismatch(
                    f"content does not match its digest: expected {expected_digest}, got {digest}"
                )
            os.chmod(tmp_name, 0o444)
            os.replace(tmp_name, self.path(digest))
            _fsync_dir(self.blobs)
            return digest
        except BaseException:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
            raise

    def delete(self, digest: str) -> bool:
        try:
            self.path(digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def digests(self) -> Iterator[str]:
        for entry in os.scandir(self.blobs):
            if _DIGEST.match("sha256:" + entry.name):
                yield "sha256:" + entry.name

    def clean_temp(self, older_than: float | None = None) -> None:
        """Remove interrupted ingests (all, or those last written before `older_than`)."""
        for entry in os.scandir(self.tmp):
            if older_than is None or entry.stat().st_mtime < older_than:
                os.unlink(entry.path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
