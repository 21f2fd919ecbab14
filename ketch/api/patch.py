"""PATCH bodies as Kubernetes applies them, and the patch `kubectl apply` computes.

- `merge_patch`: RFC 7386 JSON merge patch (`application/merge-patch+json`).
- `json_patch`: RFC 6902 JSON patch (`application/json-patch+json`).
- `strategic_merge_patch`: Kubernetes' strategic merge patch
  (`application/strategic-merge-patch+json`), driven by the schema: lists whose
  `Array` node has `patch_strategy == "merge"` merge element by element (by
  `merge_key` for lists of objects, by value for lists of scalars); other lists
  are replaced. Directives: `$patch: replace|delete|merge` on maps and on list
  elements, `$setElementOrder/<list>`, `$retainKeys`,
  `$deleteFromPrimitiveList/<list>`. Element order follows
  k8s.io/apimachinery/pkg/util/strategicpatch: `$setElementOrder` first, then
  the patch's order, then the live list's.
- `three_way_merge_patch`: the merge patch client-side apply sends.

Every function returns a new document and leaves its arguments untouched.
Malformed patches raise `PatchError` (the apiserver answers 422 or 400 with it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"

_MISSING: Any = object()


class PatchError(Exception):
    """The patch cannot be applied; the message says why."""


# --- JSON helpers --------------------------------------------------------------------


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON document, several times faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON means it: `true != 1`, `1 == 1.0`, dict order irrelevant."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            return False
        return all(json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        return all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _identity(value: Any) -> Any:
    """A hashable stand-in for a JSON value with json_equal semantics."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z", None)
    return ("j", json.dumps(value, sort_keys=True))


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


# --- RFC 7386 JSON merge patch --------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch: objects merge, `null` removes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy_json(patch)
    result = copy_json(target) if isinstance(target, dict) else {}
    _merge_patch_into(result, patch)
    return result


def _merge_patch_into(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            if not isinstance(current, dict):
                current = {}
                target[key] = current
            _merge_patch_into(current, value)
        else:
            target[key] = copy_json(value)


def create_merge_patch(source: Any, target: Any) -> Any:
    """The RFC 7386 merge patch that turns `source` into `target` (`{}` when equal)."""
    if not isinstance(source, dict) or not isinstance(target, dict):
        return copy_json(target)
    patch: dict[str, Any] = {}
    for key, value in target.items():
        if key not in source:
            patch[key] = _without_nulls(value)
        elif isinstance(value, dict) and isinstance(source[key], dict):
            sub = create_merge_patch(source[key], value)
            if sub:
                patch[key] = sub
        elif not json_equal(source[key], value):
            patch[key] = copy_json(value)
    for key in source:
        if key not in target:
            patch[key] = None
    return patch


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return copy_json(value)


# --- RFC 6902 JSON patch --------------------------------------------------------------


def parse_pointer(pointer: str) -> list[str]:
    """RFC 6901 reference tokens of `pointer` (`/a~1b/0` → ["a/b", "0"])."""
    if not isinstance(pointer, str):
        raise PatchError(f"JSON pointer must be a string, not {_short(pointer)}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f'JSON pointer "{pointer}" must be empty or start with "/"')
    tokens = pointer[1:].split("/")
    for token in tokens:
        rest = token.replace("~0", "").replace("~1", "")
        if "~" in rest:
            raise PatchError(f'JSON pointer "{pointer}" has an invalid escape (only ~0 and ~1)')
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def _array_index(token: str, length: int, pointer: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f'"{token}" in "{pointer}" is not a valid array index')
    index = int(token)
    limit = length if allow_end else length - 1
    if index > limit:
        raise PatchError(f'array index {index} in "{pointer}" is out of bounds (length {length})')
    return index


def _resolve_parent(doc: Any, pointer: str, op: str) -> tuple[Any, str]:
    tokens = parse_pointer(pointer)
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f'{op} operation does not apply: doc is missing path: "{pointer}"')
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(token, len(node), pointer, allow_end=False)]
        else:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{pointer}"')
    if not isinstance(node, (dict, list)):
        raise PatchError(f'{op} operation does not apply: doc is missing path: "{pointer}"')
    return node, tokens[-1]


def _get_pointer(doc: Any, pointer: str, op: str) -> Any:
    node = doc
    for token in parse_pointer(pointer):
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(token, len(node), pointer, allow_end=False)]
        else:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{pointer}"')
    return node


