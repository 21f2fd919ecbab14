"""`python -m bench runtime`: the container runtime against crun and docker, side by side.

1. Through the gRPC API: CreateContainer + StartContainer + WaitContainer of
   `true` from the busybox image, N times (network "none", as crun's bundle
   has an empty network namespace too; and once more on the default bridge).
2. `crun run` of the same root filesystem (an OCI bundle written here), one
   right after each of ours, so that both see the same machine load.
3. The whole `ketch runtime run --rm busybox true` command, and
   `docker run --rm` of the same root filesystem when a Docker engine answers.
4. Memory: the daemon idle and with 100 running `sleep` containers, and what
   each shim costs (PSS and RSS from /proc/<pid>/smaps_rollup).

The benchmark starts its own daemon (temporary state, its own network
namespace `ketchbench<pid>`, cgroup parent `ketchbench<pid>`) and removes all
of it at the end. crun 1.8 refuses hybrid cgroups while the cgroup2 mount
holds a controller (docs/MACHINE-NOTES), so on a hybrid host crun runs in a
mount namespace of its own whose /sys/fs/cgroup shows only the v1
hierarchies: nothing on the host is mounted or rebound.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(name: str, samples: list[float]) -> dict:
    return {"name": name, "n": len(samples), "p50_ms": pct(samples, 0.5) * 1e3, "p95_ms": pct(samples, 0.95) * 1e3}


def show(row: dict) -> None:
    print(f"  {row['name']:<44} n={row['n']:<4} p50 {row['p50_ms']:7.1f} ms   p95 {row['p95_ms']:7.1f} ms", flush=True)


# ------------------------------------------------------------------ our daemon


class BenchDaemon:
    def __init__(self, extra_args: list[str] | None = None) -> None:
        self.extra_args = list(extra_args or [])
        tag = f"ketchbench{os.getpid() % 100000}"
        self.tag = tag
        self.base = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
        self.root, self.run_root = self.base / "root", self.base / "run"
        self.socket = str(self.run_root / "runtime.sock")
        self.netns = tag
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        from node_agent.runtime.images.busybox import ensure_busybox
        from node_agent.runtime.images.store import ImageStore

        ensure_busybox(ImageStore(self.root / "images"))
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up"], check=True)
        env = dict(os.environ, PYTHONPATH=f"{REPO}:{REPO / 'node-agent'}")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node_agent.runtime.daemon", "--root", str(self.root),
             "--run-root", str(self.run_root), "--socket", self.socket, "--cgroup-parent", self.tag,
             "--netns", self.netns, "--link-prefix", "ketchbn", "--nft-table", "ketch_runtime_bench",
             "--bridge-subnet", "10.213.250.0/24", "--network-pool", "10.213.251.0/24", "--log-level", "warning",
             *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=open(self.base / "daemon.log", "wb"), env=env)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.socket.replace(".sock", ".json.sock")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the bench daemon did not start; see {self.base / 'daemon.log'}")
            time.sleep(0.05)

    def client(self):
        from node_agent.runtime.client import RuntimeClient

        return RuntimeClient(self.socket)

    def pids(self) -> list[int]:
        """The daemon and its spawner helpers (children of the daemon)."""
        if self.proc is None:
            return []
        out = [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            out += [int(c) for c in children]
        except OSError:
            pass
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with open("/proc/self/mounts") as f:
            mounts = sorted({line.split()[1] for line in f if str(self.base) in line.split()[1]}, reverse=True)
        for m in mounts:
            subprocess.run(["umount", "-l", m], capture_output=True)
        for ctl in Path("/sys/fs/cgroup").iterdir():
            for d in sorted((ctl / self.tag).glob("**/"), key=lambda p: -len(p.parts)) if (ctl / self.tag).is_dir() else []:
                try:
                    d.rmdir()
                except OSError:
                    pass
        subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def bench_api(daemon: BenchDaemon, n: int, network: str, crun: CrunRunner | None = None) -> tuple[dict, dict | None]:
    """Our create+start+wait, and (with `crun`) one `crun run` right after each of
    ours: the two see the same machine load, which on a shared box swings the
    figures by a factor of two within seconds."""
    from proto import runtime_pb2 as pb

    rt = daemon.client().runtime
    samples, crun_samples = [], []
    for i in range(n + 3):  # 3 warm-ups
        t0 = time.perf_counter()
        cid = rt.CreateContainer(pb.CreateContainerRequest(config=pb.ContainerConfig(
            image="busybox", command=["true"], network=network))).container_id
        rt.StartContainer(pb.StartContainerRequest(container_id=cid))
        code = rt.WaitContainer(pb.WaitContainerRequest(container_id=cid)).exit_code
        elapsed = time.perf_counter() - t0
        if code != 0:
            raise SystemExit(f"`true` exited {code} in the API benchmark")
        rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
        crun_elapsed = crun.run_once() if crun is not None else None
        if i >= 3:
            samples.append(elapsed)
            if crun_elapsed is not None:
                crun_samples.append(crun_elapsed)
    ours = summary(f"ketch API create+start+wait (network {network})", samples)
    return ours, (summary("crun run (same rootfs, `true`, interleaved)", crun_samples) if crun else None)


def bench_cli(daemon: BenchDaemon, n: int) -> dict:
    env = dict(os.environ, KETCH_RUNTIME_SOCKET=daemon.socket)
    # as on a user's machine: the first (warm-up) run leaves .pyc files behind
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    ketch = str(Path(sys.executable).parent / "ketch")
    argv = [ketch, "runtime", "run", "--rm", "busybox", "true"] if os.path.exists(ketch) else \
        [sys.executable, "-m", "ketch.cli.main", "runtime", "run", "--rm", "busybox", "true"]
    samples = []
    for i in range(n + 2):
        t0 = time.perf_counter()
        r = subprocess.run(argv, env=env, capture_output=True)
        elapsed = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"ketch runtime run failed: {r.stderr.decode()}")
        if i >= 2:
            samples.append(elapsed)
    return summary("`ketch runtime run --rm busybox true`", samples)


# ------------------------------------------------------------------ crun


def crun_ready(notes: list[str]) -> bool:
    if shutil.which("crun") is None:
        notes.append("crun is not installed (apt-get install crun): crun skipped")
        return False
    if hybrid_cgroups():
        notes.append("set-up: crun 1.8 refuses hybrid cgroups with a cgroup2 controller, so crun runs in a "
                     "mount namespace of its own whose /sys/fs/cgroup (a private tmpfs) holds only the v1 "
                     "hierarchies: the host's mounts and controller bindings are untouched")
    return True


def hybrid_cgroups() -> bool:
    return os.path.ismount("/sys/fs/cgroup/unified")


def v1_hierarchies() -> dict[str, str]:
    """Mount point -> options (controllers or name=) of each cgroup v1 hierarchy under /sys/fs/cgroup."""
    out = {}
    with open("/proc/self/mounts") as f:
        for line in f:
            _, target, fstype, options, *_ = line.split()
            if fstype == "cgroup" and target.startswith("/sys/fs/cgroup/"):
                wanted = [o for o in options.split(",") if o not in ("rw", "ro", "relatime", "nosuid",
                                                                     "nodev", "noexec", "clone_children")]
                out[target] = ",".join(wanted)
    return out


def _legacy_cgroup_view() -> None:
    """In a new mount namespace: a private tmpfs over /sys/fs/cgroup with the v1
    hierarchies mounted again (the same hierarchies, so crun's cgroups are the
    host's) and no cgroup2 mount, which crun 1.8 takes for plain cgroup v1."""
    from node_agent.runtime.linux import syscalls as sc

    hierarchies = v1_hierarchies()
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.mount("ketchbench", "/sys/fs/cgroup", "tmpfs", 0, "mode=755")
    for target, options in hierarchies.items():
        os.makedirs(target, exist_ok=True)
        sc.mount("cgroup", target, "cgroup", 0, options)


def crun_server(bundle: str, tag: str) -> None:
    """Child process: for each line read, one timed `crun run`; answers the seconds it took."""
    if hybrid_cgroups():
        _legacy_cgroup_view()
    print("ready", flush=True)
    for i, _ in enumerate(sys.stdin):
        t0 = time.perf_counter()
        r = subprocess.run(["crun", "run", "--bundle", bundle, f"{tag}-{i}"], capture_output=True,
                           stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - t0
        if r.returncode != 0:
            print(json.dumps({"error": r.stderr.decode().strip()}), flush=True)
            continue
        print(json.dumps({"seconds": elapsed}), flush=True)


class CrunRunner:
    """`crun run` of an OCI bundle of the busybox root filesystem, one at a time on request,
    from a process of its own (its mount namespace ends with it; this process, which
    holds a gRPC channel, is never forked)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.bundle = Path(tempfile.mkdtemp(prefix=f"{tag}-crun-"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        from node_agent.runtime.images.busybox import write_rootfs_dir

        write_rootfs_dir(self.bundle / "rootfs")
        subprocess.run(["crun", "spec"], cwd=self.bundle, check=True, capture_output=True)
        spec = json.loads((self.bundle / "config.json").read_text())
        spec["process"]["args"] = ["true"]
        spec["process"]["terminal"] = False
        spec["root"]["readonly"] = False
        spec.setdefault("linux", {})["cgroupsPath"] = f"{self.tag}-crun"
        (self.bundle / "config.json").write_text(json.dumps(spec))
        code = "import sys; from bench.runtime import crun_server; crun_server(sys.argv[1], sys.argv[2])"
        env = dict(os.environ, PYTHONPATH=f"{REPO}:{REPO / 'node-agent'}")
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(self.bundle), self.tag], env=env,
                                     cwd=str(REPO), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the crun helper did not start (see its stderr above)")

    def run_once(self) -> float:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline() or '{"error": "the crun helper exited"}')
        if "error" in answer:
            raise RuntimeError(f"crun run failed: {answer['error']}")
        return answer["seconds"]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.bundle, ignore_errors=True)
        for ctl in Path("/sys/fs/cgroup").iterdir():   # crun removes its cgroup; a failed run may not
            with contextlib.suppress(OSError):
                (ctl / f"{self.tag}-crun").rmdir()


# ------------------------------------------------------------------ docker


def docker_ready(notes: list[str]) -> bool:
    if shutil.which("docker") is None:
        notes.append("docker: no docker client: skipped")
        return False
    r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True)
    if r.returncode != 0 or not r.stdout.strip():
        notes.append("docker: no Docker engine answers (dockerd is not running): `docker run` skipped")
        return False
    return True


def bench_docker(n: int, tag: str) -> dict:
    from node_agent.runtime.images.busybox import write_rootfs_tar

    image = f"{tag}-busybox:latest"
    with tempfile.NamedTemporaryFile(suffix=".tar") as tar:
        write_rootfs_tar(tar.name)
        subprocess.run(["docker", "import", tar.name, image], check=True, capture_output=True)
    try:
        samples = []
        for i in range(n + 2):
            t0 = time.perf_counter()
            subprocess.run(["docker", "run", "--rm", image, "true"], check=True, capture_output=True)
            if i >= 2:
                samples.append(time.perf_counter() - t0)
        return summary("`docker run --rm` (same rootfs)", samples)
    finally:
        subprocess.run(["docker", "rmi", image], capture_output=True)


# ------------------------------------------------------------------ memory


def smaps(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in bytes."""
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
            elif line.startswith("Rss:"):
                rss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return pss, rss


def bench_memory(daemon: BenchDaemon, count: int, idle: dict[int, tuple[int, int]]) -> dict:
    from proto import runtime_pb2 as pb

    rt = daemon.client().runtime
    after = {pid: smaps(pid) for pid in daemon.pids()}
    ids = []
    for _ in range(count):
        cid = rt.CreateContainer(pb.CreateContainerRequest(config=pb.ContainerConfig(
            image="busybox", command=["sleep", "1000"], network="none"))).container_id
        rt.StartContainer(pb.StartContainerRequest(container_id=cid))
        ids.append(cid)
    time.sleep(1)
    loaded = {pid: smaps(pid) for pid in daemon.pids()}
    shim_pids = []
    for cid in ids:
        try:
            state = json.loads((daemon.root / "containers" / cid / "state.json").read_text())
            shim_pids.append(int(state["shim_pid"]))
        except (OSError, KeyError, ValueError):
            pass
    shims = [smaps(p) for p in shim_pids]
    for cid in ids:
        rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid, force=True))
    d = daemon.proc.pid
    return {
        "daemon_idle_rss": idle.get(d, (0, 0))[1], "daemon_idle_pss": idle.get(d, (0, 0))[0],
        "helpers_idle_pss": sum(v[0] for k, v in idle.items() if k != d),
        "daemon_after_bench_rss": after.get(d, (0, 0))[1],
        "daemon_loaded_rss": loaded.get(d, (0, 0))[1], "daemon_loaded_pss": loaded.get(d, (0, 0))[0],
        "containers": count, "shims": len(shims),
        "shim_pss_avg": sum(s[0] for s in shims) / max(1, len(shims)),
        "shim_rss_avg": sum(s[1] for s in shims) / max(1, len(shims)),
    }


def mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench runtime", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=50, help="iterations per measurement (default 50)")
    p.add_argument("--containers", type=int, default=100, help="running containers for the memory figure")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    p.add_argument("--cli-runs", type=int, default=0, help="runs of the whole CLI command (default n/2, >= 10)")
    p.add_argument("--sandbox-pool", type=int, default=None, help="the daemon's --sandbox-pool (default: its own)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench runtime needs root (namespaces, mounts, cgroups)", file=sys.stderr)
        return 1
    notes: list[str] = []
    results: dict = {"rows": []}
    daemon = BenchDaemon([] if args.sandbox_pool is None else ["--sandbox-pool", str(args.sandbox_pool)])
    try:
        daemon.start()
        time.sleep(0.5)
        idle = {pid: smaps(pid) for pid in daemon.pids()}
        print("through the gRPC API (each run followed by one `crun run`, so both see the same load):")
        runner = CrunRunner(daemon.tag) if crun_ready(notes) else None
        try:
            if runner is not None:
                runner.start()
            api, crun = bench_api(daemon, args.n, "none", runner)
        except RuntimeError as exc:
            notes.append(f"crun: {exc}")
            api, crun = bench_api(daemon, args.n, "none")
        finally:
            if runner is not None:
                runner.stop()
        for row in (api, crun):
            if row:
                show(row)
                results["rows"].append(row)
        bridged, _ = bench_api(daemon, max(10, args.n // 2), "bridge")
        show(bridged)
        results["rows"].append(bridged)
        print("whole commands:")
        cli = bench_cli(daemon, args.cli_runs or max(10, args.n // 2))
        show(cli)
        results["rows"].append(cli)
        docker = None
        if docker_ready(notes):
            docker = bench_docker(max(10, args.n // 2), daemon.tag)
            show(docker)
            results["rows"].append(docker)
        print("ratios:")
        if crun:
            print(f"  API p50 / crun p50: {api['p50_ms'] / crun['p50_ms']:.2f}  (goal <= 1.0)")
        if docker:
            print(f"  ketch runtime run p50 / docker run p50: {cli['p50_ms'] / docker['p50_ms']:.2f}  (goal <= 0.25)")
        else:
            print(f"  ketch runtime run p50 vs the ~450 ms MACHINE-NOTES gives for docker run: "
                  f"{cli['p50_ms'] / 450:.2f}  (goal <= 0.25; no engine here to measure)")
        if not args.skip_memory:
            mem = bench_memory(daemon, args.containers, idle)
            results["memory"] = mem
            print("memory:")
            print(f"  daemon idle: RSS {mib(mem['daemon_idle_rss'])}, PSS {mib(mem['daemon_idle_pss'])} "
                  f"(+ spawner helpers PSS {mib(mem['helpers_idle_pss'])})")
            print(f"  daemon after the runs above (networking loaded): RSS {mib(mem['daemon_after_bench_rss'])}")
            print(f"  daemon with {mem['containers']} running containers: RSS {mib(mem['daemon_loaded_rss'])}, "
                  f"PSS {mib(mem['daemon_loaded_pss'])}")
            print(f"  per shim ({mem['shims']} measured): PSS {mib(mem['shim_pss_avg'])}, "
                  f"RSS {mib(mem['shim_rss_avg'])}")
    finally:
        daemon.stop()
    for note in notes:
        print(f"note: {note}")
    results["notes"] = notes
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
