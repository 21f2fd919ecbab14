import hashlib
import json
import multiprocessing
import os

import pytest
from node_agent.runtime.images.content import DigestMismatch
from node_agent.runtime.images.store import (
    ImageConflict,
    ImageNotFound,
    ImageStore,
    InvalidImage,
)

from .tarbuild import LayerTar, commit_layers

BASE = LayerTar().file("bin/sh", b"shell", 0o755).file("etc/os-release", b"base").build()
APP = LayerTar().file("app/run", b"app", 0o755).build()
OTHER = LayerTar().file("other", b"other").build(gz=True)


def diff_id(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "images")


def test_import_rootfs_makes_a_one_layer_image_with_default_config(store, tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(BASE)
    image = store.import_rootfs(rootfs, "x:tag")
    assert image.repo_tags == ["docker.io/library/x:tag"]
    assert image.familiar_tags == ["x:tag"]
    assert image.layers == [diff_id(BASE)]
    assert image.container_config["Cmd"] == ["/bin/sh"]
    assert any(e.startswith("PATH=") for e in image.container_config["Env"])
    assert image.id == "sha256:" + hashlib.sha256(store.config_bytes(image)).hexdigest()
    assert image.size == len(b"shell") + len(b"base")
    assert store.layer_paths(image) == [store.root / "layers" / diff_id(BASE)[7:] / "fs"]
    assert (store.layer_paths(image)[0] / "bin/sh").read_bytes() == b"shell"
    manifest = json.loads(store.manifest_bytes(image))
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_import_rootfs_with_config_and_fixed_created_is_reproducible(store, tmp_path):
    rootfs = tmp_path / "rootfs.tar.gz"
    rootfs.write_bytes(LayerTar().file("a", b"1").build(gz=True))
    config = {"Entrypoint": ["/a"], "Cmd": ["x"], "Env": ["A=1"], "WorkingDir": "/w", "User": "65534",
              "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "Labels": {"k": "v"},
              "StopSignal": "SIGINT"}
    first = store.import_rootfs(rootfs, "a:1", config, created="2020-01-01T00:00:00Z")
    second = store.import_rootfs(rootfs, "a:2", config, created="2020-01-01T00:00:00Z")
    assert first.id == second.id and first.digest == second.digest
    assert store.get("a:2").container_config == config
    assert sorted(store.get(first.id).familiar_tags) == ["a:1", "a:2"]


def test_get_by_ref_id_prefix_digest(store):
    image = commit_layers(store, [BASE], "base:1")
    assert store.get("base:1").id == image.id
    assert store.get("docker.io/library/base:1").id == image.id
    assert store.get(image.id).digest == image.digest
    assert store.get(image.id[7:]).id == image.id
    assert store.get(image.short_id).id == image.id
    assert store.get(image.id[:12]).id == image.id  # "sha256:" + a few hex
    assert store.get(f"base@{image.digest}").id == image.id
    assert store.get(image.digest).id == image.id
    for missing in ("base:2", "nothere", "sha256:" + "f" * 64, f"base@sha256:{'e' * 64}"):
        with pytest.raises(ImageNotFound):
            store.get(missing)


def test_tag_and_list(store):
    image = commit_layers(store, [BASE], "base:1")
    store.tag("base:1", "myreg:5000/team/base:v1")
    store.tag(image.short_id, "base:latest")
    assert store.get("base").id == image.id
    assert store.get("myreg:5000/team/base:v1").familiar_tags == [
        "base:1", "base:latest", "myreg:5000/team/base:v1"]
    assert [i.id for i in store.list()] == [image.id]
    with pytest.raises(ValueError):
        store.tag("base:1", f"base@{image.digest}")


def test_layers_are_shared_and_collected_when_unreferenced(store):
    base = commit_layers(store, [BASE], "base:1")
    app = commit_layers(store, [BASE, APP], "app:1")
    assert app.layers[0] == base.layers[0]
    assert store.layers.list() == sorted([diff_id(BASE), diff_id(APP)])
    usage = store.disk_usage()
    assert usage["layers"]["count"] == 2
    assert usage["shared_bytes"] == len(b"shell") + len(b"base")
    row = next(r for r in usage["images"] if r["repo_tags"] == ["app:1"])
    assert row["unique_size"] == len(b"app") and row["shared_size"] == usage["shared_bytes"]
    assert store.remove("app:1") == ["Untagged: app:1", f"Deleted: {app.id}"]
    assert store.layers.list() == [diff_id(BASE)]
    assert not store.content.has(app.digest) and not store.content.has(app.id)
    assert store.content.has(base.digest)
    store.remove("base:1")
    assert store.layers.list() == [] and list(store.content.digests()) == []
    assert store.list() == []


def test_remove_untags_first_and_refuses_in_use(store):
    image = commit_layers(store, [BASE], "base:1")
    store.tag("base:1", "base:2")
    assert store.remove("base:2", in_use={image.id}) == ["Untagged: base:2"]  # another tag remains
    with pytest.raises(ImageConflict, match="being used"):
        store.remove("base:1", in_use={image.id})
    assert store.get("base:1").id == image.id
    store.tag("base:1", "base:3")
    with pytest.raises(ImageConflict, match="multiple repositories"):
        store.remove(image.short_id)
    lines = store.remove(image.short_id, force=True, in_use={image.id})
    assert lines == ["Untagged: base:1", "Untagged: base:3", f"Deleted: {image.id}"]
    with pytest.raises(ImageNotFound):
        store.get(image.id)


def test_lease_keeps_layers_of_a_forcibly_removed_image(store):
    image = commit_layers(store, [BASE], "base:1")
    store.add_lease("snapshot-c1", image.layers)
    store.remove("base:1", force=True, in_use={image.id})
    assert store.layers.list() == image.layers
    store.remove_lease("snapshot-c1")
    assert store.gc() == image.layers
    assert store.layers.list() == []


def test_commit_image_verifies_blobs_and_diff_ids(store):
    with pytest.raises(DigestMismatch):
        store.put_blob(b"tampered", diff_id(b"original"))
    wrong = LayerTar().file("x").build()
    digest = store.put_blob(wrong)
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [diff_id(BASE)]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": diff_id(config), "size": len(config)},
                "layers": [{"digest": digest, "size": len(wrong)}]}
    with pytest.raises(InvalidImage, match="diff id"):
        store.commit_image(json.dumps(manifest).encode(), config, "bad:1")
    manifest["layers"] = [{"digest": diff_id(b"absent"), "size": 1}]
    with pytest.raises(InvalidImage, match="not in the store"):
        store.commit_image(json.dumps(manifest).encode(), config, "bad:1")
    with pytest.raises(InvalidImage, match="index"):
        store.commit_image(json.dumps({"schemaVersion": 2, "manifests": []}).encode())
    assert store.list() == [] and store.layers.list() == []


