"""The RTSP protocol layer against scripted servers: digest with qop, redirects, keepalives,
RTSP replies interleaved with `$` frames, a sink that raises."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from streams import bitstream
from streams.media import Codec, Packet, SourceError, StreamInfo
from streams.registry import SourceOptions
from streams.rtsp import RtspSource
from streams.rtsp_auth import Authenticator, digest_response, parse_challenge
from streams.rtsp_protocol import RtspConnection, parse_head
from tests.streams.conftest import Collect, CollectingSink

SPS = bytes.fromhex("6742c01eda0280f684000003000400000300c83c58ba80")  # 640x480 25 fps
PPS = bytes.fromhex("68ce3c80")
SDP = (
    "v=0\r\ns=fake\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAHtoCgPaEAAADAAQAAAMAyDxYuoA=,aM48gA==\r\n"
    "a=control:track1\r\n"
)

Reply = tuple[int, dict[str, str], str]


@dataclass
class Request:
    method: str
    url: str
    headers: dict[str, str]


@dataclass
class FakeCamera:
    """A scripted RTSP server: `respond` answers each request; after PLAY, `stream` runs."""

    respond: Callable[[Request], Reply]
    stream: Callable[[asyncio.StreamWriter], object] | None = None
    requests: list[Request] = field(default_factory=list)
    rtcp: list[bytes] = field(default_factory=list)
    port: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                first = await reader.readexactly(1)
                if first == b"$":  # RTCP from the client over TCP
                    size = struct.unpack("!xH", await reader.readexactly(3))[0]
                    self.rtcp.append(await reader.readexactly(size))
                    continue
                head = first + await reader.readuntil(b"\r\n\r\n")
                start, pairs = parse_head(head[:-4])
                method, url, _ = start.split(" ")
                request = Request(method, url, dict(pairs))
                self.requests.append(request)
                status, headers, body = self.respond(request)
                lines = [f"RTSP/1.0 {status} X", f"CSeq: {request.headers['cseq']}"]
                lines += [f"{k}: {v}" for k, v in headers.items()]
                lines.append(f"Content-Length: {len(body.encode())}")
                writer.write(("\r\n".join(lines) + "\r\n\r\n" + body).encode())
                if method == "PLAY" and status == 200 and self.stream is not None:
                    coro = self.stream(writer)
                    assert asyncio.iscoroutine(coro)
                    self.tasks.append(asyncio.create_task(coro))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for task in self.tasks:
                task.cancel()
            writer.close()

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"


Serve = Callable[[FakeCamera], Awaitable[FakeCamera]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(camera: FakeCamera) -> FakeCamera:
        server = await asyncio.start_server(camera.handle, "127.0.0.1", 0)
        camera.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return camera

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def basic_replies(request: Request) -> Reply:
    if request.method == "OPTIONS":
        return 200, {"Public": "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"}, ""
    if request.method == "DESCRIBE":
        return 200, {"Content-Type": "application/sdp", "Content-Base": request.url + "/"}, SDP
    if request.method == "SETUP":
        return 200, {"Session": "abc123;timeout=2", "Transport": "RTP/AVP/TCP;interleaved=4-5"}, ""
    return 200, {}, ""


def rtp_frame(channel: int, seq: int, ts: int, payload: bytes, marker: bool) -> bytes:
    packet = struct.pack("!BBHII", 0x80, 96 | (0x80 if marker else 0), seq, ts, 1) + payload
    return struct.pack("!BBH", 0x24, channel, len(packet)) + packet


def test_digest_rfc2617_vector() -> None:
    response = digest_response(
        "Mufasa",
        "Circle Of Life",
        "testrealm@host.com",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "GET",
        "/dir/index.html",
        "auth",
        "00000001",
        "0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_challenge_parsing_and_preference() -> None:
    scheme, params = parse_challenge('Digest realm="IP Camera(C1234)", nonce="a,b", stale="FALSE"')
    assert scheme == "digest" and params == {
        "realm": "IP Camera(C1234)",
        "nonce": "a,b",
        "stale": "FALSE",
    }
    auth = Authenticator("admin", "pw")
    assert auth.challenge(['Basic realm="x"', 'Digest realm="x", nonce="n1"'])
    header = auth.header("DESCRIBE", "rtsp://h/s")
    assert header is not None and header.startswith("Digest ") and "qop" not in header
    assert not auth.challenge(['Digest realm="x", nonce="n1"']), "same challenge twice: refused"
    assert not auth.challenge(['Digest realm="x", nonce="n2"']), "new nonce, not stale: refused"
    assert auth.challenge(['Digest realm="x", nonce="n3", stale=true'])
    assert not Authenticator("", "").challenge(['Basic realm="x"'])


async def test_digest_with_qop_auth(serve: Serve, collect: Collect) -> None:
    realm, nonce = "cam", "f00d"

    def replies(request: Request) -> Reply:
        given = request.headers.get("authorization", "")
        if not given:
            challenge = f'Digest realm="{realm}", nonce="{nonce}", qop="auth,auth-int", opaque="op"'
            return 401, {"WWW-Authenticate": challenge}, ""
        _, params = parse_challenge(given)
        expected = digest_response(
            "admin",
            "p@ss word",
            realm,
            nonce,
            request.method,
            params["uri"],
            params["qop"],
            params["nc"],
            params["cnonce"],
        )
        assert params["opaque"] == "op" and params["uri"] == request.url
        if params["response"] != expected:
            return (
                401,
                {"WWW-Authenticate": f'Digest realm="{realm}", nonce="{nonce}", qop="auth"'},
                "",
            )
        return basic_replies(request)

    camera = await serve(FakeCamera(replies))
    url = f"rtsp://admin:p%40ss%20word@127.0.0.1:{camera.port}/cam"
    await collect(RtspSource(url, SourceOptions(timeout=1)), 0.5)
    counts = [
        parse_challenge(r.headers["authorization"])[1]["nc"]
        for r in camera.requests
        if "authorization" in r.headers
    ]
    assert counts[:4] == ["00000001", "00000002", "00000003", "00000004"]  # one per request
    setup = [r for r in camera.requests if r.method == "SETUP"]
    assert setup[0].url == camera.url + "/track1"
    assert setup[0].headers["transport"] == "RTP/AVP/TCP;unicast;interleaved=0-1"
    assert all("p@ss" not in str(r) for r in camera.requests)

    bad = f"rtsp://admin:nope@127.0.0.1:{camera.port}/cam"
    with pytest.raises(SourceError, match=r"401 Unauthorized \(wrong user or password\)"):
        await collect(RtspSource(bad, SourceOptions(timeout=1)))


async def test_redirect_followed_once(serve: Serve, collect: Collect) -> None:
    target = await serve(FakeCamera(basic_replies))

    def redirecting(request: Request) -> Reply:
        if request.method == "DESCRIBE":
            return 302, {"Location": target.url}, ""
        return basic_replies(request)

    first = await serve(FakeCamera(redirecting))
    await collect(RtspSource(first.url, SourceOptions(timeout=1)), 0.3)
    assert [r.method for r in target.requests][:4] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"]

    loop = await serve(FakeCamera(redirecting))
    loop.respond = lambda r: (
        (302, {"Location": loop.url}, "") if r.method == "DESCRIBE" else basic_replies(r)
    )
    with pytest.raises(SourceError, match="redirected more than once"):
        await collect(RtspSource(loop.url, SourceOptions(timeout=1)))


async def test_interleaved_stream_with_keepalive_replies(serve: Serve, collect: Collect) -> None:
    idr = bytes([0x65]) + bytes(3000)
    fu = [
        bytes([0x7C, 0x85]) + idr[1:1001],
        bytes([0x7C, 0x05]) + idr[1001:2001],
        bytes([0x7C, 0x45]) + idr[2001:],
    ]

    async def stream(writer: asyncio.StreamWriter) -> None:
        seq, ts = 65530, 0xFFFFF000
        for picture in range(40):
            chunks = [rtp_frame(4, (seq + i) & 0xFFFF, ts, p, i == 2) for i, p in enumerate(fu)]
            if picture == 3:  # a keepalive reply and an RTCP frame in between
                chunks.insert(1, b"RTSP/1.0 200 OK\r\nCSeq: 99\r\nContent-Length: 2\r\n\r\nok")
                chunks.insert(1, struct.pack("!BBH", 0x24, 5, 8) + bytes(8))
            data = b"".join(chunks)
            for cut in range(0, len(data), 777):  # odd TCP segment boundaries
                writer.write(data[cut : cut + 777])
                await writer.drain()
            seq, ts = seq + 3, (ts + 3600) & 0xFFFFFFFF
            await asyncio.sleep(0.01)

    camera = await serve(FakeCamera(basic_replies, stream))
    source = RtspSource(camera.url, SourceOptions(timeout=2))
    sink = await collect(source, 1.5)  # the session timeout is 2 s: one keepalive at 1 s
    assert sink.info == StreamInfo(Codec.H264, 640, 480, 25.0, bitstream.join_annexb([SPS, PPS]))
    assert len(sink.packets) == 40
    assert [p.pts for p in sink.packets] == [3600 * i for i in range(40)]
    assert all(p.data == bitstream.START_CODE + idr and p.keyframe for p in sink.packets)
    methods = [r.method for r in camera.requests]
    assert "GET_PARAMETER" in methods, methods
    assert camera.rtcp and camera.rtcp[0][1] == 201  # a receiver report
    assert methods[-1] == "TEARDOWN"
    assert all(r.headers.get("session") == "abc123" for r in camera.requests if r.method == "PLAY")


async def test_sink_error_ends_run(
    serve: Serve,
) -> None:
    async def stream(writer: asyncio.StreamWriter) -> None:
        for i in range(10):
            writer.write(rtp_frame(4, i, i * 3600, bytes([0x65, 1, 2]), True))
            await asyncio.sleep(0.01)

    class Broken(CollectingSink):
        def on_packet(self, packet: Packet) -> None:
            raise RuntimeError("sink bug")

    camera = await serve(FakeCamera(basic_replies, stream))
    with pytest.raises(RuntimeError, match="sink bug"):
        await asyncio.wait_for(RtspSource(camera.url, SourceOptions(timeout=2)).run(Broken()), 3)


async def test_unsupported_codec_without_pyav(
    serve: Serve,
    collect: Collect,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    def replies(request: Request) -> Reply:
        if request.method == "DESCRIBE":
            return 200, {}, "v=0\r\nm=video 0 RTP/AVP 97\r\na=rtpmap:97 VP8/90000\r\n"
        return basic_replies(request)

    monkeypatch.setitem(sys.modules, "streams.pyav_source", None)
    camera = await serve(FakeCamera(replies))
    with pytest.raises(SourceError, match="codec VP8"):
        await collect(RtspSource(camera.url, SourceOptions(timeout=1)))


async def test_no_data_timeout(serve: Serve, collect: Collect) -> None:
    camera = await serve(FakeCamera(basic_replies))  # PLAY answered, then nothing
    with pytest.raises(SourceError, match=r"no data for 0\.5 s"):
        await collect(RtspSource(camera.url, SourceOptions(timeout=0.5)), 3)


async def test_connection_parser_resyncs_on_garbage() -> None:
    frames: list[tuple[int, bytes]] = []
    conn = RtspConnection(lambda channel, data: frames.append((channel, bytes(data))))
    good = struct.pack("!BBH", 0x24, 0, 3) + b"abc"
    conn.data_received(b"\r\n\x00junk" + good[:2])
    conn.data_received(good[2:] + good)
    assert frames == [(0, b"abc"), (0, b"abc")]
    assert not conn.closed.done()
