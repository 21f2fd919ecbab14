"""What differs between kinds on create, update and status update.

A strategy only edits the object in place; storage, validation and HTTP live
elsewhere. The generic one covers most kinds; pods and namespaces subclass it.
"""

from __future__ import annotations

from typing import Any

from ketch.api.resources import ResourceInfo

#: metadata fields only the server sets; an update keeps the stored values.
SERVER_OWNED_METADATA = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "namespace",
)
#: Top-level keys that are not "spec-like" content for generation counting.
_NOT_SPEC = frozenset({"apiVersion", "kind", "metadata", "status"})


def spec_content(obj: dict) -> dict:
    """Everything that bumps metadata.generation when it changes."""
    return {k: v for k, v in obj.items() if k not in _NOT_SPEC}


class Strategy:
    """Generic behaviour: a kind with a status subresource owns status through it only."""

    def __init__(self, info: ResourceInfo) -> None:
        self.info = info
        self.has_status = "status" in info.subresources

    def prepare_create(self, obj: dict) -> None:
        """Reset what a create may not set (status of kinds with a status subresource)."""
        if self.has_status:
            obj.pop("status", None)
            self.initial_status(obj)

    def initial_status(self, obj: dict) -> None:
        """Status a new object starts with (none by default)."""

    def prepare_update(self, new: dict, old: dict) -> None:
        """Main-resource update: status changes are ignored where status is a subresource."""
        if self.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)

    def prepare_status_update(self, new: dict, old: dict) -> dict:
        """Status update: only status changes; everything else is the stored object's."""
        result: dict[str, Any] = {k: v for k, v in old.items() if k != "status"}
        meta = dict(old.get("metadata", {}))
        rv = new.get("metadata", {}).get("resourceVersion")
        if rv:
            meta["resourceVersion"] = rv
        result["metadata"] = meta
        if "status" in new:
            result["status"] = new["status"]
        return result

    def generation_changed(self, new: dict, old: dict) -> bool:
        return spec_content(new) != spec_content(old)

