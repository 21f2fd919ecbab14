"""Manifests from `-f`: files, directories (`-R`), stdin; YAML streams, JSON, List kinds."""

from __future__ import annotations

import json
import os
import sys

from ketch.cli.errors import CommandError

MANIFEST_EXTENSIONS = (".yaml", ".yml", ".json")


class Manifest:
    """One object to send, and where it came from (for messages like kubectl's)."""

    __slots__ = ("obj", "source")

    def __init__(self, obj: dict, source: str):
        self.obj = obj
        self.source = source

    def __repr__(self) -> str:
        return f"Manifest({self.obj.get('kind')}/{self.obj.get('metadata', {}).get('name')}, {self.source})"


def _files_in(directory: str, recursive: bool) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(MANIFEST_EXTENSIONS):
                found.append(os.path.join(root, f))
        if not recursive:
            break
    return found


def parse_documents(text: str, source: str) -> list[dict]:
    """All objects in a YAML stream or JSON text; `List` kinds are expanded to their items."""
    stripped = text.lstrip()
    docs: list[object]
    if stripped.startswith(("{", "[")):
        try:
            value = json.loads(text)
            docs = value if isinstance(value, list) else [value]
        except ValueError:
            docs = _yaml_documents(text, source)
    else:
        docs = _yaml_documents(text, source)
    objects: list[dict] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise CommandError(f'error validating "{source}": a manifest must be an object, got {type(doc).__name__}')
        objects.extend(expand_lists(doc))
    return objects


def _yaml_documents(text: str, source: str) -> list[object]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as e:
        raise CommandError(f'error parsing {source}: {e}') from None


def expand_lists(doc: dict) -> list[dict]:
    """A `List` (or `<Kind>List`) with items becomes its items, recursively."""
    kind = str(doc.get("kind") or "")
    if kind.endswith("List") and isinstance(doc.get("items"), list):
        out: list[dict] = []
        for item in doc["items"]:
            if isinstance(item, dict):
                out.extend(expand_lists(item))
        return out
    return [doc]


def check_object(obj: dict, source: str) -> None:
    """What kubectl refuses before talking to the server."""
    if not obj.get("apiVersion") or not obj.get("kind"):
        missing = "apiVersion" if not obj.get("apiVersion") else "kind"
        raise CommandError(
            f'error validating "{source}": error validating data: {missing} not set'
        )
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        raise CommandError(f'error validating "{source}": resource name may not be empty')


def load(filenames: list[str], *, recursive: bool = False, stdin=None) -> list[Manifest]:
    """Every object named by `-f` arguments, in order."""
    if not filenames:
        raise CommandError("must specify one of -f and -k")
    manifests: list[Manifest] = []
    for name in filenames:
        if name == "-":
            text = (stdin or sys.stdin).read()
            manifests += [Manifest(o, "STDIN") for o in parse_documents(text, "STDIN")]
            continue
        if name.startswith(("http://", "https://")):
            raise CommandError(f"{name}: reading manifests from URLs is not supported by ketch")
        if not os.path.exists(name):
            raise CommandError(f'the path "{name}" does not exist')
        paths = _files_in(name, recursive) if os.path.isdir(name) else [name]
        for path in paths:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            manifests += [Manifest(o, path) for o in parse_documents(text, path)]
    if not manifests:
        raise CommandError("no objects passed to apply")
    return manifests
