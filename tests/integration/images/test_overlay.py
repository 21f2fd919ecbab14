import os
import stat
import statistics
import subprocess
import time

import pytest
from node_agent.runtime.images import busybox
from node_agent.runtime.images.store import ImageConflict, ImageStore

from ...unit.images.tarbuild import LayerTar, commit_layers
from .conftest import mounts_under

pytestmark = pytest.mark.skipif(not busybox.DEFAULT_BINARY.exists(), reason="busybox-static not installed")


def test_busybox_image_builds_once_and_reproducibly(store, runtime_root):
    image = busybox.ensure_busybox(store)
    assert busybox.ensure_busybox(store).digest == image.digest
    assert image.familiar_tags == ["busybox:latest"]
    assert image.container_config["Cmd"] == ["sh"]
    [layer] = store.layer_paths(image)
    assert os.readlink(layer / "bin/sh") == "/bin/busybox"
    assert stat.S_IMODE(os.stat(layer / "tmp").st_mode) == 0o1777
    assert os.stat(layer / "bin/busybox").st_uid == 0
    other = busybox.ensure_busybox(ImageStore(runtime_root / "second"))
    assert other.id == image.id and other.digest == image.digest


def test_overlay_root_sees_image_and_writes_only_to_upper(store, snapshots):
    image = busybox.ensure_busybox(store)
    [layer] = store.layer_paths(image)
    passwd_before = (layer / "etc/passwd").read_bytes()
    rootfs = snapshots.prepare("c1", image)
    assert snapshots.prepare("c1", image) == rootfs  # idempotent
    assert snapshots.exists("c1") and os.path.ismount(rootfs)
    assert os.readlink(rootfs / "bin/sh") == "/bin/busybox"
    out = subprocess.run(["chroot", str(rootfs), "/bin/sh", "-c", "echo hi > /tmp/new; cat /tmp/new"],
                         capture_output=True, check=True)
    assert out.stdout == b"hi\n"
    with open(rootfs / "etc/passwd", "ab") as passwd:
        passwd.write(b"extra:x:1000:1000::/:/bin/sh\n")
    os.unlink(rootfs / "bin/vi")
    upper = snapshots.root / "snapshots/c1/upper"
    assert (upper / "tmp/new").read_bytes() == b"hi\n"
    assert (upper / "etc/passwd").read_bytes().endswith(b"extra:x:1000:1000::/:/bin/sh\n")
    assert stat.S_ISCHR(os.lstat(upper / "bin/vi").st_mode)  # deletion = whiteout in upper
    assert (layer / "etc/passwd").read_bytes() == passwd_before  # the shared layer is untouched
    assert not (layer / "tmp/new").exists() and os.path.lexists(layer / "bin/vi")
    assert snapshots.usage("c1") >= len(passwd_before) + 3
    snapshots.remove("c1")
    assert not snapshots.exists("c1") and not (snapshots.root / "snapshots/c1").exists()
    snapshots.remove("c1")  # idempotent


def test_whiteouts_and_opaque_dirs_hide_lower_files(store, snapshots):
    lower = (LayerTar().file("etc/a", b"a").file("etc/b", b"b")
             .file("var/cache/x", b"x").file("var/cache/sub/y", b"y").build())
    upper = LayerTar().whiteout("etc/a").opaque("var/cache").file("var/cache/z", b"z").build(gz=True)
    image = commit_layers(store, [lower, upper], "wh:1")
    rootfs = snapshots.prepare("wh", image)
    assert sorted(os.listdir(rootfs / "etc")) == ["b"]
    assert sorted(os.listdir(rootfs / "var/cache")) == ["z"]
    assert (store.layer_paths(image)[0] / "etc/a").read_bytes() == b"a"


def test_containers_share_one_unpacked_layer(store, snapshots):
    image = busybox.ensure_busybox(store)
    [layer] = store.layer_paths(image)
    first, second = snapshots.prepare("one", image), snapshots.prepare("two", image)
    inode = os.stat(layer / "bin/busybox").st_ino
    assert os.stat(first / "bin/busybox").st_ino == inode == os.stat(second / "bin/busybox").st_ino
    (first / "only-in-one").write_text("1")
    assert not (second / "only-in-one").exists()
    assert len(os.listdir(store.root / "layers")) == 1


def test_image_in_use_is_kept_and_its_layers_survive_forced_removal(store, snapshots):
    image = busybox.ensure_busybox(store)
    rootfs = snapshots.prepare("busy", image)
    with pytest.raises(ImageConflict):
        store.remove("busybox", in_use={image.id})
    store.remove("busybox", force=True, in_use={image.id})
    assert (rootfs / "bin/busybox").exists()  # the running container keeps its layers
    assert store.layers.list() == image.layers
    snapshots.remove("busy")
    assert store.gc() == image.layers and store.layers.list() == []


