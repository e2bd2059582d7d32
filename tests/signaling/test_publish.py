"""Room media plane end to end: real aiortc publishers and subscribers over loopback, the hub
forwarding their encoded frames (signaling/publish.py) without decoding or encoding."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiortc.rtcrtpreceiver
import pytest

from signaling.publish import Publication, Publications
from tests.signaling.test_publish_peers import HEIGHT, WIDTH, Publisher, Subscriber

Closed = list[tuple[str, str]]


@pytest.fixture
def closed() -> Closed:
    return []


@pytest.fixture
async def pubs(closed: Closed) -> AsyncIterator[Publications]:
    def on_close(pub: Publication, reason: str) -> None:
        closed.append((pub.id, reason))

    publications = Publications([], connect_timeout=10, on_close=on_close)
    yield publications
    await publications.close_all()


@pytest.fixture
def decoder_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The threads in which aiortc created a decoder (the subscribers' receivers do)."""
    threads: list[threading.Thread] = []
    real = aiortc.rtcrtpreceiver.get_decoder  # type: ignore[attr-defined]

    def counting(codec: Any) -> Any:
        threads.append(threading.current_thread())
        return real(codec)

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", counting)
    return threads


def hub_decoder_thread(pub: Publication, kind: str) -> threading.Thread | None:
    tap = pub.video_tap if kind == "video" else pub.audio_tap
    assert tap is not None
    thread: threading.Thread | None = tap.receiver.__dict__["_RTCRtpReceiver__decoder_thread"]
    return thread


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_three_subscribers_get_the_publishers_frames_and_the_hub_never_decodes(
    pubs: Publications, decoder_threads: list[threading.Thread]
) -> None:
    publisher = Publisher("h264")
    pub = await publisher.publish(pubs)
    assert pub.codec == "h264" and pub.audio is not None and pub.owner == "alice"
    subscribers = [Subscriber() for _ in range(3)]
    for sub in subscribers:
        await sub.subscribe(pubs, pub.id)
    await asyncio.gather(*(s.wait(video=15, audio=25) for s in subscribers))
    assert pubs.subscribers(pub.id) == 3
    for sub in subscribers:
        assert sub.sizes == {(WIDTH, HEIGHT)}
    # the hub's receivers run aiortc's decoder thread, but it never got a frame to decode
    hub_threads = {hub_decoder_thread(pub, "video"), hub_decoder_thread(pub, "audio")}
    assert None not in hub_threads
    assert not hub_threads & set(decoder_threads), "the hub created a decoder"
    assert len(decoder_threads) == 6, "each subscriber decodes video and audio (the probe works)"
    assert pub.video_tap is not None and pub.video_tap.frames >= 15
    assert pub.video.consumers and len(pub.video.consumers) == 3
    assert pub.video.info is not None and (pub.video.info.width, pub.video.info.height) == (
        WIDTH,
        HEIGHT,
    )
    # H.264 goes out through the lean sender, packetized once for all three
    for session in pubs.subscriptions(pub.id):
        assert session.fast is not None and session.fast.packets > 0
        assert session.audio is not None and session.audio.sent > 0
        assert session.audio_fast is not None and session.audio_fast.packets > 0
    # Opus leaves the hub's jitter buffer as soon as it is complete (aiortc holds 4 packets)
    assert pub.audio_tap is not None
    assert pub.audio_tap.receiver.__dict__["_RTCRtpReceiver__jitter_buffer"]._prefetch == 0
    # the tone's RFC 6464 level is read without decoding (-10 dBov ≈ 0.3)
    await until(lambda: pub.audio_level > 0.1)
    stats = pub.stats()
    assert stats["codec"] == "h264" and stats["state"] == "connected"
    for sub in subscribers:
        await sub.close()
    await publisher.close()


async def test_vp8_publisher_is_forwarded_as_vp8(
    pubs: Publications, decoder_threads: list[threading.Thread]
) -> None:
    publisher = Publisher("vp8")
    pub = await publisher.publish(pubs)
    assert pub.codec == "vp8"
    subscribers = [Subscriber(), Subscriber()]
    for sub in subscribers:
        await sub.subscribe(pubs, pub.id)
    await asyncio.gather(*(s.wait(video=10, audio=10) for s in subscribers))
    assert all(s.sizes == {(WIDTH, HEIGHT)} for s in subscribers)
    assert not {hub_decoder_thread(pub, "video"), hub_decoder_thread(pub, "audio")} & set(
        decoder_threads
    )
    assert all(s.fast is None for s in pubs.subscriptions(pub.id)), "VP8: aiortc's own sender"
    assert pub.video.info is not None and pub.video.info.width == WIDTH
    for sub in subscribers:
        await sub.close()
    await publisher.close()


