"""The client side of an exec/attach stream (v5.channel.k8s.io) on a terminal or pipes.

A thread copies stdin into channel 0 (and half-closes it at EOF, v5); the
caller's thread writes channels 1 and 2 out and reads the exit code from the
final Status on channel 3. With a TTY the local terminal goes raw for the
session and every SIGWINCH sends the new size on channel 4.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any, BinaryIO

from ketch.streaming import channels


class ExecSession:
    def __init__(self, ws: Any, *, stdin: bool, tty: bool, stdin_fd: int | None = None,
                 stdout: BinaryIO | None = None, stderr: BinaryIO | None = None) -> None:
        self.ws = ws
        self.stdin, self.tty = stdin, tty
        self._stdin_fd = stdin_fd
        self.stdout = stdout or sys.stdout.buffer
        self.stderr = stderr or sys.stderr.buffer
        self._send_lock = threading.Lock()
        self._saved_term: list | None = None
        self.v5 = getattr(ws, "subprotocol", None) == channels.V5

    @property
    def stdin_fd(self) -> int:
        """Our stdin's descriptor, looked up only when stdin or a TTY is used."""
        if self._stdin_fd is None:
            self._stdin_fd = sys.stdin.fileno()
        return self._stdin_fd

    def send(self, channel: int, data: bytes) -> None:
        with self._send_lock:
            self.ws.send(channels.encode(channel, data))

    # ----------------------------------------------------------------- terminal
    def _terminal_size(self) -> tuple[int, int] | None:
        try:
            size = os.get_terminal_size(self.stdin_fd)
        except OSError:
            return None
        return size.columns, size.lines

    def _send_size(self, *_: object) -> None:
        size = self._terminal_size()
        if size is not None:
            try:
                self.send(channels.RESIZE, channels.resize_payload(*size))
            except Exception:  # noqa: BLE001 - the stream may be closing
                pass

    def _raw_terminal(self) -> None:
        import termios
        import tty as tty_mod

        try:
            self._saved_term = termios.tcgetattr(self.stdin_fd)
        except termios.error:
            return
        tty_mod.setraw(self.stdin_fd)

    def _restore_terminal(self) -> None:
        if self._saved_term is not None:
            import termios

            termios.tcsetattr(self.stdin_fd, termios.TCSADRAIN, self._saved_term)
            self._saved_term = None

    # ----------------------------------------------------------------- streams
    def _pump_stdin(self) -> None:
        try:
            while True:
                data = os.read(self.stdin_fd, 32 * 1024)
                if not data:
                    break
                self.send(channels.STDIN, data)
            if self.v5:
                with self._send_lock:
                    self.ws.send(channels.close_frame(channels.STDIN))
        except Exception:  # noqa: BLE001 - the stream ended under us
            pass

    def run(self) -> int:
        """Run until the remote process ends; its exit code (RemoteError for other failures)."""
        previous_winch = None
        if self.tty:
            self._raw_terminal()
            self._send_size()
            if threading.current_thread() is threading.main_thread():
                previous_winch = signal.signal(signal.SIGWINCH, self._send_size)
        try:
            if self.stdin:
                threading.Thread(target=self._pump_stdin, name="ketch-stdin", daemon=True).start()
            for message in self.ws:
                channel, payload = channels.decode(message)
                if channel == channels.STDOUT:
                    self.stdout.write(payload)
                    self.stdout.flush()
                elif channel == channels.STDERR:
                    self.stderr.write(payload)
                    self.stderr.flush()
                elif channel == channels.ERROR:
                    return channels.exit_code_of(payload)
            return 0
        finally:
            if previous_winch is not None:
                signal.signal(signal.SIGWINCH, previous_winch)
            self._restore_terminal()
            try:
                self.ws.close()
            except Exception:  # noqa: BLE001
                pass
