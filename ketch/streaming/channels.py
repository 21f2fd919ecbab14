"""The `v5.channel.k8s.io` WebSocket framing kubectl uses for exec and attach.

Every binary message starts with one byte naming its channel: 0 stdin, 1 stdout,
2 stderr, 3 error (a Status JSON, sent once at the end), 4 resize
(`{"Width":w,"Height":h}`); v5 adds 255 "close" (`[255, channel]`: the sender is
done writing that channel, e.g. stdin reached EOF). The final Status carries the
exit code: `Success`, or `Failure` with reason `NonZeroExitCode` and a cause
`{"reason": "ExitCode", "message": "<code>"}` (metav1.StatusCause puts its Type
in the JSON field "reason"); kubectl exits with that code.
"""

from __future__ import annotations

import json

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
#: What we accept, best first (v4 has the same framing without the close channel).
PROTOCOLS = (V5, V4)

STDIN = 0
STDOUT = 1
STDERR = 2
ERROR = 3
RESIZE = 4
CLOSE = 255


class FrameError(ValueError):
    """A message that is not a channel frame."""


def encode(channel: int, data: bytes = b"") -> bytes:
    """One WebSocket message for `channel`."""
    if not 0 <= channel <= 255:
        raise FrameError(f"channel {channel} is out of range 0..255")
    return bytes((channel,)) + bytes(data)


def decode(message: bytes | str) -> tuple[int, bytes]:
    """(channel, payload) of one message; text messages are taken as their UTF-8 bytes."""
    raw = message.encode() if isinstance(message, str) else bytes(message)
    if not raw:
        raise FrameError("an empty message has no channel byte")
    return raw[0], raw[1:]


def close_frame(channel: int) -> bytes:
    """v5: `channel` gets no more data from the sender (stdin EOF)."""
    return bytes((CLOSE, channel))


def closed_channel(payload: bytes) -> int:
    """The channel a CLOSE frame's payload names."""
    if len(payload) != 1:
        raise FrameError(f"a close frame names exactly one channel, got {len(payload)} bytes")
    return payload[0]


def resize_payload(width: int, height: int) -> bytes:
    return json.dumps({"Width": int(width), "Height": int(height)}).encode()


def parse_resize(payload: bytes) -> tuple[int, int]:
    """(width, height) of a resize frame."""
    try:
        size = json.loads(payload)
        return int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError) as exc:
        raise FrameError(f"bad resize message {payload[:80]!r}: {exc}") from None


def _status(status: str, **extra: object) -> dict:
    return {"metadata": {}, "status": status, **extra}


def exit_status(code: int) -> dict:
    """The Status ending an exec/attach whose process exited with `code`."""
    if code == 0:
        return _status("Success")
    return _status(
        "Failure",
        message=f"command terminated with non-zero exit code: exit status {code}",
        reason="NonZeroExitCode",
        details={"causes": [{"reason": "ExitCode", "message": str(code)}]},
    )


def error_status(message: str, reason: str = "InternalError", code: int = 500) -> dict:
    """A Status for a stream that failed before or instead of an exit code."""
    return _status("Failure", message=message, reason=reason, code=code)


def status_frame(status: dict) -> bytes:
    return encode(ERROR, json.dumps(status).encode())


def exit_code_of(payload: bytes) -> int:
    """The exit code an error-channel Status stands for (0 for Success).

    Raises `RemoteError` for a Failure that is not a process exit (the message is the server's)."""
    try:
        status = json.loads(payload)
    except ValueError:
        raise RemoteError(payload.decode(errors="replace")) from None
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message", ""))
                except ValueError:
                    break
    raise RemoteError(str(status.get("message") or payload.decode(errors="replace")))


class RemoteError(Exception):
    """The server ended a stream with a Failure that is not an exit code."""
