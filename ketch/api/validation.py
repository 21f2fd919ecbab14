"""Validation of API objects against the schemas, with Kubernetes' rules and wording.

`validate_object` walks an object once alongside its schema (types, unknown
fields, required fields, enums, formats, ranges), then runs the few rules of
its kind that a schema cannot say (selector matches template labels, unique
container names, immutable fields on update, ...). Messages follow
k8s.io/apimachinery/pkg/util/validation/field so kubectl users read what they
know: `spec.template.spec.containers[0].image: Required value`.

Nothing is built per call: the schemas are module constants, the checkers
plain functions and precompiled patterns.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ketch.api.core_v1 import BUILTIN_PRIORITY_CLASSES
from ketch.api.quantity import parse_quantity
from ketch.api.resources import ResourceInfo
from ketch.api.schema import Node, kind_schema, schema_for

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
TOO_LONG = "FieldValueTooLong"
TYPE_INVALID = "FieldValueTypeInvalid"
FORBIDDEN = "FieldValueForbidden"
NOT_FOUND = "FieldValueNotFound"
#: Fields Ketch's schemas do not have. Kubernetes has no cause type of its own
#: for them (its strict decoder answers 400); Ketch reports them as a field
#: cause, see docs/api.md.
UNKNOWN = "FieldValueNotSupported"


@dataclass
class FieldError:
    type: str  # a Kubernetes CauseType, see the constants above
    field: str  # "spec.template.spec.containers[0].image"
    message: str  # "Required value" / 'Invalid value: "Foo": a lowercase RFC 1123 ...'
    value: Any = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


# --- Kubernetes-style error builders (field.Required, field.Invalid, ...) -------------


def go_repr(value: Any) -> str:
    """A value as Kubernetes prints it in messages: strings quoted, numbers bare."""
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, path, f"Required value: {detail}" if detail else "Required value")


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(INVALID, path, f"Invalid value: {go_repr(value)}: {detail}", value)


def type_invalid(path: str, value: Any, expected: str) -> FieldError:
    return FieldError(
        TYPE_INVALID, path, f"Invalid value: {go_repr(value)}: must be {expected}", value
    )


def not_supported(path: str, value: Any, supported: tuple[str, ...] | list[str]) -> FieldError:
    listed = ", ".join(json.dumps(s) for s in supported)
    return FieldError(
        NOT_SUPPORTED,
        path,
        f"Unsupported value: {go_repr(value)}: supported values: {listed}",
        value,
    )


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(DUPLICATE, path, f"Duplicate value: {go_repr(value)}", value)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, path, f"Forbidden: {detail}")


def not_found(path: str, value: Any) -> FieldError:
    return FieldError(NOT_FOUND, path, f"Not found: {go_repr(value)}", value)


def too_long(path: str, value: Any, limit: int) -> FieldError:
    return FieldError(TOO_LONG, path, f"Too long: may not be more than {limit} bytes", None)


def unknown_field(path: str, name: str) -> FieldError:
    return FieldError(
        UNKNOWN,
        path,
        f'Unknown field "{name}": not supported by Ketch '
        "(unknown fields are rejected, never ignored; see docs/api.md)",
        name,
    )


def unsupported_field(path: str, name: str, reason: str) -> FieldError:
    return FieldError(
        UNKNOWN, path, f'Unsupported field "{name}": not supported by Ketch ({reason})', name
    )


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --- name, label and format rules -----------------------------------------------------

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_IANA_SVC_NAME = re.compile(r"[-a-z0-9]+")
_HAS_LETTER = re.compile(r"[a-z]")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_PERCENT = re.compile(r"\d+%")

DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def dns1123_label_errors(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(f"must be no more than {DNS1123_LABEL_MAX} characters")
    if not _DNS1123_LABEL.fullmatch(value):
        errs.append(DNS1123_LABEL_MSG)
    return errs


def dns1123_subdomain_errors(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX} characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errs.append(DNS1123_SUBDOMAIN_MSG)
    return errs


def dns1035_label_errors(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(f"must be no more than {DNS1123_LABEL_MAX} characters")
    if not _DNS1035_LABEL.fullmatch(value):
        errs.append(DNS1035_LABEL_MSG)
    return errs


def qualified_name_errors(value: str) -> list[str]:
    """Label keys, annotation keys, finalizers: `[prefix/]name`."""
    parts = value.split("/")
    if len(parts) == 1:
        prefix, name = "", parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
            "or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?"
            "[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. "
            "'example.com/MyName')"
        ]
    errs = []
    if not name:
        errs.append("name part must be non-empty")
    else:
        if len(name) > 63:
            errs.append("name part must be no more than 63 characters")
        if not _QUALIFIED_NAME.fullmatch(name):
            errs.append(QUALIFIED_NAME_MSG)
    if prefix:
        errs.extend("prefix part " + e for e in dns1123_subdomain_errors(prefix))
    return errs


def label_value_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE.fullmatch(value):
        errs.append(LABEL_VALUE_MSG)
    return errs


def config_key_errors(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX} characters")
    if not _CONFIG_KEY.fullmatch(value):
        errs.append(CONFIG_KEY_MSG)
    if value in (".", ".."):
        errs.append(f"must not be '{value}'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def port_name_errors(value: str) -> list[str]:
    """An IANA service name, as container and service port names must be."""
    errs = []
    if len(value) > 15:
        errs.append("must be no more than 15 characters")
    if not _IANA_SVC_NAME.fullmatch(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if not _HAS_LETTER.search(value):
        errs.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def ip_errors(value: str) -> list[str]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def cidr_errors(value: str) -> list[str]:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    if "/" not in value:
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    return []


def date_time_errors(value: str) -> list[str]:
    if _DATE_TIME.fullmatch(value):
        return []
    return ['must be an RFC 3339 date-time, e.g. "2024-01-02T03:04:05Z"']


def base64_errors(value: str) -> list[str]:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ["must be base64-encoded (illegal base64 data)"]
    return []


def absolute_path_errors(value: str) -> list[str]:
    if not value:
        return []  # emptiness is the required check's business
    if not value.startswith("/"):
        return ["must be an absolute path"]
    return []


def relative_path_errors(value: str) -> list[str]:
    if not value:
        return []
    if value.startswith("/"):
        return ["must be a relative path"]
    if ".." in value.split("/"):
        return ["must not contain '..'"]
    return []


def resource_name_errors(value: str) -> list[str]:
    return qualified_name_errors(value)


_FORMAT_CHECKS: dict[str, Callable[[str], list[str]]] = {
    "dns1123-label": dns1123_label_errors,
    "dns1123-subdomain": dns1123_subdomain_errors,
    "dns1035-label": dns1035_label_errors,
    "label-key": qualified_name_errors,
    "qualified-name": qualified_name_errors,
    "label-value": label_value_errors,
    "config-key": config_key_errors,
    "port-name": port_name_errors,
    "ip": ip_errors,
    "cidr": cidr_errors,
    "date-time": date_time_errors,
    "base64": base64_errors,
    "absolute-path": absolute_path_errors,
    "relative-path": relative_path_errors,
    "resource-name": resource_name_errors,
}


def name_errors(info: ResourceInfo, name: str) -> list[str]:
    """Rules for `metadata.name` of a kind, as Kubernetes has them."""
    if info.kind == "Namespace":
        return dns1123_label_errors(name)
    if info.kind == "Service":
        return dns1035_label_errors(name)
    return dns1123_subdomain_errors(name)


# --- the schema walk --------------------------------------------------------------------

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _walk(node: Node, value: Any, path: str, errs: list[FieldError]) -> None:
    """Check `value` against `node`; `None` means "not set" and is always accepted here."""
    if value is None:
        return
    _WALKERS[node.tag](node, value, path, errs)


def _walk_object(node: Any, value: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(value, dict):
        errs.append(type_invalid(path, value, "an object"))
        return
    fields = node.fields
    for name, child in value.items():
        field = fields.get(name)
        if field is None:
            reason = node.unsupported.get(name)
            if reason is not None:
                errs.append(unsupported_field(_join(path, name), name, reason))
            else:
                errs.append(unknown_field(_join(path, name), name))
            continue
        if child is not None:
            _WALKERS[field.node.tag](field.node, child, _join(path, name), errs)
    for name in node.required_names:
        v = value.get(name)
        if v is None or v == "" or v == []:
            errs.append(required(_join(path, name)))


def _walk_array(node: Any, value: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(value, list):
        errs.append(type_invalid(path, value, "an array (a list)"))
        return
    items = node.items
    walker = _WALKERS[items.tag]
    for i, item in enumerate(value):
        if item is None:
            errs.append(invalid(f"{path}[{i}]", None, "must not be null"))
            continue
        walker(items, item, f"{path}[{i}]", errs)


def _walk_map(node: Any, value: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(value, dict):
        errs.append(type_invalid(path, value, "an object (a map)"))
        return
    values = node.values
    walker = _WALKERS[values.tag]
    key_check = _FORMAT_CHECKS.get(node.key_format) if node.key_format else None
    for key, item in value.items():
        if key_check is not None:
            for msg in key_check(key):
                errs.append(invalid(path, key, msg))
        if item is not None:
            walker(values, item, f"{path}[{key}]", errs)


def _walk_string(node: Any, value: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(value, str):
        errs.append(type_invalid(path, value, "a string"))
        return
    if node.enum is not None and value not in node.enum:
        errs.append(not_supported(path, value, node.enum))
        return
    if node.max_length is not None and len(value) > node.max_length:
        errs.append(too_long(path, value, node.max_length))
    if node.format is not None and value:
        check = _FORMAT_CHECKS.get(node.format)
        if check is not None:
            for msg in check(value):
                errs.append(invalid(path, value, msg))


def _walk_integer(node: Any, value: Any, path: str, errs: list[FieldError]) -> None:
    if not _is_int(value):
        errs.append(type_invalid(path, value, "an integer"))
        return
    if node.format == "int32" and not _INT32_MIN <= value <= _INT32_MAX:
        errs.append(invalid(path, value, "must fit in a 32-bit integer"))
    elif node.minimum is not None and value < node.minimum:
        errs.append(invalid(path, value, f"must be greater than or equal to {node.minimum}"))
    elif node.maximum is not None and value > node.maximum:
        errs.append(invalid(path, value, f"must be less than or equal to {node.maximum}"))


def _walk_number(node: Any, value: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        errs.append(type_invalid(path, value, "a number"))
    elif node.minimum is not None and value < node.minimum:
        errs.append(invalid(path, value, f"must be greater than or equal to {node.minimum}"))


def _walk_boolean(node: Any, value: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(value, bool):
        errs.append(type_invalid(path, value, "a boolean (true or false)"))


def _walk_quantity(node: Any, value: Any, path: str, errs: list[FieldError]) -> None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        errs.append(type_invalid(path, value, 'a quantity (e.g. "100m", "128Mi" or a number)'))
        return
    try:
        amount = parse_quantity(value)
    except ValueError as exc:
        errs.append(invalid(path, value, str(exc)))
        return
    if amount < 0:
        errs.append(invalid(path, value, "must be greater than or equal to 0"))


def _walk_int_or_string(node: Any, value: Any, path: str, errs: list[FieldError]) -> None:
    if not (_is_int(value) or isinstance(value, str)):
        errs.append(type_invalid(path, value, "an integer or a string"))


def _walk_free(node: Any, value: Any, path: str, errs: list[FieldError]) -> None:
    return


_WALKERS: dict[str, Callable[[Any, Any, str, list[FieldError]], None]] = {
    "object": _walk_object,
    "array": _walk_array,
    "map": _walk_map,
    "string": _walk_string,
    "integer": _walk_integer,
    "number": _walk_number,
    "boolean": _walk_boolean,
    "quantity": _walk_quantity,
    "int-or-string": _walk_int_or_string,
    "free-form": _walk_free,
}


def validate_against(node: Node, value: Any, path: str = "") -> list[FieldError]:
    """Schema-only check of any value (no kind rules): types, unknown fields, required, formats."""
    errs: list[FieldError] = []
    if value is None:
        return errs
    _WALKERS[node.tag](node, value, path, errs)
    return errs


# --- helpers for the kind rules -------------------------------------------------------------


def _d(value: Any) -> dict:
    """`value` if it is an object, else an empty one (type errors were reported by the walk)."""
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[tuple[int, dict]]:
    return [(i, v) for i, v in enumerate(_l(value)) if isinstance(v, dict)]


def _quantity(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return None
    try:
        return parse_quantity(value)
    except (ValueError, TypeError):
        return None


def int_or_percent_errors(value: Any) -> list[str]:
    """maxSurge / maxUnavailable: a non-negative integer or a percentage up to 100%."""
    if _is_int(value):
        return ["must be greater than or equal to 0"] if value < 0 else []
    if isinstance(value, str):
        if not _PERCENT.fullmatch(value):
            return [
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
            ]
        if int(value[:-1]) > 100:
            return ["must not be greater than 100%"]
        return []
    return ["must be an integer or percentage (e.g. '5%')"]


def _is_zero_int_or_percent(value: Any) -> bool:
    return value == 0 or value == "0%"


# --- metadata ---------------------------------------------------------------------------------

_ANNOTATIONS_MAX_BYTES = 256 * 1024


def _validate_metadata(info: ResourceInfo, meta: dict, path: str, errs: list[FieldError]) -> None:
    name = meta.get("name")
    if isinstance(name, str) and name:
        for msg in name_errors(info, name):
            errs.append(invalid(_join(path, "name"), name, msg))
    elif not meta.get("generateName"):
        errs.append(required(_join(path, "name"), "name or generateName is required"))
    generate_name = meta.get("generateName")
    if isinstance(generate_name, str) and generate_name and not name:
        # The server appends 5 characters; the prefix must be valid on its own once trimmed.
        trimmed = generate_name.rstrip("-") or "a"
        for msg in name_errors(info, trimmed):
            errs.append(invalid(_join(path, "generateName"), generate_name, msg))
    namespace = meta.get("namespace")
    if info.namespaced and isinstance(namespace, str) and namespace:
        for msg in dns1123_label_errors(namespace):
            errs.append(invalid(_join(path, "namespace"), namespace, msg))
    _validate_annotations_size(meta.get("annotations"), _join(path, "annotations"), errs)
    controllers = [
        ref
        for ref in _l(meta.get("ownerReferences"))
        if isinstance(ref, dict) and ref.get("controller")
    ]
    if len(controllers) > 1:
        names = ", ".join(f"{r.get('kind')}/{r.get('name')}" for r in controllers)
        errs.append(
            invalid(
                _join(path, "ownerReferences"),
                _l(meta.get("ownerReferences")),
                f'Only one reference can have Controller set to true. Found "true" in references for {names}',
            )
        )


def _validate_annotations_size(annotations: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(annotations, dict):
        return
    total = 0
    for k, v in annotations.items():
        total += len(k) + (len(v) if isinstance(v, str) else 0)
    if total > _ANNOTATIONS_MAX_BYTES:
        errs.append(
            FieldError(
                TOO_LONG, path, f"Too long: must have at most {_ANNOTATIONS_MAX_BYTES} bytes"
            )
        )


# --- pods -------------------------------------------------------------------------------------

_VOLUME_SOURCES = ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected")
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket")
_LIFECYCLE_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")
_ALWAYS_ONLY = ("Always",)


def _one_of(
    obj: dict, keys: tuple[str, ...], path: str, errs: list[FieldError], what: str, *, needed=True
) -> None:
    present = [k for k in keys if obj.get(k) is not None]
    if not present and needed:
        errs.append(required(path, f"must specify a {what}"))
    elif len(present) > 1:
        errs.append(forbidden(_join(path, present[1]), f"may not specify more than 1 {what}"))


def _validate_probe(
    probe: Any, path: str, errs: list[FieldError], *, success_must_be_one: bool
) -> None:
    probe = _d(probe)
    if not probe:
        return
    _one_of(probe, _PROBE_HANDLERS, path, errs, "handler type")
    if success_must_be_one and probe.get("successThreshold") not in (None, 1):
        errs.append(
            invalid(_join(path, "successThreshold"), probe["successThreshold"], "must be 1")
        )


def _validate_port_ref(port: Any, path: str, errs: list[FieldError]) -> None:
    if _is_int(port):
        if not 1 <= port <= 65535:
            errs.append(invalid(path, port, "must be between 1 and 65535, inclusive"))
    elif isinstance(port, str):
        for msg in port_name_errors(port):
            errs.append(invalid(path, port, msg))


def _validate_handler_ports(handler: dict, path: str, errs: list[FieldError]) -> None:
    for kind in ("httpGet", "tcpSocket"):
        action = _d(handler.get(kind))
        if "port" in action:
            _validate_port_ref(action["port"], _join(_join(path, kind), "port"), errs)


_ENV_SOURCES = ("configMapKeyRef", "secretKeyRef", "fieldRef", "resourceFieldRef")
_FIELD_PATHS = re.compile(
    r"metadata\.(name|namespace|uid|labels|annotations)"
    r"|metadata\.(labels|annotations)\['[^']+'\]"
    r"|spec\.(nodeName|serviceAccountName)"
    r"|status\.(hostIP|hostIPs|podIP|podIPs)"
)


def _validate_field_ref(ref: dict, path: str, errs: list[FieldError], *, env: bool) -> None:
    fp = ref.get("fieldPath")
    if isinstance(fp, str) and fp:
        if not _FIELD_PATHS.fullmatch(fp):
            supported = [
                "metadata.annotations",
                "metadata.labels",
                "metadata.name",
                "metadata.namespace",
                "metadata.uid",
                "spec.nodeName",
                "spec.serviceAccountName",
                "status.hostIP",
                "status.hostIPs",
                "status.podIP",
                "status.podIPs",
            ]
            errs.append(not_supported(_join(path, "fieldPath"), fp, supported))
        elif env and fp in ("metadata.labels", "metadata.annotations"):
            errs.append(
                invalid(
                    _join(path, "fieldPath"),
                    fp,
                    "whole labels or annotations are only "
                    "available in downward API volumes; select one key with ['key']",
                )
            )
    api_version = ref.get("apiVersion")
    if api_version not in (None, "", "v1"):
        errs.append(not_supported(_join(path, "apiVersion"), api_version, ["v1"]))


_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})


def _validate_container(
    c: dict,
    path: str,
    errs: list[FieldError],
    volume_names: set[str],
    host_network: bool,
    host_ports: set[tuple[int, str, str]],
    port_names: set[str],
    *,
    init: bool,
) -> None:
    image = c.get("image")
    if isinstance(image, str) and image and image.strip() != image:
        errs.append(
            invalid(_join(path, "image"), image, "must not have leading or trailing whitespace")
        )
    # ports
    seen_ports: set[tuple[int, str]] = set()
    for i, port in _dicts(c.get("ports")):
        ppath = f"{path}.ports[{i}]"
        cp, proto = port.get("containerPort"), port.get("protocol") or "TCP"
        name = port.get("name")
        if isinstance(name, str) and name:
            if name in port_names:
                errs.append(duplicate(_join(ppath, "name"), name))
            port_names.add(name)
        if _is_int(cp):
            if (cp, proto) in seen_ports:
                errs.append(duplicate(ppath, {"containerPort": cp, "protocol": proto}))
            seen_ports.add((cp, proto))
        hp = port.get("hostPort")
        if host_network and _is_int(hp) and _is_int(cp) and hp != cp:
            errs.append(
                invalid(
                    _join(ppath, "hostPort"),
                    hp,
                    "must match `containerPort` when `hostNetwork` is true",
                )
            )
        if _is_int(hp) and hp:
            key = (hp, proto, port.get("hostIP") or "")
            if key in host_ports:
                errs.append(duplicate(_join(ppath, "hostPort"), f"{hp}/{proto}"))
            host_ports.add(key)
    # env
    for i, env in _dicts(c.get("env")):
        epath = f"{path}.env[{i}]"
        name = env.get("name")
        if isinstance(name, str) and name:
            if "=" in name or not name.isprintable() or not name.isascii():
                errs.append(
                    invalid(
                        _join(epath, "name"),
                        name,
                        "a valid environment variable name must consist only of printable ASCII characters other than '='",
                    )
                )
        source = env.get("valueFrom")
        if source is not None:
            source = _d(source)
            if env.get("value"):
                errs.append(
                    invalid(
                        _join(epath, "valueFrom"),
                        "",
                        "may not be specified when `value` is not empty",
                    )
                )
            _one_of(
                source,
                _ENV_SOURCES,
                _join(epath, "valueFrom"),
                errs,
                "source (configMapKeyRef, secretKeyRef, fieldRef or resourceFieldRef)",
            )
            ref = source.get("fieldRef")
            if isinstance(ref, dict):
                _validate_field_ref(
                    ref, _join(_join(epath, "valueFrom"), "fieldRef"), errs, env=True
                )
            for key_ref in ("configMapKeyRef", "secretKeyRef"):
                sel = source.get(key_ref)
                if isinstance(sel, dict) and isinstance(sel.get("key"), str) and sel["key"]:
                    for msg in config_key_errors(sel["key"]):
                        errs.append(invalid(f"{epath}.valueFrom.{key_ref}.key", sel["key"], msg))
    for i, src in _dicts(c.get("envFrom")):
        spath = f"{path}.envFrom[{i}]"
        _one_of(
            src, ("configMapRef", "secretRef"), spath, errs, "source (configMapRef or secretRef)"
        )
    # resources: known names, limits >= requests
    resources = _d(c.get("resources"))
    limits, requests = _d(resources.get("limits")), _d(resources.get("requests"))
    for kind, amounts in (("limits", limits), ("requests", requests)):
        for res in amounts:
            if res not in _STANDARD_CONTAINER_RESOURCES and not res.startswith("hugepages-"):
                if "/" not in res:
                    errs.append(
                        invalid(
                            f"{path}.resources.{kind}[{res}]",
                            res,
                            "must be a standard resource type or fully qualified",
                        )
                    )
    for res, req in requests.items():
        if res in limits:
            lq, rq = _quantity(limits[res]), _quantity(req)
            if lq is not None and rq is not None and rq > lq:
                errs.append(
                    invalid(
                        f"{path}.resources.requests[{res}]",
                        req,
                        f"must be less than or equal to {res} limit of {limits[res]}",
                    )
                )
    # volume mounts
    mount_paths: set[str] = set()
    for i, vm in _dicts(c.get("volumeMounts")):
        vpath = f"{path}.volumeMounts[{i}]"
        name = vm.get("name")
        if isinstance(name, str) and name and name not in volume_names:
            errs.append(not_found(_join(vpath, "name"), name))
        mp = vm.get("mountPath")
        if isinstance(mp, str) and mp:
            if mp in mount_paths:
                errs.append(invalid(_join(vpath, "mountPath"), mp, "must be unique"))
            mount_paths.add(mp)
    # probes and hooks
    if init:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if c.get(probe) is not None:
                errs.append(forbidden(_join(path, probe), "may not be set for init containers"))
        if c.get("lifecycle") is not None:
            errs.append(forbidden(_join(path, "lifecycle"), "may not be set for init containers"))
    else:
        _validate_probe(
            c.get("livenessProbe"), _join(path, "livenessProbe"), errs, success_must_be_one=True
        )
        _validate_probe(
            c.get("startupProbe"), _join(path, "startupProbe"), errs, success_must_be_one=True
        )
        _validate_probe(
            c.get("readinessProbe"), _join(path, "readinessProbe"), errs, success_must_be_one=False
        )
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            _validate_handler_ports(_d(c.get(probe)), _join(path, probe), errs)
        lifecycle = _d(c.get("lifecycle"))
        for hook in ("postStart", "preStop"):
            handler = lifecycle.get(hook)
            if isinstance(handler, dict):
                _one_of(
                    handler, _LIFECYCLE_HANDLERS, f"{path}.lifecycle.{hook}", errs, "handler type"
                )
                _validate_handler_ports(handler, f"{path}.lifecycle.{hook}", errs)
    sc = _d(c.get("securityContext"))
    if sc.get("privileged") is True and sc.get("allowPrivilegeEscalation") is False:
        errs.append(
            invalid(
                f"{path}.securityContext",
                sc,
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            )
        )
    if c.get("stdinOnce") and not c.get("stdin"):
        errs.append(invalid(_join(path, "stdinOnce"), True, "requires `stdin` to be true"))


def _validate_volumes(volumes: Any, path: str, errs: list[FieldError]) -> set[str]:
    names: set[str] = set()
    for i, vol in _dicts(volumes):
        vpath = f"{path}[{i}]"
        name = vol.get("name")
        if isinstance(name, str) and name:
            if name in names:
                errs.append(duplicate(_join(vpath, "name"), name))
            names.add(name)
        _one_of(vol, _VOLUME_SOURCES, vpath, errs, "volume type")
        for src_name in ("downwardAPI",):
            for j, item in _dicts(_d(vol.get(src_name)).get("items")):
                ipath = f"{vpath}.{src_name}.items[{j}]"
                _one_of(
                    item,
                    ("fieldRef", "resourceFieldRef"),
                    ipath,
                    errs,
                    "source (fieldRef or resourceFieldRef)",
                )
                if isinstance(item.get("fieldRef"), dict):
                    _validate_field_ref(item["fieldRef"], _join(ipath, "fieldRef"), errs, env=False)
        for j, source in _dicts(_d(vol.get("projected")).get("sources")):
            _one_of(
                source,
                ("configMap", "secret", "downwardAPI"),
                f"{vpath}.projected.sources[{j}]",
                errs,
                "projection source",
            )
    return names


_NODE_SELECTOR_OPS_WITH_VALUES = ("In", "NotIn")


def _validate_node_selector_term(term: dict, path: str, errs: list[FieldError]) -> None:
    for kind in ("matchExpressions", "matchFields"):
        for i, req in _dicts(term.get(kind)):
            rpath = f"{path}.{kind}[{i}]"
            op, values = req.get("operator"), _l(req.get("values"))
            if op in _NODE_SELECTOR_OPS_WITH_VALUES and not values:
                errs.append(
                    required(
                        _join(rpath, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    )
                )
            elif op in ("Exists", "DoesNotExist") and values:
                errs.append(
                    forbidden(
                        _join(rpath, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
            elif op in ("Gt", "Lt"):
                if len(values) != 1 or not (
                    isinstance(values[0], str) and values[0].lstrip("-").isdigit()
                ):
                    errs.append(
                        required(
                            _join(rpath, "values"),
                            "must be specified single value when `operator` is 'Lt' or 'Gt'",
                        )
                    )
            key = req.get("key")
            if kind == "matchExpressions" and isinstance(key, str) and key:
                for msg in qualified_name_errors(key):
                    errs.append(invalid(_join(rpath, "key"), key, msg))
            if kind == "matchFields" and key not in (None, "metadata.name"):
                errs.append(not_supported(_join(rpath, "key"), key, ["metadata.name"]))


def _validate_tolerations(tolerations: Any, path: str, errs: list[FieldError]) -> None:
    for i, t in _dicts(tolerations):
        tpath = f"{path}[{i}]"
        op = t.get("operator") or "Equal"
        if not t.get("key") and op != "Exists":
            errs.append(
                invalid(
                    _join(tpath, "operator"),
                    op,
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
        if op == "Exists" and t.get("value"):
            errs.append(
                invalid(
                    _join(tpath, "operator"),
                    t.get("value"),
                    "value must be empty when `operator` is 'Exists'",
                )
            )
        if t.get("tolerationSeconds") is not None and t.get("effect") != "NoExecute":
            errs.append(
                invalid(
                    _join(tpath, "effect"),
                    t.get("effect"),
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )


def validate_pod_spec(
    spec: Any,
    path: str,
    errs: list[FieldError],
    *,
    restart_policies: tuple[str, ...] | None = None,
) -> None:
    """Pod spec rules a schema cannot say; `restart_policies` narrows restartPolicy (workloads)."""
    spec = _d(spec)
    if not spec:
        return
    volume_names = _validate_volumes(spec.get("volumes"), _join(path, "volumes"), errs)
    host_network = spec.get("hostNetwork") is True
    host_ports: set[tuple[int, str, str]] = set()
    port_names: set[str] = set()
    container_names: set[str] = set()
    for key, init in (("initContainers", True), ("containers", False)):
        for i, c in _dicts(spec.get(key)):
            cpath = f"{path}.{key}[{i}]"
            name = c.get("name")
            if isinstance(name, str) and name:
                if name in container_names:
                    errs.append(duplicate(_join(cpath, "name"), name))
                container_names.add(name)
            _validate_container(
                c, cpath, errs, volume_names, host_network, host_ports, port_names, init=init
            )
    rp = spec.get("restartPolicy")
    if restart_policies is not None:
        if rp is None or rp == "":
            if "Always" not in restart_policies:  # an empty one is defaulted to Always
                errs.append(
                    required(
                        _join(path, "restartPolicy"),
                        "supported values: " + ", ".join(json.dumps(p) for p in restart_policies),
                    )
                )
        elif rp not in restart_policies:
            errs.append(not_supported(_join(path, "restartPolicy"), rp, restart_policies))
    if spec.get("dnsPolicy") == "None":
        if not _l(_d(spec.get("dnsConfig")).get("nameservers")):
            errs.append(
                required(
                    f"{path}.dnsConfig.nameservers",
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                )
            )
    dns_config = _d(spec.get("dnsConfig"))
    if len(_l(dns_config.get("nameservers"))) > 3:
        errs.append(
            invalid(
                f"{path}.dnsConfig.nameservers",
                dns_config["nameservers"],
                "must not have more than 3 nameservers",
            )
        )
    if len(_l(dns_config.get("searches"))) > 32:
        errs.append(
            invalid(
                f"{path}.dnsConfig.searches",
                dns_config["searches"],
                "must not have more than 32 search paths",
            )
        )
    node_affinity = _d(_d(spec.get("affinity")).get("nodeAffinity"))
    req = _d(node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"))
    for i, term in _dicts(req.get("nodeSelectorTerms")):
        _validate_node_selector_term(
            term,
            f"{path}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{i}]",
            errs,
        )
    for i, pref in _dicts(node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution")):
        _validate_node_selector_term(
            _d(pref.get("preference")),
            f"{path}.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}].preference",
            errs,
        )
    _validate_tolerations(spec.get("tolerations"), _join(path, "tolerations"), errs)
    class_name, priority = spec.get("priorityClassName"), spec.get("priority")
    if class_name in BUILTIN_PRIORITY_CLASSES and _is_int(priority):
        if priority != BUILTIN_PRIORITY_CLASSES[class_name]:
            errs.append(
                invalid(
                    _join(path, "priority"),
                    priority,
                    f"must be {BUILTIN_PRIORITY_CLASSES[class_name]}, the value of "
                    f"priorityClassName {class_name}, or left out",
                )
            )
    sa, san = spec.get("serviceAccount"), spec.get("serviceAccountName")
    if sa and san and sa != san:
        errs.append(
            invalid(
                _join(path, "serviceAccount"),
                sa,
                "must match `serviceAccountName` when both are set",
            )
        )


# --- workloads ------------------------------------------------------------------------------


def selector_matches(selector: dict, labels: dict) -> bool:
    """Does a LabelSelector (matchLabels + matchExpressions) select these labels?"""
    for k, v in _d(selector.get("matchLabels")).items():
        if labels.get(k) != v:
            return False
    for req in _l(selector.get("matchExpressions")):
        req = _d(req)
        key, op, values = req.get("key"), req.get("operator"), _l(req.get("values"))
        present = key in labels
        if op == "In" and (not present or labels[key] not in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _validate_label_selector(selector: dict, path: str, errs: list[FieldError]) -> None:
    for i, req in _dicts(selector.get("matchExpressions")):
        op, values = req.get("operator"), _l(req.get("values"))
        rpath = f"{path}.matchExpressions[{i}].values"
        if op in ("In", "NotIn") and not values:
            errs.append(required(rpath, "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist") and values:
            errs.append(
                forbidden(
                    rpath, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                )
            )


def _validate_selector_and_template(
    spec: dict, path: str, errs: list[FieldError], what: str, *, selector_required: bool = True
) -> None:
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        return  # required / type error already reported
    spath = _join(path, "selector")
    _validate_label_selector(selector, spath, errs)
    if not _d(selector.get("matchLabels")) and not _l(selector.get("matchExpressions")):
        if selector_required:
            errs.append(invalid(spath, selector, f"empty selector is invalid for {what}"))
        return
    template = _d(spec.get("template"))
    labels = _d(_d(template.get("metadata")).get("labels"))
    if template and not selector_matches(selector, labels):
        errs.append(
            invalid(
                f"{path}.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        )


def _validate_deployment(obj: dict, errs: list[FieldError]) -> None:
    spec = _d(obj.get("spec"))
    _validate_selector_and_template(spec, "spec", errs, "deployment")
    validate_pod_spec(
        _d(spec.get("template")).get("spec"),
        "spec.template.spec",
        errs,
        restart_policies=_ALWAYS_ONLY,
    )
    strategy = _d(spec.get("strategy"))
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "Recreate" and rolling is not None:
        errs.append(
            forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'",
            )
        )
    elif isinstance(rolling, dict):
        _validate_surge_unavailable(rolling, "spec.strategy.rollingUpdate", errs)
    pds, mrs = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
    if _is_int(pds) and _is_int(mrs) and pds <= mrs:
        errs.append(
            invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds")
        )


def _validate_surge_unavailable(rolling: dict, path: str, errs: list[FieldError]) -> None:
    for key in ("maxSurge", "maxUnavailable"):
        if rolling.get(key) is not None:
            for msg in int_or_percent_errors(rolling[key]):
                errs.append(invalid(_join(path, key), rolling[key], msg))
    surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
    if surge is not None and unavailable is not None:
        if _is_zero_int_or_percent(surge) and _is_zero_int_or_percent(unavailable):
            errs.append(
                invalid(
                    _join(path, "maxUnavailable"), unavailable, "may not be 0 when `maxSurge` is 0"
                )
            )


def _validate_replica_set(obj: dict, errs: list[FieldError]) -> None:
    spec = _d(obj.get("spec"))
    _validate_selector_and_template(spec, "spec", errs, "replicaset")
    template = spec.get("template")
    if isinstance(template, dict):
        validate_pod_spec(
            template.get("spec"), "spec.template.spec", errs, restart_policies=_ALWAYS_ONLY
        )
    elif _is_int(spec.get("replicas")) and spec["replicas"] > 0:
        errs.append(
            required("spec.template", "must be specified when `replicas` is greater than 0")
        )


def _validate_daemon_set(obj: dict, errs: list[FieldError]) -> None:
    spec = _d(obj.get("spec"))
    _validate_selector_and_template(spec, "spec", errs, "daemonset")
    validate_pod_spec(
        _d(spec.get("template")).get("spec"),
        "spec.template.spec",
        errs,
        restart_policies=_ALWAYS_ONLY,
    )
    strategy = _d(spec.get("updateStrategy"))
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "OnDelete" and rolling is not None:
        errs.append(
            forbidden(
                "spec.updateStrategy.rollingUpdate",
                "may not be specified when strategy `type` is 'OnDelete'",
            )
        )
    elif isinstance(rolling, dict):
        _validate_surge_unavailable(rolling, "spec.updateStrategy.rollingUpdate", errs)
        surge = rolling.get("maxSurge")
        if surge is not None and not _is_zero_int_or_percent(surge):
            errs.append(
                invalid(
                    "spec.updateStrategy.rollingUpdate.maxSurge",
                    surge,
                    "must be 0: Ketch's daemonset controller replaces pods without surge",
                )
            )


def _validate_job(obj: dict, errs: list[FieldError]) -> None:
    spec = _d(obj.get("spec"))
    manual = spec.get("manualSelector") is True
    if manual and spec.get("selector") is None:
        errs.append(required("spec.selector", "must be set when `manualSelector` is true"))
    _validate_selector_and_template(spec, "spec", errs, "job", selector_required=manual)
    validate_pod_spec(
        _d(spec.get("template")).get("spec"),
        "spec.template.spec",
        errs,
        restart_policies=("OnFailure", "Never"),
    )


# --- services and others -----------------------------------------------------------------------


def _validate_service(obj: dict, errs: list[FieldError]) -> None:
    spec = _d(obj.get("spec"))
    svc_type = spec.get("type") or "ClusterIP"
    cluster_ip = spec.get("clusterIP")
    headless = cluster_ip == "None"
    ports = _dicts(spec.get("ports"))
    if not ports and not headless:
        errs.append(required("spec.ports"))
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    node_ports: set[tuple[int, str]] = set()
    for i, port in ports:
        ppath = f"spec.ports[{i}]"
        name = port.get("name")
        if len(ports) > 1 and not name:
            errs.append(required(_join(ppath, "name")))
        if isinstance(name, str) and name:
            if name in names:
                errs.append(duplicate(_join(ppath, "name"), name))
            names.add(name)
        proto = port.get("protocol") or "TCP"
        p = port.get("port")
        if _is_int(p):
            if (p, proto) in seen:
                errs.append(duplicate(ppath, {"port": p, "protocol": proto}))
            seen.add((p, proto))
        if "targetPort" in port and port["targetPort"] is not None:
            _validate_port_ref(port["targetPort"], _join(ppath, "targetPort"), errs)
        np = port.get("nodePort")
        if np:
            if svc_type != "NodePort":
                errs.append(
                    forbidden(
                        _join(ppath, "nodePort"), f"may not be used when `type` is '{svc_type}'"
                    )
                )
            elif _is_int(np):
                if (np, proto) in node_ports:
                    errs.append(duplicate(_join(ppath, "nodePort"), np))
                node_ports.add((np, proto))
    if isinstance(cluster_ip, str) and cluster_ip and not headless:
        for msg in ip_errors(cluster_ip):
            errs.append(
                invalid("spec.clusterIP", cluster_ip, msg + ' or "None" for a headless service')
            )
    if headless and svc_type == "NodePort":
        errs.append(
            invalid("spec.clusterIP", cluster_ip, "may not be set to 'None' for NodePort services")
        )
    cluster_ips = _l(spec.get("clusterIPs"))
    if cluster_ips and cluster_ip and cluster_ips[0] != cluster_ip:
        errs.append(invalid("spec.clusterIPs[0]", cluster_ips[0], "must be same as `clusterIP`"))
    for i, ip in enumerate(cluster_ips):
        if isinstance(ip, str) and ip and ip != "None":
            for msg in ip_errors(ip):
                errs.append(invalid(f"spec.clusterIPs[{i}]", ip, msg))
    for i, ip in enumerate(cluster_ips[1:], start=1):
        errs.append(
            invalid(
                f"spec.clusterIPs[{i}]",
                ip,
                "Ketch services are single-stack IPv4: at most one cluster IP",
            )
        )
    if spec.get("sessionAffinityConfig") is not None and spec.get("sessionAffinity") != "ClientIP":
        errs.append(
            forbidden(
                "spec.sessionAffinityConfig", "must not be set when `sessionAffinity` is None"
            )
        )
    if spec.get("externalTrafficPolicy") and svc_type != "NodePort":
        errs.append(
            invalid(
                "spec.externalTrafficPolicy",
                spec["externalTrafficPolicy"],
                "may only be set when `type` is 'NodePort'",
            )
        )
    if spec.get("ipFamilyPolicy") in ("PreferDualStack", "RequireDualStack"):
        errs.append(not_supported("spec.ipFamilyPolicy", spec["ipFamilyPolicy"], ["SingleStack"]))


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}
_DATA_MAX_BYTES = 1024 * 1024


def _validate_config_data(obj: dict, data_keys: tuple[str, ...], errs: list[FieldError]) -> None:
    seen: set[str] = set()
    total = 0
    for field in data_keys:
        for key, value in _d(obj.get(field)).items():
            if key in seen:
                errs.append(
                    invalid(f"{field}[{key}]", key, "duplicate of key present in " + data_keys[0])
                )
            seen.add(key)
            total += len(value) if isinstance(value, str) else 0
    if total > _DATA_MAX_BYTES:
        errs.append(
            FieldError(TOO_LONG, "", f"Too long: must have at most {_DATA_MAX_BYTES} bytes")
        )


def _validate_config_map(obj: dict, errs: list[FieldError]) -> None:
    _validate_config_data(obj, ("data", "binaryData"), errs)


def _validate_secret(obj: dict, errs: list[FieldError]) -> None:
    data = _d(obj.get("data"))
    _validate_config_data(obj, ("data",), errs)
    for key in _SECRET_REQUIRED_KEYS.get(obj.get("type") or "Opaque", ()):
        if key not in data and key not in _d(obj.get("stringData")):
            errs.append(required(f"data[{key}]"))
    if obj.get("type") == "kubernetes.io/basic-auth" and not (
        {"username", "password"} & (data.keys() | _d(obj.get("stringData")).keys())
    ):
        errs.append(required("data[username]", "either username or password is required"))


def _validate_node(obj: dict, errs: list[FieldError]) -> None:
    spec = _d(obj.get("spec"))
    seen: set[tuple[str, str]] = set()
    for i, taint in _dicts(spec.get("taints")):
        key = (taint.get("key"), taint.get("effect"))
        if key in seen:
            errs.append(duplicate(f"spec.taints[{i}]", {"key": key[0], "effect": key[1]}))
        seen.add(key)
    pod_cidrs = _l(spec.get("podCIDRs"))
    if spec.get("podCIDR") and pod_cidrs and pod_cidrs[0] != spec["podCIDR"]:
        errs.append(invalid("spec.podCIDRs[0]", pod_cidrs[0], "must match `podCIDR`"))


def _validate_pod(obj: dict, errs: list[FieldError]) -> None:
    validate_pod_spec(obj.get("spec"), "spec", errs)


def _validate_event(obj: dict, errs: list[FieldError]) -> None:
    involved = _d(obj.get("involvedObject"))
    ns = _d(obj.get("metadata")).get("namespace")
    ins = involved.get("namespace")
    if ins and ns and ins != ns:
        errs.append(invalid("involvedObject.namespace", ins, "does not match event.namespace"))


_KIND_RULES: dict[tuple[str, str], Callable[[dict, list[FieldError]], None]] = {
    ("v1", "Pod"): _validate_pod,
    ("v1", "Service"): _validate_service,
    ("v1", "ConfigMap"): _validate_config_map,
    ("v1", "Secret"): _validate_secret,
    ("v1", "Node"): _validate_node,
    ("v1", "Event"): _validate_event,
    ("apps/v1", "Deployment"): _validate_deployment,
    ("apps/v1", "ReplicaSet"): _validate_replica_set,
    ("apps/v1", "DaemonSet"): _validate_daemon_set,
    ("batch/v1", "Job"): _validate_job,
}


# --- updates: immutable fields --------------------------------------------------------------


def _immutable(path: str, new: Any, old: Any, errs: list[FieldError]) -> None:
    if new != old:
        errs.append(invalid(path, new, "field is immutable"))


def _update_selector(obj: dict, old: dict, errs: list[FieldError]) -> None:
    _immutable(
        "spec.selector",
        _d(obj.get("spec")).get("selector"),
        _d(old.get("spec")).get("selector"),
        errs,
    )


_POD_UPDATE_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _without_mutable_pod_fields(spec: dict) -> dict:
    out = dict(spec)
    for key in ("containers", "initContainers"):
        if isinstance(out.get(key), list):
            out[key] = [
                {k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c
                for c in out[key]
            ]
    for key in ("activeDeadlineSeconds", "tolerations", "nodeName"):
        out.pop(key, None)
    return out


def _update_pod(obj: dict, old: dict, errs: list[FieldError]) -> None:
    spec, old_spec = _d(obj.get("spec")), _d(old.get("spec"))
    if _without_mutable_pod_fields(spec) != _without_mutable_pod_fields(old_spec):
        errs.append(forbidden("spec", _POD_UPDATE_MESSAGE))
    # nodeName: may be set once (binding), never changed afterwards.
    old_node, new_node = old_spec.get("nodeName"), spec.get("nodeName")
    if old_node and new_node != old_node:
        errs.append(invalid("spec.nodeName", new_node, "field is immutable once the pod is bound"))
    # activeDeadlineSeconds: may be set or decreased, never removed or increased.
    old_ads, ads = old_spec.get("activeDeadlineSeconds"), spec.get("activeDeadlineSeconds")
    if _is_int(old_ads) and (ads is None or (_is_int(ads) and ads > old_ads)):
        errs.append(
            invalid(
                "spec.activeDeadlineSeconds",
                ads,
                "must be less than or equal to the previous value and not removed",
            )
        )
    # tolerations: only additions.
    new_tols = _l(spec.get("tolerations"))
    for t in _l(old_spec.get("tolerations")):
        if t not in new_tols:
            errs.append(
                forbidden(
                    "spec.tolerations",
                    f"existing toleration {go_repr(t)} may not be removed or changed (only additions)",
                )
            )
            break


def _update_service(obj: dict, old: dict, errs: list[FieldError]) -> None:
    spec, old_spec = _d(obj.get("spec")), _d(old.get("spec"))
    old_ip, new_ip = old_spec.get("clusterIP"), spec.get("clusterIP")
    # An empty clusterIP on update means "keep the allocated one" (the apiserver copies it).
    if old_ip and new_ip and new_ip != old_ip:
        errs.append(invalid("spec.clusterIP", new_ip, "field is immutable"))
    old_ips, new_ips = old_spec.get("clusterIPs"), spec.get("clusterIPs")
    if old_ips and new_ips and new_ips != old_ips:
        errs.append(invalid("spec.clusterIPs", new_ips, "field is immutable"))


def _update_immutable_data(
    obj: dict, old: dict, errs: list[FieldError], data_keys: tuple[str, ...]
) -> None:
    if old.get("immutable") is not True:
        return
    if obj.get("immutable") is not True:
        errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    for key in data_keys:
        if (obj.get(key) or {}) != (old.get(key) or {}):
            errs.append(forbidden(key, "field is immutable when `immutable` is set"))


def _update_config_map(obj: dict, old: dict, errs: list[FieldError]) -> None:
    _update_immutable_data(obj, old, errs, ("data", "binaryData"))


def _update_secret(obj: dict, old: dict, errs: list[FieldError]) -> None:
    _update_immutable_data(obj, old, errs, ("data",))
    if (obj.get("type") or "Opaque") != (old.get("type") or "Opaque"):
        errs.append(invalid("type", obj.get("type"), "field is immutable"))


def _update_job(obj: dict, old: dict, errs: list[FieldError]) -> None:
    spec, old_spec = _d(obj.get("spec")), _d(old.get("spec"))
    _update_selector(obj, old, errs)
    _immutable(
        "spec.completionMode", spec.get("completionMode"), old_spec.get("completionMode"), errs
    )
    if spec.get("completionMode") != "Indexed":
        _immutable("spec.completions", spec.get("completions"), old_spec.get("completions"), errs)
    if old_spec.get("suspend") is not True:
        _immutable("spec.template", spec.get("template"), old_spec.get("template"), errs)


def _update_node(obj: dict, old: dict, errs: list[FieldError]) -> None:
    spec, old_spec = _d(obj.get("spec")), _d(old.get("spec"))
    for key in ("podCIDR", "podCIDRs"):
        if old_spec.get(key) and spec.get(key) != old_spec.get(key):
            errs.append(
                forbidden(
                    f"spec.{key}", 'node updates may not change podCIDR except from "" to valid'
                )
            )


_UPDATE_RULES: dict[tuple[str, str], Callable[[dict, dict, list[FieldError]], None]] = {
    ("v1", "Pod"): _update_pod,
    ("v1", "Service"): _update_service,
    ("v1", "ConfigMap"): _update_config_map,
    ("v1", "Secret"): _update_secret,
    ("v1", "Node"): _update_node,
    ("apps/v1", "Deployment"): _update_selector,
    ("apps/v1", "ReplicaSet"): _update_selector,
    ("apps/v1", "DaemonSet"): _update_selector,
    ("batch/v1", "Job"): _update_job,
}


# --- entry points ---------------------------------------------------------------------------


def validate_object(info: ResourceInfo, obj: dict, *, old: dict | None = None) -> list[FieldError]:
    """Every reason `obj` is not a valid `info.kind`; empty when it is.

    Unknown fields anywhere, wrong types, missing required fields, names,
    labels and annotations, kind rules, and - with `old` - immutable fields.
    Server-owned fields (status, uid, resourceVersion, ...) are accepted.
    """
    if not isinstance(obj, dict):
        return [type_invalid("", obj, "an object")]
    errs: list[FieldError] = []
    _walk_object(schema_for(info), obj, "", errs)
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version not in (None, "") and api_version != info.api_version:
        errs.append(not_supported("apiVersion", api_version, [info.api_version]))
    if kind not in (None, "") and kind != info.kind:
        errs.append(not_supported("kind", kind, [info.kind]))
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        _validate_metadata(info, meta, "metadata", errs)
    else:
        errs.append(required("metadata.name", "name or generateName is required"))
    key = (info.api_version, info.kind)
    rule = _KIND_RULES.get(key)
    if rule is not None:
        rule(obj, errs)
    if old is not None:
        update_rule = _UPDATE_RULES.get(key)
        if update_rule is not None and isinstance(old, dict):
            update_rule(obj, old, errs)
    return errs


def validate_body(api_version: str, kind: str, obj: Any) -> list[FieldError]:
    """Schema check of a subresource body (autoscaling/v1 Scale, v1 Binding, DeleteOptions)."""
    node = kind_schema(api_version, kind)
    if node is None:
        return [not_supported("kind", kind, [])]
    errs = validate_against(node, obj)
    if kind == "Binding" and isinstance(obj, dict):
        target = _d(obj.get("target"))
        if target and not target.get("name"):
            errs.append(required("target.name"))
        if target.get("kind") not in (None, "", "Node"):
            errs.append(not_supported("target.kind", target.get("kind"), ["Node"]))
    return errs
