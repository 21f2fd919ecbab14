"""Label and field selectors with Kubernetes' syntax, validation and matching.

Label selectors (k8s.io/apimachinery/pkg/labels): `a=b`, `a==b`, `a!=b`,
`a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, commas meaning AND; or
a LabelSelector object (matchLabels + matchExpressions). Field selectors
(k8s.io/apimachinery/pkg/fields): `k=v`, `k==v`, `k!=v`, commas meaning AND,
with `\\,` `\\=` `\\\\` escapes; the keys a kind supports are those
kube-apiserver supports, so an unknown key fails the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class SelectorError(ValueError):
    """A selector that does not parse or names something not supported."""


class _ResourceLike(Protocol):
    group: str
    kind: str
    namespaced: bool


# --- names and values ------------------------------------------------------------

_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def label_key_errors(key: str) -> list[str]:
    """Why `key` is not a qualified name (`[prefix/]name`), as Kubernetes words it; [] if valid."""
    parts = key.split("/")
    if len(parts) == 1:
        prefix, name = "", parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            "'123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')"
        ]
    errs: list[str] = []
    if prefix:
        if len(prefix) > 253:
            errs.append("prefix part must be no more than 253 characters")
        if not _DNS1123_SUBDOMAIN.fullmatch(prefix):
            errs.append(
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                "character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            )
    if not name:
        errs.append("name part must be non-empty")
    else:
        if len(name) > 63:
            errs.append("name part must be no more than 63 characters")
        if not _NAME_PART.fullmatch(name):
            errs.append(_NAME_PART_MSG)
    return errs


def label_value_errors(value: str) -> list[str]:
    """Why `value` is not a valid label value; [] if valid."""
    errs: list[str] = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if value and not _NAME_PART.fullmatch(value):
        errs.append(_LABEL_VALUE_MSG)
    return errs


def _check_key(key: str) -> None:
    errs = label_key_errors(key)
    if errs:
        raise SelectorError(f'key: Invalid value: "{key}": {"; ".join(errs)}')


def _check_value(key: str, index: int, value: str) -> None:
    errs = label_value_errors(value)
    if errs:
        raise SelectorError(f'values[{index}][{key}]: Invalid value: "{value}": {"; ".join(errs)}')


# --- label selectors -------------------------------------------------------------

EXISTS = "exists"
DOES_NOT_EXIST = "!"
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_SET_OPERATORS = {IN, NOT_IN}
_EQUALITY_OPERATORS = {EQUALS, DOUBLE_EQUALS, NOT_EQUALS}


@dataclass(frozen=True)
class Requirement:
    """One condition on one label key; values are kept sorted, as Kubernetes does."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if self.key not in labels:
            return False
        try:
            have = int(labels[self.key])
        except ValueError:
            return False
        want = int(self.values[0])
        return have > want if op == GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return f"!{self.key}"
        if op in _SET_OPERATORS:
            return f"{self.key} {op} ({','.join(self.values)})"
        if op == GREATER_THAN:
            return f"{self.key}>{self.values[0]}"
        if op == LESS_THAN:
            return f"{self.key}<{self.values[0]}"
        return f"{self.key}{op}{self.values[0]}"


def new_requirement(key: str, operator: str, values: Iterable[str] = ()) -> Requirement:
    """A validated requirement (labels.NewRequirement)."""
    _check_key(key)
    vals = list(values)
    if operator in _SET_OPERATORS:
        if not vals:
            raise SelectorError(
                "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
            )
    elif operator in _EQUALITY_OPERATORS:
        if len(vals) != 1:
            raise SelectorError(
                f"values: Invalid value: {vals}: exact-match compatibility requires one single value"
            )
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if vals:
            raise SelectorError(
                f"values: Invalid value: {vals}: values set must be empty for exists and does not exist"
            )
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            raise SelectorError(
                f"values: Invalid value: {vals}: for 'Gt', 'Lt' operators, exactly one value is required"
            )
        if not re.fullmatch(r"-?[0-9]+", vals[0]):
            raise SelectorError(
                f"values[0]: Invalid value: \"{vals[0]}\": for 'Gt', 'Lt' operators, the value must be an integer"
            )
    else:
        raise SelectorError(f'operator: Unsupported value: "{operator}"')
    if operator not in (GREATER_THAN, LESS_THAN):
        for index, value in enumerate(vals):
            _check_value(key, index, value)
    return Requirement(key, operator, tuple(sorted(set(vals))))


