"""SPDY/3.1 framing, as port-forward speaks it (kubectl's spdystream peer).

Sans-IO: `FrameCodec.feed(bytes)` returns the complete frames received so far,
`FrameCodec.encode(frame)` the bytes to send. Header blocks are zlib-compressed
with the SPDY/3 preset dictionary, one compression context per direction for the
whole connection (so one codec per connection, never shared). kubectl's SPDY
library does no flow control, so WINDOW_UPDATE frames are parsed and otherwise
ignored; we never wait for window credit.

Frame layouts (draft 3.1): a control frame is `1|version(15) type(16) flags(8)
length(24)` then its fields; a data frame is `0|stream-id(31) flags(8)
length(24)` then the payload.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes
PROTOCOL_ERROR = 1
INVALID_STREAM = 2
REFUSED_STREAM = 3
CANCEL = 5
INTERNAL_ERROR = 6

MAX_DATA = 32 * 1024  # bytes per DATA frame we send

_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date etag "
    "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
    "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
    "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
    "method get status"
).split() + ["200 OK"] + "version HTTP/1.1 url public set-cookie keep-alive origin".split()
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
#: The SPDY/3 header-compression dictionary (1423 bytes: length-prefixed words, then a tail).
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class SpdyError(ValueError):
    """The peer sent something that is not SPDY/3.1."""


Headers = list[tuple[str, str]]


@dataclass
class DataFrame:
    stream_id: int
    data: bytes = b""
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass
class SynStream:
    stream_id: int
    headers: Headers = field(default_factory=list)
    flags: int = 0
    associated_id: int = 0
    priority: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=list)
    flags: int = 0


@dataclass
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=list)
    flags: int = 0


@dataclass
class RstStream:
    stream_id: int
    status: int = CANCEL


@dataclass
class Settings:
    entries: list[tuple[int, int, int]] = field(default_factory=list)  # (flags, id, value)
    flags: int = 0


@dataclass
class Ping:
    ping_id: int


@dataclass
class GoAway:
    last_good_stream_id: int = 0
    status: int = 0


@dataclass
class WindowUpdate:
    stream_id: int
    delta: int


Frame = DataFrame | SynStream | SynReply | HeadersFrame | RstStream | Settings | Ping | GoAway | WindowUpdate


def header(headers: Headers, name: str) -> str | None:
    """The first value of `name` (case-insensitive), as Go's http.Header.Get finds it."""
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value.split("\0", 1)[0]
    return None


