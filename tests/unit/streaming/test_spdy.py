"""SPDY/3.1 framing and header compression, and the port-forward stream exchange kubectl makes."""

import hashlib
import struct
import zlib

import pytest

from ketch.streaming import portforward as pf
from ketch.streaming import spdy


def test_dictionary_is_the_canonical_spdy3_one():
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options")
    assert spdy.DICTIONARY.endswith(b"enq=0.")
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest() == (
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02")


def _pair():
    return spdy.FrameCodec(), spdy.FrameCodec()


@pytest.mark.parametrize("frame", [
    spdy.SynStream(1, [("streamtype", "error"), ("port", "80"), ("requestid", "0")], flags=spdy.FLAG_FIN),
    spdy.SynReply(3, [("a", "b")]),
    spdy.HeadersFrame(5, [("x", "y")]),
    spdy.RstStream(7, spdy.CANCEL),
    spdy.Settings([(0, 4, 65536), (1, 7, 10)]),
    spdy.Ping(42),
    spdy.GoAway(9, 0),
    spdy.WindowUpdate(1, 1000),
    spdy.DataFrame(1, b"hello", spdy.FLAG_FIN),
])
def test_every_frame_round_trips(frame):
    sender, receiver = _pair()
    assert receiver.feed(sender.encode(frame)) == [frame]


def test_frames_split_anywhere_reassemble():
    sender, receiver = _pair()
    wire = b"".join([
        sender.encode(spdy.SynStream(1, [("streamtype", "data"), ("port", "8080")])),
        sender.data(1, b"x" * 70000, fin=True),
        sender.encode(spdy.Ping(1)),
    ])
    got = []
    for i in range(0, len(wire), 997):
        got += receiver.feed(wire[i:i + 997])
    assert isinstance(got[0], spdy.SynStream)
    data = [f for f in got if isinstance(f, spdy.DataFrame)]
    assert b"".join(f.data for f in data) == b"x" * 70000
    assert [f.fin for f in data] == [False, False, True]
    assert all(len(f.data) <= spdy.MAX_DATA for f in data)
    assert got[-1] == spdy.Ping(1)


def test_header_compression_context_spans_frames():
    # zlib state carries over between header blocks: a second block only decodes after the first
    sender, receiver = _pair()
    first = sender.encode(spdy.SynStream(1, [("streamtype", "error"), ("port", "80")]))
    second = sender.encode(spdy.SynStream(3, [("streamtype", "data"), ("port", "80")]))
    assert receiver.feed(first)[0].headers == [("streamtype", "error"), ("port", "80")]
    assert receiver.feed(second)[0].headers == [("streamtype", "data"), ("port", "80")]
    fresh = spdy.FrameCodec()
    with pytest.raises(spdy.SpdyError):
        fresh.feed(second)


def _go_style_syn_stream(stream_id: int, headers: list[tuple[str, str]], deflate) -> bytes:
    """A SYN_STREAM laid out by hand as spdystream writes it (own zlib context, dictionary preset)."""
    block = struct.pack(">I", len(headers))
    for k, v in headers:
        block += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
    compressed = deflate.compress(block) + deflate.flush(zlib.Z_SYNC_FLUSH)
    body = struct.pack(">IIBB", stream_id, 0, 0, 0) + compressed
    return struct.pack(">HHI", 0x8003, 1, len(body)) + body


def test_kubectl_like_port_forward_exchange():
    """The two streams kubectl opens per connection, decoded as the agent sees them."""
    deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                               spdy.DICTIONARY)
    wire = _go_style_syn_stream(1, [("port", "8080"), ("requestid", "0"), ("streamtype", "error")], deflate)
    wire += struct.pack(">II", 1, (spdy.FLAG_FIN << 24))  # kubectl half-closes the error stream at once
    wire += _go_style_syn_stream(3, [("port", "8080"), ("requestid", "0"), ("streamtype", "data")], deflate)
    wire += struct.pack(">II", 3, 5) + b"GET /"
    server = spdy.FrameCodec()
    frames = server.feed(wire)
    err, fin, data, payload = frames
    assert spdy.header(err.headers, pf.HEADER_STREAM_TYPE) == pf.STREAM_ERROR
    assert spdy.header(err.headers, pf.HEADER_REQUEST_ID) == "0"
    assert fin == spdy.DataFrame(1, b"", spdy.FLAG_FIN)
    assert spdy.header(data.headers, "StreamType") == "data" and spdy.header(data.headers, "port") == "8080"
    assert payload == spdy.DataFrame(3, b"GET /", 0)
    # and the reply decodes on the client side, with its own inflate context
    reply = server.encode(spdy.SynReply(1))
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    assert reply[:4] == b"\x80\x03\x00\x02"
    assert inflate.decompress(reply[12:]) == b"\x00\x00\x00\x00"


def test_other_versions_are_refused():
    with pytest.raises(spdy.SpdyError, match="version 2"):
        spdy.FrameCodec().feed(struct.pack(">HHI", 0x8002, 6, 4) + b"\x00\x00\x00\x01")


def test_parse_ports():
    assert pf.parse_ports(["80", "8080,9090"]) == [80, 8080, 9090]
    with pytest.raises(ValueError, match="70000"):
        pf.parse_ports(["70000"])