def test_busy_snapshot_is_detached(store, snapshots):
    image = busybox.ensure_busybox(store)
    rootfs = snapshots.prepare("held", image)
    with open(rootfs / "etc/passwd", "rb"):
        previous = os.getcwd()
        os.chdir(rootfs)
        try:
            snapshots.remove("held")
        finally:
            os.chdir(previous)
    assert not os.path.ismount(rootfs)
    assert mounts_under(snapshots.root) == []


def test_image_with_many_layers_mounts(store, snapshots):
    layers = [LayerTar().file(f"layer{i}", b"%d" % i).file("top", b"%d" % i).build() for i in range(130)]
    image = commit_layers(store, layers, "tall:1")
    rootfs = snapshots.prepare("tall", image)
    assert (rootfs / "top").read_bytes() == b"129"  # the topmost layer wins
    assert (rootfs / "layer0").read_bytes() == b"0" and (rootfs / "layer129").exists()


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_round_trip_busybox_then_run_from_it(store, snapshots, runtime_root, fmt):
    image = busybox.ensure_busybox(store)
    archive = runtime_root / f"busybox-{fmt}.tar"
    store.export(["busybox"], archive, fmt=fmt)
    store.remove("busybox")
    assert store.list() == [] and store.layers.list() == []
    [back] = store.import_archive(archive)
    assert back.id == image.id and back.familiar_tags == ["busybox:latest"]
    rootfs = snapshots.prepare("rt", back)
    out = subprocess.run(["chroot", str(rootfs), "/bin/busybox", "echo", "ok"], capture_output=True, check=True)
    assert out.stdout == b"ok\n"


def test_prepare_is_fast(store, snapshots):
    image = busybox.ensure_busybox(store)
    timings = []
    for i in range(10):
        started = time.perf_counter()
        snapshots.prepare(f"fast{i}", image)
        timings.append(time.perf_counter() - started)
    for i in range(10):
        snapshots.remove(f"fast{i}")
    assert statistics.median(timings) < 0.02, f"prepare median {statistics.median(timings) * 1000:.1f} ms"


def test_image_repeating_a_layer_mounts(store, snapshots):
    marker = LayerTar().file("etc/marker", b"first").build()
    middle = LayerTar().file("etc/marker", b"middle").file("etc/middle", b"m").build()
    image = commit_layers(store, [marker, middle, marker], "repeat:1")
    assert len(set(image.layers)) == 2
    rootfs = snapshots.prepare("repeat", image)
    assert (rootfs / "etc/marker").read_bytes() == b"first"  # the top copy wins
    assert (rootfs / "etc/middle").read_bytes() == b"m"


def test_root_on_overlayfs_is_explained(store, snapshots):
    from node_agent.runtime.snapshots.overlay import OverlaySnapshotter, SnapshotError

    image = busybox.ensure_busybox(store)
    outer = snapshots.prepare("outer", image)
    nested = OverlaySnapshotter(outer / "tmp/nested", store)
    with pytest.raises(SnapshotError, match="is on overlayfs"):
        nested.prepare("inner", image)
    assert not os.path.ismount(outer / "tmp/nested/snapshots/inner/rootfs")


def test_invalid_keys_are_refused(snapshots, store):
    image = busybox.ensure_busybox(store)
    for key in ("../escape", "", "a/b", ".hidden"):
        with pytest.raises(ValueError):
            snapshots.prepare(key, image)


def test_busybox_command_builds_into_a_store_and_a_directory(runtime_root):
    import json
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "node_agent.runtime.images.busybox", "--root", str(runtime_root / "cli"),
         "--dir", str(runtime_root / "plain")],
        capture_output=True, check=True, timeout=60,
    ).stdout.decode().splitlines()
    built = json.loads(out[-1])
    assert built["tags"] == ["busybox:latest"]
    assert ImageStore(runtime_root / "cli").get("busybox").id == built["id"]
    assert subprocess.run(["chroot", str(runtime_root / "plain"), "/bin/true"]).returncode == 0


def test_snapshot_remounts_with_its_writes_after_an_unmount(store, snapshots):
    from node_agent.runtime.snapshots.overlay import _umount

    image = busybox.ensure_busybox(store)
    old_umask = os.umask(0o077)
    try:
        rootfs = snapshots.prepare("again", image)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(rootfs).st_mode) == 0o755  # non-root users can enter the root
    (rootfs / "kept").write_text("yes")
    os.chmod(rootfs, 0o750)
    assert _umount(rootfs) == 0  # as after a host reboot
    assert snapshots.prepare("again", image) == rootfs
    assert (rootfs / "kept").read_text() == "yes"
    assert stat.S_IMODE(os.stat(rootfs).st_mode) == 0o750
