"""Liveness, readiness and startup probes: exec, httpGet and tcpSocket, with Kubernetes timing.

One ``ProbeWorker`` task per (container, probe kind). It waits
``initialDelaySeconds``, then probes every ``periodSeconds`` with
``timeoutSeconds``; the result flips after ``successThreshold`` successes or
``failureThreshold`` failures in a row. Liveness and readiness wait until the
startup probe (if any) has succeeded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from node_agent import metrics

log = logging.getLogger("ketch.node_agent.probes")

ExecFn = Callable[[list[str], float], Awaitable[int]]


@dataclass
class ProbeTarget:
    pod_ip: str
    container: dict
    exec_fn: ExecFn


def resolve_port(port: int | str, container: dict) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"no container port named {port!r}")


async def run_probe(probe: dict, target: ProbeTarget) -> tuple[bool, str]:
    """One probe attempt: (success, message)."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "exec" in probe:
            code = await target.exec_fn(probe["exec"].get("command") or [], timeout)
            return code == 0, f"exit code {code}"
        if "httpGet" in probe:
            http = probe["httpGet"]
            port = resolve_port(http["port"], target.container)
            host = http.get("host") or target.pod_ip
            scheme = (http.get("scheme") or "HTTP").lower()
            path = http.get("path") or "/"
            headers = {h["name"]: h["value"] for h in http.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.32")
            async with httpx.AsyncClient(verify=False, timeout=timeout) as client:
                response = await client.get(f"{scheme}://{host}:{port}{path}", headers=headers)
            ok = 200 <= response.status_code < 400
            return ok, f"HTTP probe failed with statuscode: {response.status_code}" if not ok else "ok"
        if "tcpSocket" in probe:
            tcp = probe["tcpSocket"]
            port = resolve_port(tcp["port"], target.container)
            host = tcp.get("host") or target.pod_ip
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.close()
            return True, "ok"
    except TimeoutError:
        return False, f"timeout: probe did not answer in {timeout:g}s"
    except (OSError, httpx.HTTPError, ValueError) as err:
        return False, str(err) or type(err).__name__
    return False, "probe has no handler (exec, httpGet or tcpSocket)"


class ProbeWorker:
    """Runs one probe of one container until cancelled; reports state changes through ``on_change``."""

    def __init__(self, kind: str, probe: dict, target: ProbeTarget,
                 on_change: Callable[[str, bool, str], None], *, gate: asyncio.Event | None = None) -> None:
        self.kind = kind
        self.probe = probe
        self.target = target
        self.on_change = on_change
        self.gate = gate
        # Readiness starts false; liveness and startup start "not failed".
        self.result = kind != "readiness"
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()

    async def _run(self) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(float(self.probe.get("initialDelaySeconds", 0)))
        period = max(float(self.probe.get("periodSeconds", 10)), 1.0)
        success_needed = int(self.probe.get("successThreshold", 1))
        failure_needed = int(self.probe.get("failureThreshold", 3))
        successes = failures = 0
        while True:
            ok, message = await run_probe(self.probe, self.target)
            metrics.PROBES.labels(self.kind, "success" if ok else "failure").inc()
            if ok:
                successes, failures = successes + 1, 0
                if not self.result and successes >= success_needed:
                    self.result = True
                    self.on_change(self.kind, True, message)
            else:
                failures, successes = failures + 1, 0
                if failures >= failure_needed and (self.result or self.kind == "liveness"):
                    self.result = False
                    self.on_change(self.kind, False, message)
                    if self.kind == "liveness":
                        return  # the container is restarted; a new worker starts with it
            await asyncio.sleep(period)
