"""API benchmark: pod creates, gets and lists through the apiserver vs. raw etcd.

In one run, against one fresh etcd the benchmark starts in a temporary directory:
1. raw etcd: N puts, N gets and full-prefix reads of the same pod JSON, through
   the aetcd client the apiserver's storage uses, with the same concurrency;
2. apiserver: an `apiserver.main` process started on free loopback ports with a
   temporary state dir (`--workers` processes), against that etcd; N pod creates
   (POST), N gets and full lists over HTTPS with its admin bearer token, through a
   minimal asyncio HTTP/1.1 client (default) or httpx.AsyncClient (`--client httpx`).
It prints the rates, their ratio and p50/p99 latencies. `--json` adds one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "bench"


@dataclass
class Phase:
    """One measured phase: how many operations, how long, each one's latency."""

    name: str
    count: int
    seconds: float
    latencies: list[float] = field(repr=False)
    errors: int = 0
    #: CPU seconds used during the phase, by process ("bench client", "apiserver", "etcd").
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    def summary(self) -> dict:
        return {"count": self.count, "seconds": round(self.seconds, 3), "rate": round(self.rate, 1),
                "p50_ms": round(self.percentile(50) * 1000, 2), "p99_ms": round(self.percentile(99) * 1000, 2),
                "errors": self.errors, "cpu_s": {k: round(v, 2) for k, v in self.cpu.items()}}


#: Processes whose CPU time each phase reports: name -> pid (0 = this process).
WATCHED: dict[str, int] = {"bench client": 0}


def cpu_seconds(pid: int) -> float:
    """CPU time of pid and its descendants (apiserver workers); 0: this process."""
    if pid == 0:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for child in _children(pid):
        total += cpu_seconds(child)
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.extend(int(c) for c in (task / "children").read_text().split())
    except OSError:
        pass
    return found


def pod(i: int) -> dict:
    """A realistic pod manifest (about 700 bytes of JSON)."""
    name = f"bench-{i:05d}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app": "bench", "tier": "web", "shard": str(i % 10)},
            "annotations": {"bench.ketch.dev/run": "api"},
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "busybox:1.36",
                "command": ["sh", "-c", "sleep 3600"],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "bench"}, {"name": "INDEX", "value": str(i)}],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                              "limits": {"cpu": "100m", "memory": "64Mi"}},
            }],
            "restartPolicy": "Always",
        },
    }


async def measure(name: str, n: int, concurrency: int, op: Callable[[int, int], Awaitable[bool]]) -> Phase:
    """Run op(worker, i) for i in 0..n-1 with `concurrency` workers; time each operation."""
    latencies = [0.0] * n
    errors = 0
    indices = iter(range(n))

    async def worker(w: int) -> None:
        nonlocal errors
        for i in indices:
            began = time.perf_counter()
            try:
                ok = await op(w, i)
            except Exception as e:  # noqa: BLE001 - counted and reported
                ok = False
                if errors < 3:
                    print(f"  {name} #{i} failed: {e!r}", file=sys.stderr)
            latencies[i] = time.perf_counter() - began
            if not ok:
                errors += 1

    cpu_before = {k: cpu_seconds(pid) for k, pid in WATCHED.items()}
    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(min(concurrency, n))))
    elapsed = time.perf_counter() - began
    cpu = {k: cpu_seconds(pid) - cpu_before[k] for k, pid in WATCHED.items()}
    return Phase(name, n, elapsed, latencies, errors, cpu)


