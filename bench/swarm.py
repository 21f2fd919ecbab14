"""The Docker swarm peer for `bench cluster`: a private single-node swarm, measured, then removed.

Not a benchmark of its own (no main()): `bench.cluster` uses it to time
`docker service create --replicas N` of the same busybox image Ketch runs.

The engine is Debian's docker.io, started by us as root with every path of its
own (data root, exec root, pid file, socket) in a temporary directory, so a
system Docker, if any, is never touched. `--iptables=false --ip-masq=false
--bridge=none` keep it out of the host firewall and routes. A swarm needs a
`docker_gwbridge` network for its ingress sandbox; we create it before
`swarm init` with a ketch-prefixed bridge name so the one link it adds to the
host is ours to find and remove. Service tasks get no network (the default
bridge is disabled), which is all a `sleep` needs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE = "ketchbench/busybox:latest"


def _docker_cgroups() -> list[str]:
    """`/sys/fs/cgroup/<hierarchy>/docker` (v1) and `/sys/fs/cgroup[/unified]/docker` (v2)."""
    return [str(p) for p in Path("/sys/fs/cgroup").glob("*/docker") if p.is_dir()] + (
        ["/sys/fs/cgroup/docker"] if Path("/sys/fs/cgroup/docker").is_dir() else [])


class SwarmUnavailable(Exception):
    """The peer cannot run here; the message says why (shown instead of the swarm figure)."""


def ensure_docker_installed() -> None:
    """Install Debian's docker.io when dockerd is absent (the service is not started by apt)."""
    if shutil.which("dockerd") and Path("/usr/bin/docker").exists():
        return
    if os.geteuid() != 0:
        raise SwarmUnavailable("dockerd is not installed and installing docker.io needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "docker.io"],
                          capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0 or not shutil.which("dockerd"):
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-5:])
        raise SwarmUnavailable(f"apt-get install docker.io failed (exit {proc.returncode}):\n{tail}")


def docker_client() -> str:
    """The docker CLI matching Debian's engine (another `docker` may come first on PATH)."""
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")


@dataclass
class SwarmResult:
    replicas: int
    seconds: float  # from `docker service create` to all tasks Running
    engine_version: str


