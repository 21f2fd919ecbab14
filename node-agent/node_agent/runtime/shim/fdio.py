"""Non-blocking descriptor plumbing for the shim's event loop: buffered writes to
pipes and pty masters, readers that pump a descriptor to a callback until EOF,
terminal sizes and descriptors passed over unix sockets."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import socket
import struct
import termios


def set_nonblocking(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def set_winsize(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def receive_fd(sock_fd: int) -> int:
    """The one descriptor a child sent over a unix socketpair (then closed)."""
    sock = socket.socket(fileno=sock_fd)
    try:
        sock.settimeout(5)
        _, fds, _, _ = socket.recv_fds(sock, 16, 1)
    finally:
        sock.close()
    if not fds:
        raise RuntimeError("the container did not hand over its terminal")
    os.set_inheritable(fds[0], False)
    return fds[0]


class FdWriter:
    """Buffered non-blocking writes to a pipe or pty master from the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, close_fd: bool = True):
        self.loop, self.fd, self.close_fd = loop, fd, close_fd
        self.buffer = bytearray()
        self.closing = False
        set_nonblocking(fd)

    def write(self, data: bytes) -> None:
        if self.fd < 0 or self.closing:
            return
        self.buffer += data
        self._flush()

    def _flush(self) -> None:
        while self.buffer and self.fd >= 0:
            try:
                n = os.write(self.fd, self.buffer)
            except BlockingIOError:
                self.loop.add_writer(self.fd, self._on_writable)
                return
            except OSError:
                self.buffer.clear()
                break
            del self.buffer[:n]
        if self.fd >= 0:
            self.loop.remove_writer(self.fd)
        if self.closing:
            self._close_now()

    def _on_writable(self) -> None:
        self._flush()

    def close(self) -> None:
        self.closing = True
        if not self.buffer:
            self._close_now()

    def _close_now(self) -> None:
        if self.fd >= 0:
            self.loop.remove_writer(self.fd)
            if self.close_fd:
                os.close(self.fd)
            self.fd = -1


class OutputPump:
    """Reads one fd until EOF, handing chunks to a callback; done is set at EOF."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, stream: str, on_data):
        self.loop, self.fd, self.stream, self.on_data = loop, fd, stream, on_data
        self.done = asyncio.Event()
        set_nonblocking(fd)
        loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:     # EIO: the pty's other side is gone
                raise
            data = b""
        if data:
            self.on_data(self.stream, data)
            return
        self.loop.remove_reader(self.fd)
        os.close(self.fd)
        self.done.set()
