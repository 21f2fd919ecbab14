"""The committed gRPC stubs must be exactly what `make proto` generates now."""

from __future__ import annotations

from pathlib import Path

import pytest

from proto import generate


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    written = generate.generate(tmp_path)
    assert written, "no .proto files found under proto/"
    stale = []
    for fresh in written:
        committed = generate.PROTO_DIR / fresh.name
        if not committed.exists() or committed.read_bytes() != fresh.read_bytes():
            stale.append(fresh.name)
    assert not stale, f"stale generated stubs {stale}: run `make proto` and commit them"


def test_stubs_import_and_name_the_services() -> None:
    from proto import runtime_pb2, runtime_pb2_grpc

    services = runtime_pb2.DESCRIPTOR.services_by_name
    assert set(services) == {"RuntimeService", "ImageService", "VolumeService", "NetworkService"}
    assert "Exec" in services["RuntimeService"].methods_by_name
    assert hasattr(runtime_pb2_grpc, "RuntimeServiceStub")
