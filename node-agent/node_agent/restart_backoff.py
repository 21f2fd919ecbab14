"""Crash-loop back-off: 10 s doubling to 5 min between restarts, reset after 10 min of running."""

from __future__ import annotations

import time

INITIAL = 10.0
MAXIMUM = 300.0
RESET_AFTER = 600.0


class RestartBackoff:
    def __init__(self, initial: float = INITIAL, maximum: float = MAXIMUM, reset_after: float = RESET_AFTER) -> None:
        self.initial, self.maximum, self.reset_after = initial, maximum, reset_after
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (delay, not_before)

    def ready(self, key: str, *, ran_for: float | None = None, now: float | None = None) -> tuple[bool, float]:
        """May the container restart now? (yes/no, seconds left). ``ran_for`` resets a long-lived one."""
        now = time.monotonic() if now is None else now
        if ran_for is not None and ran_for >= self.reset_after:
            self._entries.pop(key, None)
        entry = self._entries.get(key)
        if entry is None:
            return True, 0.0
        left = entry[1] - now
        return left <= 0, max(left, 0.0)

    def record_restart(self, key: str, *, now: float | None = None) -> float:
        """A restart happened: the next one waits twice as long (the first waits ``initial``)."""
        now = time.monotonic() if now is None else now
        delay, _ = self._entries.get(key, (self.initial / 2, 0.0))
        delay = min(delay * 2, self.maximum)
        self._entries[key] = (delay, now + delay)
        return delay

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
