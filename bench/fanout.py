"""Fan-out: one presenter → N aiortc viewers of a training broadcast, at 720p. Per-viewer
frame rate, and hub CPU per viewer (hub CPU with N viewers minus with the presenter alone).

    python -m bench fanout [--quick]
    python -m bench.fanout presenter --hub URL --token T --broadcast B --media talk.ts
    python -m bench.fanout viewers --hub URL --broadcast B --count 25 --name p3

The presenter publishes a pre-encoded 1280x720 25 fps H.264 file through
`MediaPlayer(decode=False)` (bench/meeting.py's media) to `POST /api/broadcasts/{id}/publish`.
Viewers run in several processes; each viewer joins as its own terminal user and subscribes to
the presenter's video (`/whep`, video only); each counts the frames its jitter buffer completes
instead of decoding them (as bench/viewer_proc.py), so hundreds of legs fit on this machine
next to the hub. Only the hub process's CPU is measured. On 2 cores the receivers, the
presenter and the hub share the CPU: a presenter starved by the receivers shows as a *sent*
rate under 25 fps (the hub forwards what it gets), receivers starved as *received* < *sent*.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from typing import Any

import aiohttp
import aiortc.rtcrtpreceiver
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from bench.common import (
    CENTRE,
    PYTHON,
    SECRET,
    Proc,
    cpu_percent,
    median,
    spawn,
    start_hub,
    workdir,
    write_section,
)
from bench.meeting import h264_first, make_media
from config.schema import Role
from hub.auth import TokenIssuer
from signaling.ice import use_host_addresses

FPS_TARGET = 24.0
PER_PROCESS = 25
WINDOW = 10.0


class FrameCounter:
    """Stands in for a receiver's decoder: counts completed frames (decoder thread)."""

    def __init__(self) -> None:
        self.frames = 0
        self._lock = threading.Lock()

    def decode(self, encoded_frame: Any) -> list[Any]:
        with self._lock:
            self.frames += 1
        return []


COUNTERS: list[FrameCounter] = []


def counting_decoder(codec: Any) -> FrameCounter:
    counter = FrameCounter()
    COUNTERS.append(counter)
    return counter


