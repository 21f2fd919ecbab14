"""The CLI's exec session against a scripted WebSocket."""

import io
import os

import pytest

from ketch.streaming import channels
from ketch.streaming.exec_session import ExecSession


class FakeSocket:
    def __init__(self, messages: list[bytes], subprotocol: str = channels.V5) -> None:
        self.messages, self.subprotocol, self.sent, self.closed = messages, subprotocol, [], False

    def __iter__(self):
        yield from self.messages

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True


def _session(messages, stdin=False, stdin_fd=None):
    out, err = io.BytesIO(), io.BytesIO()
    ws = FakeSocket(messages)
    return ExecSession(ws, stdin=stdin, tty=False, stdin_fd=stdin_fd, stdout=out, stderr=err), ws, out, err


def test_output_channels_and_exit_code():
    session, ws, out, err = _session([
        channels.encode(channels.STDOUT, b"hi\n"), channels.encode(channels.STDERR, b"oops\n"),
        channels.status_frame(channels.exit_status(3)),
    ])
    assert session.run() == 3
    assert (out.getvalue(), err.getvalue()) == (b"hi\n", b"oops\n")
    assert ws.closed


def test_no_status_means_success_and_failure_status_raises():
    assert _session([channels.encode(channels.STDOUT, b"x")])[0].run() == 0
    failure = channels.status_frame(channels.error_status("container not running", "BadRequest", 400))
    with pytest.raises(channels.RemoteError, match="container not running"):
        _session([failure])[0].run()


def test_stdin_is_sent_then_half_closed():
    r, w = os.pipe()
    os.write(w, b"input")
    os.close(w)
    session, ws, _, _ = _session([], stdin=True, stdin_fd=r)
    session._pump_stdin()
    os.close(r)
    assert ws.sent == [channels.encode(channels.STDIN, b"input"), channels.close_frame(channels.STDIN)]
