"""How `ketch runtime` prints: docker's tables, durations and sizes."""

from __future__ import annotations

import sys
import time

from ketch.api.timeutil import docker_duration


def ago(ns: int | str, now_ns: int | None = None) -> str:
    ns = int(ns or 0)
    if not ns:
        return ""
    now_ns = now_ns or time.time_ns()
    return f"{docker_duration(max(0, now_ns - ns) / 1e9)} ago"


def human_size(n: float, *, binary: bool = False) -> str:
    """Docker's HumanSize (decimal: 4.26MB) or BytesSize (binary: 1.5MiB)."""
    base = 1024.0 if binary else 1000.0
    units = ["B", "KiB", "MiB", "GiB", "TiB"] if binary else ["B", "kB", "MB", "GB", "TB"]
    n = float(n)
    i = 0
    while n >= base and i < len(units) - 1:
        n /= base
        i += 1
    if binary:
        return f"{n:.4g}{units[i]}" if i else f"{int(n)}{units[i]}"
    return f"{n:.3g}{units[i]}"


def parse_size(text: str) -> int:
    """'64m', '1g', '512k', '100' (bytes), '1.5GiB' -> bytes (docker's RAMInBytes)."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    mult = 1
    for suffix, m in (("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40)):
        if t.endswith(suffix):
            t, mult = t[:-1], m
            break
    try:
        value = float(t)
    except ValueError:
        raise ValueError(f"invalid size: {text!r} (e.g. 64m, 1g)") from None
    if value < 0:
        raise ValueError(f"invalid size: {text!r}")
    return int(value * mult)


def table(headers: list[str], rows: list[list[str]], out=None) -> None:
    """Columns three spaces apart, like docker's tabwriter output."""
    out = out or sys.stdout
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [headers, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("   ".join(cells).rstrip())
    out.write("\n".join(lines) + "\n")


def short_id(full: str) -> str:
    return full.removeprefix("sha256:")[:12]


def quote_command(args: list[str], limit: int = 20) -> str:
    """docker ps COMMAND column: the argv, quoted, cut at `limit` characters with an ellipsis."""
    text = " ".join(args)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return f'"{text}"'


def ports_text(ports: list[dict]) -> str:
    parts = []
    for p in ports:
        host_ip = p.get("host_ip") or "0.0.0.0"
        parts.append(f"{host_ip}:{p.get('host_port', 0)}->{p.get('container_port', 0)}/{p.get('protocol') or 'tcp'}")
    return ", ".join(parts)


def rfc3339(ns: int | str) -> str:
    ns = int(ns or 0)
    if not ns:
        return "0001-01-01T00:00:00Z"
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"
