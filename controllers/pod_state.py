"""How controllers judge a pod: active, ready, available — as Kubernetes' podutil does."""

from __future__ import annotations

from datetime import datetime

from ketch.api.timeutil import now, parse_rfc3339


def is_active(pod: dict) -> bool:
    """Counts toward replicas: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def ready_condition(pod: dict) -> dict | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond
    return None


def is_ready(pod: dict) -> bool:
    cond = ready_condition(pod)
    return bool(cond and cond.get("status") == "True")


def is_available(pod: dict, min_ready_seconds: int, at: datetime | None = None) -> bool:
    """Ready for at least minReadySeconds."""
    cond = ready_condition(pod)
    if not cond or cond.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = cond.get("lastTransitionTime")
    if not since:
        return False
    return ((at or now()) - parse_rfc3339(since)).total_seconds() >= min_ready_seconds


def deletion_rank(pod: dict) -> tuple:
    """Sort key: pods to delete first come first (unscheduled, pending, unready, restarted, newest)."""
    status = pod.get("status") or {}
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase") or "Pending", 0)
    restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
    created = (pod.get("metadata") or {}).get("creationTimestamp") or ""
    return (
        bool((pod.get("spec") or {}).get("nodeName")),
        phase_rank,
        is_ready(pod),
        -restarts,
        _negated(created),
    )


def _negated(text: str) -> tuple[int, ...]:
    """Newest first when sorted ascending."""
    return tuple(-ord(ch) for ch in text)
