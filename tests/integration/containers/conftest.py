"""Fixtures for real containers: a busybox root filesystem made from the host's
busybox-static, and a ContainerManager whose cgroups carry the run id."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from node_agent.runtime.cgroups import detect, open_cgroup
from node_agent.runtime.containers import ContainerManager

APPLETS = ("sh", "echo", "true", "false", "cat", "ls", "hostname", "sleep", "ps", "id", "mount", "seq",
           "tail", "head", "grep", "insmod", "wc", "stat", "touch", "test", "kill", "env", "pwd", "tty",
           "stty", "readlink", "printf", "yes", "dd", "umount")


def make_busybox_rootfs(path: Path) -> Path:
    (path / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", path / "bin/busybox")
    for applet in APPLETS:
        os.symlink("busybox", path / "bin" / applet)
    for d in ("proc", "dev", "sys", "tmp", "etc", "root", "home/app"):
        (path / d).mkdir(parents=True, exist_ok=True)
    (path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
                                     "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (path / "etc/group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n")
    return path


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_busybox_rootfs(tmp_path / "rootfs")


@pytest.fixture
async def manager(tmp_path: Path, run_id: str):
    parent = f"ketch{run_id}"
    m = ContainerManager(tmp_path / "state", tmp_path / "run", cgroup_parent=parent)
    yield m
    for status in m.list():
        try:
            await m.remove(status.id, force=True)
        except Exception:  # noqa: BLE001 - teardown goes on; the cgroup sweep below catches the rest
            pass
    await m.close()
    layout = detect()
    leftover = open_cgroup(layout, parent)
    for directory in leftover.directories():
        if os.path.isdir(directory):
            for child in os.listdir(directory):
                sub = os.path.join(directory, child)
                if os.path.isdir(sub):
                    for pid in open(os.path.join(sub, "cgroup.procs")).read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    try:
                        os.rmdir(sub)
                    except OSError:
                        pass
    try:
        leftover.remove(timeout=2)
    except OSError:
        pass