class PrivateSwarm:
    """A dockerd of our own in a temp dir, in a single-node swarm; `close()` undoes all of it."""

    def __init__(self, bridge_name: str, subnet: str = "10.231.0.0/24") -> None:
        if len(bridge_name) > 15:
            raise ValueError(f"bridge name {bridge_name!r} is longer than 15 characters")
        self.bridge_name = bridge_name
        self.subnet = subnet
        self.root = Path(tempfile.mkdtemp(prefix="ketch-bench-swarm-"))
        self.sock = self.root / "docker.sock"
        self.pid_file = self.root / "docker.pid"
        self.log_file = self.root / "dockerd.log"
        self.process: subprocess.Popen | None = None
        self.in_swarm = False
        #: dockerd makes a `docker` cgroup in every hierarchy; only those that were not there
        #: before it started are ours to remove.
        self.cgroups_before = set(_docker_cgroups())

    # -- plumbing -------------------------------------------------------------------------------

    def docker(self, *args: str, check: bool = True, timeout: float = 120,
               stdin: bytes | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([docker_client(), "-H", f"unix://{self.sock}", *args], input=stdin,
                              capture_output=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise SwarmUnavailable(f"docker {' '.join(args[:3])} failed: "
                                   f"{proc.stderr.decode(errors='replace').strip()}")
        return proc

    def start(self) -> str:
        """Start dockerd, wait for its API, set up the swarm; returns the engine version."""
        ensure_docker_installed()
        argv = ["dockerd", "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.pid_file), "-H", f"unix://{self.sock}",
                "--iptables=false", "--ip-masq=false", "--bridge=none", "--ip-forward=false"]
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            version = self.docker("version", "--format", "{{.Server.Version}}", check=False, timeout=10)
            if version.returncode == 0:
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-8:])
                raise SwarmUnavailable(f"dockerd did not start (log {self.log_file}):\n{tail}")
            time.sleep(0.2)
        # The swarm's gateway bridge, named by us, before `swarm init` would create docker_gwbridge.
        self.docker("network", "create", "--driver", "bridge", "--subnet", self.subnet,
                    "--opt", f"com.docker.network.bridge.name={self.bridge_name}",
                    "--opt", "com.docker.network.bridge.enable_icc=false",
                    "--opt", "com.docker.network.bridge.enable_ip_masquerade=false",
                    "docker_gwbridge")
        self.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        self.in_swarm = True
        return version.stdout.decode().strip()

    def import_busybox(self) -> None:
        """The same busybox rootfs Ketch's image store builds, imported as IMAGE."""
        tar = self.root / "busybox.tar"
        proc = subprocess.run([sys.executable, "-m", "node_agent.runtime.images.busybox",
                               "--root", str(self.root / "ketch-images"), "--tar", str(tar)],
                              capture_output=True, text=True, cwd=str(REPO_ROOT),
                              env={**os.environ, "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'node-agent'}"})
        if proc.returncode != 0:
            raise SwarmUnavailable(f"could not write the busybox rootfs: {proc.stderr.strip()}")
        self.docker("import", str(tar), IMAGE)

    def running_tasks(self, service: str) -> int:
        out = self.docker("service", "ps", service, "--filter", "desired-state=running",
                          "--format", "{{.CurrentState}}", check=False, timeout=30)
        return sum(1 for line in out.stdout.decode().splitlines() if line.startswith("Running"))

    def time_service(self, replicas: int, name: str = "ketchbench", timeout: float = 300) -> float:
        """Seconds from `docker service create` until all replicas are Running (polled every 0.2 s)."""
        began = time.monotonic()
        self.docker("service", "create", "--detach", "--name", name, "--replicas", str(replicas),
                    "--no-resolve-image", IMAGE, "sleep", "3600")
        while self.running_tasks(name) < replicas:
            if time.monotonic() - began > timeout:
                raise SwarmUnavailable(f"swarm had {self.running_tasks(name)}/{replicas} tasks "
                                       f"Running after {timeout:.0f} s")
            time.sleep(0.2)
        seconds = time.monotonic() - began
        self.docker("service", "rm", name, check=False)
        return seconds

    def close(self) -> None:
        """Leave the swarm, remove our bridge, stop dockerd by its pid, delete its directories."""
        if self.process is not None and self.process.poll() is None:
            try:
                if self.in_swarm:
                    self.docker("swarm", "leave", "--force", check=False, timeout=60)
                self._wait_containers_gone()
                self.docker("network", "rm", "docker_gwbridge", check=False, timeout=30)
            except subprocess.TimeoutExpired:
                pass
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._unmount_leftovers()
        subprocess.run(["ip", "link", "del", self.bridge_name], capture_output=True)
        self._remove_own_cgroups()
        shutil.rmtree(self.root, ignore_errors=True)

    def _remove_own_cgroups(self) -> None:
        """The `docker` cgroups this dockerd made, once empty (leaves first); never older ones."""
        for cgroup in sorted(set(_docker_cgroups()) - self.cgroups_before, key=len, reverse=True):
            for directory, _, _ in os.walk(cgroup, topdown=False):
                with contextlib.suppress(OSError):
                    os.rmdir(directory)

    def _wait_containers_gone(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = self.docker("ps", "-aq", check=False, timeout=30).stdout.split()
            if not left:
                return
            self.docker("rm", "-f", *[x.decode() for x in left], check=False, timeout=60)
            time.sleep(0.5)

    def _unmount_leftovers(self) -> None:
        """Mounts dockerd left under our root (netns bind mounts, overlays), deepest first."""
        try:
            mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        except OSError:
            return
        ours = sorted((m for m in mounts if m.startswith(str(self.root))), key=len, reverse=True)
        for target in ours:
            subprocess.run(["umount", "-l", target], capture_output=True)


def measure(replicas: int, bridge_name: str) -> SwarmResult:
    """Bring up a private swarm, time `service create --replicas N` to all Running, tear it down."""
    swarm = PrivateSwarm(bridge_name)
    try:
        version = swarm.start()
        swarm.import_busybox()
        seconds = swarm.time_service(replicas)
        return SwarmResult(replicas=replicas, seconds=seconds, engine_version=version)
    finally:
        swarm.close()
