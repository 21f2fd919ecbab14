import io
import os
import stat
import tarfile

import pytest
from node_agent.runtime.images import busybox

pytestmark = pytest.mark.skipif(not busybox.DEFAULT_BINARY.exists(), reason="busybox-static not installed")


def _tar_bytes() -> bytes:
    out = io.BytesIO()
    busybox.write_rootfs_tar(out)
    return out.getvalue()


def test_rootfs_tarball_is_reproducible_and_complete():
    first = _tar_bytes()
    assert first == _tar_bytes()
    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(first))}
    assert members["bin/busybox"].isreg() and members["bin/busybox"].mode == 0o755
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "/bin/busybox"
    applets = busybox.applets()
    assert len(applets) > 100 and all(name in members for name in applets)
    assert members["tmp"].mode == 0o1777 and members["root"].mode == 0o700
    for directory in ("proc", "sys", "dev", "home", "etc", "var/www"):
        assert members[directory].isdir()
    assert {m.mtime for m in members.values()} == {busybox.EPOCH}
    assert {(m.uid, m.gid) for m in members.values()} == {(0, 0)}
    passwd = tarfile.open(fileobj=io.BytesIO(first)).extractfile("etc/passwd").read().decode()
    assert passwd.startswith("root:x:0:0:") and "nobody:x:65534:65534:" in passwd
    assert "etc/hosts" in members and "etc/group" in members


def test_rootfs_as_directory(tmp_path):
    root = busybox.write_rootfs_dir(tmp_path / "rootfs")
    assert os.readlink(root / "bin/sh") == "/bin/busybox"
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
    assert (root / "bin/busybox").read_bytes() == busybox.DEFAULT_BINARY.read_bytes()


def test_cli_writes_tarball(tmp_path, capsys):
    assert busybox.main(["--tar", str(tmp_path / "bb.tar")]) == 0
    assert (tmp_path / "bb.tar").read_bytes() == _tar_bytes()