class HeaderCodec:
    """Header blocks of one direction each way: a compress and a decompress context."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                         zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def encode(self, headers: Headers) -> bytes:
        merged: dict[str, list[str]] = {}
        for name, value in headers:
            merged.setdefault(name.lower(), []).append(value)
        out = [struct.pack(">I", len(merged))]
        for name, values in merged.items():
            n, v = name.encode(), "\0".join(values).encode()
            out.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
        raw = b"".join(out)
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, block: bytes) -> Headers:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as exc:
            raise SpdyError(f"header block does not inflate: {exc}") from None
        try:
            (count,) = struct.unpack_from(">I", raw, 0)
            pos, out = 4, []
            for _ in range(count):
                (n,) = struct.unpack_from(">I", raw, pos)
                name = raw[pos + 4:pos + 4 + n].decode()
                pos += 4 + n
                (m,) = struct.unpack_from(">I", raw, pos)
                value = raw[pos + 4:pos + 4 + m].decode()
                pos += 4 + m
                out.append((name, value))
        except struct.error:
            raise SpdyError("truncated header block") from None
        return out


class FrameCodec:
    """Bytes to frames and back for one SPDY connection (either end)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._headers = HeaderCodec()

    # --------------------------------------------------------------- reading
    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= 8:
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                break
            head = bytes(self._buf[:8])
            body = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            frame = self._parse(head, body)
            if frame is not None:
                frames.append(frame)
        return frames

    def _parse(self, head: bytes, body: bytes) -> Frame | None:
        flags = head[4]
        if not head[0] & 0x80:
            stream_id = int.from_bytes(head[0:4], "big") & 0x7FFFFFFF
            return DataFrame(stream_id, body, flags)
        version = int.from_bytes(head[0:2], "big") & 0x7FFF
        kind = int.from_bytes(head[2:4], "big")
        if version != VERSION:
            raise SpdyError(f"SPDY version {version} is not supported (only 3)")
        try:
            if kind == SYN_STREAM:
                sid, assoc = struct.unpack_from(">II", body, 0)
                return SynStream(sid & 0x7FFFFFFF, self._headers.decode(body[10:]), flags,
                                 assoc & 0x7FFFFFFF, body[8] >> 5)
            if kind == SYN_REPLY:
                (sid,) = struct.unpack_from(">I", body, 0)
                return SynReply(sid & 0x7FFFFFFF, self._headers.decode(body[4:]), flags)
            if kind == HEADERS:
                (sid,) = struct.unpack_from(">I", body, 0)
                return HeadersFrame(sid & 0x7FFFFFFF, self._headers.decode(body[4:]), flags)
            if kind == RST_STREAM:
                sid, status = struct.unpack_from(">II", body, 0)
                return RstStream(sid & 0x7FFFFFFF, status)
            if kind == SETTINGS:
                (count,) = struct.unpack_from(">I", body, 0)
                entries = []
                for i in range(count):
                    word, value = struct.unpack_from(">II", body, 4 + 8 * i)
                    entries.append((word >> 24, word & 0xFFFFFF, value))
                return Settings(entries, flags)
            if kind == PING:
                return Ping(struct.unpack_from(">I", body, 0)[0])
            if kind == GOAWAY:
                last, status = struct.unpack_from(">II", body, 0)
                return GoAway(last & 0x7FFFFFFF, status)
            if kind == WINDOW_UPDATE:
                sid, delta = struct.unpack_from(">II", body, 0)
                return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error:
            raise SpdyError(f"truncated control frame of type {kind}") from None
        return None  # unknown control frames are ignored, as the spec says

    # --------------------------------------------------------------- writing
    @staticmethod
    def _control(kind: int, flags: int, body: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(body)) + body

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, DataFrame):
            return struct.pack(">II", frame.stream_id & 0x7FFFFFFF, (frame.flags << 24) | len(frame.data)) + frame.data
        if isinstance(frame, SynStream):
            body = struct.pack(">IIBB", frame.stream_id, frame.associated_id, (frame.priority & 7) << 5, 0)
            return self._control(SYN_STREAM, frame.flags, body + self._headers.encode(frame.headers))
        if isinstance(frame, SynReply):
            body = struct.pack(">I", frame.stream_id) + self._headers.encode(frame.headers)
            return self._control(SYN_REPLY, frame.flags, body)
        if isinstance(frame, HeadersFrame):
            body = struct.pack(">I", frame.stream_id) + self._headers.encode(frame.headers)
            return self._control(HEADERS, frame.flags, body)
        if isinstance(frame, RstStream):
            return self._control(RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
        if isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.entries)) + b"".join(
                struct.pack(">II", (f << 24) | i, v) for f, i, v in frame.entries)
            return self._control(SETTINGS, frame.flags, body)
        if isinstance(frame, Ping):
            return self._control(PING, 0, struct.pack(">I", frame.ping_id))
        if isinstance(frame, GoAway):
            return self._control(GOAWAY, 0, struct.pack(">II", frame.last_good_stream_id, frame.status))
        if isinstance(frame, WindowUpdate):
            return self._control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id, frame.delta))
        raise TypeError(f"not a SPDY frame: {frame!r}")

    def data(self, stream_id: int, payload: bytes, *, fin: bool = False) -> bytes:
        """DATA frames for `payload`, split to MAX_DATA; FIN on the last when asked."""
        chunks = [payload[i:i + MAX_DATA] for i in range(0, len(payload), MAX_DATA)] or [b""]
        return b"".join(
            self.encode(DataFrame(stream_id, chunk, FLAG_FIN if fin and i == len(chunks) - 1 else 0))
            for i, chunk in enumerate(chunks))