class LabelSelector:
    """A conjunction of requirements; the empty selector matches everything."""

    __slots__ = ("requirements", "_nothing")

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        self.requirements: tuple[Requirement, ...] = tuple(
            sorted(requirements, key=lambda r: r.key)
        )
        self._nothing = nothing

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        """The selector of a nil LabelSelector: matches no object."""
        return cls(nothing=True)

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse the string syntax (`?labelSelector=`, `kubectl -l`); SelectorError if invalid."""
        if text is None or not text.strip():
            return cls()
        return cls(_LabelParser(text).parse())

    @classmethod
    def from_labels(cls, labels: Mapping[str, str] | None) -> LabelSelector:
        """`a=b` for every entry: a Service's or ReplicationController's map selector."""
        return cls(new_requirement(k, EQUALS, [v]) for k, v in (labels or {}).items())

    @classmethod
    def from_dict(cls, selector: Mapping[str, Any] | None) -> LabelSelector:
        """From a LabelSelector object; `None` matches nothing and `{}` everything, like Kubernetes."""
        if selector is None:
            return cls.nothing()
        reqs: list[Requirement] = []
        for key, value in (selector.get("matchLabels") or {}).items():
            reqs.append(new_requirement(key, EQUALS, [value]))
        for expr in selector.get("matchExpressions") or ():
            operator = expr.get("operator")
            values = expr.get("values") or []
            mapped = {
                "In": IN,
                "NotIn": NOT_IN,
                "Exists": EXISTS,
                "DoesNotExist": DOES_NOT_EXIST,
            }.get(operator)
            if mapped is None:
                raise SelectorError(f'"{operator}" is not a valid label selector operator')
            reqs.append(new_requirement(expr.get("key", ""), mapped, values))
        return cls(reqs)

    @property
    def empty(self) -> bool:
        """True when the selector matches everything."""
        return not self.requirements and not self._nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        labels = labels or {}
        return all(req.matches(labels) for req in self.requirements)

    def exact_labels(self) -> dict[str, str]:
        """Keys the selector pins to one value (`a=b`, `a in (b)`): useful for indexing."""
        out = {}
        for req in self.requirements:
            if req.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(req.values) == 1:
                out[req.key] = req.values[0]
        return out

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"LabelSelector({str(self)!r})" if not self._nothing else "LabelSelector(<nothing>)"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, LabelSelector)
            and self.requirements == other.requirements
            and self._nothing == other._nothing
        )

    def __hash__(self) -> int:
        return hash((self.requirements, self._nothing))


_SPECIALS = "=!(),<>"


class _LabelParser:
    """Tokeniser and recursive-descent parser of the label selector string syntax."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._lex(text)
        self.pos = 0

    @staticmethod
    def _lex(text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            if ch.isspace():
                i += 1
                continue
            if ch in _SPECIALS:
                two = text[i : i + 2]
                if two in ("==", "!="):
                    tokens.append((two, two))
                    i += 2
                else:
                    tokens.append((ch, ch))
                    i += 1
                continue
            start = i
            while i < n and not text[i].isspace() and text[i] not in _SPECIALS:
                i += 1
            word = text[start:i]
            kind = word if word in (IN, NOT_IN) else "id"
            tokens.append((kind, word))
        tokens.append(("eof", ""))
        return tokens

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.pos]

    def _next(self) -> tuple[str, str]:
        tok = self.tokens[self.pos]
        if tok[0] != "eof":
            self.pos += 1
        return tok

    def _fail(self, found: tuple[str, str], expected: str) -> SelectorError:
        shown = found[1] if found[0] != "eof" else "EOS"
        return SelectorError(f"unable to parse requirement: found '{shown}', expected: {expected}")

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            kind, _ = self._peek()
            if kind in ("id", "!", IN, NOT_IN):
                reqs.append(self._requirement())
                kind, _ = self._next()
                if kind == "eof":
                    return reqs
                if kind != ",":
                    raise self._fail(self.tokens[self.pos - 1], "',' or 'end of string'")
                if self._peek()[0] == "eof":
                    raise self._fail(self._peek(), "identifier after ','")
            elif kind == "eof":
                return reqs
            else:
                raise self._fail(self._peek(), "'!', identifier, or 'end of string'")

    def _requirement(self) -> Requirement:
        negate = False
        if self._peek()[0] == "!":
            self._next()
            negate = True
        kind, key = self._next()
        if kind != "id":
            raise self._fail((kind, key), "identifier")
        try:
            _check_key(key)
        except SelectorError as exc:
            raise SelectorError(f"unable to parse requirement: {exc}") from None
        following = self._peek()[0]
        if negate or following in ("eof", ","):
            if negate and following not in ("eof", ","):
                raise self._fail(self._peek(), "',' or 'end of string'")
            return new_requirement(key, DOES_NOT_EXIST if negate else EXISTS)
        op_kind, _ = self._next()
        operator = {
            "=": EQUALS,
            "==": DOUBLE_EQUALS,
            "!=": NOT_EQUALS,
            IN: IN,
            NOT_IN: NOT_IN,
            ">": GREATER_THAN,
            "<": LESS_THAN,
        }.get(op_kind)
        if operator is None:
            raise self._fail(self.tokens[self.pos - 1], "=, !=, ==, in, notin, >, <")
        if operator in _SET_OPERATORS:
            values = self._value_set()
        else:
            values = [self._exact_value(operator)]
        try:
            return new_requirement(key, operator, values)
        except SelectorError as exc:
            raise SelectorError(f"unable to parse requirement: {exc}") from None

    def _exact_value(self, operator: str) -> str:
        kind, word = self._peek()
        if kind in ("eof", ","):
            if operator in (GREATER_THAN, LESS_THAN):
                raise self._fail(self._peek(), "identifier")
            return ""
        if kind in ("id", IN, NOT_IN):
            self._next()
            return word
        raise self._fail(self._peek(), "identifier")

    def _value_set(self) -> list[str]:
        kind, _ = self._next()
        if kind != "(":
            raise self._fail(self.tokens[self.pos - 1], "'('")
        values: list[str] = []
        expect_value = True
        while True:
            kind, word = self._next()
            if kind in ("id", IN, NOT_IN):
                if not expect_value:
                    raise self._fail((kind, word), "',' or ')'")
                values.append(word)
                expect_value = False
            elif kind == ",":
                if expect_value:
                    values.append("")
                expect_value = True
            elif kind == ")":
                if expect_value and values:
                    values.append("")
                if not values:
                    values.append("")
                return values
            else:
                raise self._fail((kind, word), "',', ')' or identifier")


