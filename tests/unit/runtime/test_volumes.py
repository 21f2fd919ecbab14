"""VolumeStore: create/list/inspect/remove, refusal while in use, copy-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from node_agent.runtime.volumes import VolumeError, VolumeInUse, VolumeNotFound, VolumeStore


def test_create_is_idempotent_and_lays_out_data_dir(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    vol = store.create("data", labels={"app": "web"})
    assert vol.mountpoint == str(tmp_path / "volumes" / "data" / "_data")
    assert Path(vol.mountpoint).is_dir()
    (Path(vol.mountpoint) / "f").write_text("kept")
    again = store.create("data")
    assert again.created_at == vol.created_at and again.labels == {"app": "web"}
    assert (Path(again.mountpoint) / "f").read_text() == "kept"
    assert [v.name for v in store.list()] == ["data"]


def test_anonymous_volume_gets_generated_name(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    vol = store.create()
    assert vol.anonymous and len(vol.name) == 64


def test_remove_refused_while_in_use_unless_forced(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    store.create("data")
    with pytest.raises(VolumeInUse, match="in use"):
        store.remove("data", used_by=["abc123"])
    assert store.exists("data")
    store.remove("data")
    assert not store.exists("data")
    with pytest.raises(VolumeNotFound):
        store.get("data")


@pytest.mark.parametrize("name", ["../x", "a/b", "-x", ""])
def test_invalid_names(tmp_path: Path, name: str) -> None:
    store = VolumeStore(tmp_path)
    with pytest.raises((VolumeError, VolumeNotFound)):
        store.get(name) if not name else store._dir(name)


def test_copy_up_seeds_only_empty_volumes(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    src = tmp_path / "image-dir"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "file").write_text("from image")
    store.create("v")
    assert store.copy_up("v", src)
    assert (Path(store.get("v").mountpoint) / "sub" / "file").read_text() == "from image"
    (src / "sub" / "file").write_text("changed")
    assert not store.copy_up("v", src)
