"""Container logs in the CRI format, written by the shim and read by `logs`.

A line is `<RFC3339Nano UTC> <stdout|stderr> <F|P> <content>`: F ends a line
that had a newline, P is a piece of a longer line (or a last line without one).
The live file is `path`; rotated files are `path.1` (newest) … `path.<max_files-1>`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

DEFAULT_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 5
MAX_LINE = 16 * 1024


class _Clock:
    """RFC3339Nano timestamps; the date part is formatted once per second."""

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def now(self) -> bytes:
        ns = time.time_ns()
        sec, frac = divmod(ns, 1_000_000_000)
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._prefix}.{frac:09d}Z".encode()


class CriLogWriter:
    """Append-only CRI log with size-based rotation; keeps partial lines per stream."""

    def __init__(self, path: str, max_size: int = DEFAULT_MAX_SIZE, max_files: int = DEFAULT_MAX_FILES,
                 max_line: int = MAX_LINE):
        self.path = path
        self.max_size = max(4096, max_size)
        self.max_files = max(1, max_files)
        self.max_line = max_line
        self._pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self._clock = _Clock()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, stream: str, data: bytes) -> None:
        """Log `data` read from `stream`; whole lines go out now, a tail waits for its newline."""
        buf = self._pending[stream] + data
        out: list[bytes] = []
        ts = self._clock.now()
        tag = stream.encode()
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            while len(line) > self.max_line:
                out.append(b"%s %s P %s\n" % (ts, tag, line[: self.max_line]))
                line = line[self.max_line:]
            out.append(b"%s %s F %s\n" % (ts, tag, line))
            start = nl + 1
        rest = buf[start:]
        while len(rest) >= self.max_line:
            out.append(b"%s %s P %s\n" % (ts, tag, rest[: self.max_line]))
            rest = rest[self.max_line:]
        self._pending[stream] = rest
        if out:
            self._emit(b"".join(out))

    def flush(self, stream: str) -> None:
        """The stream ended: its unterminated tail goes out as a partial line."""
        rest = self._pending[stream]
        if rest:
            self._pending[stream] = b""
            self._emit(b"%s %s P %s\n" % (self._clock.now(), stream.encode(), rest))

    def close(self) -> None:
        for stream in list(self._pending):
            self.flush(stream)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _emit(self, chunk: bytes) -> None:
        os.write(self._fd, chunk)
        self._size += len(chunk)
        if self._size >= self.max_size:
            self._rotate()

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_files > 1:
            for n in range(self.max_files - 1, 0, -1):
                src = self.path if n == 1 else f"{self.path}.{n - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{n}")
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        else:
            flags = os.O_WRONLY | os.O_TRUNC | os.O_CREAT | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o640)
        self._size = 0


# ---------------------------------------------------------------- reading


@dataclass
class LogEntry:
    timestamp: str      # as written, RFC3339Nano
    stream: str         # stdout | stderr
    partial: bool
    content: bytes      # without the trailing newline

    @property
    def time_ns(self) -> int:
        return parse_timestamp(self.timestamp)

    def render(self, timestamps: bool = False) -> bytes:
        body = self.content if self.partial else self.content + b"\n"
        return (self.timestamp.encode() + b" " + body) if timestamps else body


def parse_timestamp(ts: str) -> int:
    """RFC3339Nano 'YYYY-mm-ddTHH:MM:SS.nnnnnnnnnZ' → ns since the epoch."""
    import calendar

    main, _, frac = ts.rstrip("Z").partition(".")
    sec = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return sec * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def parse_line(raw: bytes) -> LogEntry | None:
    parts = raw.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    content = parts[3] if len(parts) == 4 else b""
    return LogEntry(parts[0].decode(), parts[1].decode(), parts[2] == b"P", content)


def log_files(path: str) -> list[str]:
    """Existing files of one log, oldest first."""
    rotated = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        rotated.append(f"{path}.{n}")
        n += 1
    files = list(reversed(rotated))
    if os.path.exists(path):
        files.append(path)
    return files


def read_entries(path: str, *, since_ns: int | None = None, streams: tuple[str, ...] = ("stdout", "stderr")) -> Iterator[LogEntry]:
    """Every entry of a log, oldest file first."""
    for name in log_files(path):
        yield from read_entries_of(name, since_ns, streams)


def read_entries_of(name: str, since_ns: int | None, streams: tuple[str, ...]) -> Iterator[LogEntry]:
    """The entries of one file of a log."""
    try:
        with open(name, "rb") as f:
            for raw in f:
                entry = parse_line(raw)
                if entry is None or entry.stream not in streams:
                    continue
                if since_ns is not None and entry.time_ns < since_ns:
                    continue
                yield entry
    except FileNotFoundError:
        return


def tail_entries(entries: list[LogEntry], tail: int) -> list[LogEntry]:
    """The entries of the last `tail` whole lines (a line may span several P entries)."""
    if tail < 0:
        return entries
    if tail == 0:
        return []
    count = 0
    for i in range(len(entries) - 1, -1, -1):
        if not entries[i].partial or i == len(entries) - 1:
            count += 1
            if count > tail:
                return entries[i + 1:]
    return entries


def _split_entries(data: bytes, streams: tuple[str, ...], since_ns: int | None) -> tuple[list[LogEntry], bytes]:
    """Entries of the complete lines in `data`, and the unfinished rest."""
    *lines, rest = data.split(b"\n")
    entries = []
    for raw in lines:
        entry = parse_line(raw)
        if entry is None or entry.stream not in streams:
            continue
        if since_ns is not None and entry.time_ns < since_ns:
            continue
        entries.append(entry)
    return entries, rest


async def follow_logs(
    path: str,
    *,
    tail: int = -1,
    since_ns: int | None = None,
    timestamps: bool = False,
    follow: bool = False,
    streams: tuple[str, ...] = ("stdout", "stderr"),
    is_running: Callable[[], bool] | None = None,
    poll_interval: float = 0.1,
) -> AsyncIterator[tuple[str, bytes]]:
    """(stream, rendered bytes) for each entry; with `follow`, keep reading new lines
    (across rotations) until `is_running()` turns false and the file is drained."""

    def read_existing():
        # the live file is opened first and read to its end: following goes on from exactly there
        f = open(path, "rb") if os.path.exists(path) else None
        inode = os.fstat(f.fileno()).st_ino if f is not None else None
        entries: list[LogEntry] = []
        for name in log_files(path):
            if name == path:
                continue
            try:
                if inode is not None and os.stat(name).st_ino == inode:
                    continue          # rotated since we opened it: it is `f`
            except FileNotFoundError:
                continue
            entries.extend(read_entries_of(name, since_ns, streams))
        pending = b""
        if f is not None:
            found, pending = _split_entries(f.read(), streams, since_ns)
            entries.extend(found)
        return f, inode, entries, pending

    f, inode, entries, pending = await asyncio.to_thread(read_existing)
    try:
        for entry in tail_entries(entries, tail):
            yield entry.stream, entry.render(timestamps)
        if not follow:
            return
        while True:
            chunk = f.read() if f is not None else b""
            if chunk:
                found, pending = _split_entries(pending + chunk, streams, since_ns)
                for entry in found:
                    yield entry.stream, entry.render(timestamps)
                continue
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current is not None and current != inode:
                # rotated: the old file is finished (read to its end above); the new one from its start
                if f is not None:
                    f.close()
                f = open(path, "rb")
                inode = os.fstat(f.fileno()).st_ino
                pending = b""
                continue
            if is_running is not None and not is_running():
                # one last look: the writer may have added lines before it stopped
                chunk = f.read() if f is not None else b""
                if not chunk:
                    return
                found, pending = _split_entries(pending + chunk, streams, since_ns)
                for entry in found:
                    yield entry.stream, entry.render(timestamps)
                continue
            await asyncio.sleep(poll_interval)
    finally:
        if f is not None:
            f.close()
