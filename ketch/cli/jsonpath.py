"""The JSONPath templates of `-o jsonpath=...`, the subset kubectl users reach for.

Supported: literal text, `{.a.b}`, `{.a[0]}`, `{.a[-1]}`, `{.a[1:3]}`, `{.a[*].b}`,
`{.a['k.with.dots']}`, `{.*}`, `{..name}` (recursive), filters
`{.items[?(@.status.phase=="Running")]}` (==, !=, <, >, <=, >=, or a bare
existence test), `{range .items[*]}...{end}` and quoted literals `{"\\n"}`.
Like kubectl: several results of one expression are joined by a space, maps
and lists print as JSON, a missing field is an error unless inside a range or
filter (where it yields nothing).
"""

from __future__ import annotations

import json
import re


class JsonPathError(ValueError):
    pass


_WILDCARD = object()


def _split_template(template: str) -> list[tuple[str, str]]:
    """[("text", ...), ("expr", ...)] honouring quotes inside braces."""
    parts: list[tuple[str, str]] = []
    i, text = 0, ""
    while i < len(template):
        c = template[i]
        if c == "{":
            if text:
                parts.append(("text", text))
                text = ""
            j, quote = i + 1, ""
            while j < len(template):
                d = template[j]
                if quote:
                    if d == "\\":
                        j += 1
                    elif d == quote:
                        quote = ""
                elif d in "\"'":
                    quote = d
                elif d == "}":
                    break
                j += 1
            if j >= len(template):
                raise JsonPathError(f"unclosed action in template {template!r}")
            parts.append(("expr", template[i + 1:j].strip()))
            i = j + 1
            continue
        text += c
        i += 1
    if text:
        parts.append(("text", text))
    return parts


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<recursive>\.\.)(?P<rname>[A-Za-z0-9_\-$]+|\*)?
    | \.(?P<name>(?:[A-Za-z0-9_\-$/]|\\\.)+|\*)
    | \[\s*(?P<quoted>'[^']*'|"[^"]*")\s*\]
    | \[\s*\?\((?P<filter>[^\]]*)\)\s*\]
    | \[\s*(?P<index>[^\]]*)\]
    | (?P<root>[$@])
    | (?P<dot>\.)
    )""",
    re.VERBOSE,
)


def _parse_path(expr: str) -> list[tuple[str, object]]:
    steps: list[tuple[str, object]] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise JsonPathError(f"unrecognized identifier in {expr!r} at {expr[pos:]!r}")
        pos = m.end()
        if m.group("recursive"):
            steps.append(("recursive", m.group("rname") or "*"))
        elif m.group("name"):
            name = m.group("name").replace("\\.", ".")  # kubectl's escaped dots: a\.b
            steps.append(("field", _WILDCARD if name == "*" else name))
        elif m.group("quoted"):
            steps.append(("field", m.group("quoted")[1:-1]))
        elif m.group("filter") is not None:
            steps.append(("filter", m.group("filter").strip()))
        elif m.group("index") is not None:
            steps.append(("index", m.group("index").strip()))
    return steps


def _step(values: list[object], kind: str, arg: object, strict: bool) -> list[object]:
    out: list[object] = []
    for v in values:
        if kind == "field":
            if arg is _WILDCARD:
                if isinstance(v, dict):
                    out.extend(v.values())
                elif isinstance(v, list):
                    out.extend(v)
            elif isinstance(v, dict) and arg in v:
                out.append(v[arg])
            elif strict:
                raise JsonPathError(f"{arg} is not found")
        elif kind == "index":
            if not isinstance(v, list):
                if strict:
                    raise JsonPathError(f"{arg!r}: not an array")
                continue
            text = str(arg)
            if text == "*":
                out.extend(v)
            elif ":" in text:
                bounds = [int(b) if b.strip() else None for b in text.split(":")[:3]]
                out.extend(v[slice(*bounds)])
            else:
                try:
                    i = int(text)
                except ValueError:
                    raise JsonPathError(f"invalid array index {text!r}") from None
                if -len(v) <= i < len(v):
                    out.append(v[i])
                elif strict:
                    raise JsonPathError(f"array index out of bounds: index {i}, length {len(v)}")
        elif kind == "filter":
            items = v if isinstance(v, list) else [v]
            out.extend(item for item in items if _filter_matches(item, str(arg)))
        elif kind == "recursive":
            out.extend(_descend(v, arg))
    return out


def _descend(value: object, name: object) -> list[object]:
    found: list[object] = []
    if isinstance(value, dict):
        if name == "*":
            found.extend(value.values())
        elif name in value:
            found.append(value[name])
        for child in value.values():
            found.extend(_descend(child, name))
    elif isinstance(value, list):
        for child in value:
            found.extend(_descend(child, name))
    return found


_COMPARISON = re.compile(r"^(?P<left>@[^=!<>]*?)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<right>.+)$")


def _literal(text: str) -> object:
    text = text.strip()
    if text[:1] in "\"'" and text[-1:] == text[:1]:
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        return text


def _filter_matches(item: object, expr: str) -> bool:
    m = _COMPARISON.match(expr)
    if not m:
        return bool(evaluate_path(expr, item, strict=False))
    left = evaluate_path(m.group("left"), item, strict=False)
    if not left:
        return False
    a, b, op = left[0], _literal(m.group("right")), m.group("op")
    try:
        return {"==": a == b, "!=": a != b}[op] if op in ("==", "!=") else {
            "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    except TypeError:
        return False


def evaluate_path(expr: str, current: object, *, strict: bool = True) -> list[object]:
    values = [current]
    for kind, arg in _parse_path(expr):
        values = _step(values, kind, arg, strict)
    return values


def _format(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _unquote(expr: str) -> str:
    body = expr[1:-1]
    return body.encode("latin-1", "backslashreplace").decode("unicode_escape") if expr[0] == '"' else body


def _render(parts: list[tuple[str, str]], current: object, strict: bool) -> str:
    out: list[str] = []
    i = 0
    while i < len(parts):
        kind, value = parts[i]
        if kind == "text":
            out.append(value)
        elif value.startswith("range ") or value == "range":
            depth, j = 1, i + 1
            while j < len(parts):
                if parts[j][0] == "expr":
                    if parts[j][1].startswith("range"):
                        depth += 1
                    elif parts[j][1] == "end":
                        depth -= 1
                        if depth == 0:
                            break
                j += 1
            if j >= len(parts):
                raise JsonPathError("range without a matching {end}")
            body = parts[i + 1:j]
            for item in evaluate_path(value[5:].strip(), current, strict=False):
                out.append(_render(body, item, strict=False))
            i = j
        elif value == "end":
            raise JsonPathError("{end} without a range")
        elif value[:1] in "\"'" and value[-1:] == value[:1] and len(value) >= 2:
            out.append(_unquote(value))
        else:
            results = evaluate_path(value, current, strict=strict)
            out.append(" ".join(_format(r) for r in results))
        i += 1
    return "".join(out)


def render(template: str, data: object) -> str:
    """Apply a kubectl JSONPath template to an object (or a List)."""
    return _render(_split_template(template), data, strict=True)
