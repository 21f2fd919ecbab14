"""The apiserver's storage: objects in etcd (EtcdStore) and their in-memory mirror (WatchCache)."""

from .errors import (
    FenceMoved,
    KeyExists,
    KeyNotFound,
    RevisionCompacted,
    RevisionConflict,
    StorageError,
    StorageUnavailable,
)
from .etcd_store import EtcdStore, EtcdWatch, WatchBatch, WatchEvent
from .watch_cache import WatchCache

__all__ = [
    "EtcdStore",
    "EtcdWatch",
    "FenceMoved",
    "KeyExists",
    "KeyNotFound",
    "RevisionCompacted",
    "RevisionConflict",
    "StorageError",
    "StorageUnavailable",
    "WatchBatch",
    "WatchCache",
    "WatchEvent",
]
