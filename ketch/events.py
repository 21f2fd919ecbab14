"""Recording core/v1 Events about objects, as client-go's EventRecorder does.

Events are best effort: recording never blocks or fails the caller. A repeat of
the same (object, type, reason, message) within ten minutes bumps ``count`` and
``lastTimestamp`` on the existing Event instead of creating another, which is
what `kubectl describe` shows as "x5 over 2m".
"""

from __future__ import annotations

import asyncio
import logging
import time

from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.api.timeutil import format_rfc3339, format_rfc3339_micro, now
from ketch.client.aio import AsyncClient

log = logging.getLogger("ketch.events")

EVENTS = lookup("", "v1", "events")
AGGREGATE_WINDOW = 600.0


class EventRecorder:
    def __init__(self, client: AsyncClient, component: str, host: str | None = None) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._recent: dict[tuple, tuple[str, str, int, float]] = {}  # key -> (ns, name, count, at)
        self._tasks: set[asyncio.Task] = set()

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        """Record that ``reason`` happened to ``obj`` (type Normal or Warning)."""
        task = asyncio.get_running_loop().create_task(self._record(obj, type_, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Wait for events in flight (tests and shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _record(self, obj: dict, type_: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("uid") or meta.get("name"), type_, reason, message)
        stamp = format_rfc3339(now())
        try:
            seen = self._recent.get(key)
            if seen and time.monotonic() - seen[3] < AGGREGATE_WINDOW:
                ns, name, count, _ = seen
                patch = {"count": count + 1, "lastTimestamp": stamp}
                await self.client.patch(EVENTS, name, patch, ns)
                self._recent[key] = (ns, name, count + 1, time.monotonic())
                return
            created = await self.client.create(EVENTS, self._new_event(obj, type_, reason, message, stamp))
            cm = created["metadata"]
            self._recent[key] = (cm["namespace"], cm["name"], 1, time.monotonic())
        except (ApiError, OSError) as err:
            self._recent.pop(key, None)
            log.warning("event not recorded reason=%s object=%s error=%r", reason, meta.get("name"), err)
        except Exception:  # noqa: BLE001 - events are best effort, never fatal
            log.exception("event not recorded reason=%s", reason)

    def _new_event(self, obj: dict, type_: str, reason: str, message: str, stamp: str) -> dict:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        involved = {
            "kind": obj.get("kind"),
            "apiVersion": obj.get("apiVersion"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta.get('name')}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": {k: v for k, v in involved.items() if v},
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": format_rfc3339_micro(now()),
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
        }
