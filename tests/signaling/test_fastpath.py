"""The lean RTP sender (signaling/fastpath.py), which reaches into aiortc internals: these
tests are what a version bump of aiortc must pass."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from hub.app import build_app
from hub.cameras.service import WHEP
from signaling.fastpath import FastSender, h264_payloads
from streams import bitstream
from streams.media import Packet
from tests.conftest import topology
from tests.fixtures.webrtc import WhepViewer


def test_payloads_are_packetized_once_per_packet() -> None:
    big = bytes([0x65]) + bytes(range(256)) * 20  # ~5 KB IDR slice → FU-A fragments
    packet = Packet(
        bitstream.join_annexb([bytes([0x67, 0x42, 0, 0x1F]), bytes([0x68, 0xCE]), big]), 0, True
    )
    first = h264_payloads(packet)
    assert h264_payloads(packet) is first, "the second viewer must reuse the first's payloads"
    stap, *fus = first
    assert stap[0] & 0x1F == 24  # STAP-A with SPS and PPS
    assert all(fu[0] & 0x1F == 28 for fu in fus)  # FU-A
    assert fus[0][1] & 0x80 and fus[-1][1] & 0x40  # start and end bits
    rebuilt = bytes([(fus[0][0] & 0xE0) | (fus[0][1] & 0x1F)]) + b"".join(fu[2:] for fu in fus)
    assert rebuilt == big
    assert all(len(p) <= 1300 for p in first)


@pytest.mark.parametrize("fast_rtp", [True, False], ids=["fastpath", "aiortc-sender"])
async def test_both_send_loops_deliver_frames(token: Callable[..., str], fast_rtp: bool) -> None:
    cfg = parse_config(topology(webrtc={"fast_rtp": fast_rtp}))
    async with TestClient(TestServer(build_app(cfg), host="127.0.0.1")) as client:
        viewer = WhepViewer(
            client.session, str(client.make_url("/api/cameras/county-cam/whep")), token()
        )
        await viewer.start()
        await viewer.wait_frames(10)
        session = client.app[WHEP].sessions()[0]
        assert (session.fast is not None) is fast_rtp
        if session.fast is not None:
            assert session.fast.packets > 0
        await viewer.stop()


async def test_lost_packet_is_retransmitted_on_nack(token: Callable[..., str]) -> None:
    cfg = parse_config(topology())
    async with TestClient(TestServer(build_app(cfg), host="127.0.0.1")) as client:
        viewer = WhepViewer(
            client.session, str(client.make_url("/api/cameras/county-cam/whep")), token()
        )
        await viewer.start()
        await viewer.wait_frames(5)
        fast = client.app[WHEP].sessions()[0].fast
        assert isinstance(fast, FastSender)
        send = fast._send
        dropped: list[int] = []

        def lossy(data: bytes) -> None:
            # drop one datagram of the stream, as a lossy village link would
            if not dropped and fast.packets > 30:
                dropped.append(int.from_bytes(data[2:4], "big"))
                return
            send(data)

        fast._send = lossy  # type: ignore[method-assign]
        async with asyncio.timeout(10):
            while not fast.retransmits:
                await asyncio.sleep(0.05)
        assert dropped, "a packet was dropped"
        frames = viewer.frames
        await viewer.wait_frames(10)
        assert viewer.frames > frames
        await viewer.stop()


async def test_retransmit_of_unknown_sequence_is_ignored(token: Callable[..., str]) -> None:
    cfg = parse_config(topology())
    async with TestClient(TestServer(build_app(cfg), host="127.0.0.1")) as client:
        viewer = WhepViewer(
            client.session, str(client.make_url("/api/cameras/county-cam/whep")), token()
        )
        await viewer.start()
        await viewer.wait_frames(3)
        fast: Any = client.app[WHEP].sessions()[0].fast
        seq = next(iter(fast.history.values()))[0]
        await fast._retransmit((seq + 30000) % 65536)
        assert fast.retransmits == 0
        await fast._retransmit(seq)
        assert fast.retransmits == 1
        await viewer.stop()
