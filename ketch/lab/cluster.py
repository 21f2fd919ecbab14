"""`ketch up` / `ketch down`: the lab's network, then its daemons stage by stage; down in reverse.

Stages: 0 the apiserver (with its etcd); 1 the controller-manager, the
scheduler and every node's runtime; 2 every node's agent. Daemons of one
stage start together and are waited for together, which keeps `ketch up` to
seconds. Anything already running (checked by pid and start time) is kept,
so `ketch up` on a half-running lab restarts only what is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ketch.lab import components as components_mod
from ketch.lab import network, processes, teardown
from ketch.lab.api import LabError, forget_kubeconfig, lab_client, write_kubeconfig
from ketch.lab.components import Component, LabLayout, LabSettings, lab_components

__all__ = ["LabError", "up", "down", "status", "kernel_leftovers", "effective_settings"]

SAMPLE_APP = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "web.yaml"


def effective_settings(layout: LabLayout, overrides: dict[str, object]) -> LabSettings:
    """Saved settings of this state dir, with flags given now taking precedence.

    A new lab keeps etcd's default loopback ports unless they are taken (by
    another lab, say): then it takes free ones, kept in lab.json from then on.
    """
    saved = LabSettings.load(layout.settings_file)
    settings = saved or LabSettings()
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, value)
    if saved is None:
        for key in ("etcd_client_port", "etcd_peer_port"):
            if overrides.get(key) is None and _port_taken(getattr(settings, key)):
                setattr(settings, key, _free_port())
    return settings


def _port_taken(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return False
        except OSError:
            return True


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _still_taken(host: str, port: int, patience: float = 5.0) -> bool:
    """Taken, and not just by a process that is still dying (killed a moment ago)."""
    deadline = time.monotonic() + patience
    while components_mod.port_taken(host, port):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)
    return False


def start_stage(components: list[Component]) -> list[tuple[Component, int, bool]]:
    """Start what of `components` is not running, then wait until each is ready.

    Returns (component, pid, started now?) in the given order.
    """
    started: dict[str, tuple[int, bool]] = {}
    for c in components:
        pid = processes.running_pid(c.pid_file)
        if pid is None:
            if c.listens and _still_taken(*c.listens):
                host, port = c.listens
                raise LabError(f"{c.name}: {host}:{port} is already taken by another process (a leftover of "
                               "an earlier lab?); stop it, or run `make clean-host`")
            pid = processes.spawn(c.argv, pid_file=c.pid_file, log_file=c.log_file, env=c.env)
            started[c.name] = (pid, True)
        else:
            started[c.name] = (pid, False)
    pending = list(components)
    deadline = time.monotonic() + max(c.ready_timeout for c in components)
    while pending:
        for c in list(pending):
            if c.ready():
                pending.remove(c)
            elif processes.running_pid(c.pid_file) is None:
                raise LabError(f"{c.name} exited; its log {c.log_file} ends with:\n{_log_tail(c.log_file)}")
        if pending and time.monotonic() > deadline:
            c = pending[0]
            raise LabError(f"{c.name} did not become ready in time; its log {c.log_file} ends with:\n"
                           f"{_log_tail(c.log_file)}")
        if pending:
            time.sleep(0.1)
    return [(c, *started[c.name]) for c in components]


def put_busybox(layout: LabLayout, settings: LabSettings) -> None:
    """The offline busybox image in every node's image store (idempotent; the store has its own lock)."""
    from node_agent.runtime.images.busybox import ensure_busybox
    from node_agent.runtime.images.store import ImageStore

    if not Path("/bin/busybox").exists():
        raise LabError("/bin/busybox not found: install Debian's busybox-static (apt-get install busybox-static)")

    def build(node: str) -> None:
        images = layout.runtime_root(node) / "images"
        images.mkdir(parents=True, exist_ok=True)
        ensure_busybox(ImageStore(images))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(build, settings.node_names()))


def _heartbeat(node: dict) -> float | None:
    """Seconds since the epoch of the Ready condition's lastHeartbeatTime, if it is True."""
    from datetime import datetime

    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            stamp = str(c.get("lastHeartbeatTime") or "").replace("Z", "+00:00")
            try:
                return datetime.fromisoformat(stamp).timestamp()
            except ValueError:
                return 0.0
    return None


