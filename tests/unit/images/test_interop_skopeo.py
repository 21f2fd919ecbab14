"""Our archives as another tool sees them: skopeo (containers/image) reads what we write,
and we read what it writes, in both formats."""

import shutil
import subprocess

import pytest
from node_agent.runtime.images.store import ImageStore

from .tarbuild import LayerTar, commit_layers

SKOPEO = shutil.which("skopeo")
pytestmark = pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed")

LAYERS = [
    LayerTar().file("bin/sh", b"shell", 0o755).file("etc/gone", b"x").build(),
    LayerTar().whiteout("etc/gone").file("app/run", b"app", 0o755).build(gz=True),
]
CONFIG = {"Entrypoint": ["/app/run"], "Cmd": ["--serve"], "Env": ["A=1"], "WorkingDir": "/app",
          "User": "65534", "ExposedPorts": {"80/tcp": {}}, "Labels": {"k": "v"}}


def skopeo(*args: str) -> None:
    subprocess.run([SKOPEO, "--insecure-policy", *args], check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize(
    ("ours", "source", "destination"),
    [
        ("docker", "docker-archive:{ours}", "oci-archive:{theirs}:quay.io/x/app:2"),
        ("oci", "oci-archive:{ours}:1", "docker-archive:{theirs}:quay.io/x/app:2"),
    ],
)
def test_skopeo_converts_our_archive_and_we_import_its_output(tmp_path, ours, source, destination):
    store = ImageStore(tmp_path / "ours")
    image = commit_layers(store, LAYERS, "app:1", CONFIG)
    ours_path, theirs_path = tmp_path / "ours.tar", tmp_path / "theirs.tar"
    store.export(["app:1"], ours_path, fmt=ours)
    skopeo("copy", source.format(ours=ours_path), destination.format(theirs=theirs_path))
    fresh = ImageStore(tmp_path / "fresh")
    [back] = fresh.import_archive(theirs_path)
    assert back.familiar_tags == ["quay.io/x/app:2"]
    assert back.layers == image.layers
    assert back.container_config == CONFIG
    top = fresh.layer_paths(back)[1]
    assert (top / "app/run").read_bytes() == b"app"
    assert (top / "etc/gone").is_char_device()
