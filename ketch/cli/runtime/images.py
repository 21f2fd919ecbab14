"""Image commands: images, import, load, save, tag, rmi, pull, build-busybox."""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile

from ketch.cli.runtime import formatting as fmt
from ketch.cli.runtime.args import Parser
from ketch.cli.runtime.connection import Connection, DaemonError, DaemonUnavailable
from ketch.cli.runtime.errors import UsageError, fail


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    return Parser(prog, description)


def _split_tag(ref: str) -> tuple[str, str]:
    """'docker.io/library/busybox:latest' -> ('busybox', 'latest') as docker prints them."""
    name, _, digest = ref.partition("@")
    repo, tag = name, "<none>"
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        repo, tag = name[:colon], name[colon + 1:]
    for prefix in ("docker.io/library/", "docker.io/"):
        if repo.startswith(prefix):
            repo = repo[len(prefix):]
            break
    return repo, tag


def cmd_images(conn: Connection, argv: list[str]) -> int:
    p = _parser("images", "List images")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("reference", nargs="?", default="")
    args = p.parse_args(argv)
    images = conn.images("ListImages", {"reference": args.reference}).get("images", [])
    rows, seen = [], set()
    for img in sorted(images, key=lambda i: i.get("created", ""), reverse=True):
        image_id = img["id"] if args.no_trunc else fmt.short_id(img["id"])
        tags = img.get("repo_tags") or ["<none>:<none>"]
        for ref in tags:
            repo, tag = _split_tag(ref) if ref != "<none>:<none>" else ("<none>", "<none>")
            if args.quiet:
                if image_id not in seen:
                    print(image_id)
                    seen.add(image_id)
                continue
            row = [repo, tag]
            if args.digests:
                row.append(img.get("digest", "<none>"))
            row += [image_id, _created(img.get("created", "")), fmt.human_size(int(img.get("size", 0)))]
            rows.append(row)
    if not args.quiet:
        headers = ["REPOSITORY", "TAG"] + (["DIGEST"] if args.digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
        fmt.table(headers, rows)
    return 0


def _created(rfc3339: str) -> str:
    import calendar
    import time

    if not rfc3339:
        return ""
    try:
        sec = calendar.timegm(time.strptime(rfc3339[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return rfc3339
    return fmt.ago(sec * 1_000_000_000)


def inspect_image(conn: Connection, name: str) -> dict:
    img = conn.images("ImageStatus", {"image": name}).get("image", {})
    config = json.loads(base64.b64decode(img.get("config_json", "")) or b"{}")
    return {
        "Id": img.get("id", ""), "RepoTags": [_familiar(t) for t in img.get("repo_tags", [])],
        "RepoDigests": img.get("repo_digests", []), "Created": config.get("created", img.get("created", "")),
        "Architecture": config.get("architecture", ""), "Os": config.get("os", ""),
        "Size": int(img.get("size", 0)), "Config": config.get("config", {}),
        "RootFS": {"Type": "layers", "Layers": img.get("layers", [])},
        "History": config.get("history", []),
    }


def _familiar(ref: str) -> str:
    repo, tag = _split_tag(ref)
    return f"{repo}:{tag}"


def cmd_import(conn: Connection, argv: list[str]) -> int:
    p = _parser("import", "Import a root filesystem tarball as an image (like docker import)")
    p.add_argument("file", help="the tarball (tar, tar.gz, tar.zst)")
    p.add_argument("reference", nargs="?", default="", help="name:tag (or use --name)")
    p.add_argument("--name", default="", help="name:tag of the new image")
    p.add_argument("-c", "--change", action="append", default=[],
                   help='Dockerfile-like config: CMD ["sh"], ENTRYPOINT, ENV K=V, WORKDIR, USER, EXPOSE, VOLUME')
    args = p.parse_args(argv)
    ref = args.name or args.reference
    request = {"path": os.path.abspath(args.file), "format": "rootfs", "reference": ref}
    if args.change:
        request["config_json"] = base64.b64encode(json.dumps(_changes(args.change)).encode()).decode()
    reply = conn.images("ImportImage", request)
    for img in reply.get("images", []):
        print(img["id"])
    return 0


def _changes(changes: list[str]) -> dict:
    cfg: dict = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    for change in changes:
        word, _, rest = change.strip().partition(" ")
        word, rest = word.upper(), rest.strip()

        def argv(text: str) -> list[str]:
            if text.startswith("["):
                return json.loads(text)
            return ["/bin/sh", "-c", text]

        if word == "CMD":
            cfg["Cmd"] = argv(rest)
        elif word == "ENTRYPOINT":
            cfg["Entrypoint"] = argv(rest)
        elif word == "ENV":
            cfg["Env"].append(rest.replace(" ", "=", 1) if "=" not in rest else rest)
        elif word == "WORKDIR":
            cfg["WorkingDir"] = rest
        elif word == "USER":
            cfg["User"] = rest
        elif word == "EXPOSE":
            cfg.setdefault("ExposedPorts", {})[rest if "/" in rest else f"{rest}/tcp"] = {}
        elif word == "VOLUME":
            for v in json.loads(rest) if rest.startswith("[") else rest.split():
                cfg.setdefault("Volumes", {})[v] = {}
        elif word == "LABEL":
            k, _, v = rest.partition("=")
            cfg.setdefault("Labels", {})[k] = v.strip('"')
        elif word == "STOPSIGNAL":
            cfg["StopSignal"] = rest
        else:
            raise UsageError(f"unsupported --change instruction {word!r}")
    return cfg


def cmd_load(conn: Connection, argv: list[str]) -> int:
    p = _parser("load", "Load images from a docker-save or OCI archive (a file or stdin)")
    p.add_argument("-i", "--input", default="", help="read from this file instead of stdin")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    tmp = None
    try:
        if args.input:
            path = os.path.abspath(args.input)
        else:
            if sys.stdin.isatty():
                raise UsageError("requested load from stdin, but stdin is empty (use -i FILE or a pipe)")
            fd, tmp = tempfile.mkstemp(prefix="ketch-load-", suffix=".tar")
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(sys.stdin.buffer, f)
            path = tmp
        reply = conn.images("ImportImage", {"path": path})
    finally:
        if tmp:
            os.unlink(tmp)
    if not args.quiet:
        for img in reply.get("images", []):
            tags = img.get("repo_tags") or []
            if tags:
                for t in tags:
                    print(f"Loaded image: {_familiar(t)}")
            else:
                print(f"Loaded image ID: {img['id']}")
    return 0


def cmd_save(conn: Connection, argv: list[str]) -> int:
    p = _parser("save", "Save images to a docker-save archive (or OCI layout with --format oci)")
    p.add_argument("-o", "--output", default="", help="write to this file instead of stdout")
    p.add_argument("--format", choices=("docker", "oci"), default="docker")
    p.add_argument("images", nargs="+")
    args = p.parse_args(argv)
    if not args.output and sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    if args.output:
        conn.images("ExportImage", {"images": args.images, "path": os.path.abspath(args.output),
                                    "format": args.format})
        return 0
    tmpdir = tempfile.mkdtemp(prefix="ketch-save-")
    try:
        path = os.path.join(tmpdir, "images.tar")
        conn.images("ExportImage", {"images": args.images, "path": path, "format": args.format})
        with open(path, "rb") as f:
            shutil.copyfileobj(f, sys.stdout.buffer)
        sys.stdout.flush()
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


def cmd_tag(conn: Connection, argv: list[str]) -> int:
    p = _parser("tag", "Create a tag TARGET that refers to SOURCE")
    p.add_argument("source")
    p.add_argument("target")
    args = p.parse_args(argv)
    conn.images("TagImage", {"source": args.source, "target": args.target})
    return 0


def cmd_rmi(conn: Connection, argv: list[str]) -> int:
    p = _parser("rmi", "Remove images")
    p.add_argument("-f", "--force", action="store_true", help="force removal")
    p.add_argument("images", nargs="+")
    args = p.parse_args(argv)
    code = 0
    for name in args.images:
        try:
            for line in conn.images("RemoveImage", {"image": name, "force": args.force}).get("deleted", []):
                print(line)
        except DaemonError as exc:
            fail(f"Error response from daemon: {exc.message}")
            code = 1
    return code


def cmd_pull(conn: Connection, argv: list[str]) -> int:
    p = _parser("pull", "Pull an image (registries come in a later release)")
    p.add_argument("image")
    args = p.parse_args(argv)
    for progress in conn.stream("ImageService", "PullImage", {"image": args.image}):
        print(progress.get("status", ""))
    return 0


def cmd_build_busybox(conn: Connection, argv: list[str], *, root: str | None) -> int:
    """Build busybox:latest offline from Debian's busybox-static, with or without a running daemon.

    The image store has its own file lock, so writing it directly while the
    daemon runs is safe; with a daemon, its --root is used (asked by Version).
    """
    p = _parser("build-busybox", "Build the offline busybox image from Debian's busybox-static")
    p.add_argument("--binary", default="/bin/busybox", help="static busybox binary")
    p.add_argument("--tag", default="busybox:latest")
    args = p.parse_args(argv)
    store_root = None
    try:
        store_root = conn.runtime("Version").get("root")
    except DaemonUnavailable:
        pass
    store_root = store_root or root or "/var/lib/ketch/runtime"
    from pathlib import Path

    from node_agent.runtime.images.busybox import ensure_busybox
    from node_agent.runtime.images.store import ImageStore

    if not os.path.exists(args.binary):
        fail(f"Error: {args.binary} not found: install Debian's busybox-static (apt-get install busybox-static)")
        return 1
    image = ensure_busybox(ImageStore(Path(store_root) / "images"), Path(args.binary), args.tag)
    print(f"{', '.join(image.familiar_tags) or args.tag} {image.id}")
    return 0


COMMANDS = {
    "images": cmd_images, "import": cmd_import, "load": cmd_load, "save": cmd_save,
    "tag": cmd_tag, "rmi": cmd_rmi, "pull": cmd_pull,
}
