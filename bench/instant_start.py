"""Instant start: offer → first decoded frame for a new aiortc viewer of a camera with a 4 s
GOP (gop=100 at 25 fps), the hub's GOP cache against "wait for the next keyframe".

Two hubs pull the same camera (one shared encoder) in the same run: one as configured by
default (new viewers get the cached GOP), one with `streams.instant_start: false` (or, when
the config lacks that switch, bench/hub_runner.py forcing `Relay.subscribe(replay=False)`).
Viewers alternate between them, one at a time, after a random pause so that they land at
random points of the GOP. The clock starts when the complete offer (ICE gathered) is POSTed
and stops when `track.recv()` returns the first decoded frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from bench.common import Hub, median, start_camera, start_hub, workdir, write_section
from signaling.ice import use_host_addresses

TARGET_MS = 300.0


async def first_frame_ms(http: aiohttp.ClientSession, hub: Hub, camera: str) -> float:
    pc = RTCPeerConnection()
    tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue(maxsize=8)
    pc.on("track", tracks.put_nowait)
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {hub.token}"}
    location = ""
    try:
        start = time.perf_counter()
        async with http.post(
            f"{hub.base}/api/cameras/{camera}/whep", data=pc.localDescription.sdp, headers=headers
        ) as resp:
            body = await resp.text()
            if resp.status != 201:
                raise RuntimeError(f"WHEP POST answered {resp.status}: {body[:200]}")
            location = resp.headers["Location"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        async with asyncio.timeout(15):
            track = await tracks.get()
            await track.recv()
        return (time.perf_counter() - start) * 1000
    finally:
        if location:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.delete(
                    hub.base + location, headers={"Authorization": f"Bearer {hub.token}"}
                ):
                    pass
        await pc.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(quick: bool = False) -> None:
    runs, viewers = (1, 5) if quick else (3, 10)
    rng = random.Random(20240)
    wd = workdir("instant")
    use_host_addresses(["127.0.0.1"])
    camera, (url,) = await start_camera(wd, "--gop", "100")
    hubs: dict[str, Hub] = {}
    results: dict[str, list[list[float]]] = {
        "GOP cache (hub default)": [],
        "wait for next keyframe": [],
    }
    try:
        hubs["GOP cache (hub default)"] = await start_hub(wd, {"cam": url}, name="hub-cache")
        hubs["wait for next keyframe"] = await start_hub(
            wd, {"cam": url}, instant_start=False, name="hub-nocache"
        )
        await asyncio.sleep(5)  # both hubs connected and holding a GOP
        async with aiohttp.ClientSession() as http:
            for r in range(runs):
                per_run: dict[str, list[float]] = {k: [] for k in hubs}
                for _ in range(viewers):
                    for name, hub in hubs.items():
                        await asyncio.sleep(rng.uniform(0.3, 4.3))
                        per_run[name].append(await first_frame_ms(http, hub, "cam"))
                for name, values in per_run.items():
                    results[name].append(values)
                    print(
                        f"  run {r + 1} {name}: p50 {median(values):.0f} ms "
                        f"({', '.join(f'{v:.0f}' for v in values)})",
                        flush=True,
                    )
    finally:
        for hub in hubs.values():
            await hub.stop()
        await camera.stop()
    rows = [
        "| start | p50 (median of runs) | runs' p50 | p90 all | min–max |",
        "|---|---|---|---|---|",
    ]
    p50: dict[str, float] = {}
    for name, run_values in results.items():
        flat = [v for values in run_values for v in values]
        p50[name] = median([median(values) for values in run_values])
        rows.append(
            f"| {name} | **{p50[name]:.0f} ms** | "
            f"{', '.join(f'{median(v):.0f}' for v in run_values)} | "
            f"{pct(flat, 0.9):.0f} ms | {min(flat):.0f}–{max(flat):.0f} ms |"
        )
    cache, wait = p50["GOP cache (hub default)"], p50["wait for next keyframe"]
    verdict = "met" if cache <= TARGET_MS else "MISSED"
    body = "\n".join(
        [
            f"Camera: GStreamer x264 1280x720 25 fps, GOP 100 (4 s). {runs} run(s) × {viewers} "
            "viewers per hub, alternating between the two hubs, random pause 0.3–4.3 s before "
            "each. Time from POSTing the complete offer to the first frame decoded by aiortc "
            "(includes ICE + DTLS on loopback and aiortc's +1 frame jitter-buffer delay).",
            "",
            *rows,
            "",
            f"- Target p50 ≤ {TARGET_MS:.0f} ms: **{verdict}** ({cache:.0f} ms; "
            f"{wait / cache:.1f}× faster than waiting for the keyframe).",
            f"\nLogs: `{wd}`",
        ]
    )
    cmd = "python -m bench instant_start" + (" --quick" if quick else "")
    write_section("instant_start", "instant start — offer to first decoded frame", cmd, body)