def wait_nodes_ready(layout: LabLayout, settings: LabSettings, restarted_since: dict[str, float],
                     timeout: float = 90.0) -> list[str]:
    """Wait until every lab node is Ready; returns those that are not (empty on success).

    A node whose agent was (re)started now counts only with a heartbeat from
    after that start: a Ready condition left over from before `ketch down` is
    no proof of life.
    """
    wanted = set(settings.node_names())
    deadline = time.monotonic() + timeout
    client = lab_client(layout, settings)
    try:
        while True:
            try:
                items = client.get("/api/v1/nodes").get("items") or []
            except OSError:
                items = []
            ready = set()
            for n in items:
                name, beat = n["metadata"]["name"], _heartbeat(n)
                if beat is not None and beat >= restarted_since.get(name, 0.0) - 1.0:
                    ready.add(name)
            if wanted <= ready or time.monotonic() > deadline:
                return sorted(wanted - ready)
            time.sleep(0.2)
    finally:
        client.close()


def ketch_cli(layout: LabLayout, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The ketch CLI against the lab with its admin kubeconfig."""
    return subprocess.run([sys.executable, "-m", "ketch.cli.main", "--kubeconfig", str(layout.kubeconfig), *args],
                          capture_output=True, text=True, timeout=timeout)


def deploy_sample_app(layout: LabLayout, settings: LabSettings, say: Callable[[str], None],
                      timeout: float = 90.0) -> None:
    """Apply deploy/examples/web.yaml and wait until the web Deployment is available."""
    applied = ketch_cli(layout, "apply", "-f", str(SAMPLE_APP))
    if applied.returncode != 0:
        raise LabError(f"ketch apply -f {SAMPLE_APP} failed: {applied.stderr.strip()}")
    client = lab_client(layout, settings)
    deadline = time.monotonic() + timeout
    try:
        while True:
            deploy = client.get("/apis/apps/v1/namespaces/default/deployments/web")
            want = (deploy.get("spec") or {}).get("replicas", 1)
            have = (deploy.get("status") or {}).get("availableReplicas", 0)
            if have >= want:
                say(f"Sample app: deployment web has {have}/{want} pods available "
                    f"(kubectl get pods -o wide).")
                return
            if time.monotonic() > deadline:
                raise LabError(f"the sample app has {have}/{want} pods available after {timeout:.0f}s: "
                               "see `kubectl describe deploy web` and `kubectl get events`")
            time.sleep(0.3)
    finally:
        client.close()


def up(layout: LabLayout, settings: LabSettings, kubeconfig_path: str,
       say: Callable[[str], None] = print, *, with_sample_app: bool = False) -> int:
    """Make the network, start what is not running, wait for Ready nodes, point the kubeconfig at it."""
    if os.geteuid() != 0:
        raise LabError("ketch up needs root: it makes network namespaces, a bridge and cgroups")
    try:
        settings.validate()
    except ValueError as err:
        raise LabError(str(err)) from None
    saved = LabSettings.load(layout.settings_file)
    if saved is not None and saved.name != settings.name:
        raise LabError(f"{layout.state_dir} holds lab {saved.name!r}, not {settings.name!r}: "
                       "pick another --state-dir or the same --name")
    if saved is not None and saved.subnet != settings.subnet and (
            network.lab_links(saved) or network.lab_netns(saved)):
        raise LabError(f"lab {saved.name!r} is wired on {saved.subnet}: `ketch down` first to move it "
                       f"to {settings.subnet}")
    for node in settings.node_names():
        if len(str(layout.runtime_socket(node))) > 107:
            raise LabError(f"{layout.runtime_socket(node)} is too long for a unix socket (107 bytes at most): "
                           "choose a shorter --state-dir")
    t0 = time.monotonic()
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    settings.save(layout.settings_file)
    network.ensure_network(settings)
    components = lab_components(layout, settings)
    results = start_stage([c for c in components if c.stage == 0])
    write_kubeconfig(layout, settings, layout.kubeconfig)
    put_busybox(layout, settings)
    restarted: dict[str, float] = {}
    for stage in sorted({c.stage for c in components} - {0}):
        stage_start = time.time()
        stage_results = start_stage([c for c in components if c.stage == stage])
        if stage == 1:
            clear_stale_pods(layout, settings, say)
        restarted.update({c.node: stage_start for c, _, started in stage_results if started and c.node})
        results += stage_results
    not_ready = wait_nodes_ready(layout, settings, restarted)
    if not_ready:
        raise LabError(f"node(s) {', '.join(not_ready)} not Ready: see `kubectl describe node {not_ready[0]}` "
                       f"and {layout.log_dir}/{not_ready[0]}-node-agent.log")
    write_kubeconfig(layout, settings, kubeconfig_path)
    fresh = [c.name for c, _, started in results if started]
    if not fresh:
        say(f"Ketch lab {settings.name!r} is already running and healthy ({settings.nodes} nodes Ready).")
    elif len(fresh) < len(results):
        say(f"Ketch lab {settings.name!r} was partly running: restarted {', '.join(fresh)}.")
    else:
        say(f"Ketch lab {settings.name!r} is up: {settings.nodes} nodes Ready in {time.monotonic() - t0:.1f}s.")
    width = max(len(c.name) for c in components)
    for c, pid, started in results:
        note = "started" if started else "already running"
        say(f"  {c.name.ljust(width)}  pid {pid} ({note})  {c.endpoint}")
    say(f"Logs in {layout.log_dir}, state in {layout.state_dir}.")
    if with_sample_app:
        deploy_sample_app(layout, settings, say)
    say(f'Kubeconfig {kubeconfig_path}: context "{settings.context}" is current.')
    say("Try:  kubectl get nodes -o wide    (ketch get nodes works too)")
    say(f"Stop: ketch down{_lab_flags(layout, settings)}    (state stays; add --purge to delete it)")
    return 0


def _lab_flags(layout: LabLayout, settings: LabSettings) -> str:
    if layout == LabLayout.under(None, settings.name):
        return "" if settings.name == "lab" else f" --name {settings.name}"
    return f" --state-dir {layout.state_dir}"


def _stop_all(pid_files: list[Path]) -> list[str]:
    with ThreadPoolExecutor(max_workers=max(1, len(pid_files))) as pool:
        stopped = list(pool.map(processes.stop, pid_files))
    return [p.stem for p, s in zip(pid_files, stopped, strict=True) if s]


def down(layout: LabLayout, say: Callable[[str], None] = print, *, purge: bool = False,
         settings: LabSettings | None = None, kubeconfig_path: str | None = None) -> int:
    """Power the lab off: agents, containers, daemons; then its kernel objects. State is kept unless purge."""
    settings = settings or LabSettings.load(layout.settings_file) or LabSettings()
    components = lab_components(layout, settings)
    by_kind = {kind: [c for c in components if c.kind == kind]
               for kind in ("node-agent", "runtime", "scheduler", "controller-manager", "apiserver")}
    stopped = _stop_all([c.pid_file for c in by_kind["node-agent"]])
    live_runtimes = [c for c in by_kind["runtime"] if processes.running_pid(c.pid_file) is not None]
    for c in by_kind["runtime"]:
        if c not in live_runtimes and layout.runtime_root(c.node or "").is_dir():
            _mark_unclean(layout, c.node or "")
    with ThreadPoolExecutor(max_workers=max(1, len(live_runtimes))) as pool:
        counts = list(pool.map(lambda c: _power_off(layout, c.node or "", say), live_runtimes))
    if sum(counts):
        say(f"Stopped {sum(counts)} container{'s' if sum(counts) != 1 else ''}.")
    stopped += _stop_all([c.pid_file for c in by_kind["runtime"]])
    stopped += _stop_all([c.pid_file for c in by_kind["scheduler"] + by_kind["controller-manager"]])
    stopped += _stop_all([c.pid_file for c in by_kind["apiserver"]])
    # pid files of components no longer in the list (a lab once started with more nodes)
    if layout.run_dir.is_dir():
        known = {c.pid_file for c in components}
        stopped += _stop_all([p for p in sorted(layout.run_dir.glob("*.pid")) if p not in known])
    teardown.kill_shims(layout, settings)
    strays = teardown.kill_strays(layout, settings)
    if strays:
        say(f"Killed {strays} processes of the lab that had lost their pid files.")
    teardown.kill_cgroup_processes(settings)
    teardown.unmount_under(layout.mount_dirs(settings))
    teardown.remove_cgroups(settings)
    network.remove_network(settings)
    if stopped:
        say(f"Stopped {', '.join(stopped)}.")
    else:
        say(f"Ketch lab {settings.name!r} is not running.")
    if purge:
        purge_state(layout, settings)
        say(f"Deleted the lab's state, pid files and logs ({layout.state_dir}).")
        if kubeconfig_path and forget_kubeconfig(settings, kubeconfig_path):
            say(f'Removed context "{settings.context}" from {kubeconfig_path}.')
    else:
        say(f"State is kept in {layout.state_dir}; `ketch up{_lab_flags(layout, settings)}` resumes it.")
    left = kernel_leftovers(layout, settings)
    if left:
        say("Left behind (could not remove): " + ", ".join(left))
        return 1
    return 0


def _power_off(layout: LabLayout, node: str, say: Callable[[str], None]) -> int:
    try:
        return teardown.power_off_containers(layout.runtime_socket(node))
    except Exception as err:  # noqa: BLE001 - the cgroup sweep still stops them
        reason = err.details() if hasattr(err, "details") else str(err)
        say(f"warning: could not stop the containers of {node} through its runtime ({reason}); killing them")
        _mark_unclean(layout, node)
        return 0


def _mark_unclean(layout: LabLayout, node: str) -> None:
    marker = layout.dirty_marker(node)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def clear_stale_pods(layout: LabLayout, settings: LabSettings, say: Callable[[str], None]) -> None:
    """After an unclean power-off, drop the sandboxes and containers a node's runtime still records.

    Their processes and namespaces are gone; removing the records (before the
    agent starts) lets the agent start those pods afresh, as after a reboot.
    """
    for node in settings.node_names():
        marker = layout.dirty_marker(node)
        if marker.exists():
            teardown.power_off_containers(layout.runtime_socket(node))
            marker.unlink()
            say(f"{node}: cleared the pods of its last unclean power-off")


def purge_state(layout: LabLayout, settings: LabSettings) -> None:
    """Delete what the lab wrote (and only that): its files in the state, run and log dirs."""
    state_entries = ["apiserver", "nodes", "admin.kubeconfig", "lab.json"]
    for name in state_entries:
        path = layout.state_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    for node_run_root in layout.run_dir.glob(f"{settings.name}-n[0-9]*"):
        shutil.rmtree(node_run_root, ignore_errors=True)
    for d in (layout.run_dir, layout.log_dir):
        for f in list(d.glob("*.pid")) + list(d.glob("*.log")) if d.is_dir() else []:
            f.unlink(missing_ok=True)
    for d in (layout.run_dir, layout.log_dir, layout.state_dir):
        try:
            d.rmdir()  # only when nothing else is in it
        except OSError:
            pass


def kernel_leftovers(layout: LabLayout, settings: LabSettings) -> list[str]:
    """Processes and kernel objects of this lab that exist now (empty after a clean `ketch down`)."""
    return ([f"process {p}" for p in teardown.lab_processes(layout, settings)]
            + [f"netns {n}" for n in network.lab_netns(settings)]
            + [f"link {n}" for n in network.lab_links(settings)]
            + [f"cgroup {p}" for p in teardown.lab_cgroups(settings)]
            + [f"mount {m}" for m in teardown.mounts_under(layout.mount_dirs(settings))])


def status(layout: LabLayout) -> list[tuple[str, int | None]]:
    settings = LabSettings.load(layout.settings_file) or LabSettings()
    return [(c.name, processes.running_pid(c.pid_file)) for c in lab_components(layout, settings)]