# --- field selectors -------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    key: str
    operator: str  # "=" (also for "==") or "!="
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        have = fields.get(self.key, "")
        return have == self.value if self.operator == EQUALS else have != self.value

    def __str__(self) -> str:
        return f"{self.key}{self.operator}{escape_field_value(self.value)}"


def escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(value: str) -> str:
    if "\\" not in value:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence in {value!r}")
            out.append(value[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _split_term(term: str) -> tuple[str, str, str] | None:
    """(key, operator, raw value) at the first unescaped operator; `!=` and `==` before `=`."""
    i = 0
    while i < len(term):
        ch = term[i]
        if ch == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
        i += 1
    return None


class FieldSelector:
    """A conjunction of `key=value` / `key!=value` terms over an object's selectable fields."""

    __slots__ = ("requirements",)

    def __init__(self, requirements: Iterable[FieldRequirement] = ()) -> None:
        self.requirements: tuple[FieldRequirement, ...] = tuple(requirements)

    @classmethod
    def parse(cls, text: str | None) -> FieldSelector:
        if text is None or not text.strip():
            return cls()
        reqs = []
        # Sorted like Kubernetes' fields.ParseSelector, so the text form is canonical.
        for term in sorted(t for t in _split_unescaped(text, ",") if t):
            split = _split_term(term)
            if split is None:
                raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
            key, op, raw = split
            reqs.append(
                FieldRequirement(
                    key.strip(), NOT_EQUALS if op == "!=" else EQUALS, _unescape_field_value(raw)
                )
            )
        return cls(reqs)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def keys(self) -> set[str]:
        return {r.key for r in self.requirements}

    def exact(self, key: str) -> str | None:
        """The value `key` is required to equal, if any (`metadata.name=x` lets a server look up one key)."""
        for req in self.requirements:
            if req.key == key and req.operator == EQUALS:
                return req.value
        return None

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(req.matches(fields) for req in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"


# --- the selectable fields of each kind -------------------------------------------


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    node: Any = obj
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bool_text(value: Any) -> str:
    return "true" if value else "false"


def _int_text(value: Any) -> str:
    return str(int(value or 0))


_Extractor = Callable[[Mapping[str, Any]], str]


def _path(*path: str) -> _Extractor:
    return lambda obj: _text(_get(obj, *path))


def _pod_ip(pod: Mapping[str, Any]) -> str:
    """The first of status.podIPs, as Kubernetes selects on; status.podIP otherwise."""
    ips = _get(pod, "status", "podIPs")
    if isinstance(ips, list) and ips and isinstance(ips[0], Mapping) and ips[0].get("ip"):
        return str(ips[0]["ip"])
    return _text(_get(pod, "status", "podIP"))


_KIND_FIELDS: dict[tuple[str, str], dict[str, _Extractor]] = {
    ("", "Pod"): {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "spec.hostNetwork": lambda o: _bool_text(_get(o, "spec", "hostNetwork")),
        "status.phase": _path("status", "phase"),
        "status.podIP": lambda o: _pod_ip(o),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    ("", "Event"): {
        "involvedObject.kind": _path("involvedObject", "kind"),
        "involvedObject.namespace": _path("involvedObject", "namespace"),
        "involvedObject.name": _path("involvedObject", "name"),
        "involvedObject.uid": _path("involvedObject", "uid"),
        "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
    ("", "Secret"): {"type": _path("type")},
    ("", "Node"): {"spec.unschedulable": lambda o: _bool_text(_get(o, "spec", "unschedulable"))},
    ("", "Namespace"): {
        "status.phase": _path("status", "phase"),
        "name": _path("metadata", "name"),
    },
    ("batch", "Job"): {"status.successful": lambda o: _int_text(_get(o, "status", "succeeded"))},
    ("apps", "ReplicaSet"): {"status.replicas": lambda o: _int_text(_get(o, "status", "replicas"))},
}

_COMMON_KEYS = ("metadata.name", "metadata.namespace")


def supported_field_keys(info: _ResourceLike) -> set[str]:
    """The field selector keys kube-apiserver accepts for this kind."""
    return set(_COMMON_KEYS) | set(_KIND_FIELDS.get((info.group, info.kind), {}))


def object_fields(info: _ResourceLike, obj: Mapping[str, Any]) -> dict[str, str]:
    """The selectable fields of `obj` and their values (missing ones as "")."""
    meta = obj.get("metadata") or {}
    fields = {
        "metadata.name": _text(meta.get("name")),
        "metadata.namespace": _text(meta.get("namespace")) if info.namespaced else "",
    }
    for key, extract in _KIND_FIELDS.get((info.group, info.kind), {}).items():
        fields[key] = extract(obj)
    return fields


def check_field_selector(info: _ResourceLike, selector: FieldSelector) -> None:
    """SelectorError `field label not supported: foo` for a key this kind does not support."""
    supported = supported_field_keys(info)
    for req in selector.requirements:
        if req.key not in supported:
            raise SelectorError(f"field label not supported: {req.key}")


def field_selector_for(info: _ResourceLike, text: str | None) -> FieldSelector:
    """Parse and check against the kind in one step (what a list handler needs)."""
    selector = FieldSelector.parse(text)
    check_field_selector(info, selector)
    return selector


def matches_object(
    info: _ResourceLike,
    obj: Mapping[str, Any],
    labels: LabelSelector | None = None,
    fields: FieldSelector | None = None,
) -> bool:
    """Whether `obj` passes both selectors (either may be None)."""
    if labels is not None and not labels.empty:
        if not labels.matches((obj.get("metadata") or {}).get("labels") or {}):
            return False
    if fields is not None and not fields.empty:
        if not fields.matches(object_fields(info, obj)):
            return False
    return True
