"""Daemons started by `ketch up`, tracked by pid files that also hold the start time.

A pid alone can be reused by an unrelated process after a reboot or a crash;
the pid file records the process's start time (field 22 of /proc/PID/stat) and
a pid only counts as ours while both match. Stopping signals the recorded
pid, then whatever is left of its family: the process group it leads
(start_new_session makes each daemon a group leader) and its descendants
(a child in a session of its own, such as the apiserver's embedded etcd).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ..." where comm may hold spaces or parentheses
    return [text[: text.index(" ")]] + ["comm"] + text[text.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    if fields is None or fields[2] == "Z":
        return None
    return int(fields[21])


def process_group(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[4]) if fields else None


def read_pid_file(path: Path) -> tuple[int, int] | None:
    try:
        parts = path.read_text().split()
        return int(parts[0]), int(parts[1])
    except (OSError, ValueError, IndexError):
        return None


def running_pid(path: Path) -> int | None:
    """The pid recorded in `path` if that very process still runs, else None."""
    recorded = read_pid_file(path)
    if recorded is None:
        return None
    pid, started = recorded
    return pid if start_time(pid) == started else None


def spawn(argv: list[str], *, pid_file: Path, log_file: Path, env: dict[str, str] | None = None) -> int:
    """Start a daemon in its own session, output appended to its log, pid recorded."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"--- ketch up: starting {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, cwd="/", env=env,
        )
    started = None
    for _ in range(100):
        started = start_time(proc.pid)
        if started is not None:
            break
        time.sleep(0.01)
    pid_file.write_text(f"{proc.pid} {started or 0}\n")
    return proc.pid


def family(leader: int) -> list[int]:
    """Live processes in `leader`'s process group or descended from it (leader first)."""
    parents: dict[int, int] = {}
    groups: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and fields[2] != "Z":
                parents[int(entry)] = int(fields[3])
                groups[int(entry)] = int(fields[4])
    members = [leader] if leader in parents else []
    for pid, pgid in groups.items():
        if pgid == leader and pid != leader:
            members.append(pid)
    visited, frontier = {leader}, [leader]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in visited:
                visited.add(pid)
                frontier.append(pid)
                if pid not in members:
                    members.append(pid)
    return members


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pids: list[int], started: dict[int, int | None], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if start_time(p) is not None and start_time(p) == started[p]]
        if alive:
            time.sleep(0.05)
    return alive


def stop(pid_file: Path, *, timeout: float = 10.0) -> bool:
    """SIGTERM the recorded daemon (and its process group), SIGKILL what is left after `timeout`.

    Returns whether something was running.
    """
    pid = running_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    group = family(pid) or [pid]
    started = {p: start_time(p) for p in group}
    _signal(pid, signal.SIGTERM)
    left = _wait_gone([pid], started, timeout)
    rest = [p for p in group if p != pid and start_time(p) is not None and start_time(p) == started[p]]
    for p in rest:
        _signal(p, signal.SIGTERM)
    left += _wait_gone(rest, started, min(timeout, 5.0))
    for p in left:
        _signal(p, signal.SIGKILL)
    _wait_gone(left, started, 5.0)
    pid_file.unlink(missing_ok=True)
    return True