def _add(doc: Any, pointer: str, value: Any, op: str = "add") -> Any:
    if pointer == "":
        return value
    parent, token = _resolve_parent(doc, pointer, op)
    if isinstance(parent, dict):
        parent[token] = value
    else:
        parent.insert(_array_index(token, len(parent), pointer, allow_end=True), value)
    return doc


def _remove(doc: Any, pointer: str, op: str = "remove") -> tuple[Any, Any]:
    if pointer == "":
        return None, doc
    parent, token = _resolve_parent(doc, pointer, op)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f'{op} operation does not apply: doc is missing key: "{pointer}"')
        return doc, parent.pop(token)
    return doc, parent.pop(_array_index(token, len(parent), pointer, allow_end=False))


def json_patch(target: Any, ops: list[dict]) -> Any:
    """Apply RFC 6902 operations in order; all or nothing (the input is never changed)."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy_json(target)
    for number, operation in enumerate(ops):
        if not isinstance(operation, dict):
            raise PatchError(f"operation {number} is not an object: {_short(operation)}")
        op = operation.get("op")
        if "path" not in operation:
            raise PatchError(f'operation {number} ("{op}") has no "path"')
        path = operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f'operation {number} ("{op}") has no "value"')
        if op == "add":
            doc = _add(doc, path, copy_json(operation["value"]))
        elif op == "remove":
            doc, _ = _remove(doc, path)
        elif op == "replace":
            _get_pointer(doc, path, "replace")
            if path == "":
                doc = copy_json(operation["value"])
            else:
                parent, token = _resolve_parent(doc, path, "replace")
                if isinstance(parent, dict):
                    parent[token] = copy_json(operation["value"])
                else:
                    parent[_array_index(token, len(parent), path, allow_end=False)] = copy_json(
                        operation["value"]
                    )
        elif op in ("move", "copy"):
            if "from" not in operation:
                raise PatchError(f'operation {number} ("{op}") has no "from"')
            source = operation["from"]
            if op == "move":
                if path != source and path.startswith(source + "/"):
                    raise PatchError(
                        f'move operation cannot move "{source}" into its own child "{path}"'
                    )
                _get_pointer(doc, source, "move")
                doc, value = _remove(doc, source, "move")
                doc = _add(doc, path, value, "move")
            else:
                value = copy_json(_get_pointer(doc, source, "copy"))
                doc = _add(doc, path, value, "copy")
        elif op == "test":
            actual = _get_pointer(doc, path, "test")
            if not json_equal(actual, operation["value"]):
                raise PatchError(
                    f'test operation failed: "{path}" is {_short(actual)}, '
                    f"not {_short(operation['value'])}"
                )
        else:
            raise PatchError(f"unexpected kind of JSON patch operation: {_short(op)}")
    return doc


# --- strategic merge patch ------------------------------------------------------------


def _child_node(node: Any, key: str) -> Any:
    """The schema node of `key` inside an Object or Map node (None when unknown)."""
    if node is None:
        return None
    fields = getattr(node, "fields", None)
    if fields is not None:
        field = fields.get(key)
        return field.node if field is not None else None
    values = getattr(node, "values", None)
    if values is not None and not callable(values):
        return values
    return None


def _list_meta(node: Any) -> tuple[str | None, bool, Any]:
    """(merge key, merges?, items node) of an Array node."""
    if node is None or not hasattr(node, "items") or callable(node.items):
        return None, False, None
    merges = getattr(node, "patch_strategy", None) == "merge"
    return getattr(node, "merge_key", None), merges, node.items


def strategic_merge_patch(target: dict, patch: dict, schema: Any = None) -> dict:
    """Apply a strategic merge patch to `target` under `schema` (the kind's Object node).

    Without a schema every list is replaced and every map merged, as a plain
    merge patch would, but directives are still honoured.
    """
    if not isinstance(patch, dict):
        raise PatchError(f"a strategic merge patch must be a JSON object, not {_short(patch)}")
    original = copy_json(target) if isinstance(target, dict) else {}
    return _merge_map(original, copy_json(patch), schema)


def _fresh(value: Any, node: Any) -> Any:
    """A patch value for a key the original lacks: directives and nulls taken out."""
    if isinstance(value, dict):
        return _merge_map({}, value, node)
    if isinstance(value, list):
        return _merge_list([], value, node)
    return value


def _only_deletes(value: Any) -> bool:
    """A patch value that only deletes (`{"$patch": "delete"}` or a list of such elements):
    applied where nothing exists, it leaves nothing rather than an empty value."""
    if isinstance(value, dict):
        return value.get(DIRECTIVE) == "delete"
    if isinstance(value, list):
        return bool(value) and all(
            isinstance(x, dict) and x.get(DIRECTIVE) == "delete" for x in value
        )
    return False


def _merge_map(original: dict, patch: dict, node: Any) -> dict:
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            return _merge_map({}, patch, node)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise PatchError(f"unknown patch type: {_short(directive)} in map: {_short(patch)}")

    if RETAIN_KEYS in patch:
        _apply_retain_keys(original, patch, patch.pop(RETAIN_KEYS))

    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        _apply_set_element_order(original, patch, key, patch.pop(key), node)

    for key, value in patch.items():
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            _delete_from_primitive_list(original, key, value)
            continue
        if key.startswith("$"):
            raise PatchError(f"unknown directive {key!r} in patch")
        if value is None:
            original.pop(key, None)
            continue
        child = _child_node(node, key)
        if key not in original:
            if not _only_deletes(value):
                original[key] = _fresh(value, child)
            continue
        current = original[key]
        if isinstance(current, dict) and isinstance(value, dict):
            original[key] = _merge_map(current, value, child)
        elif isinstance(current, list) and isinstance(value, list):
            original[key] = _merge_list(current, value, child)
        else:
            original[key] = _fresh(value, child)
    return original


def _apply_retain_keys(original: dict, patch: dict, retain: Any) -> None:
    """`$retainKeys`: drop every key of `original` not listed (a union member switched)."""
    if not isinstance(retain, list):
        raise PatchError(f"invalid patch format of retainKeys: {_short(retain)} is not a list")
    keep = set(retain)
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if key not in keep:
            raise PatchError(
                f"invalid patch format of retainKeys: key {key!r} is in the patch "
                f"but not in $retainKeys {_short(retain)}"
            )
    for key in list(original):
        if key not in keep:
            del original[key]


def _delete_from_primitive_list(original: dict, key: str, values: Any) -> None:
    field = key[len(DELETE_FROM_PRIMITIVE_LIST) :]
    if not field:
        raise PatchError(f"invalid patch format: {key!r} names no list")
    if not isinstance(values, list):
        raise PatchError(f"{key} must be a list, not {_short(values)}")
    current = original.get(field)
    if current is None:
        return
    if not isinstance(current, list):
        raise PatchError(f"{key}: {field!r} is not a list in the object")
    gone = {_identity(v) for v in values}
    original[field] = [v for v in current if _identity(v) not in gone]


def _key_of(item: Any, merge_key: str | None, where: str) -> Any:
    """Identity of a list element: its merge key value, or the value itself for scalars."""
    if merge_key is None:
        return _identity(item)
    if not isinstance(item, dict):
        raise PatchError(
            f"{where}: element {_short(item)} of a list merged by {merge_key!r} is not an object"
        )
    if merge_key not in item:
        if where == "patch":
            raise PatchError(
                f"map: {_short(item)} does not contain declared merge key: {merge_key}"
            )
        return ("unkeyed", id(item))  # a live element without its key matches nothing
    return _identity(item[merge_key])


def _merge_list(original: list, patch: list, node: Any) -> list:
    merge_key, merges, items_node = _list_meta(node)
    if not merges:
        return patch
    if not original and not patch:
        return original
    has_maps = any(isinstance(x, dict) for x in original) or any(
        isinstance(x, dict) and DIRECTIVE not in x for x in patch
    )
    if not has_maps and merge_key is None:
        return _merge_scalar_list(original, patch)
    if merge_key is None:
        raise PatchError("cannot merge lists without merge key for type map")

    plain: list[dict] = []
    replace = False
    for element in patch:
        if not isinstance(element, dict):
            raise PatchError(
                f"element {_short(element)} of a list merged by {merge_key!r} is not an object"
            )
        directive = element.get(DIRECTIVE, _MISSING)
        if directive is _MISSING:
            plain.append(element)
        elif directive == "delete":
            if merge_key not in element:
                raise PatchError(
                    f"map: {_short(element)} does not contain declared merge key: {merge_key}"
                )
            doomed = _identity(element[merge_key])
            original = [
                x
                for x in original
                if not (
                    isinstance(x, dict) and merge_key in x and _identity(x[merge_key]) == doomed
                )
            ]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            plain.append({k: v for k, v in element.items() if k != DIRECTIVE})
        else:
            raise PatchError(
                f"unknown patch type: {_short(directive)} in list element: {_short(element)}"
            )
    if replace:
        return [_fresh(x, items_node) for x in plain]

    server_order = list(original)
    merged = list(original)
    position = {_key_of(x, merge_key, "live list"): i for i, x in reversed(list(enumerate(merged)))}
    for element in plain:
        key = _key_of(element, merge_key, "patch")
        index = position.get(key)
        if index is None:
            position[key] = len(merged)
            merged.append(_fresh(element, items_node))
        else:
            merged[index] = _merge_map(merged[index], element, items_node)
    return _order(merged, plain, server_order, merge_key)


def _merge_scalar_list(original: list, patch: list) -> list:
    """A merged list of scalars: union without duplicates, patch elements ordered first."""
    values = [x for x in patch if not (isinstance(x, dict) and DIRECTIVE in x)]
    if any(isinstance(x, dict) and x.get(DIRECTIVE) == "replace" for x in patch):
        return _dedupe(values)
    merged = _dedupe(list(original) + values)
    return _order(merged, values, original, None)


def _dedupe(values: list) -> list:
    seen, out = set(), []
    for value in values:
        ident = _identity(value)
        if ident not in seen:
            seen.add(ident)
            out.append(value)
    return out


def _order(merged: list, patch_order: list, server_order: list, merge_key: str | None) -> list:
    """Kubernetes' normalizeElementOrder: patch items in patch order, live-only items
    in live order, interleaved so items the live list already had keep their places."""
    key: Callable[[Any], Any] = lambda item: _key_of(item, merge_key, "list")  # noqa: E731
    patch_index = {}
    for i, item in enumerate(patch_order):
        patch_index.setdefault(key(item), i)
    server_index = {}
    for i, item in enumerate(server_order):
        server_index.setdefault(key(item), i)
    patch_items = [x for x in merged if key(x) in patch_index]
    server_only = [x for x in merged if key(x) not in patch_index]
    patch_items.sort(key=lambda x: patch_index[key(x)])
    server_only.sort(key=lambda x: server_index.get(key(x), len(server_order)))

    out: list = []
    i = j = 0
    while i < len(server_only) or j < len(patch_items):
        if i >= len(server_only):
            out.append(patch_items[j])
            j += 1
        elif j >= len(patch_items):
            out.append(server_only[i])
            i += 1
        else:
            left = server_index.get(key(server_only[i]))
            right = server_index.get(key(patch_items[j]))
            if left is not None and right is not None and left < right:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patch_items[j])
                j += 1
    return out


def _apply_set_element_order(
    original: dict, patch: dict, directive_key: str, order: Any, node: Any
) -> None:
    field = directive_key[len(SET_ELEMENT_ORDER) :]
    if not field:
        raise PatchError(f"invalid patch format of setElementOrder list: {directive_key!r}")
    if not isinstance(order, list):
        raise PatchError(
            f"invalid patch format of setElementOrder list: {directive_key} is not a list"
        )
    child = _child_node(node, field)
    merge_key, merges, _ = _list_meta(child)
    if merge_key is None and any(isinstance(x, dict) for x in order):
        merge_key = _guess_merge_key(order)
    current = original.get(field, _MISSING)
    incoming = patch.pop(field, _MISSING)
    if current is not _MISSING and not isinstance(current, list):
        raise PatchError(f"{directive_key}: {field!r} is not a list in the object")
    if incoming is not _MISSING and not isinstance(incoming, list):
        raise PatchError(f"{directive_key}: {field!r} is not a list in the patch")
    if incoming is not _MISSING:
        _check_order_consistent(incoming, order, merge_key, directive_key)
    if current is _MISSING and incoming is _MISSING:
        return
    if incoming is _MISSING:
        merged = current
    elif current is _MISSING:
        merged = _merge_list([], incoming, child) if merges else incoming
    else:
        merged = _merge_list(current, incoming, child)
    original[field] = _order(merged, order, current if current is not _MISSING else [], merge_key)


def _guess_merge_key(order: list) -> str | None:
    """Without a schema, `$setElementOrder` objects carry only the merge key: use it."""
    first = order[0]
    return next(iter(first)) if isinstance(first, dict) and len(first) == 1 else None


def _check_order_consistent(incoming: list, order: list, merge_key: str | None, where: str) -> None:
    """Patch elements (deletions aside) must appear in the `$setElementOrder` list, in its order."""
    items = [x for x in incoming if not (isinstance(x, dict) and DIRECTIVE in x)]
    if not items or not order:
        return
    order_keys = [_key_of(x, merge_key, "patch") for x in order]
    position = 0
    for item in items:
        ident = _key_of(item, merge_key, "patch")
        while position < len(order_keys) and order_keys[position] != ident:
            position += 1
        if position >= len(order_keys):
            raise PatchError(
                f"The order in patch list:\n{_short(incoming)}\n doesn't match "
                f"$setElementOrder list:\n{_short(order)}"
            )
        position += 1


# --- three-way patch for client-side apply --------------------------------------------


def _deletions(original: dict, modified: dict) -> dict:
    """Null for every key `original` had and `modified` dropped (recursively into objects)."""
    out: dict[str, Any] = {}
    for key, value in original.items():
        if key not in modified:
            out[key] = None
        elif isinstance(value, dict) and isinstance(modified[key], dict):
            sub = _deletions(value, modified[key])
            if sub:
                out[key] = sub
    return out


def _additions(current: dict, modified: dict) -> dict:
    """What `modified` sets that `current` lacks or differs in (never deletes)."""
    out: dict[str, Any] = {}
    for key, value in modified.items():
        if key not in current:
            if value is not None:
                out[key] = _without_nulls(value)
        elif isinstance(value, dict) and isinstance(current[key], dict):
            sub = _additions(current[key], value)
            if sub:
                out[key] = sub
        elif not json_equal(current[key], value):
            out[key] = _without_nulls(value)
    return out


def _combine(deletions: dict, additions: dict) -> dict:
    out = copy_json(deletions)
    for key, value in additions.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _combine(out[key], value)
        else:
            out[key] = value
    return out


def three_way_merge_patch(original: dict | None, modified: dict, current: dict) -> dict:
    """The JSON merge patch client-side apply sends (kubectl's three-way JSON merge patch).

    `original` is the last-applied configuration (None on the first apply),
    `modified` the new manifest, `current` the live object. Fields the user
    removed from the manifest become `null`; fields the manifest sets and the
    live object lacks or differs in are set; lists are replaced whole; fields
    only the server set (status, defaults) are left alone. `{}` means unchanged.
    Send it as `application/merge-patch+json` (as a strategic patch its lists
    would merge rather than replace).
    """
    deletions = _deletions(original or {}, modified)
    additions = _additions(current or {}, modified)
    return _combine(deletions, additions)


# --- three-way strategic patch (what kubectl sends for built-in kinds) -------------------


def _retains_keys(node: Any) -> bool:
    return bool(getattr(node, "retain_keys", False))


def _diff_maps(
    src: dict, dst: dict, node: Any, *, additions: bool, deletions: bool, set_order: bool
) -> dict:
    """Kubernetes' diffMaps: the strategic patch from `src` to `dst`, limited to
    additions/changes or to deletions as asked."""
    patch: dict[str, Any] = {}
    for key, new in dst.items():
        child = _child_node(node, key)
        if key not in src:
            if additions and new is not None:
                patch[key] = _without_nulls(new)
            continue
        old = src[key]
        if new is None:
            if additions and old is not None:
                patch[key] = None
        elif isinstance(old, dict) and isinstance(new, dict):
            sub = _diff_maps(
                old, new, child, additions=additions, deletions=deletions, set_order=set_order
            )
            if sub:
                patch[key] = sub
        elif isinstance(old, list) and isinstance(new, list):
            _diff_lists(
                patch,
                key,
                old,
                new,
                child,
                additions=additions,
                deletions=deletions,
                set_order=set_order,
            )
        elif additions and not json_equal(old, new):
            patch[key] = copy_json(new)
    if deletions:
        for key in src:
            if key not in dst:
                patch[key] = None
    if _retains_keys(node):
        keep = sorted(k for k, v in dst.items() if v is not None)
        if keep and (patch or any(k not in dst for k in src)):
            patch[RETAIN_KEYS] = keep
    return patch


def _diff_lists(
    patch: dict,
    key: str,
    old: list,
    new: list,
    node: Any,
    *,
    additions: bool,
    deletions: bool,
    set_order: bool,
) -> None:
    merge_key, merges, items_node = _list_meta(node)
    if not merges:
        if additions and not json_equal(old, new):
            patch[key] = copy_json(new)
        return
    is_maps = merge_key is not None and any(isinstance(x, dict) for x in old + new)
    if not is_maps:
        old_ids = {_identity(v) for v in old}
        new_ids = {_identity(v) for v in new}
        added = _dedupe([v for v in new if _identity(v) not in old_ids])
        removed = _dedupe([v for v in old if _identity(v) not in new_ids])
        if additions and added:
            patch[key] = copy_json(added)
        if deletions and removed:
            patch[DELETE_FROM_PRIMITIVE_LIST + key] = copy_json(removed)
        if set_order and ((deletions and removed) or (additions and not json_equal(old, new))):
            patch[SET_ELEMENT_ORDER + key] = copy_json(new)
        return
    old_by_key = {}
    for item in old:
        old_by_key.setdefault(_key_of(item, merge_key, "live list"), item)
    new_keys = set()
    changes: list[Any] = []
    for item in new:
        ident = _key_of(item, merge_key, "patch")
        new_keys.add(ident)
        before = old_by_key.get(ident)
        if before is None:
            if additions:
                changes.append(_without_nulls(item))
            continue
        sub = _diff_maps(
            before, item, items_node, additions=additions, deletions=deletions, set_order=set_order
        )
        if sub:
            sub[merge_key] = item[merge_key]
            changes.append(sub)
    removals = []
    if deletions:
        for item in old:
            ident = _key_of(item, merge_key, "live list")
            if ident not in new_keys and isinstance(item, dict) and merge_key in item:
                removals.append({DIRECTIVE: "delete", merge_key: item[merge_key]})
    everything = changes + removals
    order_same = len(old) == len(new) and all(
        _key_of(a, merge_key, "live list") == _key_of(b, merge_key, "patch")
        for a, b in zip(old, new, strict=True)
    )
    if everything:
        patch[key] = everything
    if set_order and ((additions and (everything or not order_same)) or (deletions and everything)):
        patch[SET_ELEMENT_ORDER + key] = [{merge_key: item[merge_key]} for item in new]


def _combine_patches(deletions: dict, delta: dict, node: Any) -> dict:
    """One patch out of the deletions patch and the additions patch: maps merge,
    list elements with the same merge key merge, delta elements first."""
    out = copy_json(deletions)
    for key, value in delta.items():
        mine = out.get(key, _MISSING)
        child = _child_node(node, key)
        if isinstance(value, dict) and isinstance(mine, dict):
            out[key] = _combine_patches(mine, value, child)
        elif isinstance(value, list) and isinstance(mine, list) and not key.startswith("$"):
            merge_key, _, items_node = _list_meta(child)
            combined = copy_json(value)
            if merge_key is not None:
                index = {
                    _identity(x[merge_key]): i
                    for i, x in enumerate(combined)
                    if isinstance(x, dict) and merge_key in x
                }
                for item in mine:
                    at = (
                        index.get(_identity(item.get(merge_key)))
                        if isinstance(item, dict)
                        else None
                    )
                    if at is None or DIRECTIVE in item:
                        combined.append(item)
                    else:
                        combined[at] = _combine_patches(item, combined[at], items_node)
            else:
                combined += [x for x in mine if x not in combined]
            out[key] = combined
        else:
            out[key] = copy_json(value)
    return out


def three_way_strategic_merge_patch(
    original: dict | None, modified: dict, current: dict, schema: Any
) -> dict:
    """The strategic merge patch `kubectl apply` computes for a built-in kind.

    Like `three_way_merge_patch`, but lists with a merge strategy are patched
    element by element (changed elements, `$patch: delete` for elements the
    manifest dropped, `$setElementOrder/<list>` for the manifest's order), so
    fields the server defaulted inside list elements do not make every apply a
    change. Send it as `application/strategic-merge-patch+json`.
    """
    delta = _diff_maps(
        current or {}, modified, schema, additions=True, deletions=False, set_order=True
    )
    removed = _diff_maps(
        original or {}, modified, schema, additions=False, deletions=True, set_order=False
    )
    return _combine_patches(removed, delta, schema)
