"""Shuttling a container's (or an exec's) stdio between this terminal and the daemon.

One select() loop over the call's socket and our stdin: input goes up as
`stdin` / `close_stdin` requests, output comes down as `data` chunks written to
our stdout or stderr, and the last message carries the exit code. With a TTY,
our terminal is put in raw mode and window size changes travel as `resize`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import select
import signal
import sys

from ketch.cli.runtime.connection import Stream


def terminal_size() -> dict | None:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return None
    return {"width": size.columns, "height": size.lines}


@contextlib.contextmanager
def raw_terminal(enabled: bool):
    """Raw mode on our stdin while attached to a container's TTY; restored however we leave."""
    if not enabled or not os.isatty(0):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(0)
    try:
        tty.setraw(0)
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


def pump(stream: Stream, *, stdin: bool, tty: bool) -> tuple[int, str]:
    """Run the stdio loop until the process exits; returns (exit code, reason)."""
    out, err = sys.stdout.buffer, sys.stderr.buffer
    wake_r = wake_w = -1
    old_wakeup = None
    if tty and os.isatty(1):
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGWINCH, lambda *_: None)
    fds: list = [stream]
    if stdin:
        fds.append(0)
    if wake_r >= 0:
        fds.append(wake_r)
    try:
        with raw_terminal(tty and stdin):
            while True:
                try:
                    readable, _, _ = select.select(fds, [], [])
                except InterruptedError:
                    continue
                if wake_r in readable:
                    os.read(wake_r, 512)
                    size = terminal_size()
                    if size:
                        stream.send({"resize": size})
                if 0 in readable:
                    data = os.read(0, 32768)
                    if data:
                        stream.send({"stdin": base64.b64encode(data).decode()})
                    else:
                        stream.send({"close_stdin": True})
                        fds.remove(0)
                if stream in readable:
                    for msg in stream.pending():
                        if msg is None:
                            return 0, ""
                        if msg.get("exited"):
                            return int(msg.get("exit_code", 0)), msg.get("reason", "")
                        data = base64.b64decode(msg.get("data", ""))
                        target = err if msg.get("stream") == "STDERR" else out
                        target.write(data)
                        target.flush()
    finally:
        if wake_r >= 0:
            signal.set_wakeup_fd(old_wakeup if old_wakeup is not None else -1)
            os.close(wake_r)
            os.close(wake_w)