async def test_aiortc_own_senders_forward_too(decoder_threads: list[threading.Thread]) -> None:
    pubs = Publications([], fast_rtp=False)
    publisher = Publisher("h264")
    pub = await publisher.publish(pubs)
    sub = Subscriber()
    await sub.subscribe(pubs, pub.id)
    await sub.wait(video=10, audio=20)
    assert sub.sizes == {(WIDTH, HEIGHT)}
    session = pubs.subscriptions(pub.id)[0]
    assert session.fast is None and session.audio_fast is None
    assert not {hub_decoder_thread(pub, "video"), hub_decoder_thread(pub, "audio")} & set(
        decoder_threads
    )
    await sub.close()
    await publisher.close()
    await pubs.close_all()


async def test_late_subscriber_starts_within_a_second_by_keyframe_request(
    pubs: Publications,
) -> None:
    publisher = Publisher("h264")
    pub = await publisher.publish(pubs)
    first = Subscriber()
    await first.subscribe(pubs, pub.id)
    await first.wait(video=5)
    # aiortc's encoder makes a keyframe every 250 frames: past the 60-frame GOP cache limit
    # the cache is empty and a newcomer needs a keyframe from the publisher
    await until(lambda: not pub.video.gop(), timeout=15)
    requests = publisher.keyframe_requests
    late = Subscriber()
    started = time.monotonic()
    await late.subscribe(pubs, pub.id)
    await asyncio.wait_for(late.first_frame, 5)
    assert time.monotonic() - started < 1.0
    assert publisher.keyframe_requests > requests, "the publisher was asked for a keyframe"
    assert pub.plis >= 1
    await late.wait(video=5)
    for peer in (first, late, publisher):
        await peer.close()


async def test_late_subscriber_starts_from_the_gop_cache_without_a_keyframe_request(
    closed: Closed,
) -> None:
    pubs = Publications([], gop_limit=600)
    publisher = Publisher("h264", audio=False)
    pub = await publisher.publish(pubs)
    first = Subscriber(audio=False)
    await first.subscribe(pubs, pub.id)
    await first.wait(video=20)
    assert pub.video.gop(), "the cache holds the GOP"
    plis = pub.plis
    late = Subscriber(audio=False)
    started = time.monotonic()
    await late.subscribe(pubs, pub.id)
    await asyncio.wait_for(late.first_frame, 5)
    assert time.monotonic() - started < 1.0
    assert pub.plis == plis
    for peer in (first, late, publisher):
        await peer.close()
    await pubs.close_all()


async def test_subscriber_pli_reaches_the_publisher_rate_limited(pubs: Publications) -> None:
    publisher = Publisher("h264", audio=False)
    pub = await publisher.publish(pubs)
    sub = Subscriber(audio=False)
    await sub.subscribe(pubs, pub.id)
    await sub.wait(video=5)
    await asyncio.sleep(0.6)  # past any PLI of the subscriber's start
    requests, plis = publisher.keyframe_requests, pub.plis
    receiver = next(t.receiver for t in sub.pc.getTransceivers() if t.kind == "video")
    ssrc = next(iter(receiver.getSynchronizationSources())).source
    for _ in range(5):  # a burst of PLIs from the subscriber
        await receiver._send_rtcp_pli(ssrc)
    session = pubs.subscriptions(pub.id)[0]
    await until(lambda: publisher.keyframe_requests > requests)
    await until(lambda: session.keyframe_requests == 5)
    await asyncio.sleep(0.7)  # the trailing request, if any, has gone
    assert 1 <= pub.plis - plis <= 2, "five requests, at most two PLIs in 0.5 s"
    await sub.wait(video=5)
    await sub.close()
    await publisher.close()


