"""Machine-readable output: `-o yaml|json|name|jsonpath=...` as kubectl writes it."""

from __future__ import annotations

import json

from ketch.cli.discovery import ApiResource
from ketch.cli.errors import CommandError

STRUCTURED = ("yaml", "json", "name")


_DUMPER = None


def _kubectl_dumper():
    """SafeDumper that double-quotes strings needing quotes ("8080", "2026-...Z"), as kubectl does."""
    global _DUMPER
    if _DUMPER is None:
        import yaml

        class KubectlDumper(yaml.SafeDumper):
            def choose_scalar_style(self):
                style = super().choose_scalar_style()
                return '"' if style == "'" else style

        def literal_multiline(dumper, data: str):
            style = "|" if "\n" in data else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

        KubectlDumper.add_representer(str, literal_multiline)
        _DUMPER = KubectlDumper
    return _DUMPER


def dump_yaml(obj: object) -> str:
    """Block YAML with sorted keys and un-indented sequences, like kubectl's."""
    import yaml

    return yaml.dump(obj, Dumper=_kubectl_dumper(), default_flow_style=False, sort_keys=True,
                     allow_unicode=True, width=1 << 16)


def dump_json(obj: object) -> str:
    return json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False) + "\n"


def with_type(info: ApiResource, obj: dict) -> dict:
    """List items come without apiVersion/kind; output shows them as kubectl does."""
    if obj.get("kind") and obj.get("apiVersion"):
        return obj
    return {"apiVersion": info.api_version, "kind": info.kind, **obj}


def as_list(items: list[dict]) -> dict:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def name_of(info: ApiResource, obj: dict) -> str:
    """`-o name`: "pod/web-1", "deployment.apps/web"."""
    prefix = f"{info.kind.lower()}.{info.group}" if info.group else info.kind.lower()
    return f"{prefix}/{obj.get('metadata', {}).get('name', '')}"


def check_format(output: str | None) -> None:
    if output is None or output in ("wide", *STRUCTURED):
        return
    if output.startswith(("jsonpath=", "jsonpath-as-json=")):
        return
    raise CommandError(
        f'unable to match a printer suitable for the output format "{output}", allowed formats '
        "are: json,jsonpath,name,wide,yaml"
    )


def render(output: str, payload: dict) -> str:
    """A single object or a List in a structured format (not `name`: see name_of)."""
    if output == "yaml":
        return dump_yaml(payload)
    if output == "json":
        return dump_json(payload)
    if output.startswith("jsonpath-as-json="):
        from ketch.cli.jsonpath import evaluate_path

        return dump_json(evaluate_path(output.split("=", 1)[1].strip("{}"), payload, strict=False))
    if output.startswith("jsonpath="):
        from ketch.cli.jsonpath import JsonPathError
        from ketch.cli.jsonpath import render as jp

        template = output.split("=", 1)[1]
        try:
            return jp(template, payload)
        except JsonPathError as e:
            raise CommandError(f"error executing jsonpath {template!r}: {e}") from None
    raise CommandError(f"unknown output format {output!r}")
