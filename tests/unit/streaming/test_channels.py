"""v5.channel.k8s.io framing: what kubectl sends and expects, byte for byte."""

import json

import pytest

from ketch.streaming import channels


def test_encode_decode_round_trip_every_channel():
    for ch in (channels.STDIN, channels.STDOUT, channels.STDERR, channels.ERROR, channels.RESIZE, channels.CLOSE):
        msg = channels.encode(ch, b"payload\x00\xff")
        assert msg[0] == ch
        assert channels.decode(msg) == (ch, b"payload\x00\xff")


def test_decode_rejects_empty_and_out_of_range():
    with pytest.raises(channels.FrameError):
        channels.decode(b"")
    with pytest.raises(channels.FrameError):
        channels.encode(256, b"x")


def test_kubectl_stdin_close_and_resize_frames():
    # kubectl sends [255, 0] when its stdin reaches EOF, and {"Width":..,"Height":..} on channel 4.
    ch, payload = channels.decode(bytes([255, 0]))
    assert ch == channels.CLOSE and channels.closed_channel(payload) == channels.STDIN
    assert channels.close_frame(channels.STDIN) == b"\xff\x00"
    ch, payload = channels.decode(b"\x04" + b'{"Width":120,"Height":40}')
    assert ch == channels.RESIZE and channels.parse_resize(payload) == (120, 40)
    assert channels.parse_resize(channels.resize_payload(80, 24)) == (80, 24)
    with pytest.raises(channels.FrameError):
        channels.parse_resize(b"{}")


def test_exit_status_shapes_kubectl_reads():
    ok = json.loads(channels.decode(channels.status_frame(channels.exit_status(0)))[1])
    assert ok["status"] == "Success"
    frame = channels.status_frame(channels.exit_status(3))
    assert frame[0] == channels.ERROR
    status = json.loads(frame[1:])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    # metav1.StatusCause serializes its Type as "reason"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert channels.exit_code_of(frame[1:]) == 3
    assert channels.exit_code_of(json.dumps(channels.exit_status(0)).encode()) == 0


def test_failure_without_exit_code_is_a_remote_error():
    payload = json.dumps(channels.error_status("container not found", "NotFound", 404)).encode()
    with pytest.raises(channels.RemoteError, match="container not found"):
        channels.exit_code_of(payload)
    with pytest.raises(channels.RemoteError):
        channels.exit_code_of(b"not json")
