"""Prometheus metrics of the agent API (default registry: the agent's /metrics serves it)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from prometheus_client import Counter, Gauge, Histogram

SESSIONS = Counter("ketch_agent_api_sessions_total", "Agent API requests by kind (logs, exec, attach, "
                   "portforward, stats) and outcome (ok, error).", ["kind", "outcome"])
ACTIVE = Gauge("ketch_agent_api_sessions_active", "Agent API streams open now, by kind.", ["kind"])
DURATION = Histogram("ketch_agent_api_session_duration_seconds", "How long agent API requests and streams last.",
                     ["kind"], buckets=(0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120, 600, 3600))


@contextlib.contextmanager
def session(kind: str) -> Iterator[None]:
    """Count one request or stream of `kind`: open while inside, ok unless it raised."""
    started = time.perf_counter()
    ACTIVE.labels(kind).inc()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        ACTIVE.labels(kind).dec()
        SESSIONS.labels(kind, outcome).inc()
        DURATION.labels(kind).observe(time.perf_counter() - started)
