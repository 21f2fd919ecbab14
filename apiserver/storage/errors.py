"""Storage errors: the few outcomes of an etcd operation the apiserver maps to HTTP codes."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every storage failure."""


class KeyExists(StorageError):
    """create() found the key already there (HTTP 409 AlreadyExists)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key} already exists")
        self.key = key


class KeyNotFound(StorageError):
    """The key is not in etcd (HTTP 404)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key} not found")
        self.key = key


class RevisionConflict(StorageError):
    """The key changed since the revision the caller read (HTTP 409 Conflict)."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(
            f"key {key} was modified: expected revision {expected}, current revision {actual}"
        )
        self.key = key
        self.expected = expected
        self.actual = actual


class FenceMoved(StorageError):
    """A fenced write found its fence key past the revision the caller read: another writer
    made a decision the caller did not see (e.g. allocated a Service address); read again."""

    def __init__(self, fence: str, expected: int) -> None:
        super().__init__(f"fence {fence} moved past revision {expected}")
        self.fence = fence
        self.expected = expected


class RevisionCompacted(StorageError):
    """The asked-for revision is older than what is kept (HTTP 410 Gone; the client relists)."""

    def __init__(self, requested: int, compact_revision: int, reason: str = "") -> None:
        why = reason or f"revision {requested} is compacted (oldest available is {compact_revision})"
        super().__init__(why)
        self.requested = requested
        self.compact_revision = compact_revision


class StorageUnavailable(StorageError):
    """No etcd endpoint answered in time (HTTP 503 / 504); the message names the endpoints."""
