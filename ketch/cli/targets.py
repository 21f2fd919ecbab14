"""From what a user typed (`deploy`, `po,svc`, `pod/web`, `all`) to resources and names."""

from __future__ import annotations

from ketch.cli.discovery import ApiResource
from ketch.cli.errors import CommandError
from ketch.client.rest import resource_path


def resolve_type(ctx, name: str) -> ApiResource:
    """A type name as typed (`deploy`, `pods`, `deployments.apps`) via the server's discovery."""
    info = ctx.resolve(name)
    if info is None:
        raise CommandError(f'the server doesn\'t have a resource type "{name}"')
    return info


def expand_types(ctx, text: str) -> list[ApiResource]:
    """`po,svc` or `all` into resources, in order, without repeats."""
    out: list[ApiResource] = []
    for part in text.split(","):
        if not part:
            continue
        infos = ctx.in_category(part) if part == "all" else [resolve_type(ctx, part)]
        for info in infos:
            if info not in out:
                out.append(info)
    return out


def parse_targets(ctx, args: list[str]) -> list[tuple[ApiResource, list[str]]]:
    """`TYPE[,TYPE] [NAME...]` or `TYPE/NAME [TYPE/NAME...]` -> [(resource, names)].

    An empty name list means "all of that type".
    """
    if not args:
        raise CommandError(
            "You must specify the type of resource to get. Use \"ketch api-resources\" "
            "for a complete list of supported resources."
        )
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise CommandError(
                "there is no need to specify a resource type as a separate argument when "
                "passing arguments in resource/name form (e.g. 'ketch get resource/<resource_name>' "
                "instead of 'ketch get resource resource/<resource_name>'"
            )
        out: list[tuple[ApiResource, list[str]]] = []
        for a in args:
            type_text, _, name = a.partition("/")
            if not name:
                raise CommandError(f"arguments in resource/name form must have a single resource and name: {a!r}")
            for info in expand_types(ctx, type_text):
                for existing, names in out:
                    if existing == info:
                        names.append(name)
                        break
                else:
                    out.append((info, [name]))
        return out
    infos = expand_types(ctx, args[0])
    names = args[1:]
    if names and len(infos) > 1:
        raise CommandError("you may only specify a single resource type when naming resources")
    return [(info, list(names)) for info in infos]


def path_for(info: ApiResource, namespace: str | None, name: str | None = None,
             subresource: str | None = None) -> str:
    """URL path of a resource; `namespace` is ignored for cluster-scoped kinds, None = all."""
    return resource_path(info.group, info.version, info.plural,
                         namespace=namespace if info.namespaced else None,
                         name=name, subresource=subresource)
