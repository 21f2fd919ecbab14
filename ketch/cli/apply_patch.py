"""The patch `ketch apply` sends: kubectl's three-way merge, as a JSON merge patch.

Three inputs: *original* (the last-applied-configuration annotation), *modified*
(the manifest now) and *current* (the live object). The patch sets whatever
`modified` says that `current` does not have, and deletes (null) what
`original` had and `modified` dropped, so removed fields are removed while
fields others set (controllers, `ketch edit`) stay.

A merge patch replaces lists whole, and the server fills defaults into list
items (a container's imagePullPolicy, a port's protocol): comparing lists
naively would make every apply "configured". So a list is left alone when the
manifest did not change it since the last apply (`original` has the same list)
and the live list still contains it item by item (extra defaulted fields
allowed); otherwise the whole list of `modified` is sent, which also removes
fields the manifest dropped inside list items.
"""

from __future__ import annotations

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def contained(want: object, have: object) -> bool:
    """Is everything `want` says also true of `have` (which may say more)?"""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and contained(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return (isinstance(have, list) and len(want) == len(have)
                and all(contained(w, h) for w, h in zip(want, have, strict=True)))
    if isinstance(want, (int, float)) and isinstance(have, (int, float)) and not isinstance(want, bool):
        return want == have
    return want == have


def _additions(original: dict | None, modified: dict, current: dict) -> dict:
    patch: dict = {}
    for key, want in modified.items():
        have = current.get(key) if isinstance(current, dict) else None
        was = original.get(key) if isinstance(original, dict) else None
        if isinstance(want, dict) and isinstance(have, dict):
            sub = _additions(was if isinstance(was, dict) else None, want, have)
            if sub:
                patch[key] = sub
        elif key not in current or not contained(want, have):
            patch[key] = want
        elif isinstance(want, list) and original is not None and was != want:
            patch[key] = want  # the manifest changed this list: replace it as written
    return patch


def _deletions(original: dict, modified: dict, current: dict) -> dict:
    patch: dict = {}
    for key, was in original.items():
        if key not in modified:
            if isinstance(current, dict) and key in current:
                patch[key] = None
        elif isinstance(was, dict) and isinstance(modified[key], dict):
            sub = _deletions(was, modified[key], current.get(key) if isinstance(current, dict) else {})
            if sub:
                patch[key] = sub
    return patch


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        elif k not in out:
            out[k] = v
    return out


def three_way_merge_patch(original: dict | None, modified: dict, current: dict) -> dict:
    """The merge patch taking `current` to what `modified` wants; {} means unchanged."""
    patch = _additions(original, modified, current)
    if original:
        patch = _merge(patch, _deletions(original, modified, current))
    return patch
