"""`ketch edit`: open the live object in $KUBE_EDITOR / $EDITOR, send what changed.

As kubectl: the object is written as YAML to a temp file; saving it unchanged
cancels; an error from the server re-opens the editor with the error as a
comment at the top; the change is sent as a merge patch guarded by the
resourceVersion that was edited (a conflict says to edit again).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile

from ketch.cli.errors import CommandError, status_text
from ketch.cli.flags import Parser
from ketch.cli.output import dump_yaml, name_of, with_type
from ketch.cli.targets import parse_targets, path_for
from ketch.client.rest import MERGE_PATCH, ApiStatusError

HEADER = """# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# reopened with the relevant failures.
#
"""


def merge_patch_between(old: object, new: object) -> object:
    """The RFC 7386 merge patch that turns `old` into `new` (lists are replaced whole)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch_between(old[key], value)
    return patch


def editor_command() -> list[str]:
    editor = os.environ.get("KUBE_EDITOR") or os.environ.get("EDITOR") or "vi"
    return shlex.split(editor)


def strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def edit_object(ctx, info, obj: dict, output: str) -> int:
    import yaml

    obj = with_type(info, obj)
    meta = obj["metadata"]
    original_text = dump_yaml(obj)
    error_comment = ""
    failed_text: str | None = None  # what the last failed attempt saved
    text = original_text
    with tempfile.TemporaryDirectory(prefix="ketch-edit-") as d:
        path = os.path.join(d, f"{info.plural}-{meta['name']}.yaml")
        while True:
            with open(path, "w", encoding="utf-8") as f:
                f.write(HEADER + error_comment + text)
            rc = subprocess.call([*editor_command(), path])
            if rc != 0:
                raise CommandError(f"the editor exited with status {rc}")
            with open(path, encoding="utf-8") as f:
                edited_text = strip_comments(f.read())
            if not edited_text.strip():
                ctx.warn("Edit cancelled, no changes made.")
                return 0
            if failed_text is not None and edited_text == failed_text:
                kept = os.path.join(tempfile.gettempdir(), os.path.basename(path))
                with open(kept, "w", encoding="utf-8") as f:
                    f.write(edited_text)
                ctx.warn("error: Edit cancelled, no valid changes were saved.")
                ctx.warn(f"A copy of your changes has been stored to {kept!r}")
                return 1
            try:
                edited = yaml.safe_load(edited_text)
            except yaml.YAMLError as e:
                error_comment = f"# error: {str(e).replace(chr(10), chr(10) + '# ')}\n#\n"
                text = failed_text = edited_text
                continue
            if edited == obj:
                ctx.warn("Edit cancelled, no changes made.")
                return 0
            patch = merge_patch_between(obj, edited)
            if not isinstance(patch, dict):
                error_comment = "# error: the edited file is not an object\n#\n"
                text = failed_text = edited_text
                continue
            patch.setdefault("metadata", {})["resourceVersion"] = meta.get("resourceVersion")
            try:
                ctx.client.patch(path_for(info, meta.get("namespace"), meta["name"]), patch,
                                 content_type=MERGE_PATCH, query={"fieldValidation": "Strict"})
            except ApiStatusError as e:
                message = status_text(e.status, e.code)
                error_comment = "".join(f"# {line}\n" for line in message.splitlines()) + "#\n"
                text = failed_text = edited_text
                ctx.warn(f'error: {name_of(info, obj)} could not be patched: {message}')
                if e.code == 409:
                    ctx.warn("the object changed on the server; run `ketch edit` again")
                    return 1
                continue
            ctx.print(name_of(info, obj) if output == "name" else f"{name_of(info, obj)} edited")
            return 0


def run(_name: str, argv: list[str], ctx) -> int:
    p = Parser(prog="ketch edit", description="Edit a resource on the server.")
    p.add_argument("args", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument("-o", "--output", choices=["name"])
    args = p.parse_intermixed_args(argv)
    rc = 0
    for info, names in parse_targets(ctx, args.args):
        if not names:
            raise CommandError("edit needs an object name: ketch edit TYPE NAME")
        ns = ctx.namespace if info.namespaced else None
        for name in names:
            obj = ctx.client.get(path_for(info, ns, name))
            rc |= edit_object(ctx, info, obj, args.output)
    return rc
