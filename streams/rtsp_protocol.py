"""The RTSP control connection on the wire: requests out, and in one byte stream both RTSP
responses and interleaved `$` frames (RTP/RTCP over TCP, RFC 2326 §10.12).

An `asyncio.Protocol`, not a StreamReader: the interleaved path handles ~200 frames per second
per camera, and each frame is handed on as a memoryview of the received chunk (no copy);
the depacketizer copies once when it joins an access unit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from streams.media import SourceError

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024  # an RTSP response head or body larger than this is garbage

FrameHandler = Callable[[int, memoryview], None]


@dataclass(slots=True)
class RtspResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str, default: str = "") -> str:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]


def parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    """(start line, [(lower-case name, value)]) of a message head without the blank line."""
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers


class RtspConnection(asyncio.Protocol):
    """One TCP (or TLS) connection to a camera."""

    def __init__(self, on_frame: FrameHandler) -> None:
        self.on_frame = on_frame
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        self._waiters: dict[int, asyncio.Future[RtspResponse]] = {}

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(None)

    def data_received(self, data: bytes) -> None:
        if self._buf:
            self._buf += data
            data = bytes(self._buf)
            self._buf.clear()
        try:
            used = self._parse(data)
        except Exception as exc:  # a sink or parser bug: end the connection with it
            self._finish(exc)
            return
        if used < len(data):
            self._buf += memoryview(data)[used:]
            if len(self._buf) > MAX_MESSAGE + 65540:
                self._finish(SourceError("camera sent an oversized RTSP message"))

    def _parse(self, data: bytes) -> int:
        view = memoryview(data)
        size = len(data)
        pos = 0
        on_frame = self.on_frame
        while pos < size:
            if data[pos] == 0x24:  # '$' channel, 16-bit length, payload
                if pos + 4 > size:
                    break
                end = pos + 4 + ((data[pos + 2] << 8) | data[pos + 3])
                if end > size:
                    break
                on_frame(data[pos + 1], view[pos + 4 : end])
                pos = end
            elif data.startswith(b"RTSP/", pos) or data[pos : pos + 1].isupper():
                used = self._message(data, pos)
                if used == 0:
                    break
                pos += used
            else:  # garbage between frames (seen on some cameras): resynchronise on '$'
                found = data.find(b"$", pos + 1)
                pos = size if found < 0 else found
        return pos

    def _message(self, data: bytes, pos: int) -> int:
        """Length of the complete RTSP message at `pos` (handled), or 0 if incomplete."""
        head_end = data.find(b"\r\n\r\n", pos, pos + MAX_MESSAGE)
        if head_end < 0:
            if len(data) - pos >= MAX_MESSAGE:
                raise SourceError("camera sent an RTSP message head over 64 KiB")
            return 0
        start, headers = parse_head(data[pos:head_end])
        length = 0
        for name, value in headers:
            if name == "content-length":
                length = int(value) if value.isdigit() else 0
        if length > MAX_MESSAGE:
            raise SourceError("camera sent an RTSP body over 64 KiB")
        end = head_end + 4 + length
        if end > len(data):
            return 0
        if start.startswith("RTSP/"):
            _, _, rest = start.partition(" ")
            code, _, reason = rest.partition(" ")
            response = RtspResponse(int(code) if code.isdigit() else 0, reason, headers)
            response.body = data[head_end + 4 : end]
            self._resolve(response)
        else:
            log.debug("ignoring request from camera: %s", start)
        return end - pos

    def _resolve(self, response: RtspResponse) -> None:
        cseq = response.header("cseq")
        waiter = self._waiters.pop(int(cseq), None) if cseq.isdigit() else None
        if waiter is None and not cseq and self._waiters:  # no CSeq: answer the oldest
            waiter = self._waiters.pop(min(self._waiters))
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _finish(self, exc: BaseException | None) -> None:
        if not self.closed.done():
            if exc is None:
                self.closed.set_result(None)
            else:
                self.closed.set_exception(exc)
        reason = (
            exc if isinstance(exc, SourceError) else SourceError("connection closed by the camera")
        )
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(reason)
        self._waiters.clear()
        if self.transport is not None:
            self.transport.close()

    # requests

    def expect(self, cseq: int) -> asyncio.Future[RtspResponse]:
        if self.closed.done():
            raise SourceError("connection closed by the camera")
        waiter: asyncio.Future[RtspResponse] = asyncio.get_running_loop().create_future()
        self._waiters[cseq] = waiter
        return waiter

    def forget(self, cseq: int) -> None:
        self._waiters.pop(cseq, None)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self._finish(None)