async def test_unpublish_ends_subscriber_tracks(pubs: Publications, closed: Closed) -> None:
    publisher = Publisher("h264")
    pub = await publisher.publish(pubs)
    subscribers = [Subscriber(), Subscriber()]
    for sub in subscribers:
        await sub.subscribe(pubs, pub.id)
    await asyncio.gather(*(s.wait(video=3, audio=3) for s in subscribers))
    assert await pubs.unpublish(pub.id, reason="host removed")
    assert not await pubs.unpublish(pub.id)
    await asyncio.gather(*(s.wait_ended({"video", "audio"}) for s in subscribers))
    assert pubs.get(pub.id) is None and pubs.subscribers(pub.id) == 0
    assert closed == [(pub.id, "host removed")]
    assert pub.video.closed and pub.audio is not None and pub.audio.closed
    assert pub.video_tap is not None and pub.video_tap.queue.stopped
    assert hub_decoder_thread(pub, "video") is None, "aiortc's decoder thread was joined"
    for sub in subscribers:
        await sub.close()
    await publisher.close()


async def test_publisher_vanishing_calls_on_close(pubs: Publications, closed: Closed) -> None:
    publisher = Publisher("h264")
    pub = await publisher.publish(pubs)
    sub = Subscriber()
    await sub.subscribe(pubs, pub.id)
    await sub.wait(video=3)
    await publisher.close()  # the browser tab went away
    await until(lambda: bool(closed))
    assert closed[0][0] == pub.id and "closed" in closed[0][1]
    await sub.wait_ended({"video", "audio"})
    assert pubs.get(pub.id) is None and pubs.subscribers(pub.id) == 0
    await sub.close()


async def test_unsubscribe_leaves_the_others_playing(pubs: Publications) -> None:
    publisher = Publisher("h264", audio=False)
    pub = await publisher.publish(pubs)
    a, b = Subscriber(audio=False), Subscriber(audio=False)
    session = await a.subscribe(pubs, pub.id)
    await b.subscribe(pubs, pub.id)
    await asyncio.gather(a.wait(video=3), b.wait(video=3))
    assert await pubs.unsubscribe(session)
    assert not await pubs.unsubscribe(session)
    assert pubs.subscribers(pub.id) == 1 and len(pub.video.consumers) == 1
    await b.wait(video=10)
    for peer in (a, b, publisher):
        await peer.close()


async def test_a_publisher_that_never_connects_is_dropped(closed: Closed) -> None:
    def on_close(pub: Publication, reason: str) -> None:
        closed.append((pub.id, reason))
        raise RuntimeError("a broken room callback must not break the media plane")

    pubs = Publications([], connect_timeout=0.5, on_close=on_close)
    publisher = Publisher("h264")
    pub, _ = await pubs.publish(await publisher.offer(), owner="carol", publication_id="p1")
    assert pub.id == "p1"
    await until(lambda: bool(closed), timeout=5)
    assert closed == [("p1", "ICE did not connect in time")]
    assert pubs.get("p1") is None and pubs.stats()["publications"] == 0
    assert pubs.stats()["published"] == 1
    await publisher.close()
    await pubs.close_all()


def test_close_all_leaves_no_task_no_thread_no_peer() -> None:
    async def exercise() -> set[asyncio.Task[Any]]:
        pubs = Publications([])
        publisher = Publisher("h264")
        pub = await publisher.publish(pubs)
        subscribers = [Subscriber(), Subscriber()]
        for sub in subscribers:
            await sub.subscribe(pubs, pub.id)
        await asyncio.gather(*(s.wait(video=3, audio=3) for s in subscribers))
        pub.request_keyframe()
        pub.request_keyframe()  # a trailing request is pending when the hub shuts down
        await pubs.close_all()
        assert pubs.get(pub.id) is None and not pubs.subscriptions()
        assert pub.pc.connectionState == "closed"
        for sub in subscribers:
            await sub.close()
        await publisher.close()
        current = asyncio.current_task()
        return {t for t in asyncio.all_tasks() if t is not current}

    before = {t.ident for t in threading.enumerate()}
    leftover = asyncio.run(exercise())
    assert leftover == set(), f"tasks left after close_all: {leftover}"
    after = [t for t in threading.enumerate() if t.ident not in before]
    assert after == [], f"threads left after close_all: {[t.name for t in after]}"
