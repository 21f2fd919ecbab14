"""Prometheus metrics of the apiserver, named as kube-apiserver names them.

With `--workers N` the supervisor gives every worker PROMETHEUS_MULTIPROC_DIR: values
then live in per-process files there and `exposition()` sums them over all workers
(prometheus_client's multiprocess mode), so a scrape sees the whole apiserver whichever
worker answers it.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Set (by the supervisor) when several processes share these metrics.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "apiserver_request_total",
    "Requests by verb, resource and HTTP code.",
    ["verb", "resource", "code"],
    registry=REGISTRY,
)
REQUEST_DURATION = Histogram(
    "apiserver_request_duration_seconds",
    "Request latency by verb and resource (watches: time to start the stream).",
    ["verb", "resource"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
ETCD_DURATION = Histogram(
    "etcd_request_duration_seconds",
    "etcd request latency by operation and object type.",
    ["operation", "type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
    registry=REGISTRY,
)
WATCHERS = Gauge(
    "apiserver_registered_watchers",
    "Open watch streams by resource.",
    ["resource"],
    registry=REGISTRY,
    multiprocess_mode="livesum",  # workers' streams add up; a dead worker's go away
)
WATCH_EVENTS = Counter(
    "apiserver_watch_events_total",
    "Watch events sent to clients by resource.",
    ["resource"],
    registry=REGISTRY,
)


_request_children: dict[tuple[str, str, int], tuple] = {}


def observe_request(verb: str, resource: str, code: int, seconds: float) -> None:
    """Count and time one request (label children cached: this runs on every request)."""
    key = (verb, resource, code)
    children = _request_children.get(key)
    if children is None:
        children = (REQUESTS.labels(verb, resource, str(code)), REQUEST_DURATION.labels(verb, resource))
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def exposition() -> bytes:
    """The text exposition of every metric (over all workers with --workers)."""
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
