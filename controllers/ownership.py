"""Owner references: who controls an object, and making objects that point back to their owner."""

from __future__ import annotations

import copy

from ketch.api.selectors import LabelSelector


def controller_ref(obj: dict) -> dict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: dict, *, block_owner_deletion: bool = True) -> dict:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": block_owner_deletion,
    }


def is_controlled_by(obj: dict, owner: dict) -> bool:
    ref = controller_ref(obj)
    return bool(ref and ref.get("uid") == owner["metadata"].get("uid"))


def selector_of(owner: dict) -> LabelSelector:
    """The owner's spec.selector; an empty or missing one selects nothing (never everything)."""
    sel = (owner.get("spec") or {}).get("selector")
    if not sel:
        return LabelSelector.nothing()
    selector = LabelSelector.from_dict(sel)
    return LabelSelector.nothing() if selector.empty else selector


def pod_from_template(owner: dict, template: dict, *, generate_name: str | None = None) -> dict:
    """A new Pod object from a pod template, owned by ``owner``, in its namespace."""
    tmeta = template.get("metadata") or {}
    meta: dict = {
        "generateName": generate_name or f"{owner['metadata']['name']}-",
        "namespace": owner["metadata"]["namespace"],
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner_reference(owner)],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }
