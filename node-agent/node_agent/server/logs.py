"""`GET /containerLogs/{ns}/{pod}/{container}`: a container's log, streamed line by line.

Query parameters as the kubelet takes them (and the apiserver forwards from
pods/log): follow, tailLines, timestamps, sinceSeconds, sinceTime, limitBytes,
previous. Lines come from the runtime's ReadLogs; each is sent as soon as it is
read, so `kubectl logs -f` sees it at once.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from proto import runtime_pb2 as pb


class LogQueryError(ValueError):
    """A query parameter that cannot be used; answered 400."""


@dataclass
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    timestamps: bool = False
    since_ns: int = 0
    limit_bytes: int | None = None
    previous: bool = False


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


def _int(params: Any, name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise LogQueryError(f"{name}: {raw!r} is not an integer") from None


def parse_time(text: str) -> int:
    """RFC 3339 (with or without fractional seconds) to unix nanoseconds."""
    try:
        base, frac = text, ""
        if "." in text:
            base, rest = text.split(".", 1)
            digits = "".join(ch for ch in rest if ch.isdigit())
            frac, zone = digits, rest[len(digits):]
            base += zone
        dt = datetime.datetime.fromisoformat(base.replace("Z", "+00:00"))
    except ValueError:
        raise LogQueryError(f"sinceTime: {text!r} is not an RFC 3339 time") from None
    nanos = int((frac + "000000000")[:9]) if frac else 0
    return int(dt.timestamp()) * 1_000_000_000 + nanos


def format_time(ns: int) -> str:
    """Go's RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    secs, nanos = divmod(ns, 1_000_000_000)
    stamp = datetime.datetime.fromtimestamp(secs, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{nanos:09d}".rstrip("0")
    return f"{stamp}.{frac}Z" if frac else f"{stamp}Z"


def options_from(params: Any, now_ns: int | None = None) -> LogOptions:
    """LogOptions from the query (a mapping of name -> last value)."""
    opts = LogOptions(follow=_flag(params.get("follow")), timestamps=_flag(params.get("timestamps")),
                      previous=_flag(params.get("previous")))
    opts.tail_lines = _int(params, "tailLines")
    if opts.tail_lines is not None and opts.tail_lines < 0:
        raise LogQueryError("tailLines: must be greater than or equal to 0")
    opts.limit_bytes = _int(params, "limitBytes")
    if opts.limit_bytes is not None and opts.limit_bytes < 1:
        raise LogQueryError("limitBytes: must be greater than 0")
    since_seconds = _int(params, "sinceSeconds")
    if since_seconds is not None and params.get("sinceTime"):
        raise LogQueryError("at most one of sinceTime or sinceSeconds may be specified")
    if since_seconds is not None:
        if since_seconds < 1:
            raise LogQueryError("sinceSeconds: must be greater than 0")
        opts.since_ns = (now_ns or time.time_ns()) - since_seconds * 1_000_000_000
    elif params.get("sinceTime"):
        opts.since_ns = parse_time(params["sinceTime"])
    return opts


async def stream_logs(runtime: Any, container_id: str, opts: LogOptions) -> AsyncIterator[bytes]:
    """The log's lines as bytes, as the runtime hands them over; honours limitBytes."""
    follow = opts.follow and not opts.previous
    since = max(opts.since_ns, 0)
    if opts.tail_lines == 0:  # the runtime reads tail 0 as "all": ask for nothing old instead
        if not follow:
            return
        since = max(since, time.time_ns())
    request = pb.ReadLogsRequest(
        container_id=container_id, tail=-1 if not opts.tail_lines else opts.tail_lines,
        follow=follow, since=since, timestamps=opts.timestamps)
    budget = opts.limit_bytes
    call = runtime.runtime.ReadLogs(request)
    try:
        async for entry in call:
            if opts.since_ns and entry.timestamp and entry.timestamp < opts.since_ns:
                continue
            line = bytes(entry.data)
            if opts.timestamps:
                line = format_time(entry.timestamp).encode() + b" " + line
            if budget is not None:
                if len(line) >= budget:
                    yield line[:budget]
                    return
                budget -= len(line)
            yield line
    finally:
        call.cancel()
