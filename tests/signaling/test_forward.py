"""The receiver tap (signaling/forward.py) and the offer checks (signaling/forward_offer.py),
piece by piece; tests/signaling/test_publish.py runs them with real peers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, cast

import pytest
from aiortc import RTCRtpReceiver

from signaling.forward import ForwardQueue, ReceiverTap, vp8_dimensions, vp8_keyframe
from signaling.forward_offer import (
    check_offer,
    media_sections,
    publisher_preferences,
    subscriber_preferences,
)
from signaling.publish import OfferError, Publications, UnknownPublication
from streams import bitstream
from streams.relay import Relay
from tests.signaling.test_publish_peers import Publisher, Subscriber

# a 320x240 baseline SPS and a PPS, as x264 writes them
SPS = bytes.fromhex("6742c00dd90141fa10000003001000000303c8f142a480")
PPS = bytes.fromhex("68cb83cb20")
IDR = bitstream.join_annexb([SPS, PPS, bytes([0x65, 0x88, 0x84, 0x00])])
P_FRAME = bitstream.join_annexb([bytes([0x41, 0x9A, 0x02, 0x00])])


@dataclass
class Codec:
    name: str


@dataclass
class Frame:
    data: bytes
    timestamp: int


@dataclass
class Extensions:
    audio_level: tuple[bool, int] | None = None


@dataclass
class RtpPacket:
    payload_type: int
    ssrc: int
    extensions: Extensions
    marker: int = 0


class FakeReceiver:
    """What ReceiverTap touches of an RTCRtpReceiver."""

    def __init__(self) -> None:
        self.handled: list[RtpPacket] = []
        self.plis: list[int] = []
        setattr(self, "_RTCRtpReceiver__codecs", {96: Codec("H264"), 97: Codec("rtx")})  # noqa: B010

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self.handled.append(packet)

    async def _send_rtcp_pli(self, media_ssrc: int) -> None:
        self.plis.append(media_ssrc)


def tap(kind: str = "video") -> tuple[ReceiverTap, FakeReceiver, Relay]:
    receiver = FakeReceiver()
    relay = Relay(f"test-{kind}")
    t = ReceiverTap(cast(RTCRtpReceiver, receiver), relay, kind)
    t.install()
    return t, receiver, relay


def test_forward_queue_feeds_the_sink_and_releases_the_decoder_thread_on_stop() -> None:
    got: list[tuple[Any, Any]] = []
    q = ForwardQueue(lambda codec, frame: got.append((codec, frame)))
    returned: list[Any] = ["nothing yet"]
    thread = threading.Thread(target=lambda: returned.__setitem__(0, q.get()))
    thread.start()  # as aiortc's decoder thread does
    q.put(("codec", "frame"))
    assert got == [("codec", "frame")] and q.frames == 1
    thread.join(0.1)
    assert thread.is_alive(), "get() must block: the decoder thread never gets a frame"
    q.put(None)  # aiortc stops the receiver
    thread.join(2)
    assert not thread.is_alive() and returned == [None] and q.stopped


def test_frames_before_the_first_keyframe_are_held_back() -> None:
    t, _, relay = tap()
    consumer = relay.subscribe("c", replay=False)
    t.queue.put((Codec("H264"), Frame(P_FRAME, 0)))
    assert t.skipped == 1 and relay.packets == 0
    t.queue.put((Codec("H264"), Frame(IDR, 3000)))
    t.queue.put((Codec("H264"), Frame(P_FRAME, 6000)))
    first, second = consumer.get_nowait(), consumer.get_nowait()
    assert first is not None and first.keyframe and first.pts == 3000 and first.data == IDR
    assert second is not None and not second.keyframe and second.pts == 6000
    assert relay.info is not None and (relay.info.width, relay.info.height) == (320, 240)
    assert t.keyframes == 1 and t.frames == 2 and t.codec_name == "h264"


async def test_a_loss_holds_frames_back_until_the_next_keyframe() -> None:
    t, receiver, relay = tap()
    t.queue.put((Codec("H264"), Frame(IDR, 0)))
    # aiortc's jitter buffer lost data and asks for a keyframe through the wrapped PLI
    await t.receiver._send_rtcp_pli(1234)
    assert receiver.plis == [1234]
    t.queue.put((Codec("H264"), Frame(P_FRAME, 3000)))
    assert relay.packets == 1 and t.skipped == 1
    t.queue.put((Codec("H264"), Frame(IDR, 6000)))
    assert relay.packets == 2


async def test_rtp_wrapper_learns_the_media_ssrc_and_passes_packets_on() -> None:
    t, receiver, _ = tap()
    assert t.send_pli() is None, "no PLI before the publisher's SSRC is known"
    await t._handle_rtp_packet(RtpPacket(97, 999, Extensions()), 0)  # RTX
    assert t.ssrc is None
    await t._handle_rtp_packet(RtpPacket(96, 4242, Extensions(), marker=1), 0)
    assert t.ssrc == 4242 and len(receiver.handled) == 2
    assert t.stats()["rtp_packets"] == 2 and t.stats()["rtp_markers"] == 1
    pli = t.send_pli()
    assert pli is not None
    await pli
    assert receiver.plis == [4242]


async def test_audio_level_rises_fast_falls_slowly_and_goes_stale() -> None:
    t, _, _ = tap("audio")
    getattr(t, "_codecs")[96] = Codec("opus")  # noqa: B009
    assert t.audio_level == 0.0
    for _ in range(10):  # -6 dBov: half the full amplitude
        await t._handle_rtp_packet(RtpPacket(96, 1, Extensions((True, 6))), 0)
    loud = t.audio_level
    assert 0.45 < loud <= 0.51
    await t._handle_rtp_packet(RtpPacket(96, 1, Extensions((False, 127))), 0)
    assert 0.4 < t.audio_level < loud, "silence lowers the level gradually"
    t._level_at = time.monotonic() - 1.0  # the last packet came a second ago
    assert t.audio_level == 0.0, "a microphone that stopped sending is silent"


def test_opus_packets_are_all_keyframes_on_the_48khz_clock() -> None:
    t, _, relay = tap("audio")
    consumer = relay.subscribe("c", replay=False)
    t.queue.put((Codec("opus"), Frame(b"\xfc\x01\x02", 960)))
    packet = consumer.get_nowait()
    assert packet is not None and packet.keyframe and packet.pts == 960
    assert relay.info is None, "audio relays carry no video stream info"


def test_install_refuses_a_started_receiver() -> None:
    receiver = FakeReceiver()
    setattr(receiver, "_RTCRtpReceiver__decoder_thread", threading.current_thread())  # noqa: B010
    with pytest.raises(RuntimeError, match="too late"):
        ReceiverTap(cast(RTCRtpReceiver, receiver), Relay("r"), "video").install()


def test_vp8_header_parsing() -> None:
    key = bytes([0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0x00])
    assert vp8_keyframe(key) and vp8_dimensions(key) == (320, 240)
    assert not vp8_keyframe(bytes([0x51, 0x00])) and vp8_dimensions(b"\x51") == (0, 0)


OFFER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:x\r\na=fingerprint:sha-256 AA\r\n"
)


def test_media_sections_and_offer_checks() -> None:
    sdp = OFFER + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\nm=audio 0 RTP 111\r\n"
    assert media_sections(sdp) == [("video", "sendonly")], "port 0 is a rejected m-line"
    assert check_offer(sdp, publish=True) == {"video"}
    with pytest.raises(OfferError, match="only receives"):
        check_offer(sdp, publish=False)
    two = OFFER + "m=video 9 X 96\r\na=sendonly\r\nm=video 9 X 97\r\na=sendonly\r\n"
    with pytest.raises(OfferError, match="one video track"):
        check_offer(two, publish=True)
    recv = OFFER + "m=audio 9 X 111\r\na=recvonly\r\n"
    assert check_offer(recv, publish=False) == {"audio"}
    with pytest.raises(OfferError, match="sends no audio or video"):
        check_offer(recv, publish=True)
    for bad, reason in [
        ("", "empty"),
        ("hello", "not an SDP offer"),
        ("v=0\r\nm=video 9 X 96\r\n", "ICE credentials"),
        (OFFER, "no audio or video media section"),
        (OFFER + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", "no audio or video"),
    ]:
        with pytest.raises(OfferError, match=reason):
            check_offer(bad, publish=True)


def test_codec_preferences() -> None:
    video = [c.mimeType.lower() for c in publisher_preferences("video")]
    assert video[0] == "video/h264" and "video/vp8" in video
    assert video.index("video/vp8") > max(i for i, m in enumerate(video) if m == "video/h264")
    assert {c.mimeType.lower() for c in publisher_preferences("audio")} == {"audio/opus"}
    assert {c.mimeType.lower() for c in subscriber_preferences("video", "vp8")} == {
        "video/vp8",
        "video/rtx",
    }
    assert {c.mimeType.lower() for c in subscriber_preferences("audio", "")} == {"audio/opus"}


async def test_bad_offers_and_unknown_publications_are_refused() -> None:
    pubs = Publications([])
    with pytest.raises(OfferError, match="not an SDP offer"):
        await pubs.publish("garbage", owner="x")
    with pytest.raises(OfferError, match="no audio or video"):
        await pubs.publish(OFFER, owner="x")
    # a real offer, but its ICE/DTLS lines mangled: aiortc refuses it, the hub says why
    publisher = Publisher("h264")
    offer = await publisher.offer()
    with pytest.raises(OfferError, match="cannot use the offer"):
        await pubs.publish(offer.replace("a=setup:actpass", "a=setup:bogus"), owner="x")
    # a publication that only has a microphone cannot serve a video-only subscriber
    mic = Publisher(audio=True, video=False)
    pub = await mic.publish(pubs)
    assert pub.codec == "" and pub.audio is not None
    viewer = Subscriber(audio=False)
    with pytest.raises(OfferError, match="nothing to receive"):
        await pubs.subscribe(pub.id, await viewer.offer(), user="bob")
    with pytest.raises(UnknownPublication):
        await pubs.subscribe("nope", await viewer.offer(), user="bob")
    again = Publisher()
    with pytest.raises(ValueError, match="exists"):
        await pubs.publish(await again.offer(), owner="x", publication_id=pub.id)
    assert pubs.failed == 2 and pubs.published == 1
    await pubs.close_all()
    for peer in (publisher, mic, viewer, again):
        await peer.close()
