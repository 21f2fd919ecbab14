"""Cluster benchmark: pod start-up latency on a 2-node lab, and 50 replicas vs. a Docker swarm.

In one run:
1. `ketch up --nodes 2` of a lab of the benchmark's own (temporary state dir,
   its own lab name, bridge subnet and ports), busybox made present on both
   nodes by one warm-up pod per node;
2. pod start-up latency: `--pods` busybox `sleep` pods created through the API
   (paced at `--rate` per second, as the Kubernetes density test creates its
   latency pods, then again all at once), each timed from just before its
   create request to the first watch event that shows it Running; p50/p99
   against the Kubernetes SLO (5 s at p99);
3. a Deployment of `--replicas` replicas, timed from its create to all its
   pods Running (seen through a watch);
4. `ketch down --purge`, then the peer: `docker service create --replicas N`
   of the same busybox rootfs on a private single-node Docker swarm
   (bench/swarm.py), timed to all tasks Running. Both times and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "bench"
IMAGE = "busybox:latest"
SLO_P99_SECONDS = 5.0


# --------------------------------------------------------------------------------------------
# the lab


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses() -> set[ipaddress.IPv4Address]:
    """IPv4 addresses TCP sockets listen on: a daemon of a lab whose bridge is gone can still hold
    its old gateway address, and a new lab there would find its ports taken."""
    found = set()
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":  # LISTEN
            found.add(ipaddress.IPv4Address(bytes.fromhex(fields[1].split(":")[0])[::-1]))
    return found


def free_subnet() -> str:
    """A 10.214.<n>.0/24 no route of this host uses yet (test labs use 10.215/16, `ketch up` 10.213.0/24)."""
    routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True).stdout
    used = []
    for line in routes.splitlines():
        try:
            used.append(ipaddress.ip_network(line.split()[0], strict=False))
        except ValueError:
            continue
    bound = listening_addresses()
    for n in range(200, 255):
        net = ipaddress.ip_network(f"10.214.{n}.0/24")
        if any(net.overlaps(u) for u in used if u.prefixlen > 0) or any(a in net for a in bound):
            continue
        return str(net)
    raise RuntimeError("no free 10.214.x.0/24 subnet for the benchmark's lab")


@dataclass
class BenchLab:
    """A lab cluster of the benchmark's own, brought up and purged with the real `ketch up/down`."""

    base: Path
    name: str = field(default_factory=lambda: "bc" + secrets.token_hex(2))

    @property
    def kubeconfig(self) -> Path:
        return self.base / "kubeconfig"

    def ketch(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "XDG_CACHE_HOME": str(self.base / "cache"),
               "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'node-agent'}"}
        return subprocess.run([sys.executable, "-m", "ketch.cli.main", *args], capture_output=True, text=True,
                              env=env, timeout=timeout, cwd=str(REPO_ROOT))

    def up(self, nodes: int) -> float:
        began = time.monotonic()
        proc = self.ketch("up", "--name", self.name, "--state-dir", str(self.base / "state"), "--nodes", str(nodes),
                          "--subnet", free_subnet(), "--apiserver-port", str(free_port()),
                          "--etcd-client-port", str(free_port()), "--etcd-peer-port", str(free_port()))
        if proc.returncode != 0:
            raise RuntimeError(f"ketch up failed:\n{proc.stdout}{proc.stderr}")
        return time.monotonic() - began

    def down(self, attempts: int = 3) -> tuple[bool, str]:
        """`ketch down --purge` (tried again if it fails: it has tripped over cgroups removed under
        it), then a check that no process of the lab survived; any that did is stopped by pid."""
        failures = []
        for _ in range(attempts):
            proc = self.ketch("down", "--name", self.name, "--state-dir", str(self.base / "state"), "--purge")
            if proc.returncode == 0:
                break
            failures.append((proc.stdout + proc.stderr).strip().splitlines()[-1:])
            time.sleep(1)
        notes = [f"  ketch down --purge failed {len(failures)} time(s): {failures}"] if failures else []
        survivors = self.processes()
        if survivors:
            notes.append(f"  ketch down left {len(survivors)} process(es) of the lab running: {survivors}; "
                         "stopping them by pid")
            for pid in survivors:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
        return len(failures) < attempts and not survivors, "\n".join(notes)

    def processes(self) -> list[int]:
        """Pids whose command line names this lab's directory."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != os.getpid():
                with contextlib.suppress(OSError):
                    if str(self.base).encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                        found.append(int(entry))
        return found


# --------------------------------------------------------------------------------------------
# measurements through the API


def pod_manifest(name: str, labels: dict[str, str] | None = None, node: str | None = None) -> dict:
    spec: dict = {"terminationGracePeriodSeconds": 0, "containers": [
        {"name": "c", "image": IMAGE, "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"],
         "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] if ordered else 0.0


@dataclass
class StartupResult:
    name: str
    latencies: list[float]
    per_node: dict[str, int]
    seconds: float

    def line(self) -> str:
        p50, p99 = percentile(self.latencies, 50), percentile(self.latencies, 99)
        verdict = "met" if p99 <= SLO_P99_SECONDS else "MISSED"
        nodes = ", ".join(f"{n} {c}" for n, c in sorted(self.per_node.items()))
        return (f"  pod start-up, {self.name:<14} {len(self.latencies):>4} pods   p50 {p50:6.3f} s   "
                f"p99 {p99:6.3f} s   max {max(self.latencies):6.3f} s   (SLO p99 <= 5 s: {verdict}; "
                f"all Running after {self.seconds:.1f} s; per node: {nodes})")

    def summary(self) -> dict:
        return {"pods": len(self.latencies), "p50_s": round(percentile(self.latencies, 50), 4),
                "p99_s": round(percentile(self.latencies, 99), 4), "max_s": round(max(self.latencies), 4),
                "all_running_s": round(self.seconds, 3), "per_node": self.per_node}


class Cluster:
    """The benchmark's API client (ketch.client.aio) and the watch-based timings."""

    def __init__(self, kubeconfig: Path) -> None:
        from ketch.api.resources import lookup
        from ketch.client.aio import AsyncClient, ClusterAccess

        self.client = AsyncClient(ClusterAccess.from_kubeconfig(str(kubeconfig)), timeout=60)
        self.pods = lookup("", "v1", "pods")
        self.deployments = lookup("apps", "v1", "deployments")
        self.namespaces = lookup("", "v1", "namespaces")

    async def close(self) -> None:
        await self.client.close()

    async def ensure_namespace(self) -> None:
        from ketch.api.errors import ApiError

        try:
            await self.client.create(self.namespaces, {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": NAMESPACE}})
        except ApiError as e:
            if getattr(e, "code", None) != 409:
                raise

    async def nodes(self) -> list[str]:
        from ketch.api.resources import lookup

        listed = await self.client.list(lookup("", "v1", "nodes"))
        return sorted(n["metadata"]["name"] for n in listed["items"])

    async def _watch_running(self, selector: str, resource_version: str, want: int,
                             seen: dict[str, float], where: dict[str, str], timeout: float) -> None:
        """Record when each pod of `selector` is first seen Running, until `want` of them are.

        A watch that ends early is resumed from the last resourceVersion it delivered, so a
        server-side watch timeout costs no event; on timeout the error says which pods are not
        Running and what their containers wait for."""

        async def follow() -> None:
            rv = resource_version
            while True:
                async for event in self.client.watch(self.pods, NAMESPACE, resource_version=rv,
                                                     label_selector=selector, allow_bookmarks=True):
                    obj = event["object"]
                    rv = obj["metadata"].get("resourceVersion") or rv
                    if event["type"] == "BOOKMARK":
                        continue
                    name = obj["metadata"]["name"]
                    if obj.get("status", {}).get("phase") == "Running" and name not in seen:
                        seen[name] = time.monotonic()
                        where[name] = obj["spec"].get("nodeName", "?")
                        if len(seen) >= want:
                            return

        try:
            await asyncio.wait_for(follow(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{len(seen)}/{want} pods of {selector} Running after {timeout:.0f} s; "
                               f"the others: {await self._not_running(selector, seen)}") from None

    async def _not_running(self, selector: str, seen: dict[str, float]) -> str:
        """A count of (node, phase, container state) over the pods not seen Running, for the error."""
        listed = await self.client.list(self.pods, NAMESPACE, label_selector=selector)
        counts: dict[str, int] = {}
        for pod in listed["items"]:
            if pod["metadata"]["name"] in seen:
                continue
            status = pod.get("status", {})
            states = [next(iter(c.get("state", {}) or {"none": {}}), "none") + ":" +
                      str((c.get("state", {}).get("waiting") or {}).get("reason", ""))
                      for c in status.get("containerStatuses", [])]
            key = f"{pod['spec'].get('nodeName') or 'unscheduled'} {status.get('phase')} {states}"
            counts[key] = counts.get(key, 0) + 1
        return ", ".join(f"{n} x {k}" for k, n in sorted(counts.items())) or "none listed"

    async def pod_startup(self, label: str, count: int, rate: float, timeout: float = 300) -> StartupResult:
        """`count` pods, paced at `rate`/s (0: all at once, 16 requests in flight), create -> Running."""
        selector = f"bench={label}"
        listed = await self.client.list(self.pods, NAMESPACE, label_selector=selector)
        seen: dict[str, float] = {}
        where: dict[str, str] = {}
        sent: dict[str, float] = {}
        watcher = asyncio.create_task(self._watch_running(selector, listed["metadata"]["resourceVersion"],
                                                          count, seen, where, timeout))
        await asyncio.sleep(0.2)  # the watch is open before the first create
        gate = asyncio.Semaphore(16)

        async def create(i: int) -> None:
            name = f"{label}-{i:04d}"
            async with gate:
                sent[name] = time.monotonic()
                await self.client.create(self.pods, pod_manifest(name, {"bench": label}), NAMESPACE)

        began = time.monotonic()
        creates = []
        for i in range(count):
            if rate > 0:
                delay = began + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            creates.append(asyncio.create_task(create(i)))
        await asyncio.gather(*creates)
        await watcher
        latencies = [seen[name] - sent[name] for name in sent]
        per_node: dict[str, int] = {}
        for node in where.values():
            per_node[node] = per_node.get(node, 0) + 1
        return StartupResult(label, latencies, per_node, max(seen.values()) - began)

    async def deployment_all_running(self, replicas: int, timeout: float = 300) -> float:
        """Seconds from the Deployment's create request to all its pods Running (watch)."""
        name = "bench-deploy"
        listed = await self.client.list(self.pods, NAMESPACE, label_selector=f"app={name}")
        seen: dict[str, float] = {}
        watcher = asyncio.create_task(self._watch_running(f"app={name}", listed["metadata"]["resourceVersion"],
                                                          replicas, seen, {}, timeout))
        await asyncio.sleep(0.2)
        template = pod_manifest("x", {"app": name})
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                      "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                               "template": {"metadata": {"labels": {"app": name}}, "spec": template["spec"]}}}
        began = time.monotonic()
        await self.client.create(self.deployments, deployment, NAMESPACE)
        await watcher
        return max(seen.values()) - began

    async def delete_all_pods(self, selector: str, timeout: float = 180) -> None:
        """Delete the pods of `selector` and wait until the node agents have removed them all."""
        listed = await self.client.list(self.pods, NAMESPACE, label_selector=selector)
        gate = asyncio.Semaphore(16)

        async def delete(name: str) -> None:
            async with gate:
                try:
                    await self.client.delete(self.pods, name, NAMESPACE, grace_period_seconds=0)
                except Exception:  # already gone
                    pass

        await asyncio.gather(*(delete(p["metadata"]["name"]) for p in listed["items"]))
        deadline = time.monotonic() + timeout
        while (await self.client.list(self.pods, NAMESPACE, label_selector=selector))["items"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"pods of {selector} still exist {timeout:.0f} s after their deletion")
            await asyncio.sleep(0.5)

    async def warm_up(self, nodes: list[str]) -> None:
        """One pod per node (bound directly): busybox is then present, and each node has run a pod."""
        listed = await self.client.list(self.pods, NAMESPACE, label_selector="bench=warmup")
        seen: dict[str, float] = {}
        watcher = asyncio.create_task(self._watch_running("bench=warmup", listed["metadata"]["resourceVersion"],
                                                          len(nodes), seen, {}, 180))
        await asyncio.sleep(0.2)
        for i, node in enumerate(nodes):
            await self.client.create(self.pods, pod_manifest(f"warmup-{i}", {"bench": "warmup"}, node), NAMESPACE)
        await watcher
        await self.delete_all_pods("bench=warmup")


# --------------------------------------------------------------------------------------------
# the run


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


async def measure_ketch(lab: BenchLab, args: argparse.Namespace, say) -> dict:
    cluster = Cluster(lab.kubeconfig)
    try:
        await cluster.ensure_namespace()
        nodes = await cluster.nodes()
        await cluster.warm_up(nodes)
        results: dict = {"nodes": nodes}
        runs = [("paced", args.rate)] + ([("burst", 0.0)] if args.burst else [])
        for label, rate in runs:
            pace = f"{rate:g}/s" if rate else "all at once"
            say(f"  ... {args.pods} pods, {pace} (load average {load_average()})")
            result = await cluster.pod_startup(label, args.pods, rate)
            say(result.line())
            results[f"startup_{label}"] = result.summary() | {"rate_per_s": rate}
            await cluster.delete_all_pods(f"bench={label}")
        say(f"  ... Deployment of {args.replicas} replicas (load average {load_average()})")
        seconds = await cluster.deployment_all_running(args.replicas)
        say(f"  Deployment {args.replicas} replicas all Running (Ketch):        {seconds:6.2f} s")
        results["deployment_seconds"] = round(seconds, 3)
        return results
    finally:
        await cluster.close()


def measure_swarm(replicas: int, bridge: str, say) -> dict:
    from bench import swarm

    say(f"  ... docker service create --replicas {replicas} on a private single-node swarm "
        f"(load average {load_average()})")
    try:
        result = swarm.measure(replicas, bridge)
    except swarm.SwarmUnavailable as e:
        say(f"  Docker swarm peer missing: {e}")
        return {"error": str(e)}
    say(f"  docker service create --replicas {replicas} all Running (swarm, docker "
        f"{result.engine_version}): {result.seconds:6.2f} s")
    return {"seconds": round(result.seconds, 3), "engine": result.engine_version}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench cluster", description=__doc__.split("\n")[0])
    p.add_argument("--pods", type=int, default=100, help="pods per start-up run (default 100)")
    p.add_argument("--rate", type=float, default=10.0, help="creates per second of the paced run (default 10)")
    p.add_argument("--no-burst", dest="burst", action="store_false", help="skip the all-at-once start-up run")
    p.add_argument("--replicas", type=int, default=50, help="Deployment and swarm service replicas (default 50)")
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--no-swarm", dest="swarm", action="store_false", help="skip the Docker swarm peer")
    p.add_argument("--json", action="store_true", help="also print a one-line JSON summary")
    p.add_argument("--keep", action="store_true", help="keep the lab's temporary directory (logs)")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench cluster needs root (it brings up a lab cluster: namespaces, cgroups)", file=sys.stderr)
        return 2

    def say(text: str) -> None:
        print(text, flush=True)

    base = Path(tempfile.mkdtemp(prefix="ketch-bc-"))  # short: runtime sockets live below it
    lab = BenchLab(base)
    summary: dict = {"cpus": os.cpu_count(), "load_average_start": os.getloadavg()[0]}
    code = 0
    say(f"Cluster benchmark: {args.nodes}-node lab {lab.name!r} (ketch up), {args.pods} pods per start-up run, "
        f"{args.replicas} replicas, {os.cpu_count()} CPUs, load average {load_average()}")
    try:
        summary["lab_up_s"] = round(lab.up(args.nodes), 2)
        say(f"  ketch up --nodes {args.nodes}: {summary['lab_up_s']:.1f} s")
        summary |= asyncio.run(measure_ketch(lab, args, say))
    except Exception as e:  # report what broke, still tear down
        say(f"  Ketch side failed: {type(e).__name__}: {e}")
        code = 1
    finally:
        purged, note = lab.down()
        if note:
            say(note)
        if not purged:
            code = 1
        if args.keep:
            say(f"  kept {base}")
        else:
            for _ in range(5):  # a daemon stopped a moment ago may still write its last file
                shutil.rmtree(base, ignore_errors=True)
                if not base.exists():
                    break
                time.sleep(1)
    if args.swarm:
        summary["swarm"] = measure_swarm(args.replicas, f"ketch-{lab.name}-sw", say)
        ketch_s, swarm_s = summary.get("deployment_seconds"), summary["swarm"].get("seconds")
        if ketch_s and swarm_s:
            ratio = swarm_s / ketch_s
            summary["swarm_over_ketch"] = round(ratio, 2)
            verdict = "Ketch faster" if ratio > 1 else "swarm faster"
            say(f"  ratio swarm/Ketch for {args.replicas} replicas: {ratio:.2f}x ({verdict})")
    for key in ("startup_paced", "startup_burst"):
        if key in summary:
            summary[key]["p99_under_slo"] = summary[key]["p99_s"] <= SLO_P99_SECONDS
    if args.json:
        print(json.dumps(summary, separators=(",", ":")))
    if "startup_paced" not in summary:
        code = 1
    return code
