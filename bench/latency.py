"""Glass-to-glass latency: camera capture → frame shown in Chromium, hub against Janus on the
same RTSP source in the same run.

bench/camera.py --clock writes each frame's capture time (ms since epoch, low 32 bits, as
black/white blocks) into the picture before x264 encodes it. A page (bench/latency_page.js)
plays the hub by WHEP or Janus's streaming plugin, and in requestVideoFrameCallback draws the
frame to a canvas, reads the blocks back and compares them with Date.now(): one host, one
clock. The page is served at each server's own origin (Playwright answers the request), so
its API calls are same-origin. Runs alternate hub, Janus, hub, Janus…
"""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright

from bench.common import median, start_camera, start_hub, workdir, write_section
from bench.janus import Janus, JanusUnavailable, start_janus

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
SCRIPT = (Path(__file__).parent / "latency_page.js").read_text()
WARMUP_FRAMES = 25
TARGET_MS = 15.0


async def measure(
    browser: Browser, origin: str, call: str, args: list[Any], frames: int
) -> tuple[list[float], int]:
    """Samples (ms) of `frames` frames after a warm-up, and the unreadable-frame count."""
    page = await browser.new_page()
    url = f"{origin}/__bench/latency.html"
    html = f"<!doctype html><html><body><script>{SCRIPT}</script></body></html>"
    await page.route(url, lambda route: route.fulfill(body=html, content_type="text/html"))
    try:
        await page.goto(url)
        await page.evaluate(f"([a, b]) => {call}(a, b)", args)
        await page.wait_for_function(
            f"window.samples.length >= {frames + WARMUP_FRAMES}", timeout=60_000, polling=250
        )
        samples: list[float] = await page.evaluate("window.samples")
        failures: int = await page.evaluate("window.failures")
        return samples[WARMUP_FRAMES:], failures
    finally:
        await page.close()


async def run(quick: bool = False) -> None:
    runs, frames = (1, 100) if quick else (3, 250)
    wd = workdir("latency")
    camera, (url,) = await start_camera(wd, "--clock")
    hub = await start_hub(wd, {"cam": url})
    janus: Janus | None = None
    janus_error = ""
    try:
        janus = await start_janus(wd, url)
    except JanusUnavailable as err:
        janus_error = str(err)
    results: dict[str, list[list[float]]] = {"hub": [], "Janus": []}
    targets: list[tuple[str, str, str, list[Any]]]
    failures: dict[str, int] = {"hub": 0, "Janus": 0}
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                await asyncio.sleep(3)
                for r in range(runs):
                    targets = [
                        (
                            "hub",
                            hub.base,
                            "playWhep",
                            [f"{hub.base}/api/cameras/cam/whep", hub.token],
                        )
                    ]
                    if janus is not None:
                        origin = janus.api.rsplit("/janus", 1)[0]
                        targets.append(
                            ("Janus", origin, "playJanus", [janus.api, janus.mountpoint])
                        )
                    for name, origin, call, args in targets:
                        samples, bad = await measure(browser, origin, call, args, frames)
                        results[name].append(samples)
                        failures[name] += bad
                        print(
                            f"  run {r + 1} {name}: median {median(samples):.1f} ms over "
                            f"{len(samples)} frames ({bad} unreadable)",
                            flush=True,
                        )
            finally:
                await browser.close()
    finally:
        await hub.stop()
        if janus is not None:
            await janus.stop()
        await camera.stop()
    rows = [
        "| path | median (of runs' medians) | runs | p10–p90 all frames | frames |",
        "|---|---|---|---|---|",
    ]
    med: dict[str, float] = {}
    for name, run_samples in results.items():
        if not run_samples:
            continue
        flat = [s for samples in run_samples for s in samples]
        deciles = statistics.quantiles(flat, n=10)
        med[name] = median([median(s) for s in run_samples])
        rows.append(
            f"| camera → {name} → Chromium | **{med[name]:.1f} ms** | "
            f"{', '.join(f'{median(s):.1f}' for s in run_samples)} | "
            f"{deciles[0]:.0f}–{deciles[-1]:.0f} ms | {len(flat)} "
            f"({failures[name]} unreadable) |"
        )
    notes = []
    if "Janus" in med:
        gap = med["hub"] - med["Janus"]
        verdict = "met" if gap <= TARGET_MS else "MISSED"
        notes.append(
            f"- Target hub within {TARGET_MS:.0f} ms of Janus: **{verdict}** "
            f"(hub − Janus = {gap:+.1f} ms)."
        )
    else:
        notes.append(f"- Janus not measured: {janus_error}")
    body = "\n".join(
        [
            f"Camera: bench/camera.py --clock (appsrc, 1280x720 25 fps, x264 ultrafast zerolatency "
            f"threads=1, GOP 50). The hub pulls it with its own RTSP client (TCP interleaved), Janus "
            f"with its RTSP client (RTP over UDP). {runs} run(s) per path, {frames} frames each "
            f"after {WARMUP_FRAMES} warm-up frames; headless Chromium ({CHROMIUM}). Latency = "
            "Date.now() in requestVideoFrameCallback − capture time drawn in the frame; it includes "
            "x264's encode time and Chromium's jitter buffer and decode.",
            "",
            *rows,
            "",
            *notes,
            f"\nLogs: `{wd}`",
        ]
    )
    cmd = "python -m bench latency" + (" --quick" if quick else "")
    write_section("latency", "latency — camera capture to frame shown in Chromium", cmd, body)
