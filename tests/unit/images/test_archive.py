import hashlib
import io
import json
import os
import tarfile

import pytest
from node_agent.runtime.images.archive import InvalidArchive
from node_agent.runtime.images.store import ImageNotFound, ImageStore

from .tarbuild import LayerTar, commit_layers

BASE = LayerTar().file("bin/sh", b"shell", 0o755).build()
APP = LayerTar().file("app/run", b"app", 0o755).build(gz=True)
APP_RAW = LayerTar().file("app/run", b"app", 0o755).build()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_tar(path, files: dict[str, bytes], links: dict[str, str] | None = None):
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def config_for(*raw_layers: bytes, cmd=("sh",)) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": list(cmd)},
                       "rootfs": {"type": "layers", "diff_ids": [sha(r) for r in raw_layers]}}).encode()


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "images")


def test_imports_a_classic_docker_save_archive(store, tmp_path):
    config = config_for(BASE, APP_RAW, cmd=("/app/run",))
    archive = write_tar(tmp_path / "app.tar", {
        f"{sha(config)[7:]}.json": config,
        "l1/VERSION": b"1.0", "l1/json": b"{}", "l1/layer.tar": BASE,
        "l2/VERSION": b"1.0", "l2/json": b"{}", "l2/layer.tar": APP,  # gzip layers are accepted too
        "manifest.json": json.dumps([{"Config": f"{sha(config)[7:]}.json",
                                      "RepoTags": ["app:1", "myreg:5000/app:1"],
                                      "Layers": ["l1/layer.tar", "l2/layer.tar"]}]).encode(),
        "repositories": json.dumps({"app": {"1": "l2"}}).encode(),
    })
    [image] = store.import_archive(archive)
    assert image.id == sha(config)
    assert image.familiar_tags == ["app:1", "myreg:5000/app:1"]
    assert image.layers == [sha(BASE), sha(APP_RAW)]
    assert image.container_config["Cmd"] == ["/app/run"]
    assert (store.layer_paths(image)[1] / "app/run").read_bytes() == b"app"


def test_imports_docker25_archive_with_symlinked_layers(store, tmp_path):
    config = config_for(BASE)
    archive = write_tar(
        tmp_path / "d25.tar",
        {f"blobs/sha256/{sha(config)[7:]}": config, f"blobs/sha256/{sha(BASE)[7:]}": BASE,
         "manifest.json": json.dumps([{"Config": f"blobs/sha256/{sha(config)[7:]}",
                                       "RepoTags": ["base:1"], "Layers": ["x/layer.tar"]}]).encode()},
        links={"x/layer.tar": f"../blobs/sha256/{sha(BASE)[7:]}"},
    )
    [image] = store.import_archive(archive)
    assert image.familiar_tags == ["base:1"] and image.layers == [sha(BASE)]


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the index in this test names amd64")
def test_imports_oci_layout_with_a_multi_platform_index(store, tmp_path):
    config = config_for(BASE)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": sha(BASE), "size": len(BASE)}]}).encode()
    nested = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(b"nope"), "size": 4,
         "platform": {"os": "linux", "architecture": "s390x"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
         "size": len(manifest), "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(nested), "size": len(nested),
         "annotations": {"org.opencontainers.image.ref.name": "quay.io/x/base:2"}}]}
    layout = tmp_path / "layout"
    for name, data in {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
                       "index.json": json.dumps(index).encode(),
                       f"blobs/sha256/{sha(nested)[7:]}": nested,
                       f"blobs/sha256/{sha(manifest)[7:]}": manifest,
                       f"blobs/sha256/{sha(config)[7:]}": config,
                       f"blobs/sha256/{sha(BASE)[7:]}": BASE}.items():
        (layout / name).parent.mkdir(parents=True, exist_ok=True)
        (layout / name).write_bytes(data)
    [image] = store.import_archive(layout)  # an unpacked layout directory works too
    assert image.digest == sha(manifest)
    assert image.familiar_tags == ["quay.io/x/base:2"]


