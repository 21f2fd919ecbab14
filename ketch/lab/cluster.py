"""`ketch up` / `ketch down`: bring the lab's components up in order, or down in reverse."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

from ketch.lab import processes
from ketch.lab.components import Component, LabLayout, LabSettings, lab_components, wait_ready

CONTEXT = "ketch"
CLUSTER = "ketch"
USER = "ketch-admin"


class LabError(Exception):
    """`ketch up` could not finish; the message says which component and where its log is."""


def effective_settings(layout: LabLayout, overrides: dict[str, object]) -> LabSettings:
    """Saved settings of this state dir, with flags given now taking precedence."""
    settings = LabSettings.load(layout.settings_file) or LabSettings()
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, value)
    return settings


def admin_token(layout: LabLayout) -> str:
    """The admin token the apiserver wrote into its token file on first start."""
    for line in layout.token_file.read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) > 1 and parts[1] == "admin":
            return parts[0]
    raise LabError(f"no admin token in {layout.token_file}")


def write_kubeconfig(layout: LabLayout, settings: LabSettings, path: str) -> None:
    """Merge the lab's admin context into `path` (keeping everything else) and make it current."""
    from ketch.client.kubeconfig import merge_context_into_file

    ca = base64.b64encode(layout.ca_file.read_bytes()).decode()
    merge_context_into_file(
        path,
        name=CONTEXT,
        cluster_name=CLUSTER,
        user_name=USER,
        cluster={"server": f"https://{settings.bind_address}:{settings.apiserver_port}",
                 "certificate-authority-data": ca},
        user={"token": admin_token(layout)},
    )


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_component(c: Component) -> tuple[int, bool]:
    """(pid, started now?) — a component already running is left alone."""
    pid = processes.running_pid(c.pid_file)
    if pid is not None:
        if not wait_ready(c, lambda: processes.running_pid(c.pid_file) is not None):
            raise LabError(f"{c.name} (pid {pid}) runs but is not ready; see {c.log_file}")
        return pid, False
    pid = processes.spawn(c.argv, pid_file=c.pid_file, log_file=c.log_file, env=c.env)
    if not wait_ready(c, lambda: processes.running_pid(c.pid_file) is not None):
        alive = processes.running_pid(c.pid_file) is not None
        state = "did not become ready in time" if alive else "exited"
        raise LabError(f"{c.name} {state}; its log {c.log_file} ends with:\n{_log_tail(c.log_file)}")
    return pid, True


def up(layout: LabLayout, settings: LabSettings, kubeconfig_path: str,
       say: Callable[[str], None] = print) -> int:
    """Start what is not running, wait for each to be ready, then point the kubeconfig at it."""
    if os.geteuid() != 0 and layout.run_dir == Path("/run/ketch"):
        raise LabError("ketch up needs root for /run/ketch and /var/lib/ketch; "
                       "run it as root or pass --state-dir DIR")
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    settings.save(layout.settings_file)
    components = lab_components(layout, settings)
    results = []
    for c in components:
        pid, fresh = start_component(c)
        results.append((c, pid, fresh))
    write_kubeconfig(layout, settings, kubeconfig_path)
    if not any(fresh for _, _, fresh in results):
        say("Ketch is already running.")
    else:
        say("Ketch is up.")
    width = max(len(c.name) for c in components)
    for c, pid, fresh in results:
        note = "started" if fresh else "already running"
        say(f"  {c.name.ljust(width)}  {c.endpoint}  pid {pid} ({note}), log {c.log_file}")
    say(f'Kubeconfig {kubeconfig_path}: context "{CONTEXT}" is current.')
    say("Try:  ketch get ns    (kubectl get ns works too)")
    say(f"Stop: ketch down     (state stays in {layout.state_dir})")
    return 0


def down(layout: LabLayout, say: Callable[[str], None] = print) -> int:
    """Stop the recorded daemons, last started first; state on disk is kept."""
    settings = LabSettings.load(layout.settings_file) or LabSettings()
    components = lab_components(layout, settings)
    pid_files = [c.pid_file for c in reversed(components)]
    # pid files of components no longer in the list (an older or newer ketch) too
    if layout.run_dir.is_dir():
        pid_files += [p for p in sorted(layout.run_dir.glob("*.pid")) if p not in pid_files]
    stopped = []
    for pid_file in pid_files:
        if processes.stop(pid_file):
            stopped.append(pid_file.stem)
    if stopped:
        say(f"Stopped {', '.join(stopped)}. State is kept in {layout.state_dir}; `ketch up` resumes it.")
    else:
        say("Ketch is not running.")
    return 0


def status(layout: LabLayout) -> list[tuple[str, int | None]]:
    settings = LabSettings.load(layout.settings_file) or LabSettings()
    return [(c.name, processes.running_pid(c.pid_file)) for c in lab_components(layout, settings)]