async def _sdp(http: aiohttp.ClientSession, url: str, token: str, pc: RTCPeerConnection) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
    async with http.post(url, data=pc.localDescription.sdp, headers=headers) as resp:
        body = await resp.text()
        if resp.status != 201:
            raise RuntimeError(f"{url} answered {resp.status}: {body[:200]}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))


async def _join(http: aiohttp.ClientSession, base: str, bid: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.post(f"{base}/api/broadcasts/{bid}/join", headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"join answered {resp.status}: {await resp.text()}")


async def _serve_marks(pcs: list[RTCPeerConnection]) -> None:
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "mark":
        connected = sum(pc.connectionState == "connected" for pc in pcs)
        frames = [c.frames for c in COUNTERS]
        print(json.dumps({"frames": frames, "connected": connected}), flush=True)
    for pc in pcs:
        with contextlib.suppress(Exception):
            await pc.close()


async def presenter(args: argparse.Namespace) -> None:
    use_host_addresses(["127.0.0.1"])
    player = MediaPlayer(args.media, decode=False, loop=True)
    pc = RTCPeerConnection()
    assert player.video is not None
    h264_first(pc.addTransceiver(player.video, direction="sendonly"), "video")
    async with aiohttp.ClientSession() as http:
        await _join(http, args.hub, args.broadcast, args.token)
        await _sdp(http, f"{args.hub}/api/broadcasts/{args.broadcast}/publish", args.token, pc)
        print("PUBLISHED", flush=True)
        await _serve_marks([pc])


async def viewers(args: argparse.Namespace) -> None:
    use_host_addresses(["127.0.0.1"])
    aiortc.rtcrtpreceiver.get_decoder = counting_decoder  # type: ignore[attr-defined, assignment]
    issuer = TokenIssuer(SECRET, 3600)
    pcs: list[RTCPeerConnection] = []
    async with aiohttp.ClientSession() as http:
        for i in range(args.count):
            token = issuer.issue(f"{args.name}-{i}", Role.TERMINAL, CENTRE, None)
            await _join(http, args.hub, args.broadcast, token)
            pc = RTCPeerConnection()
            pc.addTransceiver("video", direction="recvonly")
            await _sdp(http, f"{args.hub}/api/broadcasts/{args.broadcast}/whep", token, pc)
            pcs.append(pc)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                while len(COUNTERS) < args.count or min(c.frames for c in COUNTERS) == 0:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
        print(f"READY {len(pcs)}", flush=True)
        await _serve_marks(pcs)


async def _mark(parts: list[Proc]) -> list[dict[str, Any]]:
    async def one(p: Proc) -> dict[str, Any]:
        await p.send("mark")
        reply: dict[str, Any] = json.loads(await p.wait_for("{", 30))
        return reply

    return list(await asyncio.gather(*(one(p) for p in parts)))


async def _sent(http: aiohttp.ClientSession, url: str, token: str) -> dict[str, int]:
    """Video frames the hub has sent to each subscription (GET /api/broadcasts/{id}/stats)."""
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.json()
    return {s["id"]: int(s["video_sent"]) for s in body["subscriptions"]}


async def measure(
    hub_pid: int, parts: list[Proc], window: float, http: aiohttp.ClientSession, stats: str,
    token: str,
) -> dict[str, Any]:  # fmt: skip
    before, sent_before = await _mark(parts), await _sent(http, stats, token)
    start = time.monotonic()
    cpu = (await cpu_percent([hub_pid], window))[0]
    after, sent_after = await _mark(parts), await _sent(http, stats, token)
    seconds = time.monotonic() - start
    fps = [
        (a - b) / seconds
        for x, y in zip(after, before, strict=True)
        for a, b in zip(x["frames"], y["frames"], strict=False)
    ]
    sent = [(n - sent_before.get(sid, 0)) / seconds for sid, n in sent_after.items()]
    return {
        "cpu": cpu,
        "fps": fps,
        "sent": sent,
        "connected": sum(x["connected"] for x in after),
    }


async def run(quick: bool = False) -> None:
    steps = [20] if quick else [25, 50, 100, 200]
    window = 5.0 if quick else WINDOW
    wd = workdir("fanout")
    media = make_media(wd / "talk.ts", 20)
    hub = await start_hub(wd, {})
    parts: list[Proc] = []
    rows: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {hub.token}"}
            body = {"title": "fan-out bench", "subtree": CENTRE}
            async with http.post(f"{hub.base}/api/broadcasts", json=body, headers=headers) as r:
                bid = (await r.json())["id"]
        cmd = [PYTHON, "-m", "bench.fanout"]
        pres = await spawn(
            "presenter",
            [*cmd, "presenter", "--hub", hub.base, "--token", hub.token, "--broadcast", bid,
             "--media", str(media)],
            wd, stdin=True,
        )  # fmt: skip
        parts.append(pres)
        await pres.wait_for("PUBLISHED", 30)
        await asyncio.sleep(3)
        idle = (await cpu_percent([hub.proc.pid], window))[0]
        total = 0
        for n in steps:
            try:
                while total < n:
                    count = min(PER_PROCESS, n - total)
                    name = f"v{len(parts)}"
                    proc = await spawn(
                        name,
                        [*cmd, "viewers", "--hub", hub.base, "--broadcast", bid,
                         "--count", str(count), "--name", name],
                        wd, stdin=True,
                    )  # fmt: skip
                    parts.append(proc)
                    await proc.wait_for("READY", 240)
                    total += count
                await asyncio.sleep(2)
                async with aiohttp.ClientSession() as http:
                    stats = f"{hub.base}/api/broadcasts/{bid}/stats"
                    m = await measure(hub.proc.pid, parts[1:], window, http, stats, hub.token)
                fps, sent = m["fps"], m["sent"]
                low = sum(f < FPS_TARGET for f in fps)
                per = (m["cpu"] - idle) / n
                rows.append(
                    f"| {n} | {m['connected']} | {median(sent):.1f} / {min(sent, default=0):.1f} | "
                    f"{median(fps):.1f} / {min(fps, default=0):.1f} | {low} | {m['cpu']:.0f} % | {per:.2f} % |"
                )
                print(rows[-1], flush=True)
            except (TimeoutError, RuntimeError) as err:  # this machine's limit: report it
                why = (str(err).splitlines() or [""])[0][:120]
                rows.append(f"| {n} | step failed: {type(err).__name__} {why} | | | | | |")
                print(rows[-1], flush=True)
                break
    finally:
        for p in reversed(parts):
            with contextlib.suppress(Exception):
                await p.send("quit")
            await p.stop()
        await hub.stop()
    text = (
        "One presenter (pre-encoded 1280x720 25 fps H.264, ~1.5 Mbit/s) → N aiortc viewers "
        f"in processes of {PER_PROCESS}, each its own terminal user joined to the broadcast "
        "(video only, frames counted, not decoded). Hub CPU is % of one core over "
        f"{window:.0f} s; per viewer = (hub CPU − hub CPU with the presenter alone, "
        f"{idle:.0f} %) / N. Target: N ≥ 200, every viewer ≥ {FPS_TARGET:.0f} fps.\n\n"
        "*Sent* is what the hub forwarded to each viewer (per second, from "
        "`GET /api/broadcasts/{id}/stats`); *received* is what the viewer's jitter buffer "
        "completed (the authoritative rate). *Sent* counts the units the subscription's track "
        "handed to its sender: with this input about 3 per frame (80/s at 25 fps, not yet "
        "explained), so compare it between rows: a falling *sent* means the presenter got "
        "too little CPU; received below 25 with steady *sent* means the viewer processes "
        "(Python RTP/SRTP on the same 2 cores) could not keep up.\n\n"
        "| viewers | connected | sent fps median / min | received fps median / min | "
        "viewers receiving < 24 fps | hub CPU | hub CPU per viewer |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    write_section("fanout", "Broadcast fan-out (1 presenter → N viewers, 720p)",
                  "python -m bench fanout", text)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("presenter")
    p.add_argument("--hub", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--broadcast", required=True)
    p.add_argument("--media", required=True)
    v = sub.add_parser("viewers")
    v.add_argument("--hub", required=True)
    v.add_argument("--broadcast", required=True)
    v.add_argument("--count", type=int, default=PER_PROCESS)
    v.add_argument("--name", required=True)
    args = parser.parse_args()
    asyncio.run(presenter(args) if args.command == "presenter" else viewers(args))


if __name__ == "__main__":
    main()
