"""Score: prefer nodes that already hold the pod's images (node.status.images), by size."""

from __future__ import annotations

from scheduler.framework import MAX_NODE_SCORE, CycleState, NodeInfo

MIN_THRESHOLD = 23 * 1024 * 1024  # as Kubernetes: tiny images do not matter
MAX_THRESHOLD = 1000 * 1024 * 1024


def normalized_image_name(name: str) -> str:
    """``busybox`` and ``docker.io/library/busybox:latest`` name the same image."""
    if "@" not in name and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name or ("." not in first and ":" not in first and first != "localhost"):
        name = "docker.io/" + (name if "/" in name else f"library/{name}")
    return name


class ImageLocality:
    name = "ImageLocality"
    weight = 1

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> float:
        present: dict[str, int] = {}
        for image in (node.node.get("status") or {}).get("images") or []:
            for name in image.get("names") or []:
                present[normalized_image_name(name)] = int(image.get("sizeBytes") or 0)
        total = 0
        for container in (pod.get("spec") or {}).get("containers") or []:
            total += present.get(normalized_image_name(container.get("image", "")), 0)
        if total == 0:
            return 0.0
        clamped = min(max(total, MIN_THRESHOLD), MAX_THRESHOLD)
        # Even a small image that is present beats one that has to be pulled.
        return max(1.0, MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) / (MAX_THRESHOLD - MIN_THRESHOLD))