async def measure_repeated(name: str, times: int, op: Callable[[int, int], Awaitable[bool]]) -> Phase:
    return await measure(name, times, 1, op)


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    """An apiserver subprocess on a free port with its own state dir; stopped by PID."""

    def __init__(self, etcd_url: str, root: Path, workers: int = 1) -> None:
        self.root = root
        self.workers = workers
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.data_dir = root / "apiserver"
        self.log_path = root / "apiserver.log"
        self.process: subprocess.Popen | None = None
        self.etcd_url = etcd_url
        self.token = ""

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"

    def start(self, timeout: float = 60) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        command = [sys.executable, "-m", "apiserver.main", "--etcd-servers", self.etcd_url,
                   "--data-dir", str(self.data_dir), "--secure-port", str(self.port),
                   "--bind-address", "127.0.0.1", "--log-level", "warning", "--workers", str(self.workers)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=str(REPO_ROOT), env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"apiserver exited with {self.process.returncode}; see {self.log_path}")
            if self.ca_file.exists() and self._ready():
                self.token = self._admin_token()
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"apiserver not ready within {timeout}s; see {self.log_path}")

    def _ready(self) -> bool:
        import urllib.request

        try:
            ctx = ssl.create_default_context(cafile=str(self.ca_file))
            with urllib.request.urlopen(f"{self.url}/readyz", context=ctx, timeout=1) as r:
                return r.status == 200
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def _admin_token(self) -> str:
        for line in (self.data_dir / "tokens.csv").read_text().splitlines():
            parts = line.split(",")
            if len(parts) > 1 and parts[1] == "admin":
                return parts[0]
        raise RuntimeError(f"no admin token in {self.data_dir / 'tokens.csv'}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


# -- the two halves -------------------------------------------------------------------------------


async def bench_raw_etcd(etcd_url: str, n: int, concurrency: int, lists: int) -> dict[str, Phase]:
    from apiserver.storage import EtcdStore

    store = await EtcdStore.connect([etcd_url])
    client = store.client  # the aetcd.Client the apiserver's storage uses
    prefix = f"/raw/registry/core/pods/{NAMESPACE}/"
    bodies = [pod(i) for i in range(n)]
    try:
        for i in range(min(concurrency, 20)):  # warm up the channel
            await client.put(f"/raw/warmup/{i}".encode(), b"{}")

        async def put(_: int, i: int) -> bool:
            value = json.dumps(bodies[i], separators=(",", ":")).encode()
            await client.put(f"{prefix}{bodies[i]['metadata']['name']}".encode(), value)
            return True

        async def get(_: int, i: int) -> bool:
            got = await client.get(f"{prefix}{bodies[i]['metadata']['name']}".encode())
            return got is not None and json.loads(got.value)["metadata"]["name"] == bodies[i]["metadata"]["name"]

        async def read_all(_: int, __: int) -> bool:
            got = await client.get_prefix(prefix.encode())
            items = [json.loads(kv.value) for kv in got.kvs]
            return len(items) == n

        store_prefix = f"/store/registry/core/pods/{NAMESPACE}/"

        async def store_create(_: int, i: int) -> bool:
            created = await store.create(f"{store_prefix}{bodies[i]['metadata']['name']}", bodies[i])
            return bool(created["metadata"]["resourceVersion"])

        return {
            "create": await measure("raw etcd put", n, concurrency, put),
            "storage": await measure("EtcdStore.create", n, concurrency, store_create),
            "get": await measure("raw etcd get", n, concurrency, get),
            "list": await measure_repeated("raw etcd range", lists, read_all),
        }
    finally:
        await store.close()


class HttpxConnection:
    """One httpx.AsyncClient with one keep-alive connection (one per worker: a single client
    with a 64-connection pool spends more CPU on its pool than the server spends answering,
    about 6 ms per request here, which would measure httpx)."""

    def __init__(self, server: ApiServer, ctx: ssl.SSLContext) -> None:
        import httpx

        self._client = httpx.AsyncClient(
            base_url=server.url, verify=ctx, timeout=60,
            headers={"Authorization": f"Bearer {server.token}"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else None
        r = await self._client.request(method, path, content=body, headers=headers)
        return r.status_code, r.content

    async def close(self) -> None:
        await self._client.aclose()


class StreamConnection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (`--client asyncio`): shows
    what the apiserver does when the client costs little CPU."""

    def __init__(self, server: ApiServer, ctx: ssl.SSLContext) -> None:
        self._port = server.port
        self._ctx = ctx
        self._auth = f"Authorization: Bearer {server.token}\r\nHost: 127.0.0.1:{server.port}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                "127.0.0.1", self._port, ssl=self._ctx, server_hostname="127.0.0.1")
        assert self._reader is not None
        head = f"{method} {path} HTTP/1.1\r\n{self._auth}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self._writer.write(head.encode() + b"\r\n" + (body or b""))
        status = int((await self._reader.readline()).split(b" ", 2)[1])
        length, chunked = 0, False
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self._reader.readexactly(length)
        parts = []
        while size := int((await self._reader.readline()).split(b";")[0], 16):
            parts.append(await self._reader.readexactly(size))
            await self._reader.readline()
        await self._reader.readline()
        return status, b"".join(parts)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def bench_apiserver(server: ApiServer, n: int, concurrency: int, lists: int,
                          client: str = "asyncio") -> dict[str, Phase]:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    kind = HttpxConnection if client == "httpx" else StreamConnection
    connections = [kind(server, ctx) for _ in range(concurrency)]
    try:
        ns = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}).encode()
        status, text = await connections[0].request("POST", "/api/v1/namespaces", ns)
        if status not in (201, 409):
            raise RuntimeError(f"creating namespace {NAMESPACE}: HTTP {status} {text[:300]!r}")
        # Open every connection (TLS handshakes) before measuring.
        await asyncio.gather(*(c.request("GET", f"/api/v1/namespaces/{NAMESPACE}") for c in connections))
        bodies = [pod(i) for i in range(n)]
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"

        async def create(w: int, i: int) -> bool:
            status, text = await connections[w].request(
                "POST", path, json.dumps(bodies[i], separators=(",", ":")).encode())
            if status != 201:
                raise RuntimeError(f"HTTP {status}: {text[:300]!r}")
            return True

        async def get(w: int, i: int) -> bool:
            status, text = await connections[w].request("GET", f"{path}/{bodies[i]['metadata']['name']}")
            return status == 200 and json.loads(text)["metadata"]["name"] == bodies[i]["metadata"]["name"]

        async def list_all(w: int, _: int) -> bool:
            status, text = await connections[w].request("GET", path)
            return status == 200 and len(json.loads(text)["items"]) == n

        return {
            "create": await measure("apiserver create", n, concurrency, create),
            "get": await measure("apiserver get", n, concurrency, get),
            "list": await measure_repeated("apiserver list", lists, list_all),
        }
    finally:
        await asyncio.gather(*(c.close() for c in connections))


async def paired_create_rounds(etcd_url: str, server: ApiServer, n: int, concurrency: int, rounds: int,
                               client: str = "asyncio") -> list[tuple[Phase, Phase]]:
    """`rounds` pairs of (raw etcd puts, apiserver creates) of the same pods, each pair back to
    back, so both sides of a pair meet the same machine load: on a busy machine the
    per-pair ratio is steadier than one ratio of two phases run seconds apart."""
    from apiserver.storage import EtcdStore

    store = await EtcdStore.connect([etcd_url])
    raw_client = store.client
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    kind = HttpxConnection if client == "httpx" else StreamConnection
    connections = [kind(server, ctx) for _ in range(concurrency)]
    bodies = [pod(i) for i in range(n)]
    pairs: list[tuple[Phase, Phase]] = []
    try:
        for r in range(1, rounds + 1):
            namespace = f"{NAMESPACE}-r{r}"
            ns = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}).encode()
            status, text = await connections[0].request("POST", "/api/v1/namespaces", ns)
            if status not in (201, 409):
                raise RuntimeError(f"creating namespace {namespace}: HTTP {status} {text[:300]!r}")
            await asyncio.gather(*(c.request("GET", f"/api/v1/namespaces/{namespace}") for c in connections))
            raw_prefix = f"/raw-r{r}/registry/core/pods/{namespace}/"
            path = f"/api/v1/namespaces/{namespace}/pods"

            # The same bytes for both sides, encoded before either is timed.
            payloads = [json.dumps(dict(b, metadata=dict(b["metadata"], namespace=namespace)),
                                   separators=(",", ":")).encode() for b in bodies]
            keys = [f"{raw_prefix}{b['metadata']['name']}".encode() for b in bodies]

            async def put(_: int, i: int, keys: list[bytes] = keys, payloads: list[bytes] = payloads) -> bool:
                await raw_client.put(keys[i], payloads[i])
                return True

            async def create(w: int, i: int, path: str = path, payloads: list[bytes] = payloads) -> bool:
                status, text = await connections[w].request("POST", path, payloads[i])
                if status != 201:
                    raise RuntimeError(f"HTTP {status}: {text[:300]!r}")
                return True

            raw = await measure(f"raw etcd put r{r}", n, concurrency, put)
            api = await measure(f"apiserver create r{r}", n, concurrency, create)
            pairs.append((raw, api))
    finally:
        await asyncio.gather(*(c.close() for c in connections))
        await store.close()
    return pairs


# -- report ------------------------------------------------------------------------------------------


def report(n: int, concurrency: int, raw: dict[str, Phase], api: dict[str, Phase] | None,
           client: str = "asyncio", workers: int = 1, load_before: tuple[float, ...] | None = None,
           pairs: list[tuple[Phase, Phase]] | None = None) -> dict:
    def row(p: Phase) -> str:
        errors = f"  errors={p.errors}" if p.errors else ""
        cpu = ", ".join(f"{k} {v * 1000 / p.count:.2f}" for k, v in p.cpu.items())
        return (f"  {p.name:<18} {p.rate:>9.0f}/s   p50 {p.percentile(50) * 1000:7.1f} ms"
                f"   p99 {p.percentile(99) * 1000:7.1f} ms   cpu ms/op: {cpu}{errors}")

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    before = f" (at start {', '.join(f'{x:.1f}' for x in load_before)})" if load_before else ""
    print(f"API benchmark: {n} pods, concurrency {concurrency}, client {client}, apiserver workers {workers}, "
          f"fresh etcd {etcd_version()}, {os.cpu_count()} CPUs, load average {load}{before}")
    print(row(raw["storage"]))
    for key in ("create", "get", "list"):
        print(row(raw[key]))
        if api is not None:
            print(row(api[key]))
    summary: dict = {"n": n, "concurrency": concurrency, "client": client, "workers": workers,
                     "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
                     "raw": {k: p.summary() for k, p in raw.items()}}
    if api is not None:
        summary["apiserver"] = {k: p.summary() for k, p in api.items()}
        create_ratio = api["create"].rate / raw["create"].rate
        get_ratio = api["get"].rate / raw["get"].rate
        summary["ratio_create"] = round(create_ratio, 3)
        summary["ratio_get"] = round(get_ratio, 3)
        print(f"  ratio apiserver/raw: create {create_ratio:.2f}, get {get_ratio:.2f}"
              f"   (aim: create >= 0.50 and apiserver create p99 < 100 ms)")
        print(f"  list of {n} pods: raw p50 {raw['list'].percentile(50) * 1000:.1f} ms,"
              f" apiserver p50 {api['list'].percentile(50) * 1000:.1f} ms"
              f" (median of {len(api['list'].latencies)}: {statistics.median(api['list'].latencies) * 1000:.1f} ms)")
    else:
        print("  apiserver half skipped (--skip-apiserver)")
    if pairs:
        ratios = [a.rate / r.rate for r, a in pairs]
        print(f"  paired create rounds (raw puts, then apiserver creates of the same pods, back to back): "
              f"ratio {', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f}); "
              f"apiserver p50/p99 ms {', '.join(f'{a.percentile(50) * 1000:.0f}/{a.percentile(99) * 1000:.0f}' for _, a in pairs)}")
        summary["rounds"] = [{"raw": r.summary(), "apiserver": a.summary(), "ratio": round(a.rate / r.rate, 3)}
                             for r, a in pairs]
        summary["ratio_create_median_of_rounds"] = round(statistics.median(ratios), 3)
    return summary


def etcd_version() -> str:
    try:
        out = subprocess.run(["etcd", "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].split(":", 1)[1].strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return "(version unknown)"


async def run(args: argparse.Namespace) -> int:
    from apiserver.etcd_supervisor import EmbeddedEtcd

    load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="ketch-bench-api-"))
    etcd = EmbeddedEtcd(root / "etcd", client_port=free_port(), peer_port=free_port())
    server: ApiServer | None = None
    try:
        await etcd.start()
        WATCHED["etcd"] = etcd.pid or 0
        raw = await bench_raw_etcd(etcd.client_url, args.n, args.concurrency, args.lists)
        api = None
        pairs: list[tuple[Phase, Phase]] = []
        if not args.skip_apiserver:
            server = ApiServer(etcd.client_url, root, args.workers)
            await asyncio.to_thread(server.start)
            WATCHED["apiserver"] = server.process.pid
            api = await bench_apiserver(server, args.n, args.concurrency, args.lists, args.client)
            if args.rounds:
                pairs = await paired_create_rounds(etcd.client_url, server, args.n, args.concurrency,
                                                   args.rounds, args.client)
        summary = report(args.n, args.concurrency, raw, api, args.client, args.workers, load_before, pairs)
        if args.json:
            print(json.dumps(summary, separators=(",", ":")))
        failed = sum(p.errors for p in raw.values()) + sum(p.errors for p in (api or {}).values()) + sum(
            r.errors + a.errors for r, a in pairs)
        return 1 if failed else 0
    finally:
        if server is not None:
            server.stop()
        await etcd.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench api", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="pods to create (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    parser.add_argument("--lists", type=int, default=10, help="full lists to time (default 10)")
    parser.add_argument("--client", choices=["asyncio", "httpx"], default="asyncio",
                        help="HTTP client of the apiserver half: a minimal asyncio HTTP/1.1 client that "
                             "costs ~0.13 ms of CPU per request (default), or httpx.AsyncClient (~1.3 ms, "
                             "which on a small machine measures httpx as much as the apiserver)")
    parser.add_argument("--workers", type=int, default=1,
                        help="apiserver worker processes (ketch-apiserver --workers; default 1)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="extra paired create rounds (raw puts then apiserver creates, back to back) "
                             "whose median ratio is steadier on a busy machine (default 3; 0: none)")
    parser.add_argument("--skip-apiserver", action="store_true", help="only the raw etcd half")
    parser.add_argument("--json", action="store_true", help="also print a JSON summary line")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    args = parser.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
