"""RecordStore: write-through records, lookup by id, prefix and name."""

from __future__ import annotations

from pathlib import Path

import pytest
from node_agent.runtime.state import ContainerRecord, RecordStore, SandboxRecord


def record(cid: str, name: str, volumes: list[str] | None = None) -> ContainerRecord:
    return ContainerRecord(id=cid, name=name, image="busybox", image_id="sha256:1", sandbox_id=cid,
                           implicit_sandbox=True, created_at=1, config={}, args=["true"], env=[],
                           working_dir="/", user="", uid=0, gid=0, hostname="h", tty=False, stdin=False,
                           mounts=[], log_path="/x", rootfs="/r", named_volumes=volumes or [])


def test_records_survive_a_new_store_and_are_found_by_name_and_prefix(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    store.put_container(record("abc123" + "0" * 58, "web", ["data"]))
    store.put_container(record("abd456" + "0" * 58, "db"))
    store.put_sandbox(SandboxRecord(id="s1", name="pod", created_at=1, config={}, hostname="h",
                                    network="bridge", netns_path="/n", files_dir="/f"))
    again = RecordStore(tmp_path)
    assert again.find_container("web").name == "web"
    assert again.find_container("/db").name == "db"
    assert again.find_container("abc").name == "web"
    with pytest.raises(LookupError, match="multiple containers"):
        again.find_container("ab")
    assert again.find_container("zzz") is None
    assert again.find_sandbox("s1").network == "bridge"
    assert again.volume_users("data") == ["abc1230" + "0" * 5]
    again.delete_container("abc123" + "0" * 58)
    assert RecordStore(tmp_path).find_container("web") is None


def test_unknown_fields_from_a_newer_version_are_ignored(tmp_path: Path) -> None:
    import json

    store = RecordStore(tmp_path)
    rec = record("f" * 64, "x")
    store.put_container(rec)
    path = tmp_path / "records" / "containers" / f"{'f' * 64}.json"
    data = json.loads(path.read_text())
    data["future_field"] = 1
    path.write_text(json.dumps(data))
    assert RecordStore(tmp_path).find_container("x").id == "f" * 64
