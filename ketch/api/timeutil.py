"""Timestamps in the API (RFC 3339) and durations as kubectl shows them (`5m2s`, `3d`).

`metav1.Time` is serialised with second precision (`2024-05-01T10:00:00Z`),
`metav1.MicroTime` (Lease renewTime, Event eventTime) with microseconds. Ages
follow k8s.io/apimachinery/pkg/util/duration so a table reads as kubectl's does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def format_rfc3339(moment: datetime) -> str:
    """`2024-05-01T10:00:00Z`: second precision, UTC, as metav1.Time marshals."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_rfc3339_micro(moment: datetime) -> str:
    """`2024-05-01T10:00:00.123456Z`, as metav1.MicroTime marshals."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_rfc3339() -> str:
    return format_rfc3339(now())


def now_rfc3339_micro() -> str:
    return format_rfc3339_micro(now())


def parse_rfc3339(text: str) -> datetime:
    """A timezone-aware datetime from RFC 3339 text (any fraction length, `Z` or offset)."""
    match = _RFC3339_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp (like 2024-05-01T10:00:00Z)")
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    fraction = match[7] or ""
    micros = int((fraction + "000000")[:6]) if fraction else 0
    if match[8]:
        tz = UTC
    else:
        offset = timedelta(hours=int(match[10]), minutes=int(match[11]))
        tz = timezone(offset if match[9] == "+" else -offset)
    try:
        moment = datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid timestamp: {exc}") from None
    return moment.astimezone(UTC)


def human_duration(seconds: float) -> str:
    """kubectl's AGE text for a duration (duration.HumanDuration): `45s`, `5m2s`, `3h`, `2d5h`."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60 * 2:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        rest = secs % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if rest == 0 else f"{years}y{rest}d"
    return f"{hours // 24 // 365}y"


def short_human_duration(seconds: float) -> str:
    """The one-unit form (duration.ShortHumanDuration): `45s`, `5m`, `3h`, `2d`, `1y`."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m"
    hours = secs // 3600
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // 24 // 365}y"


def seconds_since(timestamp: str | datetime, at: datetime | None = None) -> float:
    moment = parse_rfc3339(timestamp) if isinstance(timestamp, str) else timestamp
    return ((at or now()) - moment).total_seconds()


def age(timestamp: str | datetime | None, at: datetime | None = None) -> str:
    """AGE column text; `<unknown>` when there is no (valid) timestamp, as kubectl prints."""
    if not timestamp:
        return "<unknown>"
    try:
        return human_duration(seconds_since(timestamp, at))
    except ValueError:
        return "<unknown>"


_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Seconds from a Go duration (`5m2s`, `1.5h`, `300ms`, `-2s`; `0` alone is allowed)."""
    raw = text.strip()
    body = raw.lstrip("+-")
    sign = -1.0 if raw.startswith("-") else 1.0
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        match = _DURATION_PART_RE.match(body, pos)
        if match is None:
            break
        total += float(match[1]) * _UNIT_SECONDS[match[2]]
        pos = match.end()
    if not body or pos != len(body):
        raise ValueError(f'time: invalid duration "{text}" (use units like 30s, 5m, 1h30m)')
    return sign * total


def docker_duration(seconds: float) -> str:
    """Docker's HumanDuration (`Up 3 seconds`, `Exited (0) 2 minutes ago`): 'Less than a second', '3 seconds', 'About a minute', '2 hours'."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"
