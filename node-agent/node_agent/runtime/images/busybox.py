"""The offline `busybox:latest` base image, built from Debian's busybox-static.

The root filesystem tarball is written by Python with fixed owners and mtimes,
so the same busybox binary always gives the same layer, config and image id.
No network, no registry: `python -m node_agent.runtime.images.busybox --root DIR`.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .layers import extract_tar
from .store import DEFAULT_PATH, Image, ImageNotFound, ImageStore

log = logging.getLogger(__name__)

BUSYBOX_REF = "docker.io/library/busybox:latest"
DEFAULT_BINARY = Path("/bin/busybox")
EPOCH = 0  # every entry's mtime: reproducible layers
CREATED = "1970-01-01T00:00:00Z"
LABEL_BINARY_DIGEST = "org.ketch.busybox.binary-sha256"

DIRECTORIES: dict[str, int] = {
    "bin": 0o755, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
    "usr/local": 0o755, "usr/local/bin": 0o755, "etc": 0o755, "dev": 0o755, "proc": 0o555,
    "sys": 0o555, "tmp": 0o1777, "root": 0o700, "home": 0o755, "var": 0o755,
    "var/www": 0o755, "var/tmp": 0o1777, "var/spool": 0o755, "var/spool/cron": 0o755,
    "var/spool/cron/crontabs": 0o755, "run": 0o755, "mnt": 0o755,
}

FILES: dict[str, tuple[int, bytes]] = {
    "etc/passwd": (0o644, b"root:x:0:0:root:/root:/bin/sh\n"
                          b"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                          b"www-data:x:33:33:www-data:/var/www:/bin/false\n"
                          b"nobody:x:65534:65534:nobody:/home:/bin/false\n"),
    "etc/group": (0o644, b"root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnogroup:x:65534:\n"),
    "etc/shadow": (0o640, b"root:*:10933:0:99999:7:::\nnobody:*:10933:0:99999:7:::\n"),
    # the runtime bind-mounts its own hosts/hostname/resolv.conf; these are the mount points
    "etc/hosts": (0o644, b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
    "etc/hostname": (0o644, b"busybox\n"),
    "etc/resolv.conf": (0o644, b""),
    "etc/nsswitch.conf": (0o644, b"hosts: files dns\n"),
    "var/www/index.html": (0o644, b"<html><body>Hello from Ketch busybox</body></html>\n"),
}

CONTAINER_CONFIG = {"Cmd": ["sh"], "Env": [f"PATH={DEFAULT_PATH}"]}


def applets(binary: Path = DEFAULT_BINARY) -> list[str]:
    """Installed paths of every applet, e.g. `bin/sh`, `usr/bin/wc` (from `busybox --list-full`)."""
    try:
        out = subprocess.run([str(binary), "--list-full"], check=True, capture_output=True).stdout
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{binary} not found: install Debian's busybox-static (apt-get install busybox-static)"
        ) from None
    paths = sorted({line.strip().lstrip("/") for line in out.decode().splitlines() if line.strip()})
    return [p for p in paths if p != "bin/busybox" and ".." not in p.split("/")]


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def write_rootfs_tar(out: io.BufferedIOBase | Path | str, binary: Path = DEFAULT_BINARY) -> None:
    """Write the busybox root filesystem as an uncompressed, reproducible tar."""
    entries = applets(binary)
    dirs = set(DIRECTORIES)
    for path in [*entries, *FILES]:
        parent = os.path.dirname(path)
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
    data = Path(binary).read_bytes()
    close = False
    if isinstance(out, Path | str):
        out = open(out, "wb")
        close = True
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name in sorted(dirs):
                tar.addfile(_info(name, tarfile.DIRTYPE, DIRECTORIES.get(name, 0o755)))
            tar.addfile(_info("bin/busybox", tarfile.REGTYPE, 0o755, len(data)), io.BytesIO(data))
            for name in entries:
                link = _info(name, tarfile.SYMTYPE, 0o777)
                link.linkname = "/bin/busybox"
                tar.addfile(link)
            for name, (mode, content) in sorted(FILES.items()):
                tar.addfile(_info(name, tarfile.REGTYPE, mode, len(content)), io.BytesIO(content))
    finally:
        if close:
            out.close()


def write_rootfs_dir(dest: Path | str, binary: Path = DEFAULT_BINARY) -> Path:
    """Write the busybox root filesystem as a plain directory (e.g. for `crun run`)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    write_rootfs_tar(buffer, binary)
    buffer.seek(0)
    extract_tar(buffer, dest, whiteouts=False)
    return dest


def binary_digest(binary: Path = DEFAULT_BINARY) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(Path(binary).read_bytes()).hexdigest()


def ensure_busybox(store: ImageStore, binary: Path = DEFAULT_BINARY, ref: str = BUSYBOX_REF) -> Image:
    """Return the busybox image, building it if missing or built from another binary (idempotent)."""
    wanted = binary_digest(binary)
    try:
        image = store.get(ref)
        if image.container_config.get("Labels", {}).get(LABEL_BINARY_DIGEST) == wanted:
            return image
    except ImageNotFound:
        pass
    config = dict(CONTAINER_CONFIG, Labels={LABEL_BINARY_DIGEST: wanted})
    with tempfile.NamedTemporaryFile(dir=store.root, prefix=".busybox-", suffix=".tar") as tmp:
        write_rootfs_tar(tmp, binary)
        tmp.flush()
        image = store.import_rootfs(tmp.name, ref, config, created=CREATED)
    log.info("busybox image ready", extra={"image": image.id, "ref": ref})
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m node_agent.runtime.images.busybox",
        description="Build the busybox:latest image offline from Debian's busybox-static.",
    )
    parser.add_argument("--root", type=Path, help="image store root (e.g. /var/lib/ketch/runtime/images)")
    parser.add_argument("--binary", type=Path, default=DEFAULT_BINARY, help="static busybox binary")
    parser.add_argument("--tag", default=BUSYBOX_REF, help="reference to tag the image as")
    parser.add_argument("--tar", type=Path, help="also write the root filesystem as this tarball")
    parser.add_argument("--dir", type=Path, help="also write the root filesystem into this directory")
    args = parser.parse_args(argv)
    if not (args.root or args.tar or args.dir):
        parser.error("give --root, --tar and/or --dir")
    try:
        if args.tar:
            write_rootfs_tar(args.tar, args.binary)
            print(f"rootfs tarball: {args.tar}")
        if args.dir:
            write_rootfs_dir(args.dir, args.binary)
            print(f"rootfs directory: {args.dir}")
        if args.root:
            image = ensure_busybox(ImageStore(args.root), args.binary, args.tag)
            print(json.dumps({"id": image.id, "digest": image.digest, "tags": image.familiar_tags}))
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
