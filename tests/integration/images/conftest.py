"""Image integration fixtures: a store under /tmp named with ketch and the run id, and
every overlay mounted beneath it unmounted in teardown (also when the test failed)."""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import tempfile
from pathlib import Path

import pytest
from node_agent.runtime.images.store import ImageStore
from node_agent.runtime.snapshots.overlay import OverlaySnapshotter

MNT_DETACH = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    points = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
    return sorted(points, key=len, reverse=True)


@pytest.fixture
def runtime_root(run_id):
    root = Path(tempfile.mkdtemp(prefix=f"ketch-{run_id}-images-", dir="/tmp"))
    yield root
    for point in mounts_under(root):
        _libc.umount2(point.encode(), MNT_DETACH)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def store(runtime_root):
    return ImageStore(runtime_root / "images")


@pytest.fixture
def snapshots(runtime_root, store):
    return OverlaySnapshotter(runtime_root / "containers", store)
