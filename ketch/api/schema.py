"""Schema node types: the one description of every supported API field.

The same trees drive validation (`validation.py`), defaulting (`defaults.py`),
strategic merge patch merge keys (`patch.py`) and the OpenAPI document
(`openapi.py`). Nodes are plain immutable-by-convention objects built once at
import time; nothing here is built per request.

Walking a schema alongside an object: `obj_node.fields[name].node`,
`array_node.items`, `map_node.values`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ketch.api.resources import ResourceInfo


class _Nothing:
    """Sentinel for "no default" (None is a legitimate default for nothing)."""

    _instance: _Nothing | None = None

    def __new__(cls) -> _Nothing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOTHING"

    def __bool__(self) -> bool:
        return False


NOTHING: Any = _Nothing()


class Node:
    """Base of every schema node. `tag` lets walkers dispatch without isinstance chains."""

    __slots__ = ("description",)
    tag = "node"

    def __init__(self, description: str = "") -> None:
        self.description = description

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class String(Node):
    """A JSON string, optionally restricted to `enum` values or a named `format`.

    Formats understood by validation: "dns1123-label", "dns1123-subdomain",
    "date-time", "ip", "cidr", "label-key", "label-value", "qualified-name",
    "base64", "c-identifier", "port-name", "absolute-path", "relative-path".
    """

    __slots__ = ("enum", "format", "max_length")
    tag = "string"

    def __init__(
        self,
        description: str = "",
        *,
        enum: tuple[str, ...] | None = None,
        format: str | None = None,
        max_length: int | None = None,
    ) -> None:
        super().__init__(description)
        self.enum = enum
        self.format = format
        self.max_length = max_length


class Integer(Node):
    __slots__ = ("minimum", "maximum", "format")
    tag = "integer"

    def __init__(
        self,
        description: str = "",
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        format: str = "int32",
    ) -> None:
        super().__init__(description)
        self.minimum = minimum
        self.maximum = maximum
        self.format = format


class Number(Node):
    __slots__ = ("minimum",)
    tag = "number"

    def __init__(self, description: str = "", *, minimum: float | None = None) -> None:
        super().__init__(description)
        self.minimum = minimum


class Boolean(Node):
    __slots__ = ()
    tag = "boolean"


class Quantity(Node):
    """A Kubernetes quantity: "100m", "128Mi", or a plain number."""

    __slots__ = ()
    tag = "quantity"


class IntOrString(Node):
    """An integer or a string (container port name, "25%")."""

    __slots__ = ()
    tag = "int-or-string"


class FreeForm(Node):
    """Any JSON value; not looked into (e.g. Event `related`-like opaque blobs)."""

    __slots__ = ()
    tag = "free-form"


class Field:
    """One named field of an `Object`.

    `default` is applied by `defaults.apply_defaults` when the field is absent
    and its parent object is present. `read_only` marks server-owned fields
    (status and server metadata): accepted in input, overwritten by the server.
    """

    __slots__ = ("node", "required", "default", "read_only")

    def __init__(
        self,
        node: Node,
        required: bool = False,
        default: Any = NOTHING,
        read_only: bool = False,
    ) -> None:
        self.node = node
        self.required = required
        self.default = default
        self.read_only = read_only

    def __repr__(self) -> str:
        return f"Field({self.node!r}, required={self.required})"


class Object(Node):
    """A JSON object with a closed set of fields.

    Fields not listed are rejected. `unsupported` names Kubernetes fields Ketch
    knowingly does not implement, with a reason, so the error can say so.
    `name` is the OpenAPI component name ("io.k8s.api.core.v1.PodSpec"); named
    objects become `$ref`s in the OpenAPI document.
    """

    __slots__ = ("fields", "retain_keys", "unsupported", "name", "required_names")
    tag = "object"

    def __init__(
        self,
        fields: dict[str, Field],
        description: str = "",
        *,
        retain_keys: bool = False,
        unsupported: dict[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(description)
        self.fields = fields
        self.retain_keys = retain_keys
        self.unsupported = unsupported or {}
        self.name = name
        self.required_names = tuple(k for k, f in fields.items() if f.required)

    def __repr__(self) -> str:
        return f"Object({self.name or ', '.join(self.fields)})"


class Array(Node):
    """A JSON list. `merge_key` + `patch_strategy="merge"` drive strategic merge patch."""

    __slots__ = ("items", "merge_key", "patch_strategy", "unique")
    tag = "array"

    def __init__(
        self,
        items: Node,
        description: str = "",
        *,
        merge_key: str | None = None,
        patch_strategy: str | None = None,
        unique: bool = False,
    ) -> None:
        super().__init__(description)
        self.items = items
        self.merge_key = merge_key
        self.patch_strategy = patch_strategy
        self.unique = unique


class Map(Node):
    """A string-keyed JSON object of uniform values; `key_format` as String.format."""

    __slots__ = ("values", "key_format")
    tag = "map"

    def __init__(
        self, values: Node, description: str = "", *, key_format: str | None = None
    ) -> None:
        super().__init__(description)
        self.values = values
        self.key_format = key_format


# --- lookup of whole-object schemas -------------------------------------------------

_KIND_MODULES = {
    "v1": "ketch.api.core_v1",
    "apps/v1": "ketch.api.apps_v1",
    "batch/v1": "ketch.api.batch_v1",
    "coordination.k8s.io/v1": "ketch.api.coordination_v1",
    "autoscaling/v1": "ketch.api.autoscaling_v1",
    "meta.k8s.io/v1": "ketch.api.meta_v1",
}


def kind_schema(api_version: str, kind: str) -> Object | None:
    """The whole-object schema of `kind` in `api_version` (also Scale, Binding, DeleteOptions)."""
    module_name = _KIND_MODULES.get(api_version)
    if module_name is None:
        return None
    import importlib

    module = importlib.import_module(module_name)
    return module.KINDS.get(kind)


def schema_for(info: ResourceInfo) -> Object:
    """The whole object of a resource: apiVersion, kind, metadata, spec, status."""
    node = kind_schema(info.api_version, info.kind)
    if node is None:
        raise KeyError(f"no schema for {info.api_version} {info.kind}")
    return node
