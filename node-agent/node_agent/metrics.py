"""What the node agent exports on /metrics, named after the kubelet's where one exists."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PODS = Gauge("ketch_node_pods", "Pods bound to this node, by the phase the agent last reported.", ["phase"])
CONTAINER_RESTARTS = Counter(
    "ketch_node_container_restarts_total",
    "Containers started again after an exit or a failed liveness probe.",
    ["namespace", "pod", "container"],
)
SYNC_SECONDS = Histogram(
    "ketch_node_pod_worker_sync_duration_seconds",
    "Time of one pod-worker step: a sync toward the spec, or the termination of a pod.",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PROBES = Counter("ketch_node_probe_total", "Probe attempts by kind and outcome.", ["probe_type", "result"])
IMAGE_PULLS = Counter("ketch_node_image_pulls_total", "Image pulls by outcome.", ["result"])

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