def test_oci_blob_with_wrong_digest_is_refused(store, tmp_path):
    config = config_for(BASE)
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": sha(config), "size": 1},
                           "layers": []}).encode()
    archive = write_tar(tmp_path / "bad.tar", {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": json.dumps({"schemaVersion": 2, "manifests": [
            {"digest": sha(manifest), "size": len(manifest)}]}).encode(),
        f"blobs/sha256/{sha(manifest)[7:]}": manifest,
        f"blobs/sha256/{sha(config)[7:]}": b"tampered",
    })
    with pytest.raises(InvalidArchive, match="does not match"):
        store.import_archive(archive)


def test_not_an_archive(store, tmp_path):
    plain = write_tar(tmp_path / "rootfs.tar", {"etc/passwd": b"root"})
    with pytest.raises(InvalidArchive, match="import_rootfs"):
        store.import_archive(plain)
    (tmp_path / "junk").write_bytes(b"junk")
    with pytest.raises(InvalidArchive):
        store.import_archive(tmp_path / "junk")


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_round_trip_keeps_the_image_id(store, tmp_path, fmt):
    image = commit_layers(store, [BASE, APP], "app:1", {"Cmd": ["/app/run"], "Env": ["A=1"]})
    store.tag("app:1", "myreg:5000/team/app:2")
    store.tag("app:1", "app:unexported")
    out = tmp_path / f"out-{fmt}.tar"
    store.export(["app:1", "myreg:5000/team/app:2"], out, fmt=fmt)
    names = tarfile.open(out).getnames()
    if fmt == "docker":
        manifest = json.loads(tarfile.open(out).extractfile("manifest.json").read())
        assert manifest[0]["RepoTags"] == ["app:1", "myreg:5000/team/app:2"]
        assert manifest[0]["Config"] == f"{image.id[7:]}.json"
        repositories = json.loads(tarfile.open(out).extractfile("repositories").read())
        assert set(repositories) == {"app", "myreg:5000/team/app"}
        layer = tarfile.open(out).extractfile(manifest[0]["Layers"][1]).read()
        assert sha(layer) == image.layers[1]  # docker save layers are uncompressed
    else:
        assert "oci-layout" in names
        index = json.loads(tarfile.open(out).extractfile("index.json").read())
        refs = {d["annotations"]["org.opencontainers.image.ref.name"] for d in index["manifests"]}
        assert refs == {"1", "2"}
    store.remove(image.id, force=True)
    assert store.layers.list() == []
    with pytest.raises(ImageNotFound):
        store.get("app:1")
    [back] = store.import_archive(out)
    assert back.id == image.id
    assert back.layers == image.layers
    assert back.familiar_tags == ["app:1", "myreg:5000/team/app:2"]
    assert back.container_config == {"Cmd": ["/app/run"], "Env": ["A=1"]}
    if fmt == "oci":
        assert back.digest == image.digest
    assert (store.layer_paths(back)[1] / "app/run").read_bytes() == b"app"


def test_export_is_deterministic_and_by_id_has_no_tags(store, tmp_path):
    image = commit_layers(store, [BASE], "base:1")
    store.export([image.id], tmp_path / "a.tar")
    store.export([image.id], tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    manifest = json.loads(tarfile.open(tmp_path / "a.tar").extractfile("manifest.json").read())
    assert manifest[0]["RepoTags"] is None


def test_malformed_oci_manifest_is_an_archive_error(store, tmp_path):
    manifest = json.dumps({"schemaVersion": 2, "layers": []}).encode()  # no config
    archive = write_tar(tmp_path / "bad.tar", {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": json.dumps({"schemaVersion": 2, "manifests": [
            {"digest": sha(manifest), "size": len(manifest)}]}).encode(),
        f"blobs/sha256/{sha(manifest)[7:]}": manifest,
    })
    with pytest.raises(InvalidArchive, match="malformed"):
        store.import_archive(archive)
