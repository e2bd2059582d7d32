"""Meeting: a 6-party 720p room. Hub CPU and the frame rate every receiver gets, forwarding
(signaling/publish.py) against the naive way (one encoder per receiver) in the same run.

    python -m bench.meeting [--quick]                         # the benchmark
    python -m bench.meeting hub --mode forward|encode --port N
    python -m bench.meeting participant --hub URL --name p1 --media talk.ts

Each participant is an aiortc peer in its own process. It publishes a pre-encoded file
(1280x720 25 fps H.264 ~1.5 Mbit/s + Opus, MPEG-TS so the H.264 is Annex-B with in-band
SPS/PPS) through `MediaPlayer(decode=False)`, so publishing costs the participant no encoder,
then subscribes to the five others. Receivers count the frames aiortc's jitter buffer
completes instead of decoding them (bench/viewer_proc.py does the same), so that 30 receive
legs fit on this machine next to the hub. Only the hub process's CPU is measured.

Modes of the hub process:
- `forward`: `Publications` — the publisher's encoded frames go to every subscriber as they are.
- `encode` (baseline): aiortc as its examples use it — each published track decoded once,
  `MediaRelay` fans the pictures out, every subscriber's sender encodes its own H.264 and Opus.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import aiortc.rtcrtpreceiver
from aiohttp import web
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer, MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from bench.common import PYTHON, Proc, cpu_percent, free_port, median, spawn, workdir, write_section
from signaling.ice import use_host_addresses
from signaling.publish import Publications

PARTIES = 6
FPS = 25
WARMUP = 4.0


# -- the hub process ----------------------------------------------------------------------------
def h264_first(transceiver: Any, kind: str) -> None:
    if kind == "video":
        caps = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences(
            [c for c in caps if c.mimeType in ("video/H264", "video/rtx")]
        )


class EncodeRoom:
    """The baseline: decode each publisher once, encode once per subscriber."""

    def __init__(self) -> None:
        self.pcs: list[RTCPeerConnection] = []
        self.relay = MediaRelay()
        self.tracks: dict[str, dict[str, MediaStreamTrack]] = {}

    async def publish(self, offer: str, *, owner: str) -> tuple[str, str]:
        pc = RTCPeerConnection()
        self.pcs.append(pc)
        tracks: dict[str, MediaStreamTrack] = {}
        pc.on("track", lambda track: tracks.__setitem__(track.kind, track))
        for kind in ("video", "audio"):
            h264_first(pc.addTransceiver(kind, direction="recvonly"), kind)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        pid = secrets.token_urlsafe(8)
        self.tracks[pid] = tracks
        return pid, pc.localDescription.sdp

    async def subscribe(self, pid: str, offer: str, *, user: str) -> str:
        pc = RTCPeerConnection()
        self.pcs.append(pc)
        for kind, track in self.tracks[pid].items():
            h264_first(
                pc.addTransceiver(self.relay.subscribe(track, buffered=False), "sendonly"), kind
            )
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def close_all(self) -> None:
        for pc in self.pcs:
            with contextlib.suppress(Exception):
                await pc.close()


async def serve_hub(args: argparse.Namespace) -> None:
    use_host_addresses(["127.0.0.1"])
    forward = Publications([]) if args.mode == "forward" else None
    naive = EncodeRoom() if args.mode == "encode" else None

    async def publish(request: web.Request) -> web.Response:
        offer, owner = await request.text(), request.query["owner"]
        if forward is not None:
            pub, answer = await forward.publish(offer, owner=owner)
            pid = pub.id
        else:
            assert naive is not None
            pid, answer = await naive.publish(offer, owner=owner)
        return web.Response(status=201, text=answer, headers={"X-Publication": pid})

    async def subscribe(request: web.Request) -> web.Response:
        offer, pid, user = await request.text(), request.match_info["pid"], request.query["user"]
        if forward is not None:
            _, answer = await forward.subscribe(pid, offer, user=user)
        else:
            assert naive is not None
            answer = await naive.subscribe(pid, offer, user=user)
        return web.Response(status=201, text=answer)

    app = web.Application()
    app.router.add_post("/publish", publish)
    app.router.add_post("/subscribe/{pid}", subscribe)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    print(f"READY http://127.0.0.1:{args.port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await (forward or naive).close_all()  # type: ignore[union-attr]
    await runner.cleanup()


# -- a participant process ----------------------------------------------------------------------
class FrameCounter:
    """Stands in for a receiver's decoder: counts the frames the jitter buffer completes."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.frames = 0

    def decode(self, encoded_frame: Any) -> list[Any]:
        self.frames += 1  # one decoder thread per counter
        return []


COUNTERS: list[FrameCounter] = []