def test_docker_schema2_manifest_is_accepted(store):
    digest = store.put_blob(OTHER)
    raw = LayerTar().file("other", b"other").build()
    config = json.dumps({"config": {"Cmd": ["x"]}, "rootfs": {"type": "layers", "diff_ids": [diff_id(raw)]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": diff_id(config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                            "digest": digest, "size": len(OTHER)}]}
    image = store.commit_image(json.dumps(manifest).encode(), config, "docker/style:1")
    assert image.layers == [diff_id(raw)]
    assert (store.layer_paths(image)[0] / "other").read_bytes() == b"other"


def _tag_many(root: str, worker: int) -> None:
    store = ImageStore(root)
    for i in range(15):
        store.tag("base:1", f"w{worker}:t{i}")


def test_index_updates_from_several_processes_are_not_lost(store):
    commit_layers(store, [BASE], "base:1")
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_tag_many, args=(str(store.root), n)) for n in range(3)]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(30)
        assert proc.exitcode == 0
    assert len(store.get("base:1").repo_tags) == 1 + 3 * 15
    assert not [f for f in os.listdir(store.root) if f.startswith(".index-")]


def test_refused_rootfs_tarball_leaves_no_blobs(store, tmp_path):
    rootfs = tmp_path / "evil.tar"
    rootfs.write_bytes(LayerTar().file("ok", b"1").file("../../etc/evil", b"2").build())
    with pytest.raises(InvalidImage, match="'..'"):
        store.import_rootfs(rootfs, "evil:1")
    assert list(store.content.digests()) == [] and store.layers.list() == [] and store.list() == []


def test_only_stale_temporaries_are_cleaned_at_start(tmp_path):
    root = tmp_path / "images"
    ImageStore(root)
    old_blob, fresh_blob = root / "blobs/tmp/ingest-old", root / "blobs/tmp/ingest-fresh"
    old_layer = root / "layers/tmp-old"
    for path in (old_blob, fresh_blob):
        path.write_bytes(b"partial")
    (old_layer / "fs").mkdir(parents=True)
    for path in (old_blob, old_layer):
        os.utime(path, (0, 0))
    ImageStore(root)
    assert not old_blob.exists() and not old_layer.exists()
    assert fresh_blob.exists()  # may belong to an ingest running in another process


def test_lease_with_a_vanished_holder_protects_nothing(store, tmp_path):
    image = commit_layers(store, [BASE], "base:1")
    holder = tmp_path / "snapshot-dir"
    holder.mkdir()
    store.add_lease("snapshot-x", image.layers, holder=holder)
    store.remove("base:1")
    assert store.layers.list() == image.layers
    holder.rmdir()
    assert store.gc() == image.layers
    assert os.listdir(store.leases_dir) == []


def test_repeated_get_sees_every_change_another_process_makes(store, tmp_path):
    base = commit_layers(store, [BASE], "base:1")
    app = commit_layers(store, [BASE, APP], "app:1")
    assert store.get("base:1").id == base.id
    other = ImageStore(tmp_path / "images")          # another process's view of the same store
    other.tag("app:1", "base:1")                     # the tag moves
    assert store.get("base:1").id == app.id
    assert "base:1" in store.get("base:1").familiar_tags
    other.remove("base:1")
    with pytest.raises(ImageNotFound):
        store.get("base:1")
    # what get() returns is the caller's to change
    first = store.get("app:1")
    first.repo_tags.append("mine")
    assert "mine" not in store.get("app:1").repo_tags
