"""`ketch down` as a machine power-off: containers stopped, then whatever the lab left in the kernel.

Containers are stopped through each node's runtime (StopContainer for all,
then RemovePodSandbox, which also releases pod addresses and the sandbox's
namespace mounts) so that the next `ketch up` starts them afresh, as a
kubelet does after a reboot. What a crashed runtime could not stop is found
by the lab's own marks only: processes in the lab's cgroups, shims named in
its state files; mounts under its directories; cgroups named after its nodes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ketch.lab.components import LabLayout, LabSettings

log = logging.getLogger("ketch.lab")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def power_off_containers(socket_path: Path, grace: float = 2.0) -> int:
    """Stop every container of one runtime (in parallel) and remove its pod sandboxes.

    Returns how many containers were running.
    """
    from node_agent.runtime.client import RuntimeClient

    from proto import runtime_pb2 as pb

    client = RuntimeClient(str(socket_path))
    try:
        listing = client.runtime.ListContainers(
            pb.ListContainersRequest(filter=pb.ContainerFilter(all=True)), timeout=10)
        running = [c.id for c in listing.containers if c.state == pb.CONTAINER_RUNNING]

        def stop(cid: str) -> None:
            try:
                client.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=int(grace)),
                                             timeout=grace + 20)
            except Exception as err:  # noqa: BLE001 - the cgroup sweep below still kills it
                log.warning("stop container=%s failed: %s", cid, err)

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(stop, running))
        for sandbox in client.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items:
            try:
                client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox.id), timeout=30)
            except Exception as err:  # noqa: BLE001
                log.warning("remove sandbox=%s failed: %s", sandbox.id, err)
        return len(running)
    finally:
        client.close()


# ------------------------------------------------------------------ cgroups


def lab_cgroups(settings: LabSettings) -> list[Path]:
    """Top cgroups of the lab's nodes in every hierarchy (v1 controllers and the v2 mount)."""
    pattern = re.compile(rf"^ketch-{settings.name}-n\d+$")
    found = []
    roots = [CGROUP_ROOT] + [p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink()] \
        if CGROUP_ROOT.is_dir() else []
    for root in roots:
        try:
            entries = list(root.iterdir())
        except OSError:
            continue
        found += [p for p in entries if p.is_dir() and pattern.match(p.name)]
    return found


def _subdirs_deepest_first(root: Path) -> list[Path]:
    """Every directory below ``root``; ones that vanish during the walk (a runtime removing
    its cgroups as it dies) are simply not there, never an error."""
    return [Path(d) for d, _, _ in os.walk(root, topdown=False) if Path(d) != root]


def _cgroup_procs(cgroup: Path) -> list[int]:
    pids = []
    for procs in [cgroup / "cgroup.procs", *(d / "cgroup.procs" for d in _subdirs_deepest_first(cgroup))]:
        try:
            pids += [int(p) for p in procs.read_text().split()]
        except (OSError, ValueError):
            pass
    return sorted(set(pids))


def kill_cgroup_processes(settings: LabSettings) -> int:
    """SIGKILL what still runs in the lab's cgroups (a container its runtime could not stop)."""
    killed = set()
    for cgroup in lab_cgroups(settings):
        for pid in _cgroup_procs(cgroup):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
    return len(killed)


def remove_cgroups(settings: LabSettings) -> list[str]:
    removed = []
    for _ in range(50):
        left = lab_cgroups(settings)
        if not left:
            break
        for cgroup in left:
            for d in _subdirs_deepest_first(cgroup):
                try:
                    d.rmdir()
                except OSError:
                    pass
            try:
                cgroup.rmdir()
                removed.append(str(cgroup))
            except OSError:
                pass
        time.sleep(0.1)  # a killed process leaves its cgroup a moment later
    return removed


# ------------------------------------------------------------------ shims


def kill_shims(layout: LabLayout, settings: LabSettings) -> int:
    """SIGKILL shims and container processes the nodes' state files name, if visibly the lab's."""
    killed = 0
    for node in settings.node_names():
        root, run_root = str(layout.runtime_root(node)), str(layout.runtime_run_root(node))
        for state in layout.runtime_root(node).glob("containers/*/state.json"):
            try:
                data = json.loads(state.read_text())
            except (OSError, ValueError):
                continue
            for key in ("shim_pid", "pid"):
                pid = data.get(key)
                if pid and _visibly_ours(int(pid), (root, run_root), settings.cgroup_parent(node)):
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                        killed += 1
                    except ProcessLookupError:
                        pass
    return killed


def _visibly_ours(pid: int, dirs: tuple[str, ...], cgroup_parent: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        cgroups = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False
    return f"/{cgroup_parent}/" in cgroups or f"/{cgroup_parent}\n" in cgroups or any(d in cmdline for d in dirs)


# ------------------------------------------------------------------ strays


def lab_marks(layout: LabLayout, settings: LabSettings) -> list[str]:
    """Paths only this lab's daemons name on their command lines (not the shared /var/lib/ketch)."""
    marks = [str(layout.apiserver_dir) + "/", str(layout.kubeconfig), str(layout.state_dir / "nodes") + "/"]
    return marks + [str(d) + "/" for d in layout.mount_dirs(settings)[1:]]


DAEMON_MARKS = (b"apiserver.main", b"controllers.main", b"scheduler.main", b"node_agent.", b"etcd ")


def lab_processes(layout: LabLayout, settings: LabSettings) -> list[int]:
    """Ketch daemons (and shims, etcd) whose command line names this lab's paths.

    After the recorded pids are stopped, these are strays: a pid file was lost.
    Only Ketch's own programs count, never a shell or `tail` that reads a lab file.
    """
    marks = [m.encode() for m in lab_marks(layout, settings)]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ") + b" "
        except OSError:
            continue
        if any(d in cmdline for d in DAEMON_MARKS) and any(
                m in cmdline or m.rstrip(b"/") + b" " in cmdline for m in marks):
            found.append(int(entry))
    return found


def kill_strays(layout: LabLayout, settings: LabSettings) -> int:
    pids = lab_processes(layout, settings)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


# ------------------------------------------------------------------ mounts


def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def mounts_under(dirs: list[Path]) -> list[str]:
    prefixes = [str(d).rstrip("/") + "/" for d in dirs]
    with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
        targets = [_unescape(line.split()[1]) for line in f if line.strip()]
    return sorted({t for t in targets if any(t.startswith(p) for p in prefixes)},
                  key=lambda t: -t.count("/"))


def unmount_under(dirs: list[Path]) -> list[str]:
    """Unmount everything mounted below the lab's directories, deepest first."""
    done: list[str] = []
    for _ in range(5):
        targets = mounts_under(dirs)
        if not targets:
            break
        for target in targets:
            subprocess.run(["umount", "-l", target], capture_output=True, timeout=20)
            done.append(target)
    return done