def counting_decoder(codec: Any) -> FrameCounter:
    counter = FrameCounter("audio" if codec.mimeType.startswith("audio") else "video")
    COUNTERS.append(counter)
    return counter


async def post(http: aiohttp.ClientSession, url: str, pc: RTCPeerConnection) -> str:
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(url, data=pc.localDescription.sdp) as resp:
        body = await resp.text()
        if resp.status != 201:
            raise RuntimeError(f"{url} answered {resp.status}: {body[:200]}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        return resp.headers.get("X-Publication", "")


async def participant(args: argparse.Namespace) -> None:
    use_host_addresses(["127.0.0.1"])
    aiortc.rtcrtpreceiver.get_decoder = counting_decoder  # type: ignore[attr-defined, assignment]
    player = MediaPlayer(args.media, decode=False)
    pcs: list[RTCPeerConnection] = []
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        pub_pc = RTCPeerConnection()
        pcs.append(pub_pc)
        for kind, track in (("video", player.video), ("audio", player.audio)):
            if track is not None:
                h264_first(pub_pc.addTransceiver(track, direction="sendonly"), kind)
        pid = await post(http, f"{args.hub}/publish?owner={args.name}", pub_pc)
        print(f"PUBLISHED {pid}", flush=True)
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        for other in line[1:]:
            pc = RTCPeerConnection()
            pcs.append(pc)
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
            await post(http, f"{args.hub}/subscribe/{other}?user={args.name}", pc)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                while sum(c.kind == "video" and c.frames > 0 for c in COUNTERS) < len(line) - 1:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
        print(f"READY {len(pcs) - 1}", flush=True)
        while True:
            command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if command != "mark":
                break
            print(
                json.dumps(
                    {
                        "video": [c.frames for c in COUNTERS if c.kind == "video"],
                        "audio": [c.frames for c in COUNTERS if c.kind == "audio"],
                        "connected": sum(pc.connectionState == "connected" for pc in pcs),
                    }
                ),
                flush=True,
            )
        for pc in pcs:
            with contextlib.suppress(Exception):
                await pc.close()


# -- the benchmark ------------------------------------------------------------------------------
def make_media(path: Path, seconds: int) -> Path:
    """720p25 H.264 (baseline, 2 s GOP, ~1.5 Mbit/s) + Opus, in MPEG-TS."""
    subprocess.run([
        "ffmpeg", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate={FPS}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-bf", "0",
        "-g", str(2 * FPS), "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "1500k",
        "-x264-params", "sliced-threads=0:repeat-headers=1", "-pix_fmt", "yuv420p",
        "-c:a", "libopus", "-b:a", "32k", "-ac", "1", str(path),
    ], check=True, timeout=300)  # fmt: skip
    return path


async def mark(parts: list[Proc]) -> tuple[float, list[dict[str, Any]]]:
    async def one(p: Proc) -> dict[str, Any]:
        await p.send("mark")
        reply: dict[str, Any] = json.loads(await p.wait_for("{", 30))
        return reply

    replies = await asyncio.gather(*(one(p) for p in parts))
    return time.monotonic(), list(replies)


def rates(
    before: list[dict[str, Any]], after: list[dict[str, Any]], kind: str, seconds: float
) -> list[float]:
    out: list[float] = []
    for b, a in zip(before, after, strict=True):
        out += [
            (x - y) / seconds for x, y in zip(a[kind], b[kind] + [0] * len(a[kind]), strict=False)
        ]
    return out


async def measure(mode: str, media: Path, wd: Path, runs: int, window: float) -> dict[str, Any]:
    port = free_port()
    hub = await spawn(
        f"hub-{mode}",
        [PYTHON, "-m", "bench.meeting", "hub", "--mode", mode, "--port", str(port)],
        wd,
    )
    parts: list[Proc] = []
    result: dict[str, Any] = {
        "mode": mode,
        "cpu": [],
        "fps_median": [],
        "fps_min": [],
        "audio": [],
        "connected": 0,
        "participants_cpu": [],
    }
    try:
        url = (await hub.wait_for("READY ", 20)).split()[1]
        for i in range(PARTIES):
            cmd = [
                PYTHON,
                "-m",
                "bench.meeting",
                "participant",
                "--hub",
                url,
                "--name",
                f"p{i}",
                "--media",
                str(media),
            ]
            parts.append(await spawn(f"p{i}-{mode}", cmd, wd, stdin=True))
        ids = [(await p.wait_for("PUBLISHED ", 30)).split()[1] for p in parts]
        for i, p in enumerate(parts):
            await p.send("subscribe " + " ".join(ids[:i] + ids[i + 1 :]))
        for p in parts:
            await p.wait_for("READY ", 90)
        await asyncio.sleep(WARMUP)
        for _ in range(runs):
            t0, before = await mark(parts)
            hub_cpu, *part_cpu = await cpu_percent([hub.pid, *(p.pid for p in parts)], window)
            t1, after = await mark(parts)
            video = rates(before, after, "video", t1 - t0)
            result["cpu"].append(hub_cpu)
            result["participants_cpu"].append(sum(part_cpu))
            result["fps_median"].append(median(video))
            result["fps_min"].append(min(video) if video else 0.0)
            result["audio"].append(median(rates(before, after, "audio", t1 - t0)))
            result["receivers"] = len(video)
            result["connected"] = sum(int(a["connected"]) for a in after)
        result["load"] = os.getloadavg()[0]  # other work on the machine shows here
    except Exception as err:  # report what broke; the other mode still runs
        result["error"] = f"{type(err).__name__}: {err}"
    finally:
        for p in parts:
            with contextlib.suppress(Exception):
                await p.send("quit")
        for p in parts:
            await p.stop()
        await hub.stop()
    return result


async def run(quick: bool = False) -> None:
    wd = workdir("meeting")
    runs, window = (1, 4.0) if quick else (3, 8.0)
    media = make_media(wd / "talk.ts", 60 if quick else 90)
    results = [await measure(mode, media, wd, runs, window) for mode in ("forward", "encode")]
    rows = []
    for r in results:
        name = {
            "forward": "forward (zzhub `Publications`)",
            "encode": "baseline: decode once, encode per receiver",
        }[r["mode"]]
        if r["cpu"]:
            rows.append(
                f"| {name} | {median(r['cpu']):.1f} % | {median(r['fps_median']):.1f} | "
                f"{median(r['fps_min']):.1f} | {median(r['audio']):.1f} | {r['connected']} of {PARTIES * PARTIES} | "
                f"{median(r['participants_cpu']):.0f} % |"
            )
        else:
            rows.append(f"| {name} | failed: {r.get('error', '?')} | | | | | |")
    base = results[1]
    lost = (
        f"; {PARTIES * PARTIES - base['connected']} of its {PARTIES * PARTIES} peers did not connect"
        if base["cpu"] and base["connected"] < PARTIES * PARTIES
        else ""
    )
    fwd = results[0]
    ok = bool(fwd["cpu"]) and median(fwd["cpu"]) < 40 and median(fwd["fps_min"]) >= FPS * 0.95
    verdict = (
        "Target met: hub under 40 % of one core, every receiver at the publishers' full frame rate."
        if ok
        else "**Target missed** (hub ≥ 40 % of one core or a receiver below 95 % of 25 fps)."
    )
    body = f"""
{PARTIES} aiortc participants (one process each) publish 1280x720 {FPS} fps H.264 (~1.5 Mbit/s) + Opus
from a pre-encoded file and each receive the other {PARTIES - 1}: {PARTIES * (PARTIES - 1)} video and
{PARTIES * (PARTIES - 1)} audio receive legs. Receivers count frames completed by aiortc's jitter buffer
(no decode). Hub CPU is the hub process only, median of {runs} window(s) of {window:.0f} s; fps are per
receiver (median and the slowest of the {PARTIES * (PARTIES - 1)}); audio in Opus frames/s (50 = all).
1-minute load average after each mode: {", ".join(f"{r['mode']} {r.get('load', float('nan')):.1f}" for r in results)}
{"" if not any("error" in r for r in results) else "Errors: " + "; ".join(r["mode"] + ": " + r["error"] for r in results if "error" in r)}

| hub | hub CPU | video fps per receiver (median) | slowest receiver | audio frames/s | peers connected | 6 participants' CPU |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

{verdict} The machine has {os.cpu_count()} cores; the participants' CPU (all six processes, summed) shows
how much was left for the hub. In the baseline aiortc encodes each receiver's H.264 (libx264) and
Opus in its default thread pool: encodes queue behind each other and receivers get a fraction
of the frames{lost}. Audio is forwarded (each browser mixes the other five), never mixed or re-encoded by the hub.
"""
    write_section(
        "meeting",
        "Meeting: 6-party 720p room, forwarding vs an encoder per receiver",
        "python -m bench.meeting" + (" --quick" if quick else ""),
        body,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("role", nargs="?", default="bench", choices=("bench", "hub", "participant"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mode", choices=("forward", "encode"), default="forward")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--hub", default="")
    parser.add_argument("--name", default="p")
    parser.add_argument("--media", default="")
    args = parser.parse_args()
    if args.role == "hub":
        asyncio.run(serve_hub(args))
    elif args.role == "participant":
        asyncio.run(participant(args))
    else:
        asyncio.run(run(quick=args.quick))


if __name__ == "__main__":
    main()
